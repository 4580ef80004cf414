"""Alertmanager: a StatefulSet of gossiping peers routing by severity; its config is a Secret (it holds tokens).

A StatefulSet, not a Deployment: each replica keeps its name (alertmanager-0, -1, -2), so the peers list
one another, and Prometheus lists them all, by fixed DNS names through the headless Service. Silences
and the notification log live in an emptyDir: a restarted pod starts empty and the surviving peers
hand it their state when it rejoins (a single replica loses them with its pod).
"""

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgs
from pulumi_kubernetes.core.v1 import (
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    EnvVarSourceArgs,
    ObjectFieldSelectorArgs,
    PodSpecArgs,
    SecretVolumeSourceArgs,
    ServicePortArgs,
    ServiceSpecArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs

from components import names
from components.observability.alertmanager.config import (
    alertmanager_args,
    alertmanager_config,
    in_cluster,
)
from components.observability.prometheus.component import NOBODY
from components.observability.prometheus.config import ALERTMANAGER_PORT
from components.platform.workloads import (
    NamespacedComponent,
    StackArgs,
    container_resources,
    container_security,
    disruption_budget,
    http_probes,
    placement,
    pod_security,
)

CONFIG_DIR = "/etc/alertmanager"
DATA_DIR = "/alertmanager"
GOSSIP_PORTS = (("gossip-tcp", "TCP"), ("gossip-udp", "UDP"))
"""memberlist gossips over UDP and pushes full state over TCP, on the same port."""


class Alertmanager(NamespacedComponent):
    """Alertmanager replicas gossiping silences and the notification log, so each alert is notified once."""

    def __init__(self, name: str, args: StackArgs, opts: pulumi.ResourceOptions | None = None):
        settings = args.settings
        alertmanager = settings.monitoring.alertmanager
        identity = (names.ALERTMANAGER, "alerting", args.instance, alertmanager.image)
        super().__init__("qestack:observability:Alertmanager", name, args.namespace, identity, opts)
        config = alertmanager_config(settings)
        secret = k8s.core.v1.Secret(
            f"{name}-config",
            metadata=self._metadata(names.ALERTMANAGER),
            type="Opaque",
            string_data={"alertmanager.yml": pulumi.Output.secret(config)},
            opts=self._opts(),
        )
        self._http_service(name, names.ALERTMANAGER, ALERTMANAGER_PORT)
        cluster = in_cluster(settings)
        self._peers_service(name, gossip=cluster is not None)
        container = ContainerArgs(
            name="alertmanager",
            image=alertmanager.image,
            args=alertmanager_args(
                config_file=f"{CONFIG_DIR}/alertmanager.yml",
                storage_path=DATA_DIR,
                web=f":{ALERTMANAGER_PORT}",
                cluster=cluster,
            ),
            env=[
                EnvVarArgs(
                    name="POD_IP",
                    value_from=EnvVarSourceArgs(field_ref=ObjectFieldSelectorArgs(field_path="status.podIP")),
                )
            ]
            if cluster
            else None,
            ports=[
                ContainerPortArgs(name="http", container_port=ALERTMANAGER_PORT),
                *(
                    ContainerPortArgs(name=port, container_port=names.ALERTMANAGER_CLUSTER_PORT, protocol=protocol)
                    for port, protocol in (GOSSIP_PORTS if cluster else ())
                ),
            ],
            resources=container_resources(alertmanager.resources),
            security_context=container_security(),
            **http_probes("http", "/-/ready", "/-/healthy"),
            volume_mounts=[
                VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
                VolumeMountArgs(name="data", mount_path=DATA_DIR),
            ],
        )
        self._stateful_set(
            name,
            names.ALERTMANAGER,
            StatefulSetSpecArgs(
                service_name=names.ALERTMANAGER_PEERS,
                replicas=alertmanager.replicas,
                # The peers join whoever is up: no reason to start them one by one.
                pod_management_policy="Parallel",
                selector=LabelSelectorArgs(match_labels=self._selector),
                # A changed routing config rolls the peers one at a time, the highest ordinal first.
                template=self._pod_template(
                    PodSpecArgs(
                        service_account_name=self._service_account(name, names.ALERTMANAGER),
                        automount_service_account_token=False,
                        security_context=pod_security(NOBODY),
                        containers=[container],
                        volumes=[
                            VolumeArgs(name="config", secret=SecretVolumeSourceArgs(secret_name=secret.metadata.name)),
                            VolumeArgs(name="data", empty_dir=EmptyDirVolumeSourceArgs(size_limit="256Mi")),
                        ],
                        **placement(settings, self._selector, one_per_host=True),
                    ),
                    config=(config,),
                ),
            ),
            replicas=alertmanager.replicas,
            claim_size=None,
        )
        if settings.high_availability:
            disruption_budget(names.ALERTMANAGER, args.namespace, self._labels, self._selector, self._opts())
        self.register_outputs({})

    def _peers_service(self, name: str, gossip: bool) -> None:
        """The headless Service of the StatefulSet: a DNS name per replica, published before it is ready."""
        k8s.core.v1.Service(
            f"{name}-peers",
            metadata=self._metadata(names.ALERTMANAGER_PEERS),
            # A starting peer must resolve the others before it is ready: the cluster forms only then.
            spec=ServiceSpecArgs(
                cluster_ip="None",
                publish_not_ready_addresses=True,
                selector=self._selector,
                ports=[
                    ServicePortArgs(name="http", port=ALERTMANAGER_PORT, target_port="http"),
                    *(
                        ServicePortArgs(
                            name=port, port=names.ALERTMANAGER_CLUSTER_PORT, target_port=port, protocol=protocol
                        )
                        for port, protocol in (GOSSIP_PORTS if gossip else ())
                    ),
                ],
            ),
            opts=self._opts(),
        )
