"""Backups of the real ClickHouse to a real S3 server by the real backup tool, driven by the CronJob's own script.

ClickHouse 18.16 ingests from the real Kafka while the job backs it up; its data is dropped and restored from
the store, and every partition's count and content checksum equal the backup's rows as they were live.
Incrementals restore through their full backup, retention drops the oldest full one, and a missing, damaged or
failed backup fails with its reason.
"""

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from components.data.clickhouse.backup import FULL, INCREMENTAL, SHARD_PATH, Schedule
from components.data.clickhouse.config import DATABASE, LOCAL_TABLE
from components.observability.prometheus.alert_rules import RULE_FILE, rule_file, rule_tests
from components.observability.prometheus.config import StaticTarget, prometheus_config
from components.settings.model import Settings
from tests.support.backups import backup_settings
from tests.support.events import produce
from tests.support.restore_drill import LocalScratch
from tests.support.servers.backup import API_PASSWORD, BackupTool, run_job, start_backup_tool
from tests.support.servers.clickhouse import ClickHouseNode, query
from tests.support.servers.kafka import KafkaNode
from tests.support.servers.object_store import ObjectStoreNode, start_object_store
from tests.support.servers.prometheus import PROMTOOL, get_json, run_tool, start_prometheus
from tests.support.verify_harness import clickhouse_outputs
from verify.core.checks import CheckFailedError, Cleanup, Context, Figures
from verify.core.runner import Redactor, clean_up
from verify.core.targets import Targets, targets_from
from verify.restore_drill.checks import drill
from verify.restore_drill.plan import DrillPlan

BUCKET = "qestack-backups"
PREFIX = "dev"
SCHEDULE = Schedule(keep_full=1, full_every=2)
"""Every other run is full and one chain is kept: five runs show an incremental, and the oldest full deleted."""
TABLE = f"{DATABASE}.{LOCAL_TABLE}"
DAY_MS = 86_400_000
CONTENT = "event_id, run_id, kind, payload, produced_at_ms, event_time"
"""What a restored row must bring back (ingested_at is when the Kafka engine wrote it, not part of the event)."""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStoreNode]:
    """A real S3 server with the stack's backup bucket."""
    node = start_object_store(tmp_path_factory.mktemp("object-store"))
    try:
        node.create_bucket(BUCKET)
        yield node
    finally:
        node.server.stop()


@pytest.fixture(scope="module")
def tool(
    clickhouse_node: ClickHouseNode, pipeline: str, store: ObjectStoreNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackupTool]:
    """The backup tool as a server beside the session's ClickHouse, which ingests the events topic."""
    backup = start_backup_tool(
        clickhouse_node, store, BUCKET, SCHEDULE, tmp_path_factory.mktemp("clickhouse-backup"), PREFIX
    )
    yield backup
    backup.server.stop()


def spread_event(run_id: str) -> Callable[[int, str], str]:
    """Events whose times fall in three months, so the table has three partitions."""

    def value(index: int, key: str) -> str:
        produced = time.time_ns() // 10**6 - (index % 3) * 40 * DAY_MS
        return json.dumps(
            {"event_id": key, "run_id": run_id, "kind": "backup", "payload": f"p{index}", "produced_at_ms": produced}
        )

    return value


def ingest(kafka: KafkaNode, topic: str, node: ClickHouseNode, run_id: str, count: int) -> None:
    """Produce events and wait until ClickHouse holds every acknowledged one."""
    keys = [f"{run_id}-{i}" for i in range(count)]
    acked = produce(kafka.client_config(), topic, keys, value=spread_event(run_id))
    assert acked == set(keys)
    arrived(node, run_id, len(keys))


def arrived(node: ClickHouseNode, run_id: str, expected: int) -> None:
    """Wait (at most 60 s) until the table holds `expected` distinct events of a run."""
    deadline = time.monotonic() + 60
    count = -1
    while time.monotonic() < deadline:
        count = int(query(node, f"SELECT uniqExact(event_id) FROM {TABLE} WHERE run_id = '{run_id}'"))
        if count == expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"{count} of {expected} acknowledged events of {run_id} reached {TABLE} within 60 s")


class Producer(threading.Thread):
    """Events produced in small batches until stopped: ingestion going on while the job runs."""

    def __init__(self, kafka: KafkaNode, topic: str, run_id: str) -> None:
        super().__init__(daemon=True)
        self.kafka, self.topic, self.run_id = kafka, topic, run_id
        self.acked: set[str] = set()
        self.stopped = threading.Event()

    def run(self) -> None:
        """Send batches of 50 until stopped."""
        batch = 0
        while not self.stopped.is_set():
            keys = [f"{self.run_id}-{batch}-{i}" for i in range(50)]
            self.acked |= produce(self.kafka.client_config(), self.topic, keys, value=spread_event(self.run_id))
            batch += 1
            time.sleep(0.1)


