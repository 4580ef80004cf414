"""RBAC, exposure and pod isolation of the rendered stacks: what each identity may do, what is reachable."""

import kubernetes_validate

from components import names
from components.security.verify_access import PERMISSIONS
from tests.support.render import KUBERNETES_VERSIONS, Rendered, render
from tests.support.workloads import pod_spec, workloads

RESTRICTED_VOLUMES = {"configMap", "secret", "projected", "emptyDir", "persistentVolumeClaim", "downwardAPI"}
"""The volume types the restricted Pod Security Standard allows (besides ephemeral and CSI)."""


def test_every_service_account_keeps_its_token_unmounted_by_default(stack: Rendered) -> None:
    accounts = stack.of_kind("ServiceAccount")
    assert {a.inputs["metadata"]["name"] for a in accounts} >= {
        w.inputs["metadata"]["name"] for w in workloads(stack)
    }, "a ServiceAccount per workload"
    for account in accounts:
        assert account.inputs["automountServiceAccountToken"] is False, account.label


def test_no_pod_uses_the_host_or_a_volume_outside_the_restricted_standard(stack: Rendered) -> None:
    for workload in workloads(stack):
        pod = pod_spec(workload)
        assert not any(pod.get(key) for key in ("hostNetwork", "hostPID", "hostIPC")), workload.label
        for volume in pod.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= RESTRICTED_VOLUMES, f"{workload.label} volume {volume['name']}: {kinds}"


def test_the_verify_role_grants_exactly_its_table_and_no_secret(stack: Rendered) -> None:
    role = stack.named("Role", names.VERIFY).inputs
    granted = {
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    listed = {(p.group, r, v) for p in PERMISSIONS for r in p.resources for v in p.verbs}
    assert granted == listed
    assert not {r for _, r, _ in granted} & {"secrets", "configmaps", "*"}
    assert not {v for _, _, v in granted} & {"*", "update", "patch", "escalate", "bind", "impersonate"}
    binding = stack.named("RoleBinding", names.VERIFY).inputs
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.VERIFY}
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": names.VERIFY, "namespace": stack.outputs["namespace"]}
    ]
    assert not [r for r in stack.of_kind("ClusterRoleBinding") if names.VERIFY in r.inputs["metadata"]["name"]]


def test_every_service_is_cluster_internal_unless_configured(stack: Rendered) -> None:
    for service in stack.of_kind("Service"):
        assert service.inputs["spec"].get("type", "ClusterIP") == "ClusterIP", service.label


def test_an_exposed_stack_opens_presto_https_and_grafana_to_the_client_ranges_only() -> None:
    ranges = ["192.0.2.0/24"]
    exposed = render("dev", overrides={"network": {"serviceType": "LoadBalancer", "clients": {"cidrs": ranges}}})
    open_services = {
        s.inputs["metadata"]["name"]: s.inputs["spec"]
        for s in exposed.of_kind("Service")
        if s.inputs["spec"].get("type", "ClusterIP") != "ClusterIP"
    }
    assert set(open_services) == {names.PRESTO_CLIENTS, names.GRAFANA}
    assert [p["port"] for p in open_services[names.PRESTO_CLIENTS]["ports"]] == [names.PRESTO_HTTPS_PORT]
    for spec in open_services.values():
        assert spec["loadBalancerSourceRanges"] == ranges
        assert spec["externalTrafficPolicy"] == "Local", "client addresses reach the NetworkPolicy"
    for service in exposed.of_kind("Service"):
        kubernetes_validate.validate(service.inputs, KUBERNETES_VERSIONS[0], strict=True)
