"""verify's Chaos Mesh experiments against the CRD schemas (the subset verify uses, vendored in tests/support/data)."""

import json

import pytest

from components.chaos.api import PLURALS
from tests.support.chaos_schema import problems
from verify.failover import chaos as chaos
from verify.kube.labels import RUN_LABEL

RUN = "20261124021139-d7ebe1"
WORKER = {"app.kubernetes.io/name": "presto-worker", "app.kubernetes.io/instance": "dev"}
CLICKHOUSE = {"app.kubernetes.io/name": "clickhouse", "app.kubernetes.io/instance": "dev"}


EXPERIMENTS = {
    "pod-kill": chaos.pod_kill("verify-worker-kill", "query-engine", RUN, WORKER),
    "partition": chaos.partition("verify-presto-clickhouse", "query-engine", RUN, WORKER, CLICKHOUSE, "30s"),
    "cpu-stress": chaos.cpu_stress("verify-worker-cpu", "query-engine", RUN, WORKER, 2, 90, "2m"),
}


@pytest.mark.parametrize("manifest", EXPERIMENTS.values(), ids=EXPERIMENTS.keys())
def test_each_experiment_is_valid_for_its_crd_and_labelled_with_the_run(manifest: dict) -> None:
    assert problems(manifest) == []
    assert manifest["metadata"]["labels"][RUN_LABEL] == RUN
    assert manifest["spec"]["selector"]["namespaces"] == ["query-engine"], "only the stack's namespace"
    assert manifest["kind"] in PLURALS


@pytest.mark.parametrize(
    ("change", "found"),
    [
        (lambda m: m["spec"].update(action="pod-explode"), "'pod-explode' is not one of"),
        (lambda m: m["spec"].update(gracePeriods=0), "Additional properties are not allowed ('gracePeriods'"),
        (lambda m: m["spec"].update(duration="30 seconds"), "does not match"),
        (lambda m: m["metadata"].update(name="Verify_Kill"), "does not match"),
        (lambda m: m.update(status={}), "Additional properties are not allowed ('status'"),
    ],
    ids=["unknown action", "misspelt field", "bad duration", "bad name", "unknown top-level field"],
)
def test_the_schemas_are_strict(change, found: str) -> None:
    manifest = json.loads(json.dumps(EXPERIMENTS["pod-kill"]))
    change(manifest)
    assert any(found in problem for problem in problems(manifest)), problems(manifest)


def test_a_stress_load_is_a_percentage() -> None:
    with pytest.raises(ValueError, match="0 to 100"):
        chaos.cpu_stress("x", "query-engine", RUN, WORKER, 1, 150, "1m")
    broken = json.loads(json.dumps(EXPERIMENTS["cpu-stress"]))
    broken["spec"]["stressors"] = {}
    assert any("should be non-empty" in p or "does not have enough properties" in p for p in problems(broken))