def partitions(node: ClickHouseNode, table: str, where: str = "1") -> dict[str, tuple[int, int]]:
    """Per partition (month): distinct events and a checksum of their content."""
    sql = (
        f"SELECT toYYYYMM(event_time) AS month, count(), sum(cityHash64({CONTENT})) "
        f"FROM (SELECT DISTINCT {CONTENT} FROM {table} WHERE {where}) GROUP BY month ORDER BY month FORMAT TSV"
    )
    rows = [line.split("\t") for line in query(node, sql).splitlines()]
    return {month: (int(count), int(checksum)) for month, count, checksum in rows}


def drop_data(node: ClickHouseNode) -> None:
    """Drop every partition of the events, as a lost volume or a bad DELETE would."""
    months = query(
        node,
        f"SELECT DISTINCT partition FROM system.parts WHERE database = '{DATABASE}' "
        f"AND table = '{LOCAL_TABLE}' AND active",
    ).split()
    for month in months:
        query(node, f"ALTER TABLE {TABLE} DROP PARTITION {month}")
    assert query(node, f"SELECT count() FROM {TABLE}") == "0"


def forget_local(tool: BackupTool) -> None:
    """Delete the tool's local backups, as on a new volume: a restore then has only the store to read from."""
    for row in tool.get("/backup/list/local"):
        deleted = tool.cli("delete", "local", row["name"])
        assert deleted.returncode == 0, deleted.stdout[-2000:]


def restore(tool: BackupTool, name: str) -> None:
    """What docs/operations.md tells an operator to run in the sidecar: the events' data from the store."""
    forget_local(tool)
    restored = tool.cli("restore_remote", "--data", "--table", TABLE, name)
    assert restored.returncode == 0, f"restore_remote {name} failed:\n{restored.stdout[-3000:]}"


def snapshot(node: ClickHouseNode, name: str) -> str:
    """Copy the live events into a scratch table before the drop: what each restored row must equal."""
    table = f"default.{name}"
    query(node, f"DROP TABLE IF EXISTS {table}")
    query(node, f"CREATE TABLE {table} ENGINE = MergeTree ORDER BY event_id AS SELECT * FROM {TABLE}")
    return table


def assert_restored_as_live(node: ClickHouseNode, before: str) -> None:
    """Every partition of the restored table equals the same events' rows in the live table before the drop."""
    restored = partitions(node, TABLE)
    live = partitions(node, before, where=f"event_id IN (SELECT event_id FROM {TABLE})")
    assert restored, f"nothing restored into {TABLE}"
    assert restored == live, f"{TABLE} restored (month: count, checksum) {restored} != live {live}"


def job(tool: BackupTool) -> str:
    """Run the scheduled job once; the name of the backup it uploaded."""
    before = {row["name"] for row in tool.remote_backups()}
    done = run_job([[tool]], SCHEDULE)
    assert done.returncode == 0, f"the backup job failed:\n{done.stderr}"
    new = {row["name"] for row in tool.remote_backups()} - before
    assert len(new) == 1, f"one backup expected from one run, the store gained {new}:\n{done.stderr}"
    # Names carry the time to the second: the next run must not share this one's.
    time.sleep(1)
    return new.pop()


def test_a_backup_taken_while_ingesting_restores_to_its_point(
    tool: BackupTool, clickhouse_node: ClickHouseNode, kafka_node: KafkaNode, pipeline: str
) -> None:
    run_id = f"backup-{time.time_ns()}"
    ingest(kafka_node, pipeline, clickhouse_node, f"{run_id}-before", 600)
    at_start = partitions(clickhouse_node, TABLE)
    producer = Producer(kafka_node, pipeline, f"{run_id}-during")
    producer.start()
    try:
        name = job(tool)
    finally:
        producer.stopped.set()
        producer.join(60)
    assert name.endswith(f"-{FULL}"), f"the first backup of a shard must be full, got {name}"
    assert len(producer.acked) > 0, "no event was produced while the job ran"
    arrived(clickhouse_node, f"{run_id}-during", len(producer.acked))
    before = snapshot(clickhouse_node, "events_before_restore")
    drop_data(clickhouse_node)
    restore(tool, name)
    assert_restored_as_live(clickhouse_node, before)
    restored = partitions(clickhouse_node, TABLE)
    # The backup holds at least every event the table held when the job started.
    for month, (count, _) in at_start.items():
        assert restored[month][0] >= count, f"month {month}: {restored[month][0]} restored < {count} before the backup"
    metrics = tool.metrics()
    assert "clickhouse_backup_last_upload_status 1" in metrics
    assert "clickhouse_backup_last_create_status 1" in metrics


