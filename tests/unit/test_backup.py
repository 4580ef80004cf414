"""ClickHouse backups as rendered: the tool's config, the sidecar, the CronJob, flows, quota, scrape job and alerts."""

import re

import kubernetes_validate
import pytest
import yaml

from components import names
from components.data.clickhouse.backup import (
    SHARED_CONFIG_KEYS,
    SHARED_ENDPOINTS,
    ObjectStore,
    Schedule,
    job_script,
    tool_config,
)
from components.data.clickhouse.component import BACKUP_CONFIG_FILE
from components.observability.prometheus.alert_rules import alerts
from components.observability.prometheus.config import prometheus_config
from components.platform.budget import budget
from components.platform.labels import selector_labels
from components.security.network import CLICKHOUSE_BACKUP_JOB, CLICKHOUSE_SERVER, PROMETHEUS, Peer
from components.settings.model import Settings
from components.settings.parse import parse_settings
from components.settings.stack_files import stack_config
from tests.support.backups import ACCESS_KEY, SECRET_KEY, SECRETS, STORE, backup_overrides, backup_settings
from tests.support.netpol import Pod, allowed
from tests.support.render import KUBERNETES_VERSIONS, Rendered, render, settings_of
from tests.support.workloads import containers
from tests.unit.test_policy import run_all

STORE_OBJECT = ObjectStore(
    endpoint="http://minio.storage:9000", bucket="backups", prefix="prod/clickhouse", region="eu-1", path_style=True
)


@pytest.fixture(scope="module")
def backed_up() -> Rendered:
    """The prod stack (2 shards x 2 replicas) with backups on."""
    return render("prod", backup_overrides("prod"), SECRETS)


def test_the_tools_config_holds_the_store_and_retention_but_no_secret() -> None:
    config = yaml.safe_load(
        tool_config(STORE_OBJECT, Schedule(keep_full=3, full_every=7), clickhouse_port=9000, listen="0.0.0.0:7171")
    )
    assert config["general"]["backups_to_keep_remote"] == 21
    assert config["s3"]["path"] == "prod/clickhouse/shard-{shard}"
    assert config["s3"]["disable_ssl"] is True
    assert config["api"]["allow_parallel"] is False
    flat = yaml.safe_dump(config)
    for secret in ("access_key", "secret_key", "password"):
        assert secret not in flat, f"{secret} is in the tool's config file: it belongs in its environment"


def test_the_job_calls_every_replica_of_every_shard_in_order() -> None:
    script = job_script([["a-0", "a-1"], ["b-0", "b-1"]], Schedule(keep_full=2, full_every=7))
    assert "backup_shard 1 a-0 a-1 ||" in script
    assert "backup_shard 2 b-0 b-1 ||" in script
    assert "full_every=7" in script


def test_every_object_validates_against_the_kubernetes_schema(backed_up: Rendered) -> None:
    for obj in backed_up.kubernetes_objects():
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj.inputs, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                raise AssertionError(f"{obj.kind}/{obj.inputs['metadata']['name']}: {error}") from None


def test_the_sidecar_shares_the_data_volume_and_reads_every_secret_from_a_secret(backed_up: Rendered) -> None:
    statefulset = backed_up.named("StatefulSet", names.CLICKHOUSE)
    by_name = {c["name"]: c for c in containers(statefulset)}
    server, sidecar = by_name["clickhouse"], by_name[names.CLICKHOUSE_BACKUP]
    data = next(m for m in server["volumeMounts"] if m["name"] == "data")
    assert {"name": "data", "mountPath": data["mountPath"]} in sidecar["volumeMounts"]
    assert sidecar["image"] == "altinity/clickhouse-backup:2.6.3"
    for variable in sidecar["env"]:
        assert "value" not in variable or variable["name"] == "API_USERNAME", f"{variable['name']} is a literal"
    for probe in ("startupProbe", "livenessProbe"):
        assert sidecar[probe]["tcpSocket"]["port"] == "backup-api"
    assert sidecar["readinessProbe"]["exec"]["command"] == ["/bin/true"], "the tool must not gate the server's pod"
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"containerPort": names.CLICKHOUSE_BACKUP_PORT, "name": "backup-api"} in sidecar["ports"]


def test_the_store_keys_live_only_in_the_backup_secret(backed_up: Rendered) -> None:
    secret = backed_up.named("Secret", names.CLICKHOUSE_BACKUP)
    assert secret.inputs["stringData"]["s3-access-key"] == ACCESS_KEY
    config = backed_up.named("ConfigMap", names.CLICKHOUSE_BACKUP_CONFIG)
    for obj in backed_up.kubernetes_objects():
        if obj.kind != "Secret":
            assert SECRET_KEY not in str(obj.inputs), f"{obj.kind}/{obj.inputs['metadata']['name']} holds the key"
    assert STORE["bucket"] in config.inputs["data"]["config.yml"]


