"""The dr stack deploys MirrorMaker 2 as its settings say, and a primary with kafka.mirrorCidrs admits it read-only."""

import re
from typing import Any

import pytest
import yaml

from components import names
from components.data.kafka.component import bootstrap_address
from components.data.kafka.mirror import (
    MIRROR_PRINCIPAL,
    SOURCE_PASSWORD_ENV,
    TARGET_PASSWORD_ENV,
    mirror_metrics_config,
    mirror_properties,
)
from components.observability.prometheus.alert_rules import alerts
from components.observability.prometheus.config import prometheus_config
from components.platform.labels import selector_labels
from components.platform.workloads import SECRET_CONFIG_DIGEST, config_digest
from components.security.network import KAFKA_BROKER, KAFKA_MIRROR, PROMETHEUS, Peer
from tests.support.netpol import Pod, allowed
from tests.support.render import STACK_SECRETS, Rendered, render, settings_of
from tests.support.workloads import pod_spec
from verify.core.targets import targets_from

PRIMARY_MIRROR_CIDR = "10.20.0.0/16"


@pytest.fixture(scope="module")
def primary() -> Rendered:
    """Prod as the primary a DR site mirrors from."""
    return render("prod", {"kafka": {"mirrorCidrs": [PRIMARY_MIRROR_CIDR]}})


def pod_of(stack: Rendered, peer: Peer) -> Pod:
    """A pod of the stack's namespace with a peer's labels."""
    return Pod(selector_labels(peer.name, peer.component, stack.stack), stack.outputs["namespace"])


def mirror_container(stack: Rendered) -> dict[str, Any]:
    """The mirror's one container."""
    (container,) = pod_spec(stack.named("Deployment", names.KAFKA_MIRROR))["containers"]
    return container


def topic_job(stack: Rendered) -> tuple[str, dict[str, Any]]:
    """The topic Job's script and its container's environment by name."""
    script = stack.named("ConfigMap", names.KAFKA_CONFIG).inputs["data"]["topic-bootstrap.sh"]
    (container,) = pod_spec(stack.named("Job", names.KAFKA_TOPIC_JOB))["containers"]
    return script, {env["name"]: env for env in container["env"]}


def test_only_the_dr_stack_runs_a_mirror(rendered_stacks: dict[str, Rendered]) -> None:
    for name, stack in rendered_stacks.items():
        deployed = [d for d in stack.of_kind("Deployment") if d.inputs["metadata"]["name"] == names.KAFKA_MIRROR]
        assert len(deployed) == (name == "dr"), f"stack {name}: {len(deployed)} Deployment/{names.KAFKA_MIRROR}"
        assert ("mirror" in stack.outputs) == (name == "dr"), f"stack {name}: the mirror output"


def test_the_mirror_runs_the_stacks_kafka_release_on_the_pure_config(rendered_stacks: dict[str, Rendered]) -> None:
    dr = rendered_stacks["dr"]
    settings = settings_of(dr)
    assert settings.mirror is not None
    container = mirror_container(dr)
    assert container["image"] == settings.kafka.image
    assert container["command"] == ["/opt/kafka/bin/connect-mirror-maker.sh", "/etc/kafka-mirror/mm2.properties"]
    data = dr.named("ConfigMap", f"{names.KAFKA_MIRROR}-config").inputs["data"]
    assert data["mm2.properties"] == mirror_properties(
        settings.kafka, settings.mirror, bootstrap_address(settings.namespace)
    )
    assert data["jmx-exporter.yaml"] == mirror_metrics_config()
    assert {"name": "metrics", "containerPort": names.JMX_METRICS_PORT} in container["ports"]
    assert "-javaagent:" in next(e["value"] for e in container["env"] if e["name"] == "KAFKA_OPTS")


def test_both_passwords_come_from_the_kafka_users_secret(rendered_stacks: dict[str, Rendered]) -> None:
    env = {e["name"]: e for e in mirror_container(rendered_stacks["dr"])["env"]}
    assert env[TARGET_PASSWORD_ENV]["valueFrom"]["secretKeyRef"] == {"name": "kafka-users", "key": "mirror"}
    assert env[SOURCE_PASSWORD_ENV]["valueFrom"]["secretKeyRef"] == {"name": "kafka-users", "key": "mirror-source"}
    assert all("value" not in e for e in env.values() if "PASSWORD" in e["name"])
    users = rendered_stacks["dr"].named("Secret", "kafka-users").inputs["stringData"]
    assert users["mirror-source"] == "primaryMirrorPassword0123456789", "the configured primary's password"


def test_the_dr_topic_job_creates_the_mirror_user_with_write_grants(rendered_stacks: dict[str, Rendered]) -> None:
    script, env = topic_job(rendered_stacks["dr"])
    assert f"--entity-name {MIRROR_PRINCIPAL}" in script
    assert f"--allow-principal User:{MIRROR_PRINCIPAL} --operation All" in script
    assert env[TARGET_PASSWORD_ENV]["valueFrom"]["secretKeyRef"] == {"name": "kafka-users", "key": "mirror"}


