"""Every credential of the stack: generated or taken from secret config, kept in Kubernetes Secrets."""

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from components.platform.labels import common_labels
from components.security.credential_catalog import CREDENTIALS, Credential
from components.settings.model import PROJECT


@dataclass(frozen=True)
class CredentialsArgs:
    """Inputs of the credentials component."""

    namespace: pulumi.Input[str]
    """Namespace the Secrets are created in."""
    overrides: Any
    """settings.credentials: values given with `pulumi config set --secret`, by credential name."""
    instance: str
    """The stack name, for app.kubernetes.io/instance."""


class Credentials(pulumi.ComponentResource):
    """One Kubernetes Secret per consumer, holding generated or configured credentials."""

    values: dict[str, pulumi.Output[str]]
    """Every credential by name, each a Pulumi secret."""
    secrets: dict[str, k8s.core.v1.Secret]
    """The Kubernetes Secrets by metadata.name."""

    def __init__(self, name: str, args: CredentialsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("qestack:security:Credentials", name, None, opts)
        # A credential issued elsewhere (generated=False) is absent unless configured.
        self.values = {
            c.name: value for c in CREDENTIALS if (value := _value(name, c, args.overrides, self)) is not None
        }
        by_secret: dict[str, list[Credential]] = defaultdict(list)
        for credential in CREDENTIALS:
            by_secret[credential.secret].append(credential)
        self.secrets = {
            secret_name: k8s.core.v1.Secret(
                f"{name}-{secret_name}",
                metadata=ObjectMetaArgs(
                    name=secret_name,
                    namespace=args.namespace,
                    labels=common_labels(PROJECT, "credentials", args.instance),
                ),
                type="Opaque",
                string_data={c.key: self.values[c.name] for c in members if c.name in self.values},
                opts=pulumi.ResourceOptions(parent=self),
            )
            for secret_name, members in by_secret.items()
        }
        self.register_outputs({"secrets": list(self.secrets)})

    def in_secret(self, secret_name: str) -> dict[str, pulumi.Output[str]]:
        """The credentials one Kubernetes Secret holds, by their key in it."""
        return {c.key: self.values[c.name] for c in CREDENTIALS if c.secret == secret_name and c.name in self.values}


def _value(prefix: str, credential: Credential, overrides: Any, parent: pulumi.Resource) -> pulumi.Output[str] | None:
    """The configured value if one was set, else a generated password (None if never generated); always a secret."""
    configured = getattr(overrides, credential.name, None)
    if configured is not None:
        return pulumi.Output.secret(configured.get_secret_value())
    if not credential.generated:
        return None
    # Letters and digits only: the values end up in properties files, XML and URLs unescaped.
    generated = random.RandomPassword(
        f"{prefix}-{credential.name}",
        length=credential.length,
        special=False,
        min_lower=1,
        min_upper=1,
        min_numeric=1,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return pulumi.Output.secret(generated.result)
