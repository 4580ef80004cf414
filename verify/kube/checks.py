"""The stack as Kubernetes sees it: preflight (rolled out, nothing missing) and the Kubernetes smoke checks."""

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from verify.core.checks import Check, CheckFailedError, Context, Figures
from verify.core.errors import UsageError
from verify.core.targets import Targets

REQUEST_TIMEOUT = (5, 15)
"""Seconds to connect to the API server and to read one answer."""
TOKEN_SECONDS = 3600
"""Lifetime of the ServiceAccount token verify asks for: longer than any run (the API may shorten it)."""


@dataclass(frozen=True)
class Cluster:
    """Clients for the Kubernetes API of the cluster the stack runs in."""

    api: client.ApiClient
    namespace: str

    @property
    def server(self) -> str:
        """The API server's URL, for `plan` and the reports."""
        return str(self.api.configuration.host)

    def names(self, kind: str) -> dict[str, Any]:
        """The namespace's objects of a kind, by name."""
        listed = LISTS[kind](self.api)(self.namespace, _request_timeout=REQUEST_TIMEOUT)
        return {item.metadata.name: item for item in listed.items}


LISTS: dict[str, Callable[[client.ApiClient], Callable[..., Any]]] = {
    "Deployment": lambda api: client.AppsV1Api(api).list_namespaced_deployment,
    "StatefulSet": lambda api: client.AppsV1Api(api).list_namespaced_stateful_set,
    "Service": lambda api: client.CoreV1Api(api).list_namespaced_service,
    "HorizontalPodAutoscaler": lambda api: client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler,
    "PodDisruptionBudget": lambda api: client.PolicyV1Api(api).list_namespaced_pod_disruption_budget,
    "NetworkPolicy": lambda api: client.NetworkingV1Api(api).list_namespaced_network_policy,
}
"""How to list each kind the stack exports in `expected.objects` that verify checks.

Not Secrets: listing them reads their data, which verify's Role does not grant. A missing Secret shows
as a pod that cannot start, so as a workload the preflight finds not ready."""
PREFLIGHT_KINDS = ("Deployment", "StatefulSet", "Service")


def connect(kubeconfig: str | None, context: str | None, namespace: str, service_account: str | None = None) -> Cluster:
    """A client from a kubeconfig (the default one, or in-cluster when run in a pod); usage error if none.

    Given a ServiceAccount, the kubeconfig's identity only asks for a short-lived token of it, and every
    other call is made with that token: verify then has exactly the rights of the account's Role.
    """
    try:
        api = config.new_client_from_config(config_file=kubeconfig, context=context, persist_config=False)
    except (ConfigException, OSError) as outside:
        try:
            config.load_incluster_config()
        except ConfigException:
            raise UsageError(
                f"no Kubernetes config ({outside}): pass --kubeconfig, or --no-kubernetes with every endpoint given"
            ) from None
        api = client.ApiClient()
    if service_account:
        api = as_service_account(api, namespace, service_account)
    return Cluster(api, namespace)


def as_service_account(api: client.ApiClient, namespace: str, name: str) -> client.ApiClient:
    """A client of the same API server that authenticates as the ServiceAccount, with a token minted for it."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=TOKEN_SECONDS)
    )
    try:
        minted = client.CoreV1Api(api).create_namespaced_service_account_token(
            name, namespace, request, _request_timeout=REQUEST_TIMEOUT
        )
    except client.exceptions.ApiException as error:
        raise UsageError(
            f"--service-account {name}: the API refused a token for {namespace}/{name} "
            f"({error.status} {error.reason}); the ServiceAccount comes with the stack, and the kubeconfig's "
            "user needs create on serviceaccounts/token"
        ) from None
    except (OSError, urllib3.exceptions.HTTPError) as error:
        raise UsageError(f"--service-account {name}: the API server could not be reached ({error})") from None
    token = minted.status.token if minted.status else None
    if not token:
        raise UsageError(
            f"--service-account {name}: the API answered the token request of {namespace}/{name} without one"
        )
    configuration = copy.copy(api.configuration)
    # Only the token identifies the client: no client certificate, password or token of the kubeconfig.
    configuration.cert_file = configuration.key_file = None
    configuration.username = configuration.password = None
    configuration.refresh_api_key_hook = None
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


Judge = Callable[[str, Any, Figures], str | None]
"""Looks at one object (its name, the object, the figures to add to): its problem, or None."""


def survey(cluster: Cluster, kind: str, expected: tuple[str, ...], judge: Judge) -> tuple[list[str], Figures]:
    """Each expected object of a kind: the missing ones and the judge's problems, and the judge's figures."""
    found = cluster.names(kind)
    problems = [f"{name}: missing" for name in expected if name not in found]
    figures: Figures = {}
    problems += filter(None, (judge(name, found[name], figures) for name in expected if name in found))
    return problems, figures


def each(cluster: Cluster, kind: str, expected: tuple[str, ...], judge: Judge) -> Figures:
    """Judge each expected object of a kind; fail with every problem found, figures included."""
    problems, figures = survey(cluster, kind, expected, judge)
    if problems:
        raise CheckFailedError("; ".join(problems), figures)
    return figures


def present(_: str, __: Any, figures: Figures) -> None:
    """An object that only has to exist (a NetworkPolicy): counted."""
    figures["present"] = int(figures.get("present", 0)) + 1


def rolled_out(name: str, item: Any, figures: Figures) -> str | None:
    """Why a Deployment or StatefulSet is not rolled out and ready, or None when it is; counted."""
    present(name, item, figures)
    status = item.status
    wanted = 1 if item.spec.replicas is None else item.spec.replicas
    observed, generation = status.observed_generation or 0, item.metadata.generation or 0
    if observed < generation:
        return f"{name}: generation {generation} not yet observed by its controller (at {observed})"
    for label, count in (("updated", status.updated_replicas), ("ready", status.ready_replicas)):
        if (count or 0) < wanted:
            return f"{name}: {count or 0}/{wanted} replicas {label}"
    update = getattr(status, "update_revision", None)  # StatefulSets only
    if update and status.current_revision != update:
        return f"{name}: rolling from revision {status.current_revision} to {update}"
    return None


def preflight_problems(cluster: Cluster, objects: dict[str, tuple[str, ...]]) -> tuple[list[str], Figures]:
    """What is missing or not ready among the stack's workloads and Services; and how many are there."""
    problems: list[str] = []
    figures: Figures = {}
    for kind in PREFLIGHT_KINDS:
        judge = rolled_out if kind in ("Deployment", "StatefulSet") else present
        found, counted = survey(cluster, kind, objects.get(kind, ()), judge)
        problems += [f"{kind}/{problem}" for problem in found]
        figures[kind] = counted.get("present", 0)
    return problems, figures


