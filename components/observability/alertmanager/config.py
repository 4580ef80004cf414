"""alertmanager.yml and the cluster flags as pure functions: route by severity, gossip with the peers.

The safe default: a severity with no webhook goes to a receiver with no integration, so its alerts
are kept and shown in Alertmanager (and checked by verify) but sent nowhere; nothing is sent to an
address nobody configured.

Several replicas form one gossip cluster (memberlist, over TCP and UDP): they share silences and the
notification log, so the first peer notifies and the others, finding the notification logged, do not.
They do not share alerts: every Prometheus sends every alert to every peer.
Ref: https://github.com/prometheus/alertmanager#high-availability
"""

from dataclasses import dataclass

import yaml

from components import names
from components.settings.model import Settings

SEVERITIES = ("critical", "warning")


@dataclass(frozen=True, kw_only=True)
class Cluster:
    """Where one replica gossips: its listen and advertised addresses, and every peer's."""

    listen: str
    advertise: str
    peers: tuple[str, ...]


def peer_hosts(settings: Settings) -> list[str]:
    """Every replica's stable DNS name, through the headless Service (alertmanager-0.alertmanager-peers...)."""
    service = names.service_host(names.ALERTMANAGER_PEERS, settings.namespace)
    return [f"{names.ALERTMANAGER}-{ordinal}.{service}" for ordinal in range(settings.monitoring.alertmanager.replicas)]


def in_cluster(settings: Settings) -> Cluster | None:
    """The pods' gossip: on every address, advertising the pod's IP, with every replica as a peer; one replica: none."""
    if settings.monitoring.alertmanager.replicas == 1:
        return None
    return Cluster(
        listen=f"0.0.0.0:{names.ALERTMANAGER_CLUSTER_PORT}",
        # The pod IP from the downward API: Alertmanager's own guess takes private ranges only.
        advertise=f"$(POD_IP):{names.ALERTMANAGER_CLUSTER_PORT}",
        peers=tuple(f"{host}:{names.ALERTMANAGER_CLUSTER_PORT}" for host in peer_hosts(settings)),
    )


def alertmanager_args(*, config_file: str, storage_path: str, web: str, cluster: Cluster | None) -> list[str]:
    """The command line of one replica: its files, its web address and its gossip (disabled without a cluster)."""
    args = [f"--config.file={config_file}", f"--storage.path={storage_path}", f"--web.listen-address={web}"]
    if cluster is None:
        return [*args, "--cluster.listen-address="]
    return [
        *args,
        f"--cluster.listen-address={cluster.listen}",
        f"--cluster.advertise-address={cluster.advertise}",
        *(f"--cluster.peer={peer}" for peer in cluster.peers),
    ]


def alertmanager_config(settings: Settings) -> str:
    """Route critical and warning alerts to their receivers; a critical silences the warning of the same alert."""
    receivers = settings.monitoring.alertmanager.receivers
    routes = []
    configs: list[dict] = [{"name": "unrouted"}]
    for severity in SEVERITIES:
        url = getattr(receivers, severity)
        receiver: dict = {"name": severity}
        if url:
            receiver["webhook_configs"] = [{"url": url, "send_resolved": True}]
        configs.append(receiver)
        routes.append(
            {
                "receiver": severity,
                "matchers": [f'severity="{severity}"'],
                "repeat_interval": "1h" if severity == "critical" else "12h",
            }
        )
    config = {
        "route": {
            "receiver": "unrouted",
            "group_by": ["alertname", "namespace"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "12h",
            "routes": routes,
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["alertname", "namespace"],
            }
        ],
        "receivers": configs,
    }
    return yaml.safe_dump(config, sort_keys=False)
