"""Print MirrorMaker 2's lag under the pipeline bench's load on the real servers; printed, never asserted.

Two Kafka nodes (the primary and the DR site, the dev stack's config with SCRAM) and the mirror from the
stack's mm2.properties. The peer, measured in the same run on the same events, is a plain consumer of the
primary (librdkafka, as ClickHouse's Kafka engine): what reading the stream costs without copying it.

- Burst: --events events produced at once (bench/pipeline.py's throughput load); the seconds until the
  DR topic has them all, as a ratio to the seconds the peer takes to read them.
- Steady stream: --rate events/s for --seconds (bench/pipeline.py's lag stream); the mirror's lag sampled
  every 0.5 s with verify's own figures (records behind, RPO seconds), and each event's produce-to-mirrored
  delay against its produce-to-read delay at the peer (p50/p99, HdrHistogram).

Run after scripts/test has installed the servers: .venv/bin/python bench/mirror.py [--events N]
"""

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from confluent_kafka import Consumer, TopicPartition  # noqa: E402
from hdrh.histogram import HdrHistogram  # noqa: E402

from bench.machine import measured, wait_quiet  # noqa: E402
from bench.pipeline import produce, producer, rows  # noqa: E402
from components.data.clickhouse.config import CONSUMER_GROUP  # noqa: E402
from components.data.kafka.config import BROKER_PRINCIPAL, CLICKHOUSE_PRINCIPAL  # noqa: E402
from components.data.kafka.mirror import MIRROR_PRINCIPAL, source_grants, target_grants  # noqa: E402
from components.settings.model import MirrorSettings  # noqa: E402
from components.settings.parse import parse_settings  # noqa: E402
from components.settings.stack_files import stack_config  # noqa: E402
from tests.support.servers.kafka import KafkaNode, run_topic_bootstrap, start_kafka, with_scram  # noqa: E402
from tests.support.servers.mirror import (  # noqa: E402
    MIRROR_PASSWORD,
    add_mirror_user,
    end_offsets,
    start_mirror,
)
from verify.smoke.mirror import lag_figures  # noqa: E402

SAMPLE_SECONDS = 0.5
TIMEOUT = 300.0


def reader(node: KafkaNode, user: str, topic: str, start: dict[int, int]) -> Consumer:
    """A consumer of the topic from these offsets, committing nothing (in ClickHouse's group, which it may use)."""
    consumer = Consumer({**node.client_config(user), "group.id": CONSUMER_GROUP, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, partition, offset) for partition, offset in start.items()])
    return consumer


def read_all(consumer: Consumer, keys: set[str], seen_at: dict[str, float] | None = None) -> float:
    """Poll until every key has been read; the monotonic time of the last (each key's time into seen_at)."""
    left, deadline = set(keys), time.monotonic() + TIMEOUT
    while left and time.monotonic() < deadline:
        message = consumer.poll(0.1)
        if message is None or message.error() is not None or message.key() is None:
            continue
        key = message.key().decode()
        if key in left:
            left.discard(key)
            if seen_at is not None:
                seen_at[key] = time.monotonic()
    if left:
        sys.exit(f"{len(left)} events never read within {TIMEOUT:g} s")
    return time.monotonic()


def burst(primary: KafkaNode, dr: KafkaNode, topic: str, count: int) -> None:
    """The mirror's time to copy a burst, as a ratio to a plain consumer's time to read it."""
    run = f"burst-{uuid.uuid4()}"
    events = rows(run, count)
    keys = {key for key, _ in events}
    peer = reader(primary, BROKER_PRINCIPAL, topic, end_offsets(primary, topic))
    mirrored = reader(dr, CLICKHOUSE_PRINCIPAL, topic, end_offsets(dr, topic))
    peer.poll(0.1)
    mirrored.poll(0.1)
    began = time.monotonic()
    done = {}
    threads = [
        threading.Thread(target=lambda: done.__setitem__("peer", read_all(peer, keys))),
        threading.Thread(target=lambda: done.__setitem__("mirror", read_all(mirrored, keys))),
    ]
    for thread in threads:
        thread.start()
    produce(primary, topic, events)
    for thread in threads:
        thread.join()
    peer.close()
    mirrored.close()
    peer_s, mirror_s = done["peer"] - began, done["mirror"] - began
    print(f"  peer: a plain consumer of the primary  {count / peer_s:10,.0f} events/s ({peer_s:6.2f} s)")
    print(
        f"  mirror: on the DR topic               {count / mirror_s:10,.0f} events/s ({mirror_s:6.2f} s), "
        f"ratio to the peer {peer_s / mirror_s:.2f}"
    )


