"""Drive the real Pulumi engine through the Automation API with the project's own program, on the local control plane.

The CLI and the Kubernetes provider come from scripts/engine/install, the random and tls providers from
scripts/providers/install, the control plane from scripts/engine/cluster; Helm charts from scripts/engine/install
too (see local_charts: the loop reaches no chart repository); the policy pack runs through
scripts/engine/analyzer/pulumi-analyzer-policy-python, which the CLI starts as a binary analyzer (see
policy_plugin: no Python language host is installed). The program runs inline (`program=`): the SDK serves
it, so no language host is needed for it either.
Every run records the engine's events: each resource's step (its op, with the receive time of its first
and last event) is how the tests find replacements, and the bench times kinds.
"""

import copy
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi
import yaml
from pulumi import automation as auto
from pulumi.automation import events

from components import program
from components.settings.model import PROJECT
from components.settings.stack_files import REPO, merged, stack_values

CACHE = Path(os.environ.get("QUERY_ENGINE_STACK_CACHE") or Path.home() / ".cache" / "query-engine-stack")
CLUSTER = REPO / "scripts" / "engine" / "cluster"
ANALYZER = REPO / "scripts" / "engine" / "analyzer"
POLICY_PACK = REPO / "policy"
CHART_TYPE = "kubernetes:helm.sh/v4:Chart"
CONTEXT = "local"
"""The kubeconfig context scripts/engine/cluster writes."""
PASSPHRASE = "query-engine-stack-tests"
"""Encrypts the test stacks' secrets (a throwaway file backend: no secret of value is ever in it)."""
AWAIT_SECONDS = 60
"""How long the provider awaits one object (its default is 10 minutes for a workload): the loop's deadline,
so a rollout that never completes (a quota refusing the new pods) fails in minutes with the provider's message."""

REPLACING = frozenset(
    {
        events.OpType.REPLACE,
        events.OpType.CREATE_REPLACEMENT,
        events.OpType.DELETE_REPLACED,
        events.OpType.DISCARD_REPLACED,
        events.OpType.IMPORT_REPLACEMENT,
        events.OpType.READ_REPLACEMENT,
    }
)
"""Every op of a replacement: the engine emits replace (preview) or create-replacement/delete-replaced (up)."""
Shape = Literal["dev", "prod"]


class EngineMissingError(RuntimeError):
    """A binary the loop needs was not built; the message names it and says to run scripts/test."""


@dataclass(frozen=True)
class Toolchain:
    """Where the engine's binaries are: the CLI's home and the bin directories put on PATH."""

    pulumi_root: Path
    """The directory holding bin/pulumi (the Automation API's PulumiCommand root)."""
    bins: tuple[Path, ...]
    """The CLI, kubectl and the control plane's binaries, the three providers, the analyzer launcher."""

    @classmethod
    def installed(cls) -> "Toolchain":
        """The built toolchain; EngineMissingError naming every missing piece and the command that builds it."""
        printed = subprocess.run(
            [str(REPO / "scripts" / "engine" / "install"), "--print-path"], capture_output=True, text=True, check=True
        ).stdout
        engine = [Path(line) for line in printed.splitlines() if line]
        providers = [_provider_bin(name) for name in ("random", "tls")]
        bins = (*engine, *providers, ANALYZER)
        wanted = {
            "pulumi": "scripts/engine/install pulumi",
            "pulumi-resource-kubernetes": "scripts/engine/install provider",
            "kube-apiserver": "scripts/engine/install kubernetes",
            "kubectl": "scripts/engine/install kubernetes",
            "etcd": "scripts/engine/install etcd",
            "kwok": "scripts/engine/install kwok",
            "pulumi-resource-random": "scripts/providers/install random",
            "pulumi-resource-tls": "scripts/providers/install tls",
            "pulumi-analyzer-policy-python": "a checkout with scripts/engine/analyzer",
        }
        missing = [
            f"{name} (built by {how})" for name, how in wanted.items() if not any((d / name).is_file() for d in bins)
        ]
        if missing:
            raise EngineMissingError(f"not built: {', '.join(missing)}; run scripts/test, which installs them")
        pulumi_bin = next(d for d in engine if (d / "pulumi").is_file())
        return cls(pulumi_root=pulumi_bin.parent, bins=bins)

    @property
    def path(self) -> str:
        """PATH with every bin directory first."""
        return os.pathsep.join([*map(str, self.bins), os.environ.get("PATH", "")])

    def binary(self, name: str) -> str:
        """The full path of one of the toolchain's binaries."""
        return str(next(d / name for d in self.bins if (d / name).is_file()))


