"""How `verify restore-drill` runs: its deadlines and the recovery point objective it judges."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DrillPlan:
    """Deadlines of each step, and the oldest backup the drill accepts."""

    start_timeout: float = 600.0
    """Seconds the scratch server gets to answer."""
    download_timeout: float = 3600.0
    """Seconds one backup's download may take."""
    restore_timeout: float = 3600.0
    """Seconds one backup's restore may take."""
    query_timeout: float = 300.0
    """Seconds one comparison query may take."""
    max_rpo: float = 26 * 3600.0
    """Seconds: a newest backup older than this fails the drill (a daily schedule plus two hours)."""

    def deadline(self, shards: int) -> float:
        """Seconds the whole drill may take."""
        return self.start_timeout + shards * (self.download_timeout + self.restore_timeout) + 4 * self.query_timeout
