"""Chaos Mesh's certificates, made once by pulumi-tls and kept in state, in place of the chart's per-render ones."""

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_tls as tls

from components.security.certificates import CA_USES, Leaf, signed
from components.security.certificates import authority as deploy_time_authority

# At chart 2.7.2 three templates call genCA/genSignedCert and two randAlphaNum on every render, so every
# `pulumi up` replaced the chart's certificate Secrets and rolled chaos-controller-manager and chaos-daemon:
# - _certs.tpl and secrets-configuration.yaml: the webhook's CA and serving certificate (the values
#   webhook.caBundlePEM, crtPEM and keyPEM take ours), chaos-daemon's mTLS server and client certificates
#   signed by the same CA (no value takes them), chaosd's CA and client certificate (none either);
# - controller-manager-deployment.yaml and chaos-daemon-daemonset.yaml: a random `rollme` pod annotation,
#   so the pods reload the certificates each `helm upgrade` regenerates.
# So the chart gets the webhook's through its values, and a transform puts ours into every certificate Secret
# and their digest into `rollme`: the pods roll when a certificate is renewed, and only then.
# Ref: https://github.com/chaos-mesh/chaos-mesh/blob/chart-2.7.2/helm/chaos-mesh/templates/_certs.tpl
# Ref: https://github.com/chaos-mesh/chaos-mesh/blob/chart-2.7.2/helm/chaos-mesh/templates/secrets-configuration.yaml

Authority = Literal["chaos-mesh-ca", "chaosd-ca"]
"""The chart's two CAs, by their common names: chaos-mesh's own (webhook, chaos-daemon mTLS) and chaosd's."""
SHIPPED_CA_KEYS: frozenset[Authority] = frozenset({"chaosd-ca"})
"""CAs whose key the chart puts in the Secret (ca.key): chaosctl signs chaosd servers' certificates with it."""
WEBHOOK_SECRET = "chaos-mesh-webhook-certs"
WEBHOOK_SERVICE = "chaos-mesh-controller-manager"
"""The Service the API server calls the admission webhooks through (the chart's `chaos-mesh.svc`)."""
ROLL_ANNOTATION = "rollme"
"""The chart's pod-template annotation that rolls the pods onto new certificates."""
USES = ["digital_signature", "key_encipherment", "server_auth", "client_auth"]
"""What the chart's genSignedCert allows; mTLS peers are both clients and servers of one another."""


@dataclass(frozen=True, kw_only=True)
class ChartCertificate:
    """A certificate the chart would generate on every render, and the Secret it keeps it in."""

    secret: str
    """metadata.name of the chart's Secret (keys ca.crt, tls.crt, tls.key; ca.key for a shipped CA key)."""
    common_name: str
    """Its subject's common name, as the chart gives it."""
    dns_names: tuple[str, ...]
    """The names it is valid for, as the chart gives them."""
    authority: Authority
    """The CA that signs it."""


def chart_certificates(namespace: str) -> tuple[ChartCertificate, ...]:
    """Every certificate the chart generates at 2.7.2 with webhook.certManager off (its default)."""
    webhook = f"{WEBHOOK_SERVICE}.{namespace}.svc"
    daemon = "chaos-daemon.chaos-mesh.org"
    controller = "controller-manager.chaos-mesh.org"
    return (
        ChartCertificate(secret=WEBHOOK_SECRET, common_name=webhook, dns_names=(webhook,), authority="chaos-mesh-ca"),
        ChartCertificate(
            secret="chaos-mesh-daemon-certs",
            common_name=daemon,
            dns_names=("localhost", daemon),
            authority="chaos-mesh-ca",
        ),
        ChartCertificate(
            secret="chaos-mesh-daemon-client-certs",
            common_name=controller,
            dns_names=("localhost", controller),
            authority="chaos-mesh-ca",
        ),
        ChartCertificate(
            secret="chaos-mesh-chaosd-client-certs",
            common_name=controller,
            dns_names=("localhost", controller),
            authority="chaosd-ca",
        ),
    )


