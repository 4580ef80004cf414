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
        elif (inner := nested_model(field.annotation)) is not None:
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
