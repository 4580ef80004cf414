"""Presto: one coordinator, autoscaled workers that drain before they stop, and the three catalogs."""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_kubernetes.apps.v1 import DeploymentSpecArgs, DeploymentStrategyArgs
from pulumi_kubernetes.autoscaling.v2 import CrossVersionObjectReferenceArgs as ScaleTargetArgs
from pulumi_kubernetes.autoscaling.v2 import (
    HorizontalPodAutoscalerBehaviorArgs,
    HorizontalPodAutoscalerSpecArgs,
    HPAScalingPolicyArgs,
    HPAScalingRulesArgs,
    MetricSpecArgs,
    MetricTargetArgs,
    ResourceMetricSourceArgs,
)
from pulumi_kubernetes.core.v1 import (
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    ExecActionArgs,
    HTTPGetActionArgs,
    KeyToPathArgs,
    LifecycleArgs,
    LifecycleHandlerArgs,
    PodSpecArgs,
    ProbeArgs,
    ProjectedVolumeSourceArgs,
    SecretProjectionArgs,
    ServicePortArgs,
    ServiceSpecArgs,
    VolumeArgs,
    VolumeMountArgs,
    VolumeProjectionArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs

from components import names
from components.data.presto.config import (
    CLICKHOUSE_CATALOGS,
    KEYSTORE_FILE,
    PASSWORD_FILE,
    ClientAccess,
    clickhouse_jdbc_url,
    graceful_shutdown_command,
    password_entry,
    start_script,
    template_files,
)
from components.observability.jmx_exporter import AGENT_JAR, CONFIG_FILE, agent_option
from components.platform.budget import rollout_surge
from components.platform.labels import common_labels, image_version, selector_labels
from components.platform.workloads import (
    NamespacedComponent,
    client_service_spec,
    container_resources,
    container_security,
    disruption_budget,
    placement,
    pod_name_env,
    pod_security,
    rolling_update,
)
from components.security.credential_catalog import CLICKHOUSE_USERS_SECRET, PRESTO_INTERNAL_SECRET
from components.settings.model import Resources, Settings

PRESTO_HOME = "/opt/presto-server"
PRESTO_USER = 1000
"""An unprivileged uid: the prestodb/presto image has no user of its own and runs as root."""
TEMPLATE_DIR = "/etc/presto-templates"
SECRETS_DIR = "/run/secrets/presto"
WORK_DIR = "/var/presto"


@dataclass(frozen=True)
class PrestoArgs:
    """Inputs of the Presto component."""

    settings: Settings
    """The validated stack settings."""
    namespace: pulumi.Input[str]
    """Namespace to deploy into."""
    instance: str
    """The stack name, for app.kubernetes.io/instance and node.environment."""
    clickhouse_host_port: str
    """host:port of ClickHouse's HTTP interface."""
    kafka_bootstrap: str
    """host:port of Kafka's PRESTO listener (PLAINTEXT: Presto 0.287's Kafka client cannot speak SASL)."""
    user_passwords: dict[str, pulumi.Output[str]]
    """Secret passwords of the client users, by user name."""


class Presto(NamespacedComponent):
    """A coordinator Deployment, a worker Deployment scaled by an HPA, and their Services."""

    url: str
    """In-cluster HTTPS URL of the coordinator, for clients."""
    coordinator: k8s.apps.v1.Deployment
    workers: k8s.apps.v1.Deployment

    def __init__(self, name: str, args: PrestoArgs, opts: pulumi.ResourceOptions | None = None):
        settings = args.settings
        self._version = image_version(settings.presto.image)
        identity = (names.PRESTO_COORDINATOR, "coordinator", args.instance, settings.presto.image)
        super().__init__("qestack:data:Presto", name, args.namespace, identity, opts)
        self._inputs = args
        host = names.service_host(names.PRESTO_COORDINATOR, settings.namespace)
        self.url = f"https://{host}:{names.PRESTO_HTTPS_PORT}"
        self._discovery_uri = f"http://{host}:{names.PRESTO_HTTP_PORT}"
        self._declare_service(name)
        self._declare_password_file(name)
        self.coordinator = self._declare_node(name, coordinator=True)
        self.workers = self._declare_node(name, coordinator=False)
        self._declare_autoscaler(name)
        if settings.high_availability:
            worker = self._role(coordinator=False)
            disruption_budget(names.PRESTO_WORKER, args.namespace, worker[1], worker[0], self._opts())
        self.register_outputs({"url": self.url})

    def _role(self, coordinator: bool) -> tuple[dict[str, str], dict[str, str]]:
        """Selector and full labels of the coordinator or the workers."""
        name, component = (names.PRESTO_COORDINATOR, "coordinator") if coordinator else (names.PRESTO_WORKER, "worker")
        instance = self._inputs.instance
        return selector_labels(name, component, instance), common_labels(name, component, instance, self._version)

    def _declare_service(self, name: str) -> None:
        """The coordinator's Service (clients: HTTPS; workers' discovery: HTTP), and the exposed one if asked."""
        selector, _ = self._role(coordinator=True)
        k8s.core.v1.Service(
            f"{name}-coordinator",
            metadata=self._metadata(names.PRESTO_COORDINATOR),
            spec=ServiceSpecArgs(
                type="ClusterIP",
                selector=selector,
                ports=[
                    ServicePortArgs(name="http", port=names.PRESTO_HTTP_PORT, target_port="http"),
                    ServicePortArgs(name="https", port=names.PRESTO_HTTPS_PORT, target_port="https"),
                ],
            ),
            opts=self._opts(),
        )
        network = self._inputs.settings.network
        if network.service_type != "ClusterIP":
            # Exposed outside the cluster: HTTPS only; the nodes' HTTP port never leaves the ClusterIP Service.
            k8s.core.v1.Service(
                f"{name}-clients",
                metadata=self._metadata(names.PRESTO_CLIENTS),
                spec=client_service_spec(
                    network,
                    selector,
                    [ServicePortArgs(name="https", port=names.PRESTO_HTTPS_PORT, target_port="https")],
                ),
                opts=self._opts(),
            )

    def _declare_password_file(self, name: str) -> k8s.core.v1.Secret:
        """The users' PBKDF2 hashes, each with a random salt kept in the stack's state."""
        users = sorted(self._inputs.user_passwords)
        salts = [random.RandomBytes(f"{name}-salt-{user}", length=16, opts=self._opts()).hex for user in users]
        passwords = [self._inputs.user_passwords[user] for user in users]
        text = pulumi.Output.all(*salts, *passwords).apply(
            lambda values: "".join(
                password_entry(user, password, bytes.fromhex(salt))
                for user, salt, password in zip(users, values[: len(users)], values[len(users) :], strict=True)
            )
        )
        # Annotated, because mypy cannot infer Output.secret's type parameter from a union context.
        secret_text: pulumi.Output[str] = pulumi.Output.secret(text)
        return k8s.core.v1.Secret(
            f"{name}-password-file",
            metadata=self._metadata(names.PRESTO_PASSWORD_FILE_SECRET),
            type="Opaque",
            string_data={PASSWORD_FILE: secret_text},
            opts=self._opts(),
        )

    def _declare_node(self, name: str, coordinator: bool) -> k8s.apps.v1.Deployment:
        """The config, and the Deployment, of the coordinator or of the workers."""
        settings = self._inputs.settings
        presto = settings.presto
        selector, labels = self._role(coordinator)
        workload = names.PRESTO_COORDINATOR if coordinator else names.PRESTO_WORKER
        files = template_files(
            presto,
            coordinator=coordinator,
            environment=self._inputs.instance,
            http_port=names.PRESTO_HTTP_PORT,
            discovery_uri=self._discovery_uri,
            data_dir=f"{WORK_DIR}/data",
            clickhouse_jdbc_url=clickhouse_jdbc_url(self._inputs.clickhouse_host_port),
            kafka_nodes=self._inputs.kafka_bootstrap,
            topic=settings.kafka.topic.name,
            etc_dir=f"{WORK_DIR}/etc",
            clients=ClientAccess(
                port=names.PRESTO_HTTPS_PORT,
                keystore=f"{WORK_DIR}/etc/{KEYSTORE_FILE}",
                password_file=f"{SECRETS_DIR}/{PASSWORD_FILE}",
            )
            if coordinator
            else None,
            metrics_agent=agent_option(AGENT_JAR, names.JMX_METRICS_PORT, f"{TEMPLATE_DIR}/{CONFIG_FILE}"),
        )
        data = {**files, "start.sh": start_script()}
        config = k8s.core.v1.ConfigMap(
            f"{name}-{'coordinator' if coordinator else 'worker'}-config",
            metadata=self._metadata(
                names.PRESTO_COORDINATOR_CONFIG if coordinator else names.PRESTO_WORKER_CONFIG, labels
            ),
            data=data,
            opts=self._opts(),
        )
        resources = presto.coordinator.resources if coordinator else presto.workers.resources
        grace = presto.workers.shutdown_grace_period_seconds
        spec = PodSpecArgs(
            service_account_name=self._service_account(name, workload, labels),
            automount_service_account_token=False,
            security_context=pod_security(PRESTO_USER),
            # A worker drains for two grace periods (before and after its last task) before it exits.
            termination_grace_period_seconds=30 if coordinator else 2 * grace + 30,
            containers=[self._container(resources, coordinator)],
            volumes=[
                VolumeArgs(name="templates", config_map=ConfigMapVolumeSourceArgs(name=config.metadata.name)),
                VolumeArgs(name="secrets", projected=_secrets_volume(coordinator)),
                VolumeArgs(name="work", empty_dir=EmptyDirVolumeSourceArgs(size_limit="2Gi")),
                VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="1Gi")),
            ],
            **({} if coordinator else placement(settings, selector, one_per_host=False)),
        )
        return k8s.apps.v1.Deployment(
            f"{name}-{'coordinator' if coordinator else 'workers'}",
            metadata=self._metadata(workload, labels),
            spec=DeploymentSpecArgs(
                # Workers: the HPA owns the replica count. Coordinator: exactly one, never two at once.
                replicas=1 if coordinator else None,
                strategy=DeploymentStrategyArgs(type="Recreate")
                if coordinator
                else rolling_update(rollout_surge(settings)),
                selector=LabelSelectorArgs(match_labels=selector),
                # The start script renders the config once: its digest rolls the pods when it changes.
                template=self._pod_template(spec, config=tuple(data.values()), labels=labels),
            ),
            opts=self._opts(),
        )

    def _container(self, resources: Resources, coordinator: bool) -> ContainerArgs:
        """The Presto container, started through the stack's start script."""
        presto = self._inputs.settings.presto
        info = HTTPGetActionArgs(path="/v1/info", port="http")
        lifecycle = (
            None
            if coordinator
            else LifecycleArgs(
                pre_stop=LifecycleHandlerArgs(
                    exec_=ExecActionArgs(
                        command=graceful_shutdown_command(
                            names.PRESTO_HTTP_PORT, presto.workers.shutdown_grace_period_seconds
                        )
                    )
                )
            )
        )
        return ContainerArgs(
            name="presto",
            image=presto.image,
            command=["/bin/sh", f"{TEMPLATE_DIR}/start.sh"],
            env=[
                pod_name_env(),
                EnvVarArgs(name="PRESTO_HOME", value=PRESTO_HOME),
                EnvVarArgs(name="TEMPLATE_DIR", value=TEMPLATE_DIR),
                EnvVarArgs(name="SECRETS_DIR", value=SECRETS_DIR),
                EnvVarArgs(name="ETC_DIR", value=f"{WORK_DIR}/etc"),
                EnvVarArgs(name="DATA_DIR", value=f"{WORK_DIR}/data"),
            ],
            ports=[
                ContainerPortArgs(name="http", container_port=names.PRESTO_HTTP_PORT),
                ContainerPortArgs(name="metrics", container_port=names.JMX_METRICS_PORT),
            ]
            + ([ContainerPortArgs(name="https", container_port=names.PRESTO_HTTPS_PORT)] if coordinator else []),
            resources=container_resources(resources),
            security_context=container_security(),
            # The JVM loads every plugin before it answers: allow 5 minutes to start.
            startup_probe=ProbeArgs(http_get=info, period_seconds=5, failure_threshold=60),
            readiness_probe=ProbeArgs(http_get=info, period_seconds=10, timeout_seconds=5),
            liveness_probe=ProbeArgs(http_get=info, period_seconds=20, timeout_seconds=5, failure_threshold=3),
            lifecycle=lifecycle,
            volume_mounts=[
                VolumeMountArgs(name="templates", mount_path=TEMPLATE_DIR, read_only=True),
                VolumeMountArgs(name="secrets", mount_path=SECRETS_DIR, read_only=True),
                VolumeMountArgs(name="work", mount_path=WORK_DIR),
                VolumeMountArgs(name="tmp", mount_path="/tmp"),
            ],
        )

    def _declare_autoscaler(self, name: str) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
        """Scale workers on CPU and memory; scale in slowly, one worker a minute, each draining first."""
        workers = self._inputs.settings.presto.workers
        _, labels = self._role(coordinator=False)

        def utilization(resource: str, percent: int) -> MetricSpecArgs:
            return MetricSpecArgs(
                type="Resource",
                resource=ResourceMetricSourceArgs(
                    name=resource, target=MetricTargetArgs(type="Utilization", average_utilization=percent)
                ),
            )

        return k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-workers",
            metadata=self._metadata(names.PRESTO_WORKER, labels),
            spec=HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=ScaleTargetArgs(api_version="apps/v1", kind="Deployment", name=names.PRESTO_WORKER),
                min_replicas=workers.min_replicas,
                max_replicas=workers.max_replicas,
                metrics=[
                    utilization("cpu", workers.cpu_target_percent),
                    utilization("memory", workers.memory_target_percent),
                ],
                behavior=HorizontalPodAutoscalerBehaviorArgs(
                    scale_down=HPAScalingRulesArgs(
                        stabilization_window_seconds=workers.scale_down_stabilization_seconds,
                        policies=[HPAScalingPolicyArgs(type="Pods", value=1, period_seconds=60)],
                    ),
                    scale_up=HPAScalingRulesArgs(
                        stabilization_window_seconds=0,
                        policies=[HPAScalingPolicyArgs(type="Percent", value=100, period_seconds=30)],
                    ),
                ),
            ),
            opts=self._opts(depends_on=[self.workers]),
        )


def _secrets_volume(coordinator: bool) -> ProjectedVolumeSourceArgs:
    """The secrets a node reads, as files: nothing else of those Secrets.

    Every node: the internal shared secret and the passwords of the ClickHouse catalogs' users. The coordinator also:
    its TLS key and certificate, and the users' password hashes.
    """
    wanted = {
        PRESTO_INTERNAL_SECRET: {"shared-secret": "shared-secret"},
        CLICKHOUSE_USERS_SECRET: {user: f"{catalog}-password" for catalog, user in CLICKHOUSE_CATALOGS.items()},
    }
    if coordinator:
        wanted[names.PRESTO_TLS_SECRET] = {"tls.key": "tls.key", "tls.crt": "tls.crt"}
        wanted[names.PRESTO_PASSWORD_FILE_SECRET] = {PASSWORD_FILE: PASSWORD_FILE}
    return ProjectedVolumeSourceArgs(
        default_mode=0o440,
        sources=[
            VolumeProjectionArgs(
                secret=SecretProjectionArgs(
                    name=secret, items=[KeyToPathArgs(key=key, path=path) for key, path in items.items()]
                )
            )
            for secret, items in wanted.items()
        ],
    )
