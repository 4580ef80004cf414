"""The loop's detectors can fail: a broken program shows a replaced StatefulSet and a non-idempotent re-run.

A tiny inline program (its own project and namespace) deployed by the real engine on the local control plane:
a StatefulSet whose volumeClaimTemplates carry a label with a version (the defect class the style guide bans),
and an annotation that changes on every run. The same assertions the deploy loop uses must refuse both.
"""

from collections.abc import Iterator

import pulumi_kubernetes as k8s
import pytest

from tests.support.engine import Backend, EngineStack, assert_no_changes, assert_no_replacement, cluster

NAMESPACE = "engine-defects"
LABELS = {"app.kubernetes.io/name": "versioned"}
release = {"version": "1.0.0", "run": 0}
"""What the program declares: the version in the claim template, and a counter standing for a timestamp."""


def broken() -> None:
    """A StatefulSet with a versioned label in an immutable field, and an annotation that changes every run."""
    release["run"] += 1
    namespace = k8s.core.v1.Namespace("namespace", metadata={"name": NAMESPACE})
    k8s.apps.v1.StatefulSet(
        "versioned",
        metadata={
            "name": "versioned",
            "namespace": namespace.metadata.name,
            "annotations": {"example.com/deployed-run": str(release["run"])},
        },
        spec={
            "service_name": "versioned",
            "replicas": 1,
            "selector": {"match_labels": LABELS},
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
            },
            "volume_claim_templates": [
                {
                    "metadata": {"name": "data", "labels": {**LABELS, "app.kubernetes.io/version": release["version"]}},
                    "spec": {
                        "access_modes": ["ReadWriteOnce"],
                        "storage_class_name": "standard",
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    )


@pytest.fixture(scope="module")
def defective(control_plane: Backend) -> Iterator[EngineStack]:
    """The broken program deployed once at version 1.0.0; destroyed at the end."""
    cluster("volumes")
    stack = control_plane.stack("defects", "dev", program=broken, project="engine-defects")
    first = stack.up()
    assert first.succeeded, first.describe()
    yield stack
    stack.destroy()
    stack.remove()
    cluster("volumes")


def test_a_re_run_of_a_changing_program_is_caught_as_not_idempotent(defective: EngineStack) -> None:
    preview = defective.preview(expect_no_changes=True)
    with pytest.raises(AssertionError, match="not idempotent"):
        assert_no_changes(preview)


def test_a_version_in_a_claim_template_is_caught_as_a_replaced_statefulset(defective: EngineStack) -> None:
    release["version"] = "1.0.1"
    # The preview itself may fail too: the provider's server-side dry run of the replacement is refused
    # ("updates to statefulset spec for fields other than ... are forbidden"). The steps show it either way.
    preview = defective.preview()
    with pytest.raises(AssertionError, match=r"replace StatefulSet versioned \(.*volumeClaimTemplates"):
        assert_no_replacement(preview)
