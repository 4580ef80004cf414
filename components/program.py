"""The Pulumi program: load and validate the stack's settings, declare the components, export."""

from dataclasses import dataclass

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env, get_config_secret_keys_env, is_config_secret

from components import names
from components.chaos.component import ChaosMesh
from components.data.clickhouse.component import ClickHouse, ClickHouseArgs
from components.data.clickhouse.config import ADMIN, INGEST, INTERSERVER, PRESTO
from components.data.clickhouse.keeper import ClickHouseKeeper, KeeperArgs
from components.data.kafka.component import Kafka, KafkaArgs
from components.data.kafka.mirror import MIRROR_PRINCIPAL
from components.data.kafka.mirror_maker import MirrorMaker, MirrorMakerArgs
from components.data.presto.component import Presto, PrestoArgs
from components.expectations import expectations
from components.inventory import Inventory
from components.observability.alertmanager.component import Alertmanager
from components.observability.grafana.component import Grafana, GrafanaArgs
from components.observability.kube_state_metrics import KubeStateMetrics
from components.observability.prometheus.component import Prometheus
from components.platform.component import Platform, PlatformArgs
from components.platform.workloads import StackArgs
from components.security.certificates import Certificates, CertificatesArgs, ServingCertificate, service_dns_names
from components.security.credential_catalog import KAFKA_USERS_SECRET, PRESTO_USERS_SECRET
from components.security.credentials import Credentials, CredentialsArgs
from components.security.network import FLOWS, NetworkArgs, NetworkPolicies, backup_flows, egress, mirror_flows
from components.security.verify_access import VerifyAccess
from components.settings.model import Settings
from components.settings.parse import SettingsError, parse_settings


def read_config() -> tuple[dict[str, str], set[str]]:
    """Return every config entry of the running stack and the keys that are secrets."""
    raw = {**get_config_env(), **CONFIG.get()}
    secret = {key for key in raw if is_config_secret(key)} | set(get_config_secret_keys_env())
    return raw, secret


def load() -> Settings:
    """Validate the running stack's config; on any problem fail before a resource is declared."""
    raw, secret_keys = read_config()
    try:
        return parse_settings(pulumi.get_stack(), raw, secret_keys)
    except SettingsError as error:
        raise pulumi.RunError(str(error)) from None


@dataclass(frozen=True)
class _Security:
    """The stack's credentials and certificates, which the data engines and Grafana wait for."""

    credentials: Credentials
    certificates: Certificates


@dataclass(frozen=True)
class _Engines:
    """The data engines, whose addresses the stack exports."""

    kafka: Kafka
    clickhouse: ClickHouse
    presto: Presto


@dataclass(frozen=True)
class _Observability:
    """The monitoring whose addresses the stack exports."""

    prometheus: Prometheus
    grafana: Grafana


def run() -> None:
    """Declare the whole stack and export what operators and verify need."""
    settings = load()
    stack = pulumi.get_stack()
    inventory = Inventory()
    inventory.watch()
    platform = Platform("platform", PlatformArgs(settings=settings, instance=stack))
    security = _declare_security(settings, stack, platform)
    engines = _declare_engines(settings, stack, platform, security)
    observability = _declare_observability(settings, stack, platform, security)
    ChaosMesh(
        "chaos",
        StackArgs(settings=settings, namespace=platform.namespace_name, instance=stack),
        opts=pulumi.ResourceOptions(provider=platform.provider),
    )
    _export(settings, platform, security, engines, observability, inventory)


def _declare_security(settings: Settings, stack: str, platform: Platform) -> _Security:
    """Credentials, certificates, the NetworkPolicies and verify's access to the API."""
    in_cluster = pulumi.ResourceOptions(provider=platform.provider)
    credentials = Credentials(
        "credentials",
        CredentialsArgs(namespace=platform.namespace_name, overrides=settings.credentials, instance=stack),
        opts=in_cluster,
    )
    certificates = Certificates(
        "certificates",
        CertificatesArgs(
            namespace=platform.namespace_name,
            instance=stack,
            serving=(
                ServingCertificate(
                    secret=names.PRESTO_TLS_SECRET,
                    service=names.PRESTO_COORDINATOR,
                    dns_names=service_dns_names(names.PRESTO_COORDINATOR, settings.namespace),
                ),
            ),
            source=settings.presto.tls,
        ),
        opts=in_cluster,
    )
    NetworkPolicies(
        "network",
        NetworkArgs(
            namespace=platform.namespace_name,
            instance=stack,
            clients=settings.network.clients,
            keda_namespace=settings.presto.workers.autoscaling.keda_namespace,
            mirror_cidrs=tuple(settings.kafka.mirror_cidrs),
            egress=egress(settings),
            flows=FLOWS + backup_flows(settings) + mirror_flows(settings),
        ),
        opts=in_cluster,
    )
    VerifyAccess("verify", platform.namespace_name, stack, opts=in_cluster)
    return _Security(credentials=credentials, certificates=certificates)


