"""The Chaos Mesh component under mocks: the official chart at a pinned version, faults only in our namespace."""

import pytest

from components.chaos.component import CHART, INJECT_ANNOTATION, REPOSITORY
from tests.support.render import Rendered, render

CHART_TYPE = "kubernetes:helm.sh/v4:Chart"


def charts(stack: Rendered) -> list:
    """The Helm charts the stack installs."""
    return [r for r in stack.resources if r.type == CHART_TYPE]


def namespace_annotations(stack: Rendered) -> dict:
    """The annotations of the stack's own namespace."""
    (ours,) = [n for n in stack.of_kind("Namespace") if n.inputs["metadata"]["name"] == stack.outputs["namespace"]]
    return ours.inputs["metadata"].get("annotations") or {}


def test_dev_installs_the_pinned_chart_with_namespace_filtering_and_no_node_port(
    rendered_stacks: dict[str, Rendered],
) -> None:
    dev = rendered_stacks["dev"]
    (chart,) = charts(dev)
    inputs = chart.inputs
    assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]["repo"]) == (CHART, "2.7.2", REPOSITORY)
    values = inputs["values"]
    assert values["images"]["tag"] == "v2.7.2", "the images follow the chart's version, never latest"
    assert values["controllerManager"]["enableFilterNamespace"] is True
    assert values["chaosDaemon"] == {"runtime": "docker", "socketPath": "/var/run/docker.sock"}  # minikube's
    assert values["dashboard"]["service"]["type"] == "ClusterIP" and values["dashboard"]["securityMode"] is True
    assert inputs["namespace"] == "chaos-mesh"
    (chaos,) = [n for n in dev.of_kind("Namespace") if n.inputs["metadata"]["name"] == "chaos-mesh"]
    assert chaos.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert namespace_annotations(dev) == {INJECT_ANNOTATION: "enabled"}, "our namespace is the one faults may hit"


def test_prod_has_chaos_off_nothing_installed_and_its_namespace_closed(rendered_stacks: dict[str, Rendered]) -> None:
    prod = rendered_stacks["prod"]
    assert not charts(prod)
    assert [n.inputs["metadata"]["name"] for n in prod.of_kind("Namespace")] == [prod.outputs["namespace"]]
    assert INJECT_ANNOTATION not in namespace_annotations(prod)


@pytest.mark.parametrize(
    ("chaos", "installed", "daemon"),
    [
        ({"mode": "existing"}, False, None),
        (
            {"runtime": "containerd", "socketPath": "/run/containerd/containerd.sock"},
            True,
            {"runtime": "containerd", "socketPath": "/run/containerd/containerd.sock"},
        ),
    ],
    ids=["existing", "containerd"],
)
def test_an_existing_installation_or_another_runtime_is_a_setting(chaos: dict, installed: bool, daemon: dict) -> None:
    stack = render("dev", overrides={"chaos": chaos})
    assert bool(charts(stack)) == installed
    assert namespace_annotations(stack) == {INJECT_ANNOTATION: "enabled"}
    if daemon:
        assert charts(stack)[0].inputs["values"]["chaosDaemon"] == daemon
