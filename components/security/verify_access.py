"""The least verify needs of the Kubernetes API: a ServiceAccount bound to a Role in our namespace only."""

from dataclasses import dataclass

import pulumi
from pulumi_kubernetes.rbac.v1 import PolicyRuleArgs

from components import names
from components.chaos.api import GROUP as CHAOS_GROUP
from components.chaos.api import PLURALS as CHAOS_PLURALS
from components.platform.workloads import NamespacedComponent
from components.settings.model import PROJECT


@dataclass(frozen=True, kw_only=True)
class Permission:
    """Verbs on resources of one API group, and which part of verify uses them."""

    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str


PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        group="apps",
        resources=("deployments", "statefulsets"),
        verbs=("get", "list"),
        why="preflight: rolled out and ready",
    ),
    Permission(
        group="", resources=("services",), verbs=("get", "list"), why="preflight, and the pods behind a port-forward"
    ),
    Permission(
        group="",
        resources=("pods",),
        verbs=("get", "list"),
        why="port-forward targets; failover: which pods, when ready again",
    ),
    Permission(
        group="",
        resources=("pods",),
        verbs=("create", "delete"),
        why="failover without Chaos Mesh: kill a pod; restore-drill: its scratch servers",
    ),
    # Websocket port-forwards are GETs; newer API servers also require create on the subresource.
    Permission(
        group="",
        resources=("pods/portforward",),
        verbs=("get", "create"),
        why="reach Presto, ClickHouse, Kafka... from outside",
    ),
    Permission(
        group="autoscaling",
        resources=("horizontalpodautoscalers",),
        verbs=("get", "list"),
        why="HPA checks and the autoscaling run",
    ),
    Permission(group="policy", resources=("poddisruptionbudgets",), verbs=("list",), why="PDB check"),
    Permission(group="networking.k8s.io", resources=("networkpolicies",), verbs=("list",), why="NetworkPolicy check"),
    Permission(
        group=CHAOS_GROUP,
        resources=tuple(sorted(CHAOS_PLURALS.values())),
        verbs=("list", "create", "delete"),
        why="failover experiments",
    ),
)
"""Everything verify may do, in the stack's namespace only. No Secret: its credentials come from the stack."""


class VerifyAccess(NamespacedComponent):
    """ServiceAccount `verify` (no token mounted), Role `verify` from PERMISSIONS, and their RoleBinding."""

    def __init__(
        self, name: str, namespace: pulumi.Input[str], instance: str, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("qestack:security:VerifyAccess", name, namespace, (PROJECT, "verify", instance, None), opts)
        rules = [
            PolicyRuleArgs(api_groups=[p.group], resources=list(p.resources), verbs=list(p.verbs)) for p in PERMISSIONS
        ]
        self._account_with_role(name, names.VERIFY, rules, "role")
        self.register_outputs({"serviceAccount": names.VERIFY})
