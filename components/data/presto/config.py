"""Presto's configuration as pure functions: node, JVM, server and catalog files.

Credentials never appear here: the catalog and server files that need one get a line appended at
pod start from a mounted Secret (see start_script), so the ConfigMap holds no secret.

Presto 0.287 authenticates only requests that arrive over TLS, so no node serves plain HTTP: a port
that takes any user name is a port anyone with pods/portforward could query through. Every node
serves HTTPS only and asks for a credential on every request: a client certificate of the stack's
internal CA (what the nodes present to each other), and on the coordinator a password too (what
clients present). Internal endpoints also want the JWT signed with the internal shared secret.
"""

import hashlib
import json
from dataclasses import dataclass

from components.data.clickhouse.config import DATABASE, INGEST, PRESTO
from components.data.presto.memory import G1_REGION_MB, budget, memory_plan
from components.observability.jmx_exporter import CONFIG_FILE, presto_exporter_config
from components.settings.model import PrestoSettings

EVENTS_SCHEMA = "default"
# PBKDF2-HMAC-SHA1 is the hash Presto's file authenticator verifies (it needs at least 1000 rounds).
# Every login's result is cached, so the rounds cost once per user, not once per request.
PBKDF2_ITERATIONS = 100_000
KEYSTORE_FILE = "keystore.pem"
"""The coordinator's serving key and certificate, the ones clients trust (assembled at start from the TLS Secret)."""
INTERNAL_KEYSTORE_FILE = "internal.pem"
"""The internal key and certificate: what every node presents to the others, and what a worker serves."""
TRUSTSTORE_FILE = "truststore.pem"
"""The CAs a node trusts as a client: the internal one (workers) and the clients' one (the coordinator)."""
INTERNAL_CA_FILE = "internal-ca.pem"
"""The internal CA: the only issuer whose client certificates a node accepts."""
JMX_PASSWORD_FILE = "jmxremote.password"
"""The JVM's JMX agent's password file: written empty at start, so no one can log in."""
POD_ADDRESS_TOKEN = "@POD_ADDRESS@"
"""Replaced at start by the pod's IP with dashes: its name under the cluster DNS's pod records."""
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
"""The users of the password file. Any other name (a node's certificate, say) gets the system catalog
only, which file-based access control always grants.

The kafka catalog is read-only for everyone in practice: Presto 0.287's Kafka connector has no JSON
encoder, so an INSERT into the JSON events topic fails whatever the rules say."""


def pod_domain(namespace: str) -> str:
    """The cluster DNS domain of a namespace's pod records: a-b-c-d.<namespace>.pod.cluster.local."""
    return f"{namespace}.pod.cluster.local"


def node_properties(environment: str, node_id: str, data_dir: str, internal_address: str) -> str:
    """node.properties: the cluster's environment, this node's id, data directory and the address it announces."""
    return (
        f"node.environment={environment}\nnode.id={node_id}\nnode.data-dir={data_dir}\n"
        f"node.internal-address={internal_address}\n"
    )


