"""What a replication scenario watches in ClickHouse: which replica it kills, its catch-up, the shards' convergence.

Everything is read through the one server verify reaches, which reads the others with `remote`
(verify/smoke/replication.py): the killed replica is never that server, so the reads go on while it is down.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from clickhouse_driver import Client
from clickhouse_driver.errors import Error as ClickHouseError

from components.data.clickhouse.config import DATABASE, LOCAL_TABLE
from verify.core.checks import CheckFailedError, CheckSkippedError, Figures
from verify.core.targets import Targets
from verify.failover.scenarios import Fault
from verify.smoke import clickhouse
from verify.smoke.replication import Health, ReplicaState, Server, first_line, login, read_health, remote

LOCAL = f"{DATABASE}.{LOCAL_TABLE}"
"""Each server's own part of the events, replicated within its shard."""
POLL = 0.5
"""Seconds between two looks at the replicas while the fault lasts and after."""
TIMEOUT = 10.0
"""Seconds one read may take."""
READ_GAP_S = 5.0
"""Seconds reads through the Distributed table may fail in a row while one replica is down: past them, its
shard's other replica did not take over (a kill -9 fails the one read in flight, and the next goes elsewhere)."""


@dataclass(frozen=True)
class Victim:
    """The replica a replica kill hits, and the other replicas of its shard."""

    name: str
    """Its replica name: the pod's name."""
    server: Server
    peers: tuple[Server, ...]


def choose_victim(health: Health, reached: str) -> Victim | None:
    """The last replica of the events table, in a shard of two or more, that is not the server verify reads through."""
    states = [s for s in health.replicas if s.table == LOCAL]
    by_shard: dict[int, list[ReplicaState]] = {}
    for state in states:
        by_shard.setdefault(state.server.shard, []).append(state)
    candidates = [s for s in states if len(by_shard[s.server.shard]) >= 2 and s.name != reached]
    if not candidates:
        return None
    chosen = max(candidates, key=lambda s: (s.server.shard, s.server.replica))
    peers = tuple(s.server for s in by_shard[chosen.server.shard] if s is not chosen)
    return Victim(chosen.name, chosen.server, peers)


