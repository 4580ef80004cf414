"""kube-state-metrics, limited to our namespace: replicas, restarts, HPAs, PVCs and budgets as metrics."""

import pulumi
from pulumi_kubernetes.core.v1 import ContainerArgs, ContainerPortArgs, PodSpecArgs
from pulumi_kubernetes.rbac.v1 import PolicyRuleArgs

from components import names
from components.observability.prometheus.component import NOBODY
from components.observability.prometheus.config import KUBE_STATE_METRICS_PORT
from components.platform.budget import rollout_surge
from components.platform.workloads import (
    NamespacedComponent,
    StackArgs,
    container_resources,
    container_security,
    http_probes,
    pod_security,
)

TELEMETRY_PORT = 8081
WATCHED = {
    "": ["pods", "persistentvolumeclaims", "services"],
    "apps": ["deployments", "statefulsets"],
    "autoscaling": ["horizontalpodautoscalers"],
    "batch": ["jobs", "cronjobs"],
    "policy": ["poddisruptionbudgets"],
}
"""What it reports on, by API group; its --resources flag names the same kinds."""


class KubeStateMetrics(NamespacedComponent):
    """One kube-state-metrics that may list and watch our namespace only (a Role, not a ClusterRole)."""

    def __init__(self, name: str, args: StackArgs, opts: pulumi.ResourceOptions | None = None):
        ksm = args.settings.monitoring.kube_state_metrics
        identity = (names.KUBE_STATE_METRICS, "exporter", args.instance, ksm.image)
        super().__init__("qestack:observability:KubeStateMetrics", name, args.namespace, identity, opts)
        rules = [
            PolicyRuleArgs(api_groups=[group], resources=resources, verbs=["list", "watch"])
            for group, resources in WATCHED.items()
        ]
        account = self._account_with_role(name, names.KUBE_STATE_METRICS, rules, "reader")
        container = ContainerArgs(
            name="kube-state-metrics",
            image=ksm.image,
            args=[
                f"--namespaces={args.settings.namespace}",
                f"--resources={','.join(kind for kinds in WATCHED.values() for kind in kinds)}",
                f"--port={KUBE_STATE_METRICS_PORT}",
                f"--telemetry-port={TELEMETRY_PORT}",
            ],
            ports=[
                ContainerPortArgs(name="http-metrics", container_port=KUBE_STATE_METRICS_PORT),
                ContainerPortArgs(name="telemetry", container_port=TELEMETRY_PORT),
            ],
            resources=container_resources(ksm.resources),
            security_context=container_security(),
            **http_probes("telemetry", "/readyz", "/livez", live_port="http-metrics"),
        )
        self._one_replica(
            name,
            names.KUBE_STATE_METRICS,
            PodSpecArgs(
                service_account_name=account,
                automount_service_account_token=True,
                security_context=pod_security(NOBODY),
                containers=[container],
            ),
            surge=rollout_surge(args.settings),
        )
        self.register_outputs({})
