"""ClickHouse replication health: every server of the cluster, read through the one endpoint verify reaches.

verify reaches one ClickHouse server (a Service or its port-forward picks it). That server knows the
cluster the Distributed table spans (system.clusters), and reads every other server's system tables with
the `remote` table function, which 18.16 and 24.8 both have (`clusterAllReplicas`, which would read every
replica at once, arrived in 20.x; `cluster` reads one replica per shard). So each server's replicas are
read as that server itself reports them, whichever server verify reached.
"""

import time
from dataclasses import dataclass

from clickhouse_driver import Client
from clickhouse_driver.errors import ServerException

from components import names
from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.targets import Targets
from verify.smoke import clickhouse

CLUSTER = names.CLICKHOUSE_CLUSTER
"""The cluster the events' Distributed table spans."""
MAX_DELAY_S = 60
"""A replica further behind its shard than this is not healthy for smoke (the alert waits until 300 s, where
the Distributed table stops reading it; a freshly checked stack should be within a minute)."""
MAX_QUEUE = 100
"""Replication queue entries (fetches, merges, mutations) above which a replica is not keeping up (as the alert)."""
TIMEOUT = 10.0
"""Seconds each read of one server may take."""


@dataclass(frozen=True)
class Server:
    """One server of the cluster, as system.clusters names it."""

    shard: int
    replica: int
    """1-based, within its shard."""
    address: str
    """host:port of its native protocol, as the servers reach each other."""


@dataclass(frozen=True)
class ReplicaState:
    """One replicated table on one server: its row of system.replicas."""

    server: Server
    table: str
    name: str
    """Its replica name (the pod's name in the cluster)."""
    readonly: bool
    session_expired: bool
    queue: int
    delay: int
    """absolute_delay: seconds since the oldest part it still lacks was written."""
    total: int
    active: int


@dataclass(frozen=True)
class Health:
    """What every server of the cluster said about its replicas, and the servers that did not answer."""

    servers: tuple[Server, ...]
    replicas: tuple[ReplicaState, ...]
    unreachable: dict[str, str]
    """Server address -> why it could not be read."""
    keeper_sessions: int
    """Servers that read Keeper's root through their session (only servers with replicated tables try)."""

    def problems(self, max_delay: float = MAX_DELAY_S, max_queue: int = MAX_QUEUE) -> list[str]:
        """Why the replication is not healthy: one line per finding, none when it is."""
        found = [f"server {address} did not answer: {why}" for address, why in self.unreachable.items()]
        for state in self.replicas:
            where = f"{state.name} ({state.table}, shard {state.server.shard})"
            if state.readonly:
                found.append(f"{where} is read-only")
            if state.session_expired:
                found.append(f"{where} has no Keeper session")
            if state.active < state.total:
                found.append(f"{where} sees {state.active} of {state.total} replicas active")
            if state.queue > max_queue:
                found.append(f"{where} has {state.queue} queued entries (more than {max_queue})")
            if state.delay > max_delay:
                found.append(f"{where} is {state.delay}s behind (more than {max_delay:g}s)")
        replicated = {s.server for s in self.replicas}
        per_shard: dict[int, int] = {}
        for server in self.servers:
            per_shard[server.shard] = per_shard.get(server.shard, 0) + 1
        if replicated:
            found += [
                f"server {s.address} (shard {s.shard}) has no replicated table"
                for s in self.servers
                if s not in replicated and s.address not in self.unreachable
            ]
            missing = len(replicated) - self.keeper_sessions
            if missing > 0:
                found.append(f"{missing} of {len(replicated)} servers with replicated tables cannot read Keeper")
        return found

    def figures(self) -> Figures:
        """The report's figures: servers, replicas, how many active and read-only, the worst delay and queue."""
        shards = len({s.shard for s in self.servers})
        figures: Figures = {
            "servers": len(self.servers),
            "shards": shards,
            "replicas": len(self.replicas),
        }
        if not self.replicas:
            figures["replication"] = "none (no replicated table: one unreplicated server)"
            return figures
        return figures | {
            "replicas_active": sum(s.active == s.total and not s.readonly for s in self.replicas),
            "readonly": sum(s.readonly for s in self.replicas),
            "max_delay_s": max(s.delay for s in self.replicas),
            "max_queue": max(s.queue for s in self.replicas),
            "keeper_sessions": self.keeper_sessions,
        }


