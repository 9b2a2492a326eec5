"""Warnings about input files, aggregated so each (file, reason) gives one line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from mvpn_lab.mip6.wire.pcap import MAX_PROBLEM_TIMES, Problem, Problems

# Problems of one capture file are recorded by the shared reader (mvpn_lab.mip6.wire.pcap).
__all__ = ["MAX_PROBLEM_TIMES", "Diagnostics", "Problem", "Problems", "Warning_"]


@dataclass(frozen=True)
class Warning_:
    """A warning that was shown to the user (kept for the report)."""

    file: str
    message: str

    def line(self) -> str:
        return f"{self.file}: {self.message}" if self.file else self.message


class Diagnostics:
    """Collects warnings and prints each one as a single line on stderr."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False):
        self._stream = stream
        self.quiet = quiet
        self.warnings: list[Warning_] = []
        self._seen: set[tuple[str, str]] = set()
        self.on_warning: Callable[[Warning_], None] | None = None

    @staticmethod
    def display(path: Path | str | None) -> str:
        """Paths are shown as built from the RUN_DIR the user gave."""
        return "" if path is None else str(path)

    def warn(self, path: Path | str | None, message: str) -> None:
        message = " ".join(str(message).split())  # one line, whatever the input
        item = Warning_(self.display(path), message)
        key = (item.file, item.message)
        if key in self._seen:
            return
        self._seen.add(key)
        self.warnings.append(item)
        if not self.quiet:
            stream = self._stream if self._stream is not None else sys.stderr
            print(f"mvpn-lab: warning: {item.line()}", file=stream)
        if self.on_warning is not None:
            self.on_warning(item)

    def report_problems(self, path: Path | str, problems: Problems) -> None:
        for line in problems.lines():
            self.warn(path, line)
