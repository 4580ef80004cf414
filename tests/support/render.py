"""Render a stack under Pulumi's mocks, as `pulumi up` would declare it, and capture every resource."""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks, set_mocks
from pulumi.runtime.settings import SETTINGS, set_root_resource
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from components import program
from components.settings.model import PROJECT, Settings
from components.settings.parse import parse_settings
from components.settings.stack_files import REPO, stack_config

_RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
_RANDOM_BYTES = "random:index/randomBytes:RandomBytes"
_PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
_CERTIFICATES = ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert")
_CERT_REQUEST = "tls:index/certRequest:CertRequest"


@dataclass
class Captured:
    """One declared resource with its inputs as the engine received them."""

    type: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]
    """Inputs with Pulumi secret markers removed."""
    secret_paths: list[str]
    """Dotted paths of inputs that were marked secret."""

    @property
    def kind(self) -> str:
        """The Kubernetes kind, or '' for a non-Kubernetes resource."""
        return str(self.inputs.get("kind", ""))

    @property
    def label(self) -> str:
        """kind/name for failure messages."""
        meta = self.inputs.get("metadata") or {}
        return f"{self.kind or self.type}/{meta.get('name', self.name)}"


@dataclass
class Rendered:
    """Everything one stack declared and exported."""

    stack: str
    resources: list[Captured] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    generated_secrets: list[str] = field(default_factory=list)
    """Values the mocks handed out as generated passwords."""

    def kubernetes_objects(self) -> list[Captured]:
        """Built-in or custom Kubernetes objects (not the provider, not components, not patches of objects)."""
        return [
            r for r in self.resources if r.type.startswith("kubernetes:") and r.kind and not r.type.endswith("Patch")
        ]

    def patches(self, kind: str) -> list[Captured]:
        """The patches of existing objects of one kind (objects the cluster made, such as a StatefulSet's claims)."""
        return [r for r in self.resources if r.type.startswith("kubernetes:") and r.type.endswith(f":{kind}Patch")]

    def of_kind(self, kind: str) -> list[Captured]:
        """The Kubernetes objects of one kind."""
        return [r for r in self.kubernetes_objects() if r.kind == kind]

    def named(self, kind: str, name: str) -> Captured:
        """The one Kubernetes object of a kind and metadata.name."""
        matches = [r for r in self.of_kind(kind) if r.inputs["metadata"]["name"] == name]
        assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
        return matches[0]


SHIPPED_STACKS = ("dev", "prod", "dr")
"""Every stack file of the repository."""
STACK_SECRETS: dict[str, dict[str, Any]] = {
    "dr": {
        "credentials": {
            "kafkaMirrorSourcePassword": "primaryMirrorPassword0123456789",
            "clickhouseBackupAccessKey": "DRREADONLYKEY0001",
            "clickhouseBackupSecretKey": "dr/read+only=secret-key-0001",
        }
    }
}
"""What `pulumi config set --secret` gives a shipped stack before its first deploy (no stack file holds a secret)."""


def shipped_settings(stack: str, overrides: dict[str, Any] | None = None) -> Settings:
    """The validated settings of a shipped stack, as its stack file and its secrets give them, with overrides."""
    secrets = STACK_SECRETS.get(stack, {})
    config = stack_config(stack, {**(overrides or {}), **secrets})
    return parse_settings(stack, config, {f"{PROJECT}:{key}" for key in secrets})


def settings_of(stack: Rendered) -> Settings:
    """The validated settings of a rendered shipped stack."""
    return shipped_settings(stack.stack)


def fake_password(name: str) -> str:
    """A recognisable, unique stand-in for a generated password."""
    return "mockpw" + hashlib.sha256(name.encode()).hexdigest()[:26]


def fake_pem(kind: str, name: str) -> str:
    """A recognisable, unique stand-in for a generated PEM block."""
    return f"-----BEGIN {kind}-----\n{fake_password(name)}\n-----END {kind}-----\n"


class _Mocks(Mocks):
    """Echo inputs back; give generated passwords, salts, keys and certificates recognisable values."""

    def __init__(self, rendered: Rendered):
        self._rendered = rendered

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict]:
        outputs = dict(args.inputs)
        if args.typ == _RANDOM_PASSWORD:
            outputs["result"] = fake_password(args.name)
            self._rendered.generated_secrets.append(outputs["result"])
        elif args.typ == _RANDOM_BYTES:
            outputs["hex"] = hashlib.sha256(args.name.encode()).hexdigest()[: 2 * int(args.inputs["length"])]
        elif args.typ == _PRIVATE_KEY:
            outputs["private_key_pem"] = fake_pem("EC PRIVATE KEY", args.name)
            outputs["private_key_pem_pkcs8"] = fake_pem("PRIVATE KEY", args.name)
            self._rendered.generated_secrets += [outputs["private_key_pem"], outputs["private_key_pem_pkcs8"]]
        elif args.typ in _CERTIFICATES:
            outputs["cert_pem"] = fake_pem("CERTIFICATE", args.name)
        elif args.typ == _CERT_REQUEST:
            outputs["cert_request_pem"] = fake_pem("CERTIFICATE REQUEST", args.name)
        return f"{args.name}-id", outputs

    def call(self, args: MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


class _Monitor(MockMonitor):
    """A mock monitor that also records parents and the stack's outputs."""

    def __init__(self, mocks: Mocks, rendered: Rendered):
        super().__init__(mocks)
        self._rendered = rendered

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs, paths = _unwrap(rpc.deserialize_properties(request.object, keep_unknowns=True))
            self._rendered.resources.append(
                Captured(request.type, request.name, response.urn, request.parent, inputs, paths)
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if request.urn.split("::")[2] == "pulumi:pulumi:Stack":
            outputs = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
            for key, value in outputs.items():
                plain, paths = _unwrap(value)
                self._rendered.outputs[key] = plain
                if paths:
                    self._rendered.secret_outputs.add(key)
        return super().RegisterResourceOutputs(request)


def _unwrap(value: Any, path: str = "") -> tuple[Any, list[str]]:
    """Strip Pulumi's secret markers, returning the plain value and where secrets were."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            plain, _ = _unwrap(value.get("value"), path)
            return plain, [path or "."]
        result: dict[str, Any] = {}
        paths: list[str] = []
        for key, item in value.items():
            result[key], inner = _unwrap(item, f"{path}.{key}" if path else key)
            paths += inner
        return result, paths
    if isinstance(value, list):
        items = [_unwrap(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return [item for item, _ in items], [p for _, inner in items for p in inner]
    return value, []


def render(
    stack: str,
    overrides: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    into: Rendered | None = None,
    repo: Path = REPO,
) -> Rendered:
    """Run the real program for a stack under mocks, with overrides and secret keys deep-merged."""
    config = stack_config(stack, {**(overrides or {}), **(secrets or {})}, repo)
    rendered = into or Rendered(stack)
    mocks = _Mocks(rendered)
    set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=_Monitor(mocks, rendered))
    pulumi.runtime.set_all_config(config, [f"{PROJECT}:{key}" for key in secrets or {}])
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    # set_mocks installs a root Stack that is already finished; run the program the way the language
    # host does instead, in a fresh Stack that registers the program's exports when it ends.
    set_root_resource(None)
    _sync_await(run_in_stack(program.run))
    return rendered


KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
"""The Kubernetes versions every rendered object is validated against: the oldest the stack supports (the Pod
Security version it pins) and the newest the pinned kubernetes-validate ships, so no object uses a field removed
or not yet added."""
