"""prometheus.yml as a pure function: what is scraped, how targets are found, where alerts go.

In the cluster, targets are found through the Kubernetes API (pods of our namespace only, kept by
their app.kubernetes.io/name label and their container port's name; nodes for the kubelet and
cAdvisor). Given static targets instead, the same jobs, labels and relabelling scrape fixed
addresses: that is how the tests run it against real servers on loopback.

Every replica runs the same file: its `replica` external label is its pod name, expanded from the
environment at load time (`--enable-feature=expand-external-labels`, in Prometheus since 2.27), and
dropped from the alerts it sends, so the Alertmanager cluster sees the replicas' alerts as one.
"""

from dataclasses import dataclass

import yaml

from components import names
from components.data.clickhouse.backup import API_USER
from components.settings.model import Settings

PROMETHEUS_PORT = names.PROMETHEUS_PORT
ALERTMANAGER_PORT = names.ALERTMANAGER_PORT
KUBE_STATE_METRICS_PORT = names.KUBE_STATE_METRICS_PORT
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"

# cAdvisor and kubelet series kept: the ones the dashboards and alerts use, for our namespace only.
CADVISOR_METRICS = (
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "container_cpu_cfs_throttled_periods_total",
    "container_cpu_cfs_periods_total",
)
KUBELET_METRICS = ("kubelet_volume_stats_available_bytes", "kubelet_volume_stats_capacity_bytes")
REPLICA_LABEL = "replica"
"""External label naming the Prometheus replica that holds a series (deduplicate on it)."""
REPLICA_FLAGS = ("--enable-feature=expand-external-labels",)
"""What makes Prometheus expand ${POD_NAME} in the external labels."""


@dataclass(frozen=True, kw_only=True)
class PodJob:
    """Pods scraped as one job: the workloads (app.kubernetes.io/name) and the container port's name."""

    job: str
    workloads: tuple[str, ...]
    port: str
    path: str = "/metrics"
    honor_labels: bool = False
    """Keep the target's own pod/namespace labels (kube-state-metrics reports on other pods)."""
    password_file: str | None = None
    """Sign in with basic auth as the backup API's user, the password read from this file."""


POD_JOBS = (
    PodJob(job="presto", workloads=(names.PRESTO_COORDINATOR, names.PRESTO_WORKER), port="metrics"),
    PodJob(job="kafka", workloads=(names.KAFKA,), port="metrics"),
    PodJob(job="clickhouse", workloads=(names.CLICKHOUSE,), port="metrics"),
    # Keeper runs only where ClickHouse has more than one server: elsewhere the job has no target.
    PodJob(job="clickhouse-keeper", workloads=(names.CLICKHOUSE_KEEPER,), port="metrics"),
    PodJob(job="alertmanager", workloads=(names.ALERTMANAGER,), port="http"),
    PodJob(job="grafana", workloads=(names.GRAFANA,), port="http"),
    PodJob(job="kube-state-metrics", workloads=(names.KUBE_STATE_METRICS,), port="http-metrics", honor_labels=True),
)


BACKUP_PASSWORD_DIR = "/etc/prometheus/clickhouse-backup"
"""Where Prometheus's pods mount the backup API's password (the clickhouse-backup Secret's api-password)."""
BACKUP_JOB = PodJob(
    job="clickhouse-backup",
    workloads=(names.CLICKHOUSE,),
    port="backup-api",
    password_file=f"{BACKUP_PASSWORD_DIR}/api-password",
)
"""The backup sidecars beside ClickHouse (with clickhouse.backup.enabled): their API asks for a login, /metrics too."""
MIRROR_JOB = PodJob(job="kafka-mirror", workloads=(names.KAFKA_MIRROR,), port="metrics")
"""MirrorMaker 2's JMX exporter agent on a DR stack (with mirror set): its lag (mirror.MIRROR_RULES)."""


@dataclass(frozen=True)
class StaticTarget:
    """A fixed target of a pod job, with the labels its pod would have given it."""

    address: str
    pod: str
    component: str


