"""The stack's settings: one typed, validated object built from the stack config."""

import ipaddress
import re
import typing
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    create_model,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from components.data.presto import memory as presto_memory
from components.security.credential_catalog import (
    CREDENTIALS,
    MIN_OVERRIDE_LENGTH,
    OVERRIDE_ALPHABET,
    STORE_KEY_ALPHABET,
)
from components.settings.images import unpinned
from components.settings.quantities import quantity_value
from verify.load import slo

PROJECT = "query-engine-stack"

# ---------------------------------------------------------------------------------------------------
# Scalar types with their own grammar.
# ---------------------------------------------------------------------------------------------------


def _positive_quantity(text: str) -> str:
    """Accept a strictly positive Kubernetes quantity."""
    if quantity_value(text) <= 0:
        raise ValueError("must be greater than zero")
    return text


def _pinned_image(text: str) -> str:
    """Accept an image reference pinned to a version tag (not 'latest') or a digest."""
    problem = unpinned(text)
    if problem:
        raise ValueError(problem)
    return text


def _regex(pattern: str, allowed: str) -> Callable[[str], str]:
    """Build a validator that accepts strings matching pattern and names what is allowed."""
    compiled = re.compile(pattern)

    def check(text: str) -> str:
        if not compiled.fullmatch(text):
            raise ValueError(f"must be {allowed}")
        return text

    return check


def _cidr(text: str) -> str:
    """Accept an IPv4 or IPv6 network in CIDR form, host bits zero (e.g. '10.20.0.0/16')."""
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise ValueError("must be a network in CIDR form with its host bits zero, e.g. '10.20.0.0/16'") from None
    return text


def _semver(text: str) -> str:
    """Accept an exact semantic version such as '2.7.2' (a Helm chart pin)."""
    return _regex(r"\d+\.\d+\.\d+", "an exact version such as '2.7.2'")(text)


CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))
CRON_ALLOWED = "a cron schedule of 5 fields (minute hour day-of-month month day-of-week), e.g. '0 2 * * *'"


def _cron(text: str) -> str:
    """Accept a five-field cron schedule of numbers, '*', ranges, lists and steps, each within its field's range."""
    fields = text.split()
    if len(fields) != len(CRON_FIELDS):
        raise ValueError(f"must be {CRON_ALLOWED}")
    for (name, low, high), field in zip(CRON_FIELDS, fields, strict=True):
        for item in field.split(","):
            base, slash, step = item.partition("/")
            bounds = [] if base == "*" else base.split("-")
            valid = (
                (not slash or (step.isdigit() and int(step) > 0))
                and len(bounds) <= 2
                and all(bound.isdigit() and low <= int(bound) <= high for bound in bounds)
                and (len(bounds) < 2 or int(bounds[0]) <= int(bounds[1]))
            )
            if not valid:
                raise ValueError(f"must be {CRON_ALLOWED}; the {name} field '{field}' must lie within {low}-{high}")
    return text


def _bucket(text: str) -> str:
    """Accept an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-', no '..', not an IP address."""
    allowed = (
        "an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or "
        "digit, without '..', not an IP address"
    )
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", text) or ".." in text:
        raise ValueError(f"must be {allowed}")
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", text):
        raise ValueError(f"must be {allowed}")
    return text


