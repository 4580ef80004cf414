"""Invariants every declared object keeps: names, labels, namespace, parents and secret hygiene."""

import json
import re
from pathlib import Path

from components.settings.model import PROJECT
from components.settings.stack_files import stack_values
from tests.support.render import STACK_SECRETS, Rendered, render

REQUIRED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass"}
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def test_every_object_has_an_explicit_dns_name(stack: Rendered) -> None:
    for obj in stack.kubernetes_objects():
        name = (obj.inputs.get("metadata") or {}).get("name")
        assert name, f"{obj.label} ({obj.urn}) has no explicit metadata.name"
        assert len(name) <= 63 and DNS_1123.match(name), f"{obj.label}: '{name}' is not a DNS-1123 name"


def test_every_object_has_the_common_labels(stack: Rendered) -> None:
    for obj in stack.kubernetes_objects():
        labels = obj.inputs["metadata"].get("labels") or {}
        missing = [key for key in REQUIRED_LABELS if key not in labels]
        assert not missing, f"{obj.label} lacks labels {missing}"
        assert labels["app.kubernetes.io/instance"] == stack.stack, f"{obj.label}: wrong instance label"
        assert labels["app.kubernetes.io/part-of"] == PROJECT, f"{obj.label}: wrong part-of label"


def test_namespaced_objects_live_in_the_stack_namespace(stack: Rendered) -> None:
    namespace = stack.outputs["namespace"]
    for obj in stack.kubernetes_objects():
        if obj.kind in CLUSTER_SCOPED:
            continue
        assert obj.inputs["metadata"].get("namespace") == namespace, f"{obj.label} is not in {namespace}"


def test_every_resource_is_parented_to_a_component(stack: Rendered) -> None:
    components = {r.urn for r in stack.resources if r.type.startswith("qestack:")}
    assert components, "no qestack component declared"
    for resource in stack.resources:
        if resource.type.startswith("qestack:"):
            assert resource.type.count(":") == 2, f"{resource.type} does not follow package:module:Type"
            continue
        assert resource.parent in components, f"{resource.type}/{resource.name} is not parented to a component"


def test_kubernetes_objects_use_the_stack_provider(stack: Rendered) -> None:
    providers = [r for r in stack.resources if r.type == "pulumi:providers:kubernetes"]
    assert len(providers) == 1, "expected exactly one explicit Kubernetes provider"


def test_no_secret_value_outside_a_secret(stack: Rendered) -> None:
    secrets = stack.generated_secrets
    assert secrets, "the mocks handed out no generated password"
    for obj in stack.resources:
        if obj.kind == "Secret" or obj.type.startswith("random:"):
            continue
        text = json.dumps(obj.inputs)
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{obj.label} contains a credential value"
    for key, value in stack.outputs.items():
        if key not in stack.secret_outputs:
            assert not [s for s in secrets if s in json.dumps(value)], f"output '{key}' leaks a credential"


def test_secret_data_is_marked_secret(stack: Rendered) -> None:
    for obj in stack.of_kind("Secret"):
        assert obj.inputs.get("stringData"), f"{obj.label} holds no data"
        assert "stringData" in obj.secret_paths, f"{obj.label}: stringData is not a Pulumi secret"


def test_credentials_are_exported_only_as_secrets(stack: Rendered) -> None:
    assert "credentials" in stack.secret_outputs
    exported = stack.outputs["credentials"]
    configured = STACK_SECRETS.get(stack.stack, {}).get("credentials", {})
    assert set(exported.values()) <= set(stack.generated_secrets) | set(configured.values())


def test_configured_credential_is_used_and_not_generated() -> None:
    value = "configured-grafana-password-0123"
    rendered = render("dev", secrets={"credentials": {"grafanaAdminPassword": value}})
    assert rendered.named("Secret", "grafana-admin").inputs["stringData"]["admin-password"] == value
    assert rendered.outputs["credentials"]["grafanaAdminPassword"] == value
    assert all("grafanaAdminPassword" not in r.name for r in rendered.resources if r.type.startswith("random:"))
    for obj in rendered.resources:
        if obj.kind != "Secret":
            assert value not in json.dumps(obj.inputs), f"{obj.label} contains the configured credential"


def test_a_third_stack_needs_only_its_stack_file(tmp_path: Path) -> None:
    config = stack_values("dev")
    config[f"{PROJECT}:namespace"] = "query-engine-staging"
    (tmp_path / "Pulumi.staging.yaml").write_text(json.dumps({"config": config}))
    rendered = render("staging", repo=tmp_path)
    assert rendered.outputs["namespace"] == "query-engine-staging"
    assert {o.inputs["metadata"]["labels"]["app.kubernetes.io/instance"] for o in rendered.kubernetes_objects()} == {
        "staging"
    }
