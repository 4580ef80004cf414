"""`python -m verify.copy`: copy a table through Presto and compare both sides; exit 0 only when they are equal.

The password is read from $PRESTO_PASSWORD (never a flag: flags land in shell history and process lists).
"""

import argparse
import json
import os
import sys

import prestodb

from verify.copy.tables import CopyError, Table, copy_table
from verify.core.targets import host_port


def main() -> int:
    """Parse the flags, copy, print the figures as JSON; 0 equal, 1 different, 2 refused."""
    cli = argparse.ArgumentParser(prog="python -m verify.copy", description=__doc__)
    cli.add_argument("--presto-url", required=True, help="Presto's https URL, e.g. https://localhost:8443")
    cli.add_argument("--ca", required=True, help="PEM file of the CA that signed Presto's certificate")
    cli.add_argument("--user", default="ingest", help="Presto user who may write the target (default: %(default)s)")
    cli.add_argument("--source", required=True, type=Table.parse, help="catalog.schema.table to read")
    cli.add_argument("--target", required=True, type=Table.parse, help="catalog.schema.table to write")
    cli.add_argument("--create", action="store_true", help="CREATE TABLE target AS SELECT (else INSERT INTO target)")
    cli.add_argument("--where", help="copy and compare only the rows matching this SQL predicate")
    args = cli.parse_args()
    password = os.environ.get("PRESTO_PASSWORD")
    if not password:
        cli.error("set PRESTO_PASSWORD to the Presto user's password")
    host, port = host_port(args.presto_url, 8443)
    connection = prestodb.dbapi.connect(
        host=host,
        port=port,
        user=args.user,
        http_scheme="https",
        auth=prestodb.auth.BasicAuthentication(args.user, password),
    )
    # The client has no CA option: its requests session takes the file, and must not let REQUESTS_CA_BUNDLE
    # from the environment override it.
    connection._http_session.verify = args.ca
    connection._http_session.trust_env = False

    def run(sql: str) -> list[list]:
        cursor = connection.cursor()
        cursor.execute(sql)
        return cursor.fetchall()

    try:
        copied = copy_table(run, args.source, args.target, create=args.create, where=args.where)
    except CopyError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    figures = {
        "written": copied.written,
        "source_rows": copied.source.rows,
        "target_rows": copied.target.rows,
        "source_checksum": copied.source.checksum,
        "target_checksum": copied.target.checksum,
        "equal": copied.equal,
    }
    print(json.dumps(figures, indent=2))
    return 0 if copied.equal else 1


if __name__ == "__main__":
    sys.exit(main())