Quantity = Annotated[str, AfterValidator(_positive_quantity)]
Image = Annotated[str, AfterValidator(_pinned_image)]
DnsLabel = Annotated[
    str,
    AfterValidator(
        _regex(
            r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
            "a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters",
        )
    ),
]
LabelKey = Annotated[
    str,
    AfterValidator(
        _regex(
            r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?",
            "a Kubernetes label key such as 'topology.kubernetes.io/zone'",
        )
    ),
]
Duration = Annotated[
    str,
    AfterValidator(_regex(r"[1-9]\d*(ms|s|m|h|d|w|y)", "a Prometheus duration such as '30s', '12h' or '15d'")),
]
TopicName = Annotated[
    str,
    AfterValidator(_regex(r"[A-Za-z0-9._-]{1,249}", "a Kafka topic name: letters, digits, '.', '_', '-'")),
]
ChartVersion = Annotated[str, AfterValidator(_semver)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Port = Annotated[int, Field(ge=1, le=65535)]
PemCertificate = Annotated[
    str,
    AfterValidator(
        _regex(
            r"\s*-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*",
            "one PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
        )
    ),
]
CronSchedule = Annotated[str, AfterValidator(_cron)]
BucketName = Annotated[str, AfterValidator(_bucket)]
StoreEndpoint = Annotated[
    str,
    AfterValidator(
        _regex(
            r"https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?",
            "an http:// or https:// URL of a host and optional port, without a path (e.g. 'https://s3.amazonaws.com')",
        )
    ),
]
KeyPrefix = Annotated[
    str,
    AfterValidator(
        _regex(
            r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", "a key prefix such as 'prod/clickhouse': no leading or trailing '/'"
        )
    ),
]
RunbookUrl = Annotated[
    str,
    AfterValidator(
        _regex(r"https?://[^\s#]+", "an http:// or https:// URL without a #fragment (each alert adds its own)")
    ),
]

# What each constrained text type is called in the settings reference.
TYPE_NAMES: dict[Any, str] = {
    typing.get_args(alias)[1]: name
    for alias, name in (
        (Quantity, "quantity"),
        (Image, "image"),
        (DnsLabel, "DNS label"),
        (LabelKey, "label key"),
        (Duration, "duration"),
        (TopicName, "topic name"),
        (ChartVersion, "version"),
        (Cidr, "CIDR"),
        (PemCertificate, "PEM"),
        (RunbookUrl, "URL"),
        (CronSchedule, "cron"),
        (BucketName, "bucket"),
        (StoreEndpoint, "URL"),
        (KeyPrefix, "key prefix"),
    )
}


Finding = tuple[str, Any, str]
"""A cross-field problem: key relative to the model, offending value, what is allowed."""


def report(findings: list[Finding]) -> None:
    """Raise every cross-field problem of one model at once (the loader splits them again)."""
    if findings:
        raise PydanticCustomError(
            "invalid_setting", "; ".join(message for _, _, message in findings), {"findings": findings}
        )


def _high_availability(info: ValidationInfo) -> bool:
    """Tell whether the stack being validated asked for high availability."""
    return bool((info.context or {}).get("high_availability"))


class Model(BaseModel):
    """Base of every settings model: strict types, camelCase keys, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, alias_generator=to_camel, validate_default=True)


# ---------------------------------------------------------------------------------------------------
# Shared building blocks.
# ---------------------------------------------------------------------------------------------------


class Amounts(Model):
    """An amount of CPU and memory."""

    cpu: Quantity = Field(description="CPU, e.g. '250m' or '2'")
    memory: Quantity = Field(description="memory, e.g. '512Mi' or '4Gi'")


class Resources(Model):
    """Container requests and limits; requests may not exceed limits."""

    requests: Amounts = Field(description="what the scheduler reserves")
    limits: Amounts = Field(description="the hard ceiling (memory over it is OOM-killed)")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> "Resources":
        findings: list[Finding] = []
        for kind in ("cpu", "memory"):
            request, limit = getattr(self.requests, kind), getattr(self.limits, kind)
            if quantity_value(request) > quantity_value(limit):
                findings.append(
                    (f"requests.{kind}", request, f"exceeds limits.{kind} ({limit}); must be at most the limit")
                )
        report(findings)
        return self


def resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> Callable[[], Resources]:
    """Build a default factory for a Resources block."""
    return lambda: Resources(
        requests=Amounts(cpu=cpu, memory=memory), limits=Amounts(cpu=cpu_limit, memory=memory_limit)
    )


class Storage(Model):
    """A PersistentVolumeClaim's size."""

    size: Quantity = Field(description="requested volume size, e.g. '10Gi'")


class KubernetesTarget(Model):
    """Where the stack is applied."""

    context: str | None = Field(None, description="kubeconfig context; unset = the current context")
    render_yaml_to: str | None = Field(
        None, description="write manifests to this directory (GitOps) instead of applying them"
    )


class Spread(Model):
    """How replicas are spread over failure domains (used when highAvailability is on)."""

    host_key: LabelKey = Field("kubernetes.io/hostname", description="node label for anti-affinity")
    zone_key: LabelKey = Field("topology.kubernetes.io/zone", description="node label for zone spread")
    zone_policy: Literal["ScheduleAnyway", "DoNotSchedule"] = Field(
        "ScheduleAnyway", description="whenUnsatisfiable of the zone topology spread constraint"
    )


class Dns(Model):
    """The cluster DNS pods that the default-deny egress policy still allows."""

    namespace: DnsLabel = Field("kube-system", description="namespace of the cluster DNS pods")
    pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"k8s-app": "kube-dns"}, description="labels of the cluster DNS pods"
    )


class Clients(Model):
    """Who, outside the stack's namespace, may open Presto's client port and Grafana."""

    namespaces: list[DnsLabel] = Field(
        default_factory=list, description="namespaces whose pods may connect (an ingress controller's, say)"
    )
    cidrs: list[Cidr] = Field(
        default_factory=list, description="address ranges that may connect (office, VPN, the nodes behind a NodePort)"
    )


class ApiServer(Model):
    """Where the Kubernetes API server listens, as NetworkPolicies see it (after the Service's translation)."""

    ports: list[Port] = Field(
        default_factory=lambda: [443, 6443],
        min_length=1,
        description="ports the API server's endpoints listen on (`kubectl get endpointslice -n default kubernetes`); "
        "minikube: 8443",
    )
    cidrs: list[Cidr] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        min_length=1,
        description="addresses of those endpoints; narrow it to the control plane's range where it is known",
    )


