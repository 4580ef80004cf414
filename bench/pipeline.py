"""Print the data plane's figures on the real servers; printed, never asserted.

Startup time of each server, Kafka -> ClickHouse events/s, produce-to-visible lag (HdrHistogram).

Run after scripts/test has installed the servers: .venv/bin/python bench/pipeline.py [--events N]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from hdrh.histogram import HdrHistogram  # noqa: E402

from components.data.clickhouse.config import DATABASE, EVENTS_TABLE  # noqa: E402
from components.settings.parse import parse_settings  # noqa: E402
from components.settings.stack_files import stack_config  # noqa: E402
from tests.support.events import event_json, produce  # noqa: E402
from tests.support.servers.clickhouse import query  # noqa: E402
from tests.support.servers.data_plane import data_plane  # noqa: E402


def visible(node, run_id: str) -> int:
    """How many events of a run ClickHouse shows."""
    return int(query(node, f"SELECT uniqExact(event_id) FROM {DATABASE}.{EVENTS_TABLE} WHERE run_id = '{run_id}'"))


def main() -> None:
    """Start the servers, measure, print, stop."""
    parser = argparse.ArgumentParser(description="data plane figures on the real servers")
    parser.add_argument("--events", type=int, default=20000, help="events for the throughput run")
    parser.add_argument("--batches", type=int, default=40, help="small batches for the lag percentiles")
    options = parser.parse_args()
    settings = parse_settings("dev", stack_config("dev"))
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    with data_plane(settings, work) as plane:
        print("server startup (launch to ready)")
        for server in (plane.kafka.server, plane.clickhouse.server, plane.presto.coordinator, plane.presto.worker):
            print(f"  {server.name:20} {server.started_in:6.2f} s")
        kafka, clickhouse = plane.kafka, plane.clickhouse

        run_id = f"throughput-{time.time_ns()}"
        keys = [f"{run_id}-{i}" for i in range(options.events)]
        began = time.monotonic()
        produce(kafka.client_config(), settings.kafka.topic.name, keys, lambda i, key: event_json(i, key, run_id))
        acked_in = time.monotonic() - began
        while visible(clickhouse, run_id) < len(keys) and time.monotonic() - began < 300:
            time.sleep(0.2)
        total = time.monotonic() - began
        print(f"Kafka -> ClickHouse: {len(keys)} events acked in {acked_in:.2f} s, all visible after {total:.2f} s")
        print(
            f"  end-to-end throughput {len(keys) / total:,.0f} events/s (produce {len(keys) / acked_in:,.0f} events/s)"
        )

        lag = HdrHistogram(1, 600_000, 3)
        for batch in range(options.batches):
            batch_id = f"lag-{time.time_ns()}-{batch}"
            produce(
                kafka.client_config(),
                settings.kafka.topic.name,
                [f"{batch_id}-0"],
                lambda i, key, run=batch_id: event_json(i, key, run),
            )
            acked = time.monotonic()
            while visible(clickhouse, batch_id) < 1 and time.monotonic() - acked < 60:
                time.sleep(0.02)
            lag.record_value(max(1, int((time.monotonic() - acked) * 1000)))
        print(f"produce-to-visible lag over {options.batches} single events (ms, ClickHouse 18.16 flush cadence):")
        print(
            f"  p50 {lag.get_value_at_percentile(50)}  p99 {lag.get_value_at_percentile(99)}  max {lag.get_max_value()}"
        )


if __name__ == "__main__":
    main()
