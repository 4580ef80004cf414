"""A table copied between systems through Presto (tpch -> ClickHouse), counted and checksummed on both sides.

Presto runs as the ingest user, the one that writes ClickHouse (through clickhouse_ingest) and reads the rest,
as an operator's copy would.
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from components.data.clickhouse.config import DATABASE
from components.settings.stack_files import REPO
from tests.support.servers.clickhouse import ClickHouseNode, query
from tests.support.servers.presto import USERS, PrestoCluster, connect_as
from verify.copy.tables import CopyError, Run, Table, columns_of, copy_table, fingerprint

SOURCE = Table("tpch", "tiny", "customer")


@pytest.fixture
def run(presto: PrestoCluster) -> Run:
    """Statements through Presto as the ingest user."""

    def execute(sql: str) -> list[list]:
        cursor = connect_as(presto.clients, "ingest", USERS["ingest"]).cursor()
        cursor.execute(sql)
        return cursor.fetchall()

    return execute


@pytest.fixture
def target(clickhouse_node: ClickHouseNode) -> Iterator[Table]:
    """A fresh table name in ClickHouse, dropped afterwards (Presto's catalogs may not drop tables)."""
    name = f"copy_{time.time_ns()}"
    yield Table("clickhouse_ingest", DATABASE, name)
    query(clickhouse_node, f"DROP TABLE IF EXISTS {DATABASE}.{name}")


def test_a_ctas_copy_has_the_same_rows_and_checksum_on_both_sides(presto: PrestoCluster, target: Table) -> None:
    """The operator's command: CTAS through Presto, both sides equal, exit code 0."""
    command = [sys.executable, "-m", "verify.copy", "--presto-url", f"https://localhost:{presto.clients.port}"]
    command += ["--ca", str(presto.clients.tls.ca_crt), "--source", str(SOURCE), "--target", str(target), "--create"]
    done = subprocess.run(
        command,
        env={**os.environ, "PRESTO_PASSWORD": USERS["ingest"]},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout)
    assert figures["written"] == figures["source_rows"] == figures["target_rows"] == 1500
    assert figures["source_checksum"] == figures["target_checksum"] and figures["equal"]
    assert USERS["ingest"] not in done.stdout + done.stderr


def test_a_changed_row_is_seen_by_the_checksum(run: Run, target: Table) -> None:
    """The same number of rows, one comment different: the checksums differ."""
    columns = columns_of(run, SOURCE)
    copy_table(run, SOURCE, target, create=True, where="custkey <> 1")
    changed = ", ".join("'changed'" if column == "comment" else f'"{column}"' for column in columns)
    run(f"INSERT INTO {target} SELECT {changed} FROM {SOURCE} WHERE custkey = 1")
    source, copy = fingerprint(run, SOURCE, columns), fingerprint(run, target, columns)
    assert source.rows == copy.rows and source.checksum != copy.checksum


def test_an_insert_select_copies_a_slice_into_an_empty_range_only(run: Run, target: Table) -> None:
    run(f"CREATE TABLE {target} AS SELECT * FROM {SOURCE} WITH NO DATA")
    copied = copy_table(run, SOURCE, target, create=False, where="mktsegment = 'BUILDING'")
    assert copied.equal and copied.written == copied.source.rows > 0
    with pytest.raises(CopyError, match="already holds"):
        copy_table(run, SOURCE, target, create=False, where="mktsegment = 'BUILDING'")
