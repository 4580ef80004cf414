"""Serving certificates: signed by a private CA made at deploy time, or issued by cert-manager."""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components import names
from components.platform.workloads import NamespacedComponent
from components.settings.model import PROJECT, PrestoTls

CA_VALIDITY_HOURS = 5 * 365 * 24
SERVING_VALIDITY_HOURS = 365 * 24
# `pulumi up` replaces a certificate this close to its expiry: run it at least monthly.
EARLY_RENEWAL_HOURS = 30 * 24
SERVING_USES = ["digital_signature", "key_encipherment", "server_auth"]


CA_USES = ["cert_signing", "crl_signing"]


def authority(
    resource_name: str, subject: tls.SelfSignedCertSubjectArgs, opts: pulumi.ResourceOptions, uses: list[str] = CA_USES
) -> tuple[tls.PrivateKey, tls.SelfSignedCert]:
    """A deploy-time CA: an ECDSA P-256 key (`<resource_name>-key`) and its self-signed certificate, renewed early."""
    key = tls.PrivateKey(f"{resource_name}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=opts)
    certificate = tls.SelfSignedCert(
        resource_name,
        private_key_pem=key.private_key_pem,
        subject=subject,
        is_ca_certificate=True,
        validity_period_hours=CA_VALIDITY_HOURS,
        early_renewal_hours=EARLY_RENEWAL_HOURS,
        allowed_uses=uses,
        opts=opts,
    )
    return key, certificate


@dataclass(frozen=True, kw_only=True)
class Leaf:
    """What a certificate signed by a deploy-time CA says and may do."""

    subject: tls.CertRequestSubjectArgs
    dns_names: list[str]
    ip_addresses: list[str] | None = None
    uses: list[str]


def signed(
    resource_name: str, ca: tuple[tls.PrivateKey, tls.SelfSignedCert], leaf: Leaf, opts: pulumi.ResourceOptions
) -> tuple[tls.PrivateKey, tls.LocallySignedCert]:
    """A key (`<resource_name>-key`) and the certificate the CA signs for it, renewed early."""
    ca_key, ca_certificate = ca
    key = tls.PrivateKey(f"{resource_name}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=opts)
    request = tls.CertRequest(
        f"{resource_name}-request",
        private_key_pem=key.private_key_pem,
        subject=leaf.subject,
        dns_names=leaf.dns_names,
        ip_addresses=leaf.ip_addresses,
        opts=opts,
    )
    certificate = tls.LocallySignedCert(
        resource_name,
        cert_request_pem=request.cert_request_pem,
        ca_private_key_pem=ca_key.private_key_pem,
        ca_cert_pem=ca_certificate.cert_pem,
        validity_period_hours=SERVING_VALIDITY_HOURS,
        early_renewal_hours=EARLY_RENEWAL_HOURS,
        allowed_uses=leaf.uses,
        opts=opts,
    )
    return key, certificate


@dataclass(frozen=True, kw_only=True)
class ServingCertificate:
    """A certificate for one Service, stored in a kubernetes.io/tls Secret."""

    secret: str
    """metadata.name of the Secret (keys tls.crt, tls.key and ca.crt)."""
    service: str
    """The Service the certificate is for: its subject's common name."""
    dns_names: tuple[str, ...]
    """The names it is valid for (see service_dns_names)."""


@dataclass(frozen=True)
class CertificatesArgs:
    """Inputs of the certificates component."""

    namespace: pulumi.Input[str]
    """Namespace of the Secrets."""
    instance: str
    """The stack name, for app.kubernetes.io/instance and the CA's subject."""
    serving: tuple[ServingCertificate, ...]
    """The certificates to issue."""
    source: PrestoTls
    """Where they come from (settings.presto.tls)."""


class Certificates(NamespacedComponent):
    """One serving certificate per Service, in a TLS Secret; clients trust the CA's certificate.

    Generated: an ECDSA P-256 CA made by pulumi-tls signs them. cert-manager: a Certificate per
    Service asks the configured issuer, and the CA clients trust is the one given in settings.
    """

    ca_certificate: pulumi.Output[str]
    """The CA certificate (PEM): what clients such as verify trust. Public, not a secret."""
    issued: dict[str, pulumi.Output[str]]
    """The serving certificates (PEM) Pulumi issues, by Secret name: none with cert-manager, which renews unseen."""

    def __init__(self, name: str, args: CertificatesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "qestack:security:Certificates", name, args.namespace, (PROJECT, "certificates", args.instance, None), opts
        )
        self.issued = {}
        if args.source.source == "cert-manager":
            self.ca_certificate = pulumi.Output.from_input(str(args.source.ca_certificate))
            for serving in args.serving:
                self._request(name, serving, args.source)
        else:
            self.ca_certificate = self._generate(name, args.instance, args.serving)
        self.register_outputs({"caCertificate": self.ca_certificate})

    def _generate(self, name: str, instance: str, serving: tuple[ServingCertificate, ...]) -> pulumi.Output[str]:
        """The deploy-time CA and the certificates it signs; its certificate, for clients."""
        ca = authority(
            f"{name}-ca",
            tls.SelfSignedCertSubjectArgs(common_name=f"{PROJECT} {instance} CA", organization=PROJECT),
            self._opts(),
        )
        for one in serving:
            self.issued[one.secret] = self._issue(name, one, ca)
        return ca[1].cert_pem

    def _request(self, name: str, serving: ServingCertificate, source: PrestoTls) -> k8s.apiextensions.CustomResource:
        """A cert-manager Certificate that keeps the Secret filled and renewed (PKCS#8 key, as Presto reads it)."""
        assert source.issuer is not None  # settings require it with cert-manager
        return k8s.apiextensions.CustomResource(
            f"{name}-{serving.service}",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata=self._metadata(serving.secret),
            spec={
                "secretName": serving.secret,
                "secretTemplate": {"labels": self._labels},
                "commonName": serving.service,
                "dnsNames": list(serving.dns_names),
                "ipAddresses": ["127.0.0.1"],
                "duration": f"{SERVING_VALIDITY_HOURS}h",
                "renewBefore": f"{EARLY_RENEWAL_HOURS}h",
                "privateKey": {"algorithm": "ECDSA", "size": 256, "encoding": "PKCS8", "rotationPolicy": "Always"},
                "usages": ["digital signature", "key encipherment", "server auth"],
                "issuerRef": {"group": "cert-manager.io", "kind": source.issuer.kind, "name": source.issuer.name},
            },
            opts=self._opts(),
        )

    def _issue(
        self, name: str, serving: ServingCertificate, ca: tuple[tls.PrivateKey, tls.SelfSignedCert]
    ) -> pulumi.Output[str]:
        """Issue a key and a certificate for the Service's names and loopback into a Secret; return the certificate."""
        leaf = Leaf(
            subject=tls.CertRequestSubjectArgs(common_name=serving.service, organization=PROJECT),
            dns_names=list(serving.dns_names),
            ip_addresses=["127.0.0.1"],
            uses=SERVING_USES,
        )
        key, certificate = signed(f"{name}-{serving.service}", ca, leaf, self._opts())
        # Annotated, because mypy cannot infer Output.secret's type parameter from a union context.
        private_key: pulumi.Output[str] = pulumi.Output.secret(key.private_key_pem_pkcs8)
        k8s.core.v1.Secret(
            f"{name}-{serving.secret}",
            metadata=self._metadata(serving.secret),
            type="kubernetes.io/tls",
            string_data={
                "tls.crt": certificate.cert_pem,
                "tls.key": private_key,
                "ca.crt": ca[1].cert_pem,
            },
            opts=self._opts(),
        )
        return certificate.cert_pem


def service_dns_names(service: str, namespace: str) -> tuple[str, ...]:
    """Every name a client in the cluster may use for a Service, and localhost for port-forwards."""
    fqdn = names.service_host(service, namespace)
    return (service, f"{service}.{namespace}", f"{service}.{namespace}.svc", fqdn, "localhost")
