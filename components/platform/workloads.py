"""Pieces every workload shares: security, resources, HA placement, budgets, claims, bootstrap Jobs."""

import hashlib
from dataclasses import dataclass
from typing import TypedDict

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import (
    DeploymentSpecArgs,
    DeploymentStrategyArgs,
    RollingUpdateDeploymentArgs,
    StatefulSetSpecArgs,
)
from pulumi_kubernetes.batch.v1 import JobSpecArgs
from pulumi_kubernetes.core.v1 import (
    AffinityArgs,
    CapabilitiesArgs,
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    EnvVarSourceArgs,
    HTTPGetActionArgs,
    ObjectFieldSelectorArgs,
    PersistentVolumeClaimSpecArgs,
    PersistentVolumeClaimSpecPatchArgs,
    PodAffinityTermArgs,
    PodAntiAffinityArgs,
    PodSecurityContextArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    ResourceRequirementsArgs,
    SeccompProfileArgs,
    SecurityContextArgs,
    ServicePortArgs,
    ServiceSpecArgs,
    TopologySpreadConstraintArgs,
    VolumeArgs,
    VolumeMountArgs,
    VolumeResourceRequirementsArgs,
    VolumeResourceRequirementsPatchArgs,
    WeightedPodAffinityTermArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs, ObjectMetaPatchArgs
from pulumi_kubernetes.policy.v1 import PodDisruptionBudgetSpecArgs
from pulumi_kubernetes.rbac.v1 import PolicyRuleArgs, RoleRefArgs, SubjectArgs

from components.platform.budget import JOB_RESOURCES
from components.platform.labels import common_labels, image_version, selector_labels, stable_labels
from components.settings.model import Network, Resources, Settings


def container_security() -> SecurityContextArgs:
    """The restricted Pod Security Standard for a container, with a read-only root filesystem."""
    return SecurityContextArgs(
        allow_privilege_escalation=False,
        capabilities=CapabilitiesArgs(drop=["ALL"]),
        run_as_non_root=True,
        read_only_root_filesystem=True,
        seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
    )


def pod_security(user: int) -> PodSecurityContextArgs:
    """Run the pod as the image's own unprivileged user; volumes become writable by its group."""
    return PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=user,
        run_as_group=user,
        fs_group=user,
        fs_group_change_policy="OnRootMismatch",
        seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_resources(resources: Resources) -> ResourceRequirementsArgs:
    """Requests and limits from settings."""
    return ResourceRequirementsArgs(
        requests={"cpu": resources.requests.cpu, "memory": resources.requests.memory},
        limits={"cpu": resources.limits.cpu, "memory": resources.limits.memory},
    )


def placement(settings: Settings, selector: dict[str, str], one_per_host: bool) -> dict:
    """Pod spec fields that spread replicas over hosts and zones when the stack is highly available.

    one_per_host: replicas that hold a share of the same data (Kafka) must never share a node, so a
    node loss costs at most one; stateless replicas (Presto workers) only prefer to spread, so the
    autoscaler can still place more replicas than there are nodes.
    """
    if not settings.high_availability:
        return {}
    spread = settings.spread
    term = PodAffinityTermArgs(label_selector=LabelSelectorArgs(match_labels=selector), topology_key=spread.host_key)
    anti_affinity = (
        PodAntiAffinityArgs(required_during_scheduling_ignored_during_execution=[term])
        if one_per_host
        else PodAntiAffinityArgs(
            preferred_during_scheduling_ignored_during_execution=[
                WeightedPodAffinityTermArgs(weight=100, pod_affinity_term=term)
            ]
        )
    )
    return {
        "affinity": AffinityArgs(pod_anti_affinity=anti_affinity),
        "topology_spread_constraints": [
            TopologySpreadConstraintArgs(
                max_skew=1,
                topology_key=spread.zone_key,
                when_unsatisfiable=spread.zone_policy,
                label_selector=LabelSelectorArgs(match_labels=selector),
            )
        ],
    }


def disruption_budget(
    name: str,
    namespace: pulumi.Input[str],
    labels: dict[str, str],
    selector: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.policy.v1.PodDisruptionBudget:
    """Allow voluntary evictions (drains, upgrades) one pod at a time."""
    return k8s.policy.v1.PodDisruptionBudget(
        name,
        metadata=ObjectMetaArgs(name=name, namespace=namespace, labels=labels),
        spec=PodDisruptionBudgetSpecArgs(max_unavailable=1, selector=LabelSelectorArgs(match_labels=selector)),
        opts=opts,
    )


def rolling_update(surge: int) -> DeploymentStrategyArgs:
    """A Deployment's rollout: `surge` extra pods at a time, never below its count; with none, one at a time.

    Without surge each pod is taken down before its replacement starts (budget.rollout_surge says which a
    stack uses, and the quota check counts it).
    """
    return DeploymentStrategyArgs(
        type="RollingUpdate",
        rolling_update=RollingUpdateDeploymentArgs(max_surge=surge, max_unavailable=0 if surge else 1),
    )


def data_claim(settings: Settings, labels: dict[str, str], size: str) -> k8s.core.v1.PersistentVolumeClaimArgs:
    """The `data` volume claim template of a StatefulSet, in the stack's storage class.

    volumeClaimTemplates cannot change once the StatefulSet exists: a different template makes Pulumi
    replace the StatefulSet (every pod at once). So its labels are the stable ones only, never the
    image's version, and a version bump leaves it as it was.
    """
    return k8s.core.v1.PersistentVolumeClaimArgs(
        metadata=ObjectMetaArgs(name=DATA_CLAIM, labels=stable_labels(labels)),
        spec=PersistentVolumeClaimSpecArgs(
            access_modes=["ReadWriteOnce"],
            storage_class_name=settings.storage_class,
            resources=VolumeResourceRequirementsArgs(requests={"storage": size}),
        ),
    )


DATA_CLAIM = "data"
"""Name of a StatefulSet's claim template: its pods' claims are data-<StatefulSet>-<ordinal>."""
ORPHAN_PODS = {"pulumi.com/deletionPropagationPolicy": "orphan"}
"""StatefulSet annotation: when Pulumi deletes it, its pods stay (Kubernetes' `--cascade=orphan`).

A change of an immutable field (its selector, service name or claim template) makes Pulumi replace the
StatefulSet, deleting it first. Orphaned, the pods keep serving; the new StatefulSet adopts them and
rolls them one at a time only if their template changed too. Pulumi reads the annotation from what it
deletes, so it is there from the first `up` on."""
CLAIM_TEMPLATE_SIZE = "spec.volumeClaimTemplates[*].spec.resources.requests.storage"
"""The claim templates' size, which Pulumi leaves as it was created: the claims themselves are patched."""
FORCE_PATCH = {"pulumi.com/patchForce": "true"}
"""Patch annotation: take over the fields it sets from whoever wrote them (the StatefulSet controller)."""


CONFIG_DIGEST = "qestack.io/config-sha256"
"""Pod template annotation: digest of the ConfigMap files the pods read."""
SECRET_CONFIG_DIGEST = "qestack.io/secret-config-sha256"
"""Pod template annotation: digest of the config Secrets' files the pods read (secret_digest)."""


def config_digest(files: tuple[str, ...]) -> str:
    """A short digest of config text: what a pod template carries so that a changed config rolls its pods."""
    return hashlib.sha256("".join(files).encode()).hexdigest()[:16]


def secret_digest(files: list[pulumi.Output[str]]) -> pulumi.Output[str]:
    """config_digest of secret text, computed inside the Output and itself a secret.

    Nothing derived from a secret goes into a plain object (docs/decisions.md, the topic Job). The engine
    receives the secret on this value alone: the Python SDK wraps a nested secret where it sits (only its
    own reading of the resource's outputs, and so the test mocks, lift it to the top-level `spec`).
    """
    digest: pulumi.Output[str] = pulumi.Output.all(*files).apply(lambda texts: config_digest(tuple(texts)))
    return pulumi.Output.secret(digest)


@dataclass(frozen=True)
class StackArgs:
    """Inputs of a component that needs only the stack: its settings, namespace and name."""

    settings: Settings
    """The validated stack settings."""
    namespace: pulumi.Input[str]
    """Namespace to deploy into."""
    instance: str
    """The stack name, for app.kubernetes.io/instance."""


@dataclass(frozen=True, kw_only=True)
class BootstrapJob:
    """A one-shot Job that prepares its workload (a topic, a schema) with a script or SQL from a ConfigMap."""

    component: str
    """app.kubernetes.io/component of its objects, and the suffix of its Pulumi name."""
    object_name: str
    """metadata.name of the Job and of its ServiceAccount."""
    user: int
    """uid it runs as: the image's own unprivileged user."""
    container: str
    """Name of its one container."""
    image: str
    """The workload's own image, which has the client the command runs."""
    command: list[str]
    """What the container runs."""
    env: list[EnvVarArgs]
    """The container's environment."""
    config: k8s.core.v1.ConfigMap
    """The ConfigMap holding the script or SQL."""
    config_files: tuple[str, ...]
    """The text of that ConfigMap's files: a change gives the Job a new spec, so it runs again."""
    config_volume: str
    """Name of the volume that mounts it."""
    config_path: str
    """Where it is mounted, read-only."""
    after: pulumi.Resource
    """The workload it prepares: the Job waits until that is ready."""


class NamespacedComponent(pulumi.ComponentResource):
    """A component whose Kubernetes objects share one namespace and one set of labels."""

    def __init__(
        self,
        type_name: str,
        name: str,
        namespace: pulumi.Input[str],
        identity: tuple[str, str, str, str | None],
        opts: pulumi.ResourceOptions | None,
    ):
        """identity: app.kubernetes.io name, component and instance of its objects, and their image (if any)."""
        super().__init__(type_name, name, None, opts)
        workload, component, instance, image = identity
        self._workload = workload
        self._instance = instance
        self._namespace = namespace
        self._labels = common_labels(workload, component, instance, image_version(image) if image else None)
        self._selector = selector_labels(workload, component, instance)

    def _opts(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        """Options for a child object, which waits for depends_on if given."""
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on)

    def _metadata(self, object_name: str, labels: dict[str, str] | None = None) -> ObjectMetaArgs:
        """Metadata of a namespaced child object."""
        return ObjectMetaArgs(name=object_name, namespace=self._namespace, labels=labels or self._labels)

    def _service_account(
        self, name: str, object_name: str, labels: dict[str, str] | None = None, resource_name: str | None = None
    ) -> pulumi.Output[str]:
        """The workload's own ServiceAccount, with no token mounted unless a pod asks (none of these call the API).

        resource_name: its Pulumi name, if not `{name}-{object_name}-account` (kept stable: renaming replaces it).
        """
        account = k8s.core.v1.ServiceAccount(
            resource_name or f"{name}-{object_name}-account",
            metadata=self._metadata(object_name, labels),
            automount_service_account_token=False,
            opts=self._opts(),
        )
        return account.metadata.name

    def _account_with_role(
        self, name: str, object_name: str, rules: list[PolicyRuleArgs], role: str
    ) -> pulumi.Output[str]:
        """A ServiceAccount (no token mounted by default) bound to a Role of its own name in the namespace.

        role: the suffix of the Role's and RoleBinding's Pulumi names (kept stable: renaming replaces them). Returns
        the account's name, for the pods: using it makes them wait for the account (else a pod is refused at first).
        """
        account = self._service_account(name, object_name, resource_name=f"{name}-account")
        k8s.rbac.v1.Role(f"{name}-{role}", metadata=self._metadata(object_name), rules=rules, opts=self._opts())
        k8s.rbac.v1.RoleBinding(
            f"{name}-{role}",
            metadata=self._metadata(object_name),
            role_ref=RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=object_name),
            subjects=[SubjectArgs(kind="ServiceAccount", name=object_name, namespace=self._namespace)],
            opts=self._opts(),
        )
        return account

    def _bootstrap_job(self, name: str, job: BootstrapJob) -> k8s.batch.v1.Job:
        """A bootstrap Job: retried until it succeeds, and replaced (so run again) when its spec changes."""
        labels = common_labels(self._workload, job.component, self._instance)
        container = ContainerArgs(
            name=job.container,
            image=job.image,
            command=job.command,
            env=job.env,
            resources=container_resources(JOB_RESOURCES),
            security_context=container_security(),
            volume_mounts=[
                VolumeMountArgs(name=job.config_volume, mount_path=job.config_path, read_only=True),
                VolumeMountArgs(name="tmp", mount_path="/tmp"),
            ],
        )
        volumes = [
            VolumeArgs(name=job.config_volume, config_map=ConfigMapVolumeSourceArgs(name=job.config.metadata.name)),
            VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="64Mi")),
        ]
        return k8s.batch.v1.Job(
            f"{name}-{job.component}",
            metadata=self._metadata(job.object_name, labels),
            spec=JobSpecArgs(
                backoff_limit=10,
                template=PodTemplateSpecArgs(
                    metadata=ObjectMetaArgs(
                        labels=labels, annotations={CONFIG_DIGEST: config_digest(job.config_files)}
                    ),
                    spec=PodSpecArgs(
                        restart_policy="OnFailure",
                        service_account_name=self._service_account(name, job.object_name, labels),
                        automount_service_account_token=False,
                        security_context=pod_security(job.user),
                        containers=[container],
                        volumes=volumes,
                    ),
                ),
            ),
            # A Job's pod template is immutable: a changed spec replaces the Job, which then runs again.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[job.after], replace_on_changes=["spec"], delete_before_replace=True
            ),
        )

    def _pod_template(
        self,
        spec: PodSpecArgs,
        config: tuple[str, ...] = (),
        secret_config: pulumi.Output[str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> PodTemplateSpecArgs:
        """Pods with our labels (or these); given the config they read, its digest too, so a changed config rolls them.

        config: the text of every ConfigMap file the pods read. secret_config: the digest of the config
        Secrets they read (secret_digest). A pod reads its config once, at start (and subPath files never
        refresh), so only a new pod template brings a new config in: Deployments then roll as their
        strategy says, StatefulSets one pod at a time.
        """
        annotations: dict[str, pulumi.Input[str]] = {}
        if config:
            annotations[CONFIG_DIGEST] = config_digest(config)
        if secret_config is not None:
            annotations[SECRET_CONFIG_DIGEST] = secret_config
        return PodTemplateSpecArgs(
            metadata=ObjectMetaArgs(labels=labels or self._labels, annotations=annotations or None), spec=spec
        )

    def _stateful_set(
        self, name: str, object_name: str, spec: StatefulSetSpecArgs, replicas: int, claim_size: str | None
    ) -> k8s.apps.v1.StatefulSet:
        """A StatefulSet whose replacement orphans its pods, and whose data claims follow claim_size (if it has any).

        A claim template never changes an existing claim, so each pod's claim is patched to the size (the
        storage class must allow expansion): a larger `storage.size` grows the volumes in place, and the
        template keeps the size the StatefulSet was created with (a new pod's claim is patched too).
        """
        statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata=ObjectMetaArgs(
                name=object_name, namespace=self._namespace, labels=self._labels, annotations=ORPHAN_PODS
            ),
            spec=spec,
            # The provider would replace the StatefulSet for a new claim size (the template is immutable), and
            # its preview of that replacement fails (pulumi-kubernetes#3984): the claims are patched instead.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=[CLAIM_TEMPLATE_SIZE]),
        )
        if claim_size is None:
            return statefulset
        for ordinal in range(replicas):
            k8s.core.v1.PersistentVolumeClaimPatch(
                f"{name}-{DATA_CLAIM}-{ordinal}",
                metadata=ObjectMetaPatchArgs(
                    name=f"{DATA_CLAIM}-{object_name}-{ordinal}", namespace=self._namespace, annotations=FORCE_PATCH
                ),
                spec=PersistentVolumeClaimSpecPatchArgs(
                    resources=VolumeResourceRequirementsPatchArgs(requests={"storage": claim_size})
                ),
                # A patch of a required field cannot be withdrawn: deleting it leaves the claim as it is (its
                # StatefulSet's scale-down, `pulumi destroy`), and the namespace's deletion removes the claim.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[statefulset], retain_on_delete=True),
            )
        return statefulset

    def _one_replica(
        self, name: str, object_name: str, spec: PodSpecArgs, surge: int, config: tuple[str, ...] = ()
    ) -> None:
        """A Deployment of a single pod (a tool whose state is disposable) that rolls with `surge` extra pods."""
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=self._metadata(object_name),
            spec=DeploymentSpecArgs(
                replicas=1,
                strategy=rolling_update(surge),
                selector=LabelSelectorArgs(match_labels=self._selector),
                template=self._pod_template(spec, config),
            ),
            opts=self._opts(),
        )

    def _http_service(self, name: str, object_name: str, port: int, network: Network | None = None) -> None:
        """A Service in front of the pods' port named http; of the stack's client type if given its network."""
        ports = [ServicePortArgs(name="http", port=port, target_port="http")]
        k8s.core.v1.Service(
            f"{name}-service",
            metadata=self._metadata(object_name),
            spec=client_service_spec(network, self._selector, ports)
            if network
            else ServiceSpecArgs(selector=self._selector, ports=ports),
            opts=self._opts(),
        )