def test_incrementals_restore_through_their_full_and_retention_drops_the_oldest_full(
    tool: BackupTool, store: ObjectStoreNode, clickhouse_node: ClickHouseNode, kafka_node: KafkaNode, pipeline: str
) -> None:
    names: list[str] = [row["name"] for row in tool.remote_backups()]
    assert names and names[-1].endswith(f"-{FULL}"), f"the first test's full backup is expected first: {names}"
    run_id = f"incremental-{time.time_ns()}"
    for run in range(4):
        ingest(kafka_node, pipeline, clickhouse_node, f"{run_id}-{run}", 100)
        names.append(job(tool))
    kinds = [name.rsplit("-", 1)[1] for name in names]
    assert kinds == [FULL, INCREMENTAL, FULL, INCREMENTAL, FULL], names
    kept = {row["name"]: row["required"] for row in tool.remote_backups()}
    # keep_full 1: the newest chain and the newest full; the chain before it goes once a newer full exists.
    assert kept == {names[2]: "", names[3]: names[2], names[4]: ""}, kept
    prefix = store.root / BUCKET / PREFIX / SHARD_PATH.format(shard=1)
    assert sorted(path.name for path in prefix.iterdir()) == sorted(kept), "the store holds other backups than listed"
    # Restore from the incremental: the tool fetches the full backup it needs as well.
    before = snapshot(clickhouse_node, "events_before_incremental")
    drop_data(clickhouse_node)
    restore(tool, names[3])
    restored_ids = query(clickhouse_node, f"SELECT uniqExact(event_id) FROM {TABLE} WHERE run_id LIKE '{run_id}-%'")
    # It was taken after the first three of the four runs' events.
    assert int(restored_ids) == 300, f"the incremental brought back {restored_ids} of the 300 events taken before it"
    assert_restored_as_live(clickhouse_node, before)
    # Put the newest state back for whoever reads the table next.
    drop_data(clickhouse_node)
    restore(tool, names[4])


@pytest.fixture(scope="module")
def live(clickhouse_node: ClickHouseNode, kafka_node: KafkaNode, dev_settings: Settings) -> Targets:
    """Verify's targets for the session's ClickHouse: the live site the drill compares with."""
    return targets_from("test", clickhouse_outputs(dev_settings, clickhouse_node, kafka_node))


def drill_on(store: ObjectStoreNode, settings: Settings, targets: Targets, workdir: Path, prefix: str) -> Figures:
    """Verify restore-drill's drill in process, its scratch servers on loopback; its figures after its cleanup ran."""
    context = Context("drill", targets, Cleanup())
    scratch = LocalScratch(settings, store, BUCKET, prefix, SCHEDULE, workdir)
    try:
        return drill(context, scratch, DrillPlan(start_timeout=120, download_timeout=120, restore_timeout=120), 1)
    finally:
        assert clean_up(context.cleanup, Redactor([])).status == "passed"


