"""`verify failover`: each scenario breaks something under traffic and measures recovery, availability and data loss.

A scenario: steady state (K probes pass within the settle window) -> background queries and producer ->
a baseline -> inject -> probe every interval -> end the fault -> pods ready and K probes pass again -> drain -> every
acknowledged event in ClickHouse -> the scenario's alert fired (if the outage outlasted its window)
and resolved. Every figure is on one clock that starts with the scenario.
"""

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from verify.core.checks import Check, CheckFailedError, CheckSkippedError, Context, Figures
from verify.core.targets import Targets
from verify.failover.alerts import judge
from verify.failover.injectors import Injector
from verify.failover.plan import FailoverPlan
from verify.failover.probes import (
    clickhouse_probe,
    distributed_probe,
    ingest_probe,
    kafka_probe,
    presto_clickhouse_probe,
    presto_probe,
)
from verify.failover.replication import READ_GAP_S, ReplicationWatch
from verify.failover.scenarios import Fault, Scenario
from verify.failover.timeline import Probe, Reading, history, read, steady
from verify.failover.traffic import Background, Prober, Producer, QueryLoad
from verify.load import latency
from verify.load.workloads import PrestoTpch
from verify.pipeline.checks import POLL_INTERVAL, remove_rows, visible_ids
from verify.smoke import clickhouse, presto

QUERY = "q06"
"""The background query: TPC-H Q6 on tpch.tiny, a lineitem scan on the workers, checked against its golden result."""
READY_POLL = 1.0
"""Seconds between two looks at whether the faulted pods are back."""
PROGRESS_EVERY = 5.0
"""Seconds between two progress lines while a scenario waits for its steady state."""


@dataclass
class Traffic:
    """What runs during one scenario."""

    prober: Prober
    queries: QueryLoad | None = None
    producer: Producer | None = None
    workload: PrestoTpch | None = None
    watch: ReplicationWatch | None = None
    started: list[Background] = field(default_factory=list)

    def start(self) -> None:
        """Start the prober and the background traffic."""
        for part in (self.prober, self.queries, self.producer):
            if part is not None:
                part.start()
                self.started.append(part)

    def stop(self) -> None:
        """Stop whatever still runs (the failure path)."""
        for part in self.started:
            part.stop.set()
        if self.watch is not None:
            self.watch.stop()


def probe_for(scenario: Scenario, targets: Targets, ca: str, run_id: str, timeout: float) -> Callable[[], None]:
    """The scenario's service probe."""
    return {
        "presto": lambda: presto_probe(targets, ca, timeout),
        "presto-clickhouse": lambda: presto_clickhouse_probe(targets, ca, timeout),
        "clickhouse": lambda: clickhouse_probe(targets, timeout),
        "clickhouse-distributed": lambda: distributed_probe(targets, run_id, timeout),
        "kafka": lambda: kafka_probe(targets, timeout),
        "ingest": lambda: ingest_probe(targets, run_id, timeout),
    }[scenario.probe]()


def wait_steady(prober: Prober, plan: FailoverPlan, context: Context, name: str) -> None:
    """Wait until K probes in a row pass, or fail with the window's probe history: not healthy before the fault."""
    started = prober.now()
    deadline, said = started + plan.settle, started
    while not steady(prober.probes, plan.consecutive):
        now = prober.now()
        if now > deadline or context.stopping.is_set():
            window = history([p for p in prober.probes if p.at >= started])
            figures: Figures = {
                "settle_s": plan.settle,
                "settle_probes": window.probes,
                "settle_failed_probes": window.failed,
            }
            raise CheckFailedError(
                f"not in a steady state before the fault: {plan.consecutive} probes in a row did not pass within "
                f"{plan.settle:g}s (--settle): {window.text()}",
                figures,
            )
        if now - said >= PROGRESS_EVERY:
            window = history([p for p in prober.probes if p.at >= started])
            context.progress(
                f"{name}: waiting for {plan.consecutive} passing probes in a row, {now - started:.0f}s of "
                f"{plan.settle:g}s: {window.text()}"
            )
            said = now
        time.sleep(plan.probe_interval)


