"""ClickHouse: a persistent server ingesting the events topic, its users, and the schema bootstrap."""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgs
from pulumi_kubernetes.batch.v1 import CronJobSpecArgs, JobSpecArgs, JobTemplateSpecArgs
from pulumi_kubernetes.core.v1 import (
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    EnvVarSourceArgs,
    ExecActionArgs,
    HTTPGetActionArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    SecretKeySelectorArgs,
    SecretVolumeSourceArgs,
    ServicePortArgs,
    ServiceSpecArgs,
    TCPSocketActionArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs

from components import names
from components.data.clickhouse.backup import (
    ACCESS_KEY_ENV,
    API_PASSWORD_ENV,
    API_USER,
    API_USERNAME_ENV,
    CLICKHOUSE_PASSWORD_ENV,
    SECRET_KEY_ENV,
    ObjectStore,
    Schedule,
    job_script,
    tool_config,
)
from components.data.clickhouse.config import (
    ADMIN,
    INGEST,
    INTERSERVER,
    INTERSERVER_HOST_ENV,
    MIGRATE_SCRIPT,
    REPLICA_ENV,
    SHARD_ENV,
    USERS,
    Ports,
    cluster,
    cluster_config,
    kafka_authentication_config,
    migration_files,
    password_hash,
    server_config,
    users_config,
)
from components.data.kafka.config import CLICKHOUSE_PRINCIPAL, SCRAM_MECHANISM
from components.platform.budget import JOB_RESOURCES
from components.platform.labels import common_labels
from components.platform.workloads import (
    CONFIG_DIGEST,
    BootstrapJob,
    NamespacedComponent,
    config_digest,
    container_resources,
    container_security,
    data_claim,
    disruption_budget,
    placement,
    pod_name_env,
    pod_security,
    secret_digest,
)
from components.security.credential_catalog import CLICKHOUSE_BACKUP_SECRET, CLICKHOUSE_USERS_SECRET, CREDENTIALS
from components.settings.model import Settings

CLICKHOUSE_USER = 101
"""uid of `clickhouse`, the user the clickhouse/clickhouse-server image's server runs as."""
ETC = "/etc/clickhouse-server"
DATA_DIR = "/var/lib/clickhouse/"
PORTS = Ports()
USERS_FILE = "qestack-users.xml"
KAFKA_LOGIN_FILE = "qestack-kafka.xml"
CLUSTER_FILE = names.CLICKHOUSE_CLUSTER_FILE
BACKUP_CONFIG_DIR = "/etc/clickhouse-backup"
BACKUP_CONFIG_FILE = "config.yml"
BACKUP_DEADLINE_SECONDS = 6 * 3600
"""A scheduled backup still running after 6 hours is stopped and fails (ClickHouseBackupFailed): it is stuck."""


@dataclass(frozen=True)
class ClickHouseArgs:
    """Inputs of the ClickHouse component."""

    settings: Settings
    """The validated stack settings."""
    namespace: pulumi.Input[str]
    """Namespace to deploy into."""
    instance: str
    """The stack name, for app.kubernetes.io/instance."""
    passwords: dict[str, pulumi.Output[str]]
    """Secret passwords of the admin, ingest, presto and interserver users."""
    kafka_bootstrap: str
    """host:port the Kafka engine consumes from."""
    kafka_password: pulumi.Output[str]
    """Secret password of the Kafka SCRAM user clickhouse (used with kafka.authentication scram)."""


class ClickHouse(NamespacedComponent):
    """ClickHouse servers (shards x replicas, each with its own volume) fed by a Kafka engine table on each."""

    http_host_port: str
    """In-cluster host:port of the HTTP interface."""
    http_url: str
    """In-cluster URL of the HTTP interface."""
    native_address: str
    """In-cluster host:port of the native protocol."""
    statefulset: k8s.apps.v1.StatefulSet

    def __init__(self, name: str, args: ClickHouseArgs, opts: pulumi.ResourceOptions | None = None):
        settings = args.settings
        identity = (names.CLICKHOUSE, "server", args.instance, settings.clickhouse.image)
        super().__init__("qestack:data:ClickHouse", name, args.namespace, identity, opts)
        self._inputs = args
        self.http_host_port = f"{names.service_host(names.CLICKHOUSE, settings.namespace)}:{PORTS.http}"
        self.http_url = f"http://{self.http_host_port}"
        self.native_address = f"{names.service_host(names.CLICKHOUSE, settings.namespace)}:{PORTS.native}"
        config = self._declare_config(name)
        self._backup_files: dict[str, str] = {}
        self._backup_config = self._declare_backup_config(name) if settings.clickhouse.backup.enabled else None
        users = self._declare_users(name)
        self._declare_services(name)
        self.statefulset = self._declare_statefulset(name, config, users)
        if settings.high_availability:
            disruption_budget(names.CLICKHOUSE, args.namespace, self._labels, self._selector, self._opts())
        self._declare_schema_job(name, config)
        # Restore mode (a DR site on the primary's store): no schedule writes into the primary's folders.
        if self._backup_config is not None and settings.clickhouse.backup.mode == "backup":
            self._declare_backup_job(name)
        self.register_outputs({"httpUrl": self.http_url, "nativeAddress": self.native_address})

    def _declare_config(self, name: str) -> k8s.core.v1.ConfigMap:
        """Server settings (a config.d override of the image's defaults), the schema's migrations and their runner."""
        settings = self._inputs.settings
        self._config_files = {
            "qestack.xml": server_config(
                settings, ports=PORTS, listen_host="0.0.0.0", data_path=DATA_DIR, tmp_path="/tmp/"
            ),
        }
        self._migration_files = migration_files(settings, self._inputs.kafka_bootstrap)
        self._config_files.update(self._migration_files)
        return k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=self._metadata(names.CLICKHOUSE_CONFIG),
            data=self._config_files,
            opts=self._opts(),
        )

    def _declare_users(self, name: str) -> k8s.core.v1.Secret:
        """The users file (password hashes), the cluster (the interserver password) and Kafka's login: a Secret."""
        settings = self._inputs.settings
        passwords = self._inputs.passwords
        document = pulumi.Output.all(*(passwords[user] for user in USERS)).apply(
            lambda values: users_config(
                settings, {user: password_hash(value) for user, value in zip(USERS, values, strict=True)}
            )
        )
        layout = cluster(settings)
        files: dict[str, pulumi.Output[str]] = {
            USERS_FILE: pulumi.Output.secret(document),
            CLUSTER_FILE: pulumi.Output.secret(passwords[INTERSERVER].apply(lambda p: cluster_config(layout, p))),
        }
        if settings.kafka.authentication == "scram":
            files[KAFKA_LOGIN_FILE] = pulumi.Output.secret(
                self._inputs.kafka_password.apply(
                    lambda password: kafka_authentication_config(CLICKHOUSE_PRINCIPAL, password, SCRAM_MECHANISM)
                )
            )
        self._users_digest = secret_digest(list(files.values()))
        return k8s.core.v1.Secret(
            f"{name}-users-config",
            metadata=self._metadata(names.CLICKHOUSE_USERS_CONFIG),
            type="Opaque",
            string_data=files,
            opts=self._opts(),
        )

    def _declare_services(self, name: str) -> None:
        """A headless Service for the StatefulSet and a client Service for HTTP, native and metrics."""
        ports = [
            ServicePortArgs(name="http", port=PORTS.http, target_port="http"),
            ServicePortArgs(name="native", port=PORTS.native, target_port="native"),
            ServicePortArgs(name="metrics", port=PORTS.metrics, target_port="metrics"),
        ]
        interserver = ServicePortArgs(name="interserver", port=PORTS.interserver, target_port="interserver")
        # Servers reach each other by pod name (Distributed queries, part fetches), ready or not: a replica
        # catching up must be able to fetch before it is ready.
        k8s.core.v1.Service(
            f"{name}-headless",
            metadata=self._metadata(names.CLICKHOUSE_HEADLESS),
            spec=ServiceSpecArgs(
                cluster_ip="None",
                selector=self._selector,
                ports=[*ports, interserver],
                publish_not_ready_addresses=True,
            ),
            opts=self._opts(),
        )
        k8s.core.v1.Service(
            f"{name}-client",
            metadata=self._metadata(names.CLICKHOUSE),
            spec=ServiceSpecArgs(type="ClusterIP", selector=self._selector, ports=ports),
            opts=self._opts(),
        )

    def _declare_statefulset(
        self, name: str, config: k8s.core.v1.ConfigMap, users: k8s.core.v1.Secret
    ) -> k8s.apps.v1.StatefulSet:
        """The server, started directly (not through the image's entrypoint, which expects root)."""
        settings = self._inputs.settings
        clickhouse = settings.clickhouse
        ping = HTTPGetActionArgs(path="/ping", port="http")
        # Each file of the users Secret, and the directory the server reads it from.
        secret_files = {USERS_FILE: "users.d", CLUSTER_FILE: "config.d"}
        if settings.kafka.authentication == "scram":
            secret_files[KAFKA_LOGIN_FILE] = "config.d"
        headless = names.service_host(names.CLICKHOUSE_HEADLESS, settings.namespace)
        # Who this server is, from its ordinal (servers are numbered shard by shard, config.server_ordinal):
        # its shard (1-based, as system.clusters counts), its replica name, and where replicas fetch from it.
        identity = (
            'ordinal="${POD_NAME##*-}"; '
            f'export {SHARD_ENV}="$((ordinal / {clickhouse.replicas} + 1))" {REPLICA_ENV}="$POD_NAME" '
            f'{INTERSERVER_HOST_ENV}="$POD_NAME.{headless}"; '
            f"exec /usr/bin/clickhouse-server --config-file={ETC}/config.xml"
        )
        container = ContainerArgs(
            name="clickhouse",
            image=clickhouse.image,
            command=["/bin/sh", "-c", identity],
            ports=[
                ContainerPortArgs(name="http", container_port=PORTS.http),
                ContainerPortArgs(name="native", container_port=PORTS.native),
                ContainerPortArgs(name="metrics", container_port=PORTS.metrics),
                ContainerPortArgs(name="interserver", container_port=PORTS.interserver),
            ],
            env=[
                pod_name_env(),
                # The image's entrypoint (not used: it expects root) turns the watchdog off; without it the
                # server would fork a watchdog parent as PID 1, which would take the signals and the OOM kill.
                EnvVarArgs(name="CLICKHOUSE_WATCHDOG_ENABLE", value="0"),
            ],
            resources=container_resources(clickhouse.resources),
            security_context=container_security(),
            # Loading parts after an unclean stop can take minutes on a big table: startup allows 10.
            startup_probe=ProbeArgs(http_get=ping, period_seconds=5, failure_threshold=120),
            # Ready once its replicated tables are caught up (/replicas_status answers 503 while a replica
            # lags or is read-only): a roll takes the next server down only then, never both of a shard.
            readiness_probe=ProbeArgs(
                http_get=HTTPGetActionArgs(path="/replicas_status", port="http"), period_seconds=10, timeout_seconds=3
            ),
            liveness_probe=ProbeArgs(http_get=ping, period_seconds=20, timeout_seconds=5, failure_threshold=3),
            volume_mounts=[
                VolumeMountArgs(name="data", mount_path=DATA_DIR),
                VolumeMountArgs(name="config", mount_path=f"{ETC}/config.d/qestack.xml", sub_path="qestack.xml"),
                *(
                    VolumeMountArgs(name="users", mount_path=f"{ETC}/{directory}/{file}", sub_path=file)
                    for file, directory in secret_files.items()
                ),
                VolumeMountArgs(name="tmp", mount_path="/tmp"),
                VolumeMountArgs(name="logs", mount_path="/var/log/clickhouse-server"),
            ],
        )
        claim = data_claim(settings, self._labels, clickhouse.storage.size)
        return self._stateful_set(
            name,
            names.CLICKHOUSE,
            StatefulSetSpecArgs(
                service_name=names.CLICKHOUSE_HEADLESS,
                replicas=clickhouse.servers,
                selector=LabelSelectorArgs(match_labels=self._selector),
                template=self._pod_template(
                    PodSpecArgs(
                        service_account_name=self._service_account(name, names.CLICKHOUSE),
                        automount_service_account_token=False,
                        security_context=pod_security(CLICKHOUSE_USER),
                        termination_grace_period_seconds=60,
                        # The pod template is one for all servers, so every server gets its own node: then
                        # no node holds two replicas of a shard.
                        **placement(settings, self._selector, one_per_host=True),
                        containers=[container, *self._backup_sidecar()],
                        volumes=[
                            VolumeArgs(name="config", config_map=ConfigMapVolumeSourceArgs(name=config.metadata.name)),
                            VolumeArgs(name="users", secret=SecretVolumeSourceArgs(secret_name=users.metadata.name)),
                            VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="1Gi")),
                            VolumeArgs(name="logs", empty_dir=EmptyDirVolumeSourceArgs(size_limit="256Mi")),
                            *self._backup_volumes(),
                        ],
                    ),
                    # config.d and users.d are subPath mounts, which never refresh: their digests roll the pod.
                    config=(self._config_files["qestack.xml"], *self._backup_files.values()),
                    secret_config=self._users_digest,
                ),
                volume_claim_templates=[claim],
            ),
            replicas=clickhouse.servers,
            claim_size=clickhouse.storage.size,
        )

    def _declare_schema_job(self, name: str, config: k8s.core.v1.ConfigMap) -> k8s.batch.v1.Job:
        """Apply the pending migrations as the ingest user once the servers are up, and record them on every server."""
        settings = self._inputs.settings
        servers = [f"{e.host}:{PORTS.native}" for replicas in cluster(settings).shards for e in replicas]
        password = EnvVarArgs(
            name="CLICKHOUSE_PASSWORD",
            value_from=EnvVarSourceArgs(secret_key_ref=SecretKeySelectorArgs(name=CLICKHOUSE_USERS_SECRET, key=INGEST)),
        )
        return self._bootstrap_job(
            name,
            BootstrapJob(
                component="schema-bootstrap",
                object_name=names.CLICKHOUSE_SCHEMA_JOB,
                user=CLICKHOUSE_USER,
                container="apply-schema",
                image=settings.clickhouse.image,
                # The same script the tests run on real servers; the password reaches the client through the
                # environment, from the Secret: never a literal.
                command=["/bin/sh", f"/schema/{MIGRATE_SCRIPT}", "/schema", *servers],
                env=[EnvVarArgs(name="CLICKHOUSE_USER", value=INGEST), password],
                config=config,
                # A new or changed migration gives the Job a new spec, so it runs again.
                config_files=tuple(self._migration_files.values()),
                config_volume="schema",
                config_path="/schema",
                after=self.statefulset,
            ),
        )

    def _declare_backup_config(self, name: str) -> k8s.core.v1.ConfigMap:
        """The backup tool's config file: no secret in it (the tool reads its keys from its environment)."""
        backup = self._inputs.settings.clickhouse.backup
        store = backup.object_store
        assert store is not None, "settings validation requires clickhouse.backup.objectStore when enabled"
        self._backup_files = {
            BACKUP_CONFIG_FILE: tool_config(
                ObjectStore(
                    endpoint=store.endpoint,
                    bucket=store.bucket,
                    prefix=store.prefix,
                    region=store.region,
                    path_style=store.path_style,
                ),
                Schedule(keep_full=backup.keep_full, full_every=backup.full_every, deletes=backup.mode == "backup"),
                clickhouse_port=PORTS.native,
                listen=f"0.0.0.0:{names.CLICKHOUSE_BACKUP_PORT}",
            )
        }
        return k8s.core.v1.ConfigMap(
            f"{name}-backup-config",
            metadata=self._metadata(names.CLICKHOUSE_BACKUP_CONFIG),
            data=self._backup_files,
            opts=self._opts(),
        )

    def _backup_sidecar(self) -> list[ContainerArgs]:
        """The backup tool as a server beside ClickHouse: it reads the data volume; its API and /metrics on one port."""
        if self._backup_config is None:
            return []
        backup = self._inputs.settings.clickhouse.backup
        # The API asks for a login (it can restore and delete), so probes only check that it listens.
        listening = TCPSocketActionArgs(port="backup-api")
        return [
            ContainerArgs(
                name=names.CLICKHOUSE_BACKUP,
                image=backup.image,
                command=["/bin/clickhouse-backup", "--config", f"{BACKUP_CONFIG_DIR}/{BACKUP_CONFIG_FILE}", "server"],
                ports=[ContainerPortArgs(name="backup-api", container_port=names.CLICKHOUSE_BACKUP_PORT)],
                env=[
                    _secret_env(CLICKHOUSE_PASSWORD_ENV, CLICKHOUSE_USERS_SECRET, ADMIN),
                    EnvVarArgs(name=API_USERNAME_ENV, value=API_USER),
                    _secret_env(API_PASSWORD_ENV, CLICKHOUSE_BACKUP_SECRET, _key("clickhouseBackupApiPassword")),
                    _secret_env(ACCESS_KEY_ENV, CLICKHOUSE_BACKUP_SECRET, _key("clickhouseBackupAccessKey")),
                    _secret_env(SECRET_KEY_ENV, CLICKHOUSE_BACKUP_SECRET, _key("clickhouseBackupSecretKey")),
                ],
                resources=container_resources(backup.resources),
                security_context=container_security(),
                # It listens only once it reaches the server, which may take the server's whole startup.
                startup_probe=ProbeArgs(tcp_socket=listening, period_seconds=5, failure_threshold=120),
                # Ready while it runs: the pod's readiness (its place behind the ClickHouse Services, a
                # roll's pace) must follow the server, not the backup tool. A tool that stops listening is
                # restarted by the liveness probe, and a failed backup is ClickHouseBackupFailed's business.
                readiness_probe=ProbeArgs(exec_=ExecActionArgs(command=["/bin/true"]), period_seconds=30),
                liveness_probe=ProbeArgs(tcp_socket=listening, period_seconds=20, failure_threshold=3),
                volume_mounts=[
                    # The same volume as the server: the tool hard-links the frozen parts into backup/ on it.
                    VolumeMountArgs(name="data", mount_path=DATA_DIR),
                    VolumeMountArgs(name="backup-config", mount_path=BACKUP_CONFIG_DIR, read_only=True),
                    VolumeMountArgs(name="backup-tmp", mount_path="/tmp"),
                ],
            )
        ]

    def _backup_volumes(self) -> list[VolumeArgs]:
        """The tool's config and scratch space."""
        if self._backup_config is None:
            return []
        return [
            VolumeArgs(
                name="backup-config", config_map=ConfigMapVolumeSourceArgs(name=self._backup_config.metadata.name)
            ),
            VolumeArgs(name="backup-tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="256Mi")),
        ]

    def _declare_backup_job(self, name: str) -> k8s.batch.v1.CronJob:
        """The scheduled backup: through one replica's tool per shard, create then upload (backup.job_script)."""
        settings = self._inputs.settings
        backup = settings.clickhouse.backup
        shards = [[endpoint.host for endpoint in replicas] for replicas in cluster(settings).shards]
        script = job_script(shards, Schedule(keep_full=backup.keep_full, full_every=backup.full_every))
        labels = common_labels(names.CLICKHOUSE, "backup", self._instance)
        container = ContainerArgs(
            name=names.CLICKHOUSE_BACKUP,
            # The server's image: it has the shell and the wget the script needs.
            image=settings.clickhouse.image,
            command=["/bin/sh", "-c", script],
            env=[
                EnvVarArgs(name=API_USERNAME_ENV, value=API_USER),
                _secret_env(API_PASSWORD_ENV, CLICKHOUSE_BACKUP_SECRET, _key("clickhouseBackupApiPassword")),
            ],
            resources=container_resources(JOB_RESOURCES),
            security_context=container_security(),
            volume_mounts=[VolumeMountArgs(name="tmp", mount_path="/tmp")],
        )
        return k8s.batch.v1.CronJob(
            f"{name}-backup",
            metadata=self._metadata(names.CLICKHOUSE_BACKUP, labels),
            spec=CronJobSpecArgs(
                schedule=backup.schedule,
                time_zone="Etc/UTC",
                # A run still going when the next is due is left alone: two would race on the same tools.
                concurrency_policy="Forbid",
                # A run missed by more than an hour (controller down) is skipped; ClickHouseBackupMissing tells.
                starting_deadline_seconds=3600,
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=3,
                job_template=JobTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels=labels),
                    spec=JobSpecArgs(
                        # No retry: a failed run is reported (the alert) and the next scheduled one tries again.
                        backoff_limit=0,
                        active_deadline_seconds=BACKUP_DEADLINE_SECONDS,
                        template=PodTemplateSpecArgs(
                            metadata=ObjectMetaArgs(
                                labels=labels, annotations={CONFIG_DIGEST: config_digest((script,))}
                            ),
                            spec=PodSpecArgs(
                                restart_policy="Never",
                                service_account_name=self._service_account(name, names.CLICKHOUSE_BACKUP, labels),
                                automount_service_account_token=False,
                                security_context=pod_security(CLICKHOUSE_USER),
                                containers=[container],
                                volumes=[VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="16Mi"))],
                            ),
                        ),
                    ),
                ),
            ),
            opts=self._opts(depends_on=[self.statefulset]),
        )


def _key(credential: str) -> str:
    """The key of a catalog credential in its Secret."""
    return next(c.key for c in CREDENTIALS if c.name == credential)


def _secret_env(variable: str, secret: str, key: str) -> EnvVarArgs:
    """An environment variable read from a Secret's key, never a literal."""
    return EnvVarArgs(
        name=variable, value_from=EnvVarSourceArgs(secret_key_ref=SecretKeySelectorArgs(name=secret, key=key))
    )
