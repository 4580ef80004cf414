"""Allowed network flows: one table, turned into NetworkPolicies on top of default-deny."""

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (
    IPBlockArgs,
    NetworkPolicyEgressRuleArgs,
    NetworkPolicyIngressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
)

from components import names
from components.platform.labels import common_labels, selector_labels
from components.settings.model import PROJECT, Clients, Settings


@dataclass(frozen=True, kw_only=True)
class Peer:
    """The pods of one workload, by their app.kubernetes.io/name and /component labels."""

    name: str
    component: str

    def slug(self) -> str:
        """A DNS-safe name for policies about this peer."""
        return self.name if self.component in self.name else f"{self.name}-{self.component}"


@dataclass(frozen=True, kw_only=True)
class Flow:
    """One allowed connection: who opens it, to whom, on which ports and protocols, and why."""

    source: Peer
    target: Peer
    ports: tuple[int, ...]
    reason: str
    protocols: tuple[Literal["TCP", "UDP"], ...] = ("TCP",)
    """Every port of the flow, for each of these protocols."""


KAFKA_BROKER = Peer(name=names.KAFKA, component="broker")
KAFKA_TOPIC_JOB = Peer(name=names.KAFKA, component="topic-bootstrap")
KAFKA_MIRROR = Peer(name=names.KAFKA_MIRROR, component="mirror")
CLICKHOUSE_SERVER = Peer(name=names.CLICKHOUSE, component="server")
CLICKHOUSE_SCHEMA_JOB = Peer(name=names.CLICKHOUSE, component="schema-bootstrap")
CLICKHOUSE_KEEPER = Peer(name=names.CLICKHOUSE_KEEPER, component="keeper")
CLICKHOUSE_BACKUP_JOB = Peer(name=names.CLICKHOUSE, component="backup")
CLICKHOUSE_RESTORE_DRILL = Peer(name=names.CLICKHOUSE_RESTORE_DRILL, component=names.CLICKHOUSE_RESTORE_DRILL_COMPONENT)
PRESTO_COORDINATOR = Peer(name=names.PRESTO_COORDINATOR, component="coordinator")
PRESTO_WORKER = Peer(name=names.PRESTO_WORKER, component="worker")
PRESTO = (PRESTO_COORDINATOR, PRESTO_WORKER)
PROMETHEUS = Peer(name=names.PROMETHEUS, component="server")
ALERTMANAGER = Peer(name=names.ALERTMANAGER, component="alerting")
KUBE_STATE_METRICS = Peer(name=names.KUBE_STATE_METRICS, component="exporter")
GRAFANA = Peer(name=names.GRAFANA, component="dashboards")
CLIENTS = Peer(name="clients", component="external")
"""Not pods of the stack: the namespaces and address ranges of settings.network.clients."""
DR_MIRROR = Peer(name="dr-mirror", component="external")
"""Not pods of the stack: a DR site's MirrorMaker 2, at the addresses of settings.kafka.mirrorCidrs."""
KEDA = Peer(name="keda", component="operator")
"""Not pods of the stack: KEDA's operator, in settings.presto.workers.autoscaling.kedaNamespace (the queue signal)."""

