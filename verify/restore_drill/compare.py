"""Restored rows against the live table: per partition, a count and a content checksum of the same events.

Both sides collapse redeliveries by the table's key (event_id) first, as ReplacingMergeTree does on merge,
and hash only what the producer sent (not ingested_at, which a redelivery changes). The live side is
restricted to the restored event ids (shipped as an external table, GLOBAL IN so every shard gets it):
the events the backup held, as they are now, which is how they were at the backup's point in time.
"""

from dataclasses import dataclass

from components.data.clickhouse.config import DATABASE, EVENTS_TABLE, LOCAL_TABLE

RESTORED_IDS = "restored_ids"
"""The external table of restored event ids sent with the live query."""
CONTENT = "cityHash64(event_id, run_id, kind, payload, produced_at_ms)"
PARTITION = "toYYYYMM(event_time)"
"""The events table's PARTITION BY."""


@dataclass(frozen=True)
class Digest:
    """One partition's events, deduplicated: how many, and the sum of their content hashes."""

    events: int
    checksum: int


def digest_sql(table: str, where: str = "") -> str:
    """Per partition: distinct events and their content checksum, from a table (optionally filtered)."""
    return (
        f"SELECT partition, count(), sum(content) FROM ("
        f"SELECT event_id, any({PARTITION}) AS partition, any({CONTENT}) AS content "
        f"FROM {table} {where} GROUP BY event_id) GROUP BY partition ORDER BY partition"
    )


RESTORED_SQL = digest_sql(f"{DATABASE}.{LOCAL_TABLE}")
"""On the scratch server: everything restored."""
LIVE_SQL = digest_sql(f"{DATABASE}.{EVENTS_TABLE}", f"WHERE event_id GLOBAL IN {RESTORED_IDS}")
"""On the live cluster, through the Distributed table: the restored events as they are live."""
IDS_SQL = f"SELECT DISTINCT event_id FROM {DATABASE}.{LOCAL_TABLE}"
NEWEST_SQL = f"SELECT max(event_time), count() FROM {DATABASE}.{LOCAL_TABLE}"


def digests(rows: list[tuple]) -> dict[str, Digest]:
    """A digest query's rows by partition."""
    return {str(partition): Digest(events=int(events), checksum=int(checksum)) for partition, events, checksum in rows}


def differences(restored: dict[str, Digest], live: dict[str, Digest]) -> list[str]:
    """Every partition whose restored events differ from the same events live, said plainly."""
    found = []
    for partition in sorted(restored.keys() | live.keys()):
        mine, theirs = restored.get(partition), live.get(partition)
        if mine is None:
            found.append(f"partition {partition}: {theirs.events if theirs else 0} events live, none restored")
        elif theirs is None:
            found.append(f"partition {partition}: {mine.events} events restored, none of them live")
        elif mine.events != theirs.events:
            found.append(f"partition {partition}: {mine.events} events restored, {theirs.events} of them live")
        elif mine.checksum != theirs.checksum:
            found.append(f"partition {partition}: {mine.events} events on both sides, content checksums differ")
    return found
