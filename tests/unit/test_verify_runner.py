"""The runner's contract: deadlines hold, errors are classed, secrets are redacted, cleanup always runs."""

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

from verify.core.checks import Check, CheckFailedError, Cleanup, Context, Record, Status
from verify.core.exit_codes import ExitCode, exit_code
from verify.core.report import RunInfo, as_junit, as_markdown
from verify.core.runner import Options, Redactor, run

SECRET = "s3cret-value-0123456789"


def check(name: str, probe: Callable[[Context], dict], deadline: float = 5.0) -> Check:
    """A smoke check with no real target."""
    return Check(name, "smoke", "nowhere", probe, deadline)


def run_all(checks: list[Check], cleanup: Cleanup | None = None, **options: object) -> tuple[list[Record], bool]:
    """Run checks with no progress output."""
    context = Context("run-1", None, cleanup or Cleanup())
    outcome = run(checks, context, Options(**options), Redactor({SECRET}), lambda _: None, lambda _: None)
    return outcome.records, outcome.interrupted


def passes(_: Context) -> dict:
    return {"answer": 42}


def test_a_hung_probe_fails_at_its_deadline_and_the_run_goes_on() -> None:
    release = threading.Event()
    began = time.monotonic()
    records, _ = run_all([check("hangs", lambda _: release.wait(60), deadline=0.5), check("next", passes)])
    release.set()
    assert time.monotonic() - began < 5
    assert records[0].status == Status.FAILED and "deadline of 0.5s" in records[0].error
    assert records[1].status == Status.PASSED and records[1].figures == {"answer": 42}


def test_service_errors_fail_and_bugs_are_harness_errors() -> None:
    def refused(_: Context) -> dict:
        raise ConnectionRefusedError(111, "Connection refused")

    def wrong(_: Context) -> dict:
        raise CheckFailedError("3 rows, 5 expected", {"rows": 3})

    def bug(_: Context) -> dict:
        return {}["missing"]

    records, _ = run_all([check("refused", refused), check("wrong", wrong), check("bug", bug)])
    assert [r.status for r in records[:3]] == [Status.FAILED, Status.FAILED, Status.ERROR]
    assert "Connection refused" in records[0].error and records[1].error == "3 rows, 5 expected"
    assert records[1].figures == {"rows": 3}, "what a failing check measured is reported with the failure"
    assert exit_code(records, False) == ExitCode.HARNESS
    assert exit_code(records[:2], False) == ExitCode.FAILED


def test_secrets_never_reach_a_record() -> None:
    def leaks(_: Context) -> dict:
        raise CheckFailedError(f"login with {SECRET} refused")

    records, _ = run_all([check("leaks", leaks)])
    assert SECRET not in records[0].error and "[redacted]" in records[0].error


def test_cleanup_runs_newest_first_and_a_failure_is_its_own_exit_code() -> None:
    undone: list[str] = []
    cleanup = Cleanup()

    def creates(context: Context) -> dict:
        context.cleanup.add("first", lambda: undone.append("first"))
        context.cleanup.add("second", lambda: undone.append("second"))
        context.cleanup.add("broken", lambda: 1 / 0)
        return {}

    records, _ = run_all([check("creates", creates)], cleanup)
    assert undone == ["second", "first"]
    assert records[-1].name == "cleanup" and records[-1].status == Status.FAILED
    assert exit_code(records, False) == ExitCode.CLEANUP


def test_fail_fast_and_the_run_deadline_skip_the_rest() -> None:
    def fails(_: Context) -> dict:
        raise CheckFailedError("no")

    records, _ = run_all([check("fails", fails), check("after", passes)], fail_fast=True)
    assert records[1].status == Status.SKIPPED and "--fail-fast" in records[1].error
    records, _ = run_all([check("slow", lambda _: time.sleep(0.3) or {}), check("late", passes)], deadline=0.2)
    assert records[1].status == Status.SKIPPED and "deadline" in records[1].error


def test_ctrl_c_skips_the_rest_and_still_cleans_up() -> None:
    cleaned: list[str] = []

    def interrupted(context: Context) -> dict:
        context.cleanup.add("table", lambda: cleaned.append("table"))
        return {}

    def progress(started: Check) -> None:
        if started.name == "second":
            raise KeyboardInterrupt

    context = Context("run-1", None, Cleanup())
    checks = [check("first", interrupted), check("second", passes), check("third", passes)]
    outcome = run(checks, context, Options(), Redactor(()), progress, lambda _: None)
    assert outcome.interrupted and cleaned == ["table"]
    assert [r.status for r in outcome.records] == [Status.PASSED, Status.SKIPPED, Status.SKIPPED, Status.PASSED]
    assert exit_code(outcome.records, outcome.interrupted) == ExitCode.HARNESS


def test_junit_and_markdown_are_views_of_the_records() -> None:
    records = [
        Record("presto.tpch", "smoke", Status.PASSED, "2026-01-01T00:00:00+00:00", 1.5, {"rows": 60175}),
        Record("kafka.topic", "smoke", Status.FAILED, "2026-01-01T00:00:02+00:00", 0.1, error="offline: [1]"),
        Record("cleanup", "cleanup", Status.PASSED, "2026-01-01T00:00:03+00:00", 0.0),
    ]
    info = RunInfo("run-1", "dev", "smoke", "2026-01-01T00:00:00+00:00", 2.0, 1, {})
    root = ET.fromstring(as_junit(info, records))
    smoke = root.find("testsuite[@name='smoke']")
    assert (smoke.get("tests"), smoke.get("failures")) == ("2", "1")
    assert root.find(".//testcase[@name='kafka.topic']/failure").get("message") == "offline: [1]"
    assert root.find("testsuite[@name='cleanup']/testcase[@name='cleanup']") is not None
    summary = as_markdown(info, records)
    assert "| kafka.topic | failed | 0.10 | offline: [1] |" in summary and "rows=60175" in summary


def test_a_gate_that_does_not_pass_skips_the_rest_and_means_not_ready() -> None:
    def not_ready(_: Context) -> dict:
        raise CheckFailedError("StatefulSet/kafka: 0/1 replicas ready")

    gate = Check("kubernetes.preflight", "preflight", "api", not_ready, 5, gate=True)
    records, _ = run_all([gate, check("after", passes)])
    assert records[1].status == Status.SKIPPED and records[1].error == "kubernetes.preflight did not pass"
    assert exit_code(records, False) == ExitCode.NOT_READY
    open_gate = Check("kubernetes.preflight", "preflight", "api", passes, 5, gate=True)
    records, _ = run_all([open_gate, check("after", passes)])
    assert [r.status for r in records[:2]] == [Status.PASSED, Status.PASSED]
