"""A client of clickhouse-backup's REST API (its `server` mode): list, download and restore, every call bounded.

The API answers a download or a restore at once ("acknowledged") and runs it in the background; the
outcome is the newest row of GET /backup/actions filtered by the backup's name. Both the release the
stack deploys and the one the tests run (1.6.2) serve the endpoints used here.
"""

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import requests

from verify.core.checks import CheckFailedError

CREATED_FORMAT = "%Y-%m-%d %H:%M:%S"
"""How the API writes a backup's creation time (UTC)."""
POLL_SECONDS = 0.5
REQUEST_SECONDS = 30.0


@dataclass(frozen=True)
class RemoteBackup:
    """One backup in the object store."""

    name: str
    created: datetime
    size_bytes: int
    required: str
    """The backup an incremental one builds on ("" for a full backup)."""


class BackupApi:
    """One clickhouse-backup server, reached at its base URL."""

    def __init__(self, url: str, login: tuple[str, str]):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.auth = login

    def _rows(self, method: str, path: str, **params: str) -> list[dict]:
        """The JSON rows (one per line) an endpoint answers; a failure names the endpoint and the API's error."""
        try:
            answer = self.session.request(method, f"{self.url}{path}", params=params, timeout=REQUEST_SECONDS)
        except requests.RequestException as error:
            raise CheckFailedError(f"clickhouse-backup {method} {path}: {error}") from None
        rows = [json.loads(line) for line in answer.text.splitlines() if line.strip()]
        if answer.status_code >= 400:
            detail = rows[-1].get("error", answer.text) if rows else answer.text
            raise CheckFailedError(f"clickhouse-backup {method} {path} answered {answer.status_code}: {detail}")
        return rows

    def remote_backups(self) -> list[RemoteBackup]:
        """Every backup in the object store, oldest first."""
        found = [
            RemoteBackup(
                name=row["name"],
                created=datetime.strptime(row["created"], CREATED_FORMAT).replace(tzinfo=UTC),
                size_bytes=int(row.get("size", 0)),
                required=row.get("required", ""),
            )
            for row in self._rows("GET", "/backup/list/remote")
            if row.get("name")
        ]
        return sorted(found, key=lambda backup: backup.created)

    def run(self, command: str, name: str, deadline: float, **params: str) -> float:
        """Start a background command (download, restore) on a backup, wait for its outcome; the seconds it took."""
        began = time.monotonic()
        self._rows("POST", f"/backup/{command}/{name}", **params)
        while time.monotonic() - began < deadline:
            time.sleep(POLL_SECONDS)
            rows = [
                row
                for row in self._rows("GET", "/backup/actions", filter=name, last="5")
                if row.get("command", "").startswith(command)
            ]
            if rows and rows[-1].get("status") == "success":
                return time.monotonic() - began
            if rows and rows[-1].get("status") == "error":
                raise CheckFailedError(f"clickhouse-backup {rows[-1]['command']} failed: {rows[-1].get('error', '')}")
        raise CheckFailedError(f"clickhouse-backup {command} {name} did not finish within {deadline:g}s")

    def download(self, name: str, deadline: float) -> float:
        """Fetch a backup (and the one it builds on) from the object store to the server's disk."""
        return self.run("download", name, deadline)

    def restore_data(self, name: str, table: str, deadline: float) -> float:
        """Attach a downloaded backup's parts of one table to the table the server already has."""
        return self.run("restore", name, deadline, table=table, data="1")