FLOWS: tuple[Flow, ...] = (
    Flow(
        source=KAFKA_BROKER,
        target=KAFKA_BROKER,
        ports=(names.KAFKA_CONTROLLER_PORT, names.KAFKA_INTERNAL_PORT),
        reason="the KRaft controller quorum and replication between brokers",
    ),
    Flow(
        source=KAFKA_TOPIC_JOB,
        target=KAFKA_BROKER,
        ports=(names.KAFKA_INTERNAL_PORT,),
        reason="the bootstrap Job creates the events topic (with scram, also the users and ACLs)",
    ),
    Flow(
        source=CLICKHOUSE_SERVER,
        target=KAFKA_BROKER,
        ports=(names.KAFKA_CLIENT_PORT,),
        reason="the Kafka engine consumes the events topic",
    ),
    Flow(
        source=CLICKHOUSE_SCHEMA_JOB,
        target=CLICKHOUSE_SERVER,
        ports=(names.CLICKHOUSE_NATIVE_PORT,),
        reason="the bootstrap Job applies the schema",
    ),
    Flow(
        source=PRESTO_WORKER,
        target=PRESTO_COORDINATOR,
        ports=(names.PRESTO_HTTPS_PORT,),
        reason="workers announce themselves to discovery",
    ),
    Flow(
        source=PRESTO_COORDINATOR,
        target=PRESTO_WORKER,
        ports=(names.PRESTO_HTTPS_PORT,),
        reason="the coordinator schedules tasks",
    ),
    Flow(
        source=PRESTO_WORKER,
        target=PRESTO_WORKER,
        ports=(names.PRESTO_HTTPS_PORT,),
        reason="workers exchange intermediate data",
    ),
    Flow(
        source=PRESTO_COORDINATOR,
        target=PRESTO_COORDINATOR,
        ports=(names.PRESTO_HTTPS_PORT,),
        reason="the coordinator's own tasks",
    ),
    Flow(
        source=CLICKHOUSE_SERVER,
        target=CLICKHOUSE_SERVER,
        ports=(names.CLICKHOUSE_NATIVE_PORT, names.CLICKHOUSE_INTERSERVER_PORT),
        reason="the Distributed table's reads and writes of other shards, and replicas fetching each other's parts",
    ),
    Flow(
        source=CLICKHOUSE_SERVER,
        target=CLICKHOUSE_KEEPER,
        ports=(names.KEEPER_CLIENT_PORT,),
        reason="replicated tables keep their log and metadata in Keeper",
    ),
    Flow(
        source=CLICKHOUSE_KEEPER,
        target=CLICKHOUSE_KEEPER,
        ports=(names.KEEPER_RAFT_PORT,),
        reason="Keeper's Raft: elections and the replicated log",
    ),
    *(
        Flow(source=PROMETHEUS, target=target, ports=(port,), reason=f"Prometheus scrapes {target.slug()}")
        for target, port in (
            (PRESTO_COORDINATOR, names.JMX_METRICS_PORT),
            (PRESTO_WORKER, names.JMX_METRICS_PORT),
            (KAFKA_BROKER, names.JMX_METRICS_PORT),
            (CLICKHOUSE_SERVER, names.CLICKHOUSE_METRICS_PORT),
            (CLICKHOUSE_KEEPER, names.KEEPER_METRICS_PORT),
            (KUBE_STATE_METRICS, names.KUBE_STATE_METRICS_PORT),
            (GRAFANA, names.GRAFANA_PORT),
        )
    ),
    Flow(
        source=PROMETHEUS,
        target=ALERTMANAGER,
        ports=(names.ALERTMANAGER_PORT,),
        reason="Prometheus sends alerts and scrapes Alertmanager",
    ),
    Flow(
        source=ALERTMANAGER,
        target=ALERTMANAGER,
        ports=(names.ALERTMANAGER_CLUSTER_PORT,),
        protocols=("TCP", "UDP"),
        reason="the peers gossip silences and the notification log (memberlist: UDP, and TCP for full state)",
    ),
    Flow(source=GRAFANA, target=PROMETHEUS, ports=(names.PROMETHEUS_PORT,), reason="dashboards query Prometheus"),
    *(
        Flow(source=node, target=target, ports=(port,), reason=reason)
        for node in PRESTO
        for target, port, reason in (
            (CLICKHOUSE_SERVER, names.CLICKHOUSE_HTTP_PORT, "the clickhouse catalog (JDBC over HTTP)"),
            (KAFKA_BROKER, names.KAFKA_PRESTO_PORT, "the kafka catalog reads the events topic"),
        )
    ),
    Flow(
        source=CLIENTS,
        target=PRESTO_COORDINATOR,
        ports=(names.PRESTO_HTTPS_PORT,),
        reason="clients query over HTTPS, with a password",
    ),
    Flow(source=CLIENTS, target=GRAFANA, ports=(names.GRAFANA_PORT,), reason="people read the dashboards"),
    Flow(
        source=KEDA,
        target=PROMETHEUS,
        ports=(names.PROMETHEUS_PORT,),
        reason="KEDA's operator reads the coordinator's queries, to scale the workers (the queue signal only)",
    ),
)


def backup_flows(settings: Settings) -> tuple[Flow, ...]:
    """With backups on: the scheduled Job drives each server's backup sidecar, and Prometheus scrapes the sidecars."""
    backup = settings.clickhouse.backup
    if not backup.enabled:
        return ()
    scheduled = (
        Flow(
            source=CLICKHOUSE_BACKUP_JOB,
            target=CLICKHOUSE_SERVER,
            ports=(names.CLICKHOUSE_BACKUP_PORT,),
            reason="the scheduled backup creates and uploads each shard's backup through its backup sidecar's API",
        ),
    )
    return (
        *(scheduled if backup.mode == "backup" else ()),
        Flow(
            source=PROMETHEUS,
            target=CLICKHOUSE_SERVER,
            ports=(names.CLICKHOUSE_BACKUP_PORT,),
            reason="Prometheus scrapes the backup sidecars' metrics",
        ),
    )


