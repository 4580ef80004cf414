"""Presto's configuration as pure functions: node, JVM, server and catalog files.

Credentials never appear here: the catalog and server files that need one get a line appended at
pod start from a mounted Secret (see start_script), so the ConfigMap holds no secret.

Clients reach the coordinator over HTTPS with a user and password (Presto authenticates only requests
that arrive over TLS); plain HTTP stays open for the nodes' own traffic, which the internal shared
secret signs and the NetworkPolicies confine to Presto's pods.
"""

import hashlib
import json
from dataclasses import dataclass

from components.data.clickhouse.config import DATABASE, INGEST, PRESTO
from components.observability.jmx_exporter import CONFIG_FILE, presto_exporter_config
from components.platform.jvm import heap_megabytes
from components.settings.model import PrestoSettings, Resources

# JVM overhead (metaspace, code cache, thread stacks, direct buffers) grows with the process, not
# the heap: 70% of the container leaves room for it without the kernel's OOM killer stepping in.
HEAP_FRACTION = 0.7
EVENTS_SCHEMA = "default"
# PBKDF2-HMAC-SHA1 is the hash Presto's file authenticator verifies (it needs at least 1000 rounds).
# Every login's result is cached, so the rounds cost once per user, not once per request.
PBKDF2_ITERATIONS = 100_000
KEYSTORE_FILE = "keystore.pem"
PASSWORD_FILE = "password.db"
RULES_FILE = "rules.json"
CLICKHOUSE_CATALOGS = {"clickhouse": PRESTO, "clickhouse_ingest": INGEST}
"""The ClickHouse catalogs, each with the ClickHouse user it connects as: reads as the read-only
presto user; writes (backfills, corrections) only through clickhouse_ingest, as the ingest user."""
CATALOGS = ("system", "tpch", "kafka", *CLICKHOUSE_CATALOGS)
READABLE = ("system", "tpch", "kafka", "clickhouse")
"""What every user may read: all catalogs but clickhouse_ingest."""


@dataclass(frozen=True, kw_only=True)
class Role:
    """A client user of Presto and what file-based access control lets it do, catalog by catalog."""

    user: str
    writes: tuple[str, ...]
    reads: tuple[str, ...]
    """Catalogs it may only read; any other catalog it does not see."""
    purpose: str


ROLES: tuple[Role, ...] = (
    Role(user="admin", writes=CATALOGS, reads=(), purpose="operators: reads and writes every catalog"),
    Role(
        user="ingest",
        writes=("clickhouse_ingest",),
        reads=READABLE,
        purpose="pipelines and backfills: writes ClickHouse through clickhouse_ingest, reads the rest",
    ),
    Role(
        user="analyst",
        writes=(),
        reads=READABLE,
        purpose="dashboards, ad-hoc queries and verify: reads, writes nothing, never sees clickhouse_ingest",
    ),
)
"""The users of the password file. Any other name (the nodes' HTTP port takes any) gets the system
catalog only, which file-based access control always grants.

The kafka catalog is read-only for everyone in practice: Presto 0.287's Kafka connector has no JSON
encoder, so an INSERT into the JSON events topic fails whatever the rules say."""


@dataclass(frozen=True)
class MemoryPlan:
    """Presto's memory limits, all derived from one container memory limit."""

    heap_mb: int
    per_node_user_mb: int
    per_node_total_mb: int
    headroom_mb: int