def wait_recovered(
    prober: Prober, injector: Injector, fault: Fault, injected: float, plan: FailoverPlan, context: Context
) -> tuple[Reading, float]:
    """Wait until the pods are back and K probes in a row have passed since; the reading and when pods were ready."""
    deadline = injected + plan.recover_timeout
    ready_at: float | None = None
    next_look = 0.0
    while True:
        now = prober.now()
        if ready_at is None and now >= next_look:
            ready_at = now if injector.ready(fault) else None
            next_look = now + READY_POLL
        reading = read(prober.probes, injected, plan.consecutive)
        if ready_at is not None and reading.recovered is not None:
            settled = [p for p in prober.probes if p.at >= ready_at]
            if len(settled) >= plan.consecutive and steady(settled, plan.consecutive):
                return reading, ready_at
        if now > deadline or context.stopping.is_set():
            state = "pods not ready" if ready_at is None else "service not answering"
            raise CheckFailedError(
                f"not recovered within {plan.recover_timeout:g}s of the injection ({state}; "
                f"{reading.failures} of {reading.probes} probes failed, first: {reading.first_error})"
            )
        time.sleep(plan.probe_interval)


def latencies(outcomes: list, start: float, end: float) -> dict[str, float]:
    """Percentiles (ms) of the queries that started in [start, end) and passed."""
    chosen = [o.latency for o in outcomes if start <= o.intended < end and o.error is None]
    return latency.percentiles(latency.histogram(chosen))


def converge(targets: Targets, run_id: str, acked: set[str], seconds: float, context: Context) -> dict[str, int]:
    """Wait until ClickHouse shows every acknowledged event of the run (or `seconds` pass); rows per event id."""
    connection = clickhouse.client(targets, 20)
    deadline = time.monotonic() + seconds
    while True:
        counts = visible_ids(connection, targets.expected.events_table, run_id)
        if acked <= counts.keys() or time.monotonic() > deadline or context.stopping.is_set():
            return counts
        time.sleep(POLL_INTERVAL)


def run_scenario(context: Context, scenario: Scenario, injector: Injector, plan: FailoverPlan) -> Figures:
    """Run one scenario end to end; its figures, or CheckFailedError carrying those measured so far."""
    fault = scenario.fault_for(plan.hold)
    method = injector.method(fault)
    if method is None:
        raise CheckSkippedError(f"{fault.kind} needs Chaos Mesh, which is not installed (or not chosen)")
    targets, run_id = context.targets, f"{context.run_id}-{scenario.name}"
    figures: Figures = {"method": method}
    with contextlib.ExitStack() as stack:
        ca = stack.enter_context(presto.ca_file(targets))
        origin, wall = time.perf_counter(), time.time()
        probe = probe_for(scenario, targets, ca, run_id, plan.probe_timeout)
        traffic = Traffic(Prober(probe, plan.probe_interval, plan.probe_timeout, origin))
        if scenario.replication:
            traffic.watch = ReplicationWatch(targets, run_id, scenario.replication, traffic.prober.now)
            fault = traffic.watch.aim(fault, plan.settle)
        if scenario.queries:
            traffic.workload = PrestoTpch(targets, ca, "tiny", plan.query_timeout)
            traffic.queries = QueryLoad(traffic.workload, QUERY, plan.streams, origin)
        if scenario.produce:
            table = targets.expected.events_table
            context.cleanup.add(f"ClickHouse rows of run {run_id} in {table}", lambda: remove_rows(targets, run_id))
            traffic.producer = Producer(targets, run_id, plan.rate, plan.converge_timeout, origin)
        stack.callback(traffic.stop)
        traffic.start()
        try:
            measure(context, scenario, injector, plan, traffic, fault, figures, wall)
        except CheckFailedError as failure:
            failure.figures = {**figures, **failure.figures}
            raise
        finally:
            injector.end(fault)  # a no-op once ended; ends a fault the failure path left in place
    return figures


