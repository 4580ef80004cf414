"""verify restore-drill's pure parts: the scratch pod, the standalone table, the choice of backups, the comparison."""

import kubernetes_validate
import pytest

from components import names
from components.platform.labels import selector_labels
from tests.support.backups import SECRETS, backup_overrides
from tests.support.netpol import Pod, allowed
from tests.support.render import KUBERNETES_VERSIONS, Rendered, render
from verify.kube.labels import RUN_LABEL
from verify.restore_drill.compare import Digest, differences
from verify.restore_drill.kube import scratch_pod
from verify.restore_drill.scratch import standalone

RUN = "r1a2b3"
REPLICATED_18_16 = (
    "CREATE TABLE analytics.events_local (event_id String, ingested_at DateTime DEFAULT now()) "
    "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/analytics/events_local', '{replica}') "
    "PARTITION BY toYYYYMM(event_time) ORDER BY event_id SETTINGS index_granularity = 8192"
)


def test_a_replicated_table_stands_alone_with_everything_else_kept() -> None:
    assert standalone(REPLICATED_18_16) == REPLICATED_18_16.replace(
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/analytics/events_local', '{replica}')",
        "ReplacingMergeTree",
    )


def test_a_version_column_after_the_keeper_path_is_kept() -> None:
    columns = "CREATE TABLE t (a String, v UInt64) ENGINE = "
    replicated = columns + "ReplicatedReplacingMergeTree('/p/{shard}', '{replica}', v) ORDER BY a"
    assert standalone(replicated) == columns + "ReplacingMergeTree(v) ORDER BY a"


def test_a_plain_table_is_left_as_it_is() -> None:
    plain = "CREATE TABLE t (a String) ENGINE = ReplacingMergeTree PARTITION BY a ORDER BY a"
    assert standalone(plain) == plain


def test_every_kind_of_difference_is_named_by_partition() -> None:
    restored = {"202611": Digest(10, 5), "202610": Digest(3, 1), "202609": Digest(2, 2), "202608": Digest(1, 1)}
    live = {"202611": Digest(10, 5), "202610": Digest(2, 1), "202609": Digest(2, 9), "202607": Digest(4, 4)}
    assert differences(restored, live) == [
        "partition 202607: 4 events live, none restored",
        "partition 202608: 1 events restored, none of them live",
        "partition 202609: 2 events on both sides, content checksums differ",
        "partition 202610: 3 events restored, 2 of them live",
    ]


@pytest.fixture
def pod(stack: Rendered) -> dict:
    return scratch_pod(stack.named("StatefulSet", names.CLICKHOUSE).inputs, RUN, 2)


def test_the_scratch_pod_validates_strictly(pod: dict) -> None:
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)


def test_the_scratch_pod_stands_alone_on_an_empty_dir_labelled_with_its_run(pod: dict) -> None:
    spec = pod["spec"]
    mounts = [mount for container in spec["containers"] for mount in container.get("volumeMounts", [])]
    assert all(mount.get("subPath") != names.CLICKHOUSE_CLUSTER_FILE for mount in mounts), "it must join no cluster"
    assert next(v for v in spec["volumes"] if v["name"] == "data")["emptyDir"]
    assert "affinity" not in spec and "topologySpreadConstraints" not in spec
    assert pod["metadata"]["labels"][RUN_LABEL] == RUN
    assert pod["metadata"]["name"].endswith("-2"), "the server's identity is its name's ordinal"


def test_no_service_of_the_stack_sends_traffic_to_the_scratch_pod(stack: Rendered, pod: dict) -> None:
    labels = pod["metadata"]["labels"]
    for service in stack.of_kind("Service"):
        selector = service.inputs["spec"].get("selector") or {}
        assert not selector or not selector.items() <= labels.items(), f"{service.label} selects the scratch pod"


@pytest.fixture(scope="module")
def backed_up() -> Rendered:
    """The prod stack (2 shards x 2 replicas) with backups on."""
    return render("prod", backup_overrides("prod"), SECRETS)


def test_a_backed_up_servers_scratch_pod_keeps_its_backup_sidecar_and_validates(backed_up: Rendered) -> None:
    pod = scratch_pod(backed_up.named("StatefulSet", names.CLICKHOUSE).inputs, RUN, 2)
    assert {container["name"] for container in pod["spec"]["containers"]} >= {"clickhouse", names.CLICKHOUSE_BACKUP}
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)


def test_the_scratch_pod_reaches_the_object_store_and_no_server(backed_up: Rendered) -> None:
    pod = scratch_pod(backed_up.named("StatefulSet", names.CLICKHOUSE).inputs, RUN, 0)
    scratch = Pod(pod["metadata"]["labels"], backed_up.outputs["namespace"])
    server = Pod(selector_labels(names.CLICKHOUSE, "server", backed_up.stack), backed_up.outputs["namespace"])
    store = Pod({}, None, "52.95.150.10")
    assert allowed(backed_up, scratch, store, 443), "the scratch server cannot download the backups"
    assert not allowed(backed_up, scratch, server, names.CLICKHOUSE_NATIVE_PORT)
    assert not allowed(backed_up, server, scratch, names.CLICKHOUSE_NATIVE_PORT)