def memory_plan(resources: Resources) -> MemoryPlan:
    """Split the heap: 30% for one query's user memory, 40% in all, 30% headroom for everything else."""
    heap = heap_megabytes(resources.limits.memory, HEAP_FRACTION)
    return MemoryPlan(heap, heap * 3 // 10, heap * 4 // 10, heap * 3 // 10)


def node_properties(environment: str, node_id: str, data_dir: str) -> str:
    """node.properties: the cluster's environment name, this node's id and its data directory."""
    return f"node.environment={environment}\nnode.id={node_id}\nnode.data-dir={data_dir}\n"


def jvm_config(resources: Resources, metrics_agent: str | None = None) -> str:
    """jvm.config for a container with this memory limit, loading the metrics agent if given."""
    plan = memory_plan(resources)
    options = [
        "-server",
        f"-Xmx{plan.heap_mb}m",
        f"-Xms{plan.heap_mb}m",
        "-XX:+UseG1GC",
        "-XX:G1HeapRegionSize=32M",
        "-XX:+ExplicitGCInvokesConcurrent",
        # A JVM that ran out of memory is in an unknown state: exit, and let Kubernetes restart it.
        "-XX:+ExitOnOutOfMemoryError",
        "-XX:ReservedCodeCacheSize=256M",
        "-Djdk.attach.allowAttachSelf=true",
        "-Djdk.nio.maxCachedBufferSize=2000000",
    ]
    # Java 17 closes the JDK's internals that Presto's Guice and serialisation reach into; Java 11
    # (the image's JVM) accepts the same flags, so one jvm.config serves both.
    options += [f"--add-opens=java.base/{package}=ALL-UNNAMED" for package in _OPENED_PACKAGES]
    if metrics_agent:
        options.append(metrics_agent)
    return "\n".join(options) + "\n"


_OPENED_PACKAGES = (
    "java.io",
    "java.lang",
    "java.lang.ref",
    "java.lang.reflect",
    "java.net",
    "java.nio",
    "java.security",
    "java.text",
    "java.util",
    "java.util.concurrent",
    "java.util.concurrent.atomic",
    "java.util.regex",
    "javax.security.auth",
    "jdk.internal.loader",
    "sun.nio.ch",
    "sun.security.action",
)


@dataclass(frozen=True)
class ClientAccess:
    """How the coordinator serves clients: HTTPS on a port, with password authentication."""

    port: int
    keystore: str
    """Private key and certificate chain in one PEM file (assembled at start from the TLS Secret)."""
    password_file: str
    """The users' password hashes (mounted from a Secret)."""


def config_properties(
    presto: PrestoSettings,
    *,
    coordinator: bool,
    http_port: int,
    discovery_uri: str,
    max_workers: int,
    clients: ClientAccess | None = None,
) -> str:
    """config.properties of the coordinator or of a worker."""
    resources = presto.coordinator.resources if coordinator else presto.workers.resources
    plan = memory_plan(resources)
    worker_plan = memory_plan(presto.workers.resources)
    nodes = max_workers + (1 if presto.coordinator.schedules_work else 0)
    properties = {
        "coordinator": str(coordinator).lower(),
        "http-server.http.port": str(http_port),
        "discovery.uri": discovery_uri,
        # A query may use one node's share on every node that runs its tasks.
        "query.max-memory": f"{worker_plan.per_node_user_mb * nodes}MB",
        "query.max-memory-per-node": f"{plan.per_node_user_mb}MB",
        "query.max-total-memory-per-node": f"{plan.per_node_total_mb}MB",
        "memory.heap-headroom-per-node": f"{plan.headroom_mb}MB",
    }
    if coordinator:
        properties["discovery-server.enabled"] = "true"
        properties["node-scheduler.include-coordinator"] = str(presto.coordinator.schedules_work).lower()
        if clients is not None:
            properties |= {
                "http-server.https.enabled": "true",
                "http-server.https.port": str(clients.port),
                "http-server.https.keystore.path": clients.keystore,
                "http-server.authentication.type": "PASSWORD",
            }
    else:
        # A worker told to shut down finishes its running tasks within this period, then exits.
        properties["shutdown.grace-period"] = f"{presto.workers.shutdown_grace_period_seconds}s"
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def password_authenticator(password_file: str) -> str:
    """password-authenticator.properties: users and hashes from a file that may change while running."""
    return f"password-authenticator.name=file\nfile.password-file={password_file}\nfile.refresh-period=1m\n"


def access_control(rules_file: str) -> str:
    """access-control.properties: file-based system access control, re-read every minute."""
    return f"access-control.name=file\nsecurity.config-file={rules_file}\nsecurity.refresh-period=1m\n"


def access_rules(roles: tuple[Role, ...] = ROLES) -> str:
    """rules.json: per user, full access to the catalogs it writes and read-only to those it reads.

    The first rule matching both user and catalog decides; a user or catalog no rule matches is denied.
    """
    rules = [
        {"user": role.user, "catalog": "|".join(catalogs), "allow": mode}
        for role in roles
        for mode, catalogs in (("all", role.writes), ("read-only", role.reads))
        if catalogs
    ]
    return json.dumps({"catalogs": rules}, indent=2) + "\n"


def password_entry(user: str, password: str, salt: bytes) -> str:
    """One line of the password file: user:iterations:salt:hash, the PBKDF2 form Presto verifies."""
    digest = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, PBKDF2_ITERATIONS)
    return f"{user}:{PBKDF2_ITERATIONS}:{salt.hex()}:{digest.hex()}\n"


