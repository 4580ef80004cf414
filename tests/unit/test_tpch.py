"""verify's TPC-H helpers: the scale factor of a schema, the queries' text and result fingerprints."""

from decimal import Decimal

import pytest

from verify import tpch
from verify.core.errors import UsageError


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
