"""Presto: one coordinator, autoscaled workers that drain before they stop, and the three catalogs."""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import pulumi_tls as tls
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
    EnvVarSourceArgs,
    ExecActionArgs,
    KeyToPathArgs,
    LifecycleArgs,
    LifecycleHandlerArgs,
    ObjectFieldSelectorArgs,
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
    PASSWORD_FILE,
    POD_ADDRESS_TOKEN,
    clickhouse_jdbc_url,
    graceful_shutdown_command,
    password_entry,
    pod_domain,
    probe_command,
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
    secret_digest,
)
from components.security.certificates import SERVING_USES, Leaf, authority, signed
from components.security.credential_catalog import CLICKHOUSE_USERS_SECRET, PRESTO_INTERNAL_SECRET
from components.settings.model import PROJECT, Resources, Settings

PRESTO_HOME = "/opt/presto-server"
PRESTO_USER = 1000
"""An unprivileged uid: the prestodb/presto image has no user of its own and runs as root."""
TEMPLATE_DIR = "/etc/presto-templates"
SECRETS_DIR = "/run/secrets/presto"
WORK_DIR = "/var/presto"
ETC_DIR = f"{WORK_DIR}/etc"
JMX_PORT = 9010
"""The JVM's own JMX agent, which no one can log in to (see jvm_config): never in a Service or a policy."""
QUEUE_QUERY = "(sum(presto_queries_queued) or vector(0)) + (sum(presto_queries_running) or vector(0))"
"""The queue signal: the coordinator's queued and running queries (the JMX exporter's rules name both)."""
INTERNAL_TLS_SECRET = "presto-internal-tls"
"""The internal certificate every node presents and a worker serves, with its CA: the nodes' credential."""


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
    shared_secret: pulumi.Output[str]
    """The internal-communication shared secret (in the presto-internal Secret), for the pods' config digest."""
    serving_certificate: pulumi.Output[str] | None
    """The coordinator's HTTPS certificate when Pulumi issues it, for its digest (None: cert-manager renews it)."""


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
        self._host = names.service_host(names.PRESTO_COORDINATOR, settings.namespace)
        self.url = f"https://{self._host}:{names.PRESTO_HTTPS_PORT}"
        self._declare_service(name)
        self._declare_password_file(name)
        # Both Deployments read the internal certificate and the shared secret at start: a rotation of
        # either rolls them (the new pods then trust and sign alike).
        internal = [*self._declare_internal_tls(name), args.shared_secret]
        self._secret_digest = secret_digest(internal)
        # The coordinator also serves the clients' certificate, which `pulumi up` renews: a new one rolls it.
        serving = [args.serving_certificate] if args.serving_certificate is not None else []
        self._coordinator_digest = secret_digest(internal + serving)
        self.coordinator = self._declare_node(name, coordinator=True)
        self.workers = self._declare_node(name, coordinator=False)
        if settings.presto.workers.autoscaling.signal == "queue":
            self._declare_queue_scaler(name)
        else:
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
        """The coordinator's Service (clients and the workers' discovery: HTTPS), and the exposed one if asked."""
        selector, _ = self._role(coordinator=True)
        k8s.core.v1.Service(
            f"{name}-coordinator",
            metadata=self._metadata(names.PRESTO_COORDINATOR),
            spec=ServiceSpecArgs(
                type="ClusterIP",
                selector=selector,
                ports=[ServicePortArgs(name="https", port=names.PRESTO_HTTPS_PORT, target_port="https")],
            ),
            opts=self._opts(),
        )
        network = self._inputs.settings.network
        if network.service_type != "ClusterIP":
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

    def _declare_internal_tls(self, name: str) -> list[pulumi.Output[str]]:
        """The nodes' own CA and the certificate they all present, in a TLS Secret; its files, for the digest.

        The CA is the stack's own, whatever signs the clients' certificate: a node accepts a client
        certificate of this CA only, so no other certificate of a shared issuer authenticates anyone. The
        certificate names every pod by its cluster DNS pod record, since a worker announces that name.
        """
        ca = authority(
            f"{name}-internal-ca",
            tls.SelfSignedCertSubjectArgs(
                common_name=f"{PROJECT} {self._inputs.instance} Presto internal CA", organization=PROJECT
            ),
            self._opts(),
        )
        leaf = Leaf(
            subject=tls.CertRequestSubjectArgs(common_name=INTERNAL_TLS_SECRET, organization=PROJECT),
            dns_names=[f"*.{pod_domain(self._inputs.settings.namespace)}", "localhost"],
            ip_addresses=["127.0.0.1"],
            uses=[*SERVING_USES, "client_auth"],
        )
        key, certificate = signed(f"{name}-internal", ca, leaf, self._opts())
        # Annotated, because mypy cannot infer Output.secret's type parameter from a union context.
        private_key: pulumi.Output[str] = pulumi.Output.secret(key.private_key_pem_pkcs8)
        k8s.core.v1.Secret(
            f"{name}-internal-tls",
            metadata=self._metadata(INTERNAL_TLS_SECRET),
            type="kubernetes.io/tls",
            string_data={"tls.crt": certificate.cert_pem, "tls.key": private_key, "ca.crt": ca[1].cert_pem},
            opts=self._opts(),
        )
        return [certificate.cert_pem, private_key, ca[1].cert_pem]

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
            https_port=names.PRESTO_HTTPS_PORT,
            discovery_uri=self.url,
            # The coordinator is reached through its Service, whose name its certificate holds; a worker by
            # its pod's DNS record, which the internal certificate's wildcard holds.
            internal_address=self._host if coordinator else f"{POD_ADDRESS_TOKEN}.{pod_domain(settings.namespace)}",
            data_dir=f"{WORK_DIR}/data",
            clickhouse_jdbc_url=clickhouse_jdbc_url(self._inputs.clickhouse_host_port),
            kafka_nodes=self._inputs.kafka_bootstrap,
            topic=settings.kafka.topic.name,
            etc_dir=ETC_DIR,
            jmx_port=JMX_PORT,
            password_file=f"{SECRETS_DIR}/{PASSWORD_FILE}" if coordinator else None,
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
                # The start script renders the config once: its digests roll the pods when it changes.
                template=self._pod_template(
                    spec,
                    config=tuple(data.values()),
                    secret_config=self._coordinator_digest if coordinator else self._secret_digest,
                    labels=labels,
                ),
            ),
            opts=self._opts(),
        )

    def _container(self, resources: Resources, coordinator: bool) -> ContainerArgs:
        """The Presto container, started through the stack's start script."""
        presto = self._inputs.settings.presto
        info = ExecActionArgs(command=probe_command(names.PRESTO_HTTPS_PORT, ETC_DIR))
        lifecycle = (
            None
            if coordinator
            else LifecycleArgs(
                pre_stop=LifecycleHandlerArgs(
                    exec_=ExecActionArgs(
                        command=graceful_shutdown_command(
                            names.PRESTO_HTTPS_PORT, ETC_DIR, presto.workers.shutdown_grace_period_seconds
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
                EnvVarArgs(
                    name="POD_IP",
                    value_from=EnvVarSourceArgs(field_ref=ObjectFieldSelectorArgs(field_path="status.podIP")),
                ),
                EnvVarArgs(name="PRESTO_HOME", value=PRESTO_HOME),
                EnvVarArgs(name="TEMPLATE_DIR", value=TEMPLATE_DIR),
                EnvVarArgs(name="SECRETS_DIR", value=SECRETS_DIR),
                EnvVarArgs(name="ETC_DIR", value=ETC_DIR),
                EnvVarArgs(name="DATA_DIR", value=f"{WORK_DIR}/data"),
            ],
            ports=[
                ContainerPortArgs(name="https", container_port=names.PRESTO_HTTPS_PORT),
                ContainerPortArgs(name="metrics", container_port=names.JMX_METRICS_PORT),
            ],
            resources=container_resources(resources),
            security_context=container_security(),
            # The JVM loads every plugin before it answers: allow 5 minutes to start.
            startup_probe=ProbeArgs(exec_=info, period_seconds=5, timeout_seconds=5, failure_threshold=60),
            readiness_probe=ProbeArgs(exec_=info, period_seconds=10, timeout_seconds=5),
            liveness_probe=ProbeArgs(exec_=info, period_seconds=20, timeout_seconds=5, failure_threshold=3),
            lifecycle=lifecycle,
            volume_mounts=[
                VolumeMountArgs(name="templates", mount_path=TEMPLATE_DIR, read_only=True),
                VolumeMountArgs(name="secrets", mount_path=SECRETS_DIR, read_only=True),
                VolumeMountArgs(name="work", mount_path=WORK_DIR),
                VolumeMountArgs(name="tmp", mount_path="/tmp"),
            ],
        )

    def _declare_autoscaler(self, name: str) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
        """Scale workers on CPU; scale in slowly, one worker a minute, each draining first.

        CPU only: a JVM commits its heap at start and keeps it, so memory use says nothing about load.
        """
        workers = self._inputs.settings.presto.workers
        _, labels = self._role(coordinator=False)
        return k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-workers",
            metadata=self._metadata(names.PRESTO_WORKER, labels),
            spec=HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=ScaleTargetArgs(api_version="apps/v1", kind="Deployment", name=names.PRESTO_WORKER),
                min_replicas=workers.min_replicas,
                max_replicas=workers.max_replicas,
                metrics=[
                    MetricSpecArgs(
                        type="Resource",
                        resource=ResourceMetricSourceArgs(
                            name="cpu",
                            target=MetricTargetArgs(type="Utilization", average_utilization=workers.cpu_target_percent),
                        ),
                    )
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

    def _declare_queue_scaler(self, name: str) -> k8s.apiextensions.CustomResource:
        """A KEDA ScaledObject: workers for the coordinator's queued and running queries, or for their CPU.

        KEDA makes and owns the HPA (named like ours, so verify finds it), with both metrics: the larger
        count wins. The same slow scale-in, one draining worker a minute.
        """
        settings = self._inputs.settings
        workers = settings.presto.workers
        _, labels = self._role(coordinator=False)
        prometheus = f"http://{names.service_host(names.PROMETHEUS, settings.namespace)}:{names.PROMETHEUS_PORT}"
        # Ref: https://keda.sh/docs/2.16/reference/scaledobject-spec/ and /scalers/prometheus/
        spec = {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": names.PRESTO_WORKER},
            "minReplicaCount": workers.min_replicas,
            "maxReplicaCount": workers.max_replicas,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "name": names.PRESTO_WORKER,
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": workers.scale_down_stabilization_seconds,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                        },
                        "scaleUp": {
                            "stabilizationWindowSeconds": 0,
                            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 30}],
                        },
                    },
                }
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": prometheus,
                        "query": QUEUE_QUERY,
                        "threshold": str(workers.autoscaling.queries_per_worker),
                    },
                },
                {"type": "cpu", "metricType": "Utilization", "metadata": {"value": str(workers.cpu_target_percent)}},
            ],
        }
        return k8s.apiextensions.CustomResource(
            f"{name}-workers-scaler",
            api_version="keda.sh/v1alpha1",
            kind="ScaledObject",
            metadata=self._metadata(names.PRESTO_WORKER, labels),
            spec=spec,
            opts=self._opts(depends_on=[self.workers]),
        )


def _secrets_volume(coordinator: bool) -> ProjectedVolumeSourceArgs:
    """The secrets a node reads, as files: nothing else of those Secrets.

    Every node: the internal shared secret, certificate and CA, the CA of the coordinator's certificate and
    the passwords of the ClickHouse catalogs' users. The coordinator also: its TLS key and certificate,
    and the users' password hashes.
    """
    serving = {"ca.crt": "ca.crt", "tls.key": "tls.key", "tls.crt": "tls.crt"} if coordinator else {"ca.crt": "ca.crt"}
    internal = {"tls.key": "internal-tls.key", "tls.crt": "internal-tls.crt", "ca.crt": "internal-ca.crt"}
    wanted = {
        PRESTO_INTERNAL_SECRET: {"shared-secret": "shared-secret"},
        INTERNAL_TLS_SECRET: internal,
        CLICKHOUSE_USERS_SECRET: {user: f"{catalog}-password" for catalog, user in CLICKHOUSE_CATALOGS.items()},
        names.PRESTO_TLS_SECRET: serving,
    }
    if coordinator:
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
