"""A small NetworkPolicy evaluator over rendered manifests: may pod A open a port on pod B.

It implements the parts of the NetworkPolicy semantics the stack uses: policies select pods of their
own namespace by matchLabels; a pod selected by any policy of a type is isolated for that direction;
traffic passes when an egress rule of the source and an ingress rule of the target both admit it.
Peers are pods of the same namespace (podSelector), pods of other namespaces (namespaceSelector), or
addresses (ipBlock, with its exceptions).
"""

import ipaddress
from dataclasses import dataclass
from typing import Any

from tests.support.render import Rendered


@dataclass(frozen=True)
class Pod:
    """A pod by its labels and namespace, or (no namespace) a machine outside the cluster by its address."""

    labels: dict[str, str]
    namespace: str | None
    address: str = "10.244.0.10"


def _matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """MatchLabels semantics (an empty selector matches everything)."""
    wanted = (selector or {}).get("matchLabels", {})
    assert not (selector or {}).get("matchExpressions"), "the evaluator supports matchLabels only"
    return all(labels.get(k) == v for k, v in wanted.items())


def _peer_matches(peer: dict[str, Any], pod: Pod, policy_namespace: str) -> bool:
    """Whether a from/to peer admits a pod."""
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ipaddress.ip_address(pod.address)
        inside = address in ipaddress.ip_network(block["cidr"])
        return inside and not any(address in ipaddress.ip_network(e) for e in block.get("except", []))
    if pod.namespace is None:
        return False
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": pod.namespace}
        if not _matches(peer["namespaceSelector"], namespace_labels):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return _matches(peer.get("podSelector"), pod.labels)


def _port_matches(rule: dict[str, Any], port: int, protocol: str) -> bool:
    """Whether a rule's ports admit the port (no ports = all)."""
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports)


def _admits(stack: Rendered, pod: Pod, direction: str, other: Pod, port: int, protocol: str) -> bool:
    """Whether the policies selecting pod admit traffic with other in this direction."""
    kind = "Ingress" if direction == "ingress" else "Egress"
    key = "from" if direction == "ingress" else "to"
    selecting = [
        p.inputs
        for p in stack.of_kind("NetworkPolicy")
        if pod.namespace is not None
        and p.inputs["metadata"]["namespace"] == pod.namespace
        and _matches(p.inputs["spec"]["podSelector"], pod.labels)
        and kind in p.inputs["spec"]["policyTypes"]
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(direction, []):
            peers = rule.get(key)
            peer_ok = not peers or any(_peer_matches(peer, other, policy["metadata"]["namespace"]) for peer in peers)
            if peer_ok and _port_matches(rule, port, protocol):
                return True
    return False


def allowed(stack: Rendered, source: Pod, target: Pod, port: int, protocol: str = "TCP") -> bool:
    """Whether source may open a connection to target on port."""
    return _admits(stack, source, "egress", target, port, protocol) and _admits(
        stack, target, "ingress", source, port, protocol
    )
