"""Common machinery of the MN, HA and CN state machines.

A node is driven by three kinds of input, all synchronous and free of I/O:

* ``receive(packet)``: a Mobility Header packet arrived (:class:`ReceivedPacket`);
* ``tick()``: fire the timers that are due on the injected clock (call it at ``next_deadline()``);
* role-specific events (movement on the MN, DAD results on the HA, ...).

Output goes to the injected ``sink`` as :mod:`~mvpn_lab.mip6.core.actions` objects. Every MH message
sent or received is logged by the injected :class:`~mvpn_lab.mip6.core.log.MHLogger`. Rejected input
is counted by reason in ``rejected``; ``receive`` never raises on bad input.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from ipaddress import IPv6Address
from typing import Any

from mvpn_lab.mip6.core import counters as reasons
from mvpn_lab.mip6.core.actions import Action, ReceivedPacket, SendMH, Sink
from mvpn_lab.mip6.core.clock import Clock
from mvpn_lab.mip6.core.counters import Counters
from mvpn_lab.mip6.core.log import MHLogger
from mvpn_lab.mip6.core.rr import RandomSource
from mvpn_lab.mip6.wire.constants import IPPROTO_NONE, BEStatus
from mvpn_lab.mip6.wire.ipv6 import verify_mh_checksum
from mvpn_lab.mip6.wire.messages import (
    AlternateCareOfAddress,
    BindingAuthorizationData,
    BindingError,
    BindingUpdate,
    Message,
    MHDecodeError,
    Pad1,
    PadN,
    UnknownMessage,
    decode_mh,
)

Handler = Callable[[ReceivedPacket, Any], str]

ACCEPTED = "accepted"
IGNORED = "ignored"


def structure_problem(msg: Message) -> str | None:
    """What makes a well-decoded message unacceptable whatever the node's role (as UMIP checks):
    a Payload Proto other than 59 (RFC 6275 6.1.1; the Linux kernel's MH filter drops it too,
    this check does not rely on it), and in a BU two Alternate Care-of Address options or an
    option after the Binding Authorization Data (which must be last, 6.2.7)."""
    if msg.payload_proto != IPPROTO_NONE:
        return reasons.BAD_PAYLOAD_PROTO
    if isinstance(msg, BindingUpdate):
        options = [o for o in msg.options if not isinstance(o, Pad1 | PadN)]
        if sum(isinstance(o, AlternateCareOfAddress) for o in options) > 1:
            return reasons.INVALID_OPTIONS
        if any(isinstance(o, BindingAuthorizationData) for o in options[:-1]):
            return reasons.INVALID_OPTIONS
    return None


def is_unicast_routable(addr: IPv6Address) -> bool:
    return not (
        addr.is_multicast or addr.is_unspecified or addr.is_loopback or addr.is_link_local or addr.is_reserved
    )


class Node:
    role = "node"

    def __init__(
        self,
        *,
        clock: Clock,
        sink: Sink,
        logger: MHLogger | None = None,
        random: RandomSource = os.urandom,
        name: str | None = None,
    ) -> None:
        self.clock = clock
        self.sink = sink
        self.random = random
        self.name = name or self.role
        self.logger = logger or MHLogger(None, clock, node=self.name, role=self.role)
        self.rejected = Counters()
        self.stats = Counters()
        self._timers: dict[Any, tuple[float, Callable[[], None]]] = {}
        self._last_be: dict[IPv6Address, float] = {}

    # ------------------------------------------------------------------ time

    def now(self) -> float:
        return self.clock.monotonic()

    def set_timer(self, key: Any, delay: float, callback: Callable[[], None]) -> None:
        self._timers[key] = (self.now() + max(0.0, delay), callback)

    def cancel_timer(self, key: Any) -> None:
        self._timers.pop(key, None)

    def timer_deadline(self, key: Any) -> float | None:
        entry = self._timers.get(key)
        return None if entry is None else entry[0]

    def next_deadline(self) -> float | None:
        return min((deadline for deadline, _ in self._timers.values()), default=None)

    def tick(self) -> None:
        """Run every timer whose deadline has passed, earliest first."""
        for _ in range(10_000):  # a timer that re-arms itself with no delay cannot hang the loop
            now = self.now()
            due = [(deadline, key) for key, (deadline, _) in self._timers.items() if deadline <= now]
            if not due:
                return
            _, key = min(due, key=lambda item: item[0])
            _, callback = self._timers.pop(key)
            callback()

    # ------------------------------------------------------------------ output

    def emit(self, action: Action) -> None:
        self.sink(action)

    def send(
        self,
        src: IPv6Address,
        dst: IPv6Address,
        message: Message,
        *,
        hao: IPv6Address | None = None,
        rh2: IPv6Address | None = None,
        via_tunnel: bool = False,
        esp: bool = False,
    ) -> SendMH:
        action = SendMH(src, dst, message, hao=hao, rh2=rh2, via_tunnel=via_tunnel, esp=esp)
        self.stats.inc(f"tx_{message.NAME}")
        self.logger.log("tx", src=src, dst=dst, msg=message, hao=hao, rh2=rh2, via_tunnel=via_tunnel)
        self.emit(action)
        return action

    def send_binding_error(
        self, local: IPv6Address, dst: IPv6Address, status: int, home_address: IPv6Address | None
    ) -> None:
        """Binding Error from ``local`` to ``dst``, at most one per second per destination
        (RFC 6275 9.3.3 asks for rate limiting)."""
        now = self.now()
        last = self._last_be.get(dst)
        if last is not None and now - last < 1.0:
            self.rejected.inc(reasons.RATE_LIMITED)
            return
        self._last_be[dst] = now
        self.send(local, dst, BindingError(status=status, home_address=home_address or IPv6Address("::")))

    # ------------------------------------------------------------------ input

    def receive(self, pkt: ReceivedPacket) -> str:
        """Process one packet. Returns ``accepted``, ``ignored`` or ``rejected:<reason>``."""
        try:
            msg = decode_mh(pkt.mh)
        except MHDecodeError as exc:
            self.rejected.inc(reasons.MALFORMED)
            self.logger.log(
                "rx",
                src=pkt.src,
                dst=pkt.dst,
                msg=None,
                hao=pkt.hao,
                rh2=pkt.rh2,
                result=f"rejected:{reasons.MALFORMED}",
                error=exc.reason,
                length=len(pkt.mh),
            )
            return f"rejected:{reasons.MALFORMED}"
        if not pkt.checksum_verified and not verify_mh_checksum(pkt.pseudo_src, pkt.pseudo_dst, pkt.mh):
            result = self._reject(reasons.BAD_CHECKSUM)
        elif (problem := structure_problem(msg)) is not None:
            result = self._reject(problem)
        else:
            self.stats.inc(f"rx_{msg.NAME}")
            result = self.dispatch(pkt, msg)
        self.logger.log(
            "rx",
            src=pkt.src,
            dst=pkt.dst,
            msg=msg,
            hao=pkt.hao,
            rh2=pkt.rh2,
            result=result,
            esp=pkt.esp,
            via_tunnel=pkt.via_tunnel,
        )
        return result

    def _reject(self, reason: str) -> str:
        self.rejected.inc(reason)
        return f"rejected:{reason}"

    def dispatch(self, pkt: ReceivedPacket, msg: Message) -> str:
        if isinstance(msg, UnknownMessage):
            return self.on_unknown_type(pkt, msg)
        handler: Handler | None = getattr(self, f"on_{msg.NAME.lower()}", None)
        if handler is None:
            return self._reject(reasons.UNEXPECTED_MESSAGE)
        return handler(pkt, msg)

    def on_unknown_type(self, pkt: ReceivedPacket, msg: UnknownMessage) -> str:
        """RFC 6275 9.2: answer an unrecognised MH type with a Binding Error, status 2."""
        self.send_binding_error(pkt.pseudo_dst, pkt.src, BEStatus.UNRECOGNIZED_MH_TYPE, pkt.hao)
        return self._reject(reasons.UNEXPECTED_MESSAGE)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "name": self.name,
            "time": round(self.now(), 3),
            "rejected": self.rejected.as_dict(),
            "stats": self.stats.as_dict(),
        }
