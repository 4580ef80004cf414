"""The real backup tool (clickhouse-backup v1.6.2) as a server beside a test ClickHouse, and the scheduled job.

The tool runs as the sidecar does: `clickhouse-backup server` with the stack's config file
(components.data.clickhouse.backup.tool_config), its secrets from the environment, reading the same data
directory as the server (the test server's). The job is the CronJob's own script, run with /bin/sh.
"""

import base64
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from components.data.clickhouse.backup import (
    ACCESS_KEY_ENV,
    API_PASSWORD_ENV,
    API_USER,
    API_USERNAME_ENV,
    CLICKHOUSE_PASSWORD_ENV,
    SECRET_KEY_ENV,
    ObjectStore,
    Schedule,
    job_script,
    tool_config,
)
from components.data.clickhouse.config import ADMIN
from tests.support.servers.clickhouse import ClickHouseNode
from tests.support.servers.object_store import ACCESS_KEY, REGION, SECRET_KEY, ObjectStoreNode
from tests.support.servers.process import CACHE, ServerProcess, free_ports, installed

MODULE = Path(__file__).resolve().parents[3] / "scripts" / "servers" / "go" / "clickhouse-backup" / "go.mod"
API_PASSWORD = "backup-api-test-password-0005"


def clickhouse_backup() -> Path:
    """The binary scripts/servers/install-clickhouse-backup built, at the version its wrapper module pins."""
    match = re.search(r"=> github.com/Altinity/clickhouse-backup v([0-9.]+)", MODULE.read_text())
    assert match, f"no clickhouse-backup version in {MODULE}"
    binary = CACHE / f"clickhouse-backup-{match[1]}" / "clickhouse-backup"
    return installed(binary, "clickhouse-backup (scripts/servers/install-clickhouse-backup)")


def signed(url: str, method: str = "GET") -> urllib.request.Request:
    """A request to the tool's API with its login (Basic), as the job and Prometheus send it."""
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    token = base64.b64encode(f"{API_USER}:{API_PASSWORD}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    return request


@dataclass
class BackupTool:
    """A running backup tool, its config file and the environment it (and a CLI run beside it) reads secrets from."""

    server: ServerProcess
    port: int
    config: Path
    env: dict[str, str]

    @property
    def api(self) -> str:
        """Base URL of its REST API."""
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, method: str = "GET") -> list[dict]:
        """Call an API path with the API login; the JSON rows it answers."""
        request = signed(f"{self.api}{path}", method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return [json.loads(line) for line in response.read().decode().splitlines() if line.strip()]

    def create(self, name: str) -> dict:
        """Create a local backup through the API and wait for it; the tool's record of the action."""
        self.get(f"/backup/create?name={name}", method="POST")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            (action,) = self.get(f"/backup/actions?filter={name}&last=1")
            if action["status"] != "in progress":
                return action
            time.sleep(0.2)
        raise AssertionError(f"create {name} still in progress after 120 s")

    def remote_backups(self) -> list[dict]:
        """The backups in the store, as the tool lists them (name, required: the backup an incremental needs)."""
        return sorted(self.get("/backup/list/remote"), key=lambda row: row["name"])

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """Run the tool's command line beside the server, as an operator would in the sidecar (kubectl exec)."""
        argv = [str(clickhouse_backup()), "--config", str(self.config), *args]
        return subprocess.run(
            argv, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=300, check=False
        )

    def metrics(self) -> str:
        """Its Prometheus text at /metrics (behind the API login, as Prometheus scrapes it)."""
        request = signed(f"{self.api}/metrics")
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read().decode()


def _answers(api: str) -> bool:
    """Whether the API answers a signed-in request (it only listens once it has reached ClickHouse)."""
    request = signed(f"{api}/backup/actions?last=1")
    try:
        with urllib.request.urlopen(request, timeout=5):
            return True
    except (urllib.error.URLError, OSError):
        return False


def start_backup_tool(
    node: ClickHouseNode, store: ObjectStoreNode, bucket: str, schedule: Schedule, workdir: Path, prefix: str
) -> BackupTool:
    """Start `clickhouse-backup server` for a test ClickHouse, writing to a bucket of the test S3 server."""
    binary = clickhouse_backup()
    (port,) = free_ports(1)
    target = ObjectStore(endpoint=store.endpoint, bucket=bucket, prefix=prefix, region=REGION, path_style=True)
    config = workdir / "config.yml"
    workdir.mkdir(parents=True, exist_ok=True)
    config.write_text(tool_config(target, schedule, clickhouse_port=node.ports.native, listen=f"127.0.0.1:{port}"))
    env = {
        ACCESS_KEY_ENV: ACCESS_KEY,
        SECRET_KEY_ENV: SECRET_KEY,
        CLICKHOUSE_PASSWORD_ENV: node.passwords[ADMIN],
        API_USERNAME_ENV: API_USER,
        API_PASSWORD_ENV: API_PASSWORD,
    }
    argv = [str(binary), "--config", str(config), "server"]
    api = f"http://127.0.0.1:{port}"
    server = ServerProcess(
        "clickhouse-backup", argv, port, workdir / "clickhouse-backup.log", env=env, ready=lambda: _answers(api)
    ).start()
    return BackupTool(server, port, config, env)


def run_job(shards: list[list[BackupTool]], schedule: Schedule) -> subprocess.CompletedProcess:
    """Run the CronJob's script once over the given tools (one list of replicas per shard), as its pod would."""
    ports = {tool.port for replicas in shards for tool in replicas}
    assert len(ports) == 1, "the job calls every tool on one port, as in the cluster: give one tool per run"
    script = job_script([["127.0.0.1" for _ in replicas] for replicas in shards], schedule, port=ports.pop())
    env = {**os.environ, API_USERNAME_ENV: API_USER, API_PASSWORD_ENV: API_PASSWORD}
    return subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=600)
