"""The drill: newest backup of each shard onto a scratch server, compared with live; RPO and RTO measured."""

import time
from collections.abc import Callable
from datetime import UTC, datetime

from components.data.clickhouse.config import DATABASE, LOCAL_TABLE
from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.targets import Targets
from verify.restore_drill.api import RemoteBackup
from verify.restore_drill.compare import IDS_SQL, LIVE_SQL, NEWEST_SQL, RESTORED_IDS, RESTORED_SQL, differences, digests
from verify.restore_drill.plan import DrillPlan
from verify.restore_drill.scratch import ScratchServer, ScratchSite, standalone
from verify.smoke.clickhouse import client

TABLE = f"{DATABASE}.{LOCAL_TABLE}"


def newest_per_shard(backups: list[RemoteBackup], shard_of: Callable[[str], str | None]) -> list[RemoteBackup]:
    """The newest backup of each shard (names that name no shard are someone else's, and left alone)."""
    newest: dict[str, RemoteBackup] = {}
    for backup in backups:
        shard = shard_of(backup.name)
        if shard is not None and (shard not in newest or backup.created > newest[shard].created):
            newest[shard] = backup
    return [newest[shard] for shard in sorted(newest)]


def restore(server: ScratchServer, chosen: list[RemoteBackup], plan: DrillPlan, context: Context) -> Figures:
    """Download and attach each chosen backup's events on the scratch server; the seconds each step took."""
    download_s = restore_s = 0.0
    for backup in chosen:
        context.progress(f"downloading {backup.name}")
        download_s += server.api.download(backup.name, plan.download_timeout)
        context.progress(f"restoring {backup.name}")
        restore_s += server.api.restore_data(backup.name, TABLE, plan.restore_timeout)
    return {"download_s": round(download_s, 1), "restore_s": round(restore_s, 1)}


def compare(server: ScratchServer, targets: Targets, plan: DrillPlan) -> tuple[Figures, list[str]]:
    """The restored events against the same events live, partition by partition."""
    restored = digests(server.query(RESTORED_SQL, plan.query_timeout))
    ids = [{"event_id": row[0]} for row in server.query(IDS_SQL, plan.query_timeout)]
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


def drill(
    context: Context, site: ScratchSite, plan: DrillPlan, shard_of: Callable[[str], str | None], shards: int
) -> Figures:
    """Restore, answer, compare; RPO is the age of the oldest newest-backup, RTO the time to answer on it."""
    began, started = time.monotonic(), datetime.now(UTC)
    context.progress("starting the scratch server")
    server = site.start(context, plan.start_timeout)
    ((create,),) = client(context.targets, plan.query_timeout).execute(f"SHOW CREATE TABLE {TABLE}")
    server.query(f"CREATE DATABASE IF NOT EXISTS {DATABASE}", plan.query_timeout)
    server.query(standalone(create), plan.query_timeout)
    backups = server.api.remote_backups()
    chosen = newest_per_shard(backups, shard_of)
    if not chosen:
        raise CheckFailedError(f"no backup in the object store ({len(backups)} objects listed, none a shard's backup)")
    if len(chosen) < shards:
        raise CheckFailedError(f"backups of {len(chosen)} shards found, the cluster has {shards}: {chosen}")
    rpo = (started - min(backup.created for backup in chosen)).total_seconds()
    figures: Figures = {
        "backups": ", ".join(backup.name for backup in chosen),
        "backup_bytes": sum(backup.size_bytes for backup in chosen),
        "rpo_s": round(rpo, 1),
    }
    figures |= restore(server, chosen, plan, context)
    ((newest, events),) = server.query(NEWEST_SQL, plan.query_timeout)
    figures |= {"rto_s": round(time.monotonic() - began, 1), "newest_event": str(newest)}
    context.progress(f"comparing {events} restored events with live")
    compared, different = compare(server, context.targets, plan)
    figures |= compared | {"partitions_different": len(different)}
    if different:
        raise CheckFailedError("the restore differs from live: " + "; ".join(different[:5]), figures)
    if rpo > plan.max_rpo:
        raise CheckFailedError(f"the newest backup is {rpo:.0f}s old, over the {plan.max_rpo:.0f}s allowed", figures)
    return figures


def checks(targets: Targets, site: ScratchSite, plan: DrillPlan, shard_of: Callable[[str], str | None]) -> list[Check]:
    """The one check of `verify restore-drill`."""
    shards = targets.expected.clickhouse_shards
    return [
        Check(
            name="clickhouse.restore-drill",
            scenario="restore-drill",
            target="the object store, through a scratch server",
            probe=lambda context: drill(context, site, plan, shard_of, shards),
            deadline=plan.deadline(shards),
            tags=frozenset({"destructive"}),
        )
    ]
