"""The README and docs stay true: generated sections current, CI runs the test command, runbook complete."""

from components.observability.prometheus.alert_rules import alerts
from components.reference import updated_readme
from components.settings.parse import parse_settings
from components.settings.stack_files import REPO, stack_config


def test_generated_readme_sections_are_current() -> None:
    readme = (REPO / "README.md").read_text()
    assert readme == updated_readme(readme), "README is stale: run python -m components.reference --write README.md"


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
    for alert in alerts(parse_settings("dev", stack_config("dev"))):
        assert alert.name.lower() in headings, f"docs/runbook.md has no section for {alert.name}"
        assert alert.annotations()["runbook_url"].endswith(f"/docs/runbook.md#{alert.name.lower()}")