def remote(server: Server, table: str, login: tuple[str, str]) -> str:
    """The `remote` table function reading `table` on one server as the given user (the password is a literal).

    24.8 masks the password in its logs and query_log; 18.16 does not, and only its admin may read query_log.
    """
    user, password = (value.replace("\\", "\\\\").replace("'", "\\'") for value in login)
    return f"remote('{server.address}', {table}, '{user}', '{password}')"


def login(targets: Targets) -> tuple[str, str]:
    """The ClickHouse user and password verify logs in with, for `remote`."""
    return clickhouse.USER, targets.credentials[clickhouse.PASSWORD]


def cluster_servers(connection: Client) -> tuple[Server, ...]:
    """Every server of the events cluster, shard by shard, as the reached server's configuration lists them."""
    rows = connection.execute(
        "SELECT shard_num, replica_num, host_name, port FROM system.clusters WHERE cluster = %(cluster)s "
        "ORDER BY shard_num, replica_num",
        {"cluster": CLUSTER},
    )
    if not rows:
        raise CheckFailedError(f"ClickHouse has no cluster {CLUSTER} (system.clusters): is the stack this version?")
    return tuple(Server(int(shard), int(replica), f"{host}:{port}") for shard, replica, host, port in rows)


REPLICA_COLUMNS = (
    "concat(database, '.', table), replica_name, is_readonly, is_session_expired, queue_size, absolute_delay, "
    "total_replicas, active_replicas"
)


def read_server(connection: Client, server: Server, credentials: tuple[str, str]) -> tuple[list[ReplicaState], bool]:
    """One server's replicated tables, and whether it read Keeper (False when it has none to need it)."""
    rows = connection.execute(f"SELECT {REPLICA_COLUMNS} FROM {remote(server, 'system.replicas', credentials)}")
    states = [
        ReplicaState(server, table, name, bool(ro), bool(expired), int(queue), int(delay), int(total), int(active))
        for table, name, ro, expired, queue, delay, total, active in rows
    ]
    if not states:
        return states, False
    zookeeper = remote(server, "system.zookeeper", credentials)
    try:
        connection.execute(f"SELECT count() FROM {zookeeper} WHERE path = '/'")
    except ServerException:
        return states, False
    return states, True


def read_health(connection: Client, credentials: tuple[str, str]) -> Health:
    """Every server's replicas, each read by the reached server from the server itself."""
    servers = cluster_servers(connection)
    replicas: list[ReplicaState] = []
    unreachable: dict[str, str] = {}
    sessions = 0
    for server in servers:
        try:
            states, session = read_server(connection, server, credentials)
        except ServerException as error:
            unreachable[server.address] = first_line(error)
            continue
        replicas += states
        sessions += session
    return Health(servers, tuple(replicas), unreachable, sessions)


def first_line(error: BaseException) -> str:
    """A server error in one line: its distinct lines, without the stack trace 18.16 appends."""
    message = (getattr(error, "message", None) or str(error)).split("Stack trace:")[0]
    lines = dict.fromkeys(" ".join(line.split()) for line in message.splitlines())
    return " ".join(line for line in lines if line)[:300] or type(error).__name__


def health(context: Context) -> Figures:
    """Every replica active, its queue and delay within bounds, none read-only, each server in a Keeper session."""
    began = time.monotonic()
    connection = clickhouse.client(context.targets, TIMEOUT)
    found = read_health(connection, login(context.targets))
    figures = found.figures() | {"latency_ms": round((time.monotonic() - began) * 1000, 1)}
    problems = found.problems()
    expected = context.targets.expected
    shape = (expected.clickhouse_shards, expected.clickhouse_shards * expected.clickhouse_replicas)
    if (figures["shards"], figures["servers"]) != shape:
        problems.append(
            f"cluster {CLUSTER} has {figures['servers']} servers in {figures['shards']} shards; the stack deployed "
            f"{expected.clickhouse_shards} x {expected.clickhouse_replicas}"
        )
    if problems:
        raise CheckFailedError("; ".join(problems), figures)
    return figures


def checks(targets: Targets) -> list[Check]:
    """The replication-health check."""
    return [
        Check(
            name="clickhouse.replication",
            scenario="smoke",
            target=f"{targets.endpoints.clickhouse_native} (cluster {CLUSTER})",
            probe=health,
            deadline=60,
            tags=frozenset({"clickhouse"}),
        )
    ]