PRIMARY_MIRROR_FLOWS = (
    Flow(
        source=DR_MIRROR,
        target=KAFKA_BROKER,
        ports=(names.KAFKA_CLIENT_PORT,),
        reason="a DR site's MirrorMaker 2 reads the events topic as the read-only user `mirror`",
    ),
)
"""On a primary a DR site mirrors (kafka.mirrorCidrs): its mirror reads the brokers' CLIENT listener."""
DR_MIRROR_FLOWS = (
    Flow(
        source=KAFKA_MIRROR,
        target=KAFKA_BROKER,
        ports=(names.KAFKA_CLIENT_PORT,),
        reason="MirrorMaker 2 writes the mirrored topics, its own topics and the translated offsets here",
    ),
    Flow(
        source=PROMETHEUS,
        target=KAFKA_MIRROR,
        ports=(names.JMX_METRICS_PORT,),
        reason="Prometheus scrapes the mirror's lag (its JMX exporter agent)",
    ),
)
"""On a DR stack (mirror set): the mirror writes into this site's brokers, and Prometheus scrapes its metrics."""


def mirror_flows(settings: Settings) -> tuple[Flow, ...]:
    """The mirror's flows this stack allows: a DR stack's own, or a mirrored primary's."""
    if settings.mirror is not None:
        return DR_MIRROR_FLOWS
    return PRIMARY_MIRROR_FLOWS if settings.kafka.mirror_cidrs else ()


ANYWHERE = ("0.0.0.0/0",)


@dataclass(frozen=True, kw_only=True)
class Egress:
    """A connection out of the pod network (the API server, kubelets, webhooks): to these addresses."""

    source: Peer
    target: str
    ports: tuple[int, ...]
    reason: str
    cidrs: tuple[str, ...] = ANYWHERE


KUBELET_PORT = 10250
API_SERVER = "the API server (`network.apiServer`)"


def egress(settings: Settings) -> tuple[Egress, ...]:
    """The API server (where the settings say it listens), the kubelets, and Alertmanager's receivers (if any)."""
    api_server = settings.network.api_server
    ports_of_api, cidrs_of_api = tuple(api_server.ports), tuple(api_server.cidrs)
    store = settings.clickhouse.backup.object_store if settings.clickhouse.backup.enabled else None
    receivers = settings.monitoring.alertmanager.receivers
    urls = [url for url in (receivers.critical, receivers.warning) if url]
    ports = sorted({urlsplit(url).port or (443 if url.startswith("https") else 80) for url in urls})
    return (
        Egress(
            source=PROMETHEUS,
            target=API_SERVER,
            ports=ports_of_api,
            cidrs=cidrs_of_api,
            reason="service discovery through the Kubernetes API",
        ),
        Egress(
            source=PROMETHEUS,
            target="every node",
            ports=(KUBELET_PORT,),
            reason="kubelet and cAdvisor metrics of every node",
        ),
        Egress(
            source=KUBE_STATE_METRICS,
            target=API_SERVER,
            ports=ports_of_api,
            cidrs=cidrs_of_api,
            reason="object state through the Kubernetes API",
        ),
        *(
            Egress(
                source=source,
                target="the backup object store (`clickhouse.backup.objectStore`)",
                ports=(urlsplit(store.endpoint).port or (443 if store.endpoint.startswith("https") else 80),),
                cidrs=tuple(store.cidrs),
                reason=reason,
            )
            for source, reason in (
                # The sidecar shares the server's pod, so its egress policy is the pod's.
                (CLICKHOUSE_SERVER, "the backup sidecars upload to and download from the object store"),
                (CLICKHOUSE_RESTORE_DRILL, "verify restore-drill's scratch servers download the newest backups"),
            )
            if store
        ),
        *(
            (
                Egress(
                    source=ALERTMANAGER,
                    target="its receivers",
                    ports=tuple(ports),
                    reason="webhook receivers of the alerts",
                ),
            )
            if ports
            else ()
        ),
        *_mirror_egress(settings),
    )


def _mirror_egress(settings: Settings) -> tuple[Egress, ...]:
    """On a DR stack: the mirror reads the primary's brokers, at the addresses mirror.sourceCidrs names."""
    mirror = settings.mirror
    if mirror is None:
        return ()
    # Every broker the primary advertises listens on the bootstrap's port (its CLIENT listener).
    ports = tuple(sorted({int(server.rsplit(":", 1)[1]) for server in mirror.source_bootstrap.split(",")}))
    return (
        Egress(
            source=KAFKA_MIRROR,
            target="the primary's brokers (`mirror.sourceBootstrap`)",
            ports=ports,
            cidrs=tuple(mirror.source_cidrs),
            reason="MirrorMaker 2 reads the primary's topics and its groups' offsets",
        ),
    )


