"""What load runs against each engine: TPC-H through Presto, point queries on ClickHouse, produces to Kafka."""

import io
import random
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping

import pycurl
from confluent_kafka import KafkaError, Producer

from verify import tpch
from verify.core.checks import CheckFailedError
from verify.core.targets import Targets
from verify.load.driver import Operation
from verify.smoke.clickhouse import PASSWORD as CLICKHOUSE_PASSWORD
from verify.smoke.clickhouse import USER as CLICKHOUSE_USER
from verify.smoke.presto import connect

PAYLOAD = b"x" * 200
"""Each produced message's value: about the size of a pipeline event."""


class WrongResultError(CheckFailedError):
    """A query answered, with rows that are not TPC-H's."""


class PrestoTpch:
    """TPC-H queries through Presto as the read-only user, a connection per thread, every result fingerprinted."""

    def __init__(self, targets: Targets, ca: str, schema: str, timeout: float):
        self._targets, self._ca, self._schema, self._timeout = targets, ca, schema, timeout
        self._local = threading.local()
        self.golden = tpch.golden(schema)
        self.fingerprints: dict[str, Counter[tpch.Fingerprint]] = defaultdict(Counter)
        """Every fingerprint each query gave, counted (a correct run has one per query)."""

    def wrong(self) -> list[str]:
        """Every result unlike the golden one, by query (none when the schema has no golden results)."""
        golden = self.golden or {}
        return [
            f"{query} gave {found} ({times}x); {self._schema}'s golden result is {golden[query]}"
            for query, counts in self.fingerprints.items()
            for found, times in counts.items()
            if query in golden and found != golden[query]
        ]

    def __call__(self, query: str) -> Mapping[str, float]:
        if not hasattr(self._local, "connection"):
            session = {"catalog": "tpch", "schema": self._schema}
            self._local.connection = connect(self._targets, self._ca, self._timeout, **session)
        cursor = self._local.connection.cursor()
        cursor.execute(tpch.sql(query, self._schema))
        found = tpch.fingerprint(cursor.fetchall())
        self.fingerprints[query][found] += 1
        if self.golden is not None and found != self.golden[query]:
            raise WrongResultError(f"{query} gave {found}; {self._schema}'s golden result is {self.golden[query]}")
        stats = cursor.stats or {}
        return {"elapsed_ms": stats.get("elapsedTimeMillis", 0.0), "queued_ms": stats.get("queuedTimeMillis", 0.0)}


class ClickHouseHttp:
    """Statements over ClickHouse's HTTP interface, each thread on its own keep-alive libcurl handle.

    libcurl does the HTTP work outside the GIL; with http.client the driver reached 0.4 of wrk's
    requests/s on `SELECT 1`, with libcurl 0.7 (bench/load.py).
    """

    def __init__(self, url: str, user: str, password: str, timeout: float):
        self._url, self._credentials, self._timeout = f"{url.rstrip('/')}/", f"{user}:{password}", timeout
        self._local = threading.local()

    def _handle(self) -> tuple[pycurl.Curl, io.BytesIO]:
        if not hasattr(self._local, "handle"):
            handle, body = pycurl.Curl(), io.BytesIO()
            handle.setopt(pycurl.URL, self._url)
            handle.setopt(pycurl.USERPWD, self._credentials)
            handle.setopt(pycurl.CONNECTTIMEOUT_MS, int(min(5, self._timeout) * 1000))
            handle.setopt(pycurl.TIMEOUT_MS, int(self._timeout * 1000))
            handle.setopt(pycurl.NOSIGNAL, 1)  # timeouts without signals: safe in threads
            handle.setopt(pycurl.WRITEDATA, body)
            self._local.handle, self._local.body = handle, body
        return self._local.handle, self._local.body

    def fetch(self, sql: str) -> str:
        """The answer as text; CheckFailedError when ClickHouse refuses the statement, OSError when unreachable."""
        handle, body = self._handle()
        body.seek(0)
        body.truncate()
        handle.setopt(pycurl.POSTFIELDS, sql)
        try:
            handle.perform()
        except pycurl.error as failure:  # (libcurl's code, its message): as the socket errors other clients raise
            code, message = failure.args
            kind = TimeoutError if code == pycurl.E_OPERATION_TIMEDOUT else ConnectionError
            raise kind(f"ClickHouse at {self._url}: {message}") from None
        status = handle.getinfo(pycurl.RESPONSE_CODE)
        if status != 200:
            raise CheckFailedError(f"ClickHouse answered {status}: {body.getvalue()[:200]!r}")
        return body.getvalue().decode()

    def workload(self, statement: Callable[[], str]) -> Operation:
        """An operation that runs the next statement."""

        def operation(_: str) -> Mapping[str, float]:
            self.fetch(statement())
            return {}

        return operation


def clickhouse_point_queries(targets: Targets, timeout: float, seed: int) -> Operation:
    """Look up one event by its primary key (event_id): keys drawn from up to 1000 events in the table."""
    table = targets.expected.events_table
    password = targets.credentials[CLICKHOUSE_PASSWORD]
    client = ClickHouseHttp(targets.endpoints.clickhouse_http, CLICKHOUSE_USER, password, timeout)
    keys = client.fetch(f"SELECT event_id FROM {table} LIMIT 1000").split() or ["no-such-event"]
    rng = random.Random(seed)

    def statement() -> str:
        key = rng.choice(keys).replace("\\", "\\\\").replace("'", "\\'")
        return f"SELECT event_id, run_id, kind, payload FROM {table} WHERE event_id = '{key}'"

    return client.workload(statement)


class KafkaProduce:
    """One message per operation to a topic, acks=all and idempotent, waiting for its acknowledgement."""

    def __init__(self, producer: Producer, topic: str, run_id: str, timeout: float):
        self._producer, self._topic, self._run_id, self._timeout = producer, topic, run_id, timeout
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._serve, name="kafka-delivery-reports", daemon=True)
        self._poller.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    def close(self) -> None:
        """Stop serving delivery reports and flush what is left."""
        self._stop.set()
        self._poller.join()
        self._producer.flush(self._timeout)

    def __call__(self, _: str) -> Mapping[str, float]:
        acknowledged = threading.Event()
        failure: list[KafkaError] = []

        def report(error: KafkaError | None, _: object) -> None:
            if error is not None:
                failure.append(error)
            acknowledged.set()

        self._producer.produce(self._topic, key=self._run_id, value=PAYLOAD, on_delivery=report)
        if not acknowledged.wait(self._timeout):
            raise CheckFailedError(f"no acknowledgement within {self._timeout:g}s")
        if failure:
            raise CheckFailedError(f"not acknowledged: {failure[0]}")
        return {}
