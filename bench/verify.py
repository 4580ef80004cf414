"""Print verify's figures on the real servers; printed, never asserted.

- Wall time of `python -m verify smoke` (a subprocess, as an SRE runs it) against local Presto, ClickHouse,
  Kafka and Prometheus (Grafana's API faked), and its overhead: wall time / the checks' own time.
- `verify pipeline`: events/s end to end, p50/p99 produce-to-visible, and verify's produce rate against a
  bare confluent-kafka producer sending as many events to the same topic in the same run.

Run after scripts/test has installed the servers: .venv/bin/python bench/verify.py [--runs N] [--events N]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from components.settings.parse import parse_settings  # noqa: E402
from components.settings.stack_files import stack_config  # noqa: E402
from tests.support.events import produce  # noqa: E402
from tests.support.servers.data_plane import data_plane  # noqa: E402
from tests.support.verify_harness import fake_grafana_api, outputs_document, start_local_prometheus, verify  # noqa: E402


def run(outputs: Path, reports: Path, *args: str) -> tuple[float, dict]:
    """Run verify once; its wall time and JSON report."""
    began = time.monotonic()
    result = verify(*args, "--outputs", str(outputs), "--report-dir", str(reports))
    seconds = time.monotonic() - began
    report = json.loads((reports / "verify-report.json").read_text())
    if result.returncode != 0:
        failed = [(c["name"], c["error"]) for c in report["checks"] if c["status"] != "passed"]
        sys.exit(f"verify {args[0]} exited {result.returncode}: {failed}")
    return seconds, report


def main() -> None:
    """Start the servers, measure, print, stop."""
    parser = argparse.ArgumentParser(description="verify's figures on the real servers")
    parser.add_argument("--runs", type=int, default=3, help="smoke runs (the median is printed)")
    parser.add_argument("--events", type=int, default=5000, help="events for the pipeline run")
    options = parser.parse_args()
    settings = parse_settings("dev", stack_config("dev"))
    work = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    with data_plane(settings, work) as plane:
        prometheus, prometheus_url = start_local_prometheus(settings, plane.kafka, plane.presto, work / "prometheus")
        try:
            with fake_grafana_api(settings) as grafana_url:
                document = outputs_document(
                    settings,
                    plane.presto,
                    plane.clickhouse,
                    plane.kafka,
                    settings.kafka.topic.name,
                    prometheus_url,
                    grafana_url,
                )
                outputs = work / "outputs.json"
                outputs.write_text(json.dumps(document))
                measure(outputs, work, plane.kafka.client_config(), settings.kafka.topic.name, options)
        finally:
            prometheus.stop()


def measure(outputs: Path, work: Path, kafka: dict[str, str], topic: str, options: argparse.Namespace) -> None:
    """Run smoke and pipeline against the outputs and print their figures."""
    walls, overheads = [], []
    for index in range(options.runs):
        wall, report = run(outputs, work / f"smoke-{index}", "smoke")
        checks = sum(c["seconds"] for c in report["checks"])
        walls.append(wall)
        overheads.append(wall / checks)
    print(f"verify smoke ({len(report['checks'])} checks, median of {options.runs} runs)")
    print(f"  wall time {statistics.median(walls):.2f} s")
    print(f"  overhead  {statistics.median(overheads):.2f}x the checks' own time (start-up, reports)")

    _, report = run(outputs, work / "pipeline", "pipeline", "--events", str(options.events))
    ingest = next(c["figures"] for c in report["checks"] if c["name"] == "pipeline.ingest")
    keys = [f"bench-bare-{time.time_ns()}-{i}" for i in range(options.events)]
    began = time.monotonic()
    produce(kafka, topic, keys)
    bare_rate = len(keys) / (time.monotonic() - began)
    print(f"verify pipeline ({options.events} events, ClickHouse 18.16)")
    print(f"  end to end        {ingest['events_per_s']:,} events/s, all visible {ingest['converge_s']} s")
    print(f"                    after the last ack (lost {ingest['lost']}, duplicated {ingest['duplicated']})")
    print(
        f"  produce-to-visible p50 {ingest['visible_p50_ms']} ms, p99 {ingest['visible_p99_ms']} ms "
        f"(polled every {ingest['poll_ms']} ms)"
    )
    print(
        f"  produce rate      {ingest['produce_events_per_s']:,} events/s; a bare producer "
        f"{bare_rate:,.0f} events/s: ratio {ingest['produce_events_per_s'] / bare_rate:.2f}"
    )


if __name__ == "__main__":
    main()