class Network(Model):
    """How the stack is reached from outside its namespace (port-forwards need none of it)."""

    clients: Clients = Field(default_factory=Clients, description="who may connect to Presto and Grafana")
    api_server: ApiServer = Field(
        default_factory=ApiServer, description="the API server Prometheus and kube-state-metrics read"
    )
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "ClusterIP", description="type of the Presto coordinator and Grafana Services; others stay ClusterIP"
    )

    @model_validator(mode="after")
    def _reachable(self) -> "Network":
        if self.service_type != "ClusterIP" and not self.clients.cidrs:
            report(
                [
                    (
                        "serviceType",
                        self.service_type,
                        "needs clients.cidrs: traffic through a node port or load balancer comes from outside "
                        "the cluster, which the NetworkPolicies admit only from the listed ranges",
                    )
                ]
            )
        return self


class Quota(Model):
    """The namespace's ResourceQuota."""

    requests: Amounts = Field(
        default_factory=lambda: Amounts(cpu="2", memory="3Gi"), description="sum of all pods' requests"
    )
    limits: Amounts = Field(
        default_factory=lambda: Amounts(cpu="8", memory="8Gi"), description="sum of all pods' limits"
    )
    pods: int = Field(20, ge=1, description="number of pods")
    persistent_volume_claims: int = Field(10, ge=1, description="number of PVCs")
    storage: Quantity = Field("40Gi", description="sum of all PVC sizes")


class LimitRange(Model):
    """The namespace's LimitRange for containers that do not state their own resources."""

    default_request: Amounts = Field(
        default_factory=lambda: Amounts(cpu="50m", memory="64Mi"), description="requests given by default"
    )
    default: Amounts = Field(
        default_factory=lambda: Amounts(cpu="500m", memory="256Mi"), description="limits given by default"
    )
    max: Amounts = Field(
        default_factory=lambda: Amounts(cpu="2", memory="2Gi"), description="largest limits a container may have"
    )


# ---------------------------------------------------------------------------------------------------
# Components.
# ---------------------------------------------------------------------------------------------------


class PrestoCoordinator(Model):
    """The Presto coordinator (always one replica)."""

    resources: Resources = Field(
        default_factory=resources("250m", "640Mi", "1", "1792Mi"),
        description="container resources; the JVM's heap is what the limit leaves beside its off-heap budget",
    )
    schedules_work: bool = Field(
        True, description="the coordinator also runs tasks (node-scheduler.include-coordinator)"
    )


class PrestoAutoscaling(Model):
    """What scales the workers: their CPU (an HPA), or the coordinator's queries and their CPU (KEDA).

    Never memory: a JVM commits its whole heap at start and never gives it back, so a memory target
    would hold the workers at their maximum.
    """

    signal: Literal["cpu", "queue"] = Field(
        "cpu",
        description="cpu: an HPA on the workers' CPU; queue: a KEDA ScaledObject on the coordinator's queued "
        "and running queries (from Prometheus) and the workers' CPU, whichever wants more (KEDA 2.16 installed)",
    )
    queries_per_worker: int | None = Field(
        None, ge=1, description="queue: queued and running queries per worker KEDA aims at; unset with cpu"
    )
    keda_namespace: DnsLabel | None = Field(
        None, description="queue: namespace of KEDA's operator, which the NetworkPolicies let query Prometheus"
    )

    @model_validator(mode="after")
    def _queue_needs_its_target(self) -> "PrestoAutoscaling":
        findings: list[Finding] = []
        queue = self.signal == "queue"
        for key, value in (("queriesPerWorker", self.queries_per_worker), ("kedaNamespace", self.keda_namespace)):
            if queue and value is None:
                findings.append((key, None, "must be set when signal is queue (KEDA's target, and where KEDA runs)"))
            if not queue and value is not None:
                findings.append((key, value, "must be unset when signal is cpu (only the queue signal reads it)"))
        report(findings)
        return self


class PrestoWorkers(Model):
    """Presto workers, scaled on their CPU by an HPA (or on the coordinator's queries by KEDA)."""

    min_replicas: int = Field(1, ge=1, description="HPA minimum")
    max_replicas: int = Field(2, ge=1, description="HPA maximum")
    resources: Resources = Field(
        default_factory=resources("250m", "512Mi", "1", "1536Mi"),
        description="container resources; the JVM's heap is what the limit leaves beside its off-heap budget",
    )
    cpu_target_percent: int = Field(70, ge=1, le=100, description="CPU utilization target, % of requests")
    autoscaling: PrestoAutoscaling = Field(default_factory=PrestoAutoscaling, description="what scales the workers")
    scale_down_stabilization_seconds: int = Field(300, ge=0, le=3600, description="HPA scale-down stabilization window")
    shutdown_grace_period_seconds: int = Field(
        60, ge=1, le=3600, description="how long a worker drains its tasks before it exits (shutdown.grace-period)"
    )

    @model_validator(mode="after")
    def _bounds(self, info: ValidationInfo) -> "PrestoWorkers":
        findings: list[Finding] = []
        if self.min_replicas > self.max_replicas:
            findings.append(("minReplicas", self.min_replicas, f"must be at most maxReplicas ({self.max_replicas})"))
        if _high_availability(info) and self.min_replicas < 2:
            findings.append(
                (
                    "minReplicas",
                    self.min_replicas,
                    "must be at least 2 when highAvailability is true (one worker is a single point of failure)",
                )
            )
        report(findings)
        return self