def stream(primary: KafkaNode, dr: KafkaNode, topic: str, rate: float, seconds: float) -> None:
    """A steady stream: the sampled lag figures, and each event's delay mirrored against read by the peer."""
    run = f"stream-{uuid.uuid4()}"
    events = rows(run, int(rate * seconds))
    keys = {key for key, _ in events}
    sent: dict[str, float] = {}
    peer_seen: dict[str, float] = {}
    mirror_seen: dict[str, float] = {}
    peer = reader(primary, BROKER_PRINCIPAL, topic, end_offsets(primary, topic))
    mirrored = reader(dr, CLICKHOUSE_PRINCIPAL, topic, end_offsets(dr, topic))
    source_login = primary.client_config(MIRROR_PRINCIPAL, MIRROR_PASSWORD)
    target_login = dr.client_config(CLICKHOUSE_PRINCIPAL)
    samples: list[dict] = []
    streaming = threading.Event()

    def send() -> None:
        sender, began = producer(primary), time.monotonic()
        for index, (key, value) in enumerate(events):
            if (wait := began + index / rate - time.monotonic()) > 0:
                time.sleep(wait)
            sent[key] = time.monotonic()
            sender.produce(topic, key=key, value=value)
            sender.poll(0)
        sender.flush(60)
        streaming.clear()

    def sample() -> None:
        while streaming.is_set():
            samples.append(lag_figures({**source_login}, {**target_login}, topic))
            time.sleep(SAMPLE_SECONDS)

    streaming.set()
    threads = [
        threading.Thread(target=send),
        threading.Thread(target=sample),
        threading.Thread(target=read_all, args=(peer, keys, peer_seen)),
        threading.Thread(target=read_all, args=(mirrored, keys, mirror_seen)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    peer.close()
    mirrored.close()
    for name, seen in (("peer (read on the primary)", peer_seen), ("mirror (on the DR topic)", mirror_seen)):
        histogram = HdrHistogram(1, 600_000, 3)
        for key in keys:
            histogram.record_value(max(1, round((seen[key] - sent[key]) * 1000)))
        print(
            f"  {name:28} produce-to-read p50 {histogram.get_value_at_percentile(50)} ms  "
            f"p99 {histogram.get_value_at_percentile(99)} ms  max {histogram.get_max_value()} ms"
        )
    behind = sorted(int(s["behind_records"]) for s in samples)
    rpo = sorted(float(s["rpo_seconds"]) for s in samples)
    print(
        f"  verify's lag over {len(samples)} samples: records behind median {behind[len(behind) // 2]}, "
        f"max {behind[-1]}; RPO median {rpo[len(rpo) // 2]:.3f} s, max {rpo[-1]:.3f} s"
    )


def main() -> None:
    """Start both Kafkas and the mirror, measure, print, stop."""
    parser = argparse.ArgumentParser(description="MirrorMaker 2's lag on the real servers")
    parser.add_argument("--events", type=int, default=100_000, help="events of the burst")
    parser.add_argument("--rate", type=float, default=200, help="events/s of the steady stream")
    parser.add_argument("--seconds", type=float, default=15, help="seconds of the steady stream")
    options = parser.parse_args()
    settings = with_scram(parse_settings("dev", stack_config("dev")))
    topic = settings.kafka.topic.name
    work = Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    primary = start_kafka(settings.kafka, work / "primary")
    dr = start_kafka(settings.kafka, work / "dr")
    servers = [primary.server, dr.server]
    try:
        for node in (primary, dr):
            run_topic_bootstrap(node)
        mirror_settings = MirrorSettings.model_validate(
            {"sourceBootstrap": primary.bootstrap, "sourceCidrs": ["127.0.0.1/32"], "topics": [topic]}
        )
        add_mirror_user(primary, source_grants(mirror_settings.topics, mirror_settings.groups))
        add_mirror_user(dr, target_grants(mirror_settings))
        mirror = start_mirror(mirror_settings, dr)
        servers.append(mirror.server)
        warm = rows(f"warm-{uuid.uuid4()}", 1000)
        produce(primary, topic, warm)
        print(f"Kafka {topic} with {settings.kafka.topic.partitions} partitions, mirrored primary -> dr")
        print(f"burst of {options.events:,} events")
        wait_quiet()
        with measured("the burst"):
            burst(primary, dr, topic, options.events)
        print(f"steady stream: {options.rate:g} events/s for {options.seconds:g} s")
        wait_quiet()
        with measured("the stream"):
            stream(primary, dr, topic, options.rate, options.seconds)
    finally:
        for server in reversed(servers):
            server.stop(grace=10)


if __name__ == "__main__":
    main()
