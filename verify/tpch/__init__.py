"""TPC-H's 22 queries for Presto's tpch connector, the scale factor of its schemas, and result fingerprints."""

import hashlib
import json
import math
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources

from verify.core.errors import UsageError

QUERIES = tuple(f"q{n:02d}" for n in range(1, 23))
GOLDEN_SCHEMA = "tiny"
SIGNIFICANT_BITS = 32
"""Doubles are compared to this many bits of mantissa (about 9.6 digits): Presto sums them in no fixed
order, so their last bits vary. Rounding in binary, not decimal, keeps TPC-H's results (decimal
amounts, 2 to 6 places) off the rounding boundaries, where a decimal cut would sit on them."""


def scale_factor(schema: str) -> Decimal:
    """The scale factor of a tpch schema: `tiny` is 0.01, `sfN` is N."""
    if schema == "tiny":
        return Decimal("0.01")
    if schema.startswith("sf"):
        try:
            factor = Decimal(schema[2:])
        except ArithmeticError:
            factor = Decimal(0)
        if factor.is_finite() and factor > 0:
            return factor
    raise UsageError(f"--schema {schema}: not a tpch schema; use tiny or sfN (sf1, sf10, sf100...)")


@cache
def _template(query: str) -> str:
    return resources.files(__package__).joinpath(f"{query}.sql").read_text()


def sql(query: str, schema: str) -> str:
    """The query's text for a schema: Q11's fraction is 0.0001 / scale factor (TPC-H 2.4.11.3)."""
    fraction = Decimal("0.0001") / scale_factor(schema)
    return _template(query).format(fraction=format(fraction.normalize(), "f"))


@dataclass(frozen=True)
class Fingerprint:
    """A result's row count and a hash of its rows that ignores their order."""

    rows: int
    digest: str

    def __str__(self) -> str:
        return f"{self.rows} rows, {self.digest}"


def _canonical(value: object) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        mantissa, exponent = math.frexp(value)
        return f"{round(math.ldexp(mantissa, SIGNIFICANT_BITS))}p{exponent}"
    if isinstance(value, Decimal):
        return _canonical(float(value))
    return str(value)


def fingerprint(rows: list[list]) -> Fingerprint:
    """Row count plus the SHA-256 of the sorted per-row hashes (so order-insensitive)."""
    hashes = sorted(hashlib.sha256("\x1f".join(map(_canonical, row)).encode()).digest() for row in rows)
    return Fingerprint(len(rows), hashlib.sha256(b"".join(hashes)).hexdigest()[:16])


@cache
def golden(schema: str) -> dict[str, Fingerprint] | None:
    """The fingerprints a real Presto gave for the schema's queries, if the repository has them."""
    if schema != GOLDEN_SCHEMA:
        return None
    stored = json.loads(resources.files(__package__).joinpath(f"golden-{schema}.json").read_text())
    return {query: Fingerprint(**found) for query, found in stored["queries"].items()}
