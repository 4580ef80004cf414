"""Print ClickHouse backup and restore throughput on the real servers; printed, never asserted.

The events table (the stack's schema, 18.16's form) holds --rows rows; the real backup tool (clickhouse-backup
v1.6.2) beside the real ClickHouse backs it up to the real S3 server (versitygw) with the CronJob's own script
(a full backup: create, then upload), and restores it from the bucket into the emptied table. Each is given in
MB/s (the table's bytes on disk) and rows/s, and as a ratio to ClickHouse's own copy of the same table
(INSERT INTO a twin SELECT * FROM it) measured in the same run: how far from the server's own speed moving the
same parts through the tool and the store is. Then verify restore-drill's drill restores that backup onto a
scratch server of its own and compares it with the table: its RPO and RTO. Each starts once the machine is quiet
(bench/machine.py).

Run after scripts/test has installed the servers: .venv/bin/python bench/backup.py [--rows N]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from bench.machine import measured, wait_quiet  # noqa: E402
from components.data.clickhouse.backup import Schedule  # noqa: E402
from components.data.clickhouse.config import DATABASE, LOCAL_TABLE, QUEUE_TABLE, VIEWS  # noqa: E402
from components.settings.model import Settings  # noqa: E402
from components.settings.parse import parse_settings  # noqa: E402
from components.settings.stack_files import stack_config  # noqa: E402
from tests.support.restore_drill import LocalScratch  # noqa: E402
from tests.support.servers.backup import BackupTool, run_job, start_backup_tool  # noqa: E402
from tests.support.servers.clickhouse import ClickHouseNode, apply_schema, query, start_clickhouse  # noqa: E402
from tests.support.servers.object_store import ObjectStoreNode, start_object_store  # noqa: E402
from tests.support.verify_harness import outputs_document  # noqa: E402
from verify.core.checks import Cleanup, Context, Figures  # noqa: E402
from verify.core.runner import Redactor, clean_up  # noqa: E402
from verify.core.targets import targets_from  # noqa: E402
from verify.restore_drill.checks import drill  # noqa: E402
from verify.restore_drill.plan import DrillPlan  # noqa: E402

TABLE = f"{DATABASE}.{LOCAL_TABLE}"
TWIN = "default.events_copy"
BUCKET = "bench-backups"
PREFIX = "bench"
CLOSED = "http://127.0.0.1:9"
SCHEDULE = Schedule(keep_full=2, full_every=1)
"""Every run full: the figure is a whole table's."""
MB = 1_000_000


def create_table(node: ClickHouseNode) -> None:
    """The stack's events table, migrated as the schema Job does, less its Kafka table and views (rows are inserted)."""
    settings = parse_settings("dev", stack_config("dev"))
    apply_schema([node], settings, "127.0.0.1:9")
    for table in (*VIEWS, QUEUE_TABLE):
        query(node, f"DROP TABLE IF EXISTS {DATABASE}.{table}")


def fill(node: ClickHouseNode, rows: int) -> None:
    """Rows of the events' shape over four months, merged to one part per partition (as an old table is)."""
    query(
        node,
        f"INSERT INTO {TABLE} (event_id, run_id, kind, payload, produced_at_ms) "
        f"SELECT concat('event-', toString(number)), 'bench', 'bench', "
        f"concat('payload-', toString(cityHash64(number)), '-', toString(number % 977)), "
        f"1700000000000 + number * intDiv(120 * 86400000, {rows}) FROM numbers({rows})",
    )
    query(node, f"OPTIMIZE TABLE {TABLE} FINAL")


def table_bytes(node: ClickHouseNode, table: str) -> int:
    """Bytes on disk of a table's active parts."""
    database, name = table.split(".")
    sql = f"SELECT sum(bytes) FROM system.parts WHERE active AND database = '{database}' AND table = '{name}'"
    return int(query(node, sql))


def timed_copy(node: ClickHouseNode) -> float:
    """Seconds of ClickHouse's own copy of the table into a twin of it."""
    query(node, f"DROP TABLE IF EXISTS {TWIN}")
    query(node, f"CREATE TABLE {TWIN} AS {TABLE}")
    began = time.monotonic()
    query(node, f"INSERT INTO {TWIN} SELECT * FROM {TABLE}")
    return time.monotonic() - began


