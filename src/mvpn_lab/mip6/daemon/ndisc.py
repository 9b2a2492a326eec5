"""Neighbour Discovery pieces the daemon needs: Router Advertisements in, Router Solicitations,
unsolicited Neighbour Advertisements and DAD probes out.

* :class:`NdiscSocket`: a raw ICMPv6 socket with an ``ICMP6_FILTER`` that passes only the types
  the role needs (RA on the mobile node, NA on the home agent), ``IPV6_RECVPKTINFO`` for the
  interface and ``IPV6_RECVHOPLIMIT`` to drop anything that did not come with hop limit 255
  (RFC 4861 6.1.2, 7.1.2). It sends with hop limit 255; the kernel computes ICMPv6 checksums.
* :class:`RawSender`: ``socket(AF_INET6, SOCK_RAW, IPPROTO_RAW)`` for complete IPv6 packets the
  kernel would not let a normal socket send: the DAD Neighbour Solicitation from ``::`` and the
  TCP segments of the TCP recovery option (:mod:`~mvpn_lab.mip6.daemon.tcprecovery`).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from mvpn_lab.mip6.daemon.mhsocket import (
    IPV6_PKTINFO,
    IPV6_RECVHOPLIMIT,
    IPV6_RECVPKTINFO,
    SOL_IPV6,
    AncillaryError,
    SocketLike,
    pack_pktinfo,
    parse_ancillary,
    sockaddr_address,
)
from mvpn_lab.mip6.wire.constants import IPPROTO_ICMPV6
from mvpn_lab.mip6.wire.ipv6 import internet_checksum, pseudo_header

ICMP6_FILTER = 1  # level IPPROTO_ICMPV6 (linux/icmpv6.h)
ND_ROUTER_SOLICIT = 133
ND_ROUTER_ADVERT = 134
ND_NEIGHBOR_SOLICIT = 135
ND_NEIGHBOR_ADVERT = 136
OPT_SOURCE_LLADDR = 1
OPT_TARGET_LLADDR = 2
OPT_PREFIX_INFO = 3
ALL_NODES = IPv6Address("ff02::1")
ALL_ROUTERS = IPv6Address("ff02::2")
IPV6_UNICAST_HOPS = getattr(socket, "IPV6_UNICAST_HOPS", 16)
IPV6_MULTICAST_HOPS = getattr(socket, "IPV6_MULTICAST_HOPS", 18)


class NdiscError(ValueError):
    """A Neighbour Discovery message that is malformed or fails validation (one line)."""


def icmp6_filter(pass_types: tuple[int, ...]) -> bytes:
    """struct icmp6_filter that blocks everything but ``pass_types`` (a set bit blocks on Linux)."""
    words = [0xFFFFFFFF] * 8
    for kind in pass_types:
        words[kind >> 5] &= ~(1 << (kind & 31)) & 0xFFFFFFFF
    return struct.pack("=8I", *words)


@dataclass(frozen=True)
class PrefixInfo:
    prefix: IPv6Network
    on_link: bool
    autonomous: bool
    valid_lifetime: int
    preferred_lifetime: int


@dataclass(frozen=True)
class RouterAdvertisement:
    router_lifetime: int
    prefixes: tuple[PrefixInfo, ...]
    source_lladdr: bytes | None = None

    def autoconf_prefixes(self) -> list[IPv6Network]:
        """Prefixes a host forms addresses in: A flag set, valid lifetime not zero."""
        return [p.prefix for p in self.prefixes if p.autonomous and p.valid_lifetime > 0]

    def link_prefixes(self) -> list[IPv6Network]:
        """Prefixes of the link the RA describes: on-link (L) or autonomous (A) flag set, valid
        lifetime not zero. Movement detection uses these: with manually allocated addresses the
        router advertises its prefix on-link only (the paper's radvd static mode)."""
        return [p.prefix for p in self.prefixes if (p.on_link or p.autonomous) and p.valid_lifetime > 0]


def _options(data: bytes, start: int) -> list[tuple[int, bytes]]:
    out = []
    pos = start
    while pos < len(data):
        if pos + 2 > len(data):
            raise NdiscError("truncated option")
        kind, units = data[pos], data[pos + 1]
        if units == 0:
            raise NdiscError(f"option {kind} with length 0")
        end = pos + units * 8
        if end > len(data):
            raise NdiscError(f"option {kind} overruns the message")
        out.append((kind, bytes(data[pos:end])))
        pos = end
    return out


def parse_ra(data: bytes) -> RouterAdvertisement:
    """Decode an ICMPv6 Router Advertisement (RFC 4861 4.2); raises :class:`NdiscError`."""
    if len(data) < 16:
        raise NdiscError(f"router advertisement of {len(data)} octets")
    if data[0] != ND_ROUTER_ADVERT or data[1] != 0:
        raise NdiscError(f"not a router advertisement (type {data[0]}, code {data[1]})")
    router_lifetime = struct.unpack("!H", data[6:8])[0]
    prefixes: list[PrefixInfo] = []
    lladdr = None
    for kind, opt in _options(data, 16):
        if kind == OPT_PREFIX_INFO:
            if len(opt) != 32:
                raise NdiscError(f"prefix information option of {len(opt)} octets")
            plen, flags = opt[2], opt[3]
            valid, preferred = struct.unpack("!II", opt[4:12])
            if plen > 128:
                raise NdiscError(f"prefix length {plen}")
            try:
                prefix = IPv6Network((IPv6Address(opt[16:32]), plen), strict=False)
            except ValueError as exc:
                raise NdiscError(f"bad prefix: {exc}") from None
            prefixes.append(PrefixInfo(prefix, bool(flags & 0x80), bool(flags & 0x40), valid, preferred))
        elif kind == OPT_SOURCE_LLADDR:
            lladdr = opt[2:8]
    return RouterAdvertisement(router_lifetime, tuple(prefixes), lladdr)


def na_target(data: bytes) -> IPv6Address:
    """Target address of a Neighbour Advertisement (RFC 4861 4.4)."""
    if len(data) < 24 or data[0] != ND_NEIGHBOR_ADVERT or data[1] != 0:
        raise NdiscError("not a neighbour advertisement")
    return IPv6Address(bytes(data[8:24]))


def build_rs() -> bytes:
    """A Router Solicitation without options (the source may still be unspecified)."""
    return struct.pack("!BBHI", ND_ROUTER_SOLICIT, 0, 0, 0)


def build_na(
    target: IPv6Address,
    lladdr: bytes | None,
    *,
    router: bool = False,
    solicited: bool = False,
    override: bool = True,
) -> bytes:
    """A Neighbour Advertisement; the checksum is left to the kernel (raw ICMPv6 socket)."""
    flags = (0x80 if router else 0) | (0x40 if solicited else 0) | (0x20 if override else 0)
    out = struct.pack("!BBHB3x", ND_NEIGHBOR_ADVERT, 0, 0, flags) + target.packed
    if lladdr:
        out += bytes((OPT_TARGET_LLADDR, 1)) + bytes(lladdr[:6]).ljust(6, b"\0")
    return out


def solicited_node(addr: IPv6Address) -> IPv6Address:
    return IPv6Address(int(IPv6Address("ff02::1:ff00:0")) | (int(addr) & 0xFFFFFF))


def build_dad_probe(target: IPv6Address) -> bytes:
    """The complete IPv6 packet of a DAD Neighbour Solicitation (RFC 4862 5.4.2): from ``::`` to
    the solicited-node group of ``target``, hop limit 255, no link-layer address option."""
    src, dst = IPv6Address("::"), solicited_node(target)
    icmp = struct.pack("!BBHI", ND_NEIGHBOR_SOLICIT, 0, 0, 0) + target.packed
    csum = internet_checksum(pseudo_header(src, dst, len(icmp), IPPROTO_ICMPV6) + icmp)
    icmp = icmp[:2] + struct.pack("!H", csum) + icmp[4:]
    header = struct.pack("!IHBB", 6 << 28, len(icmp), IPPROTO_ICMPV6, 255) + src.packed + dst.packed
    return header + icmp


@dataclass(frozen=True)
class NdiscPacket:
    data: bytes
    src: IPv6Address
    ifindex: int | None
    hoplimit: int | None


class NdiscSocket:
    """Raw ICMPv6 socket passing only ``pass_types``."""

    def __init__(self, sock: SocketLike, pass_types: tuple[int, ...]) -> None:
        self.sock = sock
        self.pass_types = pass_types
        sock.setsockopt(IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter(pass_types))
        sock.setsockopt(SOL_IPV6, IPV6_RECVPKTINFO, 1)
        sock.setsockopt(SOL_IPV6, IPV6_RECVHOPLIMIT, 1)
        sock.setsockopt(SOL_IPV6, IPV6_MULTICAST_HOPS, 255)
        sock.setsockopt(SOL_IPV6, IPV6_UNICAST_HOPS, 255)
        sock.setblocking(False)

    @classmethod
    def open(
        cls, pass_types: tuple[int, ...], factory: Callable[..., SocketLike] = socket.socket
    ) -> NdiscSocket:
        return cls(factory(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_ICMPV6), pass_types)

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self) -> NdiscPacket | None:
        try:
            data, ancdata, _flags, address = self.sock.recvmsg(4096, 1024)
        except (BlockingIOError, InterruptedError):
            return None
        try:
            anc = parse_ancillary(ancdata)
            src = sockaddr_address(address)
        except AncillaryError as exc:
            raise NdiscError(str(exc)) from None
        return NdiscPacket(bytes(data), src, anc.ifindex, anc.hoplimit)

    def send(self, payload: bytes, dst: IPv6Address, ifindex: int, src: IPv6Address | None = None) -> None:
        ancdata: list[Any] = []
        if src is not None or ifindex:
            ancdata.append((SOL_IPV6, IPV6_PKTINFO, pack_pktinfo(src or IPv6Address("::"), ifindex)))
        scope = ifindex if (dst.is_link_local or dst.is_multicast) else 0
        self.sock.sendmsg([payload], ancdata, 0, (str(dst), 0, 0, scope))

    def close(self) -> None:
        self.sock.close()


class RawSender:
    """Sends complete IPv6 packets (``IPPROTO_RAW`` implies the header is included)."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock

    @classmethod
    def open(cls, factory: Callable[..., Any] = socket.socket) -> RawSender:
        return cls(factory(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW))

    def send(self, packet: bytes, ifindex: int = 0) -> None:
        dst = IPv6Address(packet[24:40])
        scope = ifindex if (dst.is_link_local or dst.is_multicast) else 0
        self.sock.sendto(packet, (str(dst), 0, 0, scope))

    def close(self) -> None:
        self.sock.close()
