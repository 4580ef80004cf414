"""Grafana: one replica with the Prometheus datasource and the stack's dashboards provisioned from files."""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import (
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    KeyToPathArgs,
    PodSpecArgs,
    SecretVolumeSourceArgs,
    VolumeArgs,
    VolumeMountArgs,
)

from components import names
from components.observability.grafana.config import GRAFANA_PORT, Paths, dashboard_providers, datasources, grafana_ini
from components.observability.grafana.dashboards import dashboard_files
from components.platform.budget import rollout_surge
from components.platform.workloads import (
    NamespacedComponent,
    StackArgs,
    container_resources,
    container_security,
    http_probes,
    pod_security,
)
from components.security.credential_catalog import CREDENTIALS, GRAFANA_ADMIN_SECRET

GRAFANA_USER = 472
"""The grafana/grafana image's user."""
CONFIG_DIR = "/etc/grafana"
PATHS = Paths()
ADMIN_PASSWORD_KEY = next(c.key for c in CREDENTIALS if c.secret == GRAFANA_ADMIN_SECRET)


@dataclass(frozen=True)
class GrafanaArgs(StackArgs):
    """The stack, and the Prometheus its dashboards query."""

    prometheus_url: str
    """URL of the Prometheus Service."""


class Grafana(NamespacedComponent):
    """Grafana behind a password, its dashboards read-only and re-read from the ConfigMap when it changes."""

    url: str
    """In-cluster URL."""

    def __init__(self, name: str, args: GrafanaArgs, opts: pulumi.ResourceOptions | None = None):
        settings = args.settings
        grafana = settings.monitoring.grafana
        identity = (names.GRAFANA, "dashboards", args.instance, grafana.image)
        super().__init__("qestack:observability:Grafana", name, args.namespace, identity, opts)
        self.url = f"http://{names.service_host(names.GRAFANA, settings.namespace)}:{GRAFANA_PORT}"
        config_files = {
            "grafana.ini": grafana_ini(PATHS),
            "datasources.yaml": datasources(settings, args.prometheus_url),
            "dashboards.yaml": dashboard_providers(PATHS),
        }
        boards = dashboard_files(settings)
        config = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=self._metadata(names.GRAFANA), data=config_files, opts=self._opts()
        )
        dashboards = k8s.core.v1.ConfigMap(
            f"{name}-dashboards",
            metadata=self._metadata(f"{names.GRAFANA}-dashboards"),
            data=boards,
            opts=self._opts(),
        )
        self._http_service(name, names.GRAFANA, GRAFANA_PORT, args.settings.network)
        # One file each (subPath): the image's other provisioning directories stay as they are.
        config_mounts = [
            VolumeMountArgs(name="config", mount_path=path, sub_path=key, read_only=True)
            for key, path in (
                ("grafana.ini", f"{CONFIG_DIR}/grafana.ini"),
                ("datasources.yaml", f"{PATHS.provisioning}/datasources/datasources.yaml"),
                ("dashboards.yaml", f"{PATHS.provisioning}/dashboards/dashboards.yaml"),
            )
        ]
        secret_dir, password_file = PATHS.admin_password_file.rsplit("/", 1)
        container = ContainerArgs(
            name="grafana",
            image=grafana.image,
            ports=[ContainerPortArgs(name="http", container_port=GRAFANA_PORT)],
            resources=container_resources(grafana.resources),
            security_context=container_security(),
            # Database migrations at the first start of an empty database take a while.
            **http_probes("http", "/api/health", "/api/health", startup_seconds=180),
            volume_mounts=[
                *config_mounts,
                VolumeMountArgs(name="dashboards", mount_path=PATHS.dashboards, read_only=True),
                VolumeMountArgs(name="admin", mount_path=secret_dir, read_only=True),
                VolumeMountArgs(name="data", mount_path=PATHS.data),
                VolumeMountArgs(name="tmp", mount_path="/tmp"),
            ],
        )
        # subPath files never refresh: the config's hash rolls the pod. Dashboards are a whole
        # directory, re-read in place (updateIntervalSeconds).
        self._one_replica(
            name,
            names.GRAFANA,
            PodSpecArgs(
                service_account_name=self._service_account(name, names.GRAFANA),
                automount_service_account_token=False,
                security_context=pod_security(GRAFANA_USER),
                containers=[container],
                volumes=[
                    VolumeArgs(name="config", config_map=ConfigMapVolumeSourceArgs(name=config.metadata.name)),
                    VolumeArgs(name="dashboards", config_map=ConfigMapVolumeSourceArgs(name=dashboards.metadata.name)),
                    VolumeArgs(
                        name="admin",
                        secret=SecretVolumeSourceArgs(
                            secret_name=GRAFANA_ADMIN_SECRET,
                            items=[KeyToPathArgs(key=ADMIN_PASSWORD_KEY, path=password_file)],
                        ),
                    ),
                    # Users, sessions and preferences: disposable, everything shared is provisioned.
                    VolumeArgs(name="data", empty_dir=EmptyDirVolumeSourceArgs(size_limit="1Gi")),
                    VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="64Mi")),
                ],
            ),
            surge=rollout_surge(settings),
            config=tuple(config_files.values()),
        )
        self.register_outputs({"url": self.url})
