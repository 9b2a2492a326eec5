"""The Mobility Header socket: ``socket(AF_INET6, SOCK_RAW, 135)`` and its ancillary data.

Receiving: the kernel checks the MH checksum (``IPV6_CHECKSUM`` at offset 4, so packets reach
the socket only with a good one) and reports the destination address and interface
(``IPV6_PKTINFO``), the destination options header (``IPV6_RECVDSTOPTS``) and the routing header
(``IPV6_RECVRTHDR``). A ``CONFIG_IPV6_MIP6`` kernel has already *processed* both Mobile IPv6
extensions when the packet reaches a socket:

* Home Address option: the kernel swapped the two addresses, so the packet's source (the
  ``recvmsg`` address) is the home address and the option holds the care-of address;
* type 2 routing header: segments left went from 1 to 0 and the kernel swapped again, so the
  destination (``IPV6_PKTINFO``) is the home address and the header holds the care-of address.

:func:`received_packet` undoes that into the core's view (:class:`ReceivedPacket`: ``src``/``dst``
as on the wire, ``hao``/``rh2`` the home address). A routing header still showing segments left
1 (not processed) is taken as it is.

Sending: the daemon never builds the extension headers itself. The socket sends from the home
address (when the core asks for a Home Address option) or to it (type 2 routing header), and the
xfrm ``hao``/``route2`` states set up by :meth:`KernelAdapter.prepare_send` make the kernel
insert the option/header and put the care-of address in the IPv6 header. The kernel also fills
in the checksum, over the home address, as RFC 6275 requires. ``IPV6_PKTINFO`` fixes the source
address and, for ``via_tunnel`` messages, the outgoing interface (the tunnel to the home agent).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any, Protocol

from mvpn_lab.mip6.core.actions import ReceivedPacket
from mvpn_lab.mip6.wire.constants import IPPROTO_MH, OPT_HOME_ADDRESS, ROUTING_TYPE_2

SOL_IPV6 = socket.IPPROTO_IPV6
IPV6_CHECKSUM = getattr(socket, "IPV6_CHECKSUM", 7)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
IPV6_RECVRTHDR = getattr(socket, "IPV6_RECVRTHDR", 56)
IPV6_RTHDR = getattr(socket, "IPV6_RTHDR", 57)
IPV6_RECVDSTOPTS = getattr(socket, "IPV6_RECVDSTOPTS", 58)
IPV6_DSTOPTS = getattr(socket, "IPV6_DSTOPTS", 59)

MH_CHECKSUM_OFFSET = 4
RECV_BUFFER = 65535
ANC_BUFFER = 2048


class SocketLike(Protocol):
    def setsockopt(self, level: int, option: int, value: int | bytes, /) -> None: ...
    def setblocking(self, flag: bool, /) -> None: ...
    def recvmsg(self, bufsize: int, ancbufsize: int = ..., flags: int = ..., /) -> Any: ...
    def sendmsg(
        self, buffers: Iterable[bytes], ancdata: Any = ..., flags: int = ..., address: Any = ..., /
    ) -> int: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


class AncillaryError(ValueError):
    """Ancillary data or addresses the adapter cannot use (the packet is dropped and logged)."""


@dataclass(frozen=True)
class Ancillary:
    """What the cmsgs of one received packet say."""

    dst: IPv6Address | None = None  # IPV6_PKTINFO address
    ifindex: int | None = None
    hao: IPv6Address | None = None  # address inside the Home Address option, as delivered
    rh2: IPv6Address | None = None  # address inside the type 2 routing header, as delivered
    rh2_segments_left: int | None = None
    hoplimit: int | None = None


def pack_pktinfo(addr: IPv6Address, ifindex: int = 0) -> bytes:
    """struct in6_pktinfo: the address, then the interface index (native unsigned int)."""
    return addr.packed + struct.pack("=I", ifindex)


def parse_pktinfo(data: bytes) -> tuple[IPv6Address, int]:
    if len(data) < 20:
        raise AncillaryError(f"IPV6_PKTINFO of {len(data)} octets")
    return IPv6Address(bytes(data[:16])), struct.unpack("=I", bytes(data[16:20]))[0]


def hao_from_dstopts(data: bytes) -> IPv6Address | None:
    """The address of the Home Address option in a destination options header, if any."""
    if len(data) < 2:
        raise AncillaryError("destination options header shorter than 2 octets")
    end = min(len(data), (data[1] + 1) * 8)
    pos = 2
    while pos < end:
        opt = data[pos]
        if opt == 0:  # Pad1
            pos += 1
            continue
        if pos + 1 >= end:
            raise AncillaryError("destination option without its length octet")
        length = data[pos + 1]
        if pos + 2 + length > end:
            raise AncillaryError("destination option overruns the header")
        if opt == OPT_HOME_ADDRESS:
            if length != 16:
                raise AncillaryError(f"Home Address option of length {length}")
            return IPv6Address(bytes(data[pos + 2 : pos + 18]))
        pos += 2 + length
    return None


def rh2_from_rthdr(data: bytes) -> tuple[IPv6Address, int] | None:
    """(address, segments left) of a type 2 routing header; None for other routing types."""
    if len(data) < 4:
        raise AncillaryError("routing header shorter than 4 octets")
    if data[2] != ROUTING_TYPE_2:
        return None
    if data[1] != 2 or len(data) < 24:
        raise AncillaryError(f"type 2 routing header with length field {data[1]}")
    return IPv6Address(bytes(data[8:24])), data[3]


def parse_ancillary(ancdata: Iterable[tuple[int, int, bytes]]) -> Ancillary:
    fields: dict[str, Any] = {}
    for level, kind, data in ancdata:
        if level != SOL_IPV6:
            continue
        if kind == IPV6_PKTINFO:
            fields["dst"], fields["ifindex"] = parse_pktinfo(data)
        elif kind == IPV6_DSTOPTS:
            hao = hao_from_dstopts(data)
            if hao is not None:
                fields["hao"] = hao
        elif kind == IPV6_RTHDR:
            rh2 = rh2_from_rthdr(data)
            if rh2 is not None:
                fields["rh2"], fields["rh2_segments_left"] = rh2
        elif kind == IPV6_HOPLIMIT and len(data) >= 4:
            fields["hoplimit"] = struct.unpack("=i", bytes(data[:4]))[0]
    return Ancillary(**fields)


def sockaddr_address(address: Any) -> IPv6Address:
    """The address of a ``recvmsg`` sockaddr tuple (a scope suffix like ``%wlan0`` dropped)."""
    try:
        host = address[0]
        return IPv6Address(str(host).split("%", 1)[0])
    except (TypeError, IndexError, ValueError):
        raise AncillaryError(f"unusable source address {address!r}") from None


def received_packet(
    data: bytes,
    ancdata: Iterable[tuple[int, int, bytes]],
    address: Any,
    *,
    ifname: Callable[[int], str | None] = lambda index: None,
    tunnels: Iterable[str] = (),
) -> ReceivedPacket:
    """The core's view of one packet read from the MH socket (``esp`` is left False for the
    daemon to decide, see :class:`~mvpn_lab.mip6.daemon.Daemon`)."""
    anc = parse_ancillary(ancdata)
    if anc.dst is None:
        raise AncillaryError("no IPV6_PKTINFO (destination address unknown)")
    seen_src = sockaddr_address(address)
    src, hao = seen_src, None
    if anc.hao is not None:  # swapped by the kernel: the option holds the care-of address
        src, hao = anc.hao, seen_src
    dst, rh2 = anc.dst, None
    if anc.rh2 is not None:
        if anc.rh2_segments_left == 0:  # processed: the header holds the care-of address
            dst, rh2 = anc.rh2, anc.dst
        else:
            rh2 = anc.rh2
    iface = ifname(anc.ifindex) if anc.ifindex else None
    return ReceivedPacket(
        src=src,
        dst=dst,
        mh=bytes(data),
        hao=hao,
        rh2=rh2,
        via_tunnel=iface is not None and iface in set(tunnels),
        checksum_verified=True,
        iface=iface,
    )


def configure_mh_socket(sock: SocketLike) -> None:
    sock.setsockopt(SOL_IPV6, IPV6_CHECKSUM, MH_CHECKSUM_OFFSET)
    sock.setsockopt(SOL_IPV6, IPV6_RECVPKTINFO, 1)
    sock.setsockopt(SOL_IPV6, IPV6_RECVDSTOPTS, 1)
    sock.setsockopt(SOL_IPV6, IPV6_RECVRTHDR, 1)
    sock.setblocking(False)


def destination(addr: IPv6Address, ifindex: int) -> tuple[str, int, int, int]:
    """sendmsg address tuple; link-local destinations need the interface as scope."""
    return (str(addr), 0, 0, ifindex if addr.is_link_local else 0)


class MHSocket:
    """The raw Mobility Header socket (a fake socket object can be injected for tests)."""

    def __init__(self, sock: SocketLike) -> None:
        self.sock = sock
        configure_mh_socket(sock)

    @classmethod
    def open(cls, factory: Callable[..., SocketLike] = socket.socket) -> MHSocket:
        return cls(factory(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_MH))

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self) -> tuple[bytes, list[tuple[int, int, bytes]], Any] | None:
        """One packet (data, ancillary data, source sockaddr), or None when nothing is queued."""
        try:
            data, ancdata, _flags, address = self.sock.recvmsg(RECV_BUFFER, ANC_BUFFER)
        except (BlockingIOError, InterruptedError):
            return None
        return data, list(ancdata), address

    def send(self, payload: bytes, src: IPv6Address, dst: IPv6Address, ifindex: int = 0) -> None:
        """Send ``payload`` from ``src`` (and out of ``ifindex`` when not 0) to ``dst``."""
        ancdata = [(SOL_IPV6, IPV6_PKTINFO, pack_pktinfo(src, ifindex))]
        self.sock.sendmsg([payload], ancdata, 0, destination(dst, ifindex))

    def close(self) -> None:
        self.sock.close()
