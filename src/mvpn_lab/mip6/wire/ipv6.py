"""IPv6 helpers around the Mobility Header: checksum, Home Address option, type 2 routing header.

The kernel builds the real packets (raw MH socket, xfrm ``hao``/``route2`` states). These helpers
exist for tests, for writing captures of the daemon's messages, and for ``mip6 decode``, which
walks the IPv6 header chain of captured packets. :func:`parse_ipv6` raises only
:class:`~mvpn_lab.mip6.wire.messages.MHDecodeError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv6Address

from mvpn_lab.mip6.wire.constants import (
    IPPROTO_AH,
    IPPROTO_DSTOPTS,
    IPPROTO_ESP,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_IPV6,
    IPPROTO_MH,
    IPPROTO_ROUTING,
    OPT_HOME_ADDRESS,
    ROUTING_TYPE_2,
)
from mvpn_lab.mip6.wire.errors import MHDecodeError

IPV6_HEADER_LEN = 40
# Protocol number the Mobile IPv6 drafts used before IANA assigned 135; tcpdump and Wireshark
# still decode it as a Mobility Header, and so does parse_ipv6 (reported in ``mh_next_header``).
IPPROTO_MH_OLD = 62


def _packed(addr: IPv6Address | str) -> bytes:
    return (addr if isinstance(addr, IPv6Address) else IPv6Address(addr)).packed


def internet_checksum(data: bytes) -> int:
    """16-bit one's complement of the one's complement sum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header(src: IPv6Address | str, dst: IPv6Address | str, length: int, next_header: int) -> bytes:
    """IPv6 pseudo-header of RFC 2460 8.1."""
    return _packed(src) + _packed(dst) + struct.pack("!I3xB", length, next_header)


def mh_checksum(src: IPv6Address | str, dst: IPv6Address | str, mh: bytes) -> int:
    """Checksum of Mobility Header bytes ``mh`` (its own checksum field is treated as zero).

    ``src`` is the home address when the packet has a Home Address option, ``dst`` the final
    destination (the home address of a type 2 routing header) when it has one.
    """
    zeroed = bytes(mh[:4]) + b"\0\0" + bytes(mh[6:])
    value = internet_checksum(pseudo_header(src, dst, len(zeroed), IPPROTO_MH) + zeroed)
    return value


def verify_mh_checksum(src: IPv6Address | str, dst: IPv6Address | str, mh: bytes) -> bool:
    if len(mh) < 6:
        return False
    return internet_checksum(pseudo_header(src, dst, len(mh), IPPROTO_MH) + bytes(mh)) == 0


def encode_hao_dstopts(home_address: IPv6Address | str, next_header: int) -> bytes:
    """Destination Options header holding only the Home Address option (alignment 8n+6): 24 octets."""
    # 2 octets of header, PadN with 2 data octets (4 octets) so that the option starts at 8n+6.
    pad_n = b"\x01\x02\x00\x00"
    return bytes((next_header, 2)) + pad_n + bytes((OPT_HOME_ADDRESS, 16)) + _packed(home_address)


def encode_rh2(home_address: IPv6Address | str, next_header: int, segments_left: int = 1) -> bytes:
    """Type 2 routing header carrying the home address: 24 octets."""
    return bytes((next_header, 2, ROUTING_TYPE_2, segments_left)) + b"\0\0\0\0" + _packed(home_address)


def build_ipv6_packet(
    src: IPv6Address | str,
    dst: IPv6Address | str,
    mh: bytes,
    *,
    hao: IPv6Address | str | None = None,
    rh2: IPv6Address | str | None = None,
    hop_limit: int = 64,
    fix_checksum: bool = True,
) -> bytes:
    """An IPv6 packet carrying ``mh``, optionally with RH2 and a Home Address option.

    Header order follows RFC 2460 4.1: routing header before the destination options header.
    With ``fix_checksum`` the MH checksum is recomputed for the addresses of the packet.
    """
    if fix_checksum:
        csum = mh_checksum(hao if hao is not None else src, rh2 if rh2 is not None else dst, mh)
        mh = mh[:4] + struct.pack("!H", csum) + mh[6:]
    chain: list[tuple[int, bytes]] = []
    if rh2 is not None:
        chain.append((IPPROTO_ROUTING, b""))
    if hao is not None:
        chain.append((IPPROTO_DSTOPTS, b""))
    chain.append((IPPROTO_MH, mh))
    # Fill in each extension header now that the next one is known.
    body = mh
    next_header = IPPROTO_MH
    for proto, _ in reversed(chain[:-1]):
        if proto == IPPROTO_DSTOPTS:
            assert hao is not None
            body = encode_hao_dstopts(hao, next_header) + body
        else:
            assert rh2 is not None
            body = encode_rh2(rh2, next_header) + body
        next_header = proto
    header = struct.pack("!IHBB", 6 << 28, len(body), next_header, hop_limit) + _packed(src) + _packed(dst)
    return header + body


