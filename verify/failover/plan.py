"""How `verify failover` runs its scenarios and the autoscaling check; checked before anything runs."""

from dataclasses import dataclass

from verify.failover.scenarios import Scenario

AUTOSCALING = "autoscaling"
"""The autoscaling check's name, as --scenario takes it; it runs after the fault scenarios."""


class PlanError(ValueError):
    """A plan value out of its range; `field` names it (the CLI maps it to its flag)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class FailoverPlan:
    """How every scenario is run."""

    probe_interval: float = 0.1
    """Seconds between probes: at most 0.1."""
    probe_timeout: float = 2.0
    consecutive: int = 5
    """K: passing probes in a row that count as recovered (and as steady)."""
    settle: float = 30.0
    """Seconds the service gets to reach a steady state (K probes in a row pass) before the traffic and the fault."""
    baseline: float = 10.0
    """Seconds of traffic before the injection: the baseline latencies."""
    hold: float | None = None
    """Seconds each fault lasts (None: each scenario's own)."""
    recover_timeout: float = 300.0
    streams: int = 2
    rate: float = 50.0
    """Events per second the background producer sends."""
    converge_timeout: float = 120.0
    alerts: bool = True
    """Judge each scenario's alert in Prometheus."""
    query_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.probe_interval <= 0.1:
            raise PlanError("probe_interval", "the probe interval must be above 0 and at most 0.1 seconds")
        if self.settle < self.consecutive * self.probe_interval:
            shortest = self.consecutive * self.probe_interval
            apart = f"{self.consecutive} probes {self.probe_interval:g}s apart"
            raise PlanError("settle", f"too short for {apart}: at least {shortest:g} seconds")

    def deadline(self, scenario: Scenario) -> float:
        """Seconds the whole scenario may take."""
        hold = scenario.fault.hold if self.hold is None else self.hold
        return self.settle + self.baseline + hold + self.recover_timeout + self.converge_timeout + 180


@dataclass(frozen=True)
class ScalePlan:
    """How the autoscaling check drives and watches the workers."""

    streams: int = 8
    """Concurrent TPC-H streams that drive the CPU when Chaos Mesh cannot."""
    schema: str = "sf1"
    out_timeout: float = 600.0
    """Seconds the HPA gets to add a worker."""
    in_margin: float = 300.0
    """Seconds beyond the scale-down stabilization window the HPA gets to remove it again."""
    poll: float = 2.0
    query_timeout: float = 300.0
