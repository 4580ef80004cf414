"""The platform baseline: provider, namespace, quota, limits and default-deny networking."""

from components import names
from tests.support.render import Rendered, render, settings_of


def test_namespace_enforces_the_restricted_pod_security_standard(stack: Rendered) -> None:
    labels = stack.of_kind("Namespace")[0].inputs["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", f"Namespace: {mode} is not restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.31"


def test_quota_is_sized_from_the_stack_settings(stack: Rendered) -> None:
    quota = settings_of(stack).quota
    hard = stack.named("ResourceQuota", names.QUOTA).inputs["spec"]["hard"]
    assert hard == {
        "requests.cpu": quota.requests.cpu,
        "requests.memory": quota.requests.memory,
        "limits.cpu": quota.limits.cpu,
        "limits.memory": quota.limits.memory,
        "pods": str(quota.pods),
        "persistentvolumeclaims": str(quota.persistent_volume_claims),
        "requests.storage": quota.storage,
    }


def test_limit_range_gives_container_defaults_and_a_ceiling(stack: Rendered) -> None:
    limits = settings_of(stack).limit_range
    (item,) = stack.named("LimitRange", names.LIMIT_RANGE).inputs["spec"]["limits"]
    assert item["type"] == "Container"
    assert item["defaultRequest"] == {"cpu": limits.default_request.cpu, "memory": limits.default_request.memory}
    assert item["default"] == {"cpu": limits.default.cpu, "memory": limits.default.memory}
    assert item["max"] == {"cpu": limits.max.cpu, "memory": limits.max.memory}


def test_default_deny_blocks_all_ingress_and_egress(stack: Rendered) -> None:
    spec = stack.named("NetworkPolicy", names.DEFAULT_DENY_POLICY).inputs["spec"]
    assert spec["podSelector"] == {}, "default-deny must select every pod"
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in spec and "egress" not in spec, "default-deny must allow nothing"


def test_dns_egress_is_the_only_baseline_allowance(stack: Rendered) -> None:
    dns = settings_of(stack).dns
    spec = stack.named("NetworkPolicy", names.ALLOW_DNS_POLICY).inputs["spec"]
    assert spec["policyTypes"] == ["Egress"] and "ingress" not in spec
    (rule,) = spec["egress"]
    (peer,) = rule["to"]
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": dns.namespace}}
    assert peer["podSelector"] == {"matchLabels": dns.pod_labels}
    assert sorted((p["protocol"], p["port"]) for p in rule["ports"]) == [("TCP", 53), ("UDP", 53)]


def test_provider_targets_the_configured_context() -> None:
    (provider,) = [r for r in render("dev").resources if r.type == "pulumi:providers:kubernetes"]
    assert provider.inputs.get("context") == "minikube"
    assert "renderYamlToDirectory" not in provider.inputs


def test_provider_can_render_yaml_for_gitops_instead() -> None:
    rendered = render("prod", overrides={"kubernetes": {"renderYamlTo": "rendered/prod"}})
    (provider,) = [r for r in rendered.resources if r.type == "pulumi:providers:kubernetes"]
    assert provider.inputs["renderYamlToDirectory"] == "rendered/prod"


def test_secrets_and_config_maps_are_updated_in_place(stack: Rendered) -> None:
    """A rotated password or a changed config updates its object: the provider would otherwise replace it."""
    (provider,) = [r for r in stack.resources if r.type == "pulumi:providers:kubernetes"]
    assert provider.inputs["enableSecretMutable"] == "true" and provider.inputs["enableConfigMapMutable"] == "true"