class Issuer(Model):
    """A cert-manager issuer."""

    kind: Literal["ClusterIssuer", "Issuer"] = Field("ClusterIssuer", description="issuer kind")
    name: DnsLabel = Field(description="issuer name (an Issuer must be in the stack's namespace)")


class PrestoTls(Model):
    """Where the coordinator's HTTPS certificate comes from."""

    source: Literal["generated", "cert-manager"] = Field(
        "generated", description="a CA made at deploy time (pulumi-tls), or a Certificate from cert-manager"
    )
    issuer: Issuer | None = Field(None, description="cert-manager issuer; set with source cert-manager only")
    ca_certificate: PemCertificate | None = Field(
        None, description="PEM of the CA that issuer signs with, which verify trusts; with cert-manager only"
    )

    @model_validator(mode="after")
    def _source(self) -> "PrestoTls":
        findings: list[Finding] = []
        managed = self.source == "cert-manager"
        for key, value in (("issuer", self.issuer), ("caCertificate", self.ca_certificate)):
            if managed and value is None:
                findings.append((key, None, "must be set when source is cert-manager"))
            if not managed and value is not None:
                findings.append((key, "[set]", "must be unset when source is generated (the stack makes its own CA)"))
        report(findings)
        return self


class PrestoSettings(Model):
    """Presto: coordinator, autoscaled workers and catalogs."""

    image: Image = Field("prestodb/presto:0.287", description="Presto server image")
    tls: PrestoTls = Field(default_factory=PrestoTls, description="the coordinator's HTTPS certificate")
    coordinator: PrestoCoordinator = Field(default_factory=PrestoCoordinator, description="coordinator")
    workers: PrestoWorkers = Field(default_factory=PrestoWorkers, description="workers")

    @model_validator(mode="after")
    def _jvm_fits(self) -> "PrestoSettings":
        findings: list[Finding] = []
        for key, role, coordinator in (("coordinator", self.coordinator, True), ("workers", self.workers, False)):
            limit = role.resources.limits.memory
            try:
                presto_memory.budget(limit, coordinator)
            except ValueError as error:
                findings.append((f"{key}.resources.limits.memory", limit, str(error)))
        report(findings)
        return self

    @model_validator(mode="after")
    def _coordinator_role(self, info: ValidationInfo) -> "PrestoSettings":
        if _high_availability(info) and self.coordinator.schedules_work:
            report(
                [
                    (
                        "coordinator.schedulesWork",
                        True,
                        "must be false when highAvailability is true (a busy coordinator stalls every query)",
                    )
                ]
            )
        return self


class KeeperSettings(Model):
    """ClickHouse Keeper: the Raft ensemble that holds the replication log and the replicas' metadata."""

    replicas: Literal[1, 3, 5] = Field(
        3, description="ensemble size (odd: a majority must be up for any replicated table to take writes)"
    )
    resources: Resources = Field(
        default_factory=resources("50m", "128Mi", "500m", "512Mi"), description="container resources"
    )
    storage: Storage = Field(
        default_factory=lambda: Storage(size="2Gi"), description="log and snapshot volume per node"
    )


class ObjectStoreSettings(Model):
    """The S3-compatible bucket ClickHouse's backups go to; its keys are credentials (docs/operations.md)."""

    endpoint: StoreEndpoint = Field(description="the S3 API's URL, e.g. 'https://s3.eu-west-1.amazonaws.com'")
    bucket: BucketName = Field(description="the bucket, which must exist")
    prefix: KeyPrefix = Field(description="key prefix of this stack's backups; each shard's go below it")
    region: Annotated[str, AfterValidator(_regex(r"[a-z0-9-]{1,32}", "a region name such as 'us-east-1'"))] = Field(
        "us-east-1", description="the bucket's region"
    )
    path_style: bool = Field(
        True, description="address the bucket in the URL's path (most self-hosted stores); false: as a host (AWS)"
    )
    cidrs: list[Cidr] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        min_length=1,
        description="where the store's addresses are: the backup sidecars' egress is allowed to these, on the "
        "endpoint's port",
    )


