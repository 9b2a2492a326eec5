"""Shared fixtures-as-code for the mip6 tests: addresses, deterministic randomness, a fake network."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

from mvpn_lab.mip6.core.actions import ListSink, ReceivedPacket, SendMH
from mvpn_lab.mip6.core.clock import FakeClock
from mvpn_lab.mip6.core.cn import CorrespondentNode
from mvpn_lab.mip6.core.config import CNConfig, HAConfig, MNConfig
from mvpn_lab.mip6.core.ha import HomeAgent
from mvpn_lab.mip6.core.log import MHLogger
from mvpn_lab.mip6.core.mn import MobileNode

# The hostile captures are shared with the analyser's tests (one copy).
DATA = Path(__file__).parent.parent / "data" / "malformed-mobility"

HOME_PREFIX = IPv6Network("2001:db8:1::/64")
HA = IPv6Address("2001:db8:1::1")
HOA = IPv6Address("2001:db8:1::100")
HOA2 = IPv6Address("2001:db8:1::200")
CN = IPv6Address("2001:db8:3::10")
COA1 = IPv6Address("2001:db8:2::100")
COA2 = IPv6Address("2001:db8:4::100")
FOREIGN1 = IPv6Network("2001:db8:2::/64")
FOREIGN2 = IPv6Network("2001:db8:4::/64")
IID = 0x100
ATTACKER = IPv6Address("2001:db8:66::6")


class DetRandom:
    """Deterministic replacement for os.urandom."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def __call__(self, n: int) -> bytes:
        return self._rng.randbytes(n)


@dataclass
class Bench:
    """One node with its fake clock, sink and in-memory log."""

    node: Any
    clock: FakeClock
    sink: ListSink
    log: io.StringIO

    def deliver(self, pkt: ReceivedPacket) -> str:
        return self.node.receive(pkt)


def make_ha(clock: FakeClock | None = None, **overrides: Any) -> Bench:
    cfg_kw: dict[str, Any] = {
        "address": HA,
        "home_prefix": HOME_PREFIX,
        "allowed_mobile_nodes": (HOA, HOA2),
        "require_ipsec": True,
        # DAD (on by default) delays every first registration until on_dad_result(): these
        # tests are about the other checks; the DAD tests turn it on
        "perform_dad": False,
    }
    cfg_kw.update(overrides)
    clock = clock or FakeClock()
    sink, log = ListSink(), io.StringIO()
    node = HomeAgent(
        HAConfig(**cfg_kw),
        clock=clock,
        sink=sink,
        random=DetRandom(1),
        logger=MHLogger(log, clock, node="ha", role="ha"),
    )
    return Bench(node, clock, sink, log)


def make_cn(clock: FakeClock | None = None, **overrides: Any) -> Bench:
    cfg_kw: dict[str, Any] = {"address": CN}
    cfg_kw.update(overrides)
    clock = clock or FakeClock()
    sink, log = ListSink(), io.StringIO()
    node = CorrespondentNode(
        CNConfig(**cfg_kw),
        clock=clock,
        sink=sink,
        random=DetRandom(2),
        logger=MHLogger(log, clock, node="cn", role="cn"),
    )
    return Bench(node, clock, sink, log)


def make_mn(clock: FakeClock | None = None, **overrides: Any) -> Bench:
    cfg_kw: dict[str, Any] = {"home_address": HOA, "home_agent": HA}
    cfg_kw.update(overrides)
    clock = clock or FakeClock()
    sink, log = ListSink(), io.StringIO()
    node = MobileNode(
        MNConfig(**cfg_kw),
        clock=clock,
        sink=sink,
        random=DetRandom(3),
        logger=MHLogger(log, clock, node="mn", role="mn"),
    )
    return Bench(node, clock, sink, log)


def received(send: SendMH, **overrides: Any) -> ReceivedPacket:
    """What the receiving adapter would report for a message a node emitted."""
    kw: dict[str, Any] = {
        "src": send.src,
        "dst": send.dst,
        "mh": send.wire(),
        "hao": send.hao,
        "rh2": send.rh2,
        "esp": send.esp,
    }
    kw.update(overrides)
    return ReceivedPacket(**kw)


