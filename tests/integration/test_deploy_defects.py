"""The loop's detectors can fail, and Chaos Mesh's chart is a defect they catch, which the component fixes.

A tiny inline program (its own project and namespace) deployed by the real engine on the local control plane:
a StatefulSet whose volumeClaimTemplates carry a label with a version (the defect class the style guide bans),
and an annotation that changes on every run. The same assertions the deploy loop uses must refuse both.

Chaos Mesh's chart, rendered by the real Kubernetes provider's Helm: not 2.7.2 (chaos.chartVersion), which no
registry here serves, but helm/chaos-mesh of the development commit scripts/engine/install fetches from the Go
module proxy (its header says which and how it differs from 2.7.2; tests/support/engine.py's local_charts installs
it in the pinned version's place). Installed alone, a re-run replaces its certificate Secrets and rolls its
pods; installed by the project's ChaosMesh component (chaos.mode install, its own provider), a re-run changes
nothing and the chart's Secrets and webhooks hold the certificates the stack keeps in state. So what is proven is
the component's certificate handling on that commit's templates; tests/integration/test_chaos_chart.py says
whether they generate anything the component does not replace.
"""

import base64
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest
from cryptography import x509
from kubernetes import client

from components import program
from components.chaos.certificates import ROLL_ANNOTATION, WEBHOOK_SECRET, chart_certificates, digest
from components.chaos.component import ChaosMesh, chart_values
from components.platform.workloads import StackArgs
from components.settings.model import ChaosSettings
from tests.support.engine import (
    Backend,
    EngineStack,
    LocalChart,
    Outcome,
    admin_client,
    assert_no_changes,
    assert_no_replacement,
    cluster,
    project_program,
)

NAMESPACE = "engine-defects"
LABELS = {"app.kubernetes.io/name": "versioned"}
release = {"version": "1.0.0", "run": 0}
"""What the program declares: the version in the claim template, and a counter standing for a timestamp."""


