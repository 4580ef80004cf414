"""Live progress: rich on a terminal, plain lines when not a TTY or under CI."""

import os
import sys
from typing import TextIO

from rich.console import Console
from rich.status import Status as Spinner

from verify.core.checks import Check, Record, Status

STYLE = {Status.PASSED: "green", Status.FAILED: "red", Status.ERROR: "magenta", Status.SKIPPED: "yellow"}


class Progress:
    """Says which check starts and how each ended."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.fancy = stream.isatty() and not os.environ.get("CI")
        self._console = Console(file=stream, highlight=False) if self.fancy else None
        self._stream = stream
        self._status: Spinner | None = None

    def start(self, check: Check) -> None:
        """A check begins."""
        if self._console is not None:
            self._status = self._console.status(f"{check.name} (up to {check.deadline:g}s)")
            self._status.start()

    def update(self, text: str) -> None:
        """The running check says where it is: the spinner's text on a terminal, else a line."""
        if self._status is not None:
            self._status.update(text)
        elif self._console is None:
            print(f"{'':>7} {text}", file=self._stream, flush=True)

    def done(self, record: Record) -> None:
        """A check ended."""
        detail = record.detail()
        if self._console is not None:
            if self._status is not None:
                self._status.stop()
                self._status = None
            style = STYLE[record.status]
            self._console.print(f"[{style}]{record.status:>7}[/] {record.name} [dim]{record.seconds:.2f}s[/] {detail}")
        else:
            print(f"{record.status:>7} {record.name} {record.seconds:.2f}s {detail}", file=self._stream, flush=True)
