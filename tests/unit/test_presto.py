"""The Presto component in both stacks: coordinator, autoscaled draining workers, config, Secrets, JVM budget."""

import hashlib
import math
from decimal import Decimal

import pytest

from components import names
from components.data.presto import memory
from components.data.presto.component import ETC_DIR, INTERNAL_TLS_SECRET, JMX_PORT
from components.data.presto.config import (
    PASSWORD_FILE,
    graceful_shutdown_command,
    probe_command,
    start_script,
)
from components.observability.jmx_exporter import PRESTO_RULES
from components.platform.jvm import JvmBudget, OffHeap, jvm_budget
from components.platform.labels import selector_labels
from components.platform.workloads import SECRET_CONFIG_DIGEST, config_digest
from components.security.credential_catalog import CREDENTIALS, PRESTO_INTERNAL_SECRET, PRESTO_USERS_SECRET
from components.settings.parse import SettingsError, parse_settings
from components.settings.quantities import quantity_value
from components.settings.stack_files import stack_config
from tests.support.keda_schema import problems as keda_problems
from tests.support.netpol import Pod, allowed
from tests.support.promql import selectors
from tests.support.render import Rendered, fake_password, render, settings_of
from tests.support.workloads import pod_spec


def test_exactly_one_coordinator_never_two_at_once(stack: Rendered) -> None:
    spec = stack.named("Deployment", names.PRESTO_COORDINATOR).inputs["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}


def test_the_autoscaler_owns_the_worker_count(stack: Rendered) -> None:
    workers = settings_of(stack).presto.workers
    assert "replicas" not in stack.named("Deployment", names.PRESTO_WORKER).inputs["spec"]
    hpa = stack.named("HorizontalPodAutoscaler", names.PRESTO_WORKER).inputs["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": names.PRESTO_WORKER}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (workers.min_replicas, workers.max_replicas)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]}
    # Never memory: a JVM commits its heap at start and keeps it, which would pin the workers at the maximum.
    assert targets == {"cpu": workers.cpu_target_percent}, "HorizontalPodAutoscaler/presto-worker scales on CPU only"
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == workers.scale_down_stabilization_seconds


