"""The policy pack's rules: each refuses a violating resource and accepts a good one; the stacks pass all."""

from typing import Any

import pytest

from policy.rules import DEFAULTS, RULES, Resource
from tests.support.render import Rendered, render

BY_NAME = {rule.name: rule for rule in RULES}
URN = "urn:pulumi:{stack}::query-engine-stack::kubernetes:{type}::{name}"


def resource(kind: str, props: dict[str, Any], stack: str = "dev", namespace: str = "query-engine") -> Resource:
    """A Kubernetes resource of a type token such as apps/v1:Deployment, in a namespace of a stack."""
    meta = {"name": props.pop("name", "thing"), "namespace": namespace}
    return Resource(
        f"kubernetes:{kind}", {"metadata": meta, **props}, URN.format(stack=stack, type=kind, name=meta["name"])
    )


def container(**overrides: Any) -> dict[str, Any]:
    """A container that follows every rule."""
    probe = {"httpGet": {"path": "/", "port": "http"}}
    return {
        "name": "app",
        "image": "prestodb/presto:0.287",
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "startupProbe": probe,
        "readinessProbe": probe,
        "livenessProbe": probe,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "env": [{"name": "MODE", "value": "server"}],
        **overrides,
    }


def deployment(
    replicas: int = 1, pod: dict | None = None, namespace: str = "query-engine", stack: str = "dev", **overrides: Any
) -> Resource:
    """A Deployment of one good container, changed as given."""
    spec = {"containers": [container(**overrides)], **(pod or {})}
    template = {"metadata": {"labels": {"app": "thing"}}, "spec": spec}
    return resource("apps/v1:Deployment", {"spec": {"replicas": replicas, "template": template}}, stack, namespace)


def violations(rule: str, subject: Any, **config: Any) -> list[str]:
    """What one rule finds, with the defaults overridden as given."""
    return BY_NAME[rule].check(subject, {**DEFAULTS, **config})


