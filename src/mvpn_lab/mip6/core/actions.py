"""Plain data passed between the state machines and the (later) kernel adapter.

Inbound: :class:`ReceivedPacket`, the metadata of one Mobility Header packet.
Outbound: actions, emitted through a sink in the order they must be executed:
:class:`SendMH` (a message to send) and data-plane actions (tunnels, routes, proxy ND, xfrm
``hao``/``route2`` states, router solicitations, addresses). ``direction`` on the xfrm actions is
``out`` (insert the option/header into packets we send) or ``in`` (accept packets carrying it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from ipaddress import IPv6Address
from typing import Any, ClassVar

from mvpn_lab.mip6.wire.messages import Message, encode_mh, message_to_dict


@dataclass(frozen=True)
class ReceivedPacket:
    """One received Mobility Header packet as the adapter saw it.

    ``src``/``dst`` are the addresses of the IPv6 header as received (for a packet with a type 2
    routing header, ``dst`` is the care-of address and ``rh2`` the home address). ``esp`` is true
    when the kernel reports the packet arrived ESP-protected; ``via_tunnel`` when it arrived
    encapsulated in the home agent tunnel. ``checksum_verified`` lets the adapter say the kernel
    already checked the MH checksum (then it is not checked again).
    """

    src: IPv6Address
    dst: IPv6Address
    mh: bytes
    hao: IPv6Address | None = None
    rh2: IPv6Address | None = None
    esp: bool = False
    via_tunnel: bool = False
    checksum_verified: bool = False
    iface: str | None = None

    @property
    def pseudo_src(self) -> IPv6Address:
        return self.hao if self.hao is not None else self.src

    @property
    def pseudo_dst(self) -> IPv6Address:
        return self.rh2 if self.rh2 is not None else self.dst


class Action:
    """Base of everything a state machine asks the adapter to do."""

    kind: ClassVar[str] = "action"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.kind}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, IPv6Address):
                value = str(value)
            elif f.name == "message":
                value = message_to_dict(value)
            out[f.name] = value
        return out


@dataclass(frozen=True)
class SendMH(Action):
    """Send ``message`` from ``src`` to ``dst``.

    ``hao``: insert a Home Address option with this home address (xfrm ``hao`` state).
    ``rh2``: add a type 2 routing header with this home address (xfrm ``route2`` state).
    ``via_tunnel``: send through the mobile node's reverse tunnel to its home agent (HoTI).
    ``esp``: the message must leave ESP-protected (MN-HA signalling).
    """

    src: IPv6Address
    dst: IPv6Address
    message: Message
    hao: IPv6Address | None = None
    rh2: IPv6Address | None = None
    via_tunnel: bool = False
    esp: bool = False
    kind: ClassVar[str] = "send_mh"

    def wire(self) -> bytes:
        """The Mobility Header bytes with the checksum the kernel would compute."""
        return encode_mh(
            self.message,
            src=self.hao if self.hao is not None else self.src,
            dst=self.rh2 if self.rh2 is not None else self.dst,
        )


# ---- mobile node and home agent: bidirectional tunnel


@dataclass(frozen=True)
class SetTunnel(Action):
    """Create or re-point the ip6ip6 tunnel between ``local`` and ``remote``."""

    local: IPv6Address
    remote: IPv6Address
    kind: ClassVar[str] = "set_tunnel"


@dataclass(frozen=True)
class DelTunnel(Action):
    local: IPv6Address
    remote: IPv6Address
    kind: ClassVar[str] = "del_tunnel"


@dataclass(frozen=True)
class SetHomeAddress(Action):
    """MN, before the home registration's BU: what that BU and its BA need of the home address.

    Away: the home address keeps the ``home`` flag (a BA's type 2 routing header may name it)
    and the home prefix is no longer on-link (the BU to the home agent leaves by the visited
    router). Home: no tunnel for traffic from the home address, and the home address is a plain
    address on the home link. The rest follows the BU: :class:`SettleHomeAddress`.
    """

    home_address: IPv6Address
    prefix_len: int
    away: bool
    kind: ClassVar[str] = "set_home_address"


@dataclass(frozen=True)
class SettleHomeAddress(Action):
    """MN, right after the BU that :class:`SetHomeAddress` prepared: the home address moves to
    the tunnel device and off the links (away), or off the tunnel device (home)."""

    home_address: IPv6Address
    prefix_len: int
    away: bool
    kind: ClassVar[str] = "settle_home_address"


@dataclass(frozen=True)
class RouteViaTunnel(Action):
    """MN: traffic from the home address goes through the tunnel (policy rule and table)."""

    home_address: IPv6Address
    home_agent: IPv6Address
    kind: ClassVar[str] = "route_via_tunnel"


@dataclass(frozen=True)
class DelRouteViaTunnel(Action):
    home_address: IPv6Address
    kind: ClassVar[str] = "del_route_via_tunnel"


@dataclass(frozen=True)
class AddHostRoute(Action):
    """HA: route the home address into the tunnel towards ``careof_address``."""

    home_address: IPv6Address
    careof_address: IPv6Address
    kind: ClassVar[str] = "add_host_route"


@dataclass(frozen=True)
class DelHostRoute(Action):
    home_address: IPv6Address
    kind: ClassVar[str] = "del_host_route"


@dataclass(frozen=True)
class ProxyNdp(Action):
    """HA: answer Neighbour Discovery for ``address`` on the home link; send an unsolicited NA."""

    address: IPv6Address
    kind: ClassVar[str] = "proxy_ndp"


@dataclass(frozen=True)
class DelProxyNdp(Action):
    address: IPv6Address
    kind: ClassVar[str] = "del_proxy_ndp"


@dataclass(frozen=True)
class StartDad(Action):
    """HA: run duplicate address detection for ``address`` on the home link; report the result
    with ``HomeAgent.on_dad_result``."""

    address: IPv6Address
    kind: ClassVar[str] = "start_dad"


# ---- route optimisation data plane (xfrm "ro" mode states)


@dataclass(frozen=True)
class InstallHao(Action):
    """Home Address option state for traffic between ``home_address`` and ``peer``."""

    home_address: IPv6Address
    careof_address: IPv6Address
    peer: IPv6Address | None
    direction: str  # "out" on the MN, "in" on the CN
    kind: ClassVar[str] = "install_hao"


@dataclass(frozen=True)
class RemoveHao(Action):
    home_address: IPv6Address
    peer: IPv6Address | None
    direction: str
    kind: ClassVar[str] = "remove_hao"


@dataclass(frozen=True)
class InstallRoute2(Action):
    """Type 2 routing header state for traffic between ``peer`` and ``home_address``."""

    home_address: IPv6Address
    careof_address: IPv6Address
    peer: IPv6Address | None
    direction: str  # "out" on the CN, "in" on the MN
    kind: ClassVar[str] = "install_route2"


@dataclass(frozen=True)
class RemoveRoute2(Action):
    home_address: IPv6Address
    peer: IPv6Address | None
    direction: str
    kind: ClassVar[str] = "remove_route2"


# ---- mobile node movement


@dataclass(frozen=True)
class SendRouterSolicitation(Action):
    iface: str
    kind: ClassVar[str] = "send_rs"


@dataclass(frozen=True)
class UseCachedRouter(Action):
    """MN: default route via ``router`` (remembered from an earlier RA of this network) on ``iface``,
    before this visit's first RA; the RA's own route replaces it at the next movement."""

    iface: str
    router: IPv6Address
    kind: ClassVar[str] = "use_cached_router"


@dataclass(frozen=True)
class ConfigureAddress(Action):
    """MN: add ``address`` on ``iface`` (``optimistic``: with optimistic DAD)."""

    iface: str
    address: IPv6Address
    prefix_len: int
    optimistic: bool
    kind: ClassVar[str] = "configure_address"


@dataclass(frozen=True)
class RemoveAddress(Action):
    iface: str
    address: IPv6Address
    kind: ClassVar[str] = "remove_address"


# ---- daemon-level actions (not emitted by the state machines)


@dataclass(frozen=True)
class ResumeTcp(Action):
    """MN, after a handover completed (home BA in ``bt``, CN binding in ``ro``): prompt the peers'
    TCP senders to retransmit now by eliciting duplicate ACKs on the established connections from
    ``home_address`` (to ``peer`` only, or to every peer not in ``exclude`` when ``peer`` is None).
    The mobile node emits it when ``tcp_recovery`` is on, once per completed handover."""

    home_address: IPv6Address
    peer: IPv6Address | None
    exclude: tuple[IPv6Address, ...] = ()
    kind: ClassVar[str] = "resume_tcp"

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["exclude"] = [str(a) for a in self.exclude]
        return out


@dataclass(frozen=True)
class AnnounceAddress(Action):
    """Unsolicited Neighbour Advertisements (override flag, this node's link-layer address) for
    ``address`` on ``iface``, sent from ``src``: the HA once it proxies a home address, the MN back
    home once deregistered (neighbours must forget the HA's proxy entry). It follows the kernel
    action named ``after``; the daemon does not announce when that action failed."""

    address: IPv6Address
    iface: str
    src: IPv6Address
    after: str
    kind: ClassVar[str] = "announce_address"


@dataclass(frozen=True)
class ExitDeregistered(Action):
    """MN: the home agent acknowledged the deregistration sent at exit (sequence ``seq``)."""

    home_agent: IPv6Address
    seq: int
    kind: ClassVar[str] = "exit_deregistered"


Sink = Callable[[Action], None]


class ListSink:
    """Collects actions; ``drain()`` returns and forgets them."""

    def __init__(self) -> None:
        self.actions: list[Action] = []

    def __call__(self, action: Action) -> None:
        self.actions.append(action)

    def drain(self) -> list[Action]:
        out, self.actions = self.actions, []
        return out

    def sent(self) -> list[SendMH]:
        return [a for a in self.actions if isinstance(a, SendMH)]

    def of(self, kind: type) -> list[Any]:
        return [a for a in self.actions if isinstance(a, kind)]
