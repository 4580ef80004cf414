"""The scratch server on Kubernetes: one pod made from the deployed ClickHouse pod template, standing alone.

The pod runs the deployed images and configuration, backup server included (so it reads the same object
store with the same Secret), with three changes: its own name and labels (no Service selects it; the
stack's NetworkPolicy for the scratch servers lets it reach the object store), an emptyDir for data, and
no cluster file, so it joins no cluster and never touches the live Keeper. verify reaches it through
port-forwards and deletes it at cleanup.
"""

import copy
import time
from typing import Any

from kubernetes import client

from components import names
from components.data.clickhouse.backup import API_USER
from verify.core.checks import CheckFailedError, Context
from verify.core.targets import Targets
from verify.kube.checks import REQUEST_TIMEOUT, Cluster
from verify.kube.labels import run_labels
from verify.kube.port_forward import PortForward, ready
from verify.restore_drill.api import BackupApi
from verify.restore_drill.scratch import LoopbackScratch
from verify.smoke.clickhouse import PASSWORD

API_PASSWORD = "clickhouseBackupApiPassword"
DATA_SIZE = "50Gi"
"""The scratch server's emptyDir limit: the node's disk must hold the restored shards."""
POLL_SECONDS = 2.0


def scratch_pod(statefulset: dict[str, Any], run_id: str, ordinal: int) -> dict[str, Any]:
    """A standalone pod from a ClickHouse StatefulSet (as the API serves it, camelCase), numbered like its servers."""
    template = copy.deepcopy(statefulset["spec"]["template"])
    spec = template["spec"]
    for key in ("affinity", "topologySpreadConstraints"):
        spec.pop(key, None)  # wherever it fits: it holds no replica of anything
    for container in spec["containers"]:
        mounts = container.get("volumeMounts", [])
        container["volumeMounts"] = [mount for mount in mounts if mount.get("subPath") != names.CLICKHOUSE_CLUSTER_FILE]
        if container["name"] == "clickhouse":
            container["readinessProbe"] = {"httpGet": {"path": "/ping", "port": "http"}, "periodSeconds": 5}
    spec["volumes"] = [*spec.get("volumes", []), {"name": "data", "emptyDir": {"sizeLimit": DATA_SIZE}}]
    spec["restartPolicy"] = "Never"
    labels = {
        **template["metadata"].get("labels", {}),
        "app.kubernetes.io/name": names.CLICKHOUSE_RESTORE_DRILL,
        "app.kubernetes.io/component": names.CLICKHOUSE_RESTORE_DRILL_COMPONENT,
        **run_labels(run_id),
    }
    # The server's identity (its shard, so where its backups are) comes from its name's ordinal, as a server's does.
    name = f"{names.CLICKHOUSE_RESTORE_DRILL}-{run_id}-{ordinal}"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec}


class KubernetesScratch:
    """Starts the scratch pod, forwards its ports, and deletes it at cleanup."""

    def __init__(self, cluster: Cluster, run_id: str, targets: Targets):
        self._cluster, self._run_id, self._replicas = cluster, run_id, targets.expected.clickhouse_replicas

    def start(self, context: Context, shard: int, seconds: float) -> LoopbackScratch:
        """The scratch pod of a shard, ready and forwarded, or CheckFailedError with its last status."""
        core, apps = client.CoreV1Api(self._cluster.api), client.AppsV1Api(self._cluster.api)
        namespace = self._cluster.namespace
        statefulset = apps.read_namespaced_stateful_set(names.CLICKHOUSE, namespace, _request_timeout=REQUEST_TIMEOUT)
        ordinal = (shard - 1) * self._replicas  # the first server of the shard (config.server_ordinal)
        manifest = scratch_pod(self._cluster.api.sanitize_for_serialization(statefulset), self._run_id, ordinal)
        name = manifest["metadata"]["name"]
        body: Any = manifest  # the client takes the API's JSON as well as its models
        core.create_namespaced_pod(namespace, body, _request_timeout=REQUEST_TIMEOUT)

        def delete() -> None:
            core.delete_namespaced_pod(name, namespace, grace_period_seconds=0, _request_timeout=REQUEST_TIMEOUT)

        context.cleanup.add(f"Pod {name}", delete)
        began = time.monotonic()
        pod: Any = core.read_namespaced_pod(name, namespace, _request_timeout=REQUEST_TIMEOUT)
        while not ready(pod):
            if time.monotonic() - began > seconds or pod.status.phase in ("Failed", "Succeeded"):
                raise CheckFailedError(f"Pod {name} not ready within {seconds:g}s: phase {pod.status.phase}")
            time.sleep(POLL_SECONDS)
            pod = core.read_namespaced_pod(name, namespace, _request_timeout=REQUEST_TIMEOUT)
        ports = (names.CLICKHOUSE_NATIVE_PORT, names.CLICKHOUSE_BACKUP_PORT)
        forwards = [PortForward(self._cluster, name, port) for port in ports]
        for forward in forwards:
            context.cleanup.add(f"port-forward to {name}", forward.close)
        native, api = (forward.local_port for forward in forwards)
        credentials = context.targets.credentials
        login = (API_USER, credentials[API_PASSWORD])
        return LoopbackScratch(BackupApi(f"http://127.0.0.1:{api}", login), native, credentials[PASSWORD])
