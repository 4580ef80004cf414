"""Kafka in KRaft mode: a StatefulSet of combined broker+controller nodes, and the events topic."""

from dataclasses import asdict, dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgs
from pulumi_kubernetes.core.v1 import (
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    EnvVarSourceArgs,
    ExecActionArgs,
    PodSpecArgs,
    ProbeArgs,
    SecretKeySelectorArgs,
    ServicePortArgs,
    ServiceSpecArgs,
    TCPSocketActionArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs

from components import names
from components.data.kafka.config import (
    BROKER_PRINCIPAL,
    ENV_PASSWORD,
    LOCAL_PORT_BASE,
    NODE_ID_TOKEN,
    POD_NAME_TOKEN,
    Ports,
    log4j_properties,
    metrics_config,
    node_pod,
    ready_script,
    server_properties,
    start_script,
    topic_bootstrap_script,
)
from components.data.kafka.mirror import MIRROR_PRINCIPAL, TARGET_PASSWORD_ENV, site_mirror_user
from components.observability.jmx_exporter import AGENT_JAR, CONFIG_FILE, agent_option
from components.platform.budget import JOB_RESOURCES
from components.platform.jvm import heap_megabytes
from components.platform.workloads import (
    BootstrapJob,
    NamespacedComponent,
    container_resources,
    container_security,
    data_claim,
    disruption_budget,
    placement,
    pod_name_env,
    pod_security,
)
from components.security.credential_catalog import KAFKA_USERS_SECRET
from components.settings.model import Settings

KAFKA_HOME = "/opt/kafka"
KAFKA_USER = 1000
"""uid of `appuser`, the user the apache/kafka image runs as."""
DATA_DIR = "/var/lib/kafka/data"
TEMPLATE_DIR = "/etc/kafka/template"
AGENT_DIR = "/opt/metrics-agent"
AGENT_FILE = "jmx_prometheus_javaagent.jar"
LOG4J_FILE = "log4j.properties"
READY_SCRIPT = "ready.sh"
TOPIC_SCRIPT = "topic-bootstrap.sh"
"""The bootstrap Job's script, in the nodes' ConfigMap: only the Job reads it."""
# Kafka leans on the page cache for its log segments: give the heap half the container, not more.
HEAP_FRACTION = 0.5
LISTENER_PORTS = tuple(asdict(Ports()).items())
"""(port name, port) of each listener of kafka_config."""
CLIENT_SERVICE_LISTENERS = ("client", "presto")
"""What the client Service exposes: the quorum and replication listeners stay on the headless one."""
LOOPBACK_LISTENERS = ("external",)
"""Listeners on the pod's loopback, for port-forwards only: on no Service, since no pod can reach them."""
MIN_READY_SECONDS = 10
"""How long a restarted node stays ready before the roll stops the next: its readiness says it has caught
up with every leader, and this covers the leaders' taking it back into their ISRs and clients' metadata."""


def metrics_agent(settings: Settings) -> ContainerArgs:
    """The init container copying the JMX exporter's agent into the `agent` volume, for a Kafka image's JVM.

    The apache/kafka image has no metrics agent: it comes out of monitoring.jmxExporterImage, pinned on its own
    (by default the Presto image of today), never presto.image: an upgrade of Presto must not roll Kafka's
    pods. Why this image: docs/decisions.md.
    """
    return ContainerArgs(
        name="metrics-agent",
        image=settings.monitoring.jmx_exporter_image,
        command=["cp", AGENT_JAR, f"{AGENT_DIR}/{AGENT_FILE}"],
        resources=container_resources(JOB_RESOURCES),
        security_context=container_security(),
        volume_mounts=[VolumeMountArgs(name="agent", mount_path=AGENT_DIR)],
    )


@dataclass(frozen=True)
class KafkaArgs:
    """Inputs of the Kafka component."""

    settings: Settings
    """The validated stack settings."""
    namespace: pulumi.Input[str]
    """Namespace to deploy into (an Output, so objects wait for the namespace)."""
    instance: str
    """The stack name, for app.kubernetes.io/instance."""
    passwords: dict[str, pulumi.Output[str]]
    """Secret passwords of the broker principal and the SCRAM users (used with authentication: scram)."""


def pod_host(pod: str, namespace: str) -> str:
    """Stable DNS name of a Kafka pod, through the headless Service."""
    return f"{pod}.{names.service_host(names.KAFKA_HEADLESS, namespace)}"


def kafka_host(ordinal: int, namespace: str) -> str:
    """Stable DNS name of one Kafka node."""
    return pod_host(node_pod(ordinal), namespace)


def bootstrap_address(namespace: str, port: int = names.KAFKA_CLIENT_PORT) -> str:
    """The address clients bootstrap from: the client Service (Presto: its own PRESTO listener's port)."""
    return f"{names.service_host(names.KAFKA, namespace)}:{port}"


def password_env(principal: str, variable: str | None = None) -> EnvVarArgs:
    """The variable a script reads a principal's password from, filled from the Secret kafka-users."""
    return EnvVarArgs(
        name=variable or ENV_PASSWORD[principal],
        value_from=EnvVarSourceArgs(secret_key_ref=SecretKeySelectorArgs(name=KAFKA_USERS_SECRET, key=principal)),
    )


class Kafka(NamespacedComponent):
    """KRaft Kafka with persistent logs, a PDB in HA stacks and an idempotent topic bootstrap Job."""

    bootstrap: str
    """host:port clients bootstrap from."""
    presto_bootstrap: str
    """host:port of the PRESTO listener, which only Presto's pods may reach."""
    statefulset: k8s.apps.v1.StatefulSet

    def __init__(self, name: str, args: KafkaArgs, opts: pulumi.ResourceOptions | None = None):
        settings = args.settings
        super().__init__(
            "qestack:data:Kafka",
            name,
            args.namespace,
            (names.KAFKA, "broker", args.instance, settings.kafka.image),
            opts,
        )
        self._inputs = args
        self.bootstrap = bootstrap_address(settings.namespace)
        self.presto_bootstrap = bootstrap_address(settings.namespace, names.KAFKA_PRESTO_PORT)
        config = self._declare_config(name)
        self._declare_services(name)
        # The KRaft cluster id: 16 random bytes, base64url without padding, fixed for the stack's life.
        cluster_id = random.RandomId(f"{name}-cluster-id", byte_length=16, opts=pulumi.ResourceOptions(parent=self))
        self.statefulset = self._declare_statefulset(name, config, cluster_id.b64_url)
        if settings.high_availability:
            disruption_budget(names.KAFKA, args.namespace, self._labels, self._selector, self._opts())
        self._declare_topic_job(name, config)
        self.register_outputs(
            {"bootstrap": self.bootstrap, "prestoBootstrap": self.presto_bootstrap, "topic": settings.kafka.topic.name}
        )

    def _declare_config(self, name: str) -> k8s.core.v1.ConfigMap:
        """server.properties (a template the start script completes) and the start script."""
        settings = self._inputs.settings
        namespace = settings.namespace
        properties = server_properties(
            settings.kafka,
            node_id=NODE_ID_TOKEN,
            advertised_host=pod_host(POD_NAME_TOKEN, namespace),
            voters=[
                (ordinal, f"{kafka_host(ordinal, namespace)}:{names.KAFKA_CONTROLLER_PORT}")
                for ordinal in range(settings.kafka.brokers)
            ],
            log_dir=DATA_DIR,
            ports=Ports(),
        )
        self._config_files = {
            "server.properties": properties,
            "start.sh": start_script(settings.kafka),
            LOG4J_FILE: log4j_properties(),
            READY_SCRIPT: ready_script(),
            TOPIC_SCRIPT: topic_bootstrap_script(settings.kafka, site_mirror_user(settings)),
            CONFIG_FILE: metrics_config(),
        }
        return k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=self._metadata(names.KAFKA_CONFIG), data=self._config_files, opts=self._opts()
        )

    def _declare_services(self, name: str) -> None:
        """A headless Service for stable node names, and a client Service to bootstrap from."""
        ports = [
            ServicePortArgs(name=listener, port=port, target_port=listener)
            for listener, port in LISTENER_PORTS
            if listener not in LOOPBACK_LISTENERS
        ]
        k8s.core.v1.Service(
            f"{name}-headless",
            metadata=self._metadata(names.KAFKA_HEADLESS),
            # Nodes must resolve each other before they are ready: the quorum forms only then.
            spec=ServiceSpecArgs(
                cluster_ip="None", publish_not_ready_addresses=True, selector=self._selector, ports=ports
            ),
            opts=self._opts(),
        )
        k8s.core.v1.Service(
            f"{name}-client",
            metadata=self._metadata(names.KAFKA),
            spec=ServiceSpecArgs(
                type="ClusterIP",
                selector=self._selector,
                ports=[port for port in ports if port.name in CLIENT_SERVICE_LISTENERS],
            ),
            opts=self._opts(),
        )

    def _declare_statefulset(
        self, name: str, config: k8s.core.v1.ConfigMap, cluster_id: pulumi.Output[str]
    ) -> k8s.apps.v1.StatefulSet:
        """The nodes, each with its own PersistentVolumeClaim."""
        settings = self._inputs.settings
        kafka = settings.kafka
        heap = heap_megabytes(kafka.resources.limits.memory, HEAP_FRACTION)
        container = ContainerArgs(
            name="kafka",
            image=kafka.image,
            command=["/bin/sh", f"{TEMPLATE_DIR}/start.sh"],
            env=[
                pod_name_env(),
                EnvVarArgs(name="CLUSTER_ID", value=cluster_id),
                EnvVarArgs(name="KAFKA_HOME", value=KAFKA_HOME),
                EnvVarArgs(name="TEMPLATE", value=f"{TEMPLATE_DIR}/server.properties"),
                EnvVarArgs(name="RUNTIME_DIR", value="/tmp"),
                EnvVarArgs(name="LOCAL_PORT_BASE", value=str(LOCAL_PORT_BASE)),
                EnvVarArgs(name="LOG_DIR", value="/tmp/logs"),
                # Logs go to stdout only (log4j_properties), and no GC log: kafka-server-start.sh's default
                # EXTRA_ARGS add -loggc, ten 100 MB files in LOG_DIR, which is a 512Mi emptyDir.
                # Ref: https://github.com/apache/kafka/blob/3.9.1/bin/kafka-run-class.sh (GC_LOG_ENABLED)
                EnvVarArgs(name="KAFKA_LOG4J_OPTS", value=f"-Dlog4j.configuration=file:{TEMPLATE_DIR}/{LOG4J_FILE}"),
                EnvVarArgs(name="EXTRA_ARGS", value="-name kafkaServer"),
                *([password_env(BROKER_PRINCIPAL)] if kafka.authentication == "scram" else []),
                EnvVarArgs(name="KAFKA_HEAP_OPTS", value=f"-Xms{heap}m -Xmx{heap}m"),
                EnvVarArgs(
                    name="KAFKA_OPTS",
                    value=agent_option(
                        f"{AGENT_DIR}/{AGENT_FILE}", names.JMX_METRICS_PORT, f"{TEMPLATE_DIR}/{CONFIG_FILE}"
                    ),
                ),
            ],
            ports=[
                *(ContainerPortArgs(name=listener, container_port=port) for listener, port in LISTENER_PORTS),
                ContainerPortArgs(name="metrics", container_port=names.JMX_METRICS_PORT),
            ],
            resources=container_resources(kafka.resources),
            security_context=container_security(),
            # Startup: the client listener opens once the node has joined the quorum; log recovery after an
            # unclean stop can take minutes, so it allows 5. Readiness is the broker serving, not a port: RUNNING
            # and caught up with the leader of every partition it follows (ready_script), so a roll stops the
            # next node only once this one is back in sync, as Strimzi's roller waits. One HTTP request to the
            # metrics agent in the JVM (no JVM started per probe); it allows 4 s for an answer.
            startup_probe=ProbeArgs(
                tcp_socket=TCPSocketActionArgs(port="client"), period_seconds=5, failure_threshold=60
            ),
            readiness_probe=ProbeArgs(
                exec_=ExecActionArgs(
                    command=["/bin/bash", f"{TEMPLATE_DIR}/{READY_SCRIPT}", str(names.JMX_METRICS_PORT)]
                ),
                period_seconds=5,
                timeout_seconds=5,
            ),
            liveness_probe=ProbeArgs(
                tcp_socket=TCPSocketActionArgs(port="controller"), period_seconds=20, failure_threshold=3
            ),
            volume_mounts=[
                VolumeMountArgs(name="data", mount_path=DATA_DIR),
                VolumeMountArgs(name="config", mount_path=TEMPLATE_DIR, read_only=True),
                VolumeMountArgs(name="tmp", mount_path="/tmp"),
                VolumeMountArgs(name="agent", mount_path=AGENT_DIR, read_only=True),
            ],
        )
        claim = data_claim(settings, self._labels, kafka.storage.size)
        return self._stateful_set(
            name,
            names.KAFKA,
            StatefulSetSpecArgs(
                service_name=names.KAFKA_HEADLESS,
                replicas=kafka.brokers,
                # All voters start together: a KRaft quorum cannot form one node at a time.
                pod_management_policy="Parallel",
                min_ready_seconds=MIN_READY_SECONDS,
                selector=LabelSelectorArgs(match_labels=self._selector),
                template=self._pod_template(
                    PodSpecArgs(
                        service_account_name=self._service_account(name, names.KAFKA),
                        automount_service_account_token=False,
                        security_context=pod_security(KAFKA_USER),
                        # Room for a controlled shutdown: leadership moves away before the process exits.
                        termination_grace_period_seconds=60,
                        init_containers=[metrics_agent(settings)],
                        containers=[container],
                        volumes=[
                            VolumeArgs(name="config", config_map=ConfigMapVolumeSourceArgs(name=config.metadata.name)),
                            VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="512Mi")),
                            VolumeArgs(name="agent", empty_dir=EmptyDirVolumeSourceArgs(size_limit="16Mi")),
                        ],
                        **placement(settings, self._selector, one_per_host=True),
                    ),
                    # A changed config rolls the nodes one at a time, the highest ordinal first. Not the broker
                    # password: every node must change it at once (the listeners check it), so it is no config.
                    config=tuple(text for file, text in self._config_files.items() if file != TOPIC_SCRIPT),
                ),
                volume_claim_templates=[claim],
            ),
            replicas=kafka.brokers,
            claim_size=kafka.storage.size,
        )

    def _declare_topic_job(self, name: str, config: k8s.core.v1.ConfigMap) -> k8s.batch.v1.Job:
        """Create the events topic (and with scram, the users and their ACLs) once the nodes are up.

        Re-running it changes nothing; it runs again when a Kafka password changes, to set the new one.
        """
        settings = self._inputs.settings
        kafka = settings.kafka
        env = [
            EnvVarArgs(name="KAFKA_HOME", value=KAFKA_HOME),
            EnvVarArgs(
                name="BOOTSTRAP",
                value=f"{names.service_host(names.KAFKA_HEADLESS, self._inputs.settings.namespace)}:"
                f"{names.KAFKA_INTERNAL_PORT}",
            ),
            EnvVarArgs(name="RUNTIME_DIR", value="/tmp"),
            EnvVarArgs(name="KAFKA_HEAP_OPTS", value="-Xmx96m"),
            EnvVarArgs(name="LOG_DIR", value="/tmp/logs"),
        ]
        if kafka.authentication == "scram":
            # A new value of any password gives the Job a new spec, so it is replaced and sets it in Kafka:
            # a random id that changes with them, never anything derived from them.
            generation = random.RandomId(
                f"{name}-credentials-generation",
                byte_length=8,
                keepers=self._inputs.passwords,
                opts=pulumi.ResourceOptions(parent=self),
            )
            mirror_user = settings.mirror is not None or bool(kafka.mirror_cidrs)
            env += [
                *(password_env(principal) for principal in ENV_PASSWORD),
                *([password_env(MIRROR_PRINCIPAL, TARGET_PASSWORD_ENV)] if mirror_user else []),
                EnvVarArgs(name="CREDENTIALS_GENERATION", value=generation.hex),
            ]
        return self._bootstrap_job(
            name,
            BootstrapJob(
                component="topic-bootstrap",
                object_name=names.KAFKA_TOPIC_JOB,
                user=KAFKA_USER,
                container="create-topic",
                image=kafka.image,
                command=["/bin/sh", f"{TEMPLATE_DIR}/{TOPIC_SCRIPT}"],
                env=env,
                config=config,
                config_files=(self._config_files[TOPIC_SCRIPT],),
                config_volume="config",
                config_path=TEMPLATE_DIR,
                after=self.statefulset,
            ),
        )