def tpch_catalog() -> str:
    """The tpch catalog: generated TPC-H data at any scale factor."""
    return "connector.name=tpch\n"


def clickhouse_jdbc_url(host_port: str) -> str:
    """JDBC URL of ClickHouse's HTTP interface, in the one database the presto user may read."""
    return f"jdbc:clickhouse://{host_port}/{DATABASE}"


def clickhouse_catalog(jdbc_url: str, user: str) -> str:
    """The clickhouse catalog, without its password (appended at start from the Secret)."""
    return (
        "connector.name=clickhouse\n"
        f"clickhouse.connection-url={jdbc_url}\n"
        f"clickhouse.connection-user={user}\n"
        # ClickHouse's String is text in this schema: expose it as varchar, not varbinary.
        "clickhouse.map-string-as-varchar=true\n"
    )


def kafka_catalog(nodes: str, topic: str, description_dir: str) -> str:
    """The kafka catalog: the events topic as table default.<topic>."""
    return (
        "connector.name=kafka\n"
        f"kafka.nodes={nodes}\n"
        f"kafka.table-names={EVENTS_SCHEMA}.{topic}\n"
        f"kafka.default-schema={EVENTS_SCHEMA}\n"
        f"kafka.table-description-dir={description_dir}\n"
        "kafka.hide-internal-columns=false\n"
    )


def kafka_table_description(topic: str) -> str:
    """The events topic described as a table: the JSON fields the producers write."""
    fields = [
        ("event_id", "VARCHAR"),
        ("run_id", "VARCHAR"),
        ("kind", "VARCHAR"),
        ("payload", "VARCHAR"),
        ("produced_at_ms", "BIGINT"),
    ]
    description = {
        "tableName": topic,
        "schemaName": EVENTS_SCHEMA,
        "topicName": topic,
        "key": {"dataFormat": "raw", "fields": [{"name": "kafka_key", "type": "VARCHAR", "dataFormat": "BYTE"}]},
        "message": {
            "dataFormat": "json",
            "fields": [{"name": name, "mapping": name, "type": kind} for name, kind in fields],
        },
    }
    return json.dumps(description, indent=2) + "\n"


NODE_ID_TOKEN = "@NODE_ID@"


