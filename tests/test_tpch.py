"""The 22 TPC-H queries on the real Presto's tpch connector: they run on `tiny` and match the golden fingerprints.

The golden file was written by this test against a real Presto 0.287: to write it again (after a
query changes, say), run it with TPCH_WRITE_GOLDEN=1 and review the diff.
"""

import json
import os
from dataclasses import asdict
from decimal import Decimal
from importlib import resources

import pytest
from presto_server import USERS, PrestoCluster, connect_as

from verify import tpch
from verify.errors import UsageError


def test_scale_factors_follow_the_connectors_schema_names() -> None:
    assert tpch.scale_factor("tiny") == Decimal("0.01")
    assert (
        tpch.scale_factor("sf1") == 1
        and tpch.scale_factor("sf100") == 100
        and tpch.scale_factor("sf0.1") == Decimal("0.1")
    )
    for bad in ("sf", "sf0", "sf-1", "sfx", "tpch", "sfnan", "sfinf"):
        with pytest.raises(UsageError, match="tiny or sfN"):
            tpch.scale_factor(bad)


def test_q11_fraction_scales_with_the_schema_and_no_other_query_changes() -> None:
    assert "* 0.01\n" in tpch.sql("q11", "tiny") and "* 0.0001\n" in tpch.sql("q11", "sf1")
    assert "* 0.000001\n" in tpch.sql("q11", "sf100")
    others = [q for q in tpch.QUERIES if q != "q11"]
    assert all(tpch.sql(q, "tiny") == tpch.sql(q, "sf1000") for q in others)


def test_fingerprints_ignore_row_order_and_the_last_bits_of_doubles() -> None:
    rows = [["A", 1.0000000000001, None], ["B", 2.5, "1995-01-01"]]
    same = [["B", 2.5000000000000004, "1995-01-01"], ["A", 1.0, None]]
    assert tpch.fingerprint(rows) == tpch.fingerprint(same)
    assert tpch.fingerprint(rows) != tpch.fingerprint([["A", 1.01, None], ["B", 2.5, "1995-01-01"]])
    assert tpch.fingerprint(rows) != tpch.fingerprint(rows[:1])
    assert tpch.fingerprint([[0.0]]) == tpch.fingerprint([[-0.0]])


@pytest.mark.integration
def test_every_query_runs_on_tiny_and_matches_its_golden_fingerprint(presto: PrestoCluster) -> None:
    connection = connect_as(presto.clients, "analyst", USERS["analyst"], catalog="tpch", schema=tpch.GOLDEN_SCHEMA)
    found = {}
    for query in tpch.QUERIES:
        cursor = connection.cursor()
        cursor.execute(tpch.sql(query, tpch.GOLDEN_SCHEMA))
        found[query] = tpch.fingerprint(cursor.fetchall())
    if os.environ.get("TPCH_WRITE_GOLDEN"):
        path = resources.files(tpch).joinpath(f"golden-{tpch.GOLDEN_SCHEMA}.json")
        document = {
            "presto": "0.287",
            "schema": tpch.GOLDEN_SCHEMA,
            "queries": {q: asdict(f) for q, f in found.items()},
        }
        path.write_text(json.dumps(document, indent=2) + "\n")
        tpch.golden.cache_clear()
    golden = tpch.golden(tpch.GOLDEN_SCHEMA) or {}
    wrong = {q: f"{found[q]}, golden {golden.get(q)}" for q in tpch.QUERIES if found[q] != golden.get(q)}
    assert not wrong
    assert all(f.rows > 0 for f in found.values()), "every query returns rows on tiny"
