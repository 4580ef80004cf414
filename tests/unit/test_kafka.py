"""The Kafka component in both stacks: replicas, HA placement, storage, config, listeners, probes, topic bootstrap."""

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from components import names
from components.data.kafka.component import MIN_READY_SECONDS, kafka_host
from components.data.kafka.config import (
    BROKER_STATE_METRIC,
    ENV_PASSWORD,
    EXTERNAL_PORT,
    FOLLOWER_LAG_METRIC,
    LOCAL_PORT_BASE,
    LOG_SUBDIRECTORY,
    NODE_ID_TOKEN,
    POD_NAME_TOKEN,
    Ports,
    log4j_properties,
    metrics_config,
    ready_script,
    server_properties,
    start_script,
    topic_bootstrap_script,
)
from components.data.kafka.mirror import site_mirror_user
from components.security.credential_catalog import KAFKA_USERS_SECRET
from tests.support.render import Rendered, render, settings_of
from tests.support.workloads import pod_spec

LISTENER_PORTS = {
    names.KAFKA_CLIENT_PORT,
    names.KAFKA_CONTROLLER_PORT,
    names.KAFKA_INTERNAL_PORT,
    names.KAFKA_PRESTO_PORT,
}


def env_of(container: dict) -> dict[str, str]:
    """A container's literal env values by name."""
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_nodes_match_the_settings(stack: Rendered) -> None:
    kafka = settings_of(stack).kafka
    statefulset = stack.named("StatefulSet", names.KAFKA)
    assert statefulset.inputs["spec"]["replicas"] == kafka.brokers
    assert statefulset.inputs["spec"]["serviceName"] == names.KAFKA_HEADLESS
    assert statefulset.inputs["spec"]["podManagementPolicy"] == "Parallel"
    (claim,) = statefulset.inputs["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == kafka.storage.size


def test_headless_service_publishes_unready_nodes(stack: Rendered) -> None:
    spec = stack.named("Service", names.KAFKA_HEADLESS).inputs["spec"]
    assert spec["clusterIP"] == "None" and spec["publishNotReadyAddresses"] is True
    assert {p["port"] for p in spec["ports"]} == LISTENER_PORTS


def test_the_client_service_offers_only_the_client_listeners(stack: Rendered) -> None:
    spec = stack.named("Service", names.KAFKA).inputs["spec"]
    assert {p["port"] for p in spec["ports"]} == {names.KAFKA_CLIENT_PORT, names.KAFKA_PRESTO_PORT}


def test_dev_has_no_disruption_budget_or_spread() -> None:
    dev = render("dev")
    assert not dev.of_kind("PodDisruptionBudget")
    spec = pod_spec(dev.named("StatefulSet", names.KAFKA))
    assert "affinity" not in spec and "topologySpreadConstraints" not in spec


def test_prod_spreads_nodes_and_budgets_disruptions() -> None:
    prod = render("prod")
    statefulset = prod.named("StatefulSet", names.KAFKA)
    selector = statefulset.inputs["spec"]["selector"]["matchLabels"]
    budget = prod.named("PodDisruptionBudget", names.KAFKA).inputs["spec"]
    assert budget == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
    spec = pod_spec(statefulset)
    (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}
    (zones,) = spec["topologySpreadConstraints"]
    assert zones["topologyKey"] == "topology.kubernetes.io/zone" and zones["maxSkew"] == 1


def test_storage_class_comes_from_settings() -> None:
    dev_claim = render("dev").named("StatefulSet", names.KAFKA).inputs["spec"]["volumeClaimTemplates"][0]
    assert dev_claim["spec"]["storageClassName"] == "standard"
    prod = render("prod", overrides={"storageClass": "fast-ssd"})
    claim = prod.named("StatefulSet", names.KAFKA).inputs["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    default_claim = render("prod").named("StatefulSet", names.KAFKA).inputs["spec"]["volumeClaimTemplates"][0]
    assert "storageClassName" not in default_claim["spec"], "unset storageClass must mean the cluster default"


def test_config_map_holds_the_pure_function_output(stack: Rendered) -> None:
    settings = settings_of(stack)
    namespace = settings.namespace
    expected = server_properties(
        settings.kafka,
        node_id=NODE_ID_TOKEN,
        advertised_host=f"{POD_NAME_TOKEN}.{names.KAFKA_HEADLESS}.{namespace}.svc.cluster.local",
        voters=[
            (i, f"{kafka_host(i, namespace)}:{names.KAFKA_CONTROLLER_PORT}") for i in range(settings.kafka.brokers)
        ],
        log_dir="/var/lib/kafka/data",
        ports=Ports(),
    )
    data = stack.named("ConfigMap", names.KAFKA_CONFIG).inputs["data"]
    assert data["server.properties"] == expected
    assert data["start.sh"] == start_script(settings.kafka)
    assert data["topic-bootstrap.sh"] == topic_bootstrap_script(settings.kafka, site_mirror_user(settings))
    assert data["ready.sh"] == ready_script()
    assert data["jmx-exporter.yaml"] == metrics_config()
    properties = dict(line.split("=", 1) for line in expected.splitlines())
    assert properties["min.insync.replicas"] == str(settings.kafka.min_insync_replicas)
    assert properties["default.replication.factor"] == str(settings.kafka.replication_factor)
    assert len(properties["controller.quorum.voters"].split(",")) == settings.kafka.brokers
    assert properties["unclean.leader.election.enable"] == "false"


def test_heap_is_half_the_memory_limit() -> None:
    container = pod_spec(render("prod").named("StatefulSet", names.KAFKA))["containers"][0]
    assert env_of(container)["KAFKA_HEAP_OPTS"] == "-Xms2048m -Xmx2048m"


def test_topic_bootstrap_job_runs_the_script_on_the_internal_listener(stack: Rendered) -> None:
    settings = settings_of(stack)
    job = stack.named("Job", names.KAFKA_TOPIC_JOB)
    (container,) = pod_spec(job)["containers"]
    assert container["command"] == ["/bin/sh", "/etc/kafka/template/topic-bootstrap.sh"]
    bootstrap = env_of(container)["BOOTSTRAP"]
    assert bootstrap == f"{names.KAFKA_HEADLESS}.{settings.namespace}.svc.cluster.local:{names.KAFKA_INTERNAL_PORT}"
    assert "--if-not-exists" in topic_bootstrap_script(settings.kafka)
    assert pod_spec(job)["restartPolicy"] == "OnFailure"


def secret_refs(container: dict) -> dict[str, tuple[str, str]]:
    """A container's env variables filled from Secrets: name -> (secret, key)."""
    return {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def test_dev_kafka_takes_no_passwords_and_authorizes_nothing() -> None:
    dev = render("dev")
    properties = dev.named("ConfigMap", names.KAFKA_CONFIG).inputs["data"]["server.properties"]
    assert "SASL" not in properties and "authorizer" not in properties
    for kind, name in (("StatefulSet", names.KAFKA), ("Job", names.KAFKA_TOPIC_JOB)):
        (container,) = pod_spec(dev.named(kind, name))["containers"]
        assert not secret_refs(container)


def test_prod_kafka_authenticates_every_listener_but_prestos_and_authorizes() -> None:
    prod = render("prod")
    data = prod.named("ConfigMap", names.KAFKA_CONFIG).inputs["data"]
    properties = dict(line.split("=", 1) for line in data["server.properties"].splitlines())
    assert properties["listener.security.protocol.map"] == (
        "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT,INTERNAL:SASL_PLAINTEXT,PRESTO:PLAINTEXT,"
        "EXTERNAL:SASL_PLAINTEXT"
    )
    assert properties["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert properties["super.users"] == "User:broker"
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    (broker,) = pod_spec(prod.named("StatefulSet", names.KAFKA))["containers"]
    assert secret_refs(broker) == {ENV_PASSWORD["broker"]: (KAFKA_USERS_SECRET, "broker")}
    (job,) = pod_spec(prod.named("Job", names.KAFKA_TOPIC_JOB))["containers"]
    assert secret_refs(job) == {variable: (KAFKA_USERS_SECRET, user) for user, variable in ENV_PASSWORD.items()}
    assert "CREDENTIALS_GENERATION" in env_of(job), "a changed password must give the Job a new spec"


def test_partitions_live_in_a_subdirectory_of_the_volume(stack: Rendered) -> None:
    statefulset = stack.named("StatefulSet", names.KAFKA)
    (container,) = pod_spec(statefulset)["containers"]
    (mount,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "data"]
    data = stack.named("ConfigMap", names.KAFKA_CONFIG).inputs["data"]
    properties = dict(line.split("=", 1) for line in data["server.properties"].splitlines())
    assert properties["log.dirs"] == f"{mount}/{LOG_SUBDIRECTORY}", (
        f"{statefulset.label}: log.dirs must be a subdirectory of the volume (ext4 puts lost+found at its root)"
    )


def test_kafka_logs_to_stdout_only_and_keeps_no_gc_log(stack: Rendered) -> None:
    statefulset = stack.named("StatefulSet", names.KAFKA)
    (container,) = pod_spec(statefulset)["containers"]
    env = env_of(container)
    data = stack.named("ConfigMap", names.KAFKA_CONFIG).inputs["data"]
    assert data["log4j.properties"] == log4j_properties()
    config = dict(line.split("=", 1) for line in log4j_properties().splitlines())
    appenders = {key.split(".")[2] for key in config if key.startswith("log4j.appender.")}
    assert appenders == {"stdout"}, f"{statefulset.label}: log4j appenders {appenders}, only stdout wanted"
    assert config["log4j.appender.stdout"] == "org.apache.log4j.ConsoleAppender"
    assert all(value.split(",")[1:] in ([], [" stdout"]) for key, value in config.items() if "logger" in key)
    assert env["KAFKA_LOG4J_OPTS"] == "-Dlog4j.configuration=file:/etc/kafka/template/log4j.properties"
    assert "-loggc" not in env["EXTRA_ARGS"], f"{statefulset.label}: GC logs would fill LOG_DIR"


def run_start_script(tmp_path: Path, volume: Path, pod: str = "kafka-0") -> subprocess.CompletedProcess[str]:
    """Run the nodes' start script as this pod, with stand-ins for Kafka's tools, log.dirs in volume."""
    settings = settings_of(render("dev"))
    home = tmp_path / "kafka"
    (home / "bin").mkdir(parents=True)
    for tool in ("kafka-storage.sh", "kafka-server-start.sh"):
        (home / "bin" / tool).write_text("#!/bin/sh\nexit 0\n")
        (home / "bin" / tool).chmod(0o755)
    template = tmp_path / "server.properties.template"
    template.write_text(
        server_properties(
            settings.kafka,
            node_id=NODE_ID_TOKEN,
            advertised_host="h",
            voters=[(0, "h:9093")],
            log_dir=str(volume),
            ports=Ports(),
        )
    )
    script = tmp_path / "start.sh"
    script.write_text(start_script(settings.kafka))
    env = {
        "PATH": "/usr/bin:/bin",
        "POD_NAME": pod,
        "CLUSTER_ID": "x",
        "KAFKA_HOME": str(home),
        "TEMPLATE": str(template),
        "RUNTIME_DIR": str(tmp_path),
        "LOCAL_PORT_BASE": str(LOCAL_PORT_BASE),
    }
    return subprocess.run(["/bin/sh", str(script)], env=env, capture_output=True, text=True, check=True, timeout=30)


def test_a_volume_of_the_old_layout_is_moved_into_the_subdirectory(tmp_path: Path) -> None:
    volume = tmp_path / "data"
    for entry in ("lost+found", "events-0", "__cluster_metadata-0"):
        (volume / entry).mkdir(parents=True)
    (volume / "meta.properties").write_text("node.id=0\n")
    (volume / ".lock").write_text("")
    (volume / "events-0" / "00000000000000000000.log").write_text("data")
    run_start_script(tmp_path, volume)
    logs = volume / LOG_SUBDIRECTORY
    assert sorted(p.name for p in volume.iterdir()) == sorted([LOG_SUBDIRECTORY, "lost+found"])
    assert sorted(p.name for p in logs.iterdir()) == sorted(
        ["events-0", "__cluster_metadata-0", "meta.properties", ".lock"]
    )
    assert (logs / "events-0" / "00000000000000000000.log").read_text() == "data"


def test_a_new_or_moved_volume_is_left_as_it_is(tmp_path: Path) -> None:
    volume = tmp_path / "data"
    (volume / "lost+found").mkdir(parents=True)
    (volume / LOG_SUBDIRECTORY).mkdir()
    (volume / LOG_SUBDIRECTORY / "meta.properties").write_text("node.id=0\n")
    run_start_script(tmp_path, volume)
    assert sorted(p.name for p in volume.iterdir()) == sorted([LOG_SUBDIRECTORY, "lost+found"])
    assert [p.name for p in (volume / LOG_SUBDIRECTORY).iterdir()] == ["meta.properties"]


def test_a_move_stopped_halfway_is_resumed(tmp_path: Path) -> None:
    volume = tmp_path / "data"
    staging = volume / f".{LOG_SUBDIRECTORY}.moving"
    (staging / "events-0").mkdir(parents=True)
    (staging / "meta.properties").write_text("node.id=0\n")
    (volume / "events-1").mkdir()
    run_start_script(tmp_path, volume)
    assert sorted(p.name for p in volume.iterdir()) == [LOG_SUBDIRECTORY]
    assert sorted(p.name for p in (volume / LOG_SUBDIRECTORY).iterdir()) == ["events-0", "events-1", "meta.properties"]


def properties_of(text: str) -> dict[str, str]:
    """server.properties as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines())


@pytest.mark.parametrize("authentication", ["none", "scram"])
def test_the_external_listener_is_on_loopback_and_authenticates_as_the_client_listener(authentication: str) -> None:
    kafka = settings_of(render("dev")).kafka.model_copy(update={"authentication": authentication})
    properties = properties_of(
        server_properties(kafka, node_id="0", advertised_host="h", voters=[(0, "h:9093")], log_dir="/d", ports=Ports())
    )
    listeners = dict(listener.split("://") for listener in properties["listeners"].split(","))
    assert listeners["EXTERNAL"] == f"127.0.0.1:{EXTERNAL_PORT}", "a port-forward arrives on the pod's loopback"
    assert all(address.startswith(":") for name, address in listeners.items() if name != "EXTERNAL")
    advertised = dict(listener.split("://") for listener in properties["advertised.listeners"].split(","))
    assert advertised["EXTERNAL"] == "127.0.0.1:@EXTERNAL_PORT@"
    protocols = dict(pair.split(":") for pair in properties["listener.security.protocol.map"].split(","))
    assert (
        protocols["EXTERNAL"] == protocols["CLIENT"] == ("SASL_PLAINTEXT" if authentication == "scram" else "PLAINTEXT")
    )
    external = {key.removeprefix("listener.name.external."): v for key, v in properties.items() if ".external." in key}
    client = {key.removeprefix("listener.name.client."): v for key, v in properties.items() if ".client." in key}
    assert external == client, "the same SCRAM login on both (and none in dev)"


def test_each_node_advertises_its_own_local_port(tmp_path: Path) -> None:
    volume = tmp_path / "data"
    run_start_script(tmp_path, volume, pod="kafka-2")
    properties = properties_of((tmp_path / "server.properties").read_text())
    assert properties["node.id"] == "2"
    advertised = dict(listener.split("://") for listener in properties["advertised.listeners"].split(","))
    assert advertised["EXTERNAL"] == f"127.0.0.1:{LOCAL_PORT_BASE + 2}"


def test_the_external_listener_is_a_container_port_on_no_service(stack: Rendered) -> None:
    statefulset = stack.named("StatefulSet", names.KAFKA)
    (container,) = pod_spec(statefulset)["containers"]
    assert {"name": "external", "containerPort": EXTERNAL_PORT} in container["ports"]
    assert env_of(container)["LOCAL_PORT_BASE"] == str(LOCAL_PORT_BASE)
    for service in (names.KAFKA, names.KAFKA_HEADLESS):
        ports = stack.named("Service", service).inputs["spec"]["ports"]
        assert EXTERNAL_PORT not in {p["port"] for p in ports}, f"Service/{service}: the listener is loopback only"


def test_readiness_runs_the_probe_script_and_a_roll_waits_min_ready_seconds(stack: Rendered) -> None:
    statefulset = stack.named("StatefulSet", names.KAFKA)
    assert statefulset.inputs["spec"]["minReadySeconds"] == MIN_READY_SECONDS
    (container,) = pod_spec(statefulset)["containers"]
    probe = container["readinessProbe"]
    assert probe["exec"]["command"] == ["/bin/bash", "/etc/kafka/template/ready.sh", str(names.JMX_METRICS_PORT)]
    assert probe["timeoutSeconds"] > 4, "the script waits 4 s for the agent"
    assert f"{names.JMX_METRICS_PORT}:" in env_of(container)["KAFKA_OPTS"], "the agent the probe reads"
    assert BROKER_STATE_METRIC in metrics_config() and FOLLOWER_LAG_METRIC in metrics_config()


def metrics_page(state: str | None, lags: tuple[str, ...]) -> str:
    """A page as the JMX exporter agent serves it, with the broker state and the follower lags."""
    lines = ["# HELP jvm_threads_current Current thread count of a JVM", "jvm_threads_current 97.0"]
    if state is not None:
        lines += [f"# TYPE {BROKER_STATE_METRIC} gauge", f"{BROKER_STATE_METRIC} {state}"]
    lines += [
        f'{FOLLOWER_LAG_METRIC}{{leader="0",topic="events",partition="{n}",}} {lag}' for n, lag in enumerate(lags)
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def agent(status: int, page: str) -> Iterator[int]:
    """A stand-in for the metrics agent answering every GET with this status and page; its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()


@pytest.mark.parametrize(
    ("status", "state", "lags", "ready", "says"),
    [
        (200, "3.0", (), True, "running"),
        (200, "3.0", ("0.0", "0.0"), True, "in sync on every partition"),
        (200, "3.0", ("0.0", "-1.0"), False, "behind the leader on 1 partitions"),
        (200, "3.0", ("5012.0", "0.0", "1.2E7"), False, "behind the leader on 2 partitions"),
        (200, "2.0", ("0.0",), False, "broker state 2.0"),
        (200, "7.0", (), False, "broker state 7.0"),
        (200, None, (), False, "broker state unknown"),
        (500, "3.0", (), False, "answered 500"),
    ],
    ids=[
        "leader only",
        "in sync",
        "not fetched yet",
        "catching up",
        "recovering",
        "shutting down",
        "no state",
        "error",
    ],
)
def test_the_readiness_probe_reads_running_and_in_sync(
    tmp_path: Path, status: int, state: str | None, lags: tuple[str, ...], ready: bool, says: str
) -> None:
    script = tmp_path / "ready.sh"
    script.write_text(ready_script())
    with agent(status, metrics_page(state, lags)) as port:
        result = subprocess.run(["/bin/bash", str(script), str(port)], capture_output=True, text=True, timeout=10)
    assert (result.returncode == 0) == ready, result.stdout
    assert says in result.stdout