@dataclass(frozen=True)
class LocalChart:
    """A Helm chart scripts/engine/install fetched from a registry, and the released version it stands in for."""

    name: str
    stands_for: str
    """The version the program asks for (chaos.chartVersion) that this chart is installed in place of."""
    source: str
    """Where it comes from: MODULE@VERSION, the chart being a folder of that Go module."""
    directory: Path
    """The chart itself (its Chart.yaml, values.yaml, templates/)."""


def local_chart(name: str) -> LocalChart:
    """The chart `name` as scripts/engine/install fetched it; EngineMissingError naming the command that fetches it."""
    printed = subprocess.run(
        [str(REPO / "scripts" / "engine" / "install"), "--print-charts"], capture_output=True, text=True, check=True
    ).stdout
    charts = {fields[0]: fields for fields in (line.split("\t") for line in printed.splitlines() if line)}
    if name not in charts:
        raise EngineMissingError(f"chart {name}: scripts/engine/install fetches only {', '.join(sorted(charts))}")
    _, stands_for, source, directory = charts[name]
    chart = LocalChart(name=name, stands_for=stands_for, source=source, directory=Path(directory))
    if not (chart.directory / "Chart.yaml").is_file():
        raise EngineMissingError(
            f"chart {name} not fetched ({chart.directory}): run scripts/engine/install charts (scripts/test runs it)"
        )
    return chart


def _provider_bin(name: str) -> Path:
    """scripts/providers/install's bin directory for the version requirements.txt pins."""
    pins = (REPO / "requirements.txt").read_text()
    found = re.search(rf"^pulumi-{name}==([0-9.]+)", pins, re.MULTILINE)
    version = found.group(1) if found else "unpinned"
    return CACHE / "providers" / f"{name}-{version}" / "bin"


def kubeconfig() -> Path:
    """The kubeconfig scripts/engine/cluster writes (`cluster env` says the same)."""
    state = Path(os.environ.get("ENGINE_CLUSTER_DIR") or CACHE / "engine" / "cluster")
    return state / "kubeconfig"


