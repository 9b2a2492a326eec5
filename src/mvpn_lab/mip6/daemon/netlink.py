"""Kernel events for movement detection: rtnetlink link, IPv6 address and IPv6 route messages.

:class:`NetlinkSource` is an rtnetlink socket bound to the link, IPv6-address and IPv6-route
multicast groups, decoded with pyroute2 (which also dumps the current links and addresses at
start).
:class:`MovementTranslator` turns its messages into the events the mobile node's movement
detector takes, for the configured interfaces only:

* ``RTM_NEWLINK``/``RTM_DELLINK`` -> :class:`LinkEvent` on a change of "usable": ``IFF_UP`` and
  ``IFF_RUNNING`` (the kernel clears ``IFF_RUNNING`` while a WLAN station is dormant, i.e. not
  yet associated and authenticated);
* ``RTM_NEWADDR``/``RTM_DELADDR`` (IPv6) -> :class:`AddressEvent` with the state ``tentative``,
  ``optimistic``, ``preferred``, ``deprecated``, ``dadfailed`` or ``removed`` from ``IFA_FLAGS``;
  link-local addresses only teach the interface identifier (for the ``l2`` address prediction);
* ``RTM_NEWROUTE``/``RTM_DELROUTE`` of an IPv6 default route -> :class:`RouteEvent` (logged: the
  router changed; movement decisions come from Router Advertisements and addresses).

The translator only reads messages (dict-like objects with ``get``, and ``get_attr`` for
attributes, as pyroute2 gives them), so it is tested with hand-made messages.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any

AF_INET6 = 10
IFF_UP = 0x1
IFF_RUNNING = 0x40
IFA_F_OPTIMISTIC = 0x04
IFA_F_DADFAILED = 0x08
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40
IFA_F_PERMANENT = 0x80  # added by hand (ip addr add); SLAAC addresses lack it
RT_TABLE_MAIN = 254


@dataclass(frozen=True)
class LinkEvent:
    iface: str
    up: bool


@dataclass(frozen=True)
class AddressEvent:
    iface: str
    address: IPv6Address
    prefix_len: int
    state: str


@dataclass(frozen=True)
class RouteEvent:
    iface: str | None
    added: bool
    gateway: IPv6Address | None


MovementInput = LinkEvent | AddressEvent | RouteEvent


def _get(msg: Any, name: str) -> Any:
    try:
        return msg.get(name)
    except (AttributeError, KeyError, TypeError):
        return None


def _attr(msg: Any, name: str) -> Any:
    getter = getattr(msg, "get_attr", None)
    if getter is not None:
        try:
            return getter(name)
        except (KeyError, ValueError, TypeError):
            return None
    return _get(msg, name)


def address_state(flags: int) -> str:
    if flags & IFA_F_DADFAILED:
        return "dadfailed"
    if flags & IFA_F_OPTIMISTIC:  # the kernel also sets TENTATIVE until DAD ends
        return "optimistic"
    if flags & IFA_F_TENTATIVE:
        return "tentative"
    if flags & IFA_F_DEPRECATED:
        return "deprecated"
    return "preferred"


class MovementTranslator:
    """Netlink messages -> movement inputs, remembering interface names, states and IIDs."""

    def __init__(
        self, interfaces: tuple[str, ...], *, ifname: Callable[[int], str | None] = lambda i: None
    ) -> None:
        self.interfaces = set(interfaces)
        self.ifname = ifname  # fallback for addresses of interfaces not seen in a link message
        self.names: dict[int, str] = {}
        self.up: dict[str, bool] = {}
        # interface identifier the kernel's SLAAC uses per interface (prefix cache predictions):
        # from an autoconfigured global address once one was seen, else from the link-local one
        self.iids: dict[str, int] = {}
        self.slaac_iid: set[str] = set()

    def _name(self, index: Any) -> str | None:
        if not isinstance(index, int):
            return None
        name = self.names.get(index)
        if name is None:
            name = self.ifname(index)
            if name is not None:
                self.names[index] = name
        return name

    def translate(self, msg: Any) -> list[MovementInput]:
        event = _get(msg, "event")
        if event in ("RTM_NEWLINK", "RTM_DELLINK"):
            return self._link(msg, event == "RTM_DELLINK")
        if event in ("RTM_NEWADDR", "RTM_DELADDR"):
            return self._address(msg, event == "RTM_DELADDR")
        if event in ("RTM_NEWROUTE", "RTM_DELROUTE"):
            return self._route(msg, event == "RTM_NEWROUTE")
        return []

    def _link(self, msg: Any, deleted: bool) -> list[MovementInput]:
        index = _get(msg, "index")
        name = _attr(msg, "IFLA_IFNAME") or self._name(index)
        if not isinstance(name, str):
            return []
        if isinstance(index, int):
            if deleted:
                self.names.pop(index, None)
            else:
                self.names[index] = name
        if name not in self.interfaces:
            return []
        flags = _get(msg, "flags") or 0
        usable = not deleted and bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)
        if self.up.get(name) == usable:
            return []
        self.up[name] = usable
        return [LinkEvent(name, usable)]

    def _address(self, msg: Any, deleted: bool) -> list[MovementInput]:
        if _get(msg, "family") != AF_INET6:
            return []
        name = self._name(_get(msg, "index"))
        if name is None or name not in self.interfaces:
            return []
        raw = _attr(msg, "IFA_ADDRESS") or _attr(msg, "IFA_LOCAL")
        try:
            address = IPv6Address(raw)
        except (ValueError, TypeError):
            return []
        flags = _attr(msg, "IFA_FLAGS")
        if not isinstance(flags, int):
            flags = _get(msg, "flags") or 0
        prefix_len = _get(msg, "prefixlen")
        # A deletion that ends a failed DAD (the kernel deletes SLAAC's addresses then) carries
        # IFA_F_DADFAILED: report it as dadfailed, unlike a removal by hand.
        state = "dadfailed" if flags & IFA_F_DADFAILED else ("removed" if deleted else address_state(flags))
        if not deleted:
            iid = int(address) & ((1 << 64) - 1)
            if address.is_link_local:
                if name not in self.slaac_iid:
                    self.iids[name] = iid
            elif (
                not (address.is_loopback or address.is_multicast)
                and not flags & IFA_F_PERMANENT
                and (state != "dadfailed")
            ):
                # what SLAAC uses here (a token, "ip token", differs from the link-local IID)
                self.iids[name] = iid
                self.slaac_iid.add(name)
        return [AddressEvent(name, address, prefix_len if isinstance(prefix_len, int) else 128, state)]

    def _route(self, msg: Any, added: bool) -> list[MovementInput]:
        if _get(msg, "family") != AF_INET6 or _get(msg, "dst_len") != 0:
            return []
        table = _attr(msg, "RTA_TABLE") or _get(msg, "table")
        if table not in (None, RT_TABLE_MAIN):
            return []
        name = self._name(_attr(msg, "RTA_OIF"))
        if name is not None and name not in self.interfaces:
            return []
        gateway = _attr(msg, "RTA_GATEWAY")
        try:
            gw = IPv6Address(gateway) if gateway else None
        except ValueError:
            gw = None
        return [RouteEvent(name, added, gw)]


class NonBlockingNetlink:
    """A non-blocking netlink socket that the event loop drains on each readable event (every
    datagram queued, until it would block); :meth:`parse` turns one datagram into messages.
    ENOBUFS (the kernel dropped messages for a full buffer) is counted in ``overruns``."""

    RCVBUF = 1 << 20

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.overruns = 0

    def parse(self, data: bytes) -> list[Any]:
        raise NotImplementedError

    def fileno(self) -> int:
        return int(self.sock.fileno())

    def read(self) -> list[Any]:
        """Every message queued on the socket (never blocks)."""
        out: list[Any] = []
        while True:
            try:
                data = self.sock.recv(self.RCVBUF)
            except (BlockingIOError, InterruptedError):
                return out
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.overruns += 1
                    continue
                raise
            if not data:
                return out
            out.extend(self.parse(data))

    def close(self) -> None:
        self.sock.close()


class NetlinkSource(NonBlockingNetlink):
    """A non-blocking rtnetlink socket bound to the link, IPv6-address and IPv6-route groups;
    datagrams are decoded by pyroute2's rtnetlink marshal (messages like ``IPRoute`` returns).

    Not ``IPRoute.bind()`` itself: pyroute2 0.9 reads the socket from its own asyncio core and
    keeps datagrams it has read in an internal queue, where a ``selectors`` loop cannot see them
    (on a real kernel, address removals and link-down events were only delivered with the next
    message). Here every readable event drains the socket until it would block.
    """

    RCVBUF = 1 << 20

    def __init__(self, sock: Any, marshal: Any) -> None:
        super().__init__(sock)
        self.marshal = marshal

    def parse(self, data: bytes) -> list[Any]:
        return list(self.marshal.parse(data))

    @classmethod
    def open(cls, factory: Callable[..., Any] = socket.socket) -> NetlinkSource:
        from pyroute2.netlink.rtnl import RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE, RTMGRP_LINK
        from pyroute2.netlink.rtnl.marshal import MarshalRtnl

        sock = factory(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cls.RCVBUF)
            sock.bind((0, RTMGRP_LINK | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return cls(sock, MarshalRtnl())

    @staticmethod
    def dump() -> list[Any]:
        """The current links and IPv6 addresses (through pyroute2's ``IPRoute``)."""
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            return [*ipr.get_links(), *ipr.get_addr(family=AF_INET6)]


RTPROT_RA = 9


class KernelQueries:
    """Look-ups the mobile node makes at link-up, in-process through pyroute2's long-lived
    ``IPRoute`` and ``IW`` sockets (a few ms each) instead of ``ip`` and ``iw`` (each a process,
    0.1-0.3 s under the twin's emulated CPU while a transfer runs)."""

    def __init__(self) -> None:
        self._ipr: Any = None
        self._iw: Any = None

    def ra_default_gateways(self, iface: str) -> list[str]:
        """Gateways of the default routes Router Advertisements put on ``iface`` (proto ra)."""
        from pyroute2 import IPRoute

        if self._ipr is None:
            self._ipr = IPRoute()
        index = socket.if_nametoindex(iface)
        out = []
        for route in self._ipr.get_routes(family=AF_INET6, table=RT_TABLE_MAIN):
            if route.get("dst_len") != 0 or route.get("proto") != RTPROT_RA:
                continue
            if route.get_attr("RTA_OIF") != index:
                continue
            gateway = route.get_attr("RTA_GATEWAY")
            if gateway:
                out.append(str(gateway))
        return out

    def address_info(self, iface: str, address: IPv6Address) -> dict[str, bool] | None:
        """``address`` on ``iface`` with the flags ``ip -j addr show`` would give it (``dynamic``:
        not added by hand, ``tentative``, ``dadfailed``); None when it is not there. The mobile
        node asks this on its way home, before the deregistration (an ``ip`` listing is a process,
        0.06-0.1 s on the twin)."""
        from pyroute2 import IPRoute

        if self._ipr is None:
            self._ipr = IPRoute()
        for msg in self._ipr.get_addr(family=AF_INET6, index=socket.if_nametoindex(iface)):
            local = _attr(msg, "IFA_ADDRESS")
            if local is None or IPv6Address(local) != IPv6Address(address):
                continue
            flags = _attr(msg, "IFA_FLAGS")
            flags = int(flags if flags is not None else _get(msg, "flags") or 0)
            return {
                "dynamic": not flags & IFA_F_PERMANENT,
                "tentative": bool(flags & IFA_F_TENTATIVE),
                "dadfailed": bool(flags & IFA_F_DADFAILED),
            }
        return None

    def neighbours(self, iface: str) -> list[tuple[str, str]]:
        """``(address, lladdr)`` of the IPv6 neighbour entries on ``iface`` that have a lladdr
        (the home agent's handover buffer maps a departing station's MAC to its home address)."""
        from pyroute2 import IPRoute

        if self._ipr is None:
            self._ipr = IPRoute()
        out = []
        for entry in self._ipr.get_neighbours(family=AF_INET6, ifindex=socket.if_nametoindex(iface)):
            address, lladdr = entry.get_attr("NDA_DST"), entry.get_attr("NDA_LLADDR")
            if address and lladdr:
                out.append((str(address), str(lladdr)))
        return out

    def ssid(self, iface: str) -> str | None:
        """SSID of the access point ``iface`` is associated with, or None."""
        from pyroute2 import IW

        if self._iw is None:
            self._iw = IW()
        bss = self._iw.get_associated_bss(socket.if_nametoindex(iface))
        if bss is None:
            return None
        attrs = bss.get_attr("NL80211_ATTR_BSS")
        ies = attrs.get_attr("NL80211_BSS_INFORMATION_ELEMENTS") if attrs is not None else None
        value = ies.get("SSID") if isinstance(ies, dict) else None
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        return value if isinstance(value, str) else None

    def close(self) -> None:
        for sock in (self._ipr, self._iw):
            if sock is not None:
                sock.close()
        self._ipr = self._iw = None