def _pod_job(job: PodJob, namespace: str, static: list[StaticTarget] | None) -> dict:
    """One pod job, discovered in the namespace or given statically."""
    config: dict = {"job_name": job.job, "metrics_path": job.path, "honor_labels": job.honor_labels}
    if job.password_file:
        config["basic_auth"] = {"username": API_USER, "password_file": job.password_file}
    if static is not None:
        config["static_configs"] = [
            {"targets": [t.address], "labels": {"pod": t.pod, "component": t.component}} for t in static
        ]
        return config
    meta = "__meta_kubernetes_pod_"
    config["kubernetes_sd_configs"] = [{"role": "pod", "namespaces": {"names": [namespace]}}]
    config["relabel_configs"] = [
        {
            "source_labels": [f"{meta}label_app_kubernetes_io_name"],
            "regex": "|".join(job.workloads),
            "action": "keep",
        },
        {"source_labels": [f"{meta}container_port_name"], "regex": job.port, "action": "keep"},
        {"source_labels": [f"{meta}name"], "target_label": "pod"},
        {"source_labels": [f"{meta}label_app_kubernetes_io_component"], "target_label": "component"},
    ]
    return config


def _node_job(job: str, path: str, keep: tuple[str, ...], namespace: str, account: str) -> dict:
    """A kubelet endpoint of every node, with this service account's token, our namespace's series only."""
    return {
        "job_name": job,
        "scheme": "https",
        "metrics_path": path,
        "kubernetes_sd_configs": [{"role": "node"}],
        "authorization": {"credentials_file": f"{account}/token"},
        # Kubelets serve self-signed certificates on most clusters (minikube's included).
        "tls_config": {"ca_file": f"{account}/ca.crt", "insecure_skip_verify": True},
        "relabel_configs": [{"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"}],
        "metric_relabel_configs": [
            {"source_labels": ["__name__"], "regex": "|".join(keep), "action": "keep"},
            {"source_labels": ["namespace"], "regex": namespace, "action": "keep"},
        ],
    }


def prometheus_config(
    settings: Settings,
    *,
    rule_files: list[str],
    alertmanagers: list[str],
    static: dict[str, list[StaticTarget]] | None = None,
    itself: str = f"localhost:{PROMETHEUS_PORT}",
    service_account: str = SERVICE_ACCOUNT,
) -> str:
    """prometheus.yml. With static targets (by job), pod jobs scrape them and node jobs are left out."""
    prometheus = settings.monitoring.prometheus
    namespace = settings.namespace
    jobs = [{"job_name": "prometheus", "static_configs": [{"targets": [itself]}]}]
    pod_jobs = (
        *POD_JOBS,
        *((BACKUP_JOB,) if settings.clickhouse.backup.enabled else ()),
        *((MIRROR_JOB,) if settings.mirror is not None else ()),
    )
    jobs += [_pod_job(job, namespace, None if static is None else static.get(job.job, [])) for job in pod_jobs]
    if static is None:
        jobs += [
            _node_job("kubelet-cadvisor", "/metrics/cadvisor", CADVISOR_METRICS, namespace, service_account),
            _node_job("kubelet", "/metrics", KUBELET_METRICS, namespace, service_account),
        ]
    config = {
        "global": {
            "scrape_interval": prometheus.scrape_interval,
            "evaluation_interval": prometheus.scrape_interval,
            "external_labels": {"namespace": namespace, REPLICA_LABEL: "${POD_NAME}"},
        },
        "alerting": {
            "alert_relabel_configs": [{"action": "labeldrop", "regex": REPLICA_LABEL}],
            # Every Alertmanager, never the Service in front of them: they do not share alerts.
            "alertmanagers": [{"static_configs": [{"targets": alertmanagers}]}],
        },
        "rule_files": rule_files,
        "scrape_configs": jobs,
    }
    return yaml.safe_dump(config, sort_keys=False)
