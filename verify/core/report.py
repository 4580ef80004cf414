"""The run's reports, all views of the same records: JSON, JUnit XML and a Markdown summary."""

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from verify.core.checks import Record, Status

SCHEMA_VERSION = 1
JSON_FILE = "verify-report.json"
JUNIT_FILE = "junit.xml"
SUMMARY_FILE = "summary.md"


@dataclass(frozen=True)
class RunInfo:
    """What the records are about."""

    run_id: str
    stack: str
    command: str
    started: str
    seconds: float
    exit_code: int
    versions: dict[str, str]
    """verify's own and each service's, as far as the checks learned them."""


def as_json(info: RunInfo, records: list[Record]) -> str:
    """The JSON report: schema version, run metadata and every record."""
    document = {"schemaVersion": SCHEMA_VERSION, **asdict(info), "checks": [asdict(r) for r in records]}
    return json.dumps(document, indent=2) + "\n"


def as_junit(info: RunInfo, records: list[Record]) -> str:
    """JUnit XML: one testsuite per scenario, one testcase per check (cleanup included)."""
    suites = ET.Element("testsuites", name=f"verify {info.command}", time=f"{info.seconds:.3f}")
    for scenario in dict.fromkeys(r.scenario for r in records):
        mine = [r for r in records if r.scenario == scenario]
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=scenario,
            tests=str(len(mine)),
            failures=str(sum(r.status == Status.FAILED for r in mine)),
            errors=str(sum(r.status == Status.ERROR for r in mine)),
            skipped=str(sum(r.status == Status.SKIPPED for r in mine)),
            time=f"{sum(r.seconds for r in mine):.3f}",
            timestamp=mine[0].started,
        )
        for record in mine:
            case = ET.SubElement(
                suite, "testcase", classname=f"verify.{scenario}", name=record.name, time=f"{record.seconds:.3f}"
            )
            tag = {Status.FAILED: "failure", Status.ERROR: "error", Status.SKIPPED: "skipped"}.get(record.status)
            if tag:
                ET.SubElement(case, tag, message=record.error or "")
            if record.figures:
                ET.SubElement(case, "system-out").text = json.dumps(record.figures, sort_keys=True)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def as_markdown(info: RunInfo, records: list[Record]) -> str:
    """A summary for people: the verdict, then a row per check with its figures or its error."""
    counts = {status: sum(r.status == status for r in records) for status in Status}
    verdict = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    lines = [
        f"# verify {info.command}: stack {info.stack}",
        "",
        f"Run `{info.run_id}`, started {info.started}, {info.seconds:.1f}s, exit code {info.exit_code}: {verdict}.",
        "",
        "| check | status | seconds | figures or error |",
        "|---|---|---|---|",
    ]
    for record in records:
        detail = record.detail()
        lines.append(f"| {record.name} | {record.status} | {record.seconds:.2f} | {detail.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def write_reports(directory: Path, info: RunInfo, records: list[Record]) -> list[Path]:
    """Write the three reports into the directory (created if need be); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, render in ((JSON_FILE, as_json), (JUNIT_FILE, as_junit), (SUMMARY_FILE, as_markdown)):
        path = directory / name
        path.write_text(render(info, records))
        written.append(path)
    return written
