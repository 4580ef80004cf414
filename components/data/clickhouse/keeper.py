"""ClickHouse Keeper: the Raft ensemble the replicated tables coordinate through (only with more than one server)."""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgs
from pulumi_kubernetes.core.v1 import (
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    HTTPGetActionArgs,
    PodSpecArgs,
    ProbeArgs,
    ServicePortArgs,
    ServiceSpecArgs,
    TCPSocketActionArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs

from components import names
from components.data.clickhouse.component import CLICKHOUSE_USER
from components.data.clickhouse.config import KEEPER_ID_ENV, keeper_config
from components.platform.workloads import (
    NamespacedComponent,
    container_resources,
    container_security,
    data_claim,
    disruption_budget,
    placement,
    pod_security,
)
from components.settings.model import Settings

CONFIG_DIR = "/etc/clickhouse-keeper"
CONFIG_FILE = "keeper.xml"
DATA_DIR = "/var/lib/clickhouse-keeper/"


@dataclass(frozen=True)
class KeeperArgs:
    """Inputs of the Keeper component."""

    settings: Settings
    """The validated stack settings."""
    namespace: pulumi.Input[str]
    """Namespace to deploy into."""
    instance: str
    """The stack name, for app.kubernetes.io/instance."""


class ClickHouseKeeper(NamespacedComponent):
    """An odd number of Keeper nodes, each with its own volume for the Raft log and snapshots."""

    statefulset: k8s.apps.v1.StatefulSet

    def __init__(self, name: str, args: KeeperArgs, opts: pulumi.ResourceOptions | None = None):
        settings = args.settings
        identity = (names.CLICKHOUSE_KEEPER, "keeper", args.instance, settings.clickhouse.image)
        super().__init__("qestack:data:ClickHouseKeeper", name, args.namespace, identity, opts)
        self._settings = settings
        document = keeper_config(settings, listen_host="0.0.0.0", data_path=DATA_DIR)
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=self._metadata(names.CLICKHOUSE_KEEPER_CONFIG),
            data={CONFIG_FILE: document},
            opts=self._opts(),
        )
        self._declare_service(name)
        self.statefulset = self._declare_statefulset(name, config, document)
        if settings.high_availability:
            disruption_budget(names.CLICKHOUSE_KEEPER, args.namespace, self._labels, self._selector, self._opts())
        self.register_outputs({"nodes": settings.clickhouse.keeper.replicas})

    def _declare_service(self, name: str) -> None:
        """The headless Service that names each node; it publishes nodes before they are ready (they elect a leader)."""
        k8s.core.v1.Service(
            f"{name}-headless",
            metadata=self._metadata(names.CLICKHOUSE_KEEPER_HEADLESS),
            spec=ServiceSpecArgs(
                cluster_ip="None",
                selector=self._selector,
                publish_not_ready_addresses=True,
                ports=[
                    ServicePortArgs(name="client", port=names.KEEPER_CLIENT_PORT, target_port="client"),
                    ServicePortArgs(name="raft", port=names.KEEPER_RAFT_PORT, target_port="raft"),
                    ServicePortArgs(name="metrics", port=names.KEEPER_METRICS_PORT, target_port="metrics"),
                ],
            ),
            opts=self._opts(),
        )

    def _declare_statefulset(self, name: str, config: k8s.core.v1.ConfigMap, document: str) -> k8s.apps.v1.StatefulSet:
        """The nodes, started together (a Raft quorum cannot form one node at a time), one per host in HA."""
        settings = self._settings
        keeper = settings.clickhouse.keeper
        start = (
            f'export {KEEPER_ID_ENV}="$((${{HOSTNAME##*-}} + 1))"; '
            f"exec /usr/bin/clickhouse keeper --config-file={CONFIG_DIR}/{CONFIG_FILE}"
        )
        ready = HTTPGetActionArgs(path="/ready", port="http-control")
        container = ContainerArgs(
            name="keeper",
            image=settings.clickhouse.image,
            command=["/bin/sh", "-c", start],
            ports=[
                ContainerPortArgs(name="client", container_port=names.KEEPER_CLIENT_PORT),
                ContainerPortArgs(name="raft", container_port=names.KEEPER_RAFT_PORT),
                ContainerPortArgs(name="metrics", container_port=names.KEEPER_METRICS_PORT),
                ContainerPortArgs(name="http-control", container_port=names.KEEPER_HTTP_PORT),
            ],
            resources=container_resources(keeper.resources),
            security_context=container_security(),
            # Ready: in a quorum that has a leader. Alive: the client port answers (a node without a quorum
            # is waiting for its peers, and restarting it would not help).
            startup_probe=ProbeArgs(
                tcp_socket=TCPSocketActionArgs(port="client"), period_seconds=5, failure_threshold=60
            ),
            readiness_probe=ProbeArgs(http_get=ready, period_seconds=5, timeout_seconds=3),
            liveness_probe=ProbeArgs(
                tcp_socket=TCPSocketActionArgs(port="client"), period_seconds=20, failure_threshold=3
            ),
            volume_mounts=[
                VolumeMountArgs(name="data", mount_path=DATA_DIR),
                VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
                VolumeMountArgs(name="tmp", mount_path="/tmp"),
            ],
        )
        return self._stateful_set(
            name,
            names.CLICKHOUSE_KEEPER,
            StatefulSetSpecArgs(
                service_name=names.CLICKHOUSE_KEEPER_HEADLESS,
                replicas=keeper.replicas,
                pod_management_policy="Parallel",
                selector=LabelSelectorArgs(match_labels=self._selector),
                template=self._pod_template(
                    PodSpecArgs(
                        service_account_name=self._service_account(name, names.CLICKHOUSE_KEEPER),
                        automount_service_account_token=False,
                        security_context=pod_security(CLICKHOUSE_USER),
                        termination_grace_period_seconds=30,
                        **placement(settings, self._selector, one_per_host=True),
                        containers=[container],
                        volumes=[
                            VolumeArgs(name="config", config_map=ConfigMapVolumeSourceArgs(name=config.metadata.name)),
                            VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="64Mi")),
                        ],
                    ),
                    config=(document,),
                ),
                volume_claim_templates=[data_claim(settings, self._labels, keeper.storage.size)],
            ),
            replicas=keeper.replicas,
            claim_size=keeper.storage.size,
        )
