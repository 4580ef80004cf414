"""Service-level objectives for a load run: `p95<2s`, `error_ratio<0.01`, `qph>100`; parsed, then judged."""

import operator
import re
from dataclasses import dataclass

LATENCY = ("p50", "p90", "p95", "p99", "p99.9", "max")
"""Latency percentiles, in ms or s (corrected for coordinated omission when the run had a schedule)."""
RATIOS = ("error_ratio", "achieved_ratio")
RATES = ("qps", "qph")
FIGURES = LATENCY + RATIOS + RATES
OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_SYNTAX = re.compile(r"\s*([a-z0-9_.]+)\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*")
ALLOWED = (
    f"FIGURE OP NUMBER[UNIT], FIGURE one of {', '.join(FIGURES)}; OP one of <, <=, >, >=; "
    "latency needs a unit (ms or s), the others take none: e.g. p95<2s, error_ratio<0.01, qph>100"
)


@dataclass(frozen=True)
class Objective:
    """One objective: a figure, a comparison and a threshold (latency in ms)."""

    text: str
    figure: str
    op: str
    threshold: float

    def met_by(self, value: float) -> bool:
        """Whether a measured value meets it."""
        return OPERATORS[self.op](value, self.threshold)


def parse(text: str) -> Objective:
    """An objective from its text; ValueError saying what is allowed."""
    match = _SYNTAX.fullmatch(text)
    if not match or match[1] not in FIGURES or (match[1] in LATENCY) != bool(match[4]):
        raise ValueError(f"{text!r} is not an objective: {ALLOWED}")
    figure, op, number, unit = match.groups()
    return Objective(text.strip(), figure, op, float(number) * (1000 if unit == "s" else 1))


@dataclass(frozen=True)
class Verdict:
    """An objective against what the run measured (None: the run did not measure that figure)."""

    objective: Objective
    value: float | None

    @property
    def met(self) -> bool:
        return self.value is not None and self.objective.met_by(self.value)

    def __str__(self) -> str:
        unit = " ms" if self.objective.figure in LATENCY else ""
        found = "not measured" if self.value is None else f"{self.value:g}{unit}"
        return f"{self.objective.figure} = {found} ({'meets' if self.met else 'breaches'} {self.objective.text})"


def judge(objectives: list[Objective], measured: dict[str, float | None]) -> list[Verdict]:
    """Each objective against the run's figure of that name."""
    return [Verdict(o, measured.get(o.figure)) for o in objectives]
