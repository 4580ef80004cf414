"""The schema Job's migrations on a real ClickHouse 18.16 fed by a real Kafka: an upgrade keeps every row.

A server deployed with 0001 alone ingests events, then the Job's script brings it to the newest migration
while events keep coming: every event before, during and after is there once, and the new column is filled.
A rerun applies nothing; an edited, removed or misnumbered migration is refused, naming the file.
(A server without a record the others have gets the migration again: on the 2 x 2 cluster, test_cluster_migrations.)
"""

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.data.clickhouse import config
from components.data.clickhouse.config import DATABASE, EVENTS_TABLE, MIGRATIONS_TABLE, migrations
from components.settings.model import Settings
from tests.support.events import produce_events
from tests.support.servers.clickhouse import ClickHouseNode, query, run_migrations, start_clickhouse
from tests.support.servers.kafka import KafkaNode, run_topic_bootstrap, start_kafka

SETTLE = 60.0
"""Seconds for produced events to be readable (18.16 flushes its Kafka blocks within a few seconds)."""
RECORDS = f"SELECT version, name, checksum, applied_at FROM {DATABASE}.{MIGRATIONS_TABLE} ORDER BY version"


@dataclass
class Upgraded:
    """A server upgraded from 0001 to the newest migration while ingesting, and what was produced around it."""

    node: ClickHouseNode
    kafka: KafkaNode
    settings: Settings
    acked: dict[str, set[str]]
    """Acknowledged event ids by run: before, during and after the upgrade."""
    output: str
    """What the upgrade's run of the script printed."""


def arrived(node: ClickHouseNode, run_id: str, acked: set[str]) -> None:
    """Wait until a run's acknowledged events are all readable, each once after deduplication."""
    table = f"{DATABASE}.{EVENTS_TABLE}"
    sql = f"SELECT count(), uniqExact(event_id) FROM {table} FINAL WHERE run_id = '{run_id}'"
    end = time.monotonic() + SETTLE
    while (found := query(node, sql)) != f"{len(acked)}\t{len(acked)}":
        if time.monotonic() > end:
            pytest.fail(f"run {run_id}: {found} (rows, ids) readable, {len(acked)} acknowledged")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory, dev_settings: Settings) -> Iterator[Upgraded]:
    """Its own Kafka (dev's, no login) and ClickHouse: 0001, events, then every migration while events arrive."""
    workdir = tmp_path_factory.mktemp("migrations")
    kafka = start_kafka(dev_settings.kafka, workdir / "kafka")
    node: ClickHouseNode | None = None
    try:
        run_topic_bootstrap(kafka)
        node = start_clickhouse(dev_settings, workdir / "clickhouse")
        first = run_migrations([node], dev_settings, kafka.bootstrap, upto=1)
        assert first.returncode == 0, first.stderr
        topic = dev_settings.kafka.topic.name
        acked = {"before": produce_events(kafka, topic, "before", [f"before-{i}" for i in range(300)])}
        arrived(node, "before", acked["before"])
        # Events keep coming while the view is replaced: produced in batches from another thread.
        during: set[str] = set()
        done = threading.Event()

        def keep_producing() -> None:
            batch = 0
            while not done.is_set():
                keys = [f"during-{batch}-{i}" for i in range(50)]
                during.update(produce_events(kafka, topic, "during", keys))
                batch += 1
                time.sleep(0.1)

        producer = threading.Thread(target=keep_producing)
        producer.start()
        try:
            time.sleep(1)
            upgrade = run_migrations([node], dev_settings, kafka.bootstrap)
            time.sleep(1)
        finally:
            done.set()
            producer.join()
        assert upgrade.returncode == 0, upgrade.stderr
        acked["during"] = during
        acked["after"] = produce_events(kafka, topic, "after", [f"after-{i}" for i in range(300)])
        for run_id, keys in acked.items():
            arrived(node, run_id, keys)
        yield Upgraded(node, kafka, dev_settings, acked, upgrade.stdout)
    finally:
        if node:
            node.server.stop()
        kafka.server.stop()


