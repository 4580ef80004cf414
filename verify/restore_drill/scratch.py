"""Where the drill restores: a scratch ClickHouse server with a backup server beside it, removed afterwards."""

import re
from typing import Protocol

from clickhouse_driver import Client

from verify.core.checks import Context
from verify.restore_drill.api import BackupApi
from verify.smoke.clickhouse import USER


class ScratchServer(Protocol):
    """A running scratch server: its backup API, and queries on its ClickHouse."""

    api: BackupApi

    def query(self, sql: str, seconds: float) -> list[tuple]:
        """Rows of a query on the scratch ClickHouse."""
        ...


class LoopbackScratch:
    """A scratch server reached on 127.0.0.1 (a port-forward, or a local test server): its API and its ClickHouse."""

    def __init__(self, api: BackupApi, native_port: int, password: str):
        self.api, self._port, self._password = api, native_port, password

    def query(self, sql: str, seconds: float) -> list[tuple]:
        """Rows of a query as the admin user, every wait bounded."""
        connection = Client(
            host="127.0.0.1",
            port=self._port,
            user=USER,
            password=self._password,
            connect_timeout=5,
            send_receive_timeout=seconds,
        )
        return connection.execute(sql)


class ScratchSite(Protocol):
    """Starts an empty scratch server with a backup server beside it, and registers its removal with the cleanup."""

    def start(self, context: Context, shard: int, seconds: float) -> ScratchServer:
        """A scratch server with one shard's identity (its backups' place in the store), answering within `seconds`."""
        ...


REPLICATED = re.compile(r"Replicated(\w*MergeTree)\(\s*'[^']*'\s*,\s*'[^']*'\s*(?:,\s*([^)]*))?\)")
"""A Replicated engine's call: its family, and what follows the Keeper path and replica name (a version column)."""


def standalone(create_table: str) -> str:
    """A live table's CREATE statement for a server that stands alone: a Replicated engine loses its Keeper path.

    The parts of a replicated table attach to the plain table as they are (the part format is the same).
    """
    return REPLICATED.sub(lambda call: call[1] + (f"({call[2]})" if call[2] else ""), create_table)
