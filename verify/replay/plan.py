"""Where `verify replay` starts reading again, and how long ClickHouse gets; checked before anything runs."""

from dataclasses import dataclass
from datetime import datetime


class PlanError(ValueError):
    """A replay request that cannot be run as given; the message says why."""


@dataclass(frozen=True)
class ReplayPlan:
    """Replay the topic from each partition's offset, or from the first event at or after a time."""

    offsets: dict[int, int] | None = None
    """Partition -> first offset to read again; the key -1 stands for every partition."""
    from_time_ms: int | None = None
    """Milliseconds since the epoch: each partition from its first event at or after it."""
    converge_timeout: float = 120.0
    """Seconds ClickHouse gets to show every replayed event."""
    max_events: int = 1_000_000
    """The most events the replay may re-read: a bigger range is refused (its ids are held in memory)."""

    def __post_init__(self) -> None:
        if (self.offsets is None) == (self.from_time_ms is None):
            raise PlanError("give exactly one of --from-offset and --from-time")


EVERY_PARTITION = -1


def parse_offsets(text: str) -> dict[int, int]:
    """`N` (every partition from offset N) or `P=N[,P=N...]` (each named partition from its own)."""
    try:
        if "=" not in text:
            offset = int(text)
            offsets = {EVERY_PARTITION: offset}
        else:
            offsets = {int(p): int(o) for p, o in (item.split("=", 1) for item in text.split(","))}
    except ValueError:
        raise PlanError(f"{text!r}: give N or PARTITION=N[,PARTITION=N...], e.g. 1200 or 0=1200,2=980") from None
    if any(p < 0 and p != EVERY_PARTITION for p in offsets) or any(o < 0 for o in offsets.values()):
        raise PlanError(f"{text!r}: partitions and offsets are 0 or more")
    return offsets


def parse_time(text: str) -> int:
    """An ISO 8601 time with its zone (2026-11-29T13:00:00Z) as milliseconds since the epoch."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PlanError(f"{text!r}: give an ISO 8601 time with its zone, e.g. 2026-11-29T13:00:00Z") from None
    if moment.tzinfo is None:
        raise PlanError(f"{text!r}: give the zone too (Z or +HH:MM): a replay point must not depend on the machine")
    return int(moment.timestamp() * 1000)
