"""The load scenario: a workload (TPC-H on Presto, ClickHouse point queries or Kafka produces), then its SLOs."""

import random
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.targets import Targets
from verify.load import latency
from verify.load.driver import Operation, Outcome, closed_loop, constant_arrivals, open_loop, poisson_arrivals
from verify.load.plan import WORKLOADS, LoadPlan
from verify.load.sampler import Sampler
from verify.load.slo import LATENCY, Verdict, judge
from verify.load.workloads import KafkaProduce, PrestoTpch, clickhouse_point_queries
from verify.smoke.kafka import idempotent_producer, scratch_topic
from verify.smoke.presto import ca_file

KNEE_GAIN = 0.5
"""A concurrency stage has passed the knee when its throughput grows by less than half of its added concurrency."""
KNEE_LATENCY = 2.0
"""A rate stage has passed the knee when it starts under 95% of its rate, errs over 1%, or doubles the first p99."""


@dataclass
class Stage:
    """One stage of a ramp (or the whole run): its concurrency or rate, outcomes and figures."""

    value: float | None
    outcomes: list[Outcome]
    figures: dict = field(default_factory=dict)


@dataclass
class LoadRun:
    """What a load run measured, for the check's figures and the load reports."""

    plan: LoadPlan
    stages: list[Stage]
    queries: dict[str, dict] = field(default_factory=dict)
    overall: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict)
    fingerprints: dict[str, dict[str, int]] = field(default_factory=dict)
    knee: float | None = None
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def outcomes(self) -> list[Outcome]:
        return [o for stage in self.stages for o in stage.outcomes]


def measured(figures: dict) -> dict[str, float | None]:
    """The figures objectives can name, from a run's or a stage's summary (None: not measured)."""
    return {
        **latency.latency_of(figures),
        **{name: figures.get(name) for name in ("error_ratio", "achieved_ratio", "qps", "qph")},
    }


def _permutation(queries: tuple[str, ...], seed: int) -> list[str]:
    order = list(queries)
    random.Random(seed).shuffle(order)
    return order