class ClickHouseBackupSettings(Model):
    """Scheduled backups of every shard to S3-compatible object storage (clickhouse-backup beside each server)."""

    enabled: bool = Field(False, description="run the backup sidecars and the scheduled backup CronJob")
    mode: Literal["backup", "restore"] = Field(
        "backup",
        description="backup: the sidecars and the scheduled CronJob write this stack's backups; restore (a DR "
        "site on the primary's store): the sidecars only, no schedule, no backup alerts, and the tool deletes "
        "nothing in the store",
    )
    image: Image = Field(
        "altinity/clickhouse-backup:2.6.3", description="the backup tool's image (a release that supports 24.8)"
    )
    schedule: CronSchedule = Field("0 2 * * *", description="when the CronJob backs up every shard (UTC)")
    full_every: int = Field(
        7,
        ge=1,
        le=31,
        description="every fullEvery-th backup of a shard is full, the others incremental against the latest full "
        "one; 1: every backup full",
    )
    keep_full: int = Field(
        2, ge=1, le=52, description="full backups kept in the store per shard, each with the incrementals after it"
    )
    missing_after: Duration = Field(
        "26h",
        description="ClickHouseBackupMissing fires when a shard has had no successful backup for this long: the "
        "schedule's longest gap plus a run's length",
    )
    object_store: ObjectStoreSettings | None = Field(None, description="where the backups go; required when enabled")
    resources: Resources = Field(
        default_factory=resources("50m", "128Mi", "1", "512Mi"), description="the backup sidecar's resources"
    )

    @model_validator(mode="after")
    def _store_when_enabled(self) -> "ClickHouseBackupSettings":
        if self.enabled and self.object_store is None:
            report([("objectStore", None, "must be set when enabled is true (the bucket the backups go to)")])
        return self


class ClickHouseSettings(Model):
    """ClickHouse: the persistent store fed from Kafka."""

    image: Image = Field("clickhouse/clickhouse-server:24.8.14.39", description="ClickHouse server image")
    resources: Resources = Field(
        default_factory=resources("200m", "384Mi", "1", "1Gi"), description="container resources"
    )
    storage: Storage = Field(default_factory=lambda: Storage(size="5Gi"), description="data volume per server")
    shards: int = Field(
        1,
        ge=1,
        le=32,
        description="shards the events are spread over by event id; grow the store by adding shards (servers are "
        "appended, none moves)",
    )
    replicas: int = Field(
        1,
        ge=1,
        le=5,
        description="copies of each shard, on different nodes; at least 2 when highAvailability is true. Fixed "
        "for the life of a stack: servers are numbered shard by shard, so a change moves every server past "
        "the first shard (docs/operations.md, changing the replica count)",
    )
    flush_interval_ms: int = Field(
        1000,
        ge=100,
        le=60000,
        description="longest a consumed event waits before the Kafka engine writes its block (kafka_flush_interval_ms, "
        "each consumer on its own thread): shorter is fresher, longer makes fewer, larger parts",
    )
    keeper: KeeperSettings = Field(
        default_factory=KeeperSettings,
        description="ClickHouse Keeper, the replicas' coordination; deployed only when shards x replicas > 1",
    )
    backup: ClickHouseBackupSettings = Field(
        default_factory=ClickHouseBackupSettings, description="scheduled backups to S3-compatible object storage"
    )

    @model_validator(mode="after")
    def _replicated(self, info: ValidationInfo) -> "ClickHouseSettings":
        findings: list[Finding] = []
        if _high_availability(info):
            if self.replicas < 2:
                findings.append(
                    (
                        "replicas",
                        self.replicas,
                        "must be at least 2 when highAvailability is true (a shard held once is lost with its volume)",
                    )
                )
            if self.keeper.replicas < 3:
                findings.append(
                    (
                        "keeper.replicas",
                        self.keeper.replicas,
                        "must be at least 3 when highAvailability is true (a quorum must survive one lost node)",
                    )
                )
        report(findings)
        return self

    @property
    def servers(self) -> int:
        """How many ClickHouse servers the stack runs."""
        return self.shards * self.replicas

    @property
    def replicated(self) -> bool:
        """Whether the servers coordinate through Keeper (more than one server)."""
        return self.servers > 1


class KafkaTopic(Model):
    """The events topic."""

    name: TopicName = Field("events", description="topic name")
    partitions: int = Field(3, ge=1, le=1000, description="partition count")


