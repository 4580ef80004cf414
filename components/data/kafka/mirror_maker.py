"""MirrorMaker 2 on a DR stack: one Deployment of connect-mirror-maker (dedicated mode) from Kafka's own image."""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import DeploymentSpecArgs
from pulumi_kubernetes.core.v1 import (
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    PodSpecArgs,
    ProbeArgs,
    TCPSocketActionArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs

from components import names
from components.data.kafka.component import (
    AGENT_DIR,
    AGENT_FILE,
    HEAP_FRACTION,
    KAFKA_HOME,
    KAFKA_USER,
    LOG4J_FILE,
    bootstrap_address,
    metrics_agent,
    password_env,
)
from components.data.kafka.config import log4j_properties
from components.data.kafka.mirror import (
    MIRROR_PRINCIPAL,
    SOURCE_PASSWORD_ENV,
    TARGET_PASSWORD_ENV,
    mirror_metrics_config,
    mirror_properties,
)
from components.observability.jmx_exporter import CONFIG_FILE, agent_option
from components.platform.jvm import heap_megabytes
from components.platform.workloads import (
    NamespacedComponent,
    container_resources,
    container_security,
    pod_security,
    rolling_update,
    secret_digest,
)
from components.settings.model import Settings

CONFIG_DIR = "/etc/kafka-mirror"
PROPERTIES_FILE = "mm2.properties"
SOURCE_PASSWORD_KEY = "mirror-source"
"""The kafka-users Secret's key of the primary's mirror password (the credential kafkaMirrorSourcePassword)."""


@dataclass(frozen=True)
class MirrorMakerArgs:
    """Inputs of the MirrorMaker 2 component."""

    settings: Settings
    """The validated stack settings; settings.mirror is set."""
    namespace: pulumi.Input[str]
    """Namespace to deploy into (an Output, so objects wait for the namespace)."""
    instance: str
    """The stack name, for app.kubernetes.io/instance."""
    passwords: list[pulumi.Output[str]]
    """The mirror's two passwords (this site's and the primary's): a new value rolls the pod, which reads them at
    start."""


class MirrorMaker(NamespacedComponent):
    """MirrorMaker 2 mirroring the primary's topics into this site's Kafka, its lag served to Prometheus."""

    def __init__(self, name: str, args: MirrorMakerArgs, opts: pulumi.ResourceOptions | None = None):
        mirror = args.settings.mirror
        assert mirror is not None, "the program declares the mirror only when settings.mirror is set"
        identity = (names.KAFKA_MIRROR, "mirror", args.instance, mirror.image)
        super().__init__("qestack:data:KafkaMirror", name, args.namespace, identity, opts)
        files = {
            PROPERTIES_FILE: mirror_properties(args.settings.kafka, mirror, bootstrap_address(args.settings.namespace)),
            LOG4J_FILE: log4j_properties(),
            CONFIG_FILE: mirror_metrics_config(),
        }
        config = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=self._metadata(f"{names.KAFKA_MIRROR}-config"), data=files, opts=self._opts()
        )
        account = self._service_account(name, names.KAFKA_MIRROR)
        # One replica, rolled with none beside it: one process holds the mirror's Connect group, and a second
        # would only rebalance the one task (tasks.max=1). The mirror's offsets live in its topics on this
        # site, so a new pod resumes where the old one stopped.
        spec = PodSpecArgs(
            service_account_name=account,
            automount_service_account_token=False,
            security_context=pod_security(KAFKA_USER),
            init_containers=[metrics_agent(args.settings)],
            containers=[self._container(args.settings)],
            volumes=[
                VolumeArgs(name="config", config_map=ConfigMapVolumeSourceArgs(name=config.metadata.name)),
                VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="256Mi")),
                VolumeArgs(name="agent", empty_dir=EmptyDirVolumeSourceArgs(size_limit="16Mi")),
            ],
        )
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=self._metadata(names.KAFKA_MIRROR),
            spec=DeploymentSpecArgs(
                replicas=1,
                strategy=rolling_update(0),
                selector=LabelSelectorArgs(match_labels=self._selector),
                template=self._pod_template(spec, tuple(files.values()), secret_config=secret_digest(args.passwords)),
            ),
            opts=self._opts(),
        )
        self.register_outputs({"user": MIRROR_PRINCIPAL, "topics": list(mirror.topics)})

    def _container(self, settings: Settings) -> ContainerArgs:
        """connect-mirror-maker on the mounted mm2.properties, both passwords from the Secret kafka-users."""
        mirror = settings.mirror
        assert mirror is not None
        heap = heap_megabytes(mirror.resources.limits.memory, HEAP_FRACTION)
        metrics = TCPSocketActionArgs(port="metrics")
        return ContainerArgs(
            name="mirror",
            image=mirror.image,
            command=[f"{KAFKA_HOME}/bin/connect-mirror-maker.sh", f"{CONFIG_DIR}/{PROPERTIES_FILE}"],
            env=[
                password_env(MIRROR_PRINCIPAL, TARGET_PASSWORD_ENV),
                password_env(SOURCE_PASSWORD_KEY, SOURCE_PASSWORD_ENV),
                EnvVarArgs(name="LOG_DIR", value="/tmp/logs"),
                EnvVarArgs(name="KAFKA_LOG4J_OPTS", value=f"-Dlog4j.configuration=file:{CONFIG_DIR}/{LOG4J_FILE}"),
                EnvVarArgs(name="KAFKA_HEAP_OPTS", value=f"-Xms{heap}m -Xmx{heap}m"),
                EnvVarArgs(
                    name="KAFKA_OPTS",
                    value=agent_option(
                        f"{AGENT_DIR}/{AGENT_FILE}", names.JMX_METRICS_PORT, f"{CONFIG_DIR}/{CONFIG_FILE}"
                    ),
                ),
            ],
            ports=[ContainerPortArgs(name="metrics", container_port=names.JMX_METRICS_PORT)],
            resources=container_resources(mirror.resources),
            security_context=container_security(),
            # The agent listens once the JVM runs. Dedicated mode serves no REST API to ask whether the
            # connectors run: a stopped flow shows as KafkaMirrorBehind (its latency) and the lag check of verify.
            startup_probe=ProbeArgs(tcp_socket=metrics, period_seconds=5, failure_threshold=24),
            readiness_probe=ProbeArgs(tcp_socket=metrics, period_seconds=10),
            liveness_probe=ProbeArgs(tcp_socket=metrics, period_seconds=20, failure_threshold=3),
            volume_mounts=[
                VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
                VolumeMountArgs(name="tmp", mount_path="/tmp"),
                VolumeMountArgs(name="agent", mount_path=AGENT_DIR, read_only=True),
            ],
        )