@dataclass
class FakeNetwork:
    """Delivers the messages of an MN, its HA and a CN to each other, like the kernels would.

    Routing: the HA's and CN's addresses reach those nodes; the home address reaches the MN
    through the HA's tunnel while the HA has a binding (``via_tunnel``), directly when the MN is
    at home; a care-of address reaches the MN. A HoTI sent ``via_tunnel`` leaves the HA towards
    the CN with the home address as source. ``drop(send)`` can lose packets.
    """

    clock: FakeClock
    mn: Bench
    ha: Bench
    cn: Bench | None = None
    drop: Callable[[SendMH], bool] = lambda send: False
    delivered: list[tuple[str, SendMH, str]] = field(default_factory=list)
    actions: dict[str, list[Any]] = field(default_factory=lambda: {"mn": [], "ha": [], "cn": []})

    def _owner(self, dst: IPv6Address) -> Bench | None:
        if dst == HA:
            return self.ha
        if self.cn is not None and dst == CN:
            return self.cn
        mn: MobileNode = self.mn.node
        if dst == HOA or (mn.coa is not None and dst == mn.coa):
            return self.mn
        return None

    def pump(self) -> int:
        """Deliver everything queued until the network is quiet. Returns messages delivered."""
        count = 0
        for _ in range(1000):
            moved = False
            for name, bench in (("mn", self.mn), ("ha", self.ha), ("cn", self.cn)):
                if bench is None:
                    continue
                for action in bench.sink.drain():
                    self.actions[name].append(action)
                    if isinstance(action, SendMH):
                        moved = True
                        count += self._route(action)
            if not moved:
                return count
        raise AssertionError("network did not settle")

    def _route(self, send: SendMH) -> int:
        if self.drop(send):
            return 0
        target = self._owner(send.dst)
        if target is None:
            return 0
        via_tunnel = False
        mn: MobileNode = self.mn.node
        if target is self.mn and send.dst == HOA and mn.location != "home":
            if self.ha.node.cache.get(HOA) is None:
                return 0  # nobody forwards to the home address
            via_tunnel = True
        pkt = received(send, via_tunnel=via_tunnel)
        result = target.deliver(pkt)
        self.delivered.append((target.node.name, send, result))
        return 1

    def run(self, seconds: float) -> None:
        """Advance time by ``seconds``, firing timers and delivering messages as they happen."""
        end = self.clock.monotonic() + seconds
        self.pump()
        while True:
            deadlines = [
                d
                for b in (self.mn, self.ha, self.cn)
                if b is not None
                for d in [b.node.next_deadline()]
                if d is not None
            ]
            nxt = min(deadlines, default=None)
            if nxt is None or nxt > end:
                break
            self.clock.advance(max(0.0, nxt - self.clock.monotonic()))
            for b in (self.mn, self.ha, self.cn):
                if b is not None:
                    b.node.tick()
            self.pump()
        self.clock.advance(max(0.0, end - self.clock.monotonic()))

    def sent_by(self, name: str, kind: type | None = None) -> list[SendMH]:
        return [
            a
            for a in self.actions[name]
            if isinstance(a, SendMH) and (kind is None or isinstance(a.message, kind))
        ]

    def of(self, name: str, kind: type) -> list[Any]:
        return [a for a in self.actions[name] if isinstance(a, kind)]


def network(
    *,
    with_cn: bool = True,
    mn: dict[str, Any] | None = None,
    ha: dict[str, Any] | None = None,
    cn: dict[str, Any] | None = None,
) -> FakeNetwork:
    clock = FakeClock()
    return FakeNetwork(
        clock=clock,
        mn=make_mn(clock, **(mn or {})),
        ha=make_ha(clock, **(ha or {})),
        cn=make_cn(clock, **(cn or {})) if with_cn else None,
    )
