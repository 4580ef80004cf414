"""The platform baseline: Kubernetes provider, namespace, quota, limits and default-deny networking."""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import (
    LimitRangeItemArgs,
    LimitRangeSpecArgs,
    ResourceQuotaSpecArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyEgressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
)

from components import names
from components.chaos.component import inject_annotations
from components.platform.labels import common_labels
from components.settings.model import PROJECT, Amounts, Settings

# The Pod Security Standard every workload of ours meets, enforced by the namespace, pinned to a
# version so a cluster upgrade cannot tighten it under running pods.
# Ref: https://kubernetes.io/docs/concepts/security/pod-security-admission/
POD_SECURITY_LEVEL = "restricted"
POD_SECURITY_VERSION = "v1.31"


@dataclass(frozen=True)
class PlatformArgs:
    """Inputs of the platform baseline."""

    settings: Settings
    """The validated stack settings."""
    instance: str
    """The stack name, for app.kubernetes.io/instance."""


class Platform(pulumi.ComponentResource):
    """Provider, namespace, ResourceQuota, LimitRange and the default-deny NetworkPolicies."""

    provider: k8s.Provider
    namespace: k8s.core.v1.Namespace
    namespace_name: pulumi.Output[str]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("qestack:platform:Platform", name, None, opts)
        self._inputs = args
        self.provider = self._declare_provider(name)
        self.namespace = self._declare_namespace(name)
        self.namespace_name = self.namespace.metadata.name
        self._declare_quota(name)
        self._declare_limit_range(name)
        self._declare_network_policies(name)
        self.register_outputs({"namespace": self.namespace_name})

    def _in_cluster(self) -> pulumi.ResourceOptions:
        """Options for a Kubernetes object of this component."""
        return pulumi.ResourceOptions(parent=self, provider=self.provider)

    def _metadata(self, object_name: str) -> ObjectMetaArgs:
        """Metadata of a namespaced baseline object."""
        return ObjectMetaArgs(
            name=object_name,
            namespace=self.namespace_name,
            labels=common_labels(PROJECT, "platform", self._inputs.instance),
        )

    def _declare_provider(self, name: str) -> k8s.Provider:
        """The Kubernetes provider: a kubeconfig context, or YAML rendered to a directory."""
        target = self._inputs.settings.kubernetes
        return k8s.Provider(
            f"{name}-kubernetes",
            context=target.context,
            render_yaml_to_directory=target.render_yaml_to,
            enable_server_side_apply=True,
            # A changed Secret or ConfigMap is updated in place, never replaced: a rotated password must not
            # delete the Secret its pods read (the pods roll by their config digests instead).
            enable_secret_mutable=True,
            enable_config_map_mutable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _declare_namespace(self, name: str) -> k8s.core.v1.Namespace:
        """The namespace, enforcing the restricted Pod Security Standard; open to Chaos Mesh unless it is off."""
        labels = common_labels(PROJECT, "platform", self._inputs.instance)
        for mode in ("enforce", "audit", "warn"):
            labels[f"pod-security.kubernetes.io/{mode}"] = POD_SECURITY_LEVEL
            labels[f"pod-security.kubernetes.io/{mode}-version"] = POD_SECURITY_VERSION
        return k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=ObjectMetaArgs(
                name=self._inputs.settings.namespace,
                labels=labels,
                annotations=inject_annotations(self._inputs.settings.chaos) or None,
            ),
            opts=self._in_cluster(),
        )

    def _declare_quota(self, name: str) -> k8s.core.v1.ResourceQuota:
        """The ResourceQuota, sized per stack (settings check that the workloads fit in it)."""
        quota = self._inputs.settings.quota
        return k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=self._metadata(names.QUOTA),
            spec=ResourceQuotaSpecArgs(
                hard={
                    "requests.cpu": quota.requests.cpu,
                    "requests.memory": quota.requests.memory,
                    "limits.cpu": quota.limits.cpu,
                    "limits.memory": quota.limits.memory,
                    "pods": str(quota.pods),
                    "persistentvolumeclaims": str(quota.persistent_volume_claims),
                    "requests.storage": quota.storage,
                }
            ),
            opts=self._in_cluster(),
        )

    def _declare_limit_range(self, name: str) -> k8s.core.v1.LimitRange:
        """Defaults for containers without resources, and the largest limits a container may ask."""
        limits = self._inputs.settings.limit_range

        def amounts(a: Amounts) -> dict[str, str]:
            return {"cpu": a.cpu, "memory": a.memory}

        return k8s.core.v1.LimitRange(
            f"{name}-limit-range",
            metadata=self._metadata(names.LIMIT_RANGE),
            spec=LimitRangeSpecArgs(
                limits=[
                    LimitRangeItemArgs(
                        type="Container",
                        default_request=amounts(limits.default_request),
                        default=amounts(limits.default),
                        max=amounts(limits.max),
                    )
                ]
            ),
            opts=self._in_cluster(),
        )

    def _declare_network_policies(self, name: str) -> list[k8s.networking.v1.NetworkPolicy]:
        """Deny all traffic in and out of every pod, then allow DNS lookups to the cluster DNS."""
        dns = self._inputs.settings.dns
        deny = k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata=self._metadata(names.DEFAULT_DENY_POLICY),
            spec=NetworkPolicySpecArgs(pod_selector=LabelSelectorArgs(), policy_types=["Ingress", "Egress"]),
            opts=self._in_cluster(),
        )
        # DNS is the one flow every pod needs; it goes to the cluster DNS pods only, on port 53 over
        # both UDP and TCP (TCP for truncated answers).
        allow_dns = k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-dns",
            metadata=self._metadata(names.ALLOW_DNS_POLICY),
            spec=NetworkPolicySpecArgs(
                pod_selector=LabelSelectorArgs(),
                policy_types=["Egress"],
                egress=[
                    NetworkPolicyEgressRuleArgs(
                        to=[
                            NetworkPolicyPeerArgs(
                                namespace_selector=LabelSelectorArgs(
                                    match_labels={"kubernetes.io/metadata.name": dns.namespace}
                                ),
                                pod_selector=LabelSelectorArgs(match_labels=dict(dns.pod_labels)),
                            )
                        ],
                        ports=[
                            NetworkPolicyPortArgs(protocol="UDP", port=53),
                            NetworkPolicyPortArgs(protocol="TCP", port=53),
                        ],
                    )
                ],
            ),
            opts=self._in_cluster(),
        )
        return [deny, allow_dns]
