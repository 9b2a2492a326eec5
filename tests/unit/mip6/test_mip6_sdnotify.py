"""The daemon's readiness notification to systemd (Type=notify units)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mvpn_lab.mip6.daemon.sdnotify import notify


@pytest.fixture
def listener(tmp_path: Path):
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield path, sock
    sock.close()


def test_ready_reaches_the_notify_socket(listener) -> None:
    path, sock = listener
    assert notify("READY=1", environ={"NOTIFY_SOCKET": str(path)})
    assert sock.recv(64) == b"READY=1"


def test_abstract_socket_address() -> None:
    name = f"mvpn-lab-test-{id(object())}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        assert notify("STOPPING=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(64) == b"STOPPING=1"
    finally:
        sock.close()


@pytest.mark.parametrize("value", ["", "relative/path", "/nonexistent/notify"])
def test_without_a_usable_socket_nothing_happens(value: str) -> None:
    assert notify("READY=1", environ={"NOTIFY_SOCKET": value} if value else {}) is False
