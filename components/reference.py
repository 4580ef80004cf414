"""The documentation's generated sections: settings, credentials, security, alerts, dashboards, exit codes, layout.

`python -m components.reference --write` refreshes them in README.md and docs/*.md; `--check` lists stale ones.
"""

import ast
import posixpath
import re
import sys
import types
import typing
from collections import Counter
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
from components.security.network import (
    CLIENTS,
    DR_MIRROR,
    DR_MIRROR_FLOWS,
    FLOWS,
    PRIMARY_MIRROR_FLOWS,
    egress,
)
from components.security.verify_access import PERMISSIONS
from components.settings.model import TYPE_NAMES, Amounts, Settings, Storage, nested_model
from components.settings.parse import parse_settings
from components.settings.stack_files import REPO, stack_config
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


def alert_rows(runbook: str = "docs/runbook.md") -> str:
    """A table of the alerts as the dev stack renders them: severity, wait, meaning and runbook (a relative link)."""
    rows = []
    for a in alerts(parse_settings("dev", stack_config("dev"))):
        meaning = re.sub(r"\{\{ \$labels\.(\w+) \}\}", r"`\1`", f"{a.summary}. {a.description}")
        rows.append(f"| [{a.name}]({runbook}#{a.name.lower()}) | {a.severity} | {a.for_} | {meaning} |")
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

    sources = {CLIENTS: "clients (`network.clients`)", DR_MIRROR: "a DR site's mirror (`kafka.mirrorCidrs`)"}
    rows = [
        f"| {sources.get(f.source, f.source.slug())} | {f.target.slug()} "
        f"| {ports(f.ports)}{' TCP and UDP' if 'UDP' in f.protocols else ''} | {f.reason}{when} |"
        for flows, when in (
            (FLOWS, ""),
            (DR_MIRROR_FLOWS, " (a DR stack: `mirror` set)"),
            (PRIMARY_MIRROR_FLOWS, " (a primary: `kafka.mirrorCidrs` set)"),
        )
        for f in flows
    ]
    rows += [f"| {e.source.slug()} | {e.target} | {ports(e.ports)} | {e.reason} |" for e in egress(Settings())]
    rows.append(
        "| kafka-mirror | the primary's brokers (`mirror.sourceCidrs`) | the `mirror.sourceBootstrap` ports "
        "| MirrorMaker 2 reads the primary's topics and its groups' offsets (a DR stack) |"
    )
    rows.append("| alertmanager | any address | the ports of its receivers' URLs | webhook receivers, if configured |")
    rows.append("| every pod | cluster DNS (`dns.*`) | 53 UDP and TCP | name lookups |")
    return "\n".join(["| from | to | port (TCP unless said) | why |", "|---|---|---|---|", *rows])


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


PACKAGE_ROOTS = ("components", "verify", "tests")
"""Folders whose Python packages the layout lists, each with its docstring and modules."""
OTHER_FOLDERS = {
    "policy": "the CrossGuard policy pack (pulumi-policy), with its own pinned requirements and virtualenv",
    "scripts": "the test commands and the virtualenvs: `test` (everything), `test-unit` (no server), "
    "`setup-python` (.venv), `setup-policy` (policy/venv)",
    "scripts/servers": "installers of the real servers and tools the integration tests run (and wrk for "
    "bench/load.py); below `go/`, the wrapper module (go.mod, go.sum) of each tool built from the Go module proxy",
    "scripts/engine": "the real Pulumi engine on a local control plane: `install` builds etcd, kwok, Kubernetes, "
    "the Pulumi CLI and the Kubernetes provider from the Go module proxy, `cluster` runs them on 127.0.0.1 "
    "(kwok playing the nodes), `smoke` proves them together",
    "scripts/providers": "builds pulumi-resource-random and pulumi-resource-tls from the upstream Terraform providers "
    "behind Pulumi's Terraform bridge (`install`; `smoke` proves them over gRPC); the Go glue per provider below it",
    "bench": "figures, printed and never asserted",
    "components/data/clickhouse/migrations": "the schema's numbered migrations (templates of the stack's settings) "
    "and `migrate.sh`, the schema Job's script that applies and records them",
    "docs": "this documentation",
    "tests/unit/golden": "every resource's (type, name, parent) of each shipped stack (dev, prod, dr)",
    "tests/support/data": "the vendored subset of Chaos Mesh's CRD schemas",
    "verify/load/templates": "the Jinja template of load.html",
}
"""Folders that are not Python packages, with what they hold."""
TOOL_ROOTS = ("policy", "scripts", "bench", "docs")
"""Other top-level folders, which with each folder directly under them must be in OTHER_FOLDERS."""
IGNORED = ("__pycache__", "venv")


