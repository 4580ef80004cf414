"""Day 2 on the rendered stacks: a version bump replaces no StatefulSet, one engine's upgrade rolls no other."""

import typing
from functools import cache
from typing import Any

import pytest
from pydantic import BaseModel

from components.settings.model import Image, Settings, nested_model
from tests.support.render import Rendered, render

IMMUTABLE = ("selector", "serviceName", "podManagementPolicy", "volumeClaimTemplates")
"""StatefulSet spec fields the API server refuses to change: a different value makes Pulumi replace the StatefulSet."""
IMAGE_CHECK = typing.get_args(Image)[1]


def image_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    """The dotted camelCase key of every image setting."""
    keys = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        if IMAGE_CHECK in field.metadata:
            keys.append(key)
        # An optional block (mirror, whose image must be kafka.image) is bumped on the stacks that set it.
        elif field.default is not None and (inner := nested_model(field.annotation)) is not None:
            keys += image_keys(inner, f"{key}.")
    return keys


def bumped(key: str, stack: str) -> dict[str, Any]:
    """An override setting the image at key to a new tag of the same repository."""
    value: Any = Settings.model_validate({}, context={}).model_dump(by_alias=True)
    for part in key.split("."):
        value = value[part]
    override: Any = f"{value.partition('@')[0].rsplit(':', 1)[0]}:9.9.9-bumped"
    for part in reversed(key.split(".")):
        override = {part: override}
    return override


