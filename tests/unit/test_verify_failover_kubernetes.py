"""verify failover's Kubernetes and Chaos Mesh injectors, cleanup and CLI, against recorded API behaviour.

tests/support/fakes/chaos_cluster.py answers as the API server and the controllers do (pods replaced after a
delete, Chaos Mesh objects validated against the CRD schemas and finalized, an HPA on a timeline).
The end-to-end runs probe the real Presto; the fake's pod deletes do not reach it, so there the
figures show a fault Presto never felt: what is tested is the injection, the waits and the cleanup.
"""

import argparse
import re
import time
from dataclasses import replace

import pytest
from kubernetes.client.exceptions import ApiException

from components import names
from components.settings.model import Settings
from tests.support.fakes.chaos_cluster import Api
from tests.support.fakes.kubernetes import pod_name
from verify.cli.failover import failover_plan, prepare
from verify.cli.parser import parser
from verify.core.checks import Cleanup
from verify.core.errors import UsageError
from verify.core.exit_codes import ExitCode, exit_code
from verify.core.runner import Redactor, clean_up
from verify.failover import injectors
from verify.failover.injectors import ChaosMeshInjector, CleanupError, KubernetesInjector
from verify.failover.plan import FailoverPlan
from verify.failover.replication import LOCAL, choose_victim
from verify.failover.scenarios import BY_NAME, SCENARIOS
from verify.kube import checks
from verify.kube.labels import RUN_LABEL
from verify.smoke.replication import Health, ReplicaState, Server

RUN = "20261124050000-abcdef"


def test_the_kubernetes_injector_deletes_a_ready_pod_at_once_and_waits_for_its_replacement(api: Api) -> None:
    # 2 s, not the fixture's 0.5: two API round trips on a loaded 2-core machine took longer than 0.5 s.
    api.writable.restart_seconds = 2.0
    injector, fault = KubernetesInjector(api.cluster), BY_NAME["worker-kill"].fault_for(None)
    assert injector.method(fault) == "kubernetes pod delete"
    worker = pod_name("Deployment", names.PRESTO_WORKER)
    assert injector.inject(fault) == f"deleted pod {worker} (grace period 0)"
    assert api.writable.deleted_pods == [(worker, "0")]
    assert not injector.ready(fault), "the replacement is not ready yet"
    time.sleep(2.1)
    assert injector.ready(fault)


def test_the_kubernetes_api_cannot_express_a_partition_or_a_stress(api: Api) -> None:
    injector = KubernetesInjector(api.cluster)
    for scenario in SCENARIOS:
        expressible = injector.method(scenario.fault_for(None)) is not None
        assert expressible == (scenario.fault.kind == "pod-kill"), scenario.name


def test_chaos_mesh_is_used_only_where_its_api_is_served(api: Api) -> None:
    assert injectors.installed(api.cluster)
    api.writable.chaos_mesh = False
    assert not injectors.installed(api.cluster)


IN_DEV = [s for s in SCENARIOS if names.CLICKHOUSE_KEEPER not in s.fault.workloads]
"""The scenarios whose workloads dev has (it has no Keeper: keeper-loss is tested against prod below)."""


@pytest.mark.parametrize("scenario", IN_DEV, ids=[s.name for s in IN_DEV])
def test_each_fault_becomes_valid_chaos_mesh_experiments_removed_when_it_ends(api: Api, scenario) -> None:
    injector = ChaosMeshInjector(api.cluster, RUN)
    fault = scenario.fault_for(None)
    text = injector.inject(fault)  # the fake refuses (422) what the CRD schemas do not allow
    created = api.writable.created
    assert len(created) == len(scenario.fault.workloads) and text.startswith("created ")
    assert all(c["metadata"]["labels"][RUN_LABEL] == RUN for c in created)
    assert all(c["spec"]["selector"]["namespaces"] == [api.cluster.namespace] for c in created)
    injector.end(fault)
    injector.remove_all()  # waits until Chaos Mesh has finalized them
    assert all(not objects for objects in api.writable.custom.values()), api.writable.custom


