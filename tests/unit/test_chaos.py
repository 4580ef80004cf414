"""Chaos Mesh under mocks: the pinned official chart, faults only in our namespace, certificates kept in state."""

import base64

import pulumi
import pytest
from pulumi.runtime.sync_await import _sync_await

from components.chaos.certificates import Issued, chart_certificates, digest, stable_certificates
from components.chaos.component import CHART, INJECT_ANNOTATION, REPOSITORY
from tests.support.render import Rendered, fake_pem, render

CHART_TYPE = "kubernetes:helm.sh/v4:Chart"
SELF_SIGNED = "tls:index/selfSignedCert:SelfSignedCert"


def charts(stack: Rendered) -> list:
    """The Helm charts the stack installs."""
    return [r for r in stack.resources if r.type == CHART_TYPE]


def namespace_annotations(stack: Rendered) -> dict:
    """The annotations of the stack's own namespace."""
    (ours,) = [n for n in stack.of_kind("Namespace") if n.inputs["metadata"]["name"] == stack.outputs["namespace"]]
    return ours.inputs["metadata"].get("annotations") or {}


def test_dev_installs_the_pinned_chart_with_namespace_filtering_and_no_node_port(
    rendered_stacks: dict[str, Rendered],
) -> None:
    dev = rendered_stacks["dev"]
    (chart,) = charts(dev)
    inputs = chart.inputs
    assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]["repo"]) == (CHART, "2.7.2", REPOSITORY)
    values = inputs["values"]
    assert values["images"]["tag"] == "v2.7.2", "the images follow the chart's version, never latest"
    assert values["controllerManager"]["enableFilterNamespace"] is True
    assert values["chaosDaemon"] == {"runtime": "docker", "socketPath": "/var/run/docker.sock"}  # minikube's
    assert values["dashboard"]["service"]["type"] == "ClusterIP" and values["dashboard"]["securityMode"] is True
    assert inputs["namespace"] == "chaos-mesh"
    (chaos,) = [n for n in dev.of_kind("Namespace") if n.inputs["metadata"]["name"] == "chaos-mesh"]
    assert chaos.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert namespace_annotations(dev) == {INJECT_ANNOTATION: "enabled"}, "our namespace is the one faults may hit"


def test_prod_has_chaos_off_nothing_installed_and_its_namespace_closed(rendered_stacks: dict[str, Rendered]) -> None:
    prod = rendered_stacks["prod"]
    assert not charts(prod)
    assert [n.inputs["metadata"]["name"] for n in prod.of_kind("Namespace")] == [prod.outputs["namespace"]]
    assert INJECT_ANNOTATION not in namespace_annotations(prod)


@pytest.mark.parametrize(
    ("chaos", "installed", "daemon"),
    [
        ({"mode": "existing"}, False, None),
        (
            {"runtime": "containerd", "socketPath": "/run/containerd/containerd.sock"},
            True,
            {"runtime": "containerd", "socketPath": "/run/containerd/containerd.sock"},
        ),
    ],
    ids=["existing", "containerd"],
)
def test_an_existing_installation_or_another_runtime_is_a_setting(chaos: dict, installed: bool, daemon: dict) -> None:
    stack = render("dev", overrides={"chaos": chaos})
    assert bool(charts(stack)) == installed
    assert namespace_annotations(stack) == {INJECT_ANNOTATION: "enabled"}
    if daemon:
        assert charts(stack)[0].inputs["values"]["chaosDaemon"] == daemon


def issued_by(stack: Rendered) -> dict[str, dict]:
    """Each chart certificate's CertRequest inputs and its signed certificate's inputs, by Secret name."""
    requests = {r.name: r.inputs for r in stack.resources if r.type == "tls:index/certRequest:CertRequest"}
    signed = {r.name: r.inputs for r in stack.resources if r.type == "tls:index/locallySignedCert:LocallySignedCert"}
    return {
        one.secret: {
            "request": requests[f"chaos-certificates-{one.secret}-request"],
            **signed[f"chaos-certificates-{one.secret}"],
        }
        for one in chart_certificates("chaos-mesh")
    }


