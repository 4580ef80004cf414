"""Copy a table through Presto (CTAS or INSERT ... SELECT) and compare both sides: row count and checksum.

Both fingerprints are computed by Presto, with the same expression on each side: count(*) and Presto's
order-independent checksum() over each row with every column cast to varchar, so a column whose type
the target system maps differently (ClickHouse's Int32 for an integer, String for a varchar(25)) still
compares by value. It is not a cryptographic digest: it detects lost, added and changed rows, not an
adversary.
Ref: https://prestodb.io/docs/0.287/functions/aggregate.html#checksum
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Run = Callable[[str], list[list]]
"""Runs one statement through Presto and returns its rows."""
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CopyError(Exception):
    """The copy was refused before it wrote, or its two sides differ; the message says how."""


@dataclass(frozen=True)
class Table:
    """A table as Presto names it: catalog.schema.table."""

    catalog: str
    schema: str
    table: str

    @classmethod
    def parse(cls, text: str) -> "Table":
        """catalog.schema.table, each part a plain identifier."""
        parts = text.split(".")
        if len(parts) != 3 or not all(NAME.fullmatch(part) for part in parts):
            raise CopyError(f"{text!r}: give catalog.schema.table, each a plain identifier")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.table}"


@dataclass(frozen=True, kw_only=True)
class Fingerprint:
    """One side's rows: how many, and their checksum (hex)."""

    rows: int
    checksum: str


@dataclass(frozen=True, kw_only=True)
class Copied:
    """What a copy did and found."""

    written: int
    source: Fingerprint
    target: Fingerprint

    @property
    def equal(self) -> bool:
        """Same number of rows and the same checksum on both sides."""
        return self.source == self.target


def columns_of(run: Run, table: Table) -> list[str]:
    """The table's columns, in order, as Presto sees them."""
    found = run(f"SHOW COLUMNS FROM {table}")
    if not found:
        raise CopyError(f"{table} has no columns Presto can see (does it exist? may this user read it?)")
    return [row[0] for row in found]


def fingerprint_sql(table: Table, columns: Sequence[str], where: str | None = None) -> str:
    """SELECT count(*) and the checksum of every row, its columns cast to varchar."""
    row = ", ".join(f'CAST("{column}" AS varchar)' for column in columns)
    return f"SELECT count(*), to_hex(checksum(ROW({row}))) FROM {table}" + (f" WHERE {where}" if where else "")


def copy_sql(source: Table, target: Table, columns: Sequence[str], *, create: bool, where: str | None = None) -> str:
    """CREATE TABLE target AS SELECT (create) or INSERT INTO target SELECT, of these columns."""
    names = ", ".join(f'"{column}"' for column in columns)
    select = f"SELECT {names} FROM {source}" + (f" WHERE {where}" if where else "")
    return f"CREATE TABLE {target} AS {select}" if create else f"INSERT INTO {target} ({names}) {select}"


def fingerprint(run: Run, table: Table, columns: Sequence[str], where: str | None = None) -> Fingerprint:
    """One side's row count and checksum."""
    ((rows, checksum),) = run(fingerprint_sql(table, columns, where))
    return Fingerprint(rows=int(rows), checksum=checksum or "")


def copy_table(run: Run, source: Table, target: Table, *, create: bool, where: str | None = None) -> Copied:
    """Copy through Presto, then fingerprint both sides; CopyError when the target already had such rows.

    With INSERT, the target's rows matching `where` must be none before the copy, so that afterwards both sides'
    fingerprints cover exactly the copied rows.
    """
    columns = columns_of(run, source)
    if not create:
        before = fingerprint(run, target, columns, where)
        if before.rows:
            raise CopyError(f"{target} already holds {before.rows} rows{f' where {where}' if where else ''}")
    ((written,),) = run(copy_sql(source, target, columns, create=create, where=where))
    return Copied(
        written=int(written),
        source=fingerprint(run, source, columns, where),
        target=fingerprint(run, target, columns, where),
    )