def template_files(
    presto: PrestoSettings,
    *,
    coordinator: bool,
    environment: str,
    http_port: int,
    discovery_uri: str,
    data_dir: str,
    clickhouse_jdbc_url: str,
    kafka_nodes: str,
    topic: str,
    etc_dir: str,
    clients: ClientAccess | None = None,
    metrics_agent: str | None = None,
) -> dict[str, str]:
    """Every file of one node's etc directory, keyed flat (ConfigMap keys cannot hold '/').

    The coordinator serves clients when given their access; workers never see a client.
    """
    resources = presto.coordinator.resources if coordinator else presto.workers.resources
    files = {
        "config.properties": config_properties(
            presto,
            coordinator=coordinator,
            http_port=http_port,
            discovery_uri=discovery_uri,
            max_workers=presto.workers.max_replicas,
            clients=clients,
        ),
        "jvm.config": jvm_config(resources, metrics_agent),
        CONFIG_FILE: presto_exporter_config(),
        "node.properties": node_properties(environment, NODE_ID_TOKEN, data_dir),
        "catalog-tpch.properties": tpch_catalog(),
        **{
            f"catalog-{catalog}.properties": clickhouse_catalog(clickhouse_jdbc_url, user)
            for catalog, user in CLICKHOUSE_CATALOGS.items()
        },
        "catalog-kafka.properties": kafka_catalog(kafka_nodes, topic, f"{etc_dir}/kafka"),
        f"kafka-{topic}.json": kafka_table_description(topic),
    }
    if clients is not None:
        # Who the client is (password file), then what it may do (rules, checked as a query is planned).
        files["password-authenticator.properties"] = password_authenticator(clients.password_file)
        files["access-control.properties"] = access_control(f"{etc_dir}/{RULES_FILE}")
        files[RULES_FILE] = access_rules()
    return files


def start_script() -> str:
    """POSIX sh run as the container's command: assemble etc from the templates and Secrets, start.

    Reads POD_NAME, PRESTO_HOME, TEMPLATE_DIR (the ConfigMap), SECRETS_DIR (files shared-secret and
    <catalog>-password per ClickHouse catalog; on the coordinator also tls.key and tls.crt), ETC_DIR
    and DATA_DIR (writable directories).
    """
    return f"""#!/bin/sh
set -eu
umask 077
mkdir -p "$ETC_DIR/catalog" "$ETC_DIR/kafka" "$DATA_DIR"
cp "$TEMPLATE_DIR/config.properties" "$TEMPLATE_DIR/jvm.config" "$ETC_DIR/"
if [ -f "$TEMPLATE_DIR/password-authenticator.properties" ]; then
  cp "$TEMPLATE_DIR/password-authenticator.properties" "$TEMPLATE_DIR/access-control.properties" \\
    "$TEMPLATE_DIR/{RULES_FILE}" "$ETC_DIR/"
  cat "$SECRETS_DIR/tls.key" "$SECRETS_DIR/tls.crt" > "$ETC_DIR/{KEYSTORE_FILE}"
fi
sed "s/{NODE_ID_TOKEN}/$POD_NAME/" "$TEMPLATE_DIR/node.properties" > "$ETC_DIR/node.properties"
for file in "$TEMPLATE_DIR"/catalog-*.properties; do cp "$file" "$ETC_DIR/catalog/${{file##*/catalog-}}"; done
for file in "$TEMPLATE_DIR"/kafka-*.json; do cp "$file" "$ETC_DIR/kafka/${{file##*/kafka-}}"; done
# Secrets reach the files here, at start, from the mounted Secrets: never through the ConfigMap.
printf 'internal-communication.jwt.enabled=true\\ninternal-communication.shared-secret=%s\\n' \\
  "$(cat "$SECRETS_DIR/shared-secret")" >> "$ETC_DIR/config.properties"
for catalog in {" ".join(CLICKHOUSE_CATALOGS)}; do
  printf 'clickhouse.connection-password=%s\\n' "$(cat "$SECRETS_DIR/$catalog-password")" \\
    >> "$ETC_DIR/catalog/$catalog.properties"
done
exec "$PRESTO_HOME/bin/launcher" run --etc-dir="$ETC_DIR" --data-dir="$DATA_DIR"
"""


def graceful_shutdown_command(http_port: int, grace_seconds: int) -> list[str]:
    """PreStop of a worker: ask Presto to drain (SHUTTING_DOWN), then wait while it finishes its tasks.

    Presto waits one grace period before and one after draining its tasks, then exits by itself.
    """
    return [
        "/bin/sh",
        "-c",
        f"curl -sf -X PUT -H 'Content-Type: application/json' -H 'X-Presto-User: shutdown' "
        f"-d '\"SHUTTING_DOWN\"' http://127.0.0.1:{http_port}/v1/info/state && sleep {2 * grace_seconds + 15}",
    ]
