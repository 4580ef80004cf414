"""The failover scenarios, as data: what each breaks, the traffic through it, its probe, the alert that should fire."""

from dataclasses import dataclass, replace

from components import names


@dataclass(frozen=True)
class Fault:
    """What to break: a kind of fault on the pods of some workloads, for `hold` seconds."""

    scenario: str
    kind: str
    """pod-kill, partition or cpu-stress."""
    workloads: tuple[str, ...]
    """The workloads (Deployments or StatefulSets) whose pods are hit; for a partition, one side."""
    peer: str | None = None
    """The partition's other side."""
    hold: float = 0.0
    """Seconds the fault lasts; a pod kill is instant and its controller recovers it."""
    pod: str | None = None
    """The one pod a pod kill hits, by name (None: any one pod of the workload); chosen when the scenario runs."""


@dataclass(frozen=True)
class Scenario:
    """One failover scenario: its fault (held for its default time), traffic, probe and alert."""

    fault: Fault
    probe: str
    """What the prober asks: presto, presto-clickhouse, clickhouse, kafka or ingest."""
    queries: bool
    """Background Presto queries run through it."""
    produce: bool
    """A background producer runs through it; the data-consistency check follows."""
    alert: str | None
    """The alert that should fire if the outage outlasts its `for`."""
    proves: str
    replication: str | None = None
    """What the scenario watches in ClickHouse's replication: `replica` (the killed replica, its catch-up and its
    shard's convergence) or `keeper` (read-only replicas while Keeper lost a node); None for neither."""

    @property
    def name(self) -> str:
        """The scenario's name, as --scenario takes it."""
        return self.fault.scenario

    def fault_for(self, hold: float | None) -> Fault:
        """The fault to inject, held for `hold` seconds if given, else for the scenario's default."""
        return self.fault if hold is None else replace(self.fault, hold=hold)


SCENARIOS = (
    Scenario(
        fault=Fault(scenario="worker-kill", kind="pod-kill", workloads=(names.PRESTO_WORKER,)),
        probe="presto",
        queries=True,
        produce=False,
        alert="PrestoWorkersBelowMinimum",
        proves="queries survive losing a worker: how many fail, how long until Presto answers again",
    ),
    Scenario(
        fault=Fault(scenario="coordinator-kill", kind="pod-kill", workloads=(names.PRESTO_COORDINATOR,)),
        probe="presto",
        queries=True,
        produce=False,
        alert="PrestoCoordinatorDown",
        proves="the coordinator comes back and workers rejoin it: the outage every client sees",
    ),
    Scenario(
        fault=Fault(scenario="clickhouse-kill", kind="pod-kill", workloads=(names.CLICKHOUSE,)),
        probe="clickhouse",
        queries=False,
        produce=True,
        alert="ClickHouseDown",
        proves="ingestion resumes after ClickHouse restarts, with no acknowledged event lost",
    ),
    Scenario(
        fault=Fault(scenario="clickhouse-replica-kill", kind="pod-kill", workloads=(names.CLICKHOUSE,)),
        probe="clickhouse-distributed",
        queries=False,
        produce=True,
        alert=None,
        proves="reads through the Distributed table outlive a replica, which catches up: no acknowledged event lost",
        replication="replica",
    ),
    Scenario(
        fault=Fault(scenario="keeper-loss", kind="pod-kill", workloads=(names.CLICKHOUSE_KEEPER,)),
        probe="ingest",
        queries=False,
        produce=True,
        alert=None,
        proves="one Keeper node of three lost: ingestion and reads go on, no replica stays read-only",
        replication="keeper",
    ),
    Scenario(
        fault=Fault(scenario="kafka-kill", kind="pod-kill", workloads=(names.KAFKA,)),
        probe="kafka",
        queries=False,
        produce=True,
        alert="ScrapeTargetDown",
        proves="producers ride out a broker restart: no acknowledged event lost, duplicates counted",
    ),
    Scenario(
        fault=Fault(
            scenario="presto-clickhouse-partition",
            kind="partition",
            workloads=(names.PRESTO_COORDINATOR, names.PRESTO_WORKER),
            peer=names.CLICKHOUSE,
            hold=30,
        ),
        probe="presto-clickhouse",
        queries=True,
        produce=False,
        alert=None,
        proves="queries on the clickhouse catalog fail fast while cut off and work again once the network heals",
    ),
    Scenario(
        fault=Fault(
            scenario="clickhouse-kafka-partition",
            kind="partition",
            workloads=(names.CLICKHOUSE,),
            peer=names.KAFKA,
            hold=30,
        ),
        probe="ingest",
        queries=False,
        produce=True,
        alert=None,
        proves="the Kafka engine catches up after a partition: no acknowledged event lost",
    ),
    Scenario(
        fault=Fault(scenario="worker-cpu-stress", kind="cpu-stress", workloads=(names.PRESTO_WORKER,), hold=60),
        probe="presto",
        queries=True,
        produce=False,
        alert=None,
        proves="what saturated workers do to query latency: p99 under stress against the baseline",
    ),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
