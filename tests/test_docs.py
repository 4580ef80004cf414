"""The README stays true: generated sections are current, and its test command is what CI runs."""

from components.settings_reference import updated_readme
from components.stack_files import REPO


def test_generated_readme_sections_are_current() -> None:
    readme = (REPO / "README.md").read_text()
    assert readme == updated_readme(readme), (
        "README is stale: run python -m components.settings_reference --write README.md"
    )


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Test (a fresh machine)", 1)[1]
    command = section.split("```sh", 1)[1].split("```", 1)[0].strip()
    assert command == "scripts/test"
    ci = (REPO / ".ci" / "run").read_text()
    assert f"exec {command}\n" in ci
