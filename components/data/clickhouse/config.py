"""ClickHouse's configuration as pure functions: server config, users, and the schema's migrations.

Every function produces the form the deployed image (24.8) runs. The integration tests run Debian's
ClickHouse 18.16, the only one this machine can install. `legacy_form` turns the production text
into the nearest form 18.16 accepts, and every difference is listed, with its reason, in _LEGACY.
"""

import hashlib
import re
import string
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from components import names
from components.settings.model import Settings
from components.settings.quantities import quantity_value

DATABASE = "analytics"
EVENTS_TABLE = "events"
"""The Distributed table over every shard: what Presto, verify and people read, and what ingestion writes."""
LOCAL_TABLE = "events_local"
"""Each server's own part of the events (replicated between the replicas of its shard)."""
QUEUE_TABLE = "events_queue"
VIEWS = ("events_mv", "events_mv_0002")
"""Every materialized view a migration has created, oldest first (each replaces the one before)."""
CONSUMER_GROUP = "clickhouse-events"
SHARDING_KEY = "cityHash64(event_id)"
"""An event goes to the shard its id hashes to, so a redelivered event meets its first copy and collapses."""

ADMIN, INGEST, PRESTO, INTERSERVER = "admin", "ingest", "presto", "interserver"
USERS = (ADMIN, INGEST, PRESTO, INTERSERVER)

SHARD_ENV = "CLICKHOUSE_SHARD"
REPLICA_ENV = "CLICKHOUSE_REPLICA"
INTERSERVER_HOST_ENV = "CLICKHOUSE_INTERSERVER_HOST"
"""Environment variables each server's macros and interserver address are read from (from_env)."""
KEEPER_ID_ENV = "KEEPER_SERVER_ID"
"""Environment variable a Keeper node's Raft id is read from."""


@dataclass(frozen=True)
class Ports:
    """Where the server listens."""

    http: int = names.CLICKHOUSE_HTTP_PORT
    native: int = names.CLICKHOUSE_NATIVE_PORT
    metrics: int = names.CLICKHOUSE_METRICS_PORT
    interserver: int = names.CLICKHOUSE_INTERSERVER_PORT


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """A host and port another process connects to."""

    host: str
    port: int


@dataclass(frozen=True, kw_only=True)
class Cluster:
    """Where every server and Keeper node is: the shards in order, each a tuple of its replicas' native endpoints."""

    shards: tuple[tuple[Endpoint, ...], ...]
    keeper: tuple[Endpoint, ...]
    """Keeper's client endpoints; empty for a single server, which needs no coordination."""


def server_ordinal(shard: int, replica: int, replicas: int) -> int:
    """The StatefulSet ordinal of a server: servers are numbered shard by shard, so adding shards appends."""
    return shard * replicas + replica


def cluster(settings: Settings) -> Cluster:
    """The in-cluster layout: pod DNS names under the headless Services of ClickHouse and Keeper."""
    clickhouse = settings.clickhouse
    namespace = settings.namespace

    def pod(workload: str, service: str, ordinal: int, port: int) -> Endpoint:
        return Endpoint(host=f"{workload}-{ordinal}.{names.service_host(service, namespace)}", port=port)

    shards = tuple(
        tuple(
            pod(
                names.CLICKHOUSE,
                names.CLICKHOUSE_HEADLESS,
                server_ordinal(shard, replica, clickhouse.replicas),
                names.CLICKHOUSE_NATIVE_PORT,
            )
            for replica in range(clickhouse.replicas)
        )
        for shard in range(clickhouse.shards)
    )
    keeper = tuple(
        pod(names.CLICKHOUSE_KEEPER, names.CLICKHOUSE_KEEPER_HEADLESS, ordinal, names.KEEPER_CLIENT_PORT)
        for ordinal in range(clickhouse.keeper.replicas if clickhouse.replicated else 0)
    )
    return Cluster(shards=shards, keeper=keeper)


def _xml(root: ET.Element) -> str:
    """Serialise an element tree with indentation."""
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def _element(parent: ET.Element, tag: str, text: str | int | None = None, **attributes: str) -> ET.Element:
    """Append a child element with optional text."""
    child = ET.SubElement(parent, tag, attributes)
    if text is not None:
        child.text = str(text)
    return child


