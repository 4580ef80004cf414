"""Print the figures of verify's load driver on the real servers; printed, never asserted.

- Fidelity: open-loop runs of ClickHouse's HTTP `SELECT 1` on loopback at 50, 200 and 500 req/s:
  achieved / target rate and the p99 of how late operations started (goal: >= 0.99 and <= 2 ms).
- Ceiling: the driver's closed-loop maximum on the same request against wrk's (Debian's), measured in
  the same run (goal: ours / wrk's >= 0.5).
- Client overhead: each TPC-H query's latency as verify measures it against Presto's own elapsed time
  for it (goal: median overhead <= 5%).

Each figure is measured with nothing starting beside it: fidelity and ceiling on a ClickHouse started
alone and warmed, the overhead once Presto has run every query; before each, the bench waits until
the machine is quiet (bench/machine.py), and it prints the machine's load over each measurement.

Run after scripts/test has installed the servers, and scripts/servers/install-wrk:
    .venv/bin/python bench/load.py [--seconds N] [--connections N] [--runs N]
"""

import argparse
import base64
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from bench.machine import measured, wait_quiet  # noqa: E402
from components.settings.model import Settings  # noqa: E402
from components.settings.parse import parse_settings  # noqa: E402
from components.settings.stack_files import stack_config  # noqa: E402
from tests.support.servers.clickhouse import start_clickhouse  # noqa: E402
from tests.support.servers.data_plane import data_plane  # noqa: E402
from tests.support.verify_harness import outputs_document  # noqa: E402
from verify import tpch  # noqa: E402
from verify.core.targets import targets_from  # noqa: E402
from verify.load import latency  # noqa: E402
from verify.load.driver import closed_loop, constant_arrivals, open_loop  # noqa: E402
from verify.load.workloads import ClickHouseHttp, PrestoTpch  # noqa: E402
from verify.smoke.presto import ca_file  # noqa: E402

RATES = (50, 200, 500)
STATEMENT = "SELECT 1"
WARM_STATEMENTS = 2000
"""`SELECT 1`s a fresh ClickHouse answers, on as many connections as the ceiling uses, before any figure."""


def fidelity(client: ClickHouseHttp, seconds: float) -> None:
    """Achieved / target rate and start-lag p99 at each rate."""
    print(f"load-driver fidelity: open loop, ClickHouse HTTP {STATEMENT!r}, {seconds:g} s per rate")
    for rate in RATES:
        wait_quiet()
        with measured(f"{rate} req/s"):
            outcomes = open_loop(
                constant_arrivals(rate, seconds), str, client.workload(lambda: STATEMENT), 64, threading.Event()
            )
        figures = latency.summary(outcomes, scheduled=True, target_rate=rate)
        ratio, lag = figures["achieved_ratio"], figures["start_lag_ms"]["p99"]
        verdict = "meets" if ratio >= 0.99 and lag <= 2 else "misses"
        print(
            f"  {rate:>4} req/s: achieved/target {ratio:.4f}, start lag p99 {lag:.3f} ms, "
            f"errors {figures['errors']} ({verdict} >= 0.99 and <= 2 ms)"
        )


def ceiling(client: ClickHouseHttp, url: str, user: str, password: str, seconds: float, connections: int) -> None:
    """The driver's closed-loop maximum against wrk's on the same request."""
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed: run scripts/servers/install-wrk")
    print(f"driver ceiling: {connections} connections, {seconds:g} s each")
    wait_quiet()
    with measured("verify's closed loop"):
        outcomes = closed_loop(
            [["select"]] * connections, client.workload(lambda: STATEMENT), threading.Event(), seconds
        )
    ours = latency.summary(outcomes, scheduled=False)["qps"]
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(f'wrk.method = "POST"\nwrk.body = "{STATEMENT}"\nwrk.headers["Authorization"] = "Basic {token}"\n')
        script.flush()
        command = [wrk, "-t2", f"-c{connections}", f"-d{seconds:g}s", "-s", script.name, f"{url}/"]
        wait_quiet()
        with measured("wrk"):
            output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    theirs = float(re.search(r"Requests/sec:\s+([0-9.]+)", output)[1])  # type: ignore[index]
    print(f"  verify {ours:,.0f} req/s, wrk {theirs:,.0f} req/s: ratio {ours / theirs:.2f} (goal >= 0.5)")


def overhead(queries: PrestoTpch, runs: int) -> None:
    """The latency verify measures for each TPC-H query against Presto's own elapsed time, once Presto is warm."""
    print(f"client overhead: 22 TPC-H queries on tpch.tiny, {runs} measured runs each after one warm-up pass")
    closed_loop([tpch.QUERIES], queries, threading.Event())
    wait_quiet()
    ratios, by_query = [], {}
    with measured("the TPC-H runs"):
        for query in tpch.QUERIES:
            outcomes = closed_loop([[query] * runs], queries, threading.Event())
            mine = [o.service_time * 1000 / o.server["elapsed_ms"] - 1 for o in outcomes if o.server.get("elapsed_ms")]
            ratios += mine
            by_query[query] = statistics.median(mine)
    worst = max(by_query, key=by_query.__getitem__)
    median = statistics.median(ratios)
    print(f"  median {median:+.1%} over Presto's elapsed (goal <= 5%); worst query {worst} {by_query[worst]:+.1%}")


def driver_figures(settings: Settings, work: Path, seconds: float, connections: int) -> None:
    """Fidelity and ceiling on a ClickHouse started alone and warmed up; stop it after."""
    clickhouse = start_clickhouse(settings, work / "clickhouse-alone")
    try:
        password = clickhouse.passwords["admin"]
        client = ClickHouseHttp(clickhouse.http, "admin", password, 10)
        closed_loop(
            [["warm-up"] * (WARM_STATEMENTS // connections)] * connections,
            client.workload(lambda: STATEMENT),
            threading.Event(),
        )
        fidelity(client, seconds)
        ceiling(client, clickhouse.http, "admin", password, seconds, connections)
    finally:
        clickhouse.server.stop()


def main() -> None:
    """Start the servers, measure, print, stop."""
    parser = argparse.ArgumentParser(description="the load driver's fidelity, ceiling and overhead")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per fidelity rate and ceiling run")
    parser.add_argument("--connections", type=int, default=8, help="connections for the ceiling runs")
    parser.add_argument("--runs", type=int, default=3, help="measured runs of each TPC-H query")
    options = parser.parse_args()
    settings = parse_settings("dev", stack_config("dev"))
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    driver_figures(settings, work, options.seconds, options.connections)
    with data_plane(settings, work / "data-plane") as plane:
        document = outputs_document(
            settings, plane.presto, plane.clickhouse, plane.kafka, settings.kafka.topic.name, "http://127.0.0.1:9", ""
        )
        targets = targets_from("dev", document)
        with ca_file(targets) as ca:
            overhead(PrestoTpch(targets, ca, "tiny", 120), options.runs)


if __name__ == "__main__":
    main()