def broken() -> None:
    """A StatefulSet with a versioned label in an immutable field, and an annotation that changes every run."""
    release["run"] += 1
    namespace = k8s.core.v1.Namespace("namespace", metadata={"name": NAMESPACE})
    k8s.apps.v1.StatefulSet(
        "versioned",
        metadata={
            "name": "versioned",
            "namespace": namespace.metadata.name,
            "annotations": {"example.com/deployed-run": str(release["run"])},
        },
        spec={
            "service_name": "versioned",
            "replicas": 1,
            "selector": {"match_labels": LABELS},
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
            },
            "volume_claim_templates": [
                {
                    "metadata": {"name": "data", "labels": {**LABELS, "app.kubernetes.io/version": release["version"]}},
                    "spec": {
                        "access_modes": ["ReadWriteOnce"],
                        "storage_class_name": "standard",
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    )


@pytest.fixture(scope="module")
def defective(control_plane: Backend) -> Iterator[EngineStack]:
    """The broken program deployed once at version 1.0.0; destroyed at the end."""
    cluster("volumes")
    stack = control_plane.stack("defects", "dev", program=broken, project="engine-defects")
    first = stack.up()
    assert first.succeeded, first.describe()
    yield stack
    stack.destroy()
    stack.remove()
    cluster("volumes")


def test_a_re_run_of_a_changing_program_is_caught_as_not_idempotent(defective: EngineStack) -> None:
    preview = defective.preview(expect_no_changes=True)
    with pytest.raises(AssertionError, match="not idempotent"):
        assert_no_changes(preview)


def test_a_version_in_a_claim_template_is_caught_as_a_replaced_statefulset(defective: EngineStack) -> None:
    release["version"] = "1.0.1"
    # The preview itself may fail too: the provider's server-side dry run of the replacement is refused
    # ("updates to statefulset spec for fields other than ... are forbidden"). The steps show it either way.
    preview = defective.preview()
    with pytest.raises(AssertionError, match=r"replace StatefulSet versioned \(.*volumeClaimTemplates"):
        assert_no_replacement(preview)


CHAOS_NAMESPACE = ChaosSettings().namespace
GENERATED = {c.secret for c in chart_certificates(CHAOS_NAMESPACE)}
"""The chart's Secrets of certificates it makes on every render."""
ROLLED = {"Deployment chaos-controller-manager", "DaemonSet chaos-daemon"}
"""The chart's workloads whose pod template carries a random `rollme`."""


def chart_alone(chart: Path) -> None:
    """Chaos Mesh's chart with the component's values and nothing else: what the stack installed before."""
    namespace = k8s.core.v1.Namespace(
        "namespace",
        metadata={
            "name": CHAOS_NAMESPACE,
            "labels": {f"pod-security.kubernetes.io/{mode}": "privileged" for mode in ("enforce", "audit", "warn")},
        },
    )
    k8s.helm.v4.Chart(
        "chart",
        chart=str(chart),
        namespace=CHAOS_NAMESPACE,
        values=chart_values(ChaosSettings(), high_availability=False),
        opts=pulumi.ResourceOptions(depends_on=[namespace]),
    )


def changed_in_api(outcome: Outcome) -> set[str]:
    """`Kind name` of every chart object a run changes (the Kubernetes name, without the chart's prefix)."""
    return {f"{step.kind} {step.name.rsplit('/', 1)[-1]}" for step in outcome.changed if ":" in step.name}


def test_the_chart_alone_makes_new_certificates_on_every_render(
    control_plane: Backend, chaos_chart: LocalChart
) -> None:
    program = partial(chart_alone, chaos_chart.directory)
    stack = control_plane.stack("chaos-alone", "dev", program=program, project="chaos-alone")
    try:
        first = stack.up()
        assert first.succeeded, first.describe()
        preview = stack.preview(expect_no_changes=True)
        with pytest.raises(AssertionError, match="not idempotent"):
            assert_no_changes(preview)
        changed = changed_in_api(preview)
        assert {f"Secret {name}" for name in GENERATED} | ROLLED <= changed, preview.describe()
    finally:
        stack.destroy()
        stack.remove()


def chaos_mesh_alone() -> None:
    """The project's ChaosMesh component as the program declares it, with a provider like the platform's."""
    settings = program.load()
    provider = k8s.Provider(
        "kubernetes",
        context=settings.kubernetes.context,
        enable_server_side_apply=True,
        enable_secret_mutable=True,
        enable_config_map_mutable=True,
    )
    ChaosMesh(
        "chaos",
        StackArgs(settings=settings, namespace=settings.namespace, instance=pulumi.get_stack()),
        opts=pulumi.ResourceOptions(provider=provider),
    )


@pytest.fixture(scope="module")
def chaos_mesh(control_plane: Backend, chaos_chart: LocalChart) -> Iterator[tuple[EngineStack, Outcome]]:
    """The component installed by a first `up` (mode install) once chaos_chart is there; destroyed at the end."""
    stack = control_plane.stack(
        "chaos", "dev", overrides={"chaos": {"mode": "install"}}, program=project_program(declare=chaos_mesh_alone)
    )
    first = stack.up()
    yield stack, first
    stack.destroy()
    stack.remove()


def test_the_component_installs_the_chart_and_a_re_run_changes_nothing(
    chaos_mesh: tuple[EngineStack, Outcome],
) -> None:
    stack, first = chaos_mesh
    assert first.succeeded, first.describe()
    assert {f"Secret {name}" for name in GENERATED} | ROLLED <= changed_in_api(first), first.describe()
    assert_no_changes(stack.up())
    assert_no_changes(stack.preview(expect_no_changes=True))


def secret_files(api: client.ApiClient, name: str) -> dict[str, bytes]:
    """A Secret of the chaos namespace, decoded."""
    data = client.CoreV1Api(api).read_namespaced_secret(name, CHAOS_NAMESPACE).data or {}
    return {key: base64.b64decode(value) for key, value in data.items()}


def test_the_charts_secrets_and_webhooks_hold_the_stacks_certificates(
    chaos_mesh: tuple[EngineStack, Outcome],
) -> None:
    assert chaos_mesh[1].succeeded, "the first up failed"
    api = admin_client()
    for wanted in chart_certificates(CHAOS_NAMESPACE):
        files = secret_files(api, wanted.secret)
        ca, certificate = (
            x509.load_pem_x509_certificate(files["ca.crt"]),
            x509.load_pem_x509_certificate(files["tls.crt"]),
        )
        label = f"Secret/{wanted.secret}"
        assert ca.subject.rfc4514_string() == f"CN={wanted.authority}", label
        certificate.verify_directly_issued_by(ca)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert tuple(names.get_values_for_type(x509.DNSName)) == wanted.dns_names, label
        assert ("ca.key" in files) == (wanted.authority == "chaosd-ca"), label
    # The chart trusts the webhook's own certificate when given one (its caBundle is crtPEM, trimmed).
    webhook = secret_files(api, WEBHOOK_SECRET)["tls.crt"].strip()
    admission = client.AdmissionregistrationV1Api(api)
    configurations = [
        *admission.list_mutating_webhook_configuration().items,
        *admission.list_validating_webhook_configuration().items,
    ]
    bundles = {
        c.metadata.name: {base64.b64decode(w.client_config.ca_bundle) for w in c.webhooks}
        for c in configurations
        if c.metadata.name.startswith("chaos-mesh")
    }
    assert len(bundles) == 3 and all(found == {webhook} for found in bundles.values()), bundles
    apps = client.AppsV1Api(api)
    rolls = {
        "Deployment/chaos-controller-manager": apps.read_namespaced_deployment(
            "chaos-controller-manager", CHAOS_NAMESPACE
        ),
        "DaemonSet/chaos-daemon": apps.read_namespaced_daemon_set("chaos-daemon", CHAOS_NAMESPACE),
    }
    pems = [secret_files(api, name) for name in sorted(GENERATED)]
    expected = digest((files["ca.crt"].decode(), files["tls.crt"].decode()) for files in pems)
    found = {label: item.spec.template.metadata.annotations[ROLL_ANNOTATION] for label, item in rolls.items()}
    assert found == dict.fromkeys(rolls, expected), "rollme is the digest of the certificates the pods mount"
