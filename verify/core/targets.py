"""Where the deployed stack's services are and what verify should find there, from the stack's outputs."""

import json
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from components.data.kafka.config import VERIFY_PRINCIPAL
from verify.core.errors import UsageError

PULUMI_TIMEOUT = 120
VERIFY_KAFKA_PASSWORD = "kafkaVerifyPassword"


@dataclass(frozen=True)
class Endpoints:
    """Addresses of the services (in-cluster names, or overrides that reach them from here)."""

    presto: str
    """https URL of the coordinator's client port."""
    clickhouse_http: str
    clickhouse_native: str
    """host:port."""
    kafka: str
    """Bootstrap servers."""
    prometheus: str
    grafana: str

    def overridden(self, **urls: str | None) -> "Endpoints":
        """These endpoints with the given ones replaced (None leaves one as it is)."""
        return replace(self, **{key: value for key, value in urls.items() if value})


@dataclass(frozen=True)
class Expected:
    """What the stack deployed (its `expected` output)."""

    presto_workers: int
    presto_catalogs: tuple[str, ...]
    kafka_brokers: int
    kafka_topic: str
    kafka_partitions: int
    kafka_replication_factor: int
    events_table: str
    """database.table in ClickHouse that the Kafka engine fills from the topic."""
    clickhouse_shards: int
    clickhouse_replicas: int
    """The ClickHouse cluster's shape: shards of replicas."""
    scrape_jobs: tuple[str, ...]
    rule_groups: tuple[str, ...]
    dashboards: tuple[str, ...]
    objects: dict[str, tuple[str, ...]]
    """Names of the stack's Kubernetes objects by kind (Deployment, Service, NetworkPolicy...)."""
    load_slos: tuple[str, ...]
    """Objectives `verify load` gates on, e.g. p95<2s."""


@dataclass(frozen=True)
class MirrorSource:
    """A DR stack's primary as its mirror reads it, for the mirror's lag (the RPO)."""

    bootstrap: str
    login: tuple[str, str]
    """The mirror user's SCRAM login on the primary."""
    topics: tuple[str, ...]
    lag_alert_seconds: float
    """Over this, the lag check fails (the same threshold as the KafkaMirrorBehind alert)."""


@dataclass(frozen=True)
class Targets:
    """Everything a check needs to reach its service and judge it."""

    stack: str
    namespace: str
    endpoints: Endpoints
    presto_ca: str
    """PEM of the CA that signed Presto's certificate."""
    credentials: dict[str, str]
    expected: Expected
    kube_context: str | None = None
    """The kubeconfig context the stack was deployed with (None: the current one)."""
    kafka_login: tuple[str, str] | None = None
    """(user, password) for Kafka's SASL/SCRAM, when the stack has kafka.authentication scram."""
    mirror: MirrorSource | None = None
    """The primary a DR stack mirrors; None for a stack without a mirror."""

    def secrets(self) -> set[str]:
        """Every credential value, for redaction (the mirror's login on the primary included)."""
        mirrored = {self.mirror.login[1]} if self.mirror else set()
        return {value for value in self.credentials.values() if value} | mirrored


def load_outputs(stack: str | None, outputs_file: Path | None) -> tuple[str, dict[str, Any]]:
    """The stack's outputs (with secrets) from a file, or from `pulumi stack output`; and the stack's name."""
    if outputs_file is not None:
        try:
            return stack or outputs_file.stem, json.loads(outputs_file.read_text())
        except (OSError, ValueError) as error:
            raise UsageError(f"--outputs {outputs_file}: {error}") from None
    if stack is None:
        raise UsageError("say which stack: --stack NAME (pulumi stack output) or --outputs FILE")
    command = ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PULUMI_TIMEOUT, check=False)
    except FileNotFoundError:
        raise UsageError("the pulumi CLI is not on PATH: install it, or pass --outputs FILE") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"pulumi stack output --stack {stack} took more than {PULUMI_TIMEOUT}s") from None
    if done.returncode != 0:
        raise UsageError(f"pulumi stack output --stack {stack} failed: {done.stderr.strip()[-500:]}")
    return stack, json.loads(done.stdout)


def _field(outputs: dict[str, Any], *path: str) -> Any:
    """One output by its path, or a usage error naming it."""
    value: Any = outputs
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise UsageError(f"the stack outputs have no {'.'.join(path)}: is the stack deployed at this version?")
        value = value[key]
    return value


def targets_from(stack: str, outputs: dict[str, Any]) -> Targets:
    """Targets from a stack's outputs."""
    expected = _field(outputs, "expected")
    return Targets(
        stack=stack,
        namespace=_field(outputs, "namespace"),
        endpoints=Endpoints(
            presto=_field(outputs, "prestoUrl"),
            clickhouse_http=_field(outputs, "clickhouseUrl"),
            clickhouse_native=_field(outputs, "clickhouseNativeAddress"),
            kafka=_field(outputs, "kafkaBootstrap"),
            prometheus=_field(outputs, "prometheusUrl"),
            grafana=_field(outputs, "grafanaUrl"),
        ),
        presto_ca=_field(outputs, "prestoCaCertificate"),
        credentials=dict(_field(outputs, "credentials")),
        kube_context=outputs.get("kubeContext") or None,
        kafka_login=_kafka_login(outputs),
        mirror=_mirror(outputs),
        expected=Expected(
            presto_workers=int(_field(expected, "prestoWorkers")),
            presto_catalogs=tuple(_field(expected, "prestoCatalogs")),
            kafka_brokers=int(_field(expected, "kafkaBrokers")),
            kafka_topic=_field(expected, "kafkaTopic"),
            kafka_partitions=int(_field(expected, "kafkaPartitions")),
            kafka_replication_factor=int(_field(expected, "kafkaReplicationFactor")),
            events_table=_field(expected, "eventsTable"),
            clickhouse_shards=int(_field(expected, "clickhouseShards")),
            clickhouse_replicas=int(_field(expected, "clickhouseReplicas")),
            scrape_jobs=tuple(_field(expected, "scrapeJobs")),
            rule_groups=tuple(_field(expected, "ruleGroups")),
            dashboards=tuple(_field(expected, "dashboards")),
            objects={kind: tuple(names) for kind, names in _field(expected, "objects").items()},
            load_slos=tuple(_field(expected, "loadSlos")),
        ),
    )


def _kafka_login(outputs: dict[str, Any]) -> tuple[str, str] | None:
    """The Kafka SCRAM login of verify, if the stack authenticates Kafka clients."""
    if _field(outputs, "kafkaAuthentication") != "scram":
        return None
    return VERIFY_PRINCIPAL, _field(outputs, "credentials", VERIFY_KAFKA_PASSWORD)


def _mirror(outputs: dict[str, Any]) -> MirrorSource | None:
    """The mirror's source, if the stack exports one (a DR stack)."""
    mirror = outputs.get("mirror")
    if not mirror:
        return None
    return MirrorSource(
        bootstrap=_field(mirror, "sourceBootstrap"),
        login=(_field(mirror, "user"), _field(mirror, "sourcePassword")),
        topics=tuple(_field(mirror, "topics")),
        lag_alert_seconds=float(_field(mirror, "lagAlertSeconds")),
    )


def split_address(address: str) -> SplitResult:
    """The parts of a URL or of a bare host:port (which then has no scheme)."""
    return urlsplit(address if "//" in address else f"//{address}")


def host_port(address: str, default_port: int) -> tuple[str, int]:
    """(host, port) of a URL or a host:port."""
    parts = split_address(address)
    return parts.hostname or "", parts.port or default_port