DENY_ALL = resource(
    "networking.k8s.io/v1:NetworkPolicy",
    {"name": "default-deny", "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
)
BUDGET = resource(
    "policy/v1:PodDisruptionBudget",
    {"spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "thing"}}}},
    "prod",
)

CASES: list[tuple[str, Any, Any, str]] = [
    ("requests-and-limits", deployment(), deployment(resources={"requests": {"cpu": "1"}}), "no requests for memory"),
    ("probes", deployment(), deployment(livenessProbe=None), "no livenessProbe"),
    ("pinned-images", deployment(), deployment(image="prestodb/presto:latest"), "not pinned"),
    ("pinned-images", deployment(image="a/b@sha256:" + "0" * 64), deployment(image="prestodb/presto"), "not pinned"),
    ("no-privileged-containers", deployment(), deployment(securityContext={"privileged": True}), "privileged"),
    ("no-privileged-containers", deployment(), deployment(pod={"hostNetwork": True}), "uses hostNetwork"),
    (
        "no-privileged-containers",
        deployment(namespace="chaos-mesh", securityContext={"privileged": True}),
        deployment(securityContext={"capabilities": {"add": ["NET_ADMIN"]}, "allowPrivilegeEscalation": False}),
        "adds capabilities",
    ),
    (
        "no-credentials-in-configmaps-or-env",
        deployment(env=[{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
        deployment(env=[{"name": "DB_PASSWORD", "value": "hunter2hunter2"}]),
        "env DB_PASSWORD holds a literal value",
    ),
    (
        "no-credentials-in-configmaps-or-env",
        resource("core/v1:ConfigMap", {"data": {"grafana.ini": "admin_password = $__file{/etc/secret/p}\n"}}),
        resource("core/v1:ConfigMap", {"data": {"grafana.ini": "admin_password = hunter2hunter2\n"}}),
        "admin_password is set to a literal",
    ),
    (
        "no-credentials-in-configmaps-or-env",
        resource("core/v1:ConfigMap", {"data": {"a.properties": "file.password-file=/run/secrets/p\n"}}),
        resource("core/v1:ConfigMap", {"data": {"a.properties": "url=jdbc:clickhouse://presto:s3cret@ch:8123/db\n"}}),
        "a URL with a password",
    ),
    (
        "no-credentials-in-configmaps-or-env",
        resource("core/v1:ConfigMap", {"data": {"users.xml": "<users><presto><profile>r</profile></presto></users>"}}),
        resource("core/v1:ConfigMap", {"data": {"tls.key": "-----BEGIN EC PRIVATE KEY-----\nMHc...\n"}}),
        "a private key",
    ),
    (
        "services-not-exposed",
        resource("core/v1:Service", {"spec": {"ports": [{"port": 80}]}}),
        resource("core/v1:Service", {"spec": {"type": "NodePort", "ports": [{"port": 80}]}}),
        "type NodePort, allowed: ClusterIP",
    ),
    (
        "default-deny-network-policy",
        [deployment(), DENY_ALL],
        [deployment()],
        "namespace query-engine: no default-deny",
    ),
    (
        "default-deny-network-policy",
        [deployment(), DENY_ALL],
        [
            deployment(),
            resource("networking.k8s.io/v1:NetworkPolicy", {"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
        ],
        "no default-deny",
    ),
    (
        "disruption-budgets-in-production",
        [deployment(3, stack="prod"), BUDGET],
        [deployment(3, stack="prod")],
        "up to 3 replicas and no PodDisruptionBudget",
    ),
]


@pytest.mark.parametrize(("rule", "good", "bad", "message"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_rule_accepts_the_good_and_refuses_the_bad(rule: str, good: Any, bad: Any, message: str) -> None:
    assert violations(rule, good) == []
    found = violations(rule, bad)
    assert any(message in text for text in found), found


def test_every_rule_has_a_case() -> None:
    assert {case[0] for case in CASES} == set(BY_NAME)


def test_a_single_replica_or_a_dev_stack_needs_no_budget() -> None:
    assert violations("disruption-budgets-in-production", [deployment(1, stack="prod")]) == []
    assert violations("disruption-budgets-in-production", [deployment(3, stack="dev")]) == []


def test_an_exposure_passes_once_the_policy_config_allows_it() -> None:
    service = resource("core/v1:Service", {"spec": {"type": "LoadBalancer"}})
    assert violations("services-not-exposed", service, allowedServiceTypes=["ClusterIP", "LoadBalancer"]) == []


def run_all(stack: Rendered, **config: Any) -> list[str]:
    """Every rule over a rendered stack, as the engine would show its resources."""
    resources = [Resource(r.type, r.inputs, r.urn) for r in stack.resources]
    found = [f"{rule.name}: {v}" for rule in RULES if rule.stack for v in violations(rule.name, resources, **config)]
    for rule in (r for r in RULES if not r.stack):
        found += [f"{rule.name}: {v}" for one in resources for v in violations(rule.name, one, **config)]
    return found


def test_every_shipped_stack_passes_every_rule(stack: Rendered) -> None:
    assert stack.resources[0].urn.startswith(f"urn:pulumi:{stack.stack}::")
    assert run_all(stack) == []


def test_an_exposed_stack_passes_only_with_the_exposure_allowed() -> None:
    exposed = render("dev", overrides={"network": {"serviceType": "NodePort", "clients": {"cidrs": ["192.0.2.0/24"]}}})
    assert [v for v in run_all(exposed) if v.startswith("services-not-exposed")]
    assert run_all(exposed, allowedServiceTypes=["ClusterIP", "NodePort"]) == []


@pytest.mark.parametrize("name", ["prod", "dr"])
def test_a_highly_available_stack_without_a_budget_is_refused(name: str, rendered_stacks: dict[str, Rendered]) -> None:
    prod = rendered_stacks[name]
    stripped = Rendered(prod.stack, [r for r in prod.resources if r.kind != "PodDisruptionBudget"], prod.outputs)
    assert any("no PodDisruptionBudget" in v for v in run_all(stripped))
