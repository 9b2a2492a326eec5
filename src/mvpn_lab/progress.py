"""Progress for long steps, so an image build or a boot never looks hung.

On a terminal a rich spinner shows the step, the elapsed time and the last
line of output. Elsewhere (CI logs) a plain line is printed when the step
starts, every ``interval`` seconds while it runs, and when it ends.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.status import Status

_console = Console(stderr=True, highlight=False)


class Step:
    """A running step; call :meth:`update` with the latest detail line."""

    def __init__(self, title: str, interval: float) -> None:
        self.title = title
        self.interval = interval
        self.started = time.monotonic()
        self.detail = ""
        self._last_print = self.started
        self._status: Status | None = None  # the spinner, on a terminal

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _text(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.title} ({self.elapsed:.0f} s){detail}"

    def update(self, detail: str | None = None) -> None:
        if detail is not None:
            self.detail = detail.strip()[:100]
        if self._status is not None:
            self._status.update(self._text())
            return
        now = time.monotonic()
        if now - self._last_print >= self.interval:
            self._last_print = now
            print(f"  ... {self._text()}", file=sys.stderr, flush=True)


@contextmanager
def step(title: str, interval: float = 15.0) -> Iterator[Step]:
    """Show progress for ``title`` while the body runs; report the time it took."""
    current = Step(title, interval)
    if _console.is_terminal:
        with _console.status(title) as status:
            current._status = status
            yield current
    else:
        print(f"==> {title}", file=sys.stderr, flush=True)
        yield current
    _console.print(f"[green]ok[/green] {title} in {current.elapsed:.1f} s")
