"""`verify replay`'s request is checked before anything runs: consent, one starting point, its grammar."""

from typing import Any

import pytest

from verify.cli import replay
from verify.cli.parser import parser
from verify.core.errors import UsageError
from verify.replay.plan import EVERY_PARTITION, PlanError, ReplayPlan, parse_offsets, parse_time

NO_TARGETS: Any = None
"""prepare refuses before it reads the stack."""


def prepared(*flags: str, planning: bool = False) -> object:
    """What `verify replay FLAGS` prepares (or the UsageError it raises)."""
    return replay.prepare(parser().parse_args(["replay", *flags]), NO_TARGETS, planning)


def test_replay_needs_consent_to_run_but_not_to_be_planned() -> None:
    with pytest.raises(UsageError, match="--allow-destructive"):
        prepared("--from-offset", "0")
    assert prepared("--from-offset", "0", planning=True)


def test_replay_needs_exactly_one_starting_point() -> None:
    with pytest.raises(UsageError, match="exactly one"):
        prepared("--allow-destructive")
    with pytest.raises(SystemExit):
        prepared("--from-offset", "0", "--from-time", "2026-11-29T13:00:00Z")


@pytest.mark.parametrize(
    ("text", "offsets"),
    [("1200", {EVERY_PARTITION: 1200}), ("0=5,2=980", {0: 5, 2: 980})],
)
def test_offsets_name_every_partition_or_each(text: str, offsets: dict[int, int]) -> None:
    assert parse_offsets(text) == offsets


@pytest.mark.parametrize("text", ["", "x", "0=", "0=-1", "-5", "-2=3"])
def test_bad_offsets_are_refused_with_the_grammar(text: str) -> None:
    with pytest.raises(PlanError):
        parse_offsets(text)


def test_a_time_needs_its_zone() -> None:
    assert parse_time("2026-11-29T13:00:00Z") == parse_time("2026-11-29T14:00:00+01:00") == 1795957200000
    with pytest.raises(PlanError, match="zone"):
        parse_time("2026-11-29T13:00:00")
    with pytest.raises(UsageError, match="--from-time"):
        prepared("--from-time", "yesterday", "--allow-destructive")


def test_a_plan_has_one_start() -> None:
    with pytest.raises(PlanError):
        ReplayPlan(offsets={0: 1}, from_time_ms=1)
