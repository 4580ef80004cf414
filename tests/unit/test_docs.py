"""The README and docs stay true: generated sections current, links resolving, CI running the test command."""

import ast
import re
from pathlib import Path

import pytest

from components.observability.prometheus.alert_rules import alerts
from components.reference import OTHER_FOLDERS, SECTIONS, documents, layout_rows, stale
from components.settings.stack_files import REPO
from tests.support.render import SHIPPED_STACKS, shipped_settings

DOCUMENTS = documents()
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def test_generated_sections_are_current() -> None:
    assert not stale(), f"stale generated sections in {stale()}: run python -m components.reference --write"


def test_every_generated_section_is_in_exactly_one_document() -> None:
    texts = {path.relative_to(REPO).as_posix(): path.read_text() for path in DOCUMENTS}
    for marker in [*SECTIONS, "alerts"]:
        holders = [name for name, text in texts.items() if f"<!-- {marker}:start -->" in text]
        assert len(holders) == 1, f"generated section {marker} is in {holders or 'no document'}, not in exactly one"


def test_the_readme_fits_one_screen() -> None:
    lines = (REPO / "README.md").read_text().count("\n")
    assert lines <= 150, f"README.md has {lines} lines: move detail into docs/"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(document: Path) -> None:
    text = FENCE.sub("", document.read_text())
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        assert linked.exists(), f"{document.name}: link {target} points at nothing"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked.read_text()), f"{document.name}: {linked.name} has no heading #{anchor}"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Test (a fresh machine)", 1)[1]
    command = section.split("```sh", 1)[1].split("```", 1)[0].strip()
    assert command == "scripts/test"
    ci = (REPO / ".ci" / "run").read_text()
    assert f"exec {command}\n" in ci


def test_every_alert_has_a_runbook_section() -> None:
    runbook = (REPO / "docs" / "runbook.md").read_text()
    headings = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    every = {alert.name: alert for stack in SHIPPED_STACKS for alert in alerts(shipped_settings(stack))}
    for alert in every.values():
        assert alert.name.lower() in headings, f"docs/runbook.md has no section for {alert.name}"
        assert alert.annotations()["runbook_url"].endswith(f"/docs/runbook.md#{alert.name.lower()}")


def test_the_count_of_bad_config_cases_is_the_tests_own() -> None:
    module = ast.parse((REPO / "tests" / "unit" / "test_settings.py").read_text())
    cases = next(
        node.value
        for node in module.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "BAD_CONFIGS" for t in node.targets)
    )
    assert isinstance(cases, ast.List)
    stated = re.search(r"(\d+) bad-config cases", (REPO / "docs" / "testing.md").read_text())
    assert stated, "docs/testing.md no longer states how many bad-config cases there are"
    assert int(stated[1]) == len(cases.elts), f"docs/testing.md says {stated[1]}, BAD_CONFIGS has {len(cases.elts)}"


def test_the_layout_refuses_a_folder_it_does_not_describe(tmp_path: Path) -> None:
    packages = ["components", "components/data", "components/data/clickhouse", "verify", "verify/load"]
    packages += ["tests", "tests/unit", "tests/support"]
    for folder in packages:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text('"""A package."""\n')
    for folder in ("policy", "scripts/servers", "bench", "docs", *OTHER_FOLDERS):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    assert "| `components/data/` | A package. | none |" in layout_rows(tmp_path)
    (tmp_path / "components" / "stray").mkdir()
    with pytest.raises(ValueError, match="components/stray/ is neither a package nor in OTHER_FOLDERS"):
        layout_rows(tmp_path)


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lowercase, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", markdown), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