def test_the_restore_drill_restores_the_newest_backup_on_a_scratch_server_as_it_is_live(
    tool: BackupTool,
    store: ObjectStoreNode,
    live: Targets,
    clickhouse_node: ClickHouseNode,
    kafka_node: KafkaNode,
    pipeline: str,
    dev_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    newest = tool.remote_backups()[-1]["name"]  # the full backup the live table was last restored from
    run_id = f"drill-{time.time_ns()}"
    ingest(kafka_node, pipeline, clickhouse_node, f"{run_id}-after", 100)  # live moves on past the backup
    figures = drill_on(store, dev_settings, live, tmp_path_factory.mktemp("drill"), PREFIX)
    print(f"restore drill: {figures}")
    assert figures["backups"] == f"shard 1: {newest}"
    assert figures["partitions_different"] == 0 and figures["partitions"] == 3
    held = int(
        query(clickhouse_node, f"SELECT uniqExact(event_id) FROM {TABLE} WHERE run_id NOT LIKE '{run_id}-after%'")
    )
    assert figures["events_restored"] == figures["events_found_live"] == held, "the backup holds what live held then"
    assert 0 < float(figures["rpo_s"]) < 600 and float(figures["rto_s"]) > 0


def test_the_restore_drill_fails_when_the_store_holds_no_backup(
    store: ObjectStoreNode, live: Targets, dev_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with pytest.raises(CheckFailedError, match="shard 1: no backup in the object store"):
        drill_on(store, dev_settings, live, tmp_path_factory.mktemp("drill-empty"), "no-such-stack")


def test_a_missing_backup_fails_with_its_name(tool: BackupTool) -> None:
    missing = "events-20000101T000000Z-full"
    done = tool.cli("restore_remote", "--data", "--table", TABLE, missing)
    assert done.returncode != 0
    assert f"'{missing}' is not found on remote storage" in done.stdout, done.stdout[-2000:]


def test_a_damaged_backup_fails_with_the_damage(tool: BackupTool, store: ObjectStoreNode) -> None:
    name = tool.remote_backups()[-1]["name"]
    archives = [path for path in store.objects(BUCKET) if name in path.parts and path.suffix == ".tar"]
    assert archives, f"no data archive of {name} in the bucket"
    # Half of one archive lost, as a torn write or bit rot would leave it.
    data = archives[0].read_bytes()
    archives[0].write_bytes(data[: len(data) // 2])
    # The archive holds one part (disk_part.tar); v1.6.2 unpacks what is left of it without a word, and the
    # server refuses to attach the incomplete part, naming it.
    part = archives[0].stem.split("_", 1)[1]
    forget_local(tool)
    done = tool.cli("restore_remote", "--data", "--table", TABLE, name)
    assert done.returncode != 0, "a damaged backup was restored"
    errors = [line for line in done.stdout.splitlines() if " error " in line]
    assert errors and f"can't attach partitions for table '{TABLE}'" in errors[-1], done.stdout[-2000:]
    assert f"detached/{part}/" in errors[-1], errors[-1]


def test_a_failed_backup_fails_the_job_with_the_tools_error_and_shows_in_its_metrics(
    clickhouse_node: ClickHouseNode, pipeline: str, store: ObjectStoreNode, tmp_path: Path
) -> None:
    elsewhere = start_backup_tool(clickhouse_node, store, "no-such-bucket", SCHEDULE, tmp_path, PREFIX)
    try:
        done = run_job([[elsewhere]], SCHEDULE)
        assert done.returncode == 1
        assert "shard 1" in done.stderr and "NoSuchBucket: The specified bucket does not exist" in done.stderr
        assert "failed on shard(s): 1" in done.stderr
        # A create that fails (its name is taken) sets the status the ClickHouseBackupFailed alert reads.
        assert elsewhere.create("events-20000101T000000Z-full")["status"] == "success"
        refused = elsewhere.create("events-20000101T000000Z-full")
        assert refused["status"] == "error" and "already exists" in refused["error"], refused
        assert "clickhouse_backup_last_create_status 0" in elsewhere.metrics()
        forget_local(elsewhere)
    finally:
        elsewhere.server.stop()


def test_promtool_checks_the_backup_alerts_and_their_cases(tmp_path: Path) -> None:
    # 2 h rather than a day: promtool steps through every minute of the missing case.
    settings = backup_settings("prod", missing_after="2h")
    (tmp_path / RULE_FILE).write_text(rule_file(settings))
    (tmp_path / "tests.yml").write_text(rule_tests(settings))
    tested = run_tool(PROMTOOL, "test", "rules", "tests.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "ClickHouseBackupMissing" in (tmp_path / "tests.yml").read_text()


def test_prometheus_scrapes_the_tool_with_the_api_login(tool: BackupTool, tmp_path: Path) -> None:
    settings = backup_settings("dev")
    target = StaticTarget(f"127.0.0.1:{tool.port}", "clickhouse-0", "server")
    config = yaml.safe_load(
        prometheus_config(settings, rule_files=[], alertmanagers=[], static={"clickhouse-backup": [target]})
    )
    # The password where the pod mounts it from the clickhouse-backup Secret: here, a file of the test's.
    (tmp_path / "api-password").write_text(API_PASSWORD)
    job = next(job for job in config["scrape_configs"] if job["job_name"] == "clickhouse-backup")
    job["basic_auth"]["password_file"] = str(tmp_path / "api-password")
    config["global"]["scrape_interval"] = "1s"
    prometheus = start_prometheus(yaml.safe_dump(config), {}, tmp_path / "prometheus")
    try:
        deadline = time.monotonic() + 60
        result: list = []
        while time.monotonic() < deadline and not result:
            url = f"http://127.0.0.1:{prometheus.port}/api/v1/query?query=clickhouse_backup_last_upload_status"
            result = get_json(url)["data"]["result"]
            time.sleep(0.5)
        assert result, f"Prometheus scraped no backup status from the tool within 60 s:\n{prometheus.tail()}"
        assert result[0]["metric"]["job"] == "clickhouse-backup" and result[0]["value"][1] == "1"
    finally:
        prometheus.stop()


def test_the_restore_drill_fails_on_a_damaged_backup_with_the_servers_reason(
    store: ObjectStoreNode, live: Targets, dev_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    reason = f"clickhouse-backup restore .* failed: .*can't attach partitions for table '{TABLE}'"
    with pytest.raises(CheckFailedError, match=reason):
        drill_on(store, dev_settings, live, tmp_path_factory.mktemp("drill-damaged"), PREFIX)
