"""verify failover's scenarios against the real Presto, Kafka and ClickHouse, with a local fault injector.

A data plane of its own (these tests break it), scraped by a real Prometheus with the stack's rules at
a 1 s scrape interval (the rules' `for` are the shipped ones). Each test runs one of verify's own
scenarios in process, with tests/support/fakes/local_injector.py killing (or SIGSTOPping) the processes a pod
would run and restarting them; probing, traffic, recovery, consistency and alert judging are verify's.

The ClickHouse scenarios run without the alert check: ClickHouse 18.16 has no Prometheus endpoint
(the image we deploy, 24.8, serves one on 9363), so the test Prometheus cannot scrape it and
ClickHouseDown fires from two minutes after it starts, before any fault; verify reports an alert
firing before the fault as an unclean steady state.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components import names
from components.settings.model import Settings
from tests.support.fakes.local_injector import LocalInjector
from tests.support.servers.data_plane import DataPlane, data_plane
from tests.support.servers.kafka import with_scram
from tests.support.verify_harness import outputs_document, run_local_scenario, start_local_prometheus
from verify.core.targets import Targets, targets_from
from verify.failover.plan import FailoverPlan

SETTLE = 180.0
"""The settle window (--settle): a fresh data plane on a shared 2-core machine took more than the default 30 s to
answer its first probes; the wait ends at the first K passing probes, so an idle machine loses nothing."""


@dataclass(frozen=True)
class Bench:
    """The plane to break, and verify's targets for it."""

    plane: DataPlane
    targets: Targets


def fast_scrapes(settings: Settings) -> Settings:
    """The settings with a 1 s scrape and evaluation interval, so an alert's window is its `for` plus 2 s."""
    monitoring = settings.monitoring
    prometheus = monitoring.prometheus.model_copy(update={"scrape_interval": "1s"})
    return settings.model_copy(update={"monitoring": monitoring.model_copy(update={"prometheus": prometheus})})


def dedicated_coordinator(settings: Settings) -> Settings:
    """The settings with a coordinator that runs no tasks, as in prod: every query needs the worker."""
    presto = settings.presto
    coordinator = presto.coordinator.model_copy(update={"schedules_work": False})
    return settings.model_copy(update={"presto": presto.model_copy(update={"coordinator": coordinator})})


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, dev_settings: Settings, fake_grafana: str) -> Iterator[Bench]:
    """Kafka, ClickHouse and Presto of their own, and a Prometheus scraping Kafka and the coordinator."""
    workdir = tmp_path_factory.mktemp("failover")
    with data_plane(with_scram(dedicated_coordinator(dev_settings)), workdir) as plane:
        prometheus, url = start_local_prometheus(fast_scrapes(dev_settings), plane.kafka, plane.presto, workdir)
        try:
            topic = dev_settings.kafka.topic.name
            servers = (plane.presto, plane.clickhouse, plane.kafka)
            document = outputs_document(dev_settings, *servers, topic, url, fake_grafana)
            yield Bench(plane, targets_from("test", document))
        finally:
            prometheus.stop()


def test_a_worker_killed_under_query_load_is_measured_until_presto_answers_again(bench: Bench) -> None:
    injector = LocalInjector({names.PRESTO_WORKER: [bench.plane.presto.worker]})
    figures = run_local_scenario(
        bench.targets, "worker-kill", injector, FailoverPlan(baseline=3, hold=1, settle=SETTLE)
    )
    assert figures["method"] == "local kill -9, then restart"
    assert figures["failed_probes"] > 0, "the only worker died: some probes must fail"
    assert figures["ttr_s"] > 0 and figures["pods_ready_s"] > 0
    assert figures["availability_pct"] < 100
    assert figures["queries"] > 0 and "failed_queries" in figures
    assert figures["p99_baseline_ms"] > 0
    assert figures["error_window_s"] <= figures["ttr_s"]


def test_a_kafka_broker_killed_during_production_loses_no_acknowledged_event(bench: Bench) -> None:
    injector = LocalInjector({names.KAFKA: [bench.plane.kafka.server]})
    figures = run_local_scenario(bench.targets, "kafka-kill", injector, FailoverPlan(baseline=3, hold=2, settle=SETTLE))
    assert figures["failed_probes"] > 0 and figures["ttr_s"] > 0
    assert figures["events_acked"] > 0
    assert figures["events_lost"] == 0
    assert figures["events_duplicated"] >= 0, "reported, whatever their number"


def test_clickhouse_killed_during_ingestion_loses_no_acknowledged_event(bench: Bench) -> None:
    injector = LocalInjector({names.CLICKHOUSE: [bench.plane.clickhouse.server]})
    figures = run_local_scenario(
        bench.targets, "clickhouse-kill", injector, FailoverPlan(baseline=3, hold=2, alerts=False, settle=SETTLE)
    )
    assert figures["failed_probes"] > 0 and figures["ttr_s"] > 0
    assert figures["events_acked"] > 0 and figures["events_lost"] == 0


def test_a_hung_clickhouse_times_out_its_probes_and_the_scenario_ends(bench: Bench) -> None:
    injector = LocalInjector({names.CLICKHOUSE: [bench.plane.clickhouse.server]}, how="stop")
    plan = FailoverPlan(baseline=2, hold=4, probe_timeout=0.5, alerts=False, settle=SETTLE)
    figures = run_local_scenario(bench.targets, "clickhouse-kill", injector, plan)
    assert figures["method"] == "local SIGSTOP, then SIGCONT"
    assert figures["failed_probes"] > 0
    assert "timeout" in str(figures["first_probe_error"]).lower() or "timed out" in str(figures["first_probe_error"])
    assert figures["events_lost"] == 0


def test_a_killed_coordinator_fires_its_alert_which_resolves_after_recovery(bench: Bench, tmp_path: Path) -> None:
    presto = bench.plane.presto
    injector = LocalInjector({names.PRESTO_COORDINATOR: [presto.coordinator, presto.exporter]})
    figures = run_local_scenario(
        bench.targets, "coordinator-kill", injector, FailoverPlan(baseline=2, hold=125, settle=SETTLE)
    )
    assert figures["alert"] == "PrestoCoordinatorDown"
    assert figures["alert_expected"] == "yes" and figures["alert_fired"] == "yes"
    assert figures["alert_fired_after_s"] <= figures["alert_window_s"] + 1
    assert figures["alert_resolved"] == "yes"
