"""The ClickHouse component in both stacks: storage, config, users Secret, schema Job."""

from components import names
from components.data.clickhouse.component import KAFKA_LOGIN_FILE, PORTS
from components.data.clickhouse.config import kafka_authentication_config, password_hash, schema_sql, server_config
from components.data.kafka.component import bootstrap_address
from components.data.kafka.config import CLICKHOUSE_PRINCIPAL, SCRAM_MECHANISM
from tests.support.render import Rendered, fake_password, settings_of
from tests.support.workloads import pod_spec


def test_one_persistent_server(stack: Rendered) -> None:
    settings = settings_of(stack)
    statefulset = stack.named("StatefulSet", names.CLICKHOUSE).inputs["spec"]
    assert statefulset["replicas"] == 1
    (claim,) = statefulset["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == settings.clickhouse.storage.size
    assert claim["spec"].get("storageClassName") == settings.storage_class


def test_probes_ping_the_http_interface(stack: Rendered) -> None:
    (container,) = pod_spec(stack.named("StatefulSet", names.CLICKHOUSE))["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/ping", "port": "http"}


def test_config_map_holds_the_pure_function_output(stack: Rendered) -> None:
    settings = settings_of(stack)
    data = stack.named("ConfigMap", names.CLICKHOUSE_CONFIG).inputs["data"]
    assert data["qestack.xml"] == server_config(
        settings, ports=PORTS, listen_host="0.0.0.0", data_path="/var/lib/clickhouse/", tmp_path="/tmp/"
    )
    assert data["schema.sql"] == schema_sql(settings, bootstrap_address(settings.namespace))
    assert "<prometheus>" in data["qestack.xml"], "the native metrics endpoint is on"


def test_users_file_is_a_secret_with_hashes_of_the_generated_passwords(stack: Rendered) -> None:
    users = stack.named("Secret", names.CLICKHOUSE_USERS_CONFIG)
    document = users.inputs["stringData"]["qestack-users.xml"]
    assert "stringData" in users.secret_paths or "stringData.qestack-users.xml" in users.secret_paths
    for credential in ("clickhouseAdminPassword", "clickhouseIngestPassword", "clickhousePrestoPassword"):
        password = fake_password(f"credentials-{credential}")
        assert password_hash(password) in document
        assert password not in document
    assert '<networks replace="replace" />' in document, "the default user admits no address"


def test_the_kafka_engine_logs_in_only_where_kafka_wants_it(stack: Rendered) -> None:
    scram = settings_of(stack).kafka.authentication == "scram"
    files = stack.named("Secret", names.CLICKHOUSE_USERS_CONFIG).inputs["stringData"]
    (container,) = pod_spec(stack.named("StatefulSet", names.CLICKHOUSE))["containers"]
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    login = "/etc/clickhouse-server/config.d/qestack-kafka.xml"
    assert (KAFKA_LOGIN_FILE in files) == scram and (login in mounted) == scram
    if scram:
        password = fake_password("credentials-kafkaClickhousePassword")
        expected = kafka_authentication_config(CLICKHOUSE_PRINCIPAL, password, SCRAM_MECHANISM)
        assert files[KAFKA_LOGIN_FILE] == expected


def test_schema_job_reads_its_password_from_the_secret(stack: Rendered) -> None:
    job = stack.named("Job", names.CLICKHOUSE_SCHEMA_JOB)
    (container,) = pod_spec(job)["containers"]
    (env,) = container["env"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": "clickhouse-users", "key": "ingest"}
    assert "--multiquery" in container["command"][-1]
    assert '"$CLICKHOUSE_PASSWORD"' in container["command"][-1]


def test_the_legacy_form_drops_only_what_18_16_lacks(stack: Rendered) -> None:
    from components.data.clickhouse.config import legacy_form

    settings = settings_of(stack)
    production = schema_sql(settings, bootstrap_address(settings.namespace))
    legacy = legacy_form(production)
    assert "kafka_skip_broken_messages" in production and "kafka_skip_broken_messages" not in legacy
    assert "DateTime64(3)" in production and "DateTime64" not in legacy
    assert legacy.count("CREATE") == production.count("CREATE")