def cluster(command: str) -> str:
    """Run scripts/engine/cluster COMMAND; its output (raises with it on failure)."""
    done = subprocess.run([str(CLUSTER), command], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/engine/cluster {command} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


# ---------------------------------------------------------------------------------------------------
# What a run did.
# ---------------------------------------------------------------------------------------------------


@dataclass
class Step:
    """One resource's step in a run, as the engine's events tell it."""

    op: str
    urn: str
    type: str
    started: float
    """time.monotonic() when its pre-event arrived."""
    finished: float | None = None
    """time.monotonic() when its outputs (or failure) arrived; None in a preview or when it never ended."""
    diffs: tuple[str, ...] = ()
    """The properties that differ (what makes an update or a replacement)."""
    replace_keys: tuple[str, ...] = ()
    """The properties that force a replacement."""
    failed: bool = False

    @property
    def name(self) -> str:
        """The resource's Pulumi name (the URN's last part)."""
        return self.urn.rsplit("::", 1)[-1]

    @property
    def kind(self) -> str:
        """The type's last part: StatefulSet, Secret, RandomPassword..."""
        return self.type.rsplit(":", 1)[-1]

    @property
    def seconds(self) -> float | None:
        """How long the engine spent on it, from its events."""
        return None if self.finished is None else self.finished - self.started

    def __str__(self) -> str:
        why = [f"diffs {', '.join(self.diffs)}"] if self.diffs else []
        why += [f"replaced for {', '.join(self.replace_keys)}"] if self.replace_keys else []
        return f"{self.op} {self.kind} {self.name}" + (f" ({'; '.join(why)})" if why else "")


@dataclass
class Outcome:
    """What one up, preview or destroy did: result, wall time, change counts, every step and message."""

    command: str
    succeeded: bool
    seconds: float
    changes: dict[str, int]
    steps: list[Step]
    errors: list[str]
    """Error diagnostics of the engine and the providers, and the CLI's error when it failed."""
    warnings: list[str]
    policy_violations: list[str]
    """`policy: message` of every policy event."""
    outputs: dict[str, Any] = field(default_factory=dict)
    output: str = ""
    """The CLI's text output."""

    @property
    def replacements(self) -> list[Step]:
        """Steps of a replacement, one per resource: the one that says most about why (its `replace` step)."""
        seen: dict[str, Step] = {}
        for step in self.steps:
            if step.op in REPLACING:
                known = seen.get(step.urn)
                said = (step.op == events.OpType.REPLACE, len(step.replace_keys) + len(step.diffs))
                if known is None or said > (
                    known.op == events.OpType.REPLACE,
                    len(known.replace_keys) + len(known.diffs),
                ):
                    seen[step.urn] = step
        return list(seen.values())

    def of(self, *ops: str) -> list[Step]:
        """The steps with one of these ops."""
        return [s for s in self.steps if s.op in ops]

    @property
    def changed(self) -> list[Step]:
        """Every step that is not `same`."""
        return [s for s in self.steps if s.op != events.OpType.SAME]

    def describe(self) -> str:
        """A summary for failure messages: result, counts, the changed steps, the errors."""
        lines = [
            f"{self.command}: {'succeeded' if self.succeeded else 'FAILED'} in {self.seconds:.1f} s, {self.changes}"
        ]
        lines += [f"  {s}" for s in self.changed]
        lines += [f"  error: {e}" for e in self.errors]
        lines += [f"  policy: {v}" for v in self.policy_violations]
        return "\n".join(lines)


class _Recorder:
    """Collects a run's events (the Automation API calls on_event from its own thread)."""

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {}
        self.order: list[Step] = []
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.policy: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, event: events.EngineEvent) -> None:
        now = time.monotonic()
        with self._lock:
            if event.resource_pre_event:
                meta = event.resource_pre_event.metadata
                step = Step(
                    op=str(meta.op.value if isinstance(meta.op, events.OpType) else meta.op),
                    urn=meta.urn,
                    type=meta.type,
                    started=now,
                    diffs=tuple(meta.diffs or ()),
                    replace_keys=tuple(meta.keys or ()) if meta.op in REPLACING else (),
                )
                # A replacement has several steps for one URN (create-replacement, delete-replaced): keep each.
                self.steps[f"{meta.urn}#{step.op}"] = step
                self.order.append(step)
            elif event.res_outputs_event:
                meta = event.res_outputs_event.metadata
                found = self.steps.get(f"{meta.urn}#{getattr(meta.op, 'value', meta.op)}")
                if found:
                    found.finished = now
            elif event.res_op_failed_event:
                meta = event.res_op_failed_event.metadata
                found = self.steps.get(f"{meta.urn}#{getattr(meta.op, 'value', meta.op)}")
                if found:
                    found.finished, found.failed = now, True
            elif event.diagnostic_event:
                diagnostic = event.diagnostic_event
                text = (
                    f"{diagnostic.urn.rsplit('::', 1)[-1] + ': ' if diagnostic.urn else ''}{diagnostic.message.strip()}"
                )
                if diagnostic.severity == "error":
                    self.errors.append(text)
                elif diagnostic.severity == "warning":
                    self.warnings.append(text)
            elif event.policy_event:
                policy = event.policy_event
                self.policy.append(f"{policy.policy_name}: {policy.message.strip().splitlines()[-1]}")


