"""Stack settings: both stacks validate, and bad input is refused with a message naming the key."""

from typing import Any

import pulumi
import pytest

from components.platform.budget import budget, planned_workloads
from components.settings.model import PROJECT
from components.settings.parse import SettingsError, parse_settings
from components.settings.quantities import quantity_value
from components.settings.stack_files import stack_config
from tests.support.render import Rendered, render


def problems(stack: str, secret_keys: tuple[str, ...] = (), **overrides: Any) -> SettingsError:
    """The SettingsError a stack's config with these overrides raises."""
    with pytest.raises(SettingsError) as caught:
        parse_settings(stack, stack_config(stack, overrides), secret_keys)
    return caught.value


STORE = {"endpoint": "https://s3.example.com", "bucket": "backups", "prefix": "dev"}
"""A valid object store, each bad case changing one key."""
MIRROR = {"sourceBootstrap": "kafka-0.primary.example:9092", "sourceCidrs": ["10.16.0.0/14"]}
"""A valid mirror block."""

# (stack, overrides, key the message must name, text the message must contain)
BAD_CONFIGS = [
    ("dev", {"monitoring": {"querySuccessObjective": 1.5}}, "monitoring.querySuccessObjective", "less than 1"),
    ("dev", {"monitoring": {"pipelineLagSeconds": 0}}, "monitoring.pipelineLagSeconds", "greater than 0"),
    (
        "dev",
        {"monitoring": {"alertmanager": {"receivers": {"critical": "pager.example.com"}}}},
        "monitoring.alertmanager.receivers.critical",
        "http:// or https:// URL",
    ),
    (
        "dev",
        {"monitoring": {"runbookUrl": "wiki.example.com/runbook"}},
        "monitoring.runbookUrl",
        "an http:// or https:// URL",
    ),
    (
        "dev",
        {"monitoring": {"runbookUrl": "https://wiki.example.com/runbook#alerts"}},
        "monitoring.runbookUrl",
        "without a #fragment",
    ),
    (
        "dev",
        {"monitoring": {"alertmanager": {"receivers": {"page": "https://x"}}}},
        "monitoring.alertmanager.receivers.page",
        "unknown key",
    ),
    ("dev", {"kafka": {"brokers": "three"}}, "kafka.brokers", "valid integer"),
    ("dev", {"highAvailability": "maybe"}, "highAvailability", "valid boolean"),
    ("dev", {"presto": {"workers": {"maxReplicas": 0}}}, "presto.workers.maxReplicas", "greater than or equal to 1"),
    ("dev", {"clickhouse": {"storage": {"size": "-5Gi"}}}, "clickhouse.storage.size", "greater than zero"),
    (
        "dev",
        {"kafka": {"resources": {"requests": {"cpu": "0", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}},
        "kafka.resources.requests.cpu",
        "greater than zero",
    ),
    (
        "dev",
        {"presto": {"workers": {"minReplicas": 3, "maxReplicas": 2}}},
        "presto.workers.minReplicas",
        "at most maxReplicas (2)",
    ),
    (
        "dev",
        {
            "clickhouse": {
                "resources": {"requests": {"cpu": "1", "memory": "512Mb"}, "limits": {"cpu": "1", "memory": "1Gi"}}
            }
        },
        "clickhouse.resources.requests.memory",
        "Kubernetes quantity",
    ),
    (
        "dev",
        {
            "clickhouse": {
                "resources": {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
            }
        },
        "clickhouse.resources.requests.cpu",
        "exceeds limits.cpu (1)",
    ),
    ("dev", {"verify": {"loadSlos": ["p95 < 2 sec"]}}, "verify.loadSlos.0", "FIGURE OP NUMBER[UNIT]"),
    ("dev", {"verify": {"loadSlos": ["p95<2s", "latency<2s"]}}, "verify.loadSlos.1", "p50, p90, p95"),
    ("dev", {"storageClas": "standard"}, "storageClas", "allowed keys here: chaos, clickhouse"),
    ("dev", {"kafka": {"topic": {"partitons": 3}}}, "kafka.topic.partitons", "allowed keys here: name, partitions"),
    ("dev", {"presto": {"image": "prestodb/presto"}}, "presto.image", "not pinned"),
    ("dev", {"clickhouse": {"image": "clickhouse/clickhouse-server:latest"}}, "clickhouse.image", "not 'latest'"),
    ("dev", {"chaos": {"mode": "sometimes"}}, "chaos.mode", "'off', 'install' or 'existing'"),
    ("dev", {"namespace": "Query_Engine"}, "namespace", "DNS-1123 label"),
    ("dev", {"monitoring": {"prometheus": {"retention": "2 days"}}}, "monitoring.prometheus.retention", "'15d'"),
    ("dev", {"kafka": {"replicationFactor": 2}}, "kafka.replicationFactor", "at most brokers (1)"),
    ("dev", {"quota": {"requests": {"cpu": "1", "memory": "3Gi"}}}, "quota.requests.cpu", "the workloads need"),
    (
        "dev",
        {"limitRange": {"max": {"cpu": "2", "memory": "512Mi"}}},
        "presto.coordinator.resources.limits.memory",
        "exceeds limitRange.max.memory",
    ),
    ("dev", {"presto": "workers=3"}, "presto", "must be an object with keys: coordinator, image, tls, workers"),
    ("prod", {"kafka": {"brokers": 1, "replicationFactor": 1, "minInsyncReplicas": 1}}, "kafka.brokers", "at least 3"),
    (
        "prod",
        {"kafka": {"brokers": 3, "replicationFactor": 3, "minInsyncReplicas": 1}},
        "kafka.minInsyncReplicas",
        "at least 2",
    ),
    ("prod", {"presto": {"workers": {"minReplicas": 1, "maxReplicas": 4}}}, "presto.workers.minReplicas", "at least 2"),
    ("prod", {"monitoring": {"prometheus": {"storage": None}}}, "monitoring.prometheus.storage", "must be set"),
    ("prod", {"presto": {"coordinator": {"schedulesWork": True}}}, "presto.coordinator.schedulesWork", "must be false"),
    ("dev", {"network": {"serviceType": "NodePort"}}, "network.serviceType", "needs clients.cidrs"),
    ("dev", {"presto": {"tls": {"source": "cert-manager"}}}, "presto.tls.issuer", "must be set when source is cert"),
    ("dev", {"presto": {"tls": {"issuer": {"name": "ca"}}}}, "presto.tls.issuer", "must be unset when source is gen"),
    ("dev", {"presto": {"tls": {"caCertificate": "not a pem"}}}, "presto.tls.caCertificate", "one PEM certificate"),
    (
        "dev",
        {"network": {"serviceType": "Ingress"}},
        "network.serviceType",
        "'ClusterIP', 'NodePort' or 'LoadBalancer'",
    ),
    ("dev", {"network": {"clients": {"cidrs": ["10.1.2.3/8"]}}}, "network.clients.cidrs.0", "host bits zero"),
    ("dev", {"network": {"apiServer": {"ports": [70000]}}}, "network.apiServer.ports.0", "less than or equal to 65535"),
    ("dev", {"network": {"apiServer": {"ports": []}}}, "network.apiServer.ports", "at least 1 item"),
    ("dev", {"network": {"clients": {"namespaces": ["Ingress"]}}}, "network.clients.namespaces.0", "DNS-1123"),
    ("prod", {"clickhouse": {"replicas": 1}}, "clickhouse.replicas", "at least 2 when highAvailability"),
    ("prod", {"clickhouse": {"keeper": {"replicas": 1}}}, "clickhouse.keeper.replicas", "at least 3 when high"),
    ("dev", {"clickhouse": {"keeper": {"replicas": 2}}}, "clickhouse.keeper.replicas", "1, 3 or 5"),
    ("dev", {"clickhouse": {"shards": 0}}, "clickhouse.shards", "greater than or equal to 1"),
    ("dev", {"clickhouse": {"backup": {"enabled": True}}}, "clickhouse.backup.objectStore", "must be set when enabled"),
    ("dev", {"clickhouse": {"backup": {"schedule": "0 2 * *"}}}, "clickhouse.backup.schedule", "5 fields"),
    ("dev", {"clickhouse": {"backup": {"schedule": "0 24 * * *"}}}, "clickhouse.backup.schedule", "within 0-23"),
    ("dev", {"clickhouse": {"backup": {"schedule": "*/0 * * * *"}}}, "clickhouse.backup.schedule", "within 0-59"),
    ("dev", {"clickhouse": {"backup": {"fullEvery": 0}}}, "clickhouse.backup.fullEvery", "greater than or equal to 1"),
    ("dev", {"clickhouse": {"backup": {"keepFull": 0}}}, "clickhouse.backup.keepFull", "greater than or equal to 1"),
    ("dev", {"clickhouse": {"backup": {"missingAfter": "1 day"}}}, "clickhouse.backup.missingAfter", "duration"),
    ("dev", {"clickhouse": {"backup": {"image": "altinity/clickhouse-backup"}}}, "clickhouse.backup.image", "pinned"),
    (
        "dev",
        {"clickhouse": {"backup": {"objectStore": {**STORE, "endpoint": "s3.example.com"}}}},
        "clickhouse.backup.objectStore.endpoint",
        "http:// or https:// URL",
    ),
    (
        "dev",
        {"clickhouse": {"backup": {"objectStore": {**STORE, "endpoint": "https://s3.example.com/bucket"}}}},
        "clickhouse.backup.objectStore.endpoint",
        "without a path",
    ),
    (
        "dev",
        {"clickhouse": {"backup": {"objectStore": {**STORE, "bucket": "Backups"}}}},
        "clickhouse.backup.objectStore.bucket",
        "S3 bucket name",
    ),
    (
        "dev",
        {"clickhouse": {"backup": {"objectStore": {**STORE, "bucket": "ab"}}}},
        "clickhouse.backup.objectStore.bucket",
        "S3 bucket name",
    ),
    (
        "dev",
        {"clickhouse": {"backup": {"objectStore": {**STORE, "bucket": "192.168.1.10"}}}},
        "clickhouse.backup.objectStore.bucket",
        "not an IP address",
    ),
    (
        "dev",
        {"clickhouse": {"backup": {"objectStore": {**STORE, "bucket": "my..backups"}}}},
        "clickhouse.backup.objectStore.bucket",
        "without '..'",
    ),
    (
        "dev",
        {"clickhouse": {"backup": {"objectStore": {**STORE, "prefix": "/dev"}}}},
        "clickhouse.backup.objectStore.prefix",
        "no leading or trailing '/'",
    ),
    (
        "dev",
        {"clickhouse": {"backup": {"objectStore": {**STORE, "cidrs": []}}}},
        "clickhouse.backup.objectStore.cidrs",
        "at least 1 item",
    ),
    ("dev", {"clickhouse": {"backup": {"mode": "read"}}}, "clickhouse.backup.mode", "'backup' or 'restore'"),
    ("dr", {}, "credentials.kafkaMirrorSourcePassword", "must be set when mirror is set"),
    ("dev", {"mirror": MIRROR}, "kafka.authentication", "must be scram when mirror is set"),
    ("dr", {"mirror": {"image": "apache/kafka:3.9.0"}}, "mirror.image", "must be kafka.image"),
    ("dr", {"mirror": {"sourceBootstrap": "prod-kafka"}}, "mirror.sourceBootstrap", "host:port"),
    ("dr", {"mirror": {"sourceCidrs": []}}, "mirror.sourceCidrs", "at least 1 item"),
    ("dr", {"kafka": {"mirrorCidrs": ["10.20.0.0/16"]}}, "kafka.mirrorCidrs", "must be empty when mirror is set"),
    ("dev", {"kafka": {"mirrorCidrs": ["10.20.0.0/16"]}}, "kafka.mirrorCidrs", "needs authentication: scram"),
]


@pytest.mark.parametrize(("stack", "overrides", "key", "text"), BAD_CONFIGS, ids=[c[2] for c in BAD_CONFIGS])
def test_bad_config_is_refused_naming_stack_and_key(stack: str, overrides: dict, key: str, text: str) -> None:
    message = str(problems(stack, **overrides))
    assert f"stack '{stack}'" in message
    line = next((line for line in message.splitlines() if f"{PROJECT}:{key}" in line), None)
    assert line, f"no problem names {key}:\n{message}"
    assert text in line, f"the problem for {key} does not say {text!r}:\n{line}"


def test_backups_need_the_object_stores_keys() -> None:
    store = {"endpoint": "https://s3.example.com", "bucket": "backups", "prefix": "dev"}
    message = str(problems("prod", clickhouse={"backup": {"enabled": True, "objectStore": store}}))
    for name in ("clickhouseBackupAccessKey", "clickhouseBackupSecretKey"):
        assert f"{PROJECT}:credentials.{name}: must be set when clickhouse.backup.enabled is true" in message


def test_an_object_stores_key_may_hold_slash_and_plus_but_not_spaces() -> None:
    keys = {"clickhouseBackupAccessKey": "AKIA EXAMPLE", "clickhouseBackupSecretKey": "abc/def+ghi="}
    message = str(problems("dev", (f"{PROJECT}:credentials",), credentials=keys))
    assert "credentials.clickhouseBackupAccessKey" in message and "AKIA EXAMPLE" not in message
    assert "clickhouseBackupSecretKey" not in message


def test_the_bad_value_is_shown() -> None:
    message = str(problems("dev", presto={"image": "prestodb/presto"}))
    assert f'{PROJECT}:presto.image = "prestodb/presto"' in message


def test_all_problems_of_a_stack_are_reported_together() -> None:
    error = problems(
        "prod",
        namespace="Bad",
        storageClas="x",
        kafka={"brokers": 1, "replicationFactor": 1, "minInsyncReplicas": 1},
        presto={"image": "prestodb/presto"},
    )
    keys = {p.key.removeprefix(f"{PROJECT}:") for p in error.problems}
    kafka = {"kafka.brokers", "kafka.replicationFactor", "kafka.minInsyncReplicas"}
    assert keys == {"namespace", "storageClas", "presto.image", *kafka}
    assert "6 invalid settings" in str(error)


def test_credentials_must_be_set_as_secrets() -> None:
    value = "a-long-enough-password-123"
    message = str(problems("dev", credentials={"grafanaAdminPassword": value}))
    assert f"{PROJECT}:credentials = [secret]: must be set as a secret" in message
    assert value not in message


def test_credential_names_and_lengths_are_checked_without_echoing_them() -> None:
    error = problems(
        "dev",
        secret_keys=(f"{PROJECT}:credentials",),
        credentials={"grafanaAdminPasswrd": "long-enough-value-1234", "prestoAdminPassword": "short"},
    )
    message = str(error)
    assert f"{PROJECT}:credentials.grafanaAdminPasswrd = [secret]: unknown key" in message
    assert "grafanaAdminPassword" in message, "the allowed names are listed"
    assert f"{PROJECT}:credentials.prestoAdminPassword = [secret]: must be at least 16" in message
    assert "long-enough-value-1234" not in message
    assert "short" not in message


@pytest.mark.parametrize("value", ['quote"in-the-middle-1234', "comma,and]bracket-12345", "spaces are not allowed 1"])
def test_a_credential_that_would_break_a_config_file_is_refused_without_echoing_it(value: str) -> None:
    message = str(problems("dev", secret_keys=(f"{PROJECT}:credentials",), credentials={"kafkaVerifyPassword": value}))
    expected = "must be at least 16 characters, each a letter, a digit or one of - . _ ~"
    assert f"{PROJECT}:credentials.kafkaVerifyPassword = [secret]: {expected}" in message
    assert value not in message


def test_a_credential_of_letters_digits_and_unreserved_marks_is_accepted() -> None:
    config = stack_config("dev", {"credentials": {"kafkaVerifyPassword": "Abc-123_x.y~z-0099"}})
    settings = parse_settings("dev", config, (f"{PROJECT}:credentials",))
    assert settings.credentials.kafkaVerifyPassword.get_secret_value() == "Abc-123_x.y~z-0099"


def test_keys_of_other_namespaces_are_left_alone() -> None:
    config = stack_config("dev")
    config["kubernetes:context"] = "other"
    assert parse_settings("dev", config).namespace == "query-engine"


def test_a_bad_stack_fails_before_any_resource_is_declared() -> None:
    captured = Rendered("prod")
    with pytest.raises(pulumi.RunError, match=rf"(?s)stack 'prod'.*{PROJECT}:kafka.brokers = 1"):
        render("prod", overrides={"kafka": {"brokers": 1, "replicationFactor": 1}}, into=captured)
    assert not captured.resources, f"declared before validation failed: {[r.label for r in captured.resources]}"


def test_dev_fits_one_small_minikube_node() -> None:
    settings = parse_settings("dev", stack_config("dev"))
    need = budget(settings)
    assert need.requests_memory <= quantity_value("3Gi"), need.lines()
    assert need.requests_cpu <= 2, need.lines()
    assert quantity_value(settings.quota.requests.memory) <= quantity_value("3Gi")
    assert quantity_value(settings.quota.requests.cpu) <= 2


def test_prod_is_highly_available() -> None:
    settings = parse_settings("prod", stack_config("prod"))
    assert settings.high_availability
    assert settings.kafka.brokers >= 3 and settings.kafka.min_insync_replicas >= 2
    assert settings.presto.workers.min_replicas >= 2
    replicated = {w.name for w in planned_workloads(settings) if w.max_replicas > 1}
    assert {"presto-worker", "kafka"} <= replicated


def test_the_jmx_exporter_image_must_be_pinned() -> None:
    message = str(problems("dev", monitoring={"jmxExporterImage": "prestodb/presto:latest"}))
    assert f'{PROJECT}:monitoring.jmxExporterImage = "prestodb/presto:latest": ' in message, message
    assert "not 'latest'" in message, message


def test_a_quota_without_room_for_the_rollout_surge_is_refused() -> None:
    settings = parse_settings("prod", stack_config("prod"))
    surge = sum(quantity_value(w.resources.requests.memory) * w.surge for w in planned_workloads(settings) if w.surge)
    assert surge > 0, "prod rolls its Deployments with a surge"
    replicas_only = budget(settings).requests_memory - surge
    tight = f"{int(replicas_only / 2**20)}Mi"
    message = str(problems("prod", quota={"requests": {"cpu": "48", "memory": tight}}))
    line = next((line for line in message.splitlines() if f"{PROJECT}:quota.requests.memory" in line), None)
    assert line, f"no problem names quota.requests.memory:\n{message}"
    assert "rollout surge included" in line, line
