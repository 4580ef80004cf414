"""What `verify pipeline` sends and how long it waits; checked before anything runs."""

from dataclasses import dataclass


@dataclass(frozen=True)
class PipelinePlan:
    """How many events the pipeline check sends, and how long ClickHouse gets to show them."""

    events: int = 1000
    converge_timeout: float = 120.0
    """Seconds after the last acknowledgement before an event not in ClickHouse counts as lost."""