class LoadSession:
    """Runs one plan as two checks (the load, then its SLOs) and keeps the run for the reports."""

    def __init__(self, plan: LoadPlan):
        self.plan = plan
        self.run: LoadRun | None = None
        self._stop = threading.Event()
        self._tpch: PrestoTpch | None = None

    @contextmanager
    def _operation(self, context: Context) -> Iterator[Operation]:
        plan, targets = self.plan, context.targets
        with ExitStack() as stack:
            if plan.workload == "tpch":
                self._tpch = PrestoTpch(targets, stack.enter_context(ca_file(targets)), plan.schema, plan.timeout)
                yield self._tpch
            elif plan.workload == "clickhouse":
                yield clickhouse_point_queries(targets, plan.timeout, plan.seed)
            else:
                partitions = targets.expected.kafka_partitions
                topic = scratch_topic(context, f"verify-load-{context.run_id}", partitions)
                produce = KafkaProduce(idempotent_producer(targets, plan.timeout), topic, context.run_id, plan.timeout)
                stack.callback(produce.close)
                yield produce

    def _drive(self, operation: Operation, origin: float) -> list[Stage]:
        plan, stop = self.plan, self._stop
        labels = plan.queries if plan.workload == "tpch" else (plan.workload,)

        def closed(streams: list[list[str]], seconds: float | None = None) -> list[Outcome]:
            return closed_loop(streams, operation, stop, seconds, origin)

        def opened(rate: float, seconds: float) -> list[Outcome]:
            if plan.arrivals == "poisson":
                arrivals = poisson_arrivals(rate, seconds, plan.seed)
            else:
                arrivals = constant_arrivals(rate, seconds)
            rng = random.Random(plan.seed)
            chosen = [rng.choice(labels) for _ in arrivals]
            return open_loop(arrivals, chosen.__getitem__, operation, plan.workers, stop, origin)

        if plan.mode == "power":
            runs = [closed([[query] * (plan.warmup + plan.runs)])[plan.warmup :] for query in labels]
            return [Stage(None, [o for measured in runs for o in measured])]
        if plan.mode == "throughput":
            return [Stage(plan.streams, closed([_permutation(labels, plan.seed + s) for s in range(plan.streams)]))]
        if plan.mode == "open":
            return [Stage(plan.rate, opened(plan.rate, plan.duration))]
        if plan.ramp == "rate":
            return [Stage(rate, opened(rate, plan.stage_seconds)) for rate in plan.stages]
        return [
            Stage(n, closed([_permutation(labels, plan.seed + s) for s in range(int(n))], plan.stage_seconds))
            for n in plan.stages
        ]

    def _knee(self, stages: list[Stage]) -> float | None:
        """The last stage before the first saturated one (None: no ramp, or the first stage is saturated)."""
        if self.plan.mode != "ramp":
            return None
        knee = None
        for before, stage in zip([None, *stages], stages, strict=False):
            qps = stage.figures.get("qps", 0.0)
            if self.plan.ramp == "rate":
                first_p99 = latency.latency_of(stages[0].figures).get("p99", 0.0)
                saturated = (
                    (stage.figures.get("achieved_ratio") or 0) < 0.95
                    or stage.figures.get("error_ratio", 1) > 0.01
                    or latency.latency_of(stage.figures).get("p99", 0.0) > KNEE_LATENCY * first_p99
                )
            elif before is None:
                saturated = qps <= 0
            else:
                ideal = (stage.value or 0) / (before.value or 1) - 1
                saturated = qps < before.figures.get("qps", 0.0) * (1 + KNEE_GAIN * ideal)
            if saturated:
                return knee
            knee = stage.value
        return knee

    def load(self, context: Context) -> Figures:
        """Run the plan; its figures; fails on a wrong TPC-H result or when every operation failed."""
        plan = self.plan
        context.cleanup.add("load driver threads", self._stop.set)
        sampler = Sampler(context.targets.endpoints.prometheus, context.targets.namespace, plan.sample_interval)
        with self._operation(context) as operation:
            sampler.start()
            try:
                stages = self._drive(operation, sampler.began)
            finally:
                sampler.stop()
        run = LoadRun(plan, stages, samples=sampler.report())
        for stage in stages:
            stage.figures = latency.summary(stage.outcomes, plan.scheduled, stage.value if plan.scheduled else None)
        run.overall = latency.summary(run.outcomes, plan.scheduled, plan.rate if plan.mode == "open" else None)
        for label in dict.fromkeys(o.label for o in run.outcomes):
            run.queries[label] = latency.summary([o for o in run.outcomes if o.label == label], plan.scheduled)
        if plan.mode == "power":
            medians = [q["latency_ms"]["raw"].get("p50", 0.0) for q in run.queries.values() if q.get("ok")]
            run.overall["power_geomean_ms"] = latency.geometric_mean(medians)
        if self._tpch is not None:
            found = self._tpch.fingerprints.items()
            run.fingerprints = {query: {str(f): n for f, n in counts.items()} for query, counts in found}
        run.knee = self._knee(stages)
        self.run = run
        figures = self.figures()
        wrong = self._tpch.wrong() if self._tpch is not None else []
        if wrong:  # warm-up runs included
            raise CheckFailedError(f"wrong TPC-H results: {'; '.join(wrong)[:1000]}", figures)
        if run.outcomes and not run.overall["ok"]:
            first = next(iter(run.overall.get("error_kinds", {})), "")
            raise CheckFailedError(f"all {run.overall['count']} operations failed: {first}", figures)
        return figures

    def figures(self) -> Figures:
        """The run's headline figures, flat, for the check's record."""
        assert self.run is not None
        overall = self.run.overall
        flat: Figures = {"operations": overall["count"], "errors": overall["errors"]}
        for name, value in measured(overall).items():
            if value is not None:
                flat[f"{name}_ms" if name in LATENCY else name] = value
        for name in ("late_starts", "power_geomean_ms"):
            if overall.get(name) is not None:
                flat[name] = overall[name]
        if "start_lag_ms" in overall:
            flat["start_lag_p99_ms"] = overall["start_lag_ms"].get("p99", 0.0)
        if self.run.knee is not None:
            flat["knee"] = self.run.knee
        if self.run.samples.get("no_data"):
            flat["prometheus_no_data"] = ",".join(self.run.samples["no_data"])
        return flat

    def slo(self, context: Context) -> Figures:
        """Judge the objectives; a ramp meets them when at least one stage does (its highest is the capacity)."""
        if self.run is None:
            raise CheckFailedError("the load check did not finish, so there is nothing to judge")
        objectives = list(self.plan.objectives)
        if self.plan.mode == "ramp":
            meeting = [s for s in self.run.stages if all(v.met for v in judge(objectives, measured(s.figures)))]
            best = meeting[-1] if meeting else self.run.stages[0]
            self.run.verdicts = judge(objectives, measured(best.figures))
            figures: Figures = {
                "objectives": len(objectives),
                "capacity": "none" if best.value is None or not meeting else best.value,
            }
        else:
            self.run.verdicts = judge(objectives, measured(self.run.overall))
            figures = {"objectives": len(objectives)}
        breached = [str(v) for v in self.run.verdicts if not v.met]
        figures["breached"] = len(breached)
        if breached:
            raise CheckFailedError("; ".join(breached), figures)
        return figures | {"met": "; ".join(str(v) for v in self.run.verdicts)}

    def checks(self, targets: Targets) -> list[Check]:
        """The load check, then the SLO check."""
        name = f"load.{self.plan.workload}.{self.plan.mode}"
        endpoints = targets.endpoints
        context_target = {"tpch": endpoints.presto, "clickhouse": endpoints.clickhouse_http}.get(
            self.plan.workload, endpoints.kafka
        )
        tags = frozenset({"load", WORKLOADS[self.plan.workload]})
        return [
            Check(
                name=name,
                scenario="load",
                target=context_target,
                probe=self.load,
                deadline=self.plan.deadline(),
                tags=tags,
            ),
            Check(name="load.slo", scenario="load", target=context_target, probe=self.slo, deadline=10, tags=tags),
        ]
