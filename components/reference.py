"""The README's generated sections: settings, credentials, security tables, alerts, dashboards, exit codes."""

import re
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from components.data.kafka.config import Grant, grants
from components.data.presto.config import ROLES
from components.observability.grafana.dashboards import dashboards
from components.observability.prometheus.alert_rules import alerts
from components.security.credential_catalog import CREDENTIALS
from components.security.network import CLIENTS, EGRESS, FLOWS
from components.security.verify_access import PERMISSIONS
from components.settings.model import TYPE_NAMES, Amounts, Settings, Storage, nested_model
from components.settings.parse import parse_settings
from components.settings.stack_files import stack_config
from policy.rules import RULES
from verify.core.exit_codes import MEANING, ExitCode

STACKS = ("dev", "prod")
SHARED_BLOCKS = (Amounts, Storage)
"""Models used in many places, whose rows read better prefixed with their parent's meaning."""
HEADER = "| key | type | default | dev | prod | meaning |\n|---|---|---|---|---|---|"


def reference_table() -> str:
    """Render one row per setting: key, type, default, dev value, prod value, meaning."""
    effective = {stack: parse_settings(stack, stack_config(stack)) for stack in STACKS}
    rows = []
    for key, path, kind, default, meaning in _rows(Settings(), Settings, [], ""):
        values = [default, *(_value_at(effective[stack], path) for stack in STACKS)]
        shown = ["generated" if kind == "secret" and v is None else _show(v) for v in values]
        rows.append(f"| `{key}` | {kind} | {' | '.join(shown)} | {meaning} |")
    return "\n".join([HEADER, *rows])


def credentials_rows() -> str:
    """A table of the credentials: name, where it is stored, what it is for."""
    rows = [f"| `{c.name}` | `{c.secret}` / `{c.key}` | {c.purpose} |" for c in CREDENTIALS]
    return "\n".join(["| credential | Kubernetes Secret / key | for |", "|---|---|---|", *rows])


def exit_code_rows() -> str:
    """A table of verify's exit codes."""
    rows = [f"| {code.value} | {MEANING[code]} |" for code in ExitCode]
    return "\n".join(["| exit code | meaning |", "|---|---|", *rows])


def alert_rows() -> str:
    """A table of the alerts as the dev stack renders them: severity, wait, meaning and runbook."""
    rows = []
    for a in alerts(parse_settings("dev", stack_config("dev"))):
        meaning = re.sub(r"\{\{ \$labels\.(\w+) \}\}", r"`\1`", f"{a.summary}. {a.description}")
        rows.append(f"| [{a.name}](docs/runbook.md#{a.name.lower()}) | {a.severity} | {a.for_} | {meaning} |")
    return "\n".join(["| alert (runbook) | severity | after | what it means |", "|---|---|---|---|", *rows])


def dashboard_rows() -> str:
    """A table of the dashboards: title, uid and what each answers."""
    rows = [
        f"| {d.title} | `{d.uid}` | {d.description} |" for d in dashboards(parse_settings("dev", stack_config("dev")))
    ]
    return "\n".join(["| dashboard | uid | shows |", "|---|---|---|", *rows])


def flow_rows() -> str:
    """The network flow table: every connection the NetworkPolicies allow, and why."""

    def ports(numbers: tuple[int, ...]) -> str:
        return ", ".join(str(n) for n in numbers)

    rows = [
        f"| {'clients (`network.clients`)' if f.source == CLIENTS else f.source.slug()} | {f.target.slug()} "
        f"| {ports(f.ports)} | {f.reason} |"
        for f in FLOWS
    ]
    rows += [f"| {e.source.slug()} | any address | {ports(e.ports)} | {e.reason} |" for e in EGRESS]
    rows.append("| alertmanager | any address | the ports of its receivers' URLs | webhook receivers, if configured |")
    rows.append("| every pod | cluster DNS (`dns.*`) | 53 UDP and TCP | name lookups |")
    return "\n".join(["| from | to | TCP port | why |", "|---|---|---|---|", *rows])


def role_rows() -> str:
    """Presto's users: what each writes, reads, and is for."""

    def catalogs(names: tuple[str, ...]) -> str:
        return ", ".join(f"`{n}`" for n in names) or "none"

    rows = [f"| `{r.user}` | {catalogs(r.writes)} | {catalogs(r.reads)} | {r.purpose} |" for r in ROLES]
    return "\n".join(["| Presto user | writes | only reads | for |", "|---|---|---|---|", *rows])


