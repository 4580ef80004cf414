"""Chaos Mesh for verify's failover scenarios: its official Helm chart, in a namespace of its own."""

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.helm.v4 import RepositoryOptsArgs
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from components.chaos.certificates import chart_certificates, issue, stable_certificates, webhook_values
from components.platform.labels import common_labels
from components.platform.workloads import StackArgs
from components.settings.model import ChaosSettings

CHART = "chaos-mesh"
REPOSITORY = "https://charts.chaos-mesh.org"
INJECT_ANNOTATION = "chaos-mesh.org/inject"
"""With namespace filtering on, Chaos Mesh injects faults only into namespaces annotated with it (= enabled)."""
POD_SECURITY = "privileged"
"""chaos-daemon runs privileged (it enters other pods' namespaces), so its namespace cannot be restricted."""


def chart_values(chaos: ChaosSettings, high_availability: bool) -> dict:
    """The chart's values: images at the chart's version, faults only where annotated, no NodePort."""
    return {
        "images": {"tag": f"v{chaos.chart_version}"},  # the chart's own default may be `latest`
        "controllerManager": {"enableFilterNamespace": True, "replicaCount": 3 if high_availability else 1},
        "chaosDaemon": {"runtime": chaos.runtime, "socketPath": chaos.socket_path},
        "dashboard": {"securityMode": True, "service": {"type": "ClusterIP"}},
    }


def inject_annotations(chaos: ChaosSettings) -> dict[str, str]:
    """The annotation that opens our namespace to Chaos Mesh, when there is one to use."""
    return {} if chaos.mode == "off" else {INJECT_ANNOTATION: "enabled"}


class ChaosMesh(pulumi.ComponentResource):
    """Chaos Mesh installed from its chart (mode install); with `existing` or `off`, nothing is installed."""

    def __init__(self, name: str, args: StackArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("qestack:chaos:ChaosMesh", name, None, opts)
        chaos = args.settings.chaos
        self.namespace: str | None = chaos.namespace if chaos.mode != "off" else None
        """Where Chaos Mesh runs (None: it is off)."""
        if chaos.mode == "install":
            labels = common_labels(CHART, "chaos", args.instance, chaos.chart_version)
            for mode in ("enforce", "audit", "warn"):
                labels[f"pod-security.kubernetes.io/{mode}"] = POD_SECURITY
            namespace = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=ObjectMetaArgs(name=chaos.namespace, labels=labels),
                opts=pulumi.ResourceOptions(parent=self),
            )
            # The chart makes new certificates on every render: ours, kept in state, take their place.
            issued = issue(
                f"{name}-certificates", chart_certificates(chaos.namespace), pulumi.ResourceOptions(parent=self)
            )
            values = chart_values(chaos, args.settings.high_availability)
            k8s.helm.v4.Chart(
                f"{name}-chart",
                chart=CHART,
                version=chaos.chart_version,
                namespace=chaos.namespace,
                repository_opts=RepositoryOptsArgs(repo=REPOSITORY),
                values={**values, "webhook": webhook_values(issued)},
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[namespace], transforms=[stable_certificates(issued)]
                ),
            )
        self.register_outputs({"namespace": self.namespace})