@dataclass(frozen=True)
class NetworkArgs:
    """Inputs of the network policy component."""

    namespace: pulumi.Input[str]
    """Namespace the policies live in: the only one whose pods they admit, clients aside."""
    instance: str
    """The stack name, for app.kubernetes.io/instance and the pod selectors."""
    clients: Clients
    """Where CLIENTS are: their namespaces and address ranges."""
    keda_namespace: str | None
    """Where KEDA's operator runs, if the workers scale on the queue signal."""
    mirror_cidrs: tuple[str, ...]
    """Where DR_MIRROR is: the addresses a DR site's mirror connects from (settings.kafka.mirrorCidrs)."""
    egress: tuple[Egress, ...]
    """The allowed connections out of the pod network."""
    flows: tuple[Flow, ...] = FLOWS
    """The allowed flows."""


class NetworkPolicies(pulumi.ComponentResource):
    """One ingress policy per receiving workload and one egress policy per sending workload."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("qestack:security:NetworkPolicies", name, None, opts)
        inbound: dict[Peer, list[Flow]] = defaultdict(list)
        outbound: dict[Peer, list[Flow]] = defaultdict(list)
        for flow in args.flows:
            inbound[flow.target].append(flow)
            outbound[flow.source].append(flow)
        labels = common_labels(PROJECT, "network-policy", args.instance)

        def selector(peer: Peer) -> LabelSelectorArgs:
            return LabelSelectorArgs(match_labels=selector_labels(peer.name, peer.component, args.instance))

        def ports(allowed: Flow | Egress) -> list[NetworkPolicyPortArgs]:
            protocols = allowed.protocols if isinstance(allowed, Flow) else ("TCP",)
            return [
                NetworkPolicyPortArgs(protocol=protocol, port=port) for port in allowed.ports for protocol in protocols
            ]

        def declare(policy: str, peer: Peer, direction: str, rules: list) -> None:
            """One policy about the pods of a peer, in one direction."""
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy}",
                metadata=ObjectMetaArgs(name=policy, namespace=args.namespace, labels=labels),
                spec=NetworkPolicySpecArgs(
                    pod_selector=selector(peer), policy_types=[direction.capitalize()], **{direction: rules}
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )

        def sources(flow: Flow) -> list[NetworkPolicyPeerArgs]:
            """Pods of the source workload; for CLIENTS and KEDA, every pod of their namespaces, and CLIENTS' ranges."""
            if flow.source == KEDA:
                namespaces = [args.keda_namespace] if args.keda_namespace else []
                return [
                    NetworkPolicyPeerArgs(
                        namespace_selector=LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": namespace})
                    )
                    for namespace in namespaces
                ]
            if flow.source == DR_MIRROR:
                return [NetworkPolicyPeerArgs(ip_block=IPBlockArgs(cidr=cidr)) for cidr in args.mirror_cidrs]
            if flow.source != CLIENTS:
                return [NetworkPolicyPeerArgs(pod_selector=selector(flow.source))]
            return [
                *(
                    NetworkPolicyPeerArgs(
                        namespace_selector=LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": namespace})
                    )
                    for namespace in args.clients.namespaces
                ),
                *(NetworkPolicyPeerArgs(ip_block=IPBlockArgs(cidr=cidr)) for cidr in args.clients.cidrs),
            ]

        for peer, flows in inbound.items():
            # A flow from nowhere (no client configured) gets no rule: an empty `from` would admit everyone.
            ingress = [
                NetworkPolicyIngressRuleArgs(from_=peers, ports=ports(f)) for f in flows if (peers := sources(f))
            ]
            if ingress:
                declare(f"allow-ingress-{peer.slug()}", peer, "ingress", ingress)
        outbound.pop(CLIENTS, None)
        outbound.pop(KEDA, None)
        outbound.pop(DR_MIRROR, None)
        for peer, flows in outbound.items():
            egress = [
                NetworkPolicyEgressRuleArgs(to=[NetworkPolicyPeerArgs(pod_selector=selector(f.target))], ports=ports(f))
                for f in flows
            ]
            declare(f"allow-egress-{peer.slug()}", peer, "egress", egress)
        anywhere: dict[Peer, list[Egress]] = defaultdict(list)
        for out in args.egress:
            anywhere[out.source].append(out)
        for peer, outs in anywhere.items():
            egress = [
                NetworkPolicyEgressRuleArgs(
                    to=[NetworkPolicyPeerArgs(ip_block=IPBlockArgs(cidr=cidr)) for cidr in out.cidrs], ports=ports(out)
                )
                for out in outs
            ]
            declare(f"allow-egress-out-{peer.slug()}", peer, "egress", egress)
        self.register_outputs({"flows": len(args.flows)})
