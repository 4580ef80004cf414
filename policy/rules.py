"""The stack's policies as pure functions over resources, so they are unit-tested without the engine.

Each takes a resource as the engine shows it (type token, inputs, URN) or all of a stack's
resources, with the policy config, and returns its violations as messages. `__main__.py` turns them
into a CrossGuard policy pack; the tests run them on single resources and on the rendered stacks.
"""

import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, for components.settings.images

from components.settings.images import unpinned

Config = Mapping[str, Any]

DEFAULTS: dict[str, Any] = {
    "chaosNamespace": "chaos-mesh",
    "allowedServiceTypes": ["ClusterIP"],
    "highAvailabilityStacks": ["prod", "dr"],
}
"""Policy config and its defaults; `pulumi preview --policy-pack-config FILE` overrides them."""

WORKLOADS = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
"""Where each workload type keeps its pod spec."""
LONG_RUNNING = {"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet"}
CREDENTIAL_KEY = re.compile(r"(?i)(^|[._-])(password|passwd|secret|shared-secret|token|api[-_]?key|private[-_]?key)$")
CREDENTIAL_ENV = re.compile(r"(?i)(password|passwd|secret|token|api_?key|private_?key|credentials?)")
SETTING_LINE = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*[=:]\s*(.*?)\s*$")
XML_CREDENTIAL = re.compile(r"(?i)<(password|secret|token)>\s*([^<\s][^<]*)</\1>")
REFERENCE = re.compile(r"^(\$|/|%s|<|\{\{|\"?\$)")
"""A value that points at a credential instead of holding one: $VAR, $__file{...}, a path, a template."""


@dataclass(frozen=True)
class Resource:
    """One resource as a policy sees it."""

    type: str
    props: Mapping[str, Any]
    urn: str

    @property
    def stack(self) -> str:
        """The stack's name, from the URN (urn:pulumi:STACK::PROJECT::TYPE::NAME)."""
        return self.urn.split(":")[2] if self.urn.startswith("urn:pulumi:") else ""

    @property
    def namespace(self) -> str:
        """metadata.namespace, or '' for a cluster-scoped object."""
        return str((self.props.get("metadata") or {}).get("namespace") or "")

    @property
    def label(self) -> str:
        """type/name for messages."""
        name = (self.props.get("metadata") or {}).get("name") or self.urn.rsplit("::", 1)[-1]
        return f"{self.type.rsplit(':', 1)[-1]}/{name}"


def pod_spec(resource: Resource) -> Mapping[str, Any] | None:
    """The pod spec of a workload, or None for anything else."""
    path = WORKLOADS.get(resource.type)
    if path is None:
        return None
    spec: Any = resource.props
    for key in path:
        spec = (spec or {}).get(key)
    return spec or {}


def containers(spec: Mapping[str, Any], init: bool = True) -> Iterator[Mapping[str, Any]]:
    """The containers of a pod spec, init containers first if asked."""
    yield from (spec.get("initContainers") or []) if init else ()
    yield from spec.get("containers") or []


def ours(resource: Resource, config: Config) -> bool:
    """Whether the rules for our own workloads apply (not Chaos Mesh's chart, in its own namespace)."""
    return resource.namespace != config["chaosNamespace"]


# ---------------------------------------------------------------------------------------------------
# Resource policies.
# ---------------------------------------------------------------------------------------------------


def requests_and_limits(resource: Resource, config: Config) -> list[str]:
    """Every container asks for CPU and memory and is capped in both."""
    spec = pod_spec(resource)
    if spec is None or not ours(resource, config):
        return []
    found = []
    for container in containers(spec):
        resources = container.get("resources") or {}
        for part in ("requests", "limits"):
            missing = [kind for kind in ("cpu", "memory") if kind not in (resources.get(part) or {})]
            if missing:
                found.append(f"{resource.label} container {container['name']}: no {part} for {', '.join(missing)}")
    return found


def probes(resource: Resource, config: Config) -> list[str]:
    """Every long-running container has startup, readiness and liveness probes."""
    spec = pod_spec(resource)
    if spec is None or resource.type not in LONG_RUNNING or not ours(resource, config):
        return []
    return [
        f"{resource.label} container {container['name']}: no {probe}"
        for container in containers(spec, init=False)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
        if not container.get(probe)
    ]


def pinned_images(resource: Resource, config: Config) -> list[str]:
    """Every image is pinned to a version tag or a digest."""
    spec = pod_spec(resource)
    if spec is None:
        return []
    return [
        f"{resource.label} container {container['name']}: {problem} ({container.get('image')!r})"
        for container in containers(spec)
        if (problem := unpinned(str(container.get("image") or "")))
    ]