def test_a_primary_creates_a_read_only_mirror_user_only_when_a_dr_site_mirrors_it(
    primary: Rendered, rendered_stacks: dict[str, Rendered]
) -> None:
    script, env = topic_job(primary)
    assert f"--entity-name {MIRROR_PRINCIPAL}" in script and TARGET_PASSWORD_ENV in env
    mirror_acls = [line for line in script.splitlines() if f"User:{MIRROR_PRINCIPAL}" in line]
    assert mirror_acls and not [line for line in mirror_acls if re.search(r"--operation (All|Write|Create)", line)]
    shipped, _ = topic_job(rendered_stacks["prod"])
    assert MIRROR_PRINCIPAL not in shipped.replace("--mirror", ""), "prod as shipped has no mirror user"


def test_the_mirror_reaches_this_sites_brokers_the_primary_and_prometheus_it(
    rendered_stacks: dict[str, Rendered],
) -> None:
    dr = rendered_stacks["dr"]
    settings = settings_of(dr)
    assert settings.mirror is not None
    mirror, broker = pod_of(dr, KAFKA_MIRROR), pod_of(dr, KAFKA_BROKER)
    assert allowed(dr, mirror, broker, names.KAFKA_CLIENT_PORT)
    assert not allowed(dr, mirror, broker, names.KAFKA_INTERNAL_PORT), "the mirror is no super user"
    assert allowed(dr, pod_of(dr, PROMETHEUS), mirror, names.JMX_METRICS_PORT)
    inside, outside = Pod({}, None, "10.16.3.4"), Pod({}, None, "10.99.3.4")
    assert settings.mirror.source_cidrs == ["10.16.0.0/14"]
    assert allowed(dr, mirror, inside, 9092), "the mirror cannot reach the primary's brokers"
    assert not allowed(dr, mirror, outside, 9092)
    assert not allowed(dr, mirror, inside, 9094)


def test_a_mirrored_primary_admits_the_dr_sites_mirror_on_the_client_port_only(primary: Rendered) -> None:
    broker = pod_of(primary, KAFKA_BROKER)
    dr_mirror = Pod({}, None, "10.20.1.2")
    assert allowed(primary, dr_mirror, broker, names.KAFKA_CLIENT_PORT)
    assert not allowed(primary, dr_mirror, broker, names.KAFKA_INTERNAL_PORT)
    assert not allowed(primary, Pod({}, None, "10.21.1.2"), broker, names.KAFKA_CLIENT_PORT)


def test_prometheus_scrapes_the_mirror_and_alerts_when_it_is_behind(rendered_stacks: dict[str, Rendered]) -> None:
    settings = settings_of(rendered_stacks["dr"])
    jobs = yaml.safe_load(prometheus_config(settings, rule_files=[], alertmanagers=[]))["scrape_configs"]
    (job,) = [j for j in jobs if j["job_name"] == "kafka-mirror"]
    assert job["relabel_configs"][0]["regex"] == names.KAFKA_MIRROR
    (behind,) = [a for a in alerts(settings) if a.name == "KafkaMirrorBehind"]
    assert settings.mirror is not None and f"> {settings.mirror.lag_alert_seconds * 1000}" in behind.expr
    assert "KafkaMirrorBehind" not in {a.name for a in alerts(settings_of(rendered_stacks["prod"]))}


def test_verify_reads_the_mirror_output_and_its_password_is_a_secret(rendered_stacks: dict[str, Rendered]) -> None:
    dr = rendered_stacks["dr"]
    assert "mirror" in dr.secret_outputs
    mirror = targets_from("dr", dr.outputs).mirror
    assert mirror is not None
    assert mirror.login == (MIRROR_PRINCIPAL, "primaryMirrorPassword0123456789")
    assert mirror.topics == ("events",) and mirror.lag_alert_seconds == 60
    assert mirror.bootstrap.startswith("kafka-0.kafka-headless.query-engine.svc.prod.example:9092")


def test_a_new_primary_password_rolls_the_mirror(rendered_stacks: dict[str, Rendered]) -> None:
    """The pod reads its passwords at start: their digest is in its template, itself a secret."""
    before = rendered_stacks["dr"]
    secrets = {
        "credentials": {**STACK_SECRETS["dr"]["credentials"], "kafkaMirrorSourcePassword": "rotatedMirror0123456789"}
    }
    after = render("dr", secrets=secrets)
    deployments = [stack.named("Deployment", names.KAFKA_MIRROR) for stack in (before, after)]
    old, new = (d.inputs["spec"]["template"]["metadata"]["annotations"] for d in deployments)
    assert old[SECRET_CONFIG_DIGEST] != new[SECRET_CONFIG_DIGEST], "the mirror keeps the old password"
    users = before.named("Secret", "kafka-users").inputs["stringData"]
    assert old[SECRET_CONFIG_DIGEST] == config_digest((users["mirror"], users["mirror-source"]))
    assert all(d.secret_paths == ["spec"] for d in deployments), "a digest of secrets is itself a secret"
    assert "rotatedMirror" not in str(deployments[1].inputs)