@dataclass
class ParsedIPv6:
    """What :func:`parse_ipv6` found in one packet."""

    src: IPv6Address
    dst: IPv6Address
    hao: IPv6Address | None = None
    rh2: IPv6Address | None = None
    mh: bytes | None = None  # the bytes from the MH start to the end of the captured packet
    mh_payload_length: int | None = None  # bytes of upper-layer payload per Payload Length
    mh_next_header: int = IPPROTO_MH  # 135, or 62 for the pre-RFC protocol number
    tunnel: list[tuple[IPv6Address, IPv6Address]] = field(default_factory=list)  # outer (src, dst)
    note: str | None = None  # why no MH could be reached (ESP, fragment, ...)

    @property
    def pseudo_src(self) -> IPv6Address:
        return self.hao if self.hao is not None else self.src

    @property
    def pseudo_dst(self) -> IPv6Address:
        return self.rh2 if self.rh2 is not None else self.dst


def _need(data: bytes, end: int, what: str) -> None:
    if end > len(data):
        raise MHDecodeError(f"{what} truncated ({len(data)} bytes captured, needs {end})")


def _parse_dstopts(data: bytes, start: int, end: int) -> IPv6Address | None:
    hao = None
    pos = start
    while pos < end:
        otype = data[pos]
        if otype == 0:  # Pad1
            pos += 1
            continue
        if pos + 2 > end:
            raise MHDecodeError(f"destination option at offset {pos} truncated")
        olen = data[pos + 1]
        if pos + 2 + olen > end:
            raise MHDecodeError(f"destination option type {otype:#x} at offset {pos} overruns its header")
        if otype == OPT_HOME_ADDRESS:
            if olen != 16:
                raise MHDecodeError(f"home address option length {olen}, expected 16")
            hao = IPv6Address(data[pos + 2 : pos + 18])
        pos += 2 + olen
    return hao


def parse_ipv6(data: bytes, *, max_depth: int = 4) -> ParsedIPv6:
    """Walk an IPv6 packet's header chain up to a Mobility Header.

    Follows hop-by-hop, routing (type 2 gives ``rh2``), destination options (``hao``), AH and
    IPv6-in-IPv6 (reported in ``tunnel``; the inner packet is parsed). Stops with a ``note`` at ESP,
    non-first fragments and other upper layers. Raises only ``MHDecodeError``.
    """
    try:
        return _parse_ipv6(bytes(data), max_depth)
    except MHDecodeError:
        raise
    except (struct.error, ValueError, IndexError) as exc:  # defence in depth
        raise MHDecodeError(f"malformed IPv6 packet ({exc.__class__.__name__})") from exc


def _parse_ipv6(data: bytes, depth: int) -> ParsedIPv6:
    _need(data, IPV6_HEADER_LEN, "IPv6 header")
    if data[0] >> 4 != 6:
        raise MHDecodeError(f"IP version {data[0] >> 4}, expected 6")
    payload_len, next_header = struct.unpack("!HB", data[4:7])
    pkt = ParsedIPv6(src=IPv6Address(data[8:24]), dst=IPv6Address(data[24:40]))
    end_of_packet = IPV6_HEADER_LEN + payload_len
    pos = IPV6_HEADER_LEN
    seen = 0
    while True:
        seen += 1
        if seen > 64:
            raise MHDecodeError("too many extension headers")
        if next_header in (IPPROTO_MH, IPPROTO_MH_OLD):
            pkt.mh = data[pos:]
            pkt.mh_next_header = next_header
            pkt.mh_payload_length = max(0, end_of_packet - pos) if payload_len else None
            return pkt
        if next_header in (IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_ROUTING):
            _need(data, pos + 2, "extension header")
            hdr_end = pos + (data[pos + 1] + 1) * 8
            _need(data, hdr_end, f"extension header {next_header}")
            if next_header == IPPROTO_DSTOPTS:
                hao = _parse_dstopts(data, pos + 2, hdr_end)
                if hao is not None:
                    pkt.hao = hao
            elif next_header == IPPROTO_ROUTING and data[pos + 2] == ROUTING_TYPE_2:
                if data[pos + 1] != 2:
                    raise MHDecodeError(f"type 2 routing header length {data[pos + 1]}, expected 2")
                pkt.rh2 = IPv6Address(data[pos + 8 : pos + 24])
            next_header = data[pos]
            pos = hdr_end
            continue
        if next_header == IPPROTO_FRAGMENT:
            _need(data, pos + 8, "fragment header")
            offset_flags = struct.unpack("!H", data[pos + 2 : pos + 4])[0]
            if offset_flags & 0xFFF9:  # non-zero offset or more fragments
                pkt.note = "fragmented packet not reassembled"
                return pkt
            next_header = data[pos]
            pos += 8
            continue
        if next_header == IPPROTO_AH:
            _need(data, pos + 2, "AH header")
            hdr_end = pos + (data[pos + 1] + 2) * 4
            _need(data, hdr_end, "AH header")
            next_header = data[pos]
            pos = hdr_end
            continue
        if next_header == IPPROTO_ESP:
            pkt.note = "ESP-protected payload"
            return pkt
        if next_header == IPPROTO_IPV6:
            if depth <= 0:
                raise MHDecodeError("too many nested IPv6-in-IPv6 headers")
            inner = _parse_ipv6(data[pos:], depth - 1)
            inner.tunnel = [(pkt.src, pkt.dst), *inner.tunnel]
            return inner
        pkt.note = f"upper layer {next_header}"
        return pkt
