"""The ClickHouse component in both stacks: servers, Keeper, storage, config, users Secret, schema Job."""

import xml.etree.ElementTree as ET

from components import names
from components.data.clickhouse.component import CLUSTER_FILE, KAFKA_LOGIN_FILE, PORTS
from components.data.clickhouse.config import (
    LOCAL_TABLE,
    cluster,
    kafka_authentication_config,
    keeper_config,
    migration_files,
    migrations,
    password_hash,
    server_config,
)
from components.data.clickhouse.keeper import CONFIG_FILE, DATA_DIR
from components.data.kafka.component import bootstrap_address
from components.data.kafka.config import CLICKHOUSE_PRINCIPAL, SCRAM_MECHANISM
from tests.support.render import Rendered, fake_password, settings_of
from tests.support.workloads import pod_spec


def test_one_persistent_volume_per_server(stack: Rendered) -> None:
    settings = settings_of(stack)
    statefulset = stack.named("StatefulSet", names.CLICKHOUSE).inputs["spec"]
    assert statefulset["replicas"] == settings.clickhouse.shards * settings.clickhouse.replicas
    (claim,) = statefulset["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == settings.clickhouse.storage.size
    assert claim["spec"].get("storageClassName") == settings.storage_class


def test_probes_ping_and_readiness_waits_for_replication(stack: Rendered) -> None:
    container = server_container(stack)
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/ping", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/replicas_status", "port": "http"}


def test_config_map_holds_the_pure_function_output(stack: Rendered) -> None:
    settings = settings_of(stack)
    data = stack.named("ConfigMap", names.CLICKHOUSE_CONFIG).inputs["data"]
    assert data["qestack.xml"] == server_config(
        settings, ports=PORTS, listen_host="0.0.0.0", data_path="/var/lib/clickhouse/", tmp_path="/tmp/"
    )
    for name, text in migration_files(settings, bootstrap_address(settings.namespace)).items():
        assert data[name] == text, f"ConfigMap/{names.CLICKHOUSE_CONFIG}: {name}"
    assert "<prometheus>" in data["qestack.xml"], "the native metrics endpoint is on"


def test_users_file_is_a_secret_with_hashes_of_the_generated_passwords(stack: Rendered) -> None:
    users = stack.named("Secret", names.CLICKHOUSE_USERS_CONFIG)
    document = users.inputs["stringData"]["qestack-users.xml"]
    assert "stringData" in users.secret_paths or "stringData.qestack-users.xml" in users.secret_paths
    credentials = ("Admin", "Ingest", "Presto", "Interserver")
    for credential in (f"clickhouse{name}Password" for name in credentials):
        password = fake_password(f"credentials-{credential}")
        assert password_hash(password) in document
        assert password not in document
    assert '<networks replace="replace" />' in document, "the default user admits no address"


def test_the_kafka_engine_logs_in_only_where_kafka_wants_it(stack: Rendered) -> None:
    scram = settings_of(stack).kafka.authentication == "scram"
    files = stack.named("Secret", names.CLICKHOUSE_USERS_CONFIG).inputs["stringData"]
    container = server_container(stack)
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    login = "/etc/clickhouse-server/config.d/qestack-kafka.xml"
    assert (KAFKA_LOGIN_FILE in files) == scram and (login in mounted) == scram
    if scram:
        password = fake_password("credentials-kafkaClickhousePassword")
        expected = kafka_authentication_config(CLICKHOUSE_PRINCIPAL, password, SCRAM_MECHANISM)
        assert files[KAFKA_LOGIN_FILE] == expected


def test_schema_job_runs_the_shipped_migrations_on_every_server(stack: Rendered) -> None:
    job = stack.named("Job", names.CLICKHOUSE_SCHEMA_JOB)
    (container,) = pod_spec(job)["containers"]
    user, password = container["env"]
    assert user == {"name": "CLICKHOUSE_USER", "value": "ingest"}
    assert password["valueFrom"]["secretKeyRef"] == {"name": "clickhouse-users", "key": "ingest"}
    servers = [f"{e.host}:{PORTS.native}" for replicas in cluster(settings_of(stack)).shards for e in replicas]
    assert container["command"] == ["/bin/sh", "/schema/migrate.sh", "/schema", *servers]
    assert {"name": "schema", "mountPath": "/schema", "readOnly": True} in container["volumeMounts"]


def test_the_legacy_form_drops_only_what_18_16_lacks(stack: Rendered) -> None:
    from components.data.clickhouse.config import legacy_form

    settings = settings_of(stack)
    production = "".join(m.sql for m in migrations(settings, bootstrap_address(settings.namespace)))
    legacy = legacy_form(production)
    assert "kafka_skip_broken_messages" in production and "kafka_skip_broken_messages" not in legacy
    assert f"kafka_flush_interval_ms = {settings.clickhouse.flush_interval_ms}," in production
    assert "kafka_thread_per_consumer = 1;" in production
    assert "kafka_flush_interval_ms" not in legacy and "kafka_thread_per_consumer" not in legacy
    assert "kafka_num_consumers = 3,\n         kafka_max_block_size = 100;" in legacy, "18.16 writes small blocks"
    assert "DateTime64(3)" in production and "DateTime64" not in legacy
    assert "ADD COLUMN IF NOT EXISTS" in production and "IF NOT EXISTS payload_bytes" not in legacy
    assert legacy.count("CREATE") == production.count("CREATE")


