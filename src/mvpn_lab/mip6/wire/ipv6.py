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
from mvpn_lab.mip6.wire.errors import MHDecodeError, WireError

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


# --------------------------------------------------------------------------- the header walk
# The one walk over an IPv6 header chain, shared by ``mip6 decode`` (:func:`parse_ipv6`) and the
# handover analyser (which calls :func:`walk_chain` on its candidate packets and keeps, in its hot
# loop, a fast skip over the same tables: :data:`EXT_HEADERS`, :data:`EXT_HEADERS_8N`).

# Upper-layer protocol numbers a Mobility Header is carried under.
MH_PROTOS = frozenset((IPPROTO_MH, IPPROTO_MH_OLD))
# Extension headers the walk passes: hop-by-hop, routing and destination options (length in
# 8-octet units, not counting the first 8), fragment (8 octets), AH (4-octet units, not counting
# the first 2) and IPv6-in-IPv6 (a 40-octet header).
EXT_HEADERS_8N = frozenset((IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS))
EXT_HEADERS = frozenset((*EXT_HEADERS_8N, IPPROTO_FRAGMENT, IPPROTO_AH, IPPROTO_IPV6))
# The upper layer of a non-first fragment: the rest of the chain is not in this packet.
FRAGMENT_TAIL = -1
MAX_CHAIN = 16
MAX_TUNNELS = 4

_U16 = struct.Struct("!H").unpack_from


def truncation_error(what: str, need: int, ip_end: int, end: int) -> WireError:
    """The right error for a read of ``need`` bytes that goes past ``end`` (captured bytes).

    Malformed if the read would also pass ``ip_end`` (the packet's own length), else snaplen.
    """
    if need > ip_end:
        return WireError("malformed", f"{what} runs past the end of the IPv6 payload")
    return WireError("snaplen", f"{what} cut short by the snapshot length")


@dataclass(slots=True)
class Chain:
    """An IPv6 packet's header chain down to the upper-layer protocol (offsets into the buffer)."""

    src: bytes  # innermost IPv6 source address
    dst: bytes  # innermost IPv6 destination address
    outer_src: bytes
    outer_dst: bytes
    nh: int  # upper-layer protocol (or FRAGMENT_TAIL)
    p: int  # offset of the upper-layer header in buf
    ip_end: int  # end of the innermost IPv6 packet according to its length field
    tunnels: int = 0  # IPv6-in-IPv6 encapsulations passed
    hao: bytes | None = None  # Home Address destination option (innermost)
    rh2: bytes | None = None  # Type 2 routing header's home address (innermost)
    outer: tuple[tuple[bytes, bytes], ...] = ()  # (src, dst) of each tunnel header, outermost first
    fragmented: bool = False  # a fragment header was passed (first fragment, more to come)


def walk_chain(buf: bytes, l3: int, end: int) -> Chain:
    """Walk the IPv6 header chain starting at ``buf[l3]`` (captured bytes end at ``end``).

    Follows hop-by-hop (options checked), routing (type 2 gives ``rh2``), destination options
    (``hao``), fragment headers (a non-first fragment ends the walk with ``FRAGMENT_TAIL``), AH
    and IPv6-in-IPv6 (the addresses become the inner ones; ``outer`` keeps the tunnels'). Stops
    at any other protocol (ESP, ICMPv6, TCP, Mobility Header, ...). Raises :class:`WireError`.
    """
    if l3 + 40 > end:
        raise WireError("snaplen", "IPv6 header cut short")
    plen = (buf[l3 + 4] << 8) | buf[l3 + 5]
    ip_end = l3 + 40 + plen
    nh = buf[l3 + 6]
    if plen == 0 and nh == IPPROTO_HOPOPTS:  # jumbogram: trust the capture
        ip_end = end
    src = outer_src = buf[l3 + 8 : l3 + 24]
    dst = outer_dst = buf[l3 + 24 : l3 + 40]
    p = l3 + 40
    tunnels = 0
    outer: tuple[tuple[bytes, bytes], ...] = ()
    fragmented = False
    hao: bytes | None = None
    rh2: bytes | None = None
    for _ in range(MAX_CHAIN):
        if nh in EXT_HEADERS_8N:
            if p + 2 > end or p + 2 > ip_end:
                raise truncation_error("extension header", p + 2, ip_end, end)
            hlen = (buf[p + 1] + 1) * 8
            if p + hlen > ip_end:
                raise WireError(
                    "malformed", f"extension header {nh} length {hlen} runs past the IPv6 payload"
                )
            if p + hlen > end:
                raise WireError("snaplen", f"extension header {nh} cut short by the snapshot length")
            if nh == IPPROTO_ROUTING:
                if buf[p + 2] == ROUTING_TYPE_2:
                    if hlen != 24 or buf[p + 3] != 1:
                        raise WireError(
                            "malformed",
                            f"type 2 routing header with length {hlen} and {buf[p + 3]} segments left",
                        )
                    rh2 = buf[p + 8 : p + 24]
            elif nh == IPPROTO_DSTOPTS:
                found = _find_hao(buf, p + 2, p + hlen)
                if found is not None:
                    hao = found
            else:
                _check_options(buf, p + 2, p + hlen)
            nh = buf[p]
            p += hlen
        elif nh == IPPROTO_FRAGMENT:
            if p + 8 > end:
                raise truncation_error("fragment header", p + 8, ip_end, end)
            offset_flags = _U16(buf, p + 2)[0]
            if offset_flags & 0xFFF8:
                nh = FRAGMENT_TAIL
                p += 8
                fragmented = True
                break
            fragmented = fragmented or bool(offset_flags & 1)
            nh = buf[p]
            p += 8
        elif nh == IPPROTO_AH:
            if p + 2 > end:
                raise truncation_error("authentication header", p + 2, ip_end, end)
            hlen = (buf[p + 1] + 2) * 4
            if p + hlen > ip_end:
                raise WireError(
                    "malformed", f"authentication header length {hlen} runs past the IPv6 payload"
                )
            nh = buf[p]
            p += hlen
        elif nh == IPPROTO_IPV6:
            tunnels += 1
            if tunnels > MAX_TUNNELS:
                raise WireError("malformed", f"more than {MAX_TUNNELS} nested IPv6-in-IPv6 headers")
            if p + 40 > end:
                raise truncation_error("inner IPv6 header", p + 40, ip_end, end)
            if buf[p] >> 4 != 6:
                raise WireError(
                    "malformed", f"inner header of an IPv6-in-IPv6 packet has IP version {buf[p] >> 4}"
                )
            inner_end = p + 40 + ((buf[p + 4] << 8) | buf[p + 5])
            if inner_end > ip_end:
                raise WireError("malformed", "inner IPv6 packet is longer than the tunnel payload")
            outer += ((src, dst),)
            ip_end = inner_end
            src = buf[p + 8 : p + 24]
            dst = buf[p + 24 : p + 40]
            hao = rh2 = None
            nh = buf[p + 6]
            p += 40
        else:
            break
    else:
        raise WireError("malformed", f"more than {MAX_CHAIN} extension headers")
    if p > ip_end:
        raise WireError("malformed", "extension headers run past the IPv6 payload")
    return Chain(src, dst, outer_src, outer_dst, nh, p, ip_end, tunnels, hao, rh2, outer, fragmented)