def test_an_upgrade_while_ingesting_keeps_every_event_once_and_adds_the_column(upgraded: Upgraded) -> None:
    node = upgraded.node
    newest = migrations(upgraded.settings, upgraded.kafka.bootstrap)[-1]
    assert f"migrate: applying {newest.name}" in upgraded.output
    assert "migrate: 1 applied" in upgraded.output, "only what 0001 lacked"
    assert len(upgraded.acked["during"]) >= 100, "events were produced while the view was replaced"
    table = f"{DATABASE}.{EVENTS_TABLE}"
    for run_id, keys in upgraded.acked.items():
        ids = query(node, f"SELECT event_id FROM {table} FINAL WHERE run_id = '{run_id}' ORDER BY event_id")
        assert set(ids.split()) == keys, f"run {run_id}: the events table holds exactly the acknowledged events"
    # Rows from before the migration read the column's default; rows after get it from the new view.
    wrong = f"SELECT count() FROM {table} WHERE payload_bytes != length(payload) OR payload_bytes = 0"
    assert query(node, wrong) == "0"
    assert "toUInt32(length(payload)) AS payload_bytes" in query(node, f"SHOW CREATE TABLE {DATABASE}.events_mv_0002")


def test_every_migration_is_recorded_with_its_checksum(upgraded: Upgraded) -> None:
    records = [line.split("\t")[:3] for line in query(upgraded.node, RECORDS).splitlines()]
    expected = migrations(upgraded.settings, upgraded.kafka.bootstrap)
    assert records == [[str(m.version), m.name, m.checksum] for m in expected]


def test_a_rerun_applies_nothing(upgraded: Upgraded) -> None:
    before = query(upgraded.node, RECORDS)
    rerun = run_migrations([upgraded.node], upgraded.settings, upgraded.kafka.bootstrap)
    assert rerun.returncode == 0, rerun.stderr
    assert "migrate: 0 applied" in rerun.stdout and "applying" not in rerun.stdout
    assert query(upgraded.node, RECORDS) == before


def edited_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the migrations the test may change, read in place of the shipped ones."""
    copy = tmp_path / "migrations"
    shutil.copytree(config.MIGRATIONS, copy)
    monkeypatch.setattr(config, "MIGRATIONS", copy)
    return copy


def test_an_edited_applied_migration_is_refused_naming_it(
    upgraded: Upgraded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = edited_sources(tmp_path, monkeypatch)
    initial = sources / "0001_initial.sql"
    initial.write_text(initial.read_text().replace("ORDER BY event_id;", "ORDER BY (event_id, run_id);"))
    (sources / "0003_later.sql").write_text("CREATE TABLE IF NOT EXISTS analytics.later (x UInt8) ENGINE = Log;\n")
    before = query(upgraded.node, RECORDS)
    refused = run_migrations([upgraded.node], upgraded.settings, upgraded.kafka.bootstrap)
    assert refused.returncode == 1
    assert "migrate: 0001_initial.sql was edited after it was applied" in refused.stderr
    assert query(upgraded.node, RECORDS) == before
    assert query(upgraded.node, f"EXISTS TABLE {DATABASE}.later") == "0", "nothing after it ran"


def test_a_removed_or_misnumbered_migration_is_refused_naming_it(
    upgraded: Upgraded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    removed = run_migrations([upgraded.node], upgraded.settings, upgraded.kafka.bootstrap, upto=1)
    assert removed.returncode == 1
    assert "0002_payload_bytes.sql was applied but is missing" in removed.stderr
    sources = edited_sources(tmp_path, monkeypatch)
    (sources / "0000_earlier.sql").write_text("SELECT 1;\n")
    misnumbered = run_migrations([upgraded.node], upgraded.settings, upgraded.kafka.bootstrap)
    assert misnumbered.returncode == 1
    assert "0000_earlier.sql is numbered below the newest applied migration" in misnumbered.stderr
