"""ClickHouse smoke checks: it answers, its version, and a write/read round trip in a scratch table."""

import time

import requests
from clickhouse_driver import Client

from verify.checks import Check, CheckFailedError, Context, Figures
from verify.targets import Targets, host_port

USER = "admin"
PASSWORD = "clickhouseAdminPassword"
ROWS = 1000


def client(targets: Targets, seconds: float) -> Client:
    """A native-protocol client as the admin user, every wait bounded."""
    host, port = host_port(targets.endpoints.clickhouse_native, 9000)
    return Client(
        host=host,
        port=port,
        user=USER,
        password=targets.credentials[PASSWORD],
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


def checks(targets: Targets) -> list[Check]:
    """The ClickHouse smoke checks."""
    http, native = targets.endpoints.clickhouse_http, targets.endpoints.clickhouse_native
    return [
        Check("clickhouse.ping", "smoke", http, ping, 10, frozenset({"clickhouse"})),
        Check("clickhouse.version", "smoke", native, version, 15, frozenset({"clickhouse"})),
        Check("clickhouse.round_trip", "smoke", native, round_trip, 30, frozenset({"clickhouse", "writes"})),
    ]