def test_the_cronjob_never_overlaps_and_keeps_a_short_history(backed_up: Rendered) -> None:
    cronjob = backed_up.named("CronJob", names.CLICKHOUSE_BACKUP)
    spec = cronjob.inputs["spec"]
    assert spec["schedule"] == "0 2 * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 3)
    job = spec["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] > 0 and job["backoffLimit"] == 0
    pod = job["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    script = container["command"][-1]
    for ordinal in range(4):
        assert f"clickhouse-{ordinal}.clickhouse-headless.query-engine.svc.cluster.local" in script
    assert "backup_shard 2 clickhouse-2." in script, "the second shard is servers 2 and 3"


def pod_of(stack: Rendered, peer: Peer) -> Pod:
    """A pod of the stack's namespace with a peer's labels."""
    return Pod(selector_labels(peer.name, peer.component, stack.stack), stack.outputs["namespace"])


def test_the_job_and_prometheus_reach_the_sidecars_and_nothing_else_does(backed_up: Rendered) -> None:
    server = pod_of(backed_up, CLICKHOUSE_SERVER)
    port = names.CLICKHOUSE_BACKUP_PORT
    assert allowed(backed_up, pod_of(backed_up, CLICKHOUSE_BACKUP_JOB), server, port)
    assert allowed(backed_up, pod_of(backed_up, PROMETHEUS), server, port)
    assert not allowed(backed_up, server, server, port)
    assert not allowed(backed_up, pod_of(backed_up, CLICKHOUSE_BACKUP_JOB), server, names.CLICKHOUSE_NATIVE_PORT)
    store = Pod({}, None, "52.95.150.10")
    assert allowed(backed_up, server, store, 443), "the sidecar cannot reach the object store"
    assert not allowed(backed_up, server, store, 80)


def test_the_quota_plan_counts_a_sidecar_per_server_the_jobs_pod_and_a_drill_server_per_shard() -> None:
    with_backups, without = budget(backup_settings("prod")), budget(shipped("prod"))
    assert with_backups.pods == without.pods + 1 + 2, "the CronJob's pod and the drill's two scratch servers"
    sidecar, job, server = 128 * 2**20, 128 * 2**20, 8 * 2**30
    assert with_backups.requests_memory - without.requests_memory == 4 * sidecar + job + 2 * (server + sidecar)


def test_prometheus_scrapes_the_sidecars_with_the_api_login_and_alerts_on_backups() -> None:
    settings = backup_settings("prod")
    config = yaml.safe_load(prometheus_config(settings, rule_files=[], alertmanagers=[]))
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "clickhouse-backup")
    assert job["basic_auth"]["username"] == "backup"
    assert job["basic_auth"]["password_file"].endswith("/api-password")
    assert {a.name for a in alerts(settings)} >= {"ClickHouseBackupFailed", "ClickHouseBackupMissing"}


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_a_stack_without_backups_has_no_backup_job_scrape_or_alert(
    name: str, rendered_stacks: dict[str, Rendered]
) -> None:
    stack = rendered_stacks[name]
    settings = shipped(stack.stack)
    assert not [c for c in stack.of_kind("CronJob") if c.inputs["metadata"]["name"] == names.CLICKHOUSE_BACKUP]
    assert [c["name"] for c in containers(stack.named("StatefulSet", names.CLICKHOUSE))] == ["clickhouse"]
    assert "clickhouse-backup" not in prometheus_config(settings, rule_files=[], alertmanagers=[])
    assert not {a.name for a in alerts(settings)} & {"ClickHouseBackupFailed", "ClickHouseBackupMissing"}


def shipped(stack: str) -> Settings:
    """A shipped stack's settings as its file gives them (backups off)."""
    return parse_settings(stack, stack_config(stack))


def test_the_backed_up_stack_passes_every_policy_rule(backed_up: Rendered) -> None:
    assert run_all(backed_up) == []


def test_the_config_and_the_job_use_only_what_both_tool_versions_share() -> None:
    config = yaml.safe_load(
        tool_config(STORE_OBJECT, Schedule(keep_full=2, full_every=7), clickhouse_port=9000, listen="0.0.0.0:7171")
    )
    for section, keys in config.items():
        assert set(keys) <= set(SHARED_CONFIG_KEYS[section]), (
            f"{section}: {set(keys) - set(SHARED_CONFIG_KEYS[section])}"
        )
    script = job_script([["a-0"]], Schedule(keep_full=2, full_every=7))
    called = set(re.findall(r"\$api(/backup/[a-z/]*)", script)) | set(re.findall(r":\$port(/backup/[a-z/]*)", script))
    assert called, "the job calls no endpoint"
    for path in called:
        assert path.startswith(SHARED_ENDPOINTS), f"the job calls {path}, which one of the versions lacks"


def test_the_dr_stack_restores_only(rendered_stacks: dict[str, Rendered]) -> None:
    """Restore mode: the sidecars on the primary's store, no schedule, no backup alert, nothing deleted."""
    stack = rendered_stacks["dr"]
    settings = settings_of(stack)
    assert settings.clickhouse.backup.mode == "restore"
    assert not [c for c in stack.of_kind("CronJob") if c.inputs["metadata"]["name"] == names.CLICKHOUSE_BACKUP]
    assert [c["name"] for c in containers(stack.named("StatefulSet", names.CLICKHOUSE))] == [
        "clickhouse",
        "clickhouse-backup",
    ]
    assert not {a.name for a in alerts(settings)} & {"ClickHouseBackupFailed", "ClickHouseBackupMissing"}
    tool = yaml.safe_load(stack.named("ConfigMap", names.CLICKHOUSE_BACKUP_CONFIG).inputs["data"][BACKUP_CONFIG_FILE])
    assert tool["general"]["backups_to_keep_remote"] == 0, "0: the tool deletes no backup of the primary's"