def timed_backup(tool: BackupTool) -> tuple[float, float, str]:
    """Seconds of one run of the scheduled job, and of the tool's own create and upload in it; the backup's name.

    The job polls the tool every 2 s, so its time exceeds the tool's by up to that per step.
    """
    began = time.monotonic()
    done = run_job([[tool]], SCHEDULE)
    seconds = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"the backup job failed:\n{done.stderr}")
    durations = {
        name: float(value)
        for name, value in (
            row.split() for row in tool.metrics().splitlines() if row.startswith("clickhouse_backup_last_")
        )
        if name.endswith("_duration")
    }
    own = (
        durations["clickhouse_backup_last_create_duration"] + durations["clickhouse_backup_last_upload_duration"]
    ) / 1e9
    return seconds, own, tool.remote_backups()[-1]["name"]


def timed_restore(node: ClickHouseNode, tool: BackupTool, name: str, rows: int) -> float:
    """Seconds to restore the table's data from the bucket into the emptied table (download and attach)."""
    for month in query(
        node,
        f"SELECT DISTINCT partition FROM system.parts WHERE active AND database = "
        f"'{DATABASE}' AND table = '{LOCAL_TABLE}'",
    ).split():
        query(node, f"ALTER TABLE {TABLE} DROP PARTITION {month}")
    if query(node, f"SELECT count() FROM {TABLE}") != "0":
        raise SystemExit(f"{TABLE} still has rows after its partitions were dropped")
    for row in tool.get("/backup/list/local"):
        tool.cli("delete", "local", row["name"])
    if tool.get("/backup/list/local"):
        raise SystemExit("a local backup is left: the restore would not read the bucket")
    began = time.monotonic()
    done = tool.cli("restore_remote", "--data", "--table", TABLE, name)
    seconds = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"the restore failed:\n{done.stdout[-3000:]}")
    restored = int(query(node, f"SELECT count() FROM {TABLE}"))
    if restored != rows:
        raise SystemExit(f"the restore brought back {restored} of {rows} rows")
    return seconds


def timed_drill(settings: Settings, node: ClickHouseNode, store: ObjectStoreNode, workdir: Path) -> Figures:
    """Verify restore-drill's figures: the newest backup onto a scratch server of its own, compared with the table."""
    targets = targets_from("bench", outputs_document(settings, None, node, None, "events", CLOSED, CLOSED))
    context = Context("bench", targets, Cleanup())
    try:
        return drill(context, LocalScratch(settings, store, BUCKET, PREFIX, SCHEDULE, workdir), DrillPlan(), 1)
    finally:
        clean_up(context.cleanup, Redactor([]))


def line(name: str, seconds: float, size: int, rows: int, peer: float) -> str:
    """`name  MB/s  rows/s  (s), ratio to the copy`."""
    return (
        f"  {name:9} {size / MB / seconds:8.1f} MB/s {rows / seconds:12,.0f} rows/s ({seconds:6.2f} s), "
        f"ratio to ClickHouse's copy {peer / seconds:.2f}"
    )


def main() -> None:
    """Start the servers, measure, print, stop."""
    parser = argparse.ArgumentParser(description="ClickHouse backup and restore throughput on the real servers")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the events table")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    settings = parse_settings("dev", stack_config("dev"))
    store = start_object_store(work / "store")
    servers = [store.server]
    try:
        store.create_bucket(BUCKET)
        node = start_clickhouse(settings, work / "clickhouse")
        servers.append(node.server)
        create_table(node)
        fill(node, options.rows)
        tool = start_backup_tool(node, store, BUCKET, SCHEDULE, work / "tool", PREFIX)
        servers.append(tool.server)
        size = table_bytes(node, TABLE)
        print(
            f"{options.rows:,} rows, {size / MB:.1f} MB on disk; ClickHouse 18.16, clickhouse-backup 1.6.2, versitygw"
        )
        wait_quiet()
        with measured("ClickHouse's copy"):
            copy = timed_copy(node)
        query(node, f"DROP TABLE {TWIN}")
        wait_quiet()
        with measured("the backup"):
            backup, own, name = timed_backup(tool)
        wait_quiet()
        with measured("the restore"):
            restore = timed_restore(node, tool, name, options.rows)
        print(line("copy", copy, size, options.rows, copy))
        print(line("backup", backup, size, options.rows, copy) + " (the CronJob's script)")
        print(line("  tool", own, size, options.rows, copy) + " (its create and upload, from its metrics)")
        print(line("restore", restore, size, options.rows, copy))
        wait_quiet()
        with measured("the restore drill"):
            drilled = timed_drill(settings, node, store, work / "drill")
        print(
            f"  drill     RPO {drilled['rpo_s']} s (the backup's age), RTO {drilled['rto_s']} s to queries on a "
            f"scratch server ({drilled['download_s']} s download, {drilled['restore_s']} s restore), "
            f"{drilled['events_restored']:,} events equal to live in {drilled['partitions']} partitions; "
            f"ratio of its restore to the copy {copy / float(drilled['restore_s']):.2f}"
        )
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    main()
