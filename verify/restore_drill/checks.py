"""The drill: newest backup of each shard onto a scratch server, compared with live; RPO and RTO measured."""

import time
from datetime import UTC, datetime

from components.data.clickhouse.config import DATABASE, LOCAL_TABLE
from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.targets import Targets
from verify.restore_drill.api import RemoteBackup
from verify.restore_drill.compare import (
    IDS_SQL,
    LIVE_SQL,
    NEWEST_SQL,
    RESTORED_IDS,
    RESTORED_SQL,
    Digest,
    differences,
    digests,
)
from verify.restore_drill.plan import DrillPlan
from verify.restore_drill.scratch import ScratchServer, ScratchSite, standalone
from verify.smoke.clickhouse import client

TABLE = f"{DATABASE}.{LOCAL_TABLE}"


def newest(backups: list[RemoteBackup]) -> RemoteBackup | None:
    """The newest backup, full or incremental (a download fetches the full one an incremental needs)."""
    return max(backups, key=lambda backup: backup.created, default=None)


def restore_shard(
    context: Context, site: ScratchSite, shard: int, create_table: str, plan: DrillPlan
) -> tuple[ScratchServer, RemoteBackup, float, float]:
    """A shard's newest backup on a scratch server of its own: server, backup, seconds to download, to restore."""
    context.progress(f"shard {shard}: starting its scratch server")
    server = site.start(context, shard, plan.start_timeout)
    server.query(f"CREATE DATABASE IF NOT EXISTS {DATABASE}", plan.query_timeout)
    server.query(create_table, plan.query_timeout)
    backups = server.api.remote_backups()
    chosen = newest(backups)
    if chosen is None:
        raise CheckFailedError(f"shard {shard}: no backup in the object store")
    context.progress(f"shard {shard}: downloading {chosen.name}")
    download_s = server.api.download(chosen.name, plan.download_timeout)
    context.progress(f"shard {shard}: restoring {chosen.name}")
    restore_s = server.api.restore_data(chosen.name, TABLE, plan.restore_timeout)
    return server, chosen, download_s, restore_s


def compare(servers: list[ScratchServer], targets: Targets, plan: DrillPlan) -> tuple[Figures, list[str]]:
    """Every shard's restored events against the same events live, partition by partition."""
    restored: dict[str, Digest] = {}
    ids: list[dict[str, str]] = []
    for server in servers:
        for partition, digest in digests(server.query(RESTORED_SQL, plan.query_timeout)).items():
            mine = restored.get(partition, Digest(events=0, checksum=0))
            restored[partition] = Digest(events=mine.events + digest.events, checksum=mine.checksum + digest.checksum)
        ids += [{"event_id": row[0]} for row in server.query(IDS_SQL, plan.query_timeout)]
    live = digests(
        client(targets, plan.query_timeout).execute(
            LIVE_SQL,
            external_tables=[{"name": RESTORED_IDS, "structure": [("event_id", "String")], "data": ids}],
        )
    )
    figures: Figures = {
        "partitions": len(restored),
        "events_restored": sum(digest.events for digest in restored.values()),
        "events_found_live": sum(digest.events for digest in live.values()),
    }
    return figures, differences(restored, live)


def drill(context: Context, site: ScratchSite, plan: DrillPlan, shards: int) -> Figures:
    """Restore every shard, answer, compare; RPO is the oldest shard's newest backup's age, RTO the time to answer.

    Shards are restored one after the other, so the RTO is what a restore one shard at a time takes.
    """
    began, started = time.monotonic(), datetime.now(UTC)
    ((live_table,),) = client(context.targets, plan.query_timeout).execute(f"SHOW CREATE TABLE {TABLE}")
    servers, chosen, download_s, restore_s = [], [], 0.0, 0.0
    for shard in range(1, shards + 1):
        server, backup, downloaded, restored = restore_shard(context, site, shard, standalone(live_table), plan)
        servers.append(server)
        chosen.append(backup)
        download_s, restore_s = download_s + downloaded, restore_s + restored
    answered = [server.query(NEWEST_SQL, plan.query_timeout)[0] for server in servers]
    rpo = (started - min(backup.created for backup in chosen)).total_seconds()
    figures: Figures = {
        "backups": ", ".join(f"shard {shard}: {backup.name}" for shard, backup in enumerate(chosen, start=1)),
        "backup_bytes": sum(backup.size_bytes for backup in chosen),
        "rpo_s": round(rpo, 1),
        "rto_s": round(time.monotonic() - began, 1),
        "newest_event": str(max(newest_event for newest_event, _ in answered)),
        "download_s": round(download_s, 1),
        "restore_s": round(restore_s, 1),
    }
    context.progress(f"comparing {sum(events for _, events in answered)} restored events with live")
    compared, different = compare(servers, context.targets, plan)
    figures |= compared | {"partitions_different": len(different)}
    if different:
        raise CheckFailedError("the restore differs from live: " + "; ".join(different[:5]), figures)
    if rpo > plan.max_rpo:
        raise CheckFailedError(f"the newest backup is {rpo:.0f}s old, over the {plan.max_rpo:.0f}s allowed", figures)
    return figures


def checks(targets: Targets, site: ScratchSite, plan: DrillPlan) -> list[Check]:
    """The one check of `verify restore-drill`."""
    shards = targets.expected.clickhouse_shards
    return [
        Check(
            name="clickhouse.restore-drill",
            scenario="restore-drill",
            target="the object store, through scratch servers",
            probe=lambda context: drill(context, site, plan, shards),
            deadline=plan.deadline(shards),
            tags=frozenset({"destructive", "clickhouse"}),
        )
    ]
