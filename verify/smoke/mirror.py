"""A DR stack's mirror: how far its copy of the primary's topics is behind, in records and in time (its RPO).

Offsets do not compare across the two clusters (the mirror starts at the primary's oldest retained record,
the DR topic at 0), timestamps do: MirrorMaker 2 keeps each record's timestamp. Per partition, the newest
record on the DR side is the last mirrored one; the primary's records after its timestamp are the lag,
and the oldest of them says how much time of data a failover now would lose. Records sharing the last
mirrored one's millisecond count as mirrored: the lag may read low by those, never high.
"""

import time
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from components.data.clickhouse.config import CONSUMER_GROUP
from components.data.kafka.config import SCRAM_MECHANISM
from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.targets import Targets
from verify.replay.checks import kafka_login
from verify.smoke.kafka import QUIET

TIMEOUT = 10.0
NOTHING = -1
"""A partition with no record."""


@dataclass(frozen=True, kw_only=True)
class PartitionLag:
    """One partition: the primary's records not yet on the DR side, and the oldest one's timestamp (ms)."""

    partition: int
    behind: int
    oldest_ms: int


def _record_timestamp(consumer: Consumer, topic: str, partition: int, offset: int) -> int:
    """The timestamp (ms) of the record at an offset, read with an assigned consumer."""
    consumer.assign([TopicPartition(topic, partition, offset)])
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None and message.offset() is not None:
            return message.timestamp()[1]
    raise CheckFailedError(f"could not read {topic}[{partition}] at offset {offset} within {TIMEOUT:g}s")


def newest_timestamps(consumer: Consumer, topic: str, partitions: list[int]) -> dict[int, int]:
    """Each partition's newest record's timestamp (ms), NOTHING for an empty partition."""
    found = {}
    for partition in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT)
        found[partition] = _record_timestamp(consumer, topic, partition, high - 1) if high > low else NOTHING
    return found


def partition_lags(source: Consumer, target: Consumer, topic: str) -> list[PartitionLag]:
    """Per partition of the primary's topic, what the DR copy lacks (the partitions map one to one)."""
    partitions = sorted(source.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions)
    mirrored = newest_timestamps(target, topic, partitions)
    after = source.offsets_for_times(
        [TopicPartition(topic, p, mirrored[p] + 1 if mirrored[p] != NOTHING else 0) for p in partitions],
        timeout=TIMEOUT,
    )
    lags = []
    for found in after:
        low, high = source.get_watermark_offsets(TopicPartition(topic, found.partition), timeout=TIMEOUT)
        first = found.offset if found.offset >= 0 else high
        first = max(first, low)
        oldest = _record_timestamp(source, topic, found.partition, first) if first < high else NOTHING
        lags.append(PartitionLag(partition=found.partition, behind=high - first, oldest_ms=oldest))
    return lags


def lag_figures(source_config: dict[str, str | int], target_config: dict[str, str | int], topic: str) -> Figures:
    """The mirror's lag on one topic: records behind, partitions behind, and the RPO in seconds."""
    source, target = (
        Consumer({**config, "group.id": CONSUMER_GROUP, "enable.auto.commit": False, **QUIET})
        for config in (source_config, target_config)
    )
    try:
        lags = partition_lags(source, target, topic)
    finally:
        source.close()
        target.close()
    oldest = [lag.oldest_ms for lag in lags if lag.behind and lag.oldest_ms != NOTHING]
    return {
        "behind_records": sum(lag.behind for lag in lags),
        "partitions_behind": sum(1 for lag in lags if lag.behind),
        "rpo_seconds": round(max(0.0, time.time() - min(oldest) / 1000), 3) if oldest else 0.0,
    }


def lag(context: Context, topic: str) -> Figures:
    """The mirror's lag on a topic; fails when the data a failover would lose is older than the alert's threshold."""
    targets: Targets = context.targets
    mirror = targets.mirror
    assert mirror is not None  # checks() adds this check only for a stack with a mirror
    user, password = mirror.login
    source: dict[str, str | int] = {
        "bootstrap.servers": mirror.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": SCRAM_MECHANISM,
        "sasl.username": user,
        "sasl.password": password,
    }
    figures = lag_figures(source, kafka_login(targets), topic)
    if float(figures["rpo_seconds"]) > mirror.lag_alert_seconds:
        raise CheckFailedError(
            f"rpo_seconds {figures['rpo_seconds']} > {mirror.lag_alert_seconds:g}: the DR copy of {topic} lags "
            f"{figures['behind_records']} records",
            figures,
        )
    return figures


def checks(targets: Targets) -> list[Check]:
    """One lag check per mirrored topic, on a stack with a mirror; none otherwise."""
    if targets.mirror is None:
        return []
    return [
        Check(
            name=f"mirror.lag.{topic}",
            scenario="smoke",
            target=f"{targets.mirror.bootstrap} -> {targets.endpoints.kafka} ({topic})",
            probe=lambda context, topic=topic: lag(context, topic),  # type: ignore[misc]
            deadline=60,
            tags=frozenset({"kafka", "mirror"}),
        )
        for topic in targets.mirror.topics
    ]
