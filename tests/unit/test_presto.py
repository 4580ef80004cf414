"""The Presto component in both stacks: coordinator, autoscaled draining workers, config and Secrets."""

import hashlib

from components import names
from components.data.presto.config import PASSWORD_FILE, graceful_shutdown_command, start_script
from components.security.credential_catalog import CREDENTIALS, PRESTO_USERS_SECRET
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
    assert targets == {"cpu": workers.cpu_target_percent, "memory": workers.memory_target_percent}
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == workers.scale_down_stabilization_seconds


def test_workers_drain_before_they_stop(stack: Rendered) -> None:
    grace = settings_of(stack).presto.workers.shutdown_grace_period_seconds
    spec = pod_spec(stack.named("Deployment", names.PRESTO_WORKER))
    (container,) = spec["containers"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == graceful_shutdown_command(
        names.PRESTO_HTTP_PORT, grace
    )
    assert spec["terminationGracePeriodSeconds"] > 2 * grace, "Kubernetes must not kill a draining worker"
    config = stack.named("ConfigMap", names.PRESTO_WORKER_CONFIG).inputs["data"]["config.properties"]
    assert f"shutdown.grace-period={grace}s" in config


def test_secrets_reach_presto_as_files_not_config(stack: Rendered) -> None:
    every_node = {"presto-internal", "clickhouse-users"}
    coordinator_only = {names.PRESTO_TLS_SECRET, names.PRESTO_PASSWORD_FILE_SECRET}
    for workload, config_name, secrets in (
        (names.PRESTO_COORDINATOR, names.PRESTO_COORDINATOR_CONFIG, every_node | coordinator_only),
        (names.PRESTO_WORKER, names.PRESTO_WORKER_CONFIG, every_node),
    ):
        volumes = {v["name"]: v for v in pod_spec(stack.named("Deployment", workload))["volumes"]}
        sources = volumes["secrets"]["projected"]["sources"]
        assert {s["secret"]["name"] for s in sources} == secrets
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
    assert "-Xmx716m" in data["jvm.config"], "70% of the 1Gi limit"


def test_clients_reach_the_coordinator_only_over_https_with_a_password(stack: Rendered) -> None:
    coordinator = stack.named("ConfigMap", names.PRESTO_COORDINATOR_CONFIG).inputs["data"]
    assert "http-server.https.enabled=true" in coordinator["config.properties"]
    assert f"http-server.https.port={names.PRESTO_HTTPS_PORT}" in coordinator["config.properties"]
    assert "http-server.authentication.type=PASSWORD" in coordinator["config.properties"]
    assert "password-authenticator.name=file" in coordinator["password-authenticator.properties"]
    worker = stack.named("ConfigMap", names.PRESTO_WORKER_CONFIG).inputs["data"]
    assert "password-authenticator.properties" not in worker and "https" not in worker["config.properties"]
    ports = {p["name"]: p["port"] for p in stack.named("Service", names.PRESTO_COORDINATOR).inputs["spec"]["ports"]}
    assert ports == {"http": names.PRESTO_HTTP_PORT, "https": names.PRESTO_HTTPS_PORT}
    assert stack.outputs["prestoUrl"].startswith("https://") and stack.outputs["prestoUrl"].endswith(":8443")


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
    (request,) = [r for r in stack.resources if r.type == "tls:index/certRequest:CertRequest"]
    namespace = stack.outputs["namespace"]
    assert f"{names.PRESTO_COORDINATOR}.{namespace}.svc.cluster.local" in request.inputs["dnsNames"]
    assert stack.outputs["prestoCaCertificate"] == secret.inputs["stringData"]["ca.crt"]
    assert "prestoCaCertificate" not in stack.secret_outputs, "clients need it; it is public"


ISSUER_CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2FtYW5hZ2VyIHRlc3QgQ0E=\n-----END CERTIFICATE-----\n"


def test_with_cert_manager_a_certificate_fills_the_same_secret_and_verify_trusts_the_given_ca() -> None:
    tls = {
        "source": "cert-manager",
        "issuer": {"kind": "ClusterIssuer", "name": "internal-ca"},
        "caCertificate": ISSUER_CA,
    }
    managed = render("dev", overrides={"presto": {"tls": tls}})
    assert not [r for r in managed.resources if r.type.startswith("tls:")], "no CA is generated"
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
