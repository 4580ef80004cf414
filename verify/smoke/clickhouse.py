"""ClickHouse smoke checks: it answers, its version, a write/read round trip, and who it refuses."""

import time

import requests
from clickhouse_driver import Client
from clickhouse_driver.errors import ServerException

from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.targets import Targets, host_port

USER = "admin"
PASSWORD = "clickhouseAdminPassword"
READ_ONLY_USER = "presto"
READ_ONLY_PASSWORD = "clickhousePrestoPassword"
READONLY = 164
"""ClickHouse's error code for a write by a read-only user."""
ROWS = 1000


def client(targets: Targets, seconds: float, user: str = USER, password: str = PASSWORD) -> Client:
    """A native-protocol client as the admin user (or another, by its credential's name), every wait bounded."""
    host, port = host_port(targets.endpoints.clickhouse_native, 9000)
    return Client(
        host=host,
        port=port,
        user=user,
        password=targets.credentials[password],
        connect_timeout=min(5, seconds),
        send_receive_timeout=seconds,
        sync_request_timeout=min(5, seconds),
    )


def ping(context: Context) -> Figures:
    """GET /ping answers Ok."""
    began = time.monotonic()
    answer = requests.get(f"{context.targets.endpoints.clickhouse_http}/ping", timeout=5)
    if answer.status_code != 200 or answer.content.strip() != b"Ok.":
        raise CheckFailedError(f"/ping answered {answer.status_code} {answer.content[:100]!r}")
    return {"latency_ms": round((time.monotonic() - began) * 1000, 1)}


def version(context: Context) -> Figures:
    """The server's version, over the native protocol."""
    began = time.monotonic()
    ((found,),) = client(context.targets, 10).execute("SELECT version()")
    return {"version": found, "latency_ms": round((time.monotonic() - began) * 1000, 1)}


def round_trip(context: Context) -> Figures:
    """Write rows into a scratch table labelled with the run id, read them back, drop the table."""
    connection = client(context.targets, 20)
    table = f"default.verify_{context.run_id.replace('-', '_')}"
    connection.execute(f"CREATE TABLE {table} (n UInt32, run String) ENGINE = Memory")
    context.cleanup.add(
        f"ClickHouse table {table}", lambda: client(context.targets, 10).execute(f"DROP TABLE IF EXISTS {table}")
    )
    began = time.monotonic()
    connection.execute(f"INSERT INTO {table} (n, run) VALUES", [(n, context.run_id) for n in range(ROWS)])
    wrote = time.monotonic()
    ((count, total),) = connection.execute(
        f"SELECT count(), sum(n) FROM {table} WHERE run = %(run)s", {"run": context.run_id}
    )
    read = time.monotonic()
    if (count, total) != (ROWS, ROWS * (ROWS - 1) // 2):
        raise CheckFailedError(f"wrote {ROWS} rows, read back {count} (sum {total})")
    return {"rows": ROWS, "write_ms": round((wrote - began) * 1000, 1), "read_ms": round((read - wrote) * 1000, 1)}


def refuses_anonymous(context: Context) -> Figures:
    """A query without credentials is refused, also through a port-forward (which arrives on loopback)."""
    answer = requests.post(f"{context.targets.endpoints.clickhouse_http}/", data="SELECT 1", timeout=5)
    if answer.status_code == 200:
        raise CheckFailedError("a query without a user and password was answered")
    return {"status": answer.status_code}


def read_only_refuses_writes(context: Context) -> Figures:
    """Presto's user may not write: its INSERT (of no rows) into the events table fails as read-only."""
    events = context.targets.expected.events_table
    connection = client(context.targets, 20, READ_ONLY_USER, READ_ONLY_PASSWORD)
    try:
        connection.execute(f"INSERT INTO {events} SELECT * FROM {events} WHERE 0")
    except ServerException as refused:
        if refused.code != READONLY:
            raise CheckFailedError(f"refused, but not as read-only: {refused.message.splitlines()[0]}") from None
        return {"user": READ_ONLY_USER, "error_code": refused.code}
    raise CheckFailedError(f"ClickHouse user {READ_ONLY_USER} may insert into {events}")


def checks(targets: Targets) -> list[Check]:
    """The ClickHouse smoke checks."""
    http, native = targets.endpoints.clickhouse_http, targets.endpoints.clickhouse_native
    return [
        Check(
            name="clickhouse.ping",
            scenario="smoke",
            target=http,
            probe=ping,
            deadline=10,
            tags=frozenset({"clickhouse"}),
        ),
        Check(
            name="clickhouse.version",
            scenario="smoke",
            target=native,
            probe=version,
            deadline=15,
            tags=frozenset({"clickhouse"}),
        ),
        Check(
            name="clickhouse.round_trip",
            scenario="smoke",
            target=native,
            probe=round_trip,
            deadline=30,
            tags=frozenset({"clickhouse", "writes"}),
        ),
        Check(
            name="clickhouse.refuses_anonymous",
            scenario="smoke",
            target=http,
            probe=refuses_anonymous,
            deadline=10,
            tags=frozenset({"clickhouse"}),
        ),
        Check(
            name="clickhouse.read_only_refuses_writes",
            scenario="smoke",
            target=native,
            probe=read_only_refuses_writes,
            deadline=20,
            tags=frozenset({"clickhouse"}),
        ),
    ]