def measure(
    context: Context,
    scenario: Scenario,
    injector: Injector,
    plan: FailoverPlan,
    traffic: Traffic,
    fault: Fault,
    figures: Figures,
    wall: float,
) -> None:
    """The scenario's phases after the traffic started; fills `figures` as it goes."""
    prober = traffic.prober
    wait_steady(prober, plan, context, f"failover.{scenario.name}")
    baseline_from = prober.now()
    context.stopping.wait(plan.baseline)
    if context.stopping.is_set():
        raise CheckFailedError("interrupted before the injection")
    injected = prober.now()
    figures["injected_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    figures["injected"] = injector.inject(fault)
    figures["injected_at_s"] = round(injected, 3)
    if traffic.watch is not None:
        traffic.watch.start(injected)
    context.stopping.wait(fault.hold)
    injector.end(fault)
    figures["fault_removed"] = "yes"
    reading, ready_at = wait_recovered(prober, injector, fault, injected, plan, context)
    recovered = reading.recovered if reading.recovered is not None else injected
    figures |= {
        "ttr_s": round(recovered - injected, 3),
        "pods_ready_s": round(ready_at - injected, 3),
        "error_window_s": round(recovered - reading.first_failure, 3) if reading.first_failure is not None else 0.0,
        "probes": reading.probes,
        "failed_probes": reading.failures,
        "availability_pct": reading.availability,
        "probe_interval_ms": round(plan.probe_interval * 1000),
    }
    if reading.first_error:
        figures["first_probe_error"] = reading.first_error
    ended = prober.now()
    prober.finish(plan.probe_timeout + 1)
    problems = drain(context, plan, traffic, figures, (baseline_from, injected, recovered))
    if traffic.watch is not None:
        watched, found = traffic.watch.converge(plan.converge_timeout, context.stopping)
        figures |= watched
        problems += found
    if scenario.replication == "replica":
        gap = longest_gap([p for p in prober.probes if p.at >= injected])
        figures["longest_read_gap_s"] = round(gap, 3)
        if gap > READ_GAP_S:
            failed = f"failed for {gap:.1f}s in a row (at most {READ_GAP_S:g})"
            problems.append(f"Distributed reads {failed}: the shard's other replica did not take over")
    if scenario.alert and plan.alerts and reading.first_failure is not None:
        outage = (wall + reading.first_failure, wall + recovered)
        alert_figures, problem = judge(context.targets.endpoints.prometheus, scenario.alert, outage, wall + ended + 300)
        figures |= alert_figures
        problems += [problem] if problem else []
    if problems:
        raise CheckFailedError("; ".join(problems))


def longest_gap(probes: list[Probe]) -> float:
    """The longest time from a failed probe to the next passing one (or the last probe), in seconds."""
    longest, began = 0.0, None
    for probe in probes:
        if not probe.ok and began is None:
            began = probe.at
        elif probe.ok and began is not None:
            longest, began = max(longest, probe.at - began), None
    if began is not None and probes:
        longest = max(longest, probes[-1].at - began)
    return longest


def drain(
    context: Context, plan: FailoverPlan, traffic: Traffic, figures: Figures, marks: tuple[float, float, float]
) -> list[str]:
    """Stop the traffic, let it finish, count failed queries and lost or duplicated events; the problems found."""
    baseline_from, injected, recovered = marks
    problems: list[str] = []
    if traffic.queries is not None and traffic.workload is not None:
        if not traffic.queries.finish(plan.query_timeout + 5):
            problems.append(f"background queries still running {plan.query_timeout + 5:g}s after the stop")
        outcomes = traffic.queries.outcomes
        before, during = latencies(outcomes, baseline_from, injected), latencies(outcomes, injected, recovered + 1e-9)
        failed = [o for o in outcomes if o.error is not None]
        figures |= {
            "queries": len(outcomes),
            "failed_queries": len(failed),
            "p99_baseline_ms": round(before.get("p99", 0), 1),
            "p99_during_ms": round(during.get("p99", 0), 1),
        }
        if failed:
            figures["first_query_error"] = failed[0].error or ""
        problems += traffic.workload.wrong()
    if traffic.producer is not None:
        left = traffic.producer.drain(plan.converge_timeout)
        ledger = traffic.producer.ledger
        acked = set(ledger.acked)
        counts = converge(context.targets, traffic.producer.run_id, acked, plan.converge_timeout, context)
        lost = sorted(acked - counts.keys())
        figures |= {
            "events_sent": ledger.sent,
            "events_acked": len(acked),
            "events_not_acked": ledger.failed + left,
            "events_lost": len(lost),
            "events_duplicated": sum(counts.values()) - len(counts),
        }
        if lost:
            problems.append(f"{len(lost)} acknowledged events never reached ClickHouse (first: {lost[0]})")
        if not acked:
            problems.append(f"Kafka acknowledged none of {ledger.sent} events: {ledger.first_error}")
    return problems


def where(fault: Fault) -> str:
    """What a fault hits, for `plan` and the reports."""
    return f"{fault.kind} on {', '.join(fault.workloads)}" + (f" <-> {fault.peer}" if fault.peer else "")


def checks(scenarios: list[Scenario], injector: Injector, plan: FailoverPlan) -> list[Check]:
    """One check per scenario, in order."""

    def probe(scenario: Scenario) -> Callable[[Context], Figures]:
        return lambda context: run_scenario(context, scenario, injector, plan)

    return [
        Check(
            name=f"failover.{scenario.name}",
            scenario="failover",
            target=where(scenario.fault),
            probe=probe(scenario),
            deadline=plan.deadline(scenario),
            tags=frozenset({"failover", "destructive", scenario.probe.split("-")[0]}),
        )
        for scenario in scenarios
    ]