def kafka_grant_rows() -> str:
    """Kafka's ACLs in a scram stack (prod's topic name): who may do what to which resource."""

    def resources(grant: Grant) -> str:
        shown = (f"{kind} `{name}`" + (" (prefix)" if how == "prefixed" else "") for kind, how, name in grant.resources)
        return ", ".join(shown)

    rows = [
        f"| `{g.principal}` | {', '.join(g.operations)} | {resources(g)} | {g.reason} |"
        for g in grants(parse_settings("prod", stack_config("prod")).kafka)
    ]
    return "\n".join(["| Kafka principal | may | on | for |", "|---|---|---|---|", *rows])


def permission_rows() -> str:
    """The verify Role: what it may do and why."""
    rows = [
        f"| `{p.group or 'core'}` | {', '.join(p.resources)} | {', '.join(p.verbs)} | {p.why} |" for p in PERMISSIONS
    ]
    return "\n".join(["| API group | resources | verbs | used by |", "|---|---|---|---|", *rows])


def policy_rows() -> str:
    """The policy pack's rules."""
    rows = [f"| `{r.name}` | {r.description} |" for r in RULES]
    return "\n".join(["| policy (mandatory) | demands |", "|---|---|", *rows])


SECTIONS = {
    "settings-reference": reference_table,
    "credentials": credentials_rows,
    "network-flows": flow_rows,
    "presto-roles": role_rows,
    "kafka-acls": kafka_grant_rows,
    "verify-permissions": permission_rows,
    "policies": policy_rows,
    "dashboards": dashboard_rows,
    "alerts": alert_rows,
    "exit-codes": exit_code_rows,
}
"""Generated README sections, by marker name."""


def updated_readme(text: str) -> str:
    """Return the README text with every generated section replaced by its current content."""
    for marker, generate in SECTIONS.items():
        start_mark, end_mark = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
        start, end = text.index(start_mark) + len(start_mark), text.index(end_mark)
        text = f"{text[:start]}\n{generate()}\n{text[end:]}"
    return text


def main(argv: list[str]) -> int:
    """Print the settings table, or with --write README.md, refresh every generated section in place."""
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        path.write_text(updated_readme(path.read_text()))
    else:
        print(reference_table())
    return 0


def _rows(
    defaults: Any, model: type[BaseModel], path: list[str], context: str
) -> Iterator[tuple[str, list[str], str, Any, str]]:
    """Walk a model depth-first, yielding (key, attribute path, type, default, meaning) per leaf."""
    for name, field in model.model_fields.items():
        alias = field.alias or name
        inner = nested_model(field.annotation)
        default = getattr(defaults, name) if defaults is not None else None
        if inner is not None:
            yield from _rows(default, inner, [*path, name], field.description or "")
            continue
        key = ".".join([*(_alias_path(path)), alias])
        meaning = field.description or ""
        if model in SHARED_BLOCKS:
            meaning = f"{context}: {meaning}"
        yield key, [*path, name], _type_name(field), default, meaning


def _alias_path(path: list[str]) -> list[str]:
    """Turn a path of attribute names into the camelCase keys of the config."""
    aliases, model = [], Settings
    for name in path:
        field = model.model_fields[name]
        aliases.append(field.alias or name)
        model = nested_model(field.annotation) or model
    return aliases


def _type_name(field: FieldInfo) -> str:
    """A readable type with its constraints."""
    annotation = field.annotation
    for item in field.metadata:
        if item in TYPE_NAMES:
            return TYPE_NAMES[item]
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(f"`{v}`" for v in typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        if any(SecretStr in (a, *typing.get_args(a)) for a in inner):
            return "secret"
        named = [TYPE_NAMES[m] for a in inner for m in typing.get_args(a)[1:] if m in TYPE_NAMES]
        return f"{named[0]} or unset" if named else "text or unset"
    if typing.get_origin(annotation) is dict:
        return "map of text"
    name = {str: "text"}.get(annotation, getattr(annotation, "__name__", str(annotation)))
    bounds = [f">= {m.ge}" for m in field.metadata if isinstance(m, annotated_types.Ge)]
    bounds += [f"<= {m.le}" for m in field.metadata if isinstance(m, annotated_types.Le)]
    return f"{name} ({', '.join(bounds)})" if bounds else name


def _value_at(settings: Settings, path: list[str]) -> Any:
    """The effective value of a setting in a stack."""
    value: Any = settings
    for name in path:
        value = getattr(value, name, None) if value is not None else None
    return value


def _show(value: Any) -> str:
    """Render a value for the table."""
    if isinstance(value, SecretStr):
        return "set (secret)"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, dict):
        return ", ".join(f"`{k}={v}`" for k, v in value.items())
    return f"`{value}`"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
