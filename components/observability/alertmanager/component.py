"""Alertmanager: one replica routing by severity; its config is a Secret (webhook URLs carry tokens)."""

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import (
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    PodSpecArgs,
    SecretVolumeSourceArgs,
    VolumeArgs,
    VolumeMountArgs,
)

from components import names
from components.observability.alertmanager.config import alertmanager_config
from components.observability.prometheus.component import NOBODY
from components.observability.prometheus.config import ALERTMANAGER_PORT
from components.platform.budget import rollout_surge
from components.platform.workloads import (
    NamespacedComponent,
    StackArgs,
    container_resources,
    container_security,
    http_probes,
    pod_security,
)

CONFIG_DIR = "/etc/alertmanager"
DATA_DIR = "/alertmanager"


class Alertmanager(NamespacedComponent):
    """A single Alertmanager (silences and notification state live in an emptyDir)."""

    def __init__(self, name: str, args: StackArgs, opts: pulumi.ResourceOptions | None = None):
        alertmanager = args.settings.monitoring.alertmanager
        identity = (names.ALERTMANAGER, "alerting", args.instance, alertmanager.image)
        super().__init__("qestack:observability:Alertmanager", name, args.namespace, identity, opts)
        config = alertmanager_config(args.settings)
        secret = k8s.core.v1.Secret(
            f"{name}-config",
            metadata=self._metadata(names.ALERTMANAGER),
            type="Opaque",
            string_data={"alertmanager.yml": pulumi.Output.secret(config)},
            opts=self._opts(),
        )
        self._http_service(name, names.ALERTMANAGER, ALERTMANAGER_PORT)
        container = ContainerArgs(
            name="alertmanager",
            image=alertmanager.image,
            args=[
                f"--config.file={CONFIG_DIR}/alertmanager.yml",
                f"--storage.path={DATA_DIR}",
                f"--web.listen-address=:{ALERTMANAGER_PORT}",
                # One replica: no gossip peers to find.
                "--cluster.listen-address=",
            ],
            ports=[ContainerPortArgs(name="http", container_port=ALERTMANAGER_PORT)],
            resources=container_resources(alertmanager.resources),
            security_context=container_security(),
            **http_probes("http", "/-/ready", "/-/healthy"),
            volume_mounts=[
                VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
                VolumeMountArgs(name="data", mount_path=DATA_DIR),
            ],
        )
        self._one_replica(
            name,
            names.ALERTMANAGER,
            PodSpecArgs(
                service_account_name=self._service_account(name, names.ALERTMANAGER),
                automount_service_account_token=False,
                security_context=pod_security(NOBODY),
                containers=[container],
                volumes=[
                    VolumeArgs(name="config", secret=SecretVolumeSourceArgs(secret_name=secret.metadata.name)),
                    VolumeArgs(name="data", empty_dir=EmptyDirVolumeSourceArgs(size_limit="256Mi")),
                ],
            ),
            surge=rollout_surge(args.settings),
            config=(config,),
        )
        self.register_outputs({})