def test_workers_drain_before_they_stop(stack: Rendered) -> None:
    grace = settings_of(stack).presto.workers.shutdown_grace_period_seconds
    spec = pod_spec(stack.named("Deployment", names.PRESTO_WORKER))
    (container,) = spec["containers"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == graceful_shutdown_command(
        names.PRESTO_HTTPS_PORT, ETC_DIR, grace
    )
    assert spec["terminationGracePeriodSeconds"] > 2 * grace, "Kubernetes must not kill a draining worker"
    config = stack.named("ConfigMap", names.PRESTO_WORKER_CONFIG).inputs["data"]["config.properties"]
    assert f"shutdown.grace-period={grace}s" in config


def test_secrets_reach_presto_as_files_not_config(stack: Rendered) -> None:
    every_node = {PRESTO_INTERNAL_SECRET, "clickhouse-users", INTERNAL_TLS_SECRET, names.PRESTO_TLS_SECRET}
    for workload, config_name, secrets, serving in (
        (
            names.PRESTO_COORDINATOR,
            names.PRESTO_COORDINATOR_CONFIG,
            every_node | {names.PRESTO_PASSWORD_FILE_SECRET},
            {"ca.crt", "tls.crt", "tls.key"},
        ),
        (names.PRESTO_WORKER, names.PRESTO_WORKER_CONFIG, every_node, {"ca.crt"}),
    ):
        volumes = {v["name"]: v for v in pod_spec(stack.named("Deployment", workload))["volumes"]}
        sources = {s["secret"]["name"]: s["secret"]["items"] for s in volumes["secrets"]["projected"]["sources"]}
        assert set(sources) == secrets, f"Deployment/{workload}"
        assert {item["key"] for item in sources[names.PRESTO_TLS_SECRET]} == serving, (
            f"Deployment/{workload}: a worker reads only the CA that signs the coordinator's certificate"
        )
        data = stack.named("ConfigMap", config_name).inputs["data"]
        assert data["start.sh"] == start_script()
        assert "password=" not in data["catalog-clickhouse.properties"]
        assert "shared-secret=" not in data["config.properties"]


def test_prod_workers_spread_and_budget_disruptions() -> None:
    prod = render("prod")
    selector = prod.named("Deployment", names.PRESTO_WORKER).inputs["spec"]["selector"]["matchLabels"]
    assert prod.named("PodDisruptionBudget", names.PRESTO_WORKER).inputs["spec"]["selector"]["matchLabels"] == selector
    spec = pod_spec(prod.named("Deployment", names.PRESTO_WORKER))
    assert spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    coordinator = prod.named("ConfigMap", names.PRESTO_COORDINATOR_CONFIG).inputs["data"]["config.properties"]
    assert "node-scheduler.include-coordinator=false" in coordinator


def test_dev_coordinator_also_schedules_work() -> None:
    data = render("dev").named("ConfigMap", names.PRESTO_COORDINATOR_CONFIG).inputs["data"]
    assert "node-scheduler.include-coordinator=true" in data["config.properties"]


def properties(text: str) -> dict[str, str]:
    """A .properties file's keys and values."""
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_no_node_serves_plain_http_and_every_request_needs_a_credential(stack: Rendered) -> None:
    for config_name, authentication in (
        (names.PRESTO_COORDINATOR_CONFIG, "CERTIFICATE,PASSWORD"),
        (names.PRESTO_WORKER_CONFIG, "CERTIFICATE"),
    ):
        data = stack.named("ConfigMap", config_name).inputs["data"]
        config = properties(data["config.properties"])
        wanted = {
            "http-server.http.enabled": "false",
            "http-server.https.enabled": "true",
            "http-server.https.port": str(names.PRESTO_HTTPS_PORT),
            "http-server.authentication.type": authentication,
            "http-server.https.truststore.path": f"{ETC_DIR}/internal-ca.pem",
            "internal-communication.https.required": "true",
            "internal-communication.https.keystore.path": f"{ETC_DIR}/internal.pem",
            "discovery.uri": stack.outputs["prestoUrl"],
            "http-server.admin.enabled": "false",
            "jmx.rmiregistry.port": str(JMX_PORT),
            "jmx.rmiserver.port": str(JMX_PORT),
        }
        assert {key: config.get(key) for key in wanted} == wanted, f"ConfigMap/{config_name}"
        # The JVM's JMX agent on a known port, with a password file the start script writes empty: no login.
        jvm = data["jvm.config"].splitlines()
        assert f"-Dcom.sun.management.jmxremote.port={JMX_PORT}" in jvm, f"ConfigMap/{config_name}"
        assert f"-Dcom.sun.management.jmxremote.password.file={ETC_DIR}/jmxremote.password" in jvm
        assert ': > "$ETC_DIR/jmxremote.password"' in data["start.sh"]
        # The JWT of the internal endpoints, signed with the shared secret, is appended at start.
        assert "internal-communication.jwt.enabled=true" in data["start.sh"]
    coordinator = stack.named("ConfigMap", names.PRESTO_COORDINATOR_CONFIG).inputs["data"]
    assert "password-authenticator.name=file" in coordinator["password-authenticator.properties"]
    assert (
        "password-authenticator.properties" not in stack.named("ConfigMap", names.PRESTO_WORKER_CONFIG).inputs["data"]
    )
    for workload in (names.PRESTO_COORDINATOR, names.PRESTO_WORKER):
        (container,) = pod_spec(stack.named("Deployment", workload))["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"https": names.PRESTO_HTTPS_PORT, "metrics": names.JMX_METRICS_PORT}, f"Deployment/{workload}"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["exec"]["command"] == probe_command(names.PRESTO_HTTPS_PORT, ETC_DIR), (
                f"Deployment/{workload} {probe}: the kubelet's HTTP probes carry no credential"
            )
    ports = {p["name"]: p["port"] for p in stack.named("Service", names.PRESTO_COORDINATOR).inputs["spec"]["ports"]}
    assert ports == {"https": names.PRESTO_HTTPS_PORT}, f"Service/{names.PRESTO_COORDINATOR}"
    assert stack.outputs["prestoUrl"].startswith("https://") and stack.outputs["prestoUrl"].endswith(":8443")


def test_an_authenticated_user_queries_only_as_itself(stack: Rendered) -> None:
    rules = stack.named("ConfigMap", names.PRESTO_COORDINATOR_CONFIG).inputs["data"]["rules.json"]
    assert '"principal_to_user": "$1"' in rules, "without a principal rule, analyst could name admin as its user"


def test_workers_announce_their_pod_dns_name_which_the_internal_certificate_holds(stack: Rendered) -> None:
    namespace = stack.outputs["namespace"]
    worker = stack.named("ConfigMap", names.PRESTO_WORKER_CONFIG).inputs["data"]["node.properties"]
    assert f"node.internal-address=@POD_ADDRESS@.{namespace}.pod.cluster.local" in worker
    coordinator = stack.named("ConfigMap", names.PRESTO_COORDINATOR_CONFIG).inputs["data"]["node.properties"]
    assert f"node.internal-address={names.service_host(names.PRESTO_COORDINATOR, namespace)}" in coordinator
    (request,) = [r for r in stack.resources if r.name == "presto-internal-request"]
    assert request.inputs["dnsNames"] == [f"*.{namespace}.pod.cluster.local", "localhost"]
    (signed,) = [r for r in stack.resources if r.name == "presto-internal"]
    assert {"server_auth", "client_auth"} <= set(signed.inputs["allowedUses"]), "nodes serve and present it"
    secret = stack.named("Secret", INTERNAL_TLS_SECRET)
    assert secret.inputs["type"] == "kubernetes.io/tls"
    assert set(secret.inputs["stringData"]) == {"tls.crt", "tls.key", "ca.crt"}


def pod_annotations(stack: Rendered, workload: str) -> dict[str, str]:
    """The pod template's annotations of a Deployment."""
    return stack.named("Deployment", workload).inputs["spec"]["template"]["metadata"]["annotations"]


def test_the_internal_certificate_and_shared_secret_are_in_the_pods_digest(stack: Rendered) -> None:
    tls = stack.named("Secret", INTERNAL_TLS_SECRET).inputs["stringData"]
    (shared,) = [s for s in stack.of_kind("Secret") if s.inputs["metadata"]["name"] == PRESTO_INTERNAL_SECRET]
    files = (tls["tls.crt"], tls["tls.key"], tls["ca.crt"], shared.inputs["stringData"]["shared-secret"])
    serving = stack.named("Secret", names.PRESTO_TLS_SECRET).inputs["stringData"]["tls.crt"]
    # The coordinator also serves the clients' certificate, which `pulumi up` renews within 30 days of its end.
    expected = {names.PRESTO_COORDINATOR: (*files, serving), names.PRESTO_WORKER: files}
    for workload, read in expected.items():
        assert pod_annotations(stack, workload)[SECRET_CONFIG_DIGEST] == config_digest(read), f"Deployment/{workload}"
        assert stack.named("Deployment", workload).secret_paths == ["spec"], (
            f"Deployment/{workload}: a digest of secrets is itself a secret"
        )


def test_a_new_shared_secret_rolls_every_presto_pod() -> None:
    before = render("dev")
    after = render("dev", secrets={"credentials": {"prestoSharedSecret": "Abcdefghijklmnop-1234-shared-secret"}})
    for workload in (names.PRESTO_COORDINATOR, names.PRESTO_WORKER):
        old, new = pod_annotations(before, workload), pod_annotations(after, workload)
        assert old[SECRET_CONFIG_DIGEST] != new[SECRET_CONFIG_DIGEST], f"Deployment/{workload} keeps the old secret"
        assert "Abcdefghijklmnop-1234" not in str(after.named("Deployment", workload).inputs)


def test_the_password_file_holds_a_salted_pbkdf2_hash_of_each_user(stack: Rendered) -> None:
    secret = stack.named("Secret", names.PRESTO_PASSWORD_FILE_SECRET)
    assert secret.secret_paths in (["stringData"], [f"stringData.{PASSWORD_FILE}"])
    lines = secret.inputs["stringData"][PASSWORD_FILE].splitlines()
    users = {c.key: fake_password(f"credentials-{c.name}") for c in CREDENTIALS if c.secret == PRESTO_USERS_SECRET}
    assert sorted(line.split(":")[0] for line in lines) == sorted(users)
    for line in lines:
        user, rounds, salt, digest = line.split(":")
        expected = hashlib.pbkdf2_hmac("sha1", users[user].encode(), bytes.fromhex(salt), int(rounds)).hex()
        assert digest == expected and int(rounds) >= 1000 and len(salt) == 32
    assert len({line.split(":")[2] for line in lines}) == len(lines), "every user has a salt of its own"


def test_the_coordinator_certificate_is_a_tls_secret_signed_by_the_exported_ca(stack: Rendered) -> None:
    secret = stack.named("Secret", names.PRESTO_TLS_SECRET)
    assert secret.inputs["type"] == "kubernetes.io/tls"
    assert set(secret.inputs["stringData"]) == {"tls.crt", "tls.key", "ca.crt"}
    assert secret.secret_paths in (["stringData"], ["stringData.tls.key"]), "the private key is a Pulumi secret"
    (request,) = [r for r in stack.resources if r.name == f"certificates-{names.PRESTO_COORDINATOR}-request"]
    namespace = stack.outputs["namespace"]
    assert f"{names.PRESTO_COORDINATOR}.{namespace}.svc.cluster.local" in request.inputs["dnsNames"]
    assert stack.outputs["prestoCaCertificate"] == secret.inputs["stringData"]["ca.crt"]
    assert "prestoCaCertificate" not in stack.secret_outputs, "clients need it; it is public"


PRESTO_NODES = (names.PRESTO_COORDINATOR, names.PRESTO_WORKER)
ISSUER_CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2FtYW5hZ2VyIHRlc3QgQ0E=\n-----END CERTIFICATE-----\n"


def test_with_cert_manager_a_certificate_fills_the_same_secret_and_verify_trusts_the_given_ca() -> None:
    tls = {
        "source": "cert-manager",
        "issuer": {"kind": "ClusterIssuer", "name": "internal-ca"},
        "caCertificate": ISSUER_CA,
    }
    managed = render("dev", overrides={"presto": {"tls": tls}})
    generated = [r.name for r in managed.resources if r.type.startswith("tls:") and r.name.startswith("certificates-")]
    assert not generated, f"a CA for clients is generated: {generated}"
    assert not [s for s in managed.of_kind("Secret") if s.inputs["metadata"]["name"] == names.PRESTO_TLS_SECRET]
    (certificate,) = managed.of_kind("Certificate")
    assert certificate.inputs["apiVersion"] == "cert-manager.io/v1"
    spec = certificate.inputs["spec"]
    assert spec["secretName"] == names.PRESTO_TLS_SECRET, "the coordinator mounts the Secret it always did"
    assert spec["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "internal-ca"}
    assert spec["privateKey"]["encoding"] == "PKCS8", "Presto reads a PKCS#8 key"
    namespace = managed.outputs["namespace"]
    assert f"{names.PRESTO_COORDINATOR}.{namespace}.svc.cluster.local" in spec["dnsNames"]
    assert managed.outputs["prestoCaCertificate"] == ISSUER_CA
    digests = {w: pod_annotations(managed, w)[SECRET_CONFIG_DIGEST] for w in PRESTO_NODES}
    assert digests[names.PRESTO_COORDINATOR] == digests[names.PRESTO_WORKER], (
        "cert-manager renews the clients' certificate unseen by Pulumi: it cannot be in the coordinator's digest"
    )


MIB = 1024 * 1024
SMALL = OffHeap(
    metaspace_mb=100,
    code_cache_mb=50,
    direct_mb=20,
    thread_stack_kb=512,
    threads=100,
    native_mb=30,
    gc_per_heap=Decimal("0.1"),
)


@pytest.mark.parametrize("limit", ["768Mi", "1Gi", "1536Mi", "8Gi", "30Gi"])
def test_the_jvm_budget_is_the_largest_heap_that_fits_the_limit(limit: str) -> None:
    fitted = jvm_budget(limit, SMALL, heap_alignment_mb=32)
    assert SMALL.fixed_mb() == 100 + 50 + 20 + 100 * 512 // 1024 + 30
    assert fitted.heap_mb % 32 == 0
    assert fitted.total_mb() <= quantity_value(limit) / MIB, f"{limit}: {fitted.total_mb()} MiB in all"
    larger = JvmBudget(limit_mb=fitted.limit_mb, heap_mb=fitted.heap_mb + 32, off_heap=SMALL)
    assert larger.total_mb() > quantity_value(limit) / MIB, f"{limit}: a heap of {larger.heap_mb} MiB fits too"
    assert fitted.flags() == [
        f"-Xms{fitted.heap_mb}m",
        f"-Xmx{fitted.heap_mb}m",
        "-XX:MaxMetaspaceSize=100m",
        "-XX:ReservedCodeCacheSize=50m",
        "-XX:MaxDirectMemorySize=20m",
        "-Xss512k",
    ]


def test_a_limit_the_off_heap_parts_fill_leaves_no_heap() -> None:
    with pytest.raises(ValueError, match="a 256Mi limit leaves no heap: the JVM needs 250 MiB beside it"):
        jvm_budget("256Mi", SMALL, heap_alignment_mb=32)


def flag_mb(jvm: list[str], prefix: str) -> int:
    """The value, in MiB, of the one JVM option with this prefix (sizes given in m or k)."""
    (value,) = [option.removeprefix(prefix) for option in jvm if option.startswith(prefix)]
    return int(value[:-1]) // 1024 if value.endswith("k") else int(value[:-1])


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_each_presto_jvm_is_held_to_a_budget_within_its_container_limit(stack_name: str) -> None:
    stack = render(stack_name)
    presto = settings_of(stack).presto
    for workload, config_name, role, coordinator in (
        (names.PRESTO_COORDINATOR, names.PRESTO_COORDINATOR_CONFIG, presto.coordinator, True),
        (names.PRESTO_WORKER, names.PRESTO_WORKER_CONFIG, presto.workers, False),
    ):
        jvm = stack.named("ConfigMap", config_name).inputs["data"]["jvm.config"].splitlines()
        off_heap = memory.COORDINATOR if coordinator else memory.WORKER
        heap = flag_mb(jvm, "-Xmx")
        assert flag_mb(jvm, "-Xms") == heap, f"ConfigMap/{config_name}: the heap is committed at start"
        parts = {
            "-XX:MaxMetaspaceSize=": off_heap.metaspace_mb,
            "-XX:ReservedCodeCacheSize=": off_heap.code_cache_mb,
            "-XX:MaxDirectMemorySize=": off_heap.direct_mb,
        }
        assert {prefix: flag_mb(jvm, prefix) for prefix in parts} == parts, f"ConfigMap/{config_name}: uncapped parts"
        stacks = flag_mb(jvm, "-Xss") * off_heap.threads
        footprint = heap + math.ceil(heap * off_heap.gc_per_heap) + sum(parts.values()) + stacks + off_heap.native_mb
        limit = quantity_value(role.resources.limits.memory) / MIB
        assert footprint <= limit, f"Deployment/{workload}: the JVM may reach {footprint} MiB in a {limit} MiB limit"
        assert heap >= memory.MIN_HEAP_MB
        (container,) = pod_spec(stack.named("Deployment", workload))["containers"]
        assert container["resources"]["limits"]["memory"] == role.resources.limits.memory


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_query_memory_fits_the_heap(stack_name: str) -> None:
    stack = render(stack_name)
    presto = settings_of(stack).presto
    nodes = presto.workers.max_replicas + (1 if presto.coordinator.schedules_work else 0)
    worker_plan = memory.memory_plan(presto.workers.resources.limits.memory, coordinator=False)
    for config_name, role, coordinator in (
        (names.PRESTO_COORDINATOR_CONFIG, presto.coordinator, True),
        (names.PRESTO_WORKER_CONFIG, presto.workers, False),
    ):
        config = properties(stack.named("ConfigMap", config_name).inputs["data"]["config.properties"])
        heap = memory.budget(role.resources.limits.memory, coordinator).heap_mb
        user, total, headroom = (
            int(config[key].removesuffix("MB"))
            for key in ("query.max-memory-per-node", "query.max-total-memory-per-node", "memory.heap-headroom-per-node")
        )
        # The reserved pool holds one query's total memory; the general pool, the rest of the heap less the
        # headroom, must hold one query's user memory (Presto refuses to start otherwise).
        assert total + headroom <= heap and user <= heap - total - headroom, f"ConfigMap/{config_name}"
        assert config["query.max-memory"] == f"{worker_plan.per_node_user_mb * nodes}MB"
        assert config["query.max-total-memory"] == f"{worker_plan.per_node_total_mb * nodes}MB"


def test_a_presto_limit_too_small_for_the_jvm_is_refused_naming_the_key() -> None:
    small = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    with pytest.raises(SettingsError) as caught:
        parse_settings("dev", stack_config("dev", {"presto": {"workers": {"resources": small}}}))
    message = str(caught.value)
    assert "presto.workers.resources.limits.memory" in message and "Presto needs at least 512 MiB of heap" in message


QUEUE = {"signal": "queue", "queriesPerWorker": 4, "kedaNamespace": "keda"}


@pytest.fixture(scope="module")
def queue_scaled() -> Rendered:
    """The dev stack with its workers scaled on the queue signal, through KEDA."""
    return render("dev", overrides={"presto": {"workers": {"autoscaling": QUEUE}}})


def test_the_queue_signal_renders_a_keda_scaled_object_instead_of_the_hpa(queue_scaled: Rendered) -> None:
    assert not queue_scaled.of_kind("HorizontalPodAutoscaler"), "KEDA makes the HPA; a second one would fight it"
    scaled = queue_scaled.named("ScaledObject", names.PRESTO_WORKER).inputs
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert keda_problems(scaled) == [], f"ScaledObject/{names.PRESTO_WORKER} breaks KEDA 2.16's CRD"
    workers = settings_of(queue_scaled).presto.workers
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": names.PRESTO_WORKER}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (workers.min_replicas, workers.max_replicas)
    hpa = spec["advanced"]["horizontalPodAutoscalerConfig"]
    assert hpa["name"] == names.PRESTO_WORKER, "KEDA's HPA keeps the name verify looks for"
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == workers.scale_down_stabilization_seconds
    queue, cpu = spec["triggers"]
    namespace = queue_scaled.outputs["namespace"]
    assert queue["type"] == "prometheus" and queue["metricType"] == "AverageValue"
    assert queue["metadata"]["serverAddress"] == f"http://prometheus.{namespace}.svc.cluster.local:9090"
    assert queue["metadata"]["threshold"] == "4"
    exported = {rule.name for rule in PRESTO_RULES}
    read = {selector.name for selector in selectors(queue["metadata"]["query"])}
    assert read == {"presto_queries_queued", "presto_queries_running"} <= exported
    assert cpu == {"type": "cpu", "metricType": "Utilization", "metadata": {"value": str(workers.cpu_target_percent)}}


def test_the_keda_schema_is_strict() -> None:
    typo = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"name": "x"}, "triggers": [{"type": "cpu", "metadata": {}}], "maxReplicas": 3},
    }
    assert keda_problems(typo) == ["spec: Additional properties are not allowed ('maxReplicas' was unexpected)"]