def jvm_config(
    memory_limit: str, coordinator: bool, etc_dir: str, jmx_port: int, metrics_agent: str | None = None
) -> str:
    """jvm.config for a container with this memory limit, loading the metrics agent if given.

    The heap and every off-heap part come from one budget (components/data/presto/memory.py) that fits
    the limit, so the kernel's OOM killer never meets a JVM that stayed within its flags.
    """
    options = [
        "-server",
        *budget(memory_limit, coordinator).flags(),
        # Presto's airlift starts a remote JMX agent without authentication on a random port unless one
        # runs already: anyone reaching the pod's loopback (a port-forward does) could then call any MBean.
        # So the JVM starts its own, on a known port, with a password file that names no one. The metrics
        # agent reads the MBeans in-process and needs none of it.
        f"-Dcom.sun.management.jmxremote.port={jmx_port}",
        f"-Dcom.sun.management.jmxremote.rmi.port={jmx_port}",
        "-Dcom.sun.management.jmxremote.ssl=false",
        f"-Dcom.sun.management.jmxremote.password.file={etc_dir}/{JMX_PASSWORD_FILE}",
        "-XX:+UseG1GC",
        f"-XX:G1HeapRegionSize={G1_REGION_MB}M",
        "-XX:+ExplicitGCInvokesConcurrent",
        # A JVM that ran out of memory is in an unknown state: exit, and let Kubernetes restart it.
        "-XX:+ExitOnOutOfMemoryError",
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


def config_properties(
    presto: PrestoSettings,
    *,
    coordinator: bool,
    https_port: int,
    discovery_uri: str,
    etc_dir: str,
    jmx_port: int,
    max_workers: int,
) -> str:
    """config.properties of the coordinator or of a worker: HTTPS only, and nothing without a credential."""
    resources = presto.coordinator.resources if coordinator else presto.workers.resources
    plan = memory_plan(resources.limits.memory, coordinator)
    worker_plan = memory_plan(presto.workers.resources.limits.memory, coordinator=False)
    nodes = max_workers + (1 if presto.coordinator.schedules_work else 0)
    properties = {
        "coordinator": str(coordinator).lower(),
        "http-server.http.enabled": "false",
        # On by default, on a random port: nothing needs it.
        "http-server.admin.enabled": "false",
        "http-server.https.enabled": "true",
        "http-server.https.port": str(https_port),
        "http-server.https.keystore.path": f"{etc_dir}/{KEYSTORE_FILE if coordinator else INTERNAL_KEYSTORE_FILE}",
        # Clients' certificates are checked against the internal CA alone: no other issuer's certificate
        # authenticates anyone (and one that does names a user no access rule knows).
        "http-server.https.truststore.path": f"{etc_dir}/{INTERNAL_CA_FILE}",
        # The nodes' own requests carry the internal certificate; the coordinator's clients, a password.
        "http-server.authentication.type": "CERTIFICATE,PASSWORD" if coordinator else "CERTIFICATE",
        "internal-communication.https.required": "true",
        "internal-communication.https.keystore.path": f"{etc_dir}/{INTERNAL_KEYSTORE_FILE}",
        "internal-communication.https.trust-store-path": f"{etc_dir}/{TRUSTSTORE_FILE}",
        "discovery.uri": discovery_uri,
        # The JVM's own JMX agent (jvm_config): airlift refuses to start unless its ports are these.
        "jmx.rmiregistry.port": str(jmx_port),
        "jmx.rmiserver.port": str(jmx_port),
        # A query may use one node's share on every node that runs its tasks.
        "query.max-memory": f"{worker_plan.per_node_user_mb * nodes}MB",
        "query.max-total-memory": f"{worker_plan.per_node_total_mb * nodes}MB",
        "query.max-memory-per-node": f"{plan.per_node_user_mb}MB",
        "query.max-total-memory-per-node": f"{plan.per_node_total_mb}MB",
        "memory.heap-headroom-per-node": f"{plan.headroom_mb}MB",
    }
    if coordinator:
        properties["discovery-server.enabled"] = "true"
        properties["node-scheduler.include-coordinator"] = str(presto.coordinator.schedules_work).lower()
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
    Whoever authenticated may query only as themselves: without a principal rule, Presto lets a client
    that logged in as analyst name admin as its user (X-Presto-User) and get admin's catalogs.
    """
    rules = [
        {"user": role.user, "catalog": "|".join(catalogs), "allow": mode}
        for role in roles
        for mode, catalogs in (("all", role.writes), ("read-only", role.reads))
        if catalogs
    ]
    principals = [{"principal": "(.*)", "principal_to_user": "$1", "allow": True}]
    return json.dumps({"catalogs": rules, "principals": principals}, indent=2) + "\n"


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
    https_port: int,
    discovery_uri: str,
    internal_address: str,
    data_dir: str,
    clickhouse_jdbc_url: str,
    kafka_nodes: str,
    topic: str,
    etc_dir: str,
    jmx_port: int,
    password_file: str | None = None,
    metrics_agent: str | None = None,
) -> dict[str, str]:
    """Every file of one node's etc directory, keyed flat (ConfigMap keys cannot hold '/').

    internal_address: the name the node announces, which its certificate holds (POD_ADDRESS_TOKEN is
    replaced at start). The coordinator serves clients when given their password file; workers never
    see a client.
    """
    resources = presto.coordinator.resources if coordinator else presto.workers.resources
    files = {
        "config.properties": config_properties(
            presto,
            coordinator=coordinator,
            https_port=https_port,
            discovery_uri=discovery_uri,
            etc_dir=etc_dir,
            jmx_port=jmx_port,
            max_workers=presto.workers.max_replicas,
        ),
        "jvm.config": jvm_config(resources.limits.memory, coordinator, etc_dir, jmx_port, metrics_agent),
        CONFIG_FILE: presto_exporter_config(),
        "node.properties": node_properties(environment, NODE_ID_TOKEN, data_dir, internal_address),
        "catalog-tpch.properties": tpch_catalog(),
        **{
            f"catalog-{catalog}.properties": clickhouse_catalog(clickhouse_jdbc_url, user)
            for catalog, user in CLICKHOUSE_CATALOGS.items()
        },
        "catalog-kafka.properties": kafka_catalog(kafka_nodes, topic, f"{etc_dir}/kafka"),
        f"kafka-{topic}.json": kafka_table_description(topic),
    }
    if password_file is not None:
        # Who the client is (password file), then what it may do (rules, checked as a query is planned).
        files["password-authenticator.properties"] = password_authenticator(password_file)
        files["access-control.properties"] = access_control(f"{etc_dir}/{RULES_FILE}")
        files[RULES_FILE] = access_rules()
    return files


def start_script() -> str:
    """POSIX sh run as the container's command: assemble etc from the templates and Secrets, start.

    Reads POD_NAME, POD_IP, PRESTO_HOME, TEMPLATE_DIR (the ConfigMap), SECRETS_DIR, ETC_DIR and DATA_DIR
    (writable directories). SECRETS_DIR holds shared-secret, <catalog>-password per ClickHouse catalog,
    internal-tls.key, internal-tls.crt and internal-ca.crt (the internal certificate and its CA) and
    ca.crt (the CA of the coordinator's certificate); on the coordinator also tls.key and tls.crt.
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
cat "$SECRETS_DIR/internal-tls.key" "$SECRETS_DIR/internal-tls.crt" > "$ETC_DIR/{INTERNAL_KEYSTORE_FILE}"
cat "$SECRETS_DIR/internal-ca.crt" "$SECRETS_DIR/ca.crt" > "$ETC_DIR/{TRUSTSTORE_FILE}"
cp "$SECRETS_DIR/internal-ca.crt" "$ETC_DIR/{INTERNAL_CA_FILE}"
: > "$ETC_DIR/{JMX_PASSWORD_FILE}"
# The pod's name under the cluster DNS's pod records: its IP with dashes for dots (and colons).
address=$(printf '%s' "${{POD_IP:-}}" | tr '.:' '--')
sed -e "s/{NODE_ID_TOKEN}/$POD_NAME/" -e "s/{POD_ADDRESS_TOKEN}/$address/" "$TEMPLATE_DIR/node.properties" \\
  > "$ETC_DIR/node.properties"
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


def node_request(https_port: int, etc_dir: str, path: str) -> str:
    """The curl command line of a request to the node itself, over loopback, with the internal certificate."""
    return (
        f"curl -sf --max-time 4 --cacert {etc_dir}/{TRUSTSTORE_FILE} --cert {etc_dir}/{INTERNAL_KEYSTORE_FILE} "
        f"https://127.0.0.1:{https_port}{path}"
    )


def probe_command(https_port: int, etc_dir: str) -> list[str]:
    """The probes' command: /v1/info answers, and the node has finished starting.

    An exec probe, because the kubelet's HTTP probes present no credential and every port now wants one.
    """
    return ["/bin/sh", "-c", f"{node_request(https_port, etc_dir, '/v1/info')} | grep -q '\"starting\":false'"]


def graceful_shutdown_command(https_port: int, etc_dir: str, grace_seconds: int) -> list[str]:
    """PreStop of a worker: ask Presto to drain (SHUTTING_DOWN), then wait while it finishes its tasks.

    Presto waits one grace period before and one after draining its tasks, then exits by itself.
    """
    drain = node_request(https_port, etc_dir, "/v1/info/state")
    return [
        "/bin/sh",
        "-c",
        f"{drain} -X PUT -H 'Content-Type: application/json' -d '\"SHUTTING_DOWN\"' && sleep {2 * grace_seconds + 15}",
    ]