def _check_options(buf: bytes, p: int, end: int) -> None:
    """Validate the TLV options of a hop-by-hop or destination options header."""
    while p < end:
        if buf[p] == 0:  # Pad1
            p += 1
            continue
        if p + 2 > end or p + 2 + buf[p + 1] > end:
            raise WireError("malformed", f"option {buf[p]} runs past the end of its options header")
        p += 2 + buf[p + 1]


def _find_hao(buf: bytes, p: int, end: int) -> bytes | None:
    """The Home Address option's address in a destination options header, if any."""
    hao = None
    while p < end:
        opt = buf[p]
        if opt == 0:
            p += 1
            continue
        if p + 2 > end:
            raise WireError("malformed", "destination option cut inside its header")
        olen = buf[p + 1]
        if p + 2 + olen > end:
            raise WireError("malformed", f"destination option {opt} runs past the end of its header")
        if opt == OPT_HOME_ADDRESS:
            if olen != 16:
                raise WireError("malformed", f"Home Address option with length {olen} (should be 16)")
            hao = buf[p + 2 : p + 18]
        p += 2 + olen
    return hao


def parse_ipv6(data: bytes) -> ParsedIPv6:
    """Walk an IPv6 packet's header chain up to a Mobility Header (with :func:`walk_chain`).

    Reports the Home Address option (``hao``), a type 2 routing header (``rh2``) and IPv6-in-IPv6
    encapsulations (``tunnel``; the inner packet is the one described). Stops with a ``note`` at
    ESP, fragments and other upper layers. Raises only ``MHDecodeError``.
    """
    data = bytes(data)
    if len(data) < IPV6_HEADER_LEN:
        raise MHDecodeError(f"IPv6 header truncated ({len(data)} bytes captured, needs {IPV6_HEADER_LEN})")
    if data[0] >> 4 != 6:
        raise MHDecodeError(f"IP version {data[0] >> 4}, expected 6")
    try:
        chain = walk_chain(data, 0, len(data))
    except (struct.error, ValueError, IndexError) as exc:  # defence in depth
        raise MHDecodeError(f"malformed IPv6 packet ({exc.__class__.__name__})") from exc
    pkt = ParsedIPv6(
        src=IPv6Address(chain.src),
        dst=IPv6Address(chain.dst),
        hao=None if chain.hao is None else IPv6Address(chain.hao),
        rh2=None if chain.rh2 is None else IPv6Address(chain.rh2),
        tunnel=[(IPv6Address(s), IPv6Address(d)) for s, d in chain.outer],
    )
    nh = chain.nh
    if chain.fragmented:
        pkt.note = "fragmented packet not reassembled"
    elif nh in MH_PROTOS:
        pkt.mh = data[chain.p :]
        pkt.mh_next_header = nh
        pkt.mh_payload_length = chain.ip_end - chain.p
    elif nh == IPPROTO_ESP:
        pkt.note = "ESP-protected payload"
    else:
        pkt.note = f"upper layer {nh}"
    return pkt