def _metrics_endpoint(root: ET.Element, port: int) -> None:
    """The native Prometheus endpoint at /metrics: current metrics, profile events and asynchronous metrics."""
    prometheus = _element(root, "prometheus")
    _element(prometheus, "endpoint", "/metrics")
    _element(prometheus, "port", port)
    for part in ("metrics", "events", "asynchronous_metrics"):
        _element(prometheus, part, "true")


def server_config(settings: Settings, *, ports: Ports, listen_host: str, data_path: str, tmp_path: str) -> str:
    """config.d override: listeners, paths, caches sized to the container, stdout logging, metrics."""
    memory = int(quantity_value(settings.clickhouse.resources.limits.memory))
    root = ET.Element("clickhouse")
    logger = _element(root, "logger")
    _element(logger, "level", "information")
    # Logs go to stdout only: the root filesystem is read-only and kubectl logs is where people look.
    _element(logger, "console", 1)
    _element(logger, "log", remove="remove")
    _element(logger, "errorlog", remove="remove")
    _element(root, "listen_host", listen_host)
    _element(root, "http_port", ports.http)
    _element(root, "tcp_port", ports.native)
    _element(root, "path", data_path)
    _element(root, "tmp_path", tmp_path)
    # Each server learns who it is from its environment: the shard and replica name its replicated
    # tables register under in Keeper, and the address its replicas fetch parts from.
    _element(root, "interserver_http_port", ports.interserver)
    _element(root, "interserver_http_host", from_env=INTERSERVER_HOST_ENV)
    macros = _element(root, "macros")
    _element(macros, "shard", from_env=SHARD_ENV)
    _element(macros, "replica", from_env=REPLICA_ENV)
    # The server defaults assume a whole machine (5 GiB of mark cache); size caches to the container.
    _element(root, "mark_cache_size", memory // 10)
    _element(root, "uncompressed_cache_size", memory // 20)
    # librdkafka settings of every Kafka engine consumer. A new consumer group starts from the earliest
    # offset, so events produced before ClickHouse first joins the group are ingested, not skipped.
    kafka = _element(root, "kafka")
    _element(kafka, "auto_offset_reset", "smallest")
    _metrics_endpoint(root, ports.metrics)
    return _xml(root)


def kafka_authentication_config(username: str, password: str, mechanism: str) -> str:
    """config.d file logging every Kafka engine consumer in as a SASL user (it holds a password: a Secret)."""
    root = ET.Element("clickhouse")
    kafka = _element(root, "kafka")
    # Element names are librdkafka's settings with '_' for '.'.
    _element(kafka, "security_protocol", "sasl_plaintext")
    _element(kafka, "sasl_mechanism", mechanism)
    _element(kafka, "sasl_username", username)
    _element(kafka, "sasl_password", password)
    return _xml(root)


def cluster_config(layout: Cluster, interserver_password: str) -> str:
    """config.d file: the cluster the Distributed table spans, Keeper, and the interserver login (a Secret).

    Servers query each other as the user interserver, and replicas fetch parts with the same login.
    24.8 could instead forward the querying user with a cluster <secret>; 18.16, the only server the
    tests can run, lacks it, and one proven form is worth more than a better unproven one.
    """
    root = ET.Element("clickhouse")
    servers = _element(_element(root, "remote_servers"), names.CLICKHOUSE_CLUSTER)
    for replicas in layout.shards:
        shard = _element(servers, "shard")
        # The Distributed table writes each block to one replica; replication copies it to the others.
        _element(shard, "internal_replication", "true")
        for endpoint in replicas:
            replica = _element(shard, "replica")
            _element(replica, "host", endpoint.host)
            _element(replica, "port", endpoint.port)
            _element(replica, "user", INTERSERVER)
            _element(replica, "password", interserver_password)
    if layout.keeper:
        keeper = _element(root, "zookeeper")
        for endpoint in layout.keeper:
            node = _element(keeper, "node")
            _element(node, "host", endpoint.host)
            _element(node, "port", endpoint.port)
        _element(keeper, "session_timeout_ms", 30000)
        _element(keeper, "operation_timeout_ms", 10000)
        credentials = _element(root, "interserver_http_credentials")
        _element(credentials, "user", INTERSERVER)
        _element(credentials, "password", interserver_password)
    return _xml(root)


def keeper_config(settings: Settings, *, listen_host: str, data_path: str) -> str:
    """ClickHouse Keeper's config: the Raft ensemble of every node, its storage, metrics and stdout logging.

    One file for every node: a node's Raft id comes from its environment (its StatefulSet ordinal + 1).
    The tests' ensemble is Debian's ZooKeeper, which ClickHouse speaks to with the same <zookeeper>
    section; this file itself is checked for its structure (Keeper is in no package here).
    """
    clickhouse = settings.clickhouse
    root = ET.Element("clickhouse")
    logger = _element(root, "logger")
    _element(logger, "level", "information")
    _element(logger, "console", 1)
    _element(root, "listen_host", listen_host)
    keeper = _element(root, "keeper_server")
    _element(keeper, "tcp_port", names.KEEPER_CLIENT_PORT)
    _element(keeper, "server_id", from_env=KEEPER_ID_ENV)
    _element(keeper, "log_storage_path", f"{data_path}coordination/log")
    _element(keeper, "snapshot_storage_path", f"{data_path}coordination/snapshots")
    coordination = _element(keeper, "coordination_settings")
    _element(coordination, "operation_timeout_ms", 10000)
    _element(coordination, "session_timeout_ms", 30000)
    _element(coordination, "raft_logs_level", "warning")
    http = _element(keeper, "http_control")
    _element(http, "port", names.KEEPER_HTTP_PORT)
    _element(_element(http, "readiness"), "endpoint", "/ready")
    raft = _element(keeper, "raft_configuration")
    for ordinal in range(clickhouse.keeper.replicas):
        server = _element(raft, "server")
        _element(server, "id", ordinal + 1)
        host = names.service_host(names.CLICKHOUSE_KEEPER_HEADLESS, settings.namespace)
        _element(server, "hostname", f"{names.CLICKHOUSE_KEEPER}-{ordinal}.{host}")
        _element(server, "port", names.KEEPER_RAFT_PORT)
    _metrics_endpoint(root, names.KEEPER_METRICS_PORT)
    return _xml(root)


def password_hash(password: str) -> str:
    """The password_sha256_hex ClickHouse compares against."""
    return hashlib.sha256(password.encode()).hexdigest()


def users_config(settings: Settings, password_hashes: dict[str, str]) -> str:
    """users.d file: profiles, quotas and the admin, ingest and presto users (hashes, never passwords).

    It lives in a Secret, not a ConfigMap: the hashes are derived from credentials.
    """
    memory = int(quantity_value(settings.clickhouse.resources.limits.memory))
    root = ET.Element("clickhouse")
    profiles = _element(root, "profiles")
    default = _element(profiles, "default")
    # A query may use 60% of the container; the rest is for merges, caches and the server itself.
    _element(default, "max_memory_usage", memory * 6 // 10)
    # A write through the Distributed table (ingestion's, from the Kafka engine, runs in this profile)
    # returns once each shard's replica has the rows, not when they are queued on the local disk: the
    # Kafka offsets are committed after it, so a lost volume loses no committed event, and a shard with
    # no replica up stalls ingestion at its offsets instead of queueing. (24.8 also calls it
    # distributed_foreground_insert; this name works on both.)
    _element(default, "insert_distributed_sync", 1)
    # The Kafka engine's flush interval where its table sets none: 24.8 reads the table's
    # kafka_flush_interval_ms (migrations/0001_initial.sql), 18.16 only this.
    _element(default, "stream_flush_interval_ms", settings.clickhouse.flush_interval_ms)
    readonly = _element(profiles, "readonly")
    # readonly=2: no writes and no DDL, but a client may still set per-query settings (JDBC does).
    _element(readonly, "readonly", 2)
    _element(readonly, "max_memory_usage", memory * 4 // 10)
    _element(readonly, "max_execution_time", 300)

    quotas = _element(root, "quotas")
    for name, queries, errors in (("default", 0, 0), ("readonly", 3600, 600)):
        interval = _element(_element(quotas, name), "interval")
        _element(interval, "duration", 3600)
        _element(interval, "queries", queries)
        _element(interval, "errors", errors)
        _element(interval, "result_rows", 0)
        _element(interval, "read_rows", 0)
        _element(interval, "execution_time", 0)

    users = _element(root, "users")
    # The default user (no password) stays for the server's own use but admits no address at all, not
    # even loopback: a port-forward arrives on loopback, and must not make a client someone without a password.
    local = _element(users, "default")
    _element(local, "password", "")
    _element(local, "networks", replace="replace")
    _element(local, "profile", "readonly")
    _element(local, "quota", "readonly")
    for user, profile, quota, databases in (
        (ADMIN, "default", "default", None),
        (INGEST, "default", "default", [DATABASE]),
        (PRESTO, "readonly", "readonly", [DATABASE]),
        # What one server asks of another: a Distributed table's reads and writes of its shards.
        (INTERSERVER, "default", "default", [DATABASE]),
    ):
        entry = _element(users, user)
        _element(entry, "password_sha256_hex", password_hashes[user])
        # Reachability is the NetworkPolicies' job; the user accepts any address they let through.
        _element(_element(entry, "networks"), "ip", "::/0")
        _element(entry, "profile", profile)
        _element(entry, "quota", quota)
        if databases:
            allowed = _element(entry, "allow_databases")
            for database in databases:
                _element(allowed, "database", database)
    return _xml(root)


def consumers_per_server(settings: Settings) -> int:
    """Kafka engine consumers on each server: together at most one per partition (an extra one idles), at most 4."""
    return max(1, min(4, settings.kafka.topic.partitions // settings.clickhouse.servers))


def _local_engine(settings: Settings) -> str:
    """The events' engine on each server: replicated between a shard's replicas when there are several servers."""
    if not settings.clickhouse.replicated:
        return "ReplacingMergeTree(ingested_at)"
    path = f"/clickhouse/tables/{{shard}}/{DATABASE}/{LOCAL_TABLE}"
    return f"ReplicatedReplacingMergeTree('{path}', '{{replica}}', ingested_at)"


MIGRATIONS = Path(__file__).parent / "migrations"
"""The numbered migrations (templates of the stack's settings) and their runner, migrate.sh."""
MIGRATE_SCRIPT = "migrate.sh"
MIGRATIONS_TABLE = "schema_migrations"
"""Each server's record of the migrations applied: version, name, checksum, applied_at."""
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, kw_only=True)
class Migration:
    """One numbered migration, rendered for a stack."""

    version: int
    name: str
    """Its file name, which the runner records and names in its errors."""
    checksum: str
    """sha256 of its source: the stack's settings do not change it, an edit does."""
    sql: str
    """The rendered text, a checksum line first."""


def migration_sources() -> dict[str, str]:
    """Every migration's source by file name, in order; refuses a misnamed file or a version used twice."""
    sources = {path.name: path.read_text() for path in sorted(MIGRATIONS.glob("*.sql"))}
    versions = [_MIGRATION_NAME.match(name) for name in sources]
    misnamed = [name for name, match in zip(sources, versions, strict=True) if match is None]
    if misnamed:
        raise ValueError(f"migrations {misnamed} are not named NNNN_lowercase_words.sql")
    numbers = [match[1] for match in versions if match]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"migrations share a version: {sorted(sources)}")
    return sources


def migrations(settings: Settings, kafka_bootstrap: str) -> tuple[Migration, ...]:
    """Every migration rendered with the stack's settings: with replicated tables each statement is ON CLUSTER."""
    clickhouse = settings.clickhouse
    # ON CLUSTER needs Keeper (its DDL queue), which only a replicated stack has. Applied once, each ALTER
    # of a replicated table runs on one replica of each shard and reaches the other through Keeper.
    parameters = {
        "on_cluster": f" ON CLUSTER {names.CLICKHOUSE_CLUSTER}" if clickhouse.replicated else "",
        "local_engine": _local_engine(settings),
        "cluster": names.CLICKHOUSE_CLUSTER,
        "sharding_key": SHARDING_KEY,
        "kafka_broker_list": kafka_bootstrap,
        "kafka_topic": settings.kafka.topic.name,
        "consumer_group": CONSUMER_GROUP,
        "kafka_num_consumers": consumers_per_server(settings),
        "flush_interval_ms": clickhouse.flush_interval_ms,
    }
    rendered = []
    for name, source in migration_sources().items():
        checksum = hashlib.sha256(source.encode()).hexdigest()
        sql = f"-- checksum: {checksum}\n" + string.Template(source).substitute(parameters)
        rendered.append(Migration(version=int(name[:4]), name=name, checksum=checksum, sql=sql))
    return tuple(rendered)


def migration_files(settings: Settings, kafka_bootstrap: str) -> dict[str, str]:
    """What the schema Job mounts: every rendered migration by file name, and the runner."""
    files = {migration.name: migration.sql for migration in migrations(settings, kafka_bootstrap)}
    return {**files, MIGRATE_SCRIPT: (MIGRATIONS / MIGRATE_SCRIPT).read_text()}


SINGLE_SERVER_TABLE = "events_single"
"""Where the migration parks the events table of a stack from before replication while it is copied."""


def park_single_server_sql() -> list[str]:
    """First step of moving a pre-replication stack into the sharded layout: stop its ingestion, park its table.

    Its events table (a plain table on server 0) is renamed out of the way of the Distributed table; run
    on server 0 as admin after the `pulumi up` that brings the layout, then the schema Job's migrations
    again, then copy_single_server_sql. docs/operations.md has the whole procedure.
    """
    return [
        # The views write into the old table: without them, ingestion waits at its committed offsets.
        *(f"DROP TABLE IF EXISTS {DATABASE}.{view}" for view in VIEWS),
        f"RENAME TABLE {DATABASE}.{EVENTS_TABLE} TO {DATABASE}.{SINGLE_SERVER_TABLE}",
        # Without its record, server 0 gets every migration again from the schema Job: the Distributed
        # table and the view in place of what was parked (the other servers' records keep theirs as they are).
        f"DROP TABLE IF EXISTS {DATABASE}.{MIGRATIONS_TABLE}",
    ]


def copy_single_server_sql() -> list[str]:
    """Last step: copy the parked rows through the Distributed table, so each lands on the shard of its id."""
    # The columns of releases before replication, by name: the parked table may or may not have gained
    # the later ones (the schema Job may have run before it was parked), and they take their defaults.
    columns = "event_id, run_id, kind, payload, produced_at_ms, event_time, ingested_at"
    return [f"INSERT INTO {DATABASE}.{EVENTS_TABLE} ({columns}) SELECT {columns} FROM {DATABASE}.{SINGLE_SERVER_TABLE}"]


def statements(sql: str) -> list[str]:
    """Split schema SQL into statements (no statement contains a semicolon)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


@dataclass(frozen=True, kw_only=True)
class LegacyDifference:
    """Something ClickHouse 18.16 (the tests' server) lacks that the deployed 24.8 has, and the nearest form."""

    production: str
    """The text as deployed."""
    legacy: str
    """What 18.16 is given instead."""
    reason: str
    """Why 18.16 needs it."""
    pattern: bool = False
    """`production` is a regular expression."""


_LEGACY: tuple[LegacyDifference, ...] = (
    LegacyDifference(
        production="<clickhouse>",
        legacy="<yandex>",
        reason="the <clickhouse> root element arrived in 22.x; older servers read <yandex>",
    ),
    LegacyDifference(production="</clickhouse>", legacy="</yandex>", reason="closing tag of the same"),
    LegacyDifference(
        production="DateTime64(3)",
        legacy="DateTime",
        reason="DateTime64 arrived in 20.1: 18.16 keeps whole seconds",
    ),
    LegacyDifference(production="now64(3)", legacy="now()", reason="now64 arrived with DateTime64"),
    LegacyDifference(
        production="ADD COLUMN IF NOT EXISTS",
        legacy="ADD COLUMN",
        reason="18.16's ALTER has no IF NOT EXISTS: there, a migration rerun after failing past its ADD COLUMN "
        "stops at it (docs/operations.md says what to do)",
    ),
    LegacyDifference(
        production=r",\n\s+kafka_skip_broken_messages = \d+",
        legacy="",
        reason="kafka_skip_broken_messages arrived after 18.16, which stalls on a malformed event instead",
        pattern=True,
    ),
    LegacyDifference(
        production=r"kafka_flush_interval_ms = \d+,\n(\s+)kafka_thread_per_consumer = 1",
        legacy=r"kafka_max_block_size = 100",
        reason="18.16's Kafka engine has neither: it checks its flush interval (the profile's "
        "stream_flush_interval_ms) only between blocks of kafka_max_block_size rows, so a steady stream "
        "became visible only once 65,536 rows filled a block; blocks of 100 rows bring 24.8's freshness "
        "nearest (measured: p99 3.7 s at 200 events/s, docs/decisions.md)",
        pattern=True,
    ),
)


def legacy_form(text: str) -> str:
    """The nearest form of production config or SQL that ClickHouse 18.16 accepts."""
    for difference in _LEGACY:
        if difference.pattern:
            text = re.sub(difference.production, difference.legacy, text)
        else:
            text = text.replace(difference.production, difference.legacy)
    # The native Prometheus endpoint arrived in 20.1; 18.16 refuses to start with it configured.
    root = ET.fromstring(text) if text.lstrip().startswith("<") else None
    prometheus = root.find("prometheus") if root is not None else None
    if root is not None and prometheus is not None:
        root.remove(prometheus)
        return _xml(root)
    return text
