"""The stack's Kubernetes objects by kind, recorded as the program declares them, for verify's preflight."""

from collections import defaultdict

import pulumi

KINDS = (
    "Deployment",
    "StatefulSet",
    "Service",
    "Secret",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
)
"""The kinds verify looks for in the namespace."""


class Inventory:
    """Names of every object of KINDS the program declares, collected by a stack transformation."""

    def __init__(self) -> None:
        self._names: dict[str, set[str]] = defaultdict(set)

    def watch(self) -> None:
        """Record every resource declared from now on."""
        pulumi.runtime.register_stack_transformation(self._record)

    def _record(self, args: pulumi.ResourceTransformationArgs) -> None:
        kind = args.type_.rsplit(":", 1)[-1]
        if args.type_.startswith("kubernetes:") and kind in KINDS:
            metadata = args.props.get("metadata")
            name = metadata.get("name") if isinstance(metadata, dict) else getattr(metadata, "name", None)
            if isinstance(name, str):
                self._names[kind].add(name)

    def objects(self) -> dict[str, list[str]]:
        """Names by kind, sorted (every kind present, possibly empty)."""
        return {kind: sorted(self._names[kind]) for kind in KINDS}