class KafkaSettings(Model):
    """Kafka in KRaft mode (combined broker and controller nodes)."""

    # 3.9 rather than 4.x: Presto's Kafka connector ships an old client, and Kafka 4 removed the old
    # protocol versions such clients speak (KIP-896).
    image: Image = Field("apache/kafka:3.9.1", description="Kafka image")
    authentication: Literal["none", "scram"] = Field(
        "none",
        description="how clients authenticate: none (PLAINTEXT, no ACLs) or scram "
        "(SASL/SCRAM-SHA-512 users with ACLs; Presto reads through a PLAINTEXT listener limited to reading the topic)",
    )
    brokers: int = Field(1, ge=1, le=9, description="number of nodes (each is broker and controller)")
    replication_factor: int = Field(1, ge=1, description="replication factor of the events topic and internal topics")
    min_insync_replicas: int = Field(1, ge=1, description="min.insync.replicas")
    resources: Resources = Field(
        default_factory=resources("200m", "384Mi", "1", "768Mi"), description="container resources"
    )
    storage: Storage = Field(default_factory=lambda: Storage(size="5Gi"), description="log volume per node")
    topic: KafkaTopic = Field(default_factory=KafkaTopic, description="the events topic")
    mirror_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="where a DR site's mirror connects from, as this cluster sees it; set: the topic Job creates the "
        "SCRAM user `mirror` (password kafkaMirrorPassword) allowed only to read the topic and the ClickHouse "
        "group's offsets, and the brokers' CLIENT port admits these addresses (scram only)",
    )

    @model_validator(mode="after")
    def _replication(self, info: ValidationInfo) -> "KafkaSettings":
        findings: list[Finding] = []
        if self.replication_factor > self.brokers:
            findings.append(("replicationFactor", self.replication_factor, f"must be at most brokers ({self.brokers})"))
        if self.min_insync_replicas > self.replication_factor:
            findings.append(
                (
                    "minInsyncReplicas",
                    self.min_insync_replicas,
                    f"must be at most replicationFactor ({self.replication_factor})",
                )
            )
        if self.mirror_cidrs and self.authentication != "scram":
            findings.append(
                ("mirrorCidrs", self.mirror_cidrs, "needs authentication: scram (the mirror user is a SCRAM user)")
            )
        if _high_availability(info):
            if self.brokers < 3:
                findings.append(
                    (
                        "brokers",
                        self.brokers,
                        "must be at least 3 when highAvailability is true "
                        "(a KRaft quorum survives one loss only with 3)",
                    )
                )
            if self.replication_factor < 3:
                findings.append(
                    ("replicationFactor", self.replication_factor, "must be at least 3 when highAvailability is true")
                )
            if not 2 <= self.min_insync_replicas < self.replication_factor:
                findings.append(
                    (
                        "minInsyncReplicas",
                        self.min_insync_replicas,
                        f"must be at least 2 and below replicationFactor ({self.replication_factor}) "
                        "when highAvailability is true, so acked writes survive one broker loss "
                        "while one broker may be down",
                    )
                )
        report(findings)
        return self


BootstrapServers = Annotated[
    str,
    AfterValidator(
        _regex(
            r"[A-Za-z0-9.-]+:\d{1,5}(,[A-Za-z0-9.-]+:\d{1,5})*",
            "host:port[,host:port...], e.g. 'kafka-0.kafka.query-engine.svc:9092'",
        )
    ),
]


class MirrorSettings(Model):
    """MirrorMaker 2 on a disaster-recovery stack: the primary site's topics mirrored into this stack's Kafka.

    The primary's `mirror` user's password is the credential kafkaMirrorSourcePassword (docs/operations.md).
    """

    source_alias: DnsLabel = Field(
        "primary", description="the primary cluster's name in MirrorMaker 2's config, metrics and internal topics"
    )
    source_bootstrap: BootstrapServers = Field(
        description="the primary's Kafka CLIENT listener as this site reaches it (every broker it advertises "
        "must resolve and route from here)"
    )
    source_cidrs: list[Cidr] = Field(
        min_length=1,
        description="where the primary's brokers are as this site routes to them: the mirror's egress is allowed "
        "to these, on the sourceBootstrap ports",
    )
    topics: list[TopicName] = Field(
        default_factory=lambda: ["events"], min_length=1, description="topics mirrored under the same names"
    )
    groups: list[TopicName] = Field(
        default_factory=lambda: ["clickhouse-events"],
        description="consumer groups whose committed offsets are translated into this site (checkpoints)",
    )
    image: Image = Field("apache/kafka:3.9.1", description="the image MirrorMaker 2 runs from: Kafka's own release")
    resources: Resources = Field(
        default_factory=resources("100m", "384Mi", "1", "768Mi"), description="container resources"
    )
    lag_alert_seconds: int = Field(
        60,
        ge=1,
        le=3600,
        description="replication latency, in seconds, over which KafkaMirrorBehind fires (after 5 minutes)",
    )


class PrometheusSettings(Model):
    """Prometheus server."""

    image: Image = Field("prom/prometheus:v2.53.4", description="Prometheus image")
    resources: Resources = Field(
        default_factory=resources("100m", "160Mi", "500m", "512Mi"), description="container resources"
    )
    retention: Duration = Field("2d", description="TSDB retention time")
    scrape_interval: Duration = Field("15s", description="global scrape interval")
    storage: Storage | None = Field(None, description="TSDB volume; unset = emptyDir (data lost on restart)")
    replicas: int = Field(
        1,
        ge=1,
        description="identical servers scraping the same targets, each with its own TSDB and a `replica` "
        "external label (its pod name); at least 2 when highAvailability is true",
    )

    @model_validator(mode="after")
    def _replicated(self, info: ValidationInfo) -> "PrometheusSettings":
        if _high_availability(info) and self.replicas < 2:
            report([("replicas", self.replicas, "must be at least 2 when highAvailability is true")])
        return self


WebhookUrl = Annotated[str, AfterValidator(_regex(r"https?://\S+", "an http:// or https:// URL"))]


class AlertReceivers(Model):
    """Where Alertmanager sends alerts, by severity; unset = kept in Alertmanager, sent nowhere."""

    critical: WebhookUrl | None = Field(None, description="webhook receiving critical alerts (pages)")
    warning: WebhookUrl | None = Field(None, description="webhook receiving warnings (tickets)")


