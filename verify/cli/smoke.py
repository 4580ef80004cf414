"""`verify smoke`: every service answers and is configured as the stack declares; no flags of its own."""

import argparse
from typing import TYPE_CHECKING

from verify.cli.job import Job
from verify.core.checks import Check, Cleanup

if TYPE_CHECKING:
    from verify.core.targets import Targets
    from verify.kube.checks import Cluster


def arguments(parser: argparse.ArgumentParser) -> None:
    """Smoke has only the shared flags."""


def prepare(args: argparse.Namespace, targets: "Targets", planning: bool) -> Job:
    """The smoke checks of every service, and the Kubernetes checks when the cluster is reachable."""

    def build(kube: "Cluster | None", run_id: str, cleanup: Cleanup) -> list[Check]:
        import verify.kube.checks  # the clients: imported by the commands that use them
        from verify.smoke import clickhouse, grafana, kafka, mirror, presto, prometheus, replication

        services = (presto, clickhouse, replication, kafka, mirror, prometheus, grafana)
        return [check for service in services for check in service.checks(targets)] + (
            verify.kube.checks.checks(kube, targets) if kube else []
        )

    return Job(parameters={}, build=build)