def preflight_check(cluster: Cluster, targets: Targets) -> Check:
    """Every Deployment and StatefulSet rolled out and ready, every Service there."""

    def probe(_: Context) -> Figures:
        problems, figures = preflight_problems(cluster, targets.expected.objects)
        if problems:
            raise CheckFailedError(f"not ready in namespace {cluster.namespace}: " + "; ".join(problems), figures)
        return figures

    return Check(
        name="kubernetes.preflight",
        scenario="preflight",
        target=cluster.server,
        probe=probe,
        deadline=30,
        tags=frozenset({"kubernetes"}),
        gate=True,
    )


METRICS_GROUP, METRICS_VERSION = "metrics.k8s.io", "v1beta1"
METRICS_API = f"/apis/{METRICS_GROUP}/{METRICS_VERSION}"
"""The resource metrics API an HPA reads CPU and memory from (served by metrics-server)."""


def metrics_api_problem(cluster: Cluster) -> str | None:
    """Why the API server does not serve the resource metrics API, or None when it does."""
    try:
        client.CustomObjectsApi(cluster.api).get_api_resources(
            METRICS_GROUP, METRICS_VERSION, _request_timeout=REQUEST_TIMEOUT
        )
    except client.exceptions.ApiException as error:
        if error.status == 404:
            return f"{METRICS_API} is not served: no metrics-server is installed"
        return f"{METRICS_API} answers {error.status} {error.reason}: metrics-server is registered but not serving"
    return None


def metrics_api_check(cluster: Cluster, autoscalers: tuple[str, ...]) -> Check:
    """The resource metrics API is served, which the stack's autoscalers need."""

    def probe(_: Context) -> Figures:
        problem = metrics_api_problem(cluster)
        if problem:
            raise CheckFailedError(
                f"{problem}, so {', '.join(autoscalers)} cannot scale (HorizontalPodAutoscaler metrics <unknown>); "
                "on minikube: `minikube addons enable metrics-server`"
            )
        return {"autoscalers": len(autoscalers)}

    return Check(
        name="kubernetes.metrics_api",
        scenario="preflight",
        target=f"{cluster.server}{METRICS_API}",
        probe=probe,
        deadline=30,
        tags=frozenset({"kubernetes"}),
    )


METRIC_SOURCES = {
    "Resource": "resource",
    "ContainerResource": "container_resource",
    "Pods": "pods",
    "Object": "object",
    "External": "external",
}
"""Each HPA metric type and the status field holding its value (an HPA without metrics reports type '')."""


def metric_value(metric: Any) -> str | None:
    """An HPA metric's current value as text, or None when the HPA has none yet."""
    source = getattr(metric, METRIC_SOURCES.get(metric.type or "", ""), None)
    current = getattr(source, "current", None)
    if current is None:
        return None
    for value in (current.average_utilization, current.average_value, current.value):
        if value is not None:
            return str(value)
    return None


def hpa_problem(name: str, hpa: Any, figures: Figures) -> str | None:
    """An autoscaler reads current values of its metrics (the metrics pipeline works)."""
    figures[f"{name}.replicas"] = hpa.status.current_replicas or 0
    figures[f"{name}.desired"] = hpa.status.desired_replicas or 0
    values = [metric_value(m) for m in hpa.status.current_metrics or []]
    if not values or None in values:
        return f"{name}: no current metrics (is metrics-server running?)"
    return None


def pdb_problem(name: str, pdb: Any, figures: Figures) -> str | None:
    """A disruption budget is met and allows a voluntary disruption (a node drain can proceed)."""
    status = pdb.status
    figures[f"{name}.disruptions_allowed"] = status.disruptions_allowed
    if status.current_healthy < status.desired_healthy:
        return f"{name}: {status.current_healthy} healthy pods, {status.desired_healthy} required"
    if status.disruptions_allowed < 1:
        return f"{name}: allows no disruption ({status.current_healthy} healthy of {status.expected_pods})"
    return None


def checks(cluster: Cluster, targets: Targets) -> list[Check]:
    """The Kubernetes smoke checks: autoscalers, disruption budgets, network policies."""
    objects, tags = targets.expected.objects, frozenset({"kubernetes"})

    def probe(kind: str, judge: Judge) -> Callable[[Context], Figures]:
        return lambda _: each(cluster, kind, objects.get(kind, ()), judge)

    return [
        Check(
            name=f"kubernetes.{name}",
            scenario="smoke",
            target=cluster.server,
            probe=probe(kind, judge),
            deadline=30,
            tags=tags,
        )
        for name, kind, judge in (
            ("hpas", "HorizontalPodAutoscaler", hpa_problem),
            ("pdbs", "PodDisruptionBudget", pdb_problem),
            ("network_policies", "NetworkPolicy", present),
        )
    ]