class AlertmanagerSettings(Model):
    """Alertmanager."""

    image: Image = Field("prom/alertmanager:v0.27.0", description="Alertmanager image")
    resources: Resources = Field(
        default_factory=resources("20m", "32Mi", "100m", "64Mi"), description="container resources"
    )
    receivers: AlertReceivers = Field(default_factory=AlertReceivers, description="alert receivers by severity")
    replicas: int = Field(
        1,
        ge=1,
        description="peers of one gossip cluster sharing silences and the notification log; at least 3 when "
        "highAvailability is true",
    )

    @model_validator(mode="after")
    def _clustered(self, info: ValidationInfo) -> "AlertmanagerSettings":
        """Three, not two: the gossip needs no quorum, but with two a drain leaves one copy of the silences."""
        if _high_availability(info) and self.replicas < 3:
            report(
                [
                    (
                        "replicas",
                        self.replicas,
                        "must be at least 3 when highAvailability is true (a drained peer and a lost one "
                        "still leave one holding the silences and the notification log)",
                    )
                ]
            )
        return self


class GrafanaSettings(Model):
    """Grafana."""

    image: Image = Field("grafana/grafana:11.3.1", description="Grafana image")
    resources: Resources = Field(
        default_factory=resources("50m", "64Mi", "500m", "256Mi"), description="container resources"
    )


class KubeStateMetricsSettings(Model):
    """kube-state-metrics."""

    image: Image = Field(
        "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0", description="kube-state-metrics image"
    )
    resources: Resources = Field(
        default_factory=resources("20m", "32Mi", "100m", "128Mi"), description="container resources"
    )


class MonitoringSettings(Model):
    """Prometheus, Alertmanager, Grafana and kube-state-metrics."""

    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings, description="Prometheus")
    alertmanager: AlertmanagerSettings = Field(default_factory=AlertmanagerSettings, description="Alertmanager")
    grafana: GrafanaSettings = Field(default_factory=GrafanaSettings, description="Grafana")
    kube_state_metrics: KubeStateMetricsSettings = Field(
        default_factory=KubeStateMetricsSettings, description="kube-state-metrics"
    )
    jmx_exporter_image: Image = Field(
        "prestodb/presto:0.287",
        description="image Kafka's pods copy the Prometheus JMX exporter agent from, which must hold it at "
        "/usr/lib/presto/utils/jmx_prometheus_javaagent-0.20.0.jar; pinned apart from presto.image, so that "
        "a Presto upgrade never restarts the Kafka brokers",
    )
    query_success_objective: float = Field(
        0.99, gt=0, lt=1, description="SLO: share of Presto queries that must not fail (30 days)"
    )
    pipeline_lag_seconds: int = Field(
        60, gt=0, description="alert when ClickHouse would need longer than this to catch up with Kafka"
    )
    runbook_url: RunbookUrl = Field(
        "https://github.com/query-engine-stack/query-engine-stack/blob/main/docs/runbook.md",
        description="address of the published runbook (docs/runbook.md): each alert's runbook_url annotation "
        "is this address + '#' + the alert's name in lower case",
    )

    @model_validator(mode="after")
    def _durable_metrics(self, info: ValidationInfo) -> "MonitoringSettings":
        if _high_availability(info) and self.prometheus.storage is None:
            report(
                [
                    (
                        "prometheus.storage",
                        None,
                        "must be set when highAvailability is true (an emptyDir loses all metrics on restart)",
                    )
                ]
            )
        return self


class ChaosSettings(Model):
    """Chaos Mesh, for the failover scenarios of verify."""

    mode: Literal["off", "install", "existing"] = Field(
        "install", description="install Chaos Mesh, use an existing installation, or neither"
    )
    namespace: DnsLabel = Field("chaos-mesh", description="namespace Chaos Mesh lives in")
    chart_version: ChartVersion = Field("2.7.2", description="Chaos Mesh Helm chart version")
    runtime: Literal["docker", "containerd", "crio"] = Field(
        "docker", description="container runtime of the nodes (minikube's default is docker)"
    )
    socket_path: str = Field("/var/run/docker.sock", description="the runtime's socket on the nodes")


def _objective(text: str) -> str:
    """Accept an SLO that `python -m verify load` can judge."""
    try:
        slo.parse(text)
    except ValueError:
        raise ValueError(f"must be {slo.ALLOWED}") from None
    return text


class VerifySettings(Model):
    """What `python -m verify` holds the deployed stack to."""

    load_slos: list[Annotated[str, AfterValidator(_objective)]] = Field(
        default_factory=lambda: ["error_ratio<0.01", "p95<10s"],
        description="objectives `verify load` gates on (its --slo flags replace them), e.g. 'p95<2s', 'qph>100'",
    )