@dataclass(frozen=True)
class Issued:
    """One certificate as its Secret holds it, PEM text."""

    ca: pulumi.Output[str]
    """The signing CA's certificate (ca.crt)."""
    certificate: pulumi.Output[str]
    """tls.crt."""
    key: pulumi.Output[str]
    """tls.key, a secret."""
    ca_key: pulumi.Output[str] | None
    """ca.key, a secret, for a CA whose key the chart ships; else None."""


def issue(name: str, wanted: tuple[ChartCertificate, ...], opts: pulumi.ResourceOptions) -> dict[str, Issued]:
    """The CAs and the certificates they sign, by Secret name: made on the first `up`, then kept in state."""
    authorities = {authority: _authority(name, authority, opts) for authority in {w.authority for w in wanted}}
    issued = {}
    for one in wanted:
        ca_key, ca = authorities[one.authority]
        leaf = Leaf(
            subject=tls.CertRequestSubjectArgs(common_name=one.common_name),
            dns_names=list(one.dns_names),
            uses=USES,
        )
        key, certificate = signed(f"{name}-{one.secret}", authorities[one.authority], leaf, opts)
        shipped: pulumi.Output[str] = pulumi.Output.secret(ca_key.private_key_pem)
        issued[one.secret] = Issued(
            ca=ca.cert_pem,
            certificate=certificate.cert_pem,
            key=pulumi.Output.secret(key.private_key_pem),
            ca_key=shipped if one.authority in SHIPPED_CA_KEYS else None,
        )
    return issued


def _authority(
    name: str, authority: Authority, opts: pulumi.ResourceOptions
) -> tuple[tls.PrivateKey, tls.SelfSignedCert]:
    """A CA's key and self-signed certificate, with the chart's common name."""
    subject = tls.SelfSignedCertSubjectArgs(common_name=authority)
    return deploy_time_authority(f"{name}-{authority}", subject, opts, [*CA_USES, "digital_signature"])


def webhook_values(issued: dict[str, Issued]) -> dict[str, pulumi.Output[str]]:
    """The chart's webhook values that make it use our webhook certificate instead of generating one."""
    webhook = issued[WEBHOOK_SECRET]
    return {"caBundlePEM": webhook.ca, "crtPEM": webhook.certificate, "keyPEM": webhook.key}


def secret_data(issued: Issued) -> pulumi.Output[dict[str, str]]:
    """A certificate Secret's data (base64), as the chart lays it out."""
    files = {"ca.crt": issued.ca, "tls.crt": issued.certificate, "tls.key": issued.key}
    if issued.ca_key is not None:
        files["ca.key"] = issued.ca_key
    return pulumi.Output.all(**files).apply(
        lambda texts: {key: base64.b64encode(text.encode()).decode() for key, text in texts.items()}
    )


def digest(pairs: Iterable[Sequence[str]]) -> str:
    """What `rollme` carries: a digest of (CA, certificate) PEM pairs, given in the order of their Secrets' names."""
    return hashlib.sha256("".join(ca + certificate for ca, certificate in pairs).encode()).hexdigest()[:16]


def certificates_digest(issued: dict[str, Issued]) -> pulumi.Output[str]:
    """The digest of every certificate (public parts only), so a renewal rolls the pods that mount them."""
    return pulumi.Output.all(*[pulumi.Output.all(one.ca, one.certificate) for _, one in sorted(issued.items())]).apply(
        digest
    )


def stable_certificates(issued: dict[str, Issued]) -> pulumi.ResourceTransform:
    """A transform of the chart's objects: our certificates in its certificate Secrets, their digest in `rollme`."""
    rollme = certificates_digest(issued)

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        props: dict[str, Any] = dict(args.props)
        name = (props.get("metadata") or {}).get("name")
        if props.get("kind") == "Secret" and name in issued:
            return pulumi.ResourceTransformResult({**props, "data": secret_data(issued[name])}, args.opts)
        template: dict[str, Any] = (props.get("spec") or {}).get("template") or {}
        annotations: dict[str, Any] = (template.get("metadata") or {}).get("annotations") or {}
        if ROLL_ANNOTATION not in annotations:
            return None
        pod_metadata = {**template["metadata"], "annotations": {**annotations, ROLL_ANNOTATION: rollme}}
        patched = {**props, "spec": {**props["spec"], "template": {**template, "metadata": pod_metadata}}}
        return pulumi.ResourceTransformResult(patched, args.opts)

    return transform