def test_an_experiment_that_cannot_be_removed_fails_cleanup_and_the_run_exits_5(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(injectors, "REMOVE_WAIT", 1.0)
    injector = ChaosMeshInjector(api.cluster, RUN)
    fault = BY_NAME["presto-clickhouse-partition"].fault_for(None)
    injector.inject(fault)
    api.writable.stuck = {c["metadata"]["name"] for c in api.writable.created}
    with pytest.raises(CleanupError, match="networkchaos/verify-"):
        injector.remove_all()
    cleanup = Cleanup()
    cleanup.add(f"fault objects of run {RUN}", injector.remove_all)
    record = clean_up(cleanup, Redactor([]))
    assert record.status == "failed" and "still present" in str(record.error)
    assert exit_code([record], interrupted=False) == ExitCode.CLEANUP


def test_a_service_account_without_a_token_is_a_usage_error_naming_it(api: Api, dev_settings: Settings) -> None:
    operator = str(api.kubeconfig.with_name("kubeconfig-operator"))
    with pytest.raises(
        UsageError,
        match=rf"--service-account nobody: the API refused a token for {dev_settings.namespace}/nobody \(404",
    ):
        checks.connect(operator, None, dev_settings.namespace, "nobody")


def failover_args(*flags: str) -> argparse.Namespace:
    """`verify failover FLAGS` as the command line parses it."""
    return parser().parse_args(["failover", *flags])


def test_the_settle_window_is_a_flag_in_seconds_that_plan_shows_and_the_deadline_counts() -> None:
    assert failover_plan(failover_args()).settle == FailoverPlan().settle == 30.0
    plan = failover_plan(failover_args("--settle", "90"))
    assert plan.settle == 90.0
    assert plan.deadline(BY_NAME["worker-kill"]) == failover_plan(failover_args()).deadline(BY_NAME["worker-kill"]) + 60
    job = prepare(failover_args("--settle", "90", "--scenario", "worker-kill"), None, planning=True)  # type: ignore[arg-type]
    assert job.parameters["failover.settle"] == 90.0
    shown = " ".join(failover_parser().format_help().split())
    settle = shown[shown.index("--settle SECONDS") : shown.index("--baseline SECONDS")]
    assert "seconds each scenario waits, before its fault, for a steady state" in settle
    assert settle.rstrip().endswith("(default: 30.0)"), settle


def failover_parser() -> argparse.ArgumentParser:
    """The failover subcommand's parser."""
    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["failover"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--settle", "0.2"), "--settle 0.2: too short for 5 probes 0.1s apart: at least 0.5 seconds"),
        (("--settle", "1", "--recovery-probes", "20"), "--settle 1: too short for 20 probes 0.1s apart: at least 2"),
        (("--probe-interval", "0.5"), "--probe-interval 0.5: the probe interval must be above 0 and at most 0.1"),
    ],
)
def test_a_settle_window_too_short_for_k_probes_is_a_usage_error_naming_the_flag(flags: tuple, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        failover_plan(failover_args(*flags))


def test_a_settle_window_of_zero_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        failover_args("--settle", "0")
    assert refused.value.code == ExitCode.USAGE
    assert "argument --settle: 0: must be above 0" in capsys.readouterr().err


@pytest.fixture
def prod_api(tmp_path, rendered_stacks, dev_settings: Settings):  # type: ignore[no-untyped-def]
    """The prod stack (ClickHouse 2 x 2, 3 Keeper nodes) in a fake cluster with every pod of each StatefulSet."""
    from tests.support.fakes.chaos_cluster import Writable, fake_writable_api
    from tests.support.fakes.kubernetes import FakeCluster

    rendered = rendered_stacks["prod"]
    writable = Writable(FakeCluster.healthy(rendered, every_pod=True), restart_seconds=0.5)
    namespace = rendered.named("Role", names.VERIFY).inputs["metadata"]["namespace"]
    with fake_writable_api(writable, tmp_path) as kubeconfig:
        yield Api(writable, kubeconfig, checks.connect(str(kubeconfig), None, namespace))
    assert writable.cluster.forbidden == [], "verify needs nothing its Role does not grant"


def test_a_replica_kill_through_the_kubernetes_api_deletes_only_the_named_pod_of_the_statefulset(
    prod_api: Api,
) -> None:
    pods = sorted(n for n in prod_api.writable.cluster.objects["Pod"] if n.startswith(f"{names.CLICKHOUSE}-"))
    assert [p for p in pods if "keeper" not in p] == [f"{names.CLICKHOUSE}-{i}" for i in range(4)]
    injector = KubernetesInjector(prod_api.cluster)
    fault = replace(BY_NAME["clickhouse-replica-kill"].fault_for(None), pod=f"{names.CLICKHOUSE}-3")
    assert injector.inject(fault) == f"deleted pod {names.CLICKHOUSE}-3 (grace period 0)"
    assert prod_api.writable.deleted_pods == [(f"{names.CLICKHOUSE}-3", "0")], "one replica, not the workload"
    assert not injector.ready(fault), "its replacement, under the same name, is not ready yet"
    time.sleep(0.6)
    assert injector.ready(fault)


def test_a_replica_kill_cannot_hit_a_pod_that_is_not_a_ready_pod_of_the_workload(prod_api: Api) -> None:
    fault = replace(BY_NAME["clickhouse-replica-kill"].fault_for(None), pod=f"{names.CLICKHOUSE}-9")
    with pytest.raises(ApiException, match=f"no ready pod {names.CLICKHOUSE}-9"):
        KubernetesInjector(prod_api.cluster).inject(fault)
    assert not prod_api.writable.deleted_pods


def test_a_replica_kill_through_chaos_mesh_names_its_one_pod_and_a_keeper_loss_any_keeper_pod(prod_api: Api) -> None:
    injector = ChaosMeshInjector(prod_api.cluster, RUN)
    fault = replace(BY_NAME["clickhouse-replica-kill"].fault_for(None), pod=f"{names.CLICKHOUSE}-3")
    injector.inject(fault)  # the fake refuses (422) what the CRD schemas do not allow
    injector.inject(BY_NAME["keeper-loss"].fault_for(None))
    named, keeper = (c["spec"] for c in prod_api.writable.created)
    namespace = prod_api.cluster.namespace
    assert named["mode"] == "one" and named["selector"]["pods"] == {namespace: [f"{names.CLICKHOUSE}-3"]}
    assert keeper["mode"] == "one" and "pods" not in keeper["selector"]
    assert keeper["selector"]["labelSelectors"]["app.kubernetes.io/name"] == names.CLICKHOUSE_KEEPER
    injector.end(fault)
    injector.remove_all()


def test_the_killed_replica_is_the_last_of_a_shard_of_two_never_the_server_verify_reads_through() -> None:
    servers = [Server(shard, replica, f"h{shard}{replica}:9000") for shard in (1, 2) for replica in (1, 2)]
    states = tuple(ReplicaState(s, LOCAL, f"clickhouse-{i}", False, False, 0, 0, 2, 2) for i, s in enumerate(servers))
    health = Health(tuple(servers), states, {}, 4)
    victim = choose_victim(health, reached="clickhouse-0")
    assert victim is not None and victim.name == "clickhouse-3" and victim.peers == (servers[2],)
    assert (chosen := choose_victim(health, reached="clickhouse-3")) is not None and chosen.name == "clickhouse-2"
    singles = Health(tuple(servers[::2]), states[::2], {}, 2)  # 2 shards x 1 replica: nothing to fail over to
    assert choose_victim(singles, reached="clickhouse-0") is None


def test_a_healthy_cluster_has_no_problems_and_each_broken_replica_is_named() -> None:
    server = Server(1, 2, "h12:9000")
    good = ReplicaState(Server(1, 1, "h11:9000"), LOCAL, "clickhouse-0", False, False, 3, 1, 2, 2)
    bad = ReplicaState(server, LOCAL, "clickhouse-1", True, True, 101, 61, 2, 1)
    assert (
        Health(
            (good.server, server),
            (good, replace(bad, readonly=False, session_expired=False, queue=0, delay=0, active=2)),
            {},
            2,
        ).problems()
        == []
    )
    found = Health((good.server, server), (good, bad), {}, 1).problems()
    assert found == [
        f"clickhouse-1 ({LOCAL}, shard 1) is read-only",
        f"clickhouse-1 ({LOCAL}, shard 1) has no Keeper session",
        f"clickhouse-1 ({LOCAL}, shard 1) sees 1 of 2 replicas active",
        f"clickhouse-1 ({LOCAL}, shard 1) has 101 queued entries (more than 100)",
        f"clickhouse-1 ({LOCAL}, shard 1) is 61s behind (more than 60s)",
        "1 of 2 servers with replicated tables cannot read Keeper",
    ]
    single = Health((Server(1, 1, "h:9000"),), (), {}, 0)
    assert single.problems() == [] and single.figures()["replicas"] == 0