def _safe_credential(value: SecretStr) -> SecretStr:
    """Accept a credential override of a safe length and alphabet, without ever echoing it."""
    if not OVERRIDE_ALPHABET.fullmatch(value.get_secret_value()):
        raise ValueError(f"must be at least {MIN_OVERRIDE_LENGTH} characters, each a letter, a digit or one of - . _ ~")
    return value


def _store_key(value: SecretStr) -> SecretStr:
    """Accept an object store's key as stores issue them, without ever echoing it."""
    if not STORE_KEY_ALPHABET.fullmatch(value.get_secret_value()):
        raise ValueError("must be 3 to 128 characters, each a letter, a digit or one of + / = . _ ~ -")
    return value


# One optional field per credential of the catalog, so an unknown name is rejected like any typo.
_credential_fields: dict[str, Any] = {
    c.name.replace("-", "_"): (
        Annotated[SecretStr, AfterValidator(_safe_credential if c.generated else _store_key)] | None,
        Field(None, alias=c.name, description=c.purpose),
    )
    for c in CREDENTIALS
}
CredentialOverrides = create_model(
    "CredentialOverrides",
    __base__=Model,
    __doc__="Credentials given in stack config instead of generated.",
    **_credential_fields,
)


# ---------------------------------------------------------------------------------------------------
# The whole stack.
# ---------------------------------------------------------------------------------------------------


class Settings(Model):
    """Everything a stack can set, under the project's config namespace."""

    namespace: DnsLabel = Field("query-engine", description="namespace of all the stack's workloads")
    high_availability: bool = Field(
        False, description="enforce availability: several replicas, PDBs, spread over hosts and zones"
    )
    kubernetes: KubernetesTarget = Field(default_factory=KubernetesTarget, description="target cluster")
    storage_class: str | None = Field(None, description="StorageClass of every PVC; unset = the cluster default")
    spread: Spread = Field(default_factory=Spread, description="failure-domain spread")
    dns: Dns = Field(default_factory=Dns, description="cluster DNS allowed through default-deny")
    network: Network = Field(default_factory=Network, description="client access from outside the namespace")
    quota: Quota = Field(default_factory=Quota, description="namespace ResourceQuota")
    limit_range: LimitRange = Field(default_factory=LimitRange, description="namespace LimitRange")
    presto: PrestoSettings = Field(default_factory=PrestoSettings, description="Presto")
    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings, description="ClickHouse")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings, description="Kafka")
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings, description="observability")
    chaos: ChaosSettings = Field(default_factory=ChaosSettings, description="fault injection")
    verify: VerifySettings = Field(default_factory=VerifySettings, description="post-deploy verification")
    credentials: CredentialOverrides = Field(
        default_factory=CredentialOverrides,
        description="credential overrides, set only with `pulumi config set --secret --path credentials.NAME`",
    )
    mirror: MirrorSettings | None = Field(
        None, description="MirrorMaker 2 from a primary site's Kafka into this one (a DR stack); unset: no mirror"
    )

    @model_validator(mode="after")
    def _mirror_needs(self) -> "Settings":
        if self.mirror is None:
            return self
        findings: list[Finding] = []
        if self.kafka.authentication != "scram":
            findings.append(
                (
                    "kafka.authentication",
                    self.kafka.authentication,
                    "must be scram when mirror is set (the mirror logs in to both sites as the SCRAM user `mirror`)",
                )
            )
        if self.kafka.mirror_cidrs:
            findings.append(
                (
                    "kafka.mirrorCidrs",
                    self.kafka.mirror_cidrs,
                    "must be empty when mirror is set (a DR site is no primary)",
                )
            )
        if self.mirror.image != self.kafka.image:
            findings.append(
                ("mirror.image", self.mirror.image, f"must be kafka.image ({self.kafka.image}): the same Kafka release")
            )
        source_password = "kafkaMirrorSourcePassword"
        if getattr(self.credentials, source_password) is None:
            findings.append(
                (
                    "credentials.kafkaMirrorSourcePassword",
                    None,
                    "must be set when mirror is set: `pulumi config set --secret --path "
                    "credentials.kafkaMirrorSourcePassword ...` (the primary's kafkaMirrorPassword output)",
                )
            )
        report(findings)
        return self

    @model_validator(mode="after")
    def _backup_keys(self) -> "Settings":
        if self.clickhouse.backup.enabled:
            report(
                [
                    (
                        f"credentials.{name}",
                        None,
                        f"must be set when clickhouse.backup.enabled is true: `pulumi config set --secret --path "
                        f"credentials.{name} ...` (the object store's key)",
                    )
                    for name in ("clickhouseBackupAccessKey", "clickhouseBackupSecretKey")
                    if getattr(self.credentials, name) is None
                ]
            )
        return self


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The settings model inside a field's annotation (Optional unwrapped), if any."""
    for candidate in typing.get_args(annotation) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def total(amounts: list[Amounts], kind: Literal["cpu", "memory"]) -> Decimal:
    """Sum one kind of a list of amounts."""
    return sum((quantity_value(getattr(a, kind)) for a in amounts), Decimal(0))
