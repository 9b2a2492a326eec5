"""What a role driver is, and what the event loop offers it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any, Protocol

from mvpn_lab.mip6.core.actions import Action, ReceivedPacket, SendMH, Sink
from mvpn_lab.mip6.core.clock import Clock
from mvpn_lab.mip6.core.counters import Counters
from mvpn_lab.mip6.core.log import MHLogger
from mvpn_lab.mip6.core.node import Node
from mvpn_lab.mip6.daemon.events import EventLog
from mvpn_lab.mip6.daemon.io import DaemonIO
from mvpn_lab.mip6.daemon.kernel.base import KernelAdapter


class Services(Protocol):
    """The event loop, as a driver sees it."""

    io: DaemonIO
    clock: Clock
    events: EventLog
    counters: Counters

    @property
    def trigger_at(self) -> float: ...
    def call_later(self, delay: float, name: str, callback: Callable[[], None]) -> None: ...
    def after_input(self) -> None: ...
    def drain(self) -> None: ...
    def guard(self, name: str, fn: Callable[[], Any]) -> None: ...
    def ifindex(self, name: str) -> int: ...
    def send_rs(self, iface: str) -> None: ...


@dataclass
class NodeArgs:
    """What the state machine gets from the loop."""

    clock: Clock
    sink: Sink
    logger: MHLogger
    random: Callable[[int], bytes]


Reader = tuple[Any, Callable[[], None]]


class RoleDriver:
    """Defaults: a role without extra sockets, timers or actions of its own."""

    node: Node
    kernel: KernelAdapter

    def start(self) -> None:
        """After the kernel's static entries: read the current state of the host."""

    def readers(self) -> list[Reader]:
        """The role's own descriptors for the loop, with their handlers."""
        return []

    def esp_for(self, pkt: ReceivedPacket) -> bool:
        """True when a ``level required`` ESP policy covers this message (see the loop's doc)."""
        return False

    def on_ndisc(self, kind: int | None, data: bytes, src: IPv6Address, iface: str | None) -> None:
        """A Neighbour Discovery message of the types this role listens to."""

    def send_device(self, send: SendMH) -> str | None:
        """The device to pin an outgoing Mobility Header message to (None: routing decides)."""
        return None

    def execute(self, action: Action) -> bool:
        """Carry out an action only this role has; False when it is not one."""
        return False

    def answer_fields(self, send: SendMH) -> dict[str, Any]:
        """Extra fields for the ``answer`` line of ``send`` (just sent)."""
        return {}

    def after_kernel(self, action: Action, ok: bool) -> None:
        """After the kernel adapter carried out (or failed) ``action``."""

    def begin_exit(self) -> bool:
        """The daemon stops: True while the role has something to wait for (see :meth:`exit_done`)."""
        return False

    def exit_done(self) -> bool | None:
        """None: nothing was waited for; else whether the wait ended well."""
        return None

    def deadlines(self) -> list[float]:
        return []

    def on_timers(self) -> None:
        """Each loop pass with expired timers."""

    def close(self) -> None:
        """Before the sockets close."""

    def status(self) -> dict[str, Any]:
        """Extra keys for the ``daemon`` part of the status."""
        return {}


class DriverClass(Protocol):
    """A driver class: built from the config, and opens the role's sockets."""

    def __call__(self, cfg: Any, loop: Services, args: NodeArgs) -> RoleDriver: ...
    def open_io(self, cfg: Any, opened: list[Any]) -> dict[str, Any]: ...
