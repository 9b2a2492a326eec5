"""Warnings about input files, aggregated so each (file, reason) gives one line."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO


@dataclass
class Problem:
    """One kind of problem in one file: the first occurrence and how often it happened."""

    reason: str
    message: str
    count: int = 1
    first_ts: float | None = None


MAX_PROBLEM_TIMES = 10000


class Problems:
    """Problems found while reading one file, keyed by a short reason slug.

    ``times`` keeps (timestamp, reason) of per-packet problems (bounded), so
    they can be attributed to the handover window they fall in.
    """

    def __init__(self) -> None:
        self._by_reason: dict[str, Problem] = {}
        self.times: list[tuple[float, str]] = []

    def add(self, reason: str, message: str, ts: float | None = None) -> None:
        if ts is not None and len(self.times) < MAX_PROBLEM_TIMES:
            self.times.append((ts, reason))
        known = self._by_reason.get(reason)
        if known is None:
            self._by_reason[reason] = Problem(reason, message, 1, ts)
        else:
            known.count += 1

    def __iter__(self) -> Iterator[Problem]:
        return iter(self._by_reason.values())

    def __len__(self) -> int:
        return len(self._by_reason)

    def __contains__(self, reason: object) -> bool:
        return reason in self._by_reason

    def reasons(self) -> list[str]:
        return list(self._by_reason)


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
        for problem in problems:
            suffix = ""
            if problem.count > 1:
                suffix = f" ({problem.count} times, first shown)"
            self.warn(path, f"{problem.message}{suffix}")
