"""What `verify load` runs: the workload, the mode and its sizes, the objectives; checked before anything runs."""

from dataclasses import dataclass

from verify import tpch
from verify.core.errors import UsageError
from verify.load.slo import Objective

WORKLOADS = {"tpch": "presto", "clickhouse": "clickhouse", "kafka": "kafka"}
"""Each workload and the service it loads."""
MODES = ("power", "throughput", "open", "ramp")
TPCH_ONLY = ("power", "throughput")
ARRIVALS = ("constant", "poisson")
RAMPS = ("concurrency", "rate")


@dataclass(frozen=True)
class LoadPlan:
    """What to run: the workload, the mode and its sizes, the objectives."""

    workload: str = "tpch"
    mode: str = "power"
    schema: str = "tiny"
    queries: tuple[str, ...] = tpch.QUERIES
    runs: int = 3
    warmup: int = 1
    streams: int = 2
    rate: float = 2.0
    duration: float = 30.0
    arrivals: str = "constant"
    ramp: str = "concurrency"
    stages: tuple[float, ...] = (1, 2, 4, 8)
    stage_seconds: float = 30.0
    workers: int = 64
    """Operations an open loop may have in flight; when all are busy, the next ones start late."""
    timeout: float = 300.0
    """Seconds one operation may take."""
    sample_interval: float = 5.0
    seed: int = 1
    objectives: tuple[Objective, ...] = ()

    def __post_init__(self) -> None:
        if self.mode == "ramp" and self.ramp == "concurrency" and any(v != int(v) for v in self.stages):
            raise UsageError(f"--stages {','.join(map(str, self.stages))}: a concurrency ramp takes whole numbers")
        if self.warmup < 0:
            raise UsageError(f"--warmup {self.warmup}: must be 0 or more")
        if self.mode in TPCH_ONLY and self.workload != "tpch":
            raise UsageError(f"--mode {self.mode} runs TPC-H: use --workload tpch, or --mode open or ramp")
        unknown = sorted(set(self.queries) - set(tpch.QUERIES))
        if unknown:
            raise UsageError(f"--queries: unknown {', '.join(unknown)}; use q01 to q22")
        tpch.scale_factor(self.schema)

    @property
    def scheduled(self) -> bool:
        """Whether operations have intended start times (open loop), so latency can be corrected."""
        return self.mode == "open" or (self.mode == "ramp" and self.ramp == "rate")

    def deadline(self) -> float:
        """Seconds the load check may take: the plan's own length, with every operation's timeout as margin."""
        per_query = self.timeout * len(self.queries) if self.workload == "tpch" else self.timeout
        length = {
            "power": per_query * (self.runs + self.warmup),
            "throughput": per_query,
            "open": self.duration + self.timeout,
            "ramp": len(self.stages) * (self.stage_seconds + self.timeout),
        }[self.mode]
        return length + 60
