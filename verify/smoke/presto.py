"""Presto smoke checks over HTTPS with a password, trusting only the stack's CA."""

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import prestodb
import requests

from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.targets import Targets, host_port

USER = "analyst"
PASSWORD = "prestoAnalystPassword"
LINEITEM_ROWS = 60175
"""Rows of tpch.tiny.lineitem (TPC-H at scale factor 0.01)."""


@contextmanager
def ca_file(targets: Targets) -> Iterator[str]:
    """The stack's CA certificate as a file, for the TLS clients."""
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as handle:
        handle.write(targets.presto_ca)
        handle.flush()
        yield handle.name


def session(ca: str, auth: tuple[str, str] | None) -> requests.Session:
    """An HTTP session that trusts only the CA (not the environment's bundle)."""
    http = requests.Session()
    http.verify, http.trust_env, http.auth = ca, False, auth
    return http


def connect(targets: Targets, ca: str, seconds: float, **session: str) -> prestodb.dbapi.Connection:
    """The read-only user's connection over HTTPS, trusting the CA file, every request bounded (catalog=, schema=)."""
    host, port = host_port(targets.endpoints.presto, 8443)
    connection = prestodb.dbapi.connect(
        **session,
        host=host,
        port=port,
        user=USER,
        http_scheme="https",
        auth=prestodb.auth.BasicAuthentication(USER, targets.credentials[PASSWORD]),
        request_timeout=seconds,
        max_attempts=1,
    )
    connection._http_session.verify = ca  # the client has no CA option of its own
    connection._http_session.trust_env = False
    return connection


def query(targets: Targets, sql: str, seconds: float) -> list[list]:
    """Run a statement as the read-only user and fetch every row."""
    with ca_file(targets) as ca:
        cursor = connect(targets, ca, seconds).cursor()
        cursor.execute(sql)
        return cursor.fetchall()


def info(context: Context) -> Figures:
    """/v1/info: the coordinator has finished starting."""
    targets = context.targets
    with ca_file(targets) as ca:
        began = time.monotonic()
        answer = session(ca, (USER, targets.credentials[PASSWORD])).get(
            f"{targets.endpoints.presto}/v1/info", timeout=5
        )
    answer.raise_for_status()
    body = answer.json()
    if body.get("starting"):
        raise CheckFailedError("the coordinator is still starting")
    return {"version": body["nodeVersion"]["version"], "latency_ms": round((time.monotonic() - began) * 1000, 1)}


def workers(context: Context) -> Figures:
    """At least the expected number of workers are active."""
    sql = "SELECT count(*) FROM system.runtime.nodes WHERE coordinator = false AND state = 'active'"
    ((active,),) = query(context.targets, sql, 20)
    if active < context.targets.expected.presto_workers:
        raise CheckFailedError(f"{active} active workers, at least {context.targets.expected.presto_workers} expected")
    return {"active_workers": active}


def catalogs(context: Context) -> Figures:
    """The tpch, clickhouse and kafka catalogs are there."""
    found = {row[0] for row in query(context.targets, "SHOW CATALOGS", 20)}
    missing = sorted(set(context.targets.expected.presto_catalogs) - found)
    if missing:
        raise CheckFailedError(f"catalogs missing: {', '.join(missing)}")
    return {"catalogs": len(found)}


def tpch(context: Context) -> Figures:
    """A real query through the workers: tpch.tiny.lineitem has its 60175 rows."""
    began = time.monotonic()
    ((count,),) = query(context.targets, "SELECT count(*) FROM tpch.tiny.lineitem", 60)
    if count != LINEITEM_ROWS:
        raise CheckFailedError(f"tpch.tiny.lineitem has {count} rows, not {LINEITEM_ROWS}")
    return {"rows": count, "latency_ms": round((time.monotonic() - began) * 1000, 1)}


def refuses_anonymous(context: Context) -> Figures:
    """A statement without credentials is refused with 401."""
    targets = context.targets
    with ca_file(targets) as ca:
        answer = session(ca, None).post(
            f"{targets.endpoints.presto}/v1/statement", data="SELECT 1", headers={"X-Presto-User": USER}, timeout=5
        )
    if answer.status_code != 401:
        raise CheckFailedError(f"a request without a password got {answer.status_code}, not 401")
    return {"status": answer.status_code}


def read_only_refuses_writes(context: Context) -> Figures:
    """The read-only user's INSERT (of no rows) into the events table is refused by access control."""
    events = f"clickhouse.{context.targets.expected.events_table}"
    try:
        query(context.targets, f"INSERT INTO {events} SELECT * FROM {events} WHERE false", 20)
    except prestodb.exceptions.PrestoUserError as refused:
        if refused.error_name != "PERMISSION_DENIED":
            raise CheckFailedError(f"refused, but not by access control: {refused.message}") from None
        return {"user": USER, "error": refused.error_name}
    raise CheckFailedError(f"{USER} may insert into {events}: the access rules let a read-only user write")


def checks(targets: Targets) -> list[Check]:
    """The Presto smoke checks."""
    where = targets.endpoints.presto
    tags = frozenset({"presto"})
    return [
        Check(name="presto.info", scenario="smoke", target=where, probe=info, deadline=10, tags=tags),
        Check(name="presto.workers", scenario="smoke", target=where, probe=workers, deadline=30, tags=tags),
        Check(name="presto.catalogs", scenario="smoke", target=where, probe=catalogs, deadline=30, tags=tags),
        Check(name="presto.tpch", scenario="smoke", target=where, probe=tpch, deadline=90, tags=tags),
        Check(
            name="presto.refuses_anonymous",
            scenario="smoke",
            target=where,
            probe=refuses_anonymous,
            deadline=10,
            tags=tags,
        ),
        Check(
            name="presto.read_only_refuses_writes",
            scenario="smoke",
            target=where,
            probe=read_only_refuses_writes,
            deadline=30,
            tags=tags,
        ),
    ]
