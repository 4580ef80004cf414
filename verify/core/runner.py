"""Running checks: each in its own thread under its deadline, a record for each, cleanup at the end."""

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import clickhouse_driver.errors
import confluent_kafka
import kubernetes.client.exceptions
import prestodb.exceptions
import urllib3.exceptions

from verify.core.checks import Check, CheckFailedError, CheckSkippedError, Cleanup, Context, Figures, Record, Status

SERVICE_ERRORS: tuple[type[BaseException], ...] = (
    CheckFailedError,
    OSError,  # refused, reset, timed out; requests' errors too
    clickhouse_driver.errors.Error,
    prestodb.exceptions.DatabaseError,
    prestodb.exceptions.HttpError,
    prestodb.exceptions.TimeoutError,
    confluent_kafka.KafkaException,
    kubernetes.client.exceptions.ApiException,
    urllib3.exceptions.HTTPError,
)
"""Errors that mean the service is down, refusing, hung or wrong: the check fails (the rest are harness errors)."""


@dataclass(frozen=True)
class Options:
    """How a run goes."""

    deadline: float | None = None
    """Seconds for the whole run; checks that would start after it are skipped."""
    fail_fast: bool = False


class Redactor:
    """Replaces every secret value in text with [redacted]."""

    def __init__(self, secrets: Iterable[str]):
        self._secrets = sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def run_check(check: Check, context: Context, classify: tuple[type[BaseException], ...]) -> Record:
    """Run one probe in a daemon thread and wait at most its deadline for it."""
    found: list[Figures] = []
    raised: list[BaseException] = []

    def target() -> None:
        try:
            found.append(check.probe(context))
        except BaseException as error:  # recorded, judged below
            raised.append(error)

    started, began = _now(), time.monotonic()
    worker = threading.Thread(target=target, name=check.name, daemon=True)
    worker.start()
    worker.join(check.deadline)
    seconds = round(time.monotonic() - began, 3)
    record = Record(check.name, check.scenario, Status.PASSED, started, seconds)
    if worker.is_alive():
        # The probe's own socket timeouts end the thread later; the run does not wait for it.
        record.status, record.error = Status.FAILED, f"no answer within its deadline of {check.deadline:g}s"
        return record
    error = raised[0] if raised else None
    if error is None:
        record.figures = dict(found[0] if found and found[0] else {})
    elif isinstance(error, CheckSkippedError):
        record.status, record.error = Status.SKIPPED, str(error)
    elif isinstance(error, classify):
        record.status, record.error = Status.FAILED, _describe(error)
        record.figures = dict(getattr(error, "figures", {}))
    else:
        record.status, record.error = Status.ERROR, f"verify could not measure: {_describe(error)}"
    return record


def _describe(error: BaseException) -> str:
    """A one-line reason: a failed check's own message; otherwise the error's type and message."""
    text = " ".join(str(error).split())
    if isinstance(error, CheckFailedError):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@dataclass
class Outcome:
    """The records of a run, cleanup last, and whether Ctrl-C cut it short."""

    records: list[Record]
    interrupted: bool = False


def run(
    checks: list[Check],
    context: Context,
    options: Options,
    redact: Redactor,
    on_start: Callable[[Check], None],
    on_record: Callable[[Record], None],
    classify: tuple[type[BaseException], ...] = SERVICE_ERRORS,
) -> Outcome:
    """Run checks in order, then undo what they created; Ctrl-C skips the rest but still cleans up."""
    outcome = Outcome([])
    began = time.monotonic()
    stop_reason = None
    for check in checks:
        if stop_reason is None and options.deadline is not None and time.monotonic() - began >= options.deadline:
            stop_reason = f"the run's deadline of {options.deadline:g}s was reached"
        if stop_reason is not None:
            record = Record(check.name, check.scenario, Status.SKIPPED, _now(), 0.0, error=stop_reason)
        else:
            try:
                on_start(check)
                record = run_check(check, context, classify)
            except KeyboardInterrupt as stop:
                signal = stop.args[0] if stop.args else "Ctrl-C"
                outcome.interrupted, stop_reason = True, f"interrupted ({signal})"
                context.stopping.set()
                record = Record(check.name, check.scenario, Status.SKIPPED, _now(), 0.0, error=stop_reason)
            if stop_reason is None and check.gate and record.status != Status.PASSED:
                stop_reason = f"{check.name} did not pass"
            elif options.fail_fast and record.status in (Status.FAILED, Status.ERROR):
                stop_reason = f"--fail-fast: {check.name} did not pass"
        record.error = redact(record.error) if record.error else None
        record.figures = {k: redact(v) if isinstance(v, str) else v for k, v in record.figures.items()}
        outcome.records.append(record)
        on_record(record)
    cleanup = clean_up(context.cleanup, redact)
    outcome.records.append(cleanup)
    on_record(cleanup)
    return outcome


def clean_up(cleanup: Cleanup, redact: Redactor) -> Record:
    """Run every undo action, newest first; the record fails if any of them did."""
    started, began = _now(), time.monotonic()
    failures = []
    count = len(cleanup.actions)
    for what, undo in reversed(cleanup.actions):
        try:
            undo()
        except Exception as error:  # every action runs; failures are reported together
            failures.append(f"{what}: {_describe(error)}")
    cleanup.actions.clear()
    figures: Figures = {"actions": count, "failed": len(failures)}
    status = Status.FAILED if failures else Status.PASSED
    message = redact("; ".join(failures)) if failures else None
    return Record("cleanup", "cleanup", status, started, round(time.monotonic() - began, 3), figures, message)
