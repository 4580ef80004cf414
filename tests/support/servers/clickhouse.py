"""A real ClickHouse on 127.0.0.1, configured like the pod: distribution defaults plus our overrides.

Debian's ClickHouse is 18.16; the image we deploy is 24.8. The generated files are fed to it in
their nearest 18.16 form (components.data.clickhouse.config.legacy_form), which lists every difference.
"""

import base64
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from components.data.clickhouse.config import (
    ADMIN,
    INGEST,
    PRESTO,
    Ports,
    kafka_authentication_config,
    legacy_form,
    password_hash,
    schema_sql,
    server_config,
    statements,
    users_config,
)
from components.data.kafka.config import SCRAM_MECHANISM
from components.settings.model import Settings
from tests.support.servers.process import ServerProcess, free_ports, installed

CLICKHOUSE_SERVER = Path("/usr/sbin/clickhouse-server")
DISTRIBUTION_CONFIG = Path("/etc/clickhouse-server")
PASSWORDS = {
    ADMIN: "admin-test-password-0001",
    INGEST: "ingest-test-password-0002",
    PRESTO: "presto-test-password-0003",
}


@dataclass
class ClickHouseNode:
    """A running server and how to reach it."""

    server: ServerProcess
    ports: Ports
    passwords: dict[str, str]

    @property
    def http(self) -> str:
        """Base URL of the HTTP interface."""
        return f"http://127.0.0.1:{self.ports.http}"


def start_clickhouse(
    settings: Settings, workdir: Path, ports: Ports | None = None, kafka_login: tuple[str, str] | None = None
) -> ClickHouseNode:
    """Start ClickHouse with the distribution's config and the stack's config.d and users.d files.

    `kafka_login`: (user, password) the Kafka engine logs in with over SASL/SCRAM, as with kafka.authentication scram.
    """
    installed(CLICKHOUSE_SERVER, "ClickHouse (Debian package clickhouse-server)")
    http, native, metrics, interserver_port = free_ports(4)
    ports = ports or Ports(http=http, native=native, metrics=metrics)
    etc = workdir / "etc"
    if not etc.exists():
        shutil.copytree(DISTRIBUTION_CONFIG, etc)
    (etc / "config.d").mkdir(exist_ok=True)
    (etc / "users.d").mkdir(exist_ok=True)
    config = server_config(
        settings, ports=ports, listen_host="127.0.0.1", data_path=f"{workdir}/data/", tmp_path=f"{workdir}/tmp/"
    )
    (etc / "config.d" / "qestack.xml").write_text(legacy_form(config))
    if kafka_login:
        login = kafka_authentication_config(*kafka_login, SCRAM_MECHANISM)
        (etc / "config.d" / "qestack-kafka.xml").write_text(legacy_form(login))
    users = users_config(settings, {user: password_hash(p) for user, p in PASSWORDS.items()})
    (etc / "users.d" / "qestack-users.xml").write_text(legacy_form(users))
    # Test-only: the distribution's config takes a fixed interserver port (unused by a single server),
    # which would collide when tests run two servers at once.
    interserver = f"<yandex><interserver_http_port>{interserver_port}</interserver_http_port></yandex>\n"
    (etc / "config.d" / "test-interserver-port.xml").write_text(interserver)
    argv = [str(CLICKHOUSE_SERVER), f"--config-file={etc / 'config.xml'}"]
    server = ServerProcess("clickhouse", argv, ports.http, workdir / "clickhouse.log", cwd=workdir).start()
    return ClickHouseNode(server, ports, PASSWORDS)


def query(node: ClickHouseNode, sql: str, user: str = ADMIN, password: str | None = None) -> str:
    """Run one statement over the HTTP interface as a user; raise ClickHouseRefused on an error."""
    request = urllib.request.Request(f"{node.http}/", data=sql.encode(), method="POST")
    token = base64.b64encode(f"{user}:{password or node.passwords[user]}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read().decode().strip()
    except urllib.error.HTTPError as error:
        raise ClickHouseRefusedError(error.read().decode(errors="replace").strip()) from None


class ClickHouseRefusedError(Exception):
    """ClickHouse answered a statement with an error."""


def apply_schema(node: ClickHouseNode, settings: Settings, kafka_bootstrap: str) -> None:
    """Apply the stack's schema, in its 18.16 form, as the ingest user (as the schema Job does)."""
    for statement in statements(legacy_form(schema_sql(settings, kafka_bootstrap))):
        query(node, statement, INGEST)