def layout_rows(repo: Path = REPO) -> str:
    """Every package under the package roots (its docstring and modules) and every other folder, from the tree.

    A folder under a root that is neither a package nor in OTHER_FOLDERS is an error, and so is an entry of
    OTHER_FOLDERS that does not exist: the table lists the tree, all of it and nothing else.
    """
    rows = []
    for folder in sorted(_folders(repo), key=lambda f: f.split("/")):
        path = repo / folder
        if (path / "__init__.py").is_file():
            docstring = ast.get_docstring(ast.parse((path / "__init__.py").read_text())) or ""
            what = docstring.split("\n", 1)[0]
            files = sorted(f.name for f in path.glob("*.py") if f.name != "__init__.py")
            other = Counter(f.suffix for f in path.iterdir() if f.is_file() and f.suffix != ".py" and f.name[0] != ".")
            files += [f"{count} `*{suffix}`" for suffix, count in sorted(other.items())]
        elif folder in OTHER_FOLDERS:
            what = OTHER_FOLDERS[folder]
            files = sorted(f.name for f in path.iterdir() if f.is_file() and not f.name.startswith("."))
        else:
            raise ValueError(f"{folder}/ is neither a package nor in OTHER_FOLDERS of components/reference.py")
        shown = ", ".join(name if name[0].isdigit() else f"`{name}`" for name in files) or "none"
        rows.append(f"| `{folder}/` | {what} | {shown} |")
    missing = [f for f in OTHER_FOLDERS if not (repo / f).is_dir()]
    if missing:
        raise ValueError(f"OTHER_FOLDERS names folders that do not exist: {', '.join(missing)}")
    return "\n".join(["| folder | what | files |", "|---|---|---|", *rows])


def _folders(repo: Path) -> Iterator[str]:
    """The package roots and every folder under them; the other roots and the folders directly under them."""
    found = set(OTHER_FOLDERS)
    trees = [[repo / root, *(repo / root).rglob("*")] for root in PACKAGE_ROOTS]
    trees += [[repo / root, *(repo / root).iterdir()] for root in TOOL_ROOTS]
    for tree in trees:
        for path in tree:
            relative = path.relative_to(repo)
            if path.is_dir() and not set(relative.parts) & set(IGNORED):
                found.add(relative.as_posix())
    return iter(found)


SECTIONS = {
    "settings-reference": reference_table,
    "credentials": credentials_rows,
    "network-flows": flow_rows,
    "presto-roles": role_rows,
    "kafka-acls": kafka_grant_rows,
    "verify-permissions": permission_rows,
    "policies": policy_rows,
    "dashboards": dashboard_rows,
    "exit-codes": exit_code_rows,
    "layout": layout_rows,
}
"""Generated sections, by marker name, except the alerts, whose runbook links depend on the document."""
MARKER = re.compile(r"<!-- ([a-z-]+):start -->")


def documents(repo: Path = REPO) -> list[Path]:
    """The documents whose generated sections are kept current: README.md and docs/*.md."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def section(marker: str, document: str) -> str:
    """The current text of one generated section of the document (a path relative to the repository)."""
    if marker == "alerts":
        return alert_rows(posixpath.relpath("docs/runbook.md", posixpath.dirname(document) or "."))
    if marker not in SECTIONS:
        raise ValueError(f"{document}: unknown generated section {marker!r}; known: alerts, {', '.join(SECTIONS)}")
    return SECTIONS[marker]()


def updated(text: str, document: str) -> str:
    """The document's text with every generated section it holds replaced by its current content."""
    for marker in MARKER.findall(text):
        start_mark, end_mark = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
        start, end = text.index(start_mark) + len(start_mark), text.index(end_mark)
        text = f"{text[:start]}\n{section(marker, document)}\n{text[end:]}"
    return text


def stale(repo: Path = REPO) -> list[str]:
    """The documents (relative paths) whose generated sections are not current."""
    names = [path.relative_to(repo).as_posix() for path in documents(repo)]
    return [name for name in names if (text := (repo / name).read_text()) != updated(text, name)]


def main(argv: list[str]) -> int:
    """Print the settings table; --write refreshes every generated section in place; --check lists stale ones."""
    if argv == ["--write"]:
        for name in stale():
            path = REPO / name
            path.write_text(updated(path.read_text(), name))
            print(f"updated {name}")
    elif argv == ["--check"]:
        names = stale()
        for name in names:
            print(f"{name}: generated sections are stale; run python -m components.reference --write", file=sys.stderr)
        return 1 if names else 0
    elif not argv:
        print(reference_table())
    else:
        print("usage: python -m components.reference [--write | --check]", file=sys.stderr)
        return 2
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
    aliases: list[str] = []
    model: type[BaseModel] = Settings
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
    name = "text" if annotation is str else str(getattr(annotation, "__name__", annotation))
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
