"""Prometheus: a StatefulSet with the stack's scrape config and rules, and read-only discovery RBAC.

Highly available, two identical replicas scrape the same targets into their own volumes and evaluate
the same rules; each sends its alerts to every Alertmanager, which notifies once. Nothing merges their
data: Grafana reads one of them through the Service (docs/operations.md, deduplicating).
"""

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgs
from pulumi_kubernetes.core.v1 import (
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    KeyToPathArgs,
    PodSpecArgs,
    SecretVolumeSourceArgs,
    ServicePortArgs,
    ServiceSpecArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.rbac.v1 import PolicyRuleArgs, RoleRefArgs, SubjectArgs

from components import names
from components.observability.alertmanager.config import peer_hosts
from components.observability.prometheus.alert_rules import RULE_FILE, rule_file
from components.observability.prometheus.config import (
    ALERTMANAGER_PORT,
    BACKUP_PASSWORD_DIR,
    PROMETHEUS_PORT,
    REPLICA_FLAGS,
    prometheus_config,
)
from components.platform.workloads import (
    NamespacedComponent,
    StackArgs,
    container_resources,
    container_security,
    data_claim,
    disruption_budget,
    http_probes,
    placement,
    pod_name_env,
    pod_security,
)
from components.security.credential_catalog import CLICKHOUSE_BACKUP_SECRET

NOBODY = 65534
"""The prom/* images run as nobody."""
CONFIG_DIR = "/etc/prometheus"
DATA_DIR = "/prometheus"


class Prometheus(NamespacedComponent):
    """Prometheus scraping the namespace's pods and the nodes' kubelets, alerting through Alertmanager."""

    url: str
    """In-cluster URL."""

    def __init__(self, name: str, args: StackArgs, opts: pulumi.ResourceOptions | None = None):
        settings = args.settings
        prometheus = settings.monitoring.prometheus
        identity = (names.PROMETHEUS, "server", args.instance, prometheus.image)
        super().__init__("qestack:observability:Prometheus", name, args.namespace, identity, opts)
        self.url = f"http://{names.service_host(names.PROMETHEUS, settings.namespace)}:{PROMETHEUS_PORT}"
        files = {
            "prometheus.yml": prometheus_config(
                settings,
                rule_files=[f"{CONFIG_DIR}/{RULE_FILE}"],
                alertmanagers=[f"{host}:{ALERTMANAGER_PORT}" for host in peer_hosts(settings)],
            ),
            RULE_FILE: rule_file(settings),
        }
        config = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=self._metadata(names.PROMETHEUS), data=files, opts=self._opts()
        )
        account = self._declare_rbac(name, settings.namespace)
        k8s.core.v1.Service(
            f"{name}-service",
            metadata=self._metadata(names.PROMETHEUS),
            # Each client stays on one replica: two replicas' series differ by a scrape's timing, and a
            # dashboard alternating between them would jitter.
            spec=ServiceSpecArgs(
                selector=self._selector,
                ports=[ServicePortArgs(name="http", port=PROMETHEUS_PORT, target_port="http")],
                session_affinity="ClientIP",
            ),
            opts=self._opts(),
        )
        backups = settings.clickhouse.backup.enabled
        container = ContainerArgs(
            name="prometheus",
            image=prometheus.image,
            args=[
                f"--config.file={CONFIG_DIR}/prometheus.yml",
                f"--storage.tsdb.path={DATA_DIR}",
                f"--storage.tsdb.retention.time={prometheus.retention}",
                f"--web.listen-address=:{PROMETHEUS_PORT}",
                *REPLICA_FLAGS,
            ],
            env=[pod_name_env()],
            ports=[ContainerPortArgs(name="http", container_port=PROMETHEUS_PORT)],
            resources=container_resources(prometheus.resources),
            security_context=container_security(),
            # Replaying the write-ahead log after a restart can take minutes.
            **http_probes("http", "/-/ready", "/-/healthy", startup_seconds=600),
            volume_mounts=[
                VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
                VolumeMountArgs(name="data", mount_path=DATA_DIR),
                *(
                    [VolumeMountArgs(name="backup-api", mount_path=BACKUP_PASSWORD_DIR, read_only=True)]
                    if backups
                    else []
                ),
            ],
        )
        volumes = [VolumeArgs(name="config", config_map=ConfigMapVolumeSourceArgs(name=config.metadata.name))]
        if backups:
            # Only the backup API's password, as the file the clickhouse-backup job's basic_auth reads.
            volumes.append(
                VolumeArgs(
                    name="backup-api",
                    secret=SecretVolumeSourceArgs(
                        secret_name=CLICKHOUSE_BACKUP_SECRET,
                        items=[KeyToPathArgs(key="api-password", path="api-password")],
                    ),
                )
            )
        claims = []
        if prometheus.storage is None:
            volumes.append(VolumeArgs(name="data", empty_dir=EmptyDirVolumeSourceArgs(size_limit="2Gi")))
        else:
            claims.append(data_claim(settings, self._labels, prometheus.storage.size))
        self._stateful_set(
            name,
            names.PROMETHEUS,
            StatefulSetSpecArgs(
                service_name=names.PROMETHEUS,
                replicas=prometheus.replicas,
                selector=LabelSelectorArgs(match_labels=self._selector),
                # A changed config or rule rolls the pod.
                template=self._pod_template(
                    PodSpecArgs(
                        service_account_name=account,
                        automount_service_account_token=True,
                        security_context=pod_security(NOBODY),
                        containers=[container],
                        volumes=volumes,
                        **placement(settings, self._selector, one_per_host=True),
                    ),
                    config=tuple(files.values()),
                ),
                volume_claim_templates=claims or None,
            ),
            replicas=prometheus.replicas,
            claim_size=prometheus.storage.size if prometheus.storage else None,
        )
        if settings.high_availability:
            disruption_budget(names.PROMETHEUS, args.namespace, self._labels, self._selector, self._opts())
        self.register_outputs({"url": self.url})

    def _declare_rbac(self, name: str, namespace: str) -> pulumi.Output[str]:
        """Read-only discovery of our pods and services, and nodes and their metrics cluster-wide; the account."""
        discovery = PolicyRuleArgs(
            api_groups=[""], resources=["pods", "services", "endpoints"], verbs=["get", "list", "watch"]
        )
        account = self._account_with_role(name, names.PROMETHEUS, [discovery], "discovery")
        # Cluster-scoped: named after the namespace, so two stacks in one cluster never collide.
        cluster_name = f"{namespace}-{names.PROMETHEUS}"
        cluster_metadata = ObjectMetaArgs(name=cluster_name, labels=self._labels)
        k8s.rbac.v1.ClusterRole(
            f"{name}-nodes",
            metadata=cluster_metadata,
            rules=[
                PolicyRuleArgs(api_groups=[""], resources=["nodes"], verbs=["get", "list", "watch"]),
                PolicyRuleArgs(api_groups=[""], resources=["nodes/metrics"], verbs=["get"]),
            ],
            opts=self._opts(),
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-nodes",
            metadata=cluster_metadata,
            role_ref=RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=cluster_name),
            subjects=[SubjectArgs(kind="ServiceAccount", name=names.PROMETHEUS, namespace=self._namespace)],
            opts=self._opts(),
        )
        return account