def merge(into: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge change into a copy of into."""
    result = dict(into)
    for key, value in change.items():
        result[key] = merge(result.get(key, {}), value) if isinstance(value, dict) else value
    return result


@cache
def rendered(stack: str, *keys: str) -> Rendered:
    """A stack rendered with the images at keys bumped."""
    overrides: dict[str, Any] = {}
    for key in keys:
        overrides = merge(overrides, bumped(key, stack))
    return render(stack, overrides=overrides)


def pod_templates(stack: Rendered) -> dict[str, Any]:
    """kind/name of every workload that keeps pods running, with its pod template."""
    return {
        r.label: r.inputs["spec"]["template"]
        for kind in ("Deployment", "StatefulSet", "DaemonSet")
        for r in stack.of_kind(kind)
    }


def test_every_image_setting_is_found() -> None:
    keys = image_keys()
    assert {"presto.image", "kafka.image", "clickhouse.image", "monitoring.prometheus.image"} <= set(keys), keys


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_bumping_every_image_changes_no_immutable_statefulset_field(stack: str) -> None:
    before, after = rendered(stack), rendered(stack, *image_keys())
    assert before.of_kind("StatefulSet"), f"stack {stack} has no StatefulSet"
    for statefulset in before.of_kind("StatefulSet"):
        bumped_set = after.named("StatefulSet", statefulset.inputs["metadata"]["name"])
        for field in IMMUTABLE:
            assert bumped_set.inputs["spec"].get(field) == statefulset.inputs["spec"].get(field), (
                f"{statefulset.label}: spec.{field} changes with an image bump, so Pulumi would replace it"
            )
        template_labels = bumped_set.inputs["spec"]["template"]["metadata"]["labels"]
        assert template_labels != statefulset.inputs["spec"]["template"]["metadata"]["labels"], (
            f"{statefulset.label}: the bump must still reach the pod template (its version label)"
        )


ENGINES = {
    "presto.image": ("presto-",),
    "kafka.image": ("kafka",),
    "clickhouse.image": ("clickhouse",),
}
"""Each engine's image setting and the names its workloads start with."""


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("key", sorted(ENGINES))
def test_an_engine_upgrade_rolls_only_that_engine(stack: str, key: str) -> None:
    before, after = pod_templates(rendered(stack)), pod_templates(rendered(stack, key))
    changed = sorted(label for label, template in before.items() if after[label] != template)
    owned = ENGINES[key]
    assert changed, f"bumping {key} rolls nothing"
    strays = [label for label in changed if not label.split("/", 1)[1].startswith(owned)]
    assert not strays, f"bumping {key} also rolls {strays}: one engine's upgrade must not restart another"


CONFIG_CHANGES = [
    ("dev", {"kafka": {"topic": {"partitions": 7}}}, {"StatefulSet/kafka", "Job/kafka-topic-bootstrap"}),
    # Prod's four servers share the partitions: fewer partitions, fewer Kafka engine consumers per server.
    (
        "prod",
        {"kafka": {"topic": {"partitions": 7}}},
        {"StatefulSet/kafka", "Job/kafka-topic-bootstrap", "Job/clickhouse-schema-bootstrap"},
    ),
    (
        "dev",
        {"presto": {"coordinator": {"schedulesWork": False}}},
        {"Deployment/presto-coordinator", "Deployment/presto-worker"},
    ),
    ("prod", {"monitoring": {"runbookUrl": "https://wiki.example.com/runbook"}}, {"StatefulSet/prometheus"}),
    (
        "dev",
        {"monitoring": {"alertmanager": {"receivers": {"warning": "https://hooks.example.com/x"}}}},
        {"StatefulSet/alertmanager"},
    ),
]
"""(stack, one config change, the workloads that read a changed file): those and only those get a new pod template.

Dev's ClickHouse schema Job too, for the partition count: its SQL sizes the Kafka engine's consumers by it."""


def mounted(template: dict[str, Any]) -> set[str]:
    """kind/name of every ConfigMap and Secret a pod template mounts."""
    names: set[str] = set()
    for volume in template["spec"].get("volumes", []):
        if "configMap" in volume:
            names.add(f"ConfigMap/{volume['configMap']['name']}")
        if "secret" in volume:
            names.add(f"Secret/{volume['secret']['secretName']}")
        for source in volume.get("projected", {}).get("sources", []):
            names |= {
                f"{kind}/{source[key]['name']}"
                for key, kind in (("configMap", "ConfigMap"), ("secret", "Secret"))
                if key in source
            }
    return names


def changed_configs(before: Rendered, after: Rendered) -> set[str]:
    """kind/name of the ConfigMaps and Secrets whose content differs."""

    def content(stack: Rendered) -> dict[str, Any]:
        return {
            r.label: (r.inputs.get("data"), r.inputs.get("stringData"))
            for kind in ("ConfigMap", "Secret")
            for r in stack.of_kind(kind)
        }

    old, new = content(before), content(after)
    return {label for label in old if old[label] != new.get(label)}


def all_templates(stack: Rendered) -> dict[str, Any]:
    """Pod templates of every workload, Jobs included (a Job with a new template runs again)."""
    return {**pod_templates(stack), **{r.label: r.inputs["spec"]["template"] for r in stack.of_kind("Job")}}


@pytest.mark.parametrize(
    ("stack", "change", "expected"), CONFIG_CHANGES, ids=[f"{c[0]}-{c[1]}" for c in CONFIG_CHANGES]
)
def test_a_config_change_rolls_exactly_the_pods_that_read_it(
    stack: str, change: dict[str, Any], expected: set[str]
) -> None:
    before, after = rendered(stack), render(stack, overrides=change)
    old, new = all_templates(before), all_templates(after)
    rolled = {label for label in old if old[label] != new[label]}
    configs = changed_configs(before, after)
    if stack == "dev" and "kafka" in change:
        expected = expected | {"Job/clickhouse-schema-bootstrap"}
    assert rolled == expected, f"{change} changes {sorted(configs)} and rolls {sorted(rolled)}, not {sorted(expected)}"
    for label in rolled:
        assert mounted(new[label]) & configs, f"{label} rolls, yet mounts none of the changed {sorted(configs)}"
    for statefulset in before.of_kind("StatefulSet"):
        spec = after.named("StatefulSet", statefulset.inputs["metadata"]["name"]).inputs["spec"]
        changed = [field for field in IMMUTABLE if spec.get(field) != statefulset.inputs["spec"].get(field)]
        assert not changed, f"{statefulset.label}: {change} changes immutable {changed}, so Pulumi would replace it"


def test_a_new_clickhouse_password_rolls_clickhouse_through_a_secret_digest() -> None:
    password = "Abcdefghijklmnop-1234"
    before = rendered("prod")
    after = render("prod", secrets={"credentials": {"clickhouseAdminPassword": password}})
    old, new = all_templates(before), all_templates(after)
    rolled = {label for label in old if old[label] != new[label]}
    assert rolled == {"StatefulSet/clickhouse"}, f"the users file is a subPath mount: it rolls {sorted(rolled)}"
    statefulset = after.named("StatefulSet", "clickhouse")
    annotations = statefulset.inputs["spec"]["template"]["metadata"]["annotations"]
    assert (
        annotations["qestack.io/secret-config-sha256"]
        != before.named("StatefulSet", "clickhouse").inputs["spec"]["template"]["metadata"]["annotations"][
            "qestack.io/secret-config-sha256"
        ]
    )
    assert password not in str(statefulset.inputs), f"{statefulset.label} shows the password"
    # The mocks see a nested secret as its top-level property's (the digest is the only secret of this spec).
    assert statefulset.secret_paths == ["spec"], f"{statefulset.label}: the users file's digest must be a secret"
    assert "spec" not in before.named("StatefulSet", "kafka").secret_paths


ORPHAN = ("pulumi.com/deletionPropagationPolicy", "orphan")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_statefulset_orphans_its_pods_when_pulumi_replaces_it(stack: str) -> None:
    for statefulset in render(stack).of_kind("StatefulSet"):
        annotations = statefulset.inputs["metadata"].get("annotations") or {}
        assert annotations.get(ORPHAN[0]) == ORPHAN[1], f"{statefulset.label}: a replacement would delete its pods"


def claim_sizes(stack: Rendered) -> dict[str, str]:
    """Each patched claim's name and the size the patch asks for."""
    return {
        patch.inputs["metadata"]["name"]: patch.inputs["spec"]["resources"]["requests"]["storage"]
        for patch in stack.patches("PersistentVolumeClaim")
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_pod_of_a_statefulset_with_a_claim_template_has_its_claim_patched_to_the_template_size(
    stack: str,
) -> None:
    rendered_stack = render(stack)
    wanted = {}
    for statefulset in rendered_stack.of_kind("StatefulSet"):
        spec = statefulset.inputs["spec"]
        for template in spec.get("volumeClaimTemplates") or []:
            size = template["spec"]["resources"]["requests"]["storage"]
            name = statefulset.inputs["metadata"]["name"]
            wanted |= {f"{template['metadata']['name']}-{name}-{i}": size for i in range(int(spec["replicas"]))}
    assert wanted, "the stack has claim templates"
    assert claim_sizes(rendered_stack) == wanted
    for patch in rendered_stack.patches("PersistentVolumeClaim"):
        assert patch.inputs["metadata"]["namespace"] == rendered_stack.outputs["namespace"]


def test_a_larger_storage_size_grows_every_claim_and_changes_only_the_claim_template() -> None:
    before, after = render("prod"), render("prod", overrides={"kafka": {"storage": {"size": "150Gi"}}})
    grown = {name: size for name, size in claim_sizes(after).items() if claim_sizes(before)[name] != size}
    assert grown == {f"data-kafka-{i}": "150Gi" for i in range(3)}
    old, new = (s.named("StatefulSet", "kafka").inputs["spec"] for s in (before, after))
    assert old["template"] == new["template"], "a storage change rolls no pod"
    assert old["volumeClaimTemplates"] != new["volumeClaimTemplates"]
