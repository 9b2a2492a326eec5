"""Fixtures for the virtual twin's unit tests.

Every test runs against its own state and cache folders, never the real twin's:
``MVPN_VLAB_DIR`` and ``MVPN_VLAB_CACHE`` point into tmp_path, and a guard makes any
attempt to signal a process (other than the existence check ``kill(pid, 0)``) fail
the test, so a bug cannot stop a running VM.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mvpn_lab.vlab import machine


@pytest.fixture(autouse=True)
def isolated_lab(tmp_path, monkeypatch) -> machine.Lab:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("MVPN_VLAB_DIR", str(state))
    monkeypatch.setenv("MVPN_VLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MVPN_VLAB_PORT", raising=False)
    monkeypatch.delenv("MVPN_VLAB_MIRROR", raising=False)
    real_kill = os.kill

    def guarded_kill(pid: int, sig: int) -> None:
        if sig != 0:
            pytest.fail(f"a test tried to send signal {sig} to pid {pid}")
        real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", guarded_kill)
    return machine.Lab(state)


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return int(proc.stdout)


@pytest.fixture
def fake_image(tmp_path) -> Path:
    """A complete-looking image folder (disk, kernel, initrd, host key)."""
    directory = tmp_path / "image"
    directory.mkdir()
    for name in ("disk.img", "vmlinuz", "initrd.img"):
        (directory / name).write_bytes(b"")
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey root@mvpn-twin\n"
    (directory / "ssh_host_ed25519_key.pub").write_text(host_key)
    return directory
