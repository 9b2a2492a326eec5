"""Fakes for the daemon tests: a recording command runner, a fake socket, event log capture."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import Any

from mvpn_lab.mip6.core.clock import FakeClock
from mvpn_lab.mip6.core.config import CNConfig, HAConfig, MNConfig
from mvpn_lab.mip6.daemon.events import EventLog
from mvpn_lab.mip6.daemon.kernel import kernel_adapter
from mvpn_lab.mip6.daemon.kernel.base import CommandResult, KernelAdapter

from ._helpers import CN, HA, HOA, HOA2, HOME_PREFIX


@dataclass
class Runner:
    """Records command lines; ``fail`` maps a command-line prefix to (returncode, stderr)."""

    fail: dict[str, tuple[int, str]] = field(default_factory=dict)
    stdout: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        line = " ".join(argv)
        self.lines.append(line)
        for prefix, (rc, err) in self.fail.items():
            if line.startswith(prefix):
                return CommandResult(rc, "", err)
        for prefix, out in self.stdout.items():
            if line.startswith(prefix):
                return CommandResult(0, out, "")
        return CommandResult(0, "", "")

    def take(self) -> list[str]:
        out, self.lines = self.lines, []
        return out


class FakeSocket:
    """Records setsockopt/sendmsg/sendto; recvmsg pops from ``inbox`` (BlockingIOError if empty)."""

    def __init__(self, fd: int = 99) -> None:
        self.options: list[tuple[int, int, Any]] = []
        self.sent: list[tuple[list[bytes], list[Any], int, Any]] = []
        self.sendto_calls: list[tuple[bytes, Any]] = []
        self.inbox: list[tuple[bytes, list[Any], int, Any]] = []
        self.blocking: bool | None = None
        self.closed = False
        self.fd = fd
        self.error: OSError | None = None

    def setsockopt(self, level: int, option: int, value: Any) -> None:
        self.options.append((level, option, value))

    def setblocking(self, flag: bool) -> None:
        self.blocking = flag

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0) -> Any:
        if not self.inbox:
            raise BlockingIOError
        return self.inbox.pop(0)

    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None) -> int:
        if self.error is not None:
            raise self.error
        self.sent.append((list(buffers), list(ancdata), flags, address))
        return sum(len(b) for b in buffers)

    def sendto(self, data: bytes, address: Any) -> int:
        if self.error is not None:
            raise self.error
        self.sendto_calls.append((bytes(data), address))
        return len(data)

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        self.closed = True


def event_log(clock: FakeClock | None = None, *, debug: bool = False) -> tuple[EventLog, io.StringIO]:
    stream = io.StringIO()
    return EventLog(stream, clock or FakeClock(), node="t", role="t", debug=debug), stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def mn_config(**kw: Any) -> MNConfig:
    base: dict[str, Any] = {
        "home_address": HOA,
        "home_agent": HA,
        "interfaces": ("wlan0",),
        "require_ipsec": False,
    }
    base.update(kw)
    return MNConfig(**base)


def ha_config(**kw: Any) -> HAConfig:
    base: dict[str, Any] = {
        "address": HA,
        "home_prefix": HOME_PREFIX,
        "allowed_mobile_nodes": (HOA, HOA2),
        "require_ipsec": False,
        "interface": "eth1",
        "perform_dad": False,  # DAD (on by default) has tests of its own
    }
    base.update(kw)
    return HAConfig(**base)


def cn_config(**kw: Any) -> CNConfig:
    return CNConfig(address=CN, **kw)


def adapter(
    cfg: Any, runner: Runner | None = None, *, debug: bool = False
) -> tuple[KernelAdapter, Runner, Any]:
    runner = runner or Runner()
    events, stream = event_log(debug=debug)
    return kernel_adapter(cfg, runner, events), runner, stream


def addr(text: str) -> IPv6Address:
    return IPv6Address(text)


Callback = Callable[[], None]