def test_dev_makes_every_certificate_the_chart_would_generate_and_gives_the_webhook_its_own(
    rendered_stacks: dict[str, Rendered],
) -> None:
    dev = rendered_stacks["dev"]
    issued = issued_by(dev)
    assert set(issued) == {
        "chaos-mesh-webhook-certs",
        "chaos-mesh-daemon-certs",
        "chaos-mesh-daemon-client-certs",
        "chaos-mesh-chaosd-client-certs",
    }
    webhook = issued["chaos-mesh-webhook-certs"]["request"]
    assert webhook["subject"]["commonName"] == "chaos-mesh-controller-manager.chaos-mesh.svc"
    assert webhook["dnsNames"] == ["chaos-mesh-controller-manager.chaos-mesh.svc"]
    authorities = {
        r.inputs["subject"]["commonName"]: r.name
        for r in dev.resources
        if r.type == SELF_SIGNED and r.name.startswith("chaos-")
    }
    assert set(authorities) == {"chaos-mesh-ca", "chaosd-ca"}, "chaosd's CA key is in a Secret: it signs nothing else"
    for secret, inputs in issued.items():
        wanted = "chaosd-ca" if secret == "chaos-mesh-chaosd-client-certs" else "chaos-mesh-ca"
        assert inputs["caCertPem"] == fake_pem("CERTIFICATE", authorities[wanted]), secret
        assert inputs["earlyRenewalHours"] > 0, f"{secret}: renewed by `pulumi up`, not left to expire"
    (chart,) = charts(dev)
    values = chart.inputs["values"]["webhook"]
    assert values == {
        "caBundlePEM": fake_pem("CERTIFICATE", authorities["chaos-mesh-ca"]),
        "crtPEM": fake_pem("CERTIFICATE", "chaos-certificates-chaos-mesh-webhook-certs"),
        "keyPEM": fake_pem("EC PRIVATE KEY", "chaos-certificates-chaos-mesh-webhook-certs-key"),
    }
    assert "values" in chart.secret_paths, "the webhook key makes the values a secret"


def resolved(value: pulumi.Input) -> object:
    """An Output's value (the transform hands the engine Outputs, which it awaits)."""
    return _sync_await(pulumi.Output.from_input(value).future())


def pems(tag: str) -> Issued:
    """A certificate's files, recognisable by tag."""
    return Issued(
        ca=pulumi.Output.from_input(f"ca-{tag}"),
        certificate=pulumi.Output.from_input(f"crt-{tag}"),
        key=pulumi.Output.secret(f"key-{tag}"),
        ca_key=pulumi.Output.secret(f"ca-key-{tag}") if tag == "chaosd" else None,
    )


def chart_object(kind: str, name: str, **fields: object) -> pulumi.ResourceTransformArgs:
    """One object as the chart renders it and the engine hands it to a transform."""
    props = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "chaos-mesh"}, **fields}
    return pulumi.ResourceTransformArgs(
        custom=True,
        type_=f"kubernetes:x:{kind}",
        name=f"chaos-chart:chaos-mesh/{name}",
        props=props,
        opts=pulumi.ResourceOptions(),
    )


def rolled_workload(kind: str, name: str) -> pulumi.ResourceTransformArgs:
    """A chart workload whose pod template carries the chart's random rollme."""
    template = {"metadata": {"labels": {"app": name}, "annotations": {"rollme": "Xq3zT"}}, "spec": {"containers": []}}
    return chart_object(kind, name, spec={"selector": {}, "template": template})


def test_the_transform_puts_our_certificates_in_the_charts_secrets_and_their_digest_in_rollme() -> None:
    issued = {"chaos-mesh-daemon-certs": pems("daemon"), "chaos-mesh-chaosd-client-certs": pems("chaosd")}
    transform = stable_certificates(issued)
    random = {"ca.crt": "cmFuZG9t", "tls.crt": "cmFuZG9t", "tls.key": "cmFuZG9t"}
    daemon = transform(chart_object("Secret", "chaos-mesh-daemon-certs", type="Opaque", data=random))
    chaosd = transform(chart_object("Secret", "chaos-mesh-chaosd-client-certs", type="Opaque", data=random))
    assert isinstance(daemon, pulumi.ResourceTransformResult) and isinstance(chaosd, pulumi.ResourceTransformResult)
    decoded = {key: base64.b64decode(value).decode() for key, value in resolved(daemon.props["data"]).items()}
    assert decoded == {"ca.crt": "ca-daemon", "tls.crt": "crt-daemon", "tls.key": "key-daemon"}
    assert daemon.props["metadata"]["name"] == "chaos-mesh-daemon-certs" and daemon.props["type"] == "Opaque"
    assert base64.b64decode(resolved(chaosd.props["data"])["ca.key"]).decode() == "ca-key-chaosd"
    expected = digest([("ca-chaosd", "crt-chaosd"), ("ca-daemon", "crt-daemon")])
    for kind, name in (("Deployment", "chaos-controller-manager"), ("DaemonSet", "chaos-daemon")):
        result = transform(rolled_workload(kind, name))
        assert isinstance(result, pulumi.ResourceTransformResult), f"{kind}/{name}"
        metadata = result.props["spec"]["template"]["metadata"]
        assert resolved(metadata["annotations"]["rollme"]) == expected, f"{kind}/{name}"
        assert metadata["labels"] == {"app": name} and result.props["spec"]["selector"] == {}
    assert transform(chart_object("Secret", "chaos-dashboard-token", data=random)) is None, "other Secrets kept"
    assert transform(chart_object("ConfigMap", "dns-server-config", data={"Corefile": "."})) is None


def test_rollme_changes_only_when_a_certificate_does() -> None:
    base = digest([("ca", "crt-1"), ("ca", "crt-2")])
    assert digest([("ca", "crt-1"), ("ca", "crt-2")]) == base
    assert digest([("ca", "crt-1"), ("ca", "crt-2 renewed")]) != base