def test_only_kedas_namespace_reaches_prometheus_and_only_its_port(queue_scaled: Rendered) -> None:
    namespace = queue_scaled.outputs["namespace"]
    prometheus = Pod(selector_labels(names.PROMETHEUS, "server", queue_scaled.stack), namespace)
    operator = Pod({"app": "keda-operator"}, "keda")
    assert allowed(queue_scaled, operator, prometheus, names.PROMETHEUS_PORT)
    assert not allowed(queue_scaled, Pod({"app": "keda-operator"}, "elsewhere"), prometheus, names.PROMETHEUS_PORT)
    coordinator = Pod(selector_labels(names.PRESTO_COORDINATOR, "coordinator", queue_scaled.stack), namespace)
    for target, port in ((prometheus, 9091), (coordinator, names.PRESTO_HTTPS_PORT), (coordinator, 9404)):
        assert not allowed(queue_scaled, operator, target, port), f"KEDA reaches {target.labels}:{port}"
    assert not allowed(render("dev"), operator, prometheus, names.PROMETHEUS_PORT), "the cpu signal admits no KEDA"


@pytest.mark.parametrize(
    ("autoscaling", "messages"),
    [
        (
            {"signal": "queue"},
            [
                "presto.workers.autoscaling.queriesPerWorker: must be set when signal is queue",
                "presto.workers.autoscaling.kedaNamespace: must be set when signal is queue",
            ],
        ),
        (
            {"queriesPerWorker": 4},
            ["presto.workers.autoscaling.queriesPerWorker = 4: must be unset when signal is cpu"],
        ),
        ({"signal": "memory"}, ["presto.workers.autoscaling.signal"]),
    ],
)
def test_the_queue_signal_needs_its_target_and_keda_namespace(autoscaling: dict, messages: list[str]) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings("dev", stack_config("dev", {"presto": {"workers": {"autoscaling": autoscaling}}}))
    for message in messages:
        assert message in str(caught.value), str(caught.value)