def client_service_spec(network: Network, selector: dict[str, str], ports: list[ServicePortArgs]) -> ServiceSpecArgs:
    """A Service clients reach: ClusterIP, or a node port or load balancer open to the client ranges only."""
    balanced = network.service_type == "LoadBalancer"
    return ServiceSpecArgs(
        type=network.service_type,
        selector=selector,
        ports=ports,
        load_balancer_source_ranges=list(network.clients.cidrs) if balanced else None,
        # Keep the client's address, so that the NetworkPolicy's ranges see who is really connecting.
        external_traffic_policy="Local" if network.service_type != "ClusterIP" else None,
    )


def pod_name_env() -> EnvVarArgs:
    """POD_NAME from the downward API: start scripts derive node ids and names from it."""
    return EnvVarArgs(
        name="POD_NAME", value_from=EnvVarSourceArgs(field_ref=ObjectFieldSelectorArgs(field_path="metadata.name"))
    )


class HttpProbes(TypedDict):
    """The three probes of a container, keyed as ContainerArgs takes them (so `**http_probes(...)` fits)."""

    startup_probe: ProbeArgs
    readiness_probe: ProbeArgs
    liveness_probe: ProbeArgs


def http_probes(
    port: str, ready: str, live: str, startup_seconds: int = 120, live_port: str | None = None
) -> HttpProbes:
    """Startup, readiness and liveness probes over HTTP on named ports (liveness on its own if given)."""

    def probe(path: str, on: str, period_seconds: int, failure_threshold: int | None = None) -> ProbeArgs:
        return ProbeArgs(
            http_get=HTTPGetActionArgs(path=path, port=on),
            timeout_seconds=5,
            period_seconds=period_seconds,
            failure_threshold=failure_threshold,
        )

    return HttpProbes(
        startup_probe=probe(ready, port, period_seconds=5, failure_threshold=startup_seconds // 5),
        readiness_probe=probe(ready, port, period_seconds=10),
        liveness_probe=probe(live, live_port or port, period_seconds=20, failure_threshold=3),
    )