def test_dev_is_one_server_and_prod_two_shards_of_two_replicas(stack: Rendered) -> None:
    layout = cluster(settings_of(stack))
    shape = [len(replicas) for replicas in layout.shards]
    assert shape == ([1] if stack.stack == "dev" else [2, 2])
    pods = [endpoint.host.split(".")[0] for replicas in layout.shards for endpoint in replicas]
    assert pods == [f"clickhouse-{ordinal}" for ordinal in range(len(pods))], "servers are numbered shard by shard"
    assert all(
        endpoint.host.endswith(".clickhouse-headless.query-engine.svc.cluster.local")
        for endpoint in (e for replicas in layout.shards for e in replicas)
    )


def test_the_cluster_file_is_a_secret_with_every_server_and_keeper(stack: Rendered) -> None:
    settings = settings_of(stack)
    files = stack.named("Secret", names.CLICKHOUSE_USERS_CONFIG).inputs["stringData"]
    root = ET.fromstring(files[CLUSTER_FILE])
    shards = root.findall(f"remote_servers/{names.CLICKHOUSE_CLUSTER}/shard")
    assert [[r.findtext("host") for r in shard.findall("replica")] for shard in shards] == [
        [e.host for e in replicas] for replicas in cluster(settings).shards
    ]
    assert {shard.findtext("internal_replication") for shard in shards} == {"true"}
    password = fake_password("credentials-clickhouseInterserverPassword")
    assert {r.findtext("password") for r in root.iter("replica")} == {password}
    config_map = stack.named("ConfigMap", names.CLICKHOUSE_CONFIG).inputs["data"]
    assert all(password not in text for text in config_map.values()), "the interserver password is only in the Secret"
    keeper = [node.findtext("host") for node in root.findall("zookeeper/node")]
    if settings.clickhouse.replicated:
        assert keeper == [
            f"clickhouse-keeper-{i}.clickhouse-keeper-headless.query-engine.svc.cluster.local"
            for i in range(settings.clickhouse.keeper.replicas)
        ]
    else:
        assert keeper == [] and root.find("interserver_http_credentials") is None


def test_replicated_tables_only_where_there_are_replicas(stack: Rendered) -> None:
    settings = settings_of(stack)
    sql = migrations(settings, bootstrap_address(settings.namespace))[0].sql
    assert ("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/analytics/events_local', '{replica}'" in sql) == (
        settings.clickhouse.replicated
    )
    assert f"Distributed({names.CLICKHOUSE_CLUSTER}, analytics, {LOCAL_TABLE}, cityHash64(event_id))" in sql


def test_each_server_learns_its_shard_and_replica_from_its_ordinal(stack: Rendered) -> None:
    settings = settings_of(stack)
    container = server_container(stack)
    start = container["command"][-1]
    assert f'CLICKHOUSE_SHARD="$((ordinal / {settings.clickhouse.replicas} + 1))"' in start
    assert 'CLICKHOUSE_REPLICA="$POD_NAME"' in start and start.endswith("config.xml")
    assert {"name": "CLICKHOUSE_WATCHDOG_ENABLE", "value": "0"} in container["env"]
    config = ET.fromstring(stack.named("ConfigMap", names.CLICKHOUSE_CONFIG).inputs["data"]["qestack.xml"])
    assert config.find("macros/shard").attrib == {"from_env": "CLICKHOUSE_SHARD"}
    assert config.find("interserver_http_host").attrib == {"from_env": "CLICKHOUSE_INTERSERVER_HOST"}


def test_keeper_runs_only_with_replicas_and_its_config_names_every_node(stack: Rendered) -> None:
    settings = settings_of(stack)
    keepers = [s for s in stack.of_kind("StatefulSet") if s.inputs["metadata"]["name"] == names.CLICKHOUSE_KEEPER]
    if not settings.clickhouse.replicated:
        assert keepers == []
        return
    (keeper,) = keepers
    spec = keeper.inputs["spec"]
    nodes = settings.clickhouse.keeper.replicas
    assert spec["replicas"] == nodes and spec["serviceName"] == names.CLICKHOUSE_KEEPER_HEADLESS
    document = stack.named("ConfigMap", names.CLICKHOUSE_KEEPER_CONFIG).inputs["data"][CONFIG_FILE]
    assert document == keeper_config(settings, listen_host="0.0.0.0", data_path=DATA_DIR)
    root = ET.fromstring(document)
    servers = root.findall("keeper_server/raft_configuration/server")
    assert [s.findtext("id") for s in servers] == [str(i + 1) for i in range(nodes)]
    assert [s.findtext("hostname") for s in servers] == [
        f"clickhouse-keeper-{i}.clickhouse-keeper-headless.query-engine.svc.cluster.local" for i in range(nodes)
    ]
    (container,) = pod_spec(keeper)["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert int(root.findtext("keeper_server/tcp_port") or 0) == ports["client"] == names.KEEPER_CLIENT_PORT
    assert {int(s.findtext("port") or 0) for s in servers} == {ports["raft"]}
    assert int(root.findtext("keeper_server/http_control/port") or 0) == ports["http-control"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http-control"}
    assert "$((${HOSTNAME##*-} + 1))" in container["command"][-1], "a node's Raft id is its ordinal + 1"


def test_prod_budgets_disruptions_of_servers_and_keeper(stack: Rendered) -> None:
    budgets = {b.inputs["metadata"]["name"] for b in stack.of_kind("PodDisruptionBudget")}
    expected = {names.CLICKHOUSE, names.CLICKHOUSE_KEEPER} if stack.stack == "prod" else set()
    assert expected <= budgets


def server_container(stack: Rendered) -> dict:
    """The ClickHouse server's container (a stack with backups has the backup tool's beside it)."""
    (server,) = [
        c for c in pod_spec(stack.named("StatefulSet", names.CLICKHOUSE))["containers"] if c["name"] == "clickhouse"
    ]
    return server
