"""The 22 TPC-H queries on the real Presto's tpch connector: they run on `tiny` and match the golden fingerprints.

The golden file was written by this test against a real Presto 0.287: to write it again (after a
query changes, say), run it with TPCH_WRITE_GOLDEN=1 and review the diff.
"""

import json
import os
from dataclasses import asdict
from importlib import resources

from tests.support.servers.presto import USERS, PrestoCluster, connect_as
from verify import tpch


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