# ---------------------------------------------------------------------------------------------------
# Backends and stacks.
# ---------------------------------------------------------------------------------------------------


def await_deadline(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult:
    """Give every Kubernetes object the loop's await deadline (an engine option: no object changes)."""
    seconds = f"{AWAIT_SECONDS}s"
    limits = pulumi.CustomTimeouts(create=seconds, update=seconds, delete=seconds)
    return pulumi.ResourceTransformationResult(
        args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(custom_timeouts=limits))
    )


def local_charts(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """Install the fetched chart (local_chart) in place of the version it stands in for; refuse any other version."""
    # A remote component's transforms run twice, the second time (the engine's) with no inputs: leave that one be.
    if args.type_ != CHART_TYPE or "chart" not in args.props:
        return None
    props = dict(args.props)
    # No registry here serves Chaos Mesh's chart at 2.7.2 (chaos.chartVersion), so the loop installs the
    # helm/chaos-mesh folder of a development commit the Go module proxy serves (scripts/engine/install says
    # which, and how its templates differ from 2.7.2's): the loop proves the component's certificate handling on
    # that commit's templates, not the released 2.7.2 chart.
    chart = local_chart(str(props["chart"]))
    if props.get("version") != chart.stands_for:
        raise ValueError(
            f"chart {chart.name} {props.get('version')}: the loop has {chart.source}'s chart, which stands in for "
            f"{chart.stands_for} only (scripts/engine/install)"
        )
    # A local chart's own Chart.yaml gives its version (0.0.0 at a development commit): the pin means nothing there.
    for pin in ("repositoryOpts", "version"):
        props.pop(pin, None)
    props["chart"] = str(chart.directory)
    return pulumi.ResourceTransformResult(props, args.opts)


def project_program(
    extra: Callable[[], None] | None = None, declare: Callable[[], None] = program.run
) -> Callable[[], None]:
    """The project's program (or `declare`) under the loop's await deadline and local charts, then `extra`."""

    def run() -> None:
        pulumi.runtime.register_stack_transformation(await_deadline)
        pulumi.runtime.register_resource_transform(local_charts)
        declare()
        if extra is not None:
            extra()

    return run


def local_config(shape: Shape, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Pulumi.<shape>.yaml's config for the control plane: its context, Chaos Mesh off, then the overrides.

    Overrides are keyed like the settings (`kafka`, `presto`...) and deep-merged, as stack_config does.
    """
    values = stack_values(shape)
    changes: dict[str, Any] = {"kubernetes": {"context": CONTEXT}, "chaos": {"mode": "off"}}
    for key, value in {**changes, **(overrides or {})}.items():
        full_key = f"{PROJECT}:{key}"
        values[full_key] = merged(values.get(full_key), value)
    # Chaos Mesh's install-only keys mean nothing with mode off; keep them, as a user's file would.
    return values


class Backend:
    """A file backend and a workspace directory for one test session, with the toolchain on PATH."""

    def __init__(self, root: Path, toolchain: Toolchain):
        self.root = root
        self.toolchain = toolchain
        (root / "backend").mkdir(parents=True, exist_ok=True)
        self.home = CACHE / "engine" / "pulumi-home"
        """Plugins and the CLI's own files (never ~/.pulumi), shared with scripts/engine/smoke."""
        self.home.mkdir(parents=True, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        """The CLI's environment: this backend, the passphrase, the toolchain, the control plane's kubeconfig."""
        return {
            "PULUMI_BACKEND_URL": f"file://{self.root / 'backend'}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "1",
            "PULUMI_HOME": str(self.home),
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PATH": self.toolchain.path,
            "KUBECONFIG": str(kubeconfig()),
        }

    def stack(
        self,
        name: str,
        shape: Shape,
        overrides: Mapping[str, Any] | None = None,
        program: Callable[[], None] | None = None,
        project: str = PROJECT,
    ) -> "EngineStack":
        """A new stack `name` of the project's program (or `program`), configured from Pulumi.<shape>.yaml."""
        work = self.root / "work" / name
        work.mkdir(parents=True, exist_ok=True)
        if project == PROJECT:
            shutil.copy(REPO / "Pulumi.yaml", work / "Pulumi.yaml")
            config = local_config(shape, overrides)
        else:
            (work / "Pulumi.yaml").write_text(yaml.safe_dump({"name": project, "runtime": "python"}))
            config = dict(overrides or {})
        workspace = auto.LocalWorkspace(
            work_dir=str(work),
            pulumi_home=str(self.home),
            program=program or project_program(),
            env_vars=self.env,
            secrets_provider="passphrase",
            pulumi_command=auto.PulumiCommand(root=str(self.toolchain.pulumi_root)),
        )
        stack = auto.Stack.create(name, workspace)
        engine_stack = EngineStack(stack, work / f"Pulumi.{name}.yaml")
        engine_stack.write_config(config)
        return engine_stack


def policy_plugin(pack: Path, root: Path) -> Path:
    """An executable the CLI runs as the pack's analyzer: the launcher, beside the pack's PulumiPolicy.yaml.

    CLI 3.274.1 starts a directory given to --policy-pack through the pack's language host, which is not
    installed; an executable file it starts directly, reading the PulumiPolicy.yaml beside it. So a directory
    per pack with two symlinks: the launcher, and the pack's PulumiPolicy.yaml (from which the launcher finds
    the pack). See scripts/engine/analyzer/pulumi-analyzer-policy-python.
    """
    pack = pack.resolve()
    directory = root / re.sub(r"[^A-Za-z0-9]+", "-", str(pack)).strip("-")
    directory.mkdir(parents=True, exist_ok=True)
    for name, target in (
        ("PulumiPolicy.yaml", pack / "PulumiPolicy.yaml"),
        ("pulumi-analyzer-policy-python", ANALYZER / "pulumi-analyzer-policy-python"),
    ):
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(target)
    return directory / "pulumi-analyzer-policy-python"


class EngineStack:
    """One stack of the file backend: config, up, preview, destroy, each returning an Outcome."""

    def __init__(self, stack: auto.Stack, settings_file: Path):
        self.stack = stack
        self.settings_file = settings_file

    @property
    def name(self) -> str:
        """The stack's name."""
        return self.stack.name

    def write_config(self, config: Mapping[str, Any]) -> None:
        """Replace the stack file's config (structured values, as in Pulumi.dev.yaml), keeping its encryption salt."""
        document = yaml.safe_load(self.settings_file.read_text()) if self.settings_file.exists() else {}
        document = document or {}
        document["config"] = copy.deepcopy(dict(config))
        self.settings_file.write_text(yaml.safe_dump(document, sort_keys=False))

    def update_config(self, overrides: Mapping[str, Any]) -> None:
        """Deep-merge settings (keyed like `presto`, `kafka`...) into the stack file, as a user edits it."""
        document = yaml.safe_load(self.settings_file.read_text()) or {}
        config = dict(document.get("config") or {})
        for key, value in overrides.items():
            config[f"{PROJECT}:{key}"] = merged(config.get(f"{PROJECT}:{key}"), value)
        self.write_config(config)

    def set(self, path: str, value: str, secret: bool = False) -> None:
        """`pulumi config set --path [--secret] query-engine-stack:PATH VALUE`, as a user changes a setting."""
        self.stack.set_config(f"{PROJECT}:{path}", auto.ConfigValue(value, secret=secret), path=True)

    def _run(self, command: str, call: Callable[..., Any], **options: Any) -> Outcome:
        recorder = _Recorder()
        text: list[str] = []
        started = time.monotonic()
        try:
            result = call(on_event=recorder, on_output=text.append, color="never", **options)
            succeeded, error = True, None
        except auto.CommandError as failure:
            result, succeeded, error = None, False, failure
        seconds = time.monotonic() - started
        errors = list(recorder.errors)
        if error is not None:
            errors.append(_cli_error(str(error)))
        outputs: dict[str, Any] = {}
        changes: dict[str, int] = {}
        if result is not None:
            if isinstance(result, auto.PreviewResult):
                changes = {str(op): count for op, count in result.change_summary.items()}
            else:
                changes = dict(result.summary.resource_changes or {})
            if isinstance(result, auto.UpResult):
                outputs = {key: value.value for key, value in result.outputs.items()}
        return Outcome(
            command=f"{command} {self.name}",
            succeeded=succeeded,
            seconds=seconds,
            changes=changes,
            steps=recorder.order,
            errors=errors,
            warnings=recorder.warnings,
            policy_violations=recorder.policy,
            outputs=outputs,
            output="".join(text),
        )

    def up(self, program: Callable[[], None] | None = None) -> Outcome:
        """`pulumi up --yes`; failures are in the Outcome, not raised."""
        return self._run("up", self.stack.up, **({"program": program} if program else {}))

    def preview(
        self,
        expect_no_changes: bool = False,
        policy_packs: Iterable[Path] = (),
        program: Callable[[], None] | None = None,
    ) -> Outcome:
        """`pulumi preview [--expect-no-changes] [--policy-pack PACK]...`, with the steps' diffs (see policy_plugin)."""
        options: dict[str, Any] = {"diff": True}
        if expect_no_changes:
            options["expect_no_changes"] = True
        plugins = self.settings_file.parent.parent / "policy-plugins"
        if packs := [str(policy_plugin(pack, plugins)) for pack in policy_packs]:
            options["policy_packs"] = packs
        if program:
            options["program"] = program
        return self._run("preview", self.stack.preview, **options)

    def destroy(self) -> Outcome:
        """`pulumi destroy --yes`."""
        return self._run("destroy", self.stack.destroy)

    def outputs(self) -> dict[str, Any]:
        """The stack's outputs, secrets in clear."""
        return {key: value.value for key, value in self.stack.outputs().items()}

    def remove(self) -> None:
        """Remove the stack from the backend (after a destroy)."""
        self.stack.workspace.remove_stack(self.name, force=True)


def _cli_error(text: str) -> str:
    """The CLI's failure without the Automation API's preamble (command line, exit code, empty stdout)."""
    stderr = text.split("stderr:", 1)[-1].strip()
    # "using pulumi-resource-X from $PATH" and the provider version warnings are on every run: not the error.
    lines = [
        line.removeprefix("error: ")
        for line in stderr.splitlines()
        if line.strip() and not line.startswith("warning: ")
    ]
    return "\n".join(lines) or text.strip()


# ---------------------------------------------------------------------------------------------------
# Judging a run: shared by the loop's tests and by the test that proves they can fail.
# ---------------------------------------------------------------------------------------------------

NEVER_REPLACED = ("StatefulSet", "PersistentVolumeClaim", "Secret")
"""Kinds an upgrade must update in place: a replaced StatefulSet restarts every pod at once, a replaced claim
loses its data, a replaced Secret of generated credentials locks every client out."""


def assert_no_replacement(outcome: Outcome, kinds: Iterable[str] = NEVER_REPLACED) -> None:
    """Fail naming every replaced object of these kinds, with the properties that forced it."""
    kinds = tuple(kinds)
    replaced = [str(step) for step in outcome.replacements if step.kind in kinds]
    assert not replaced, f"{outcome.command} replaces what it must update in place:\n  " + "\n  ".join(replaced)


def assert_no_changes(outcome: Outcome) -> None:
    """Fail unless the run succeeded and changed nothing (idempotence), naming every change and error."""
    assert outcome.succeeded and not outcome.changed, f"not idempotent:\n{outcome.describe()}"


def admin_client() -> Any:
    """A Kubernetes client of the control plane with the kubeconfig's admin identity."""
    from kubernetes import config as kube_config

    return kube_config.new_client_from_config(config_file=str(kubeconfig()), context=CONTEXT, persist_config=False)
