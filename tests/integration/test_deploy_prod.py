"""The real engine deploys the prod shape on four fake nodes in two zones, and rotates a Kafka password.

Prod's settings (three Kafka nodes, SCRAM, HA placement, PDBs, its quota) with the local context and Chaos
Mesh off, on the control plane of scripts/engine/cluster: the real scheduler places every pod under the
required anti-affinity and the zone spread, the real quota admission counts every pod. The rotation is here
because only SCRAM has a Job that applies passwords (the topic Job sets the Kafka users' credentials).
"""

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from components import names
from components.security.credential_catalog import KAFKA_USERS_SECRET
from tests.support.engine import Backend, EngineStack, Outcome, admin_client, assert_no_replacement, cluster

NAMESPACE = "query-engine"
ZONE = "topology.kubernetes.io/zone"
ROTATED = ("kafkaVerifyPassword", "verify", "rotated-verify-password-0123456789")
"""The credential rotated: its config name, its key in Secret kafka-users, the new value."""


@pytest.fixture(scope="module")
def prod(control_plane: Backend) -> Iterator[EngineStack]:
    """The prod-shaped stack; destroyed at the end whatever happened."""
    cluster("volumes")
    stack = control_plane.stack("prod", "prod")
    yield stack
    stack.destroy()
    stack.remove()
    cluster("volumes")


@pytest.fixture(scope="module")
def deployed(prod: EngineStack) -> Outcome:
    """The prod shape's first `up`."""
    return prod.up()


@pytest.fixture(scope="module")
def api() -> client.ApiClient:
    """The control plane's API with the admin identity."""
    return admin_client()


def pods(api: client.ApiClient, name: str) -> list[Any]:
    """The pods of one workload, by its app.kubernetes.io/name label."""
    selector = f"app.kubernetes.io/name={name}"
    return client.CoreV1Api(api).list_namespaced_pod(NAMESPACE, label_selector=selector).items


def zones(api: client.ApiClient) -> dict[str, str]:
    """Each node's zone."""
    return {n.metadata.name: n.metadata.labels.get(ZONE, "") for n in client.CoreV1Api(api).list_node().items}


def test_the_prod_shape_goes_up_and_every_pod_is_scheduled(deployed: Outcome, api: client.ApiClient) -> None:
    assert deployed.succeeded, deployed.describe()
    unscheduled = [
        f"Pod/{p.metadata.name}: {p.status.phase}"
        for p in client.CoreV1Api(api).list_namespaced_pod(NAMESPACE).items
        if not p.spec.node_name
    ]
    assert unscheduled == []


def test_kafka_runs_one_pod_per_node_across_both_zones(deployed: Outcome, api: client.ApiClient) -> None:
    kafka = pods(api, names.KAFKA)
    where = {
        p.metadata.name: p.spec.node_name for p in kafka if p.metadata.labels.get("statefulset.kubernetes.io/pod-name")
    }
    assert len(where) == 3 and len(set(where.values())) == 3, f"StatefulSet/{names.KAFKA} placement: {where}"
    assert {zones(api)[node] for node in where.values()} == {"zone-a", "zone-b"}


def test_the_presto_workers_scale_to_their_minimum_and_spread_over_both_zones(
    deployed: Outcome, api: client.ApiClient
) -> None:
    # The HPA owns the workers' replicas (the Deployment declares none, so it starts with 1): the real
    # controller raises them to minReplicas at its next sync (every 15 s), even with no metrics.
    minimum = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(names.PRESTO_WORKER, NAMESPACE)
    wanted = minimum.spec.min_replicas
    deadline = time.monotonic() + 60
    while True:
        workers = {p.metadata.name: p.spec.node_name for p in pods(api, names.PRESTO_WORKER) if p.spec.node_name}
        if len(workers) >= wanted or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert len(workers) >= wanted, f"Deployment/{names.PRESTO_WORKER}: {workers} after 60 s, HPA minimum {wanted}"
    assert {zones(api)[node] for node in workers.values()} == {"zone-a", "zone-b"}, workers


def test_every_budget_exists_and_the_quota_admits_every_replica(deployed: Outcome, api: client.ApiClient) -> None:
    expected = deployed.outputs["expected"]["objects"]["PodDisruptionBudget"]
    budgets = sorted(
        b.metadata.name for b in client.PolicyV1Api(api).list_namespaced_pod_disruption_budget(NAMESPACE).items
    )
    assert expected and budgets == expected
    refused = [
        f"{e.involved_object.kind}/{e.involved_object.name}: {e.message}"
        for e in client.CoreV1Api(api).list_namespaced_event(NAMESPACE).items
        if e.reason == "FailedCreate"
    ]
    assert refused == []
    apps = client.AppsV1Api(api)
    short = [
        f"{kind}/{w.metadata.name}: {w.status.ready_replicas or 0}/{w.spec.replicas} ready"
        for kind, listed in (
            ("Deployment", apps.list_namespaced_deployment(NAMESPACE).items),
            ("StatefulSet", apps.list_namespaced_stateful_set(NAMESPACE).items),
        )
        for w in listed
        if (w.status.ready_replicas or 0) < w.spec.replicas
    ]
    assert short == []


def test_a_password_rotation_updates_the_secret_and_reruns_the_topic_job(
    prod: EngineStack, deployed: Outcome, api: client.ApiClient
) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    secret_before = core.read_namespaced_secret(KAFKA_USERS_SECRET, NAMESPACE)
    job_before = batch.read_namespaced_job(names.KAFKA_TOPIC_JOB, NAMESPACE)
    credential, key, value = ROTATED
    prod.set(f"credentials.{credential}", value, secret=True)
    up = prod.up()
    assert up.succeeded, up.describe()
    assert_no_replacement(up)
    secret = core.read_namespaced_secret(KAFKA_USERS_SECRET, NAMESPACE)
    assert secret.metadata.uid == secret_before.metadata.uid, f"Secret/{KAFKA_USERS_SECRET} was replaced"
    assert base64.b64decode(secret.data[key]).decode() == value, f"Secret/{KAFKA_USERS_SECRET}: {key} not rotated"
    job = batch.read_namespaced_job(names.KAFKA_TOPIC_JOB, NAMESPACE)
    assert job.metadata.uid != job_before.metadata.uid, f"Job/{names.KAFKA_TOPIC_JOB} did not run again"
    assert {c.type: c.status for c in job.status.conditions or []}.get("Complete") == "True"