class ReplicationWatch:
    """Aims a replication scenario's fault, samples the replicas while it lasts, and judges their recovery."""

    def __init__(self, targets: Targets, run_id: str, mode: str, now: Callable[[], float]):
        self._targets, self._run_id, self._mode, self._now = targets, run_id, mode, now
        self._login = login(targets)
        self.victim: Victim | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._went_down = False
        self._injected = 0.0
        self.back_at: float | None = None
        """When the killed replica answered again, on the scenario's clock."""
        self.behind: int | None = None
        self._held = 0
        self._target = 0
        self.caught_up_at: float | None = None
        self.readonly_peak = 0
        self.sessions_low: int | None = None
        self.samples = 0
        self.errors: list[str] = []

    def _client(self) -> Client:
        return clickhouse.client(self._targets, TIMEOUT)

    def aim(self, fault: Fault, settle: float) -> Fault:
        """Wait (up to `settle` s) for healthy replication; the fault, aimed at a replica for a replica kill."""
        connection = self._client()
        deadline = time.monotonic() + settle
        while True:
            health = read_health(connection, self._login)
            if not health.replicas:
                raise CheckSkippedError(
                    "ClickHouse has no replicated table (one unreplicated server): nothing to fail over to"
                )
            problems = health.problems()
            if not problems:
                break
            if time.monotonic() > deadline:
                raise CheckFailedError(
                    f"replication not healthy before the fault, for {settle:g}s (--settle): {'; '.join(problems)}"
                )
            time.sleep(POLL)
        self.sessions_low = health.keeper_sessions
        if self._mode != "replica":
            return fault
        ((reached,),) = connection.execute("SELECT substitution FROM system.macros WHERE macro = 'replica'")
        self.victim = choose_victim(health, reached)
        if self.victim is None:
            raise CheckSkippedError(
                f"no shard has a second replica besides {reached}, which verify reads through: clickhouse-kill "
                "covers a single replica"
            )
        return replace(fault, pod=self.victim.name)

    def start(self, injected: float) -> None:
        """Sample the replicas in the background from the injection (on the scenario's clock) on."""
        self._injected = injected
        self._thread = threading.Thread(target=self._loop, name="replication watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(TIMEOUT + 1)

    def unique(self, connection: Client, server: Server) -> int:
        """Distinct events of the run one server holds in its own table."""
        table = remote(server, LOCAL, self._login)
        ((count,),) = connection.execute(
            f"SELECT uniqExact(event_id) FROM {table} WHERE run_id = %(run)s", {"run": self._run_id}
        )
        return int(count)

    def _loop(self) -> None:
        connection = self._client()
        while not self._stop.is_set():
            try:
                self._sample(connection)
            except (ClickHouseError, OSError) as error:  # the reached server itself failed: noted, never fatal
                if len(self.errors) < 3:
                    self.errors.append(first_line(error))
                connection = self._client()
            self._stop.wait(POLL)

    def _sample(self, connection: Client) -> None:
        health = read_health(connection, self._login)
        self.samples += 1
        self.readonly_peak = max(self.readonly_peak, sum(s.readonly for s in health.replicas))
        low = self.sessions_low
        self.sessions_low = health.keeper_sessions if low is None else min(low, health.keeper_sessions)
        victim = self.victim
        if victim is None or self.caught_up_at is not None:
            return
        if victim.server.address in health.unreachable or not any(s.name == victim.name for s in health.replicas):
            self._went_down = True
            return
        mine = self.unique(connection, victim.server)
        if not self._went_down:
            self._held = mine  # what it held when last seen before the kill: it may have caught up by its first sample
            return
        if self.back_at is None:
            self.back_at = self._now()
            self._target = max(self.unique(connection, peer) for peer in victim.peers)
            self.behind = max(0, self._target - self._held)
        self._caught_up(mine)

    def _caught_up(self, mine: int) -> None:
        """Note when the returned replica first holds what its shard held when it came back."""
        if self.back_at is not None and self.caught_up_at is None and mine >= self._target:
            self.caught_up_at = self._now()

    def converge(self, seconds: float, stopping: threading.Event) -> tuple[Figures, list[str]]:
        """After the drain: every shard's replicas hold the same events of the run, and replication is healthy."""
        self.stop()
        connection = self._client()
        deadline = time.monotonic() + seconds
        while True:
            health = read_health(connection, self._login)
            shards: dict[int, list[int]] = {}
            for server in health.servers:
                try:
                    held = self.unique(connection, server)
                except ClickHouseError as error:
                    health.unreachable.setdefault(server.address, first_line(error))
                    continue
                shards.setdefault(server.shard, []).append(held)
                if self.victim is not None and server == self.victim.server:
                    self._caught_up(held)
            unequal = [shard for shard, counts in shards.items() if len(set(counts)) > 1]
            problems = health.problems()
            if (not unequal and not problems) or time.monotonic() > deadline or stopping.is_set():
                break
            time.sleep(POLL)
        figures = self.figures()
        figures["shard_events"] = " ".join(
            f"{shard}:{'='.join(map(str, counts))}" for shard, counts in sorted(shards.items())
        )
        found = [f"the replicas of shard {shard} hold different events of the run" for shard in unequal]
        found += [f"after recovery: {problem}" for problem in problems]
        return figures, found

    def figures(self) -> Figures:
        """What the watch saw: the killed replica's return and catch-up, read-only replicas, Keeper sessions."""
        figures: Figures = {"readonly_peak": self.readonly_peak, "replication_samples": self.samples}
        if self._mode == "keeper":
            figures["keeper_sessions_low"] = self.sessions_low or 0
        if self.victim is not None:
            figures["replica_killed"] = self.victim.name
            figures["replica_shard"] = self.victim.server.shard
        if self.back_at is not None:
            figures["replica_back_s"] = round(self.back_at - self._injected, 3)
            figures["rows_behind"] = self.behind or 0
        if self.back_at is not None and self.caught_up_at is not None:
            figures["catch_up_s"] = round(self.caught_up_at - self.back_at, 3)
        if self.errors:
            figures["replication_watch_error"] = self.errors[0]
        return figures