def unprivileged(resource: Resource, config: Config) -> list[str]:
    """Outside the chaos namespace: no privileged container, no escalation, no added capability, no host access."""
    spec = pod_spec(resource)
    if spec is None or not ours(resource, config):
        return []
    found = [f"{resource.label}: uses {key}" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    found += [f"{resource.label}: hostPath volume {v['name']}" for v in spec.get("volumes") or [] if "hostPath" in v]
    for container in containers(spec):
        context = container.get("securityContext") or {}
        where = f"{resource.label} container {container['name']}"
        if context.get("privileged"):
            found.append(f"{where}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: allowPrivilegeEscalation is not false")
        if (context.get("capabilities") or {}).get("add"):
            found.append(f"{where}: adds capabilities {context['capabilities']['add']}")
    return found


def no_credentials_in_plain_sight(resource: Resource, config: Config) -> list[str]:
    """No credential in a ConfigMap's data or in a container's literal env value: they belong in Secrets."""
    if resource.type == "kubernetes:core/v1:ConfigMap":
        return [f"{resource.label} key {key}: {why}" for key, text in _data(resource) for why in _credentials(text)]
    spec = pod_spec(resource)
    if spec is None:
        return []
    return [
        f"{resource.label} container {container['name']}: env {env['name']} holds a literal value"
        for container in containers(spec)
        for env in container.get("env") or []
        if CREDENTIAL_ENV.search(env["name"]) and env.get("value") and not REFERENCE.match(str(env["value"]))
    ]


def not_exposed(resource: Resource, config: Config) -> list[str]:
    """A Service is of an allowed type (ClusterIP unless the stack's policy config allows more)."""
    if resource.type != "kubernetes:core/v1:Service":
        return []
    kind = (resource.props.get("spec") or {}).get("type") or "ClusterIP"
    allowed = config["allowedServiceTypes"]
    return [] if kind in allowed else [f"{resource.label}: type {kind}, allowed: {', '.join(allowed)}"]


# ---------------------------------------------------------------------------------------------------
# Stack policies.
# ---------------------------------------------------------------------------------------------------


def default_deny(resources: list[Resource], config: Config) -> list[str]:
    """Every namespace with workloads of ours has a NetworkPolicy denying all ingress and egress."""
    namespaces = {r.namespace for r in resources if pod_spec(r) is not None and ours(r, config)}
    denied = {
        r.namespace
        for r in resources
        if r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy" and _denies_all(r.props.get("spec") or {})
    }
    return [f"namespace {namespace}: no default-deny NetworkPolicy" for namespace in sorted(namespaces - denied)]


def budgets_in_production(resources: list[Resource], config: Config) -> list[str]:
    """In a highly available stack, every workload that can run more than one pod has a PodDisruptionBudget."""
    if not resources or resources[0].stack not in config["highAvailabilityStacks"]:
        return []
    scaled = {
        (r.namespace, (r.props["spec"].get("scaleTargetRef") or {}).get("name")): r.props["spec"].get("maxReplicas", 1)
        for r in resources
        if r.type.endswith(":HorizontalPodAutoscaler") and r.props.get("spec")
    }
    budgets = [r for r in resources if r.type == "kubernetes:policy/v1:PodDisruptionBudget"]
    found = []
    for workload in resources:
        if workload.type not in LONG_RUNNING - {"kubernetes:apps/v1:DaemonSet"} or not ours(workload, config):
            continue
        name = workload.props["metadata"]["name"]
        replicas = scaled.get((workload.namespace, name), (workload.props.get("spec") or {}).get("replicas", 1))
        labels = ((workload.props["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        covered = any(
            b.namespace == workload.namespace
            and ((b.props.get("spec") or {}).get("selector") or {}).get("matchLabels", {}).items() <= labels.items()
            for b in budgets
        )
        if replicas > 1 and not covered:
            found.append(f"{workload.label}: up to {replicas} replicas and no PodDisruptionBudget")
    return found


def _data(resource: Resource) -> Iterator[tuple[str, str]]:
    """A ConfigMap's entries as text."""
    for key, value in (resource.props.get("data") or {}).items():
        yield key, str(value)


def _credentials(text: str) -> Iterator[str]:
    """Why a text holds a credential: a private key, a URL with a password, a credential setting's value."""
    if re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", text):
        yield "a private key"
    if re.search(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", text):
        yield "a URL with a password"
    for line in text.splitlines():
        match = SETTING_LINE.match(line)
        if match and CREDENTIAL_KEY.search(match[1]) and match[2] and not REFERENCE.match(match[2]):
            yield f"{match[1]} is set to a literal"
    for match in XML_CREDENTIAL.finditer(text):
        yield f"<{match[1]}> holds a literal"


def _denies_all(spec: Mapping[str, Any]) -> bool:
    """Whether a NetworkPolicy selects every pod and allows nothing in or out."""
    selector = spec.get("podSelector") or {}
    return (
        not selector.get("matchLabels")
        and not selector.get("matchExpressions")
        and set(spec.get("policyTypes") or []) == {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )


@dataclass(frozen=True)
class Rule:
    """One policy: its name, what it demands, and the check, on one resource or on the whole stack."""

    name: str
    description: str
    check: Callable[[Any, Config], list[str]]
    stack: bool = False


RULES: tuple[Rule, ...] = tuple(
    Rule(name, (check.__doc__ or "").strip(), check, stack)
    for name, check, stack in (
        ("requests-and-limits", requests_and_limits, False),
        ("probes", probes, False),
        ("pinned-images", pinned_images, False),
        ("no-privileged-containers", unprivileged, False),
        ("no-credentials-in-configmaps-or-env", no_credentials_in_plain_sight, False),
        ("services-not-exposed", not_exposed, False),
        ("default-deny-network-policy", default_deny, True),
        ("disruption-budgets-in-production", budgets_in_production, True),
    )
)
"""Every policy of the pack, all mandatory."""