def _declare_engines(settings: Settings, stack: str, platform: Platform, security: _Security) -> _Engines:
    """Kafka, then ClickHouse (which consumes it), then Presto (which queries both)."""
    credentials = security.credentials
    kafka = Kafka(
        "kafka",
        KafkaArgs(
            settings=settings,
            namespace=platform.namespace_name,
            instance=stack,
            passwords=credentials.in_secret(KAFKA_USERS_SECRET),
        ),
        opts=pulumi.ResourceOptions(provider=platform.provider, depends_on=[credentials]),
    )
    if settings.mirror is not None:
        # After Kafka: its topic Job creates the mirror user this site's brokers must know.
        MirrorMaker(
            "kafka-mirror",
            MirrorMakerArgs(
                settings=settings,
                namespace=platform.namespace_name,
                instance=stack,
                passwords=[credentials.values["kafkaMirrorPassword"], credentials.values["kafkaMirrorSourcePassword"]],
            ),
            opts=pulumi.ResourceOptions(provider=platform.provider, depends_on=[kafka]),
        )
    # Keeper first: the replicated tables the schema Job creates register in it.
    keeper = (
        [
            ClickHouseKeeper(
                "clickhouse-keeper",
                KeeperArgs(settings=settings, namespace=platform.namespace_name, instance=stack),
                opts=pulumi.ResourceOptions(provider=platform.provider),
            )
        ]
        if settings.clickhouse.replicated
        else []
    )
    clickhouse = ClickHouse(
        "clickhouse",
        ClickHouseArgs(
            settings=settings,
            namespace=platform.namespace_name,
            instance=stack,
            passwords={
                ADMIN: credentials.values["clickhouseAdminPassword"],
                INGEST: credentials.values["clickhouseIngestPassword"],
                PRESTO: credentials.values["clickhousePrestoPassword"],
                INTERSERVER: credentials.values["clickhouseInterserverPassword"],
            },
            kafka_password=credentials.values["kafkaClickhousePassword"],
            kafka_bootstrap=kafka.bootstrap,
        ),
        opts=pulumi.ResourceOptions(provider=platform.provider, depends_on=[credentials, *keeper]),
    )
    presto = Presto(
        "presto",
        PrestoArgs(
            settings=settings,
            namespace=platform.namespace_name,
            instance=stack,
            clickhouse_host_port=clickhouse.http_host_port,
            kafka_bootstrap=kafka.presto_bootstrap,
            user_passwords=credentials.in_secret(PRESTO_USERS_SECRET),
            shared_secret=credentials.values["prestoSharedSecret"],
            serving_certificate=security.certificates.issued.get(names.PRESTO_TLS_SECRET),
        ),
        opts=pulumi.ResourceOptions(provider=platform.provider, depends_on=[credentials, security.certificates]),
    )
    return _Engines(kafka=kafka, clickhouse=clickhouse, presto=presto)


def _declare_observability(settings: Settings, stack: str, platform: Platform, security: _Security) -> _Observability:
    """Prometheus, Alertmanager, Grafana and kube-state-metrics."""
    in_cluster = pulumi.ResourceOptions(provider=platform.provider)
    monitoring = StackArgs(settings=settings, namespace=platform.namespace_name, instance=stack)
    prometheus = Prometheus("prometheus", monitoring, opts=in_cluster)
    Alertmanager("alertmanager", monitoring, opts=in_cluster)
    grafana = Grafana(
        "grafana",
        GrafanaArgs(
            settings=settings, namespace=platform.namespace_name, instance=stack, prometheus_url=prometheus.url
        ),
        opts=pulumi.ResourceOptions(provider=platform.provider, depends_on=[security.credentials]),
    )
    KubeStateMetrics("kube-state-metrics", monitoring, opts=in_cluster)
    return _Observability(prometheus=prometheus, grafana=grafana)


def _export(
    settings: Settings,
    platform: Platform,
    security: _Security,
    engines: _Engines,
    observability: _Observability,
    inventory: Inventory,
) -> None:
    """The stack's outputs: addresses, the CA, the credentials (secret) and what verify expects to find."""
    pulumi.export("namespace", platform.namespace_name)
    pulumi.export("prometheusUrl", observability.prometheus.url)
    pulumi.export("grafanaUrl", observability.grafana.url)
    pulumi.export("prestoUrl", engines.presto.url)
    pulumi.export("prestoCaCertificate", security.certificates.ca_certificate)
    pulumi.export("clickhouseUrl", engines.clickhouse.http_url)
    pulumi.export("clickhouseNativeAddress", engines.clickhouse.native_address)
    pulumi.export("kafkaBootstrap", engines.kafka.bootstrap)
    pulumi.export("kafkaAuthentication", settings.kafka.authentication)
    pulumi.export("kafkaTopic", settings.kafka.topic.name)
    pulumi.export("highAvailability", settings.high_availability)
    pulumi.export("kubeContext", settings.kubernetes.context or "")
    pulumi.export("secretNames", sorted(security.credentials.secrets))
    pulumi.export("credentials", pulumi.Output.secret(security.credentials.values))
    if settings.mirror is not None:
        # What verify's lag check reads (verify/core/targets.py): the primary as the mirror reads it.
        pulumi.export(
            "mirror",
            {
                "sourceBootstrap": settings.mirror.source_bootstrap,
                "user": MIRROR_PRINCIPAL,
                "sourcePassword": pulumi.Output.secret(security.credentials.values["kafkaMirrorSourcePassword"]),
                "topics": list(settings.mirror.topics),
                "lagAlertSeconds": settings.mirror.lag_alert_seconds,
            },
        )
    pulumi.export("expected", {**expectations(settings), "objects": inventory.objects()})
