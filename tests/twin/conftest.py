"""Integration tests on the running virtual twin.

The session fixture boots the twin (building or reusing the cached image) unless
it already runs, and stops it at the end only if it started it. Long commands
write their output to tests/output/<name>.log; a failure shows the log's tail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OUTPUT = ROOT / "tests" / "output"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/twin" in str(item.fspath):
            item.add_marker(pytest.mark.twin)


def run_logged(
    name: str,
    argv: list[str],
    timeout: float,
    env: dict[str, str] | None = None,
    *,
    stamp: bool = False,
    cwd: Path = ROOT,
) -> tuple[int, str]:
    """Run a long command from the repository root (or ``cwd``), its output into tests/output/NAME.log.

    With ``stamp`` every line starts with the seconds since the start (``[  123.4] ``), so a
    slow step shows in the log.
    """
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log = OUTPUT / f"{name}.log"
    started = time.monotonic()
    with log.open("w") as fh:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=subprocess.PIPE if stamp else fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            text=stamp,
            errors="replace" if stamp else None,
        )
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            if stamp:
                assert proc.stdout is not None
                for line in proc.stdout:
                    fh.write(f"[{time.monotonic() - started:7.1f}] {line}")
                    fh.flush()
            proc.wait()
        finally:
            watchdog.cancel()
    elapsed = time.monotonic() - started
    if elapsed >= timeout:
        raise subprocess.TimeoutExpired(argv, timeout)
    print(f"{name}: exit {proc.returncode} in {elapsed:.0f} s (log {log})")
    return proc.returncode, log.read_text(errors="replace")


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "mvpn-lab"), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="session")
def twin() -> Iterator[dict[str, object]]:
    status = json.loads(cli("vlab", "status", "--json").stdout)
    if "stale pid file" in str(status.get("error", "")):
        # A previous session's twin died with its machine; clear its pid file first.
        cli("vlab", "down")
    started_here = not status.get("running")
    if started_here:
        code, out = run_logged("vlab-up", [str(BIN / "mvpn-lab"), "vlab", "up"], timeout=1800)
        assert code == 0, f"mvpn-lab vlab up failed:\n{tail(out)}"
    info = json.loads(cli("vlab", "status", "--json").stdout)
    assert info.get("running") and info.get("ssh_ready"), info
    yield info
    if started_here and os.environ.get("MVPN_KEEP_TWIN") != "1":
        cli("vlab", "down")
