"""MirrorMaker 2's pure config: no password in the file, the primary only read, the settings validated."""

import re

import pytest
from pydantic import ValidationError

from components.data.kafka.config import grants
from components.data.kafka.mirror import (
    MIRROR_PRINCIPAL,
    MIRROR_RULES,
    SOURCE_PASSWORD_ENV,
    TARGET_PASSWORD_ENV,
    mirror_properties,
    mirror_user_commands,
    source_grants,
    target_grants,
)
from components.settings.model import MirrorSettings, Settings
from verify.core.targets import MirrorSource, Targets

SECRET = "the-primary-mirror-password-0001"


def settings(**overrides: object) -> MirrorSettings:
    """A mirror block pointing at a primary, with overrides."""
    return MirrorSettings.model_validate(
        {"sourceBootstrap": "kafka-0.kafka-headless.query-engine.svc:9092", "sourceCidrs": ["10.8.0.0/16"], **overrides}
    )


def properties(dev_settings: Settings, mirror: MirrorSettings) -> dict[str, str]:
    """mm2.properties as a dict."""
    text = mirror_properties(dev_settings.kafka, mirror, "kafka:9092")
    return dict(line.split("=", 1) for line in text.splitlines())


def test_the_file_names_the_passwords_as_environment_variables_and_holds_none(dev_settings: Settings) -> None:
    mirror = settings()
    text = mirror_properties(dev_settings.kafka, mirror, "kafka:9092")
    assert SECRET not in text
    found = properties(dev_settings, mirror)
    assert f"${{env:{SOURCE_PASSWORD_ENV}}}" in found["primary.sasl.jaas.config"]
    assert f"${{env:{TARGET_PASSWORD_ENV}}}" in found["dr.sasl.jaas.config"]
    assert found["config.providers.env.class"].endswith("EnvVarConfigProvider")


def test_only_the_primary_to_dr_flow_runs_and_the_topic_keeps_its_name(dev_settings: Settings) -> None:
    found = properties(dev_settings, settings(topics=["events", "audit"]))
    assert found["primary->dr.enabled"] == "true" and found["dr->primary.enabled"] == "false"
    assert found["dr->primary.emit.heartbeats.enabled"] == "false", "else the disabled flow still gets a herder"
    assert found["primary->dr.topics"] == "events,audit"
    assert found["replication.policy.class"].endswith("IdentityReplicationPolicy")
    assert found["offset-syncs.topic.location"] == "target"
    assert found["sync.group.offsets.enabled"] == "true" and found["primary->dr.groups"] == "clickhouse-events"


def test_on_the_primary_the_mirror_user_only_reads_and_describes() -> None:
    operations = {op for grant in source_grants(settings().topics, settings().groups) for op in grant.operations}
    assert operations <= {"Read", "Describe", "DescribeConfigs"}
    assert all(
        grant.principal == MIRROR_PRINCIPAL
        for grant in source_grants(settings().topics, settings().groups) + target_grants(settings())
    )


def test_the_user_lines_take_their_password_from_the_environment() -> None:
    script = mirror_user_commands(target_grants(settings()))
    assert f"password=${TARGET_PASSWORD_ENV}" in script and SECRET not in script
    assert script.count("kafka-acls.sh") >= len(target_grants(settings()))


def test_the_stacks_own_grants_are_unchanged_by_the_mirror(dev_settings: Settings) -> None:
    assert all(grant.principal != MIRROR_PRINCIPAL for grant in grants(dev_settings.kafka))


@pytest.mark.parametrize(
    ("key", "value"),
    [("sourceBootstrap", "kafka:port"), ("sourceBootstrap", ""), ("topics", []), ("topics", ["bad topic"])],
)
def test_a_bad_mirror_block_is_refused(key: str, value: object) -> None:
    with pytest.raises(ValidationError, match=key):
        settings(**{key: value})


def test_the_metric_rules_are_valid_patterns() -> None:
    for rule in MIRROR_RULES:
        re.compile(rule.pattern.replace("<", "").replace(">", ""))


def test_verify_redacts_the_mirror_password() -> None:
    mirror = MirrorSource(
        bootstrap="primary:9092", login=(MIRROR_PRINCIPAL, SECRET), topics=("events",), lag_alert_seconds=60
    )
    targets = Targets(
        stack="dr",
        namespace="q",
        endpoints=None,
        presto_ca="",
        credentials={},
        expected=None,
        mirror=mirror,  # type: ignore[arg-type]
    )
    assert SECRET in targets.secrets()
