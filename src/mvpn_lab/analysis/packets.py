"""Robust parsing of the IPv6 packets the analyser cares about.

Everything here works on ``(buf, offset, end)`` without copying the packet.
Problems are raised as :class:`Unreadable` with a short ``reason`` slug:

* ``snaplen``: the bytes needed were not captured (the frame was cut short);
* ``malformed``: a length field points past the end of the packet (or is
  otherwise impossible);
* ``unknown-mh-type``: a Mobility Header of a type RFC 6275 does not define.

Header numbers: hop-by-hop 0, routing 43, fragment 44, destination options 60,
ESP 50, AH 51, IPv6-in-IPv6 41, ICMPv6 58, TCP 6, Mobility Header 135 (and 62,
its number in the drafts before RFC 3775, still emitted by some old stacks).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

NH_HOPOPTS = 0
NH_TCP = 6
NH_IPV6 = 41
NH_ROUTING = 43
NH_FRAGMENT = 44
NH_ESP = 50
NH_AH = 51
NH_ICMPV6 = 58
NH_NONE = 59
NH_DSTOPTS = 60
NH_MH_OLD = 62
NH_MH = 135
NH_FRAGMENT_TAIL = -1  # a non-first fragment: the rest of the chain is not in this packet

MH_PROTOS = frozenset((NH_MH, NH_MH_OLD))
EXT_HEADERS = frozenset((NH_HOPOPTS, NH_ROUTING, NH_DSTOPTS, NH_FRAGMENT, NH_AH, NH_IPV6))

MH_BRR, MH_HOTI, MH_COTI, MH_HOT, MH_COT, MH_BU, MH_BA, MH_BE = range(8)
MH_NAMES = {
    MH_BRR: "Binding Refresh Request",
    MH_HOTI: "Home Test Init",
    MH_COTI: "Care-of Test Init",
    MH_HOT: "Home Test",
    MH_COT: "Care-of Test",
    MH_BU: "Binding Update",
    MH_BA: "Binding Acknowledgement",
    MH_BE: "Binding Error",
}
# Length of each message up to its mobility options (RFC 6275, section 6.1).
MH_FIXED_LEN = {MH_BRR: 8, MH_HOTI: 16, MH_COTI: 16, MH_HOT: 24, MH_COT: 24, MH_BU: 12, MH_BA: 12, MH_BE: 24}
# Mobility options with a fixed data length (RFC 6275, section 6.2).
MH_OPTION_LEN = {2: 2, 3: 16, 4: 4, 5: 12}

ICMPV6_RS = 133
ICMPV6_RA = 134
ND_OPT_PREFIX_INFO = 3

HAO_OPTION = 201
MAX_CHAIN = 16
MAX_TUNNELS = 4

_U16 = struct.Struct("!H").unpack_from


class Unreadable(Exception):
    """Part of a packet the analyser needs could not be read."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _short(what: str, need: int, ip_end: int, end: int) -> Unreadable:
    """The right error for a read of ``need`` bytes that goes past ``end``."""
    if need > ip_end:
        return Unreadable("malformed", f"{what} runs past the end of the IPv6 payload")
    return Unreadable("snaplen", f"{what} cut short by the snapshot length")


@dataclass(slots=True)
class Chain:
    """An IPv6 packet's header chain down to the upper-layer protocol."""

    src: bytes  # innermost IPv6 source address
    dst: bytes  # innermost IPv6 destination address
    outer_src: bytes
    outer_dst: bytes
    nh: int  # upper-layer protocol (or NH_FRAGMENT_TAIL)
    p: int  # offset of the upper-layer header in buf
    ip_end: int  # end of the innermost IPv6 packet according to its length field
    tunnels: int = 0  # IPv6-in-IPv6 encapsulations passed
    hao: bytes | None = None  # Home Address destination option (innermost)
    rh2: bytes | None = None  # Type 2 routing header's home address (innermost)


def parse_chain(buf: bytes, l3: int, end: int) -> Chain:
    """Walk the IPv6 header chain starting at ``buf[l3]`` (captured bytes end at ``end``)."""
    if l3 + 40 > end:
        raise Unreadable("snaplen", "IPv6 header cut short")
    plen = (buf[l3 + 4] << 8) | buf[l3 + 5]
    ip_end = l3 + 40 + plen
    nh = buf[l3 + 6]
    if plen == 0 and nh == NH_HOPOPTS:  # jumbogram: trust the capture
        ip_end = end
    src = outer_src = buf[l3 + 8 : l3 + 24]
    dst = outer_dst = buf[l3 + 24 : l3 + 40]
    p = l3 + 40
    tunnels = 0
    hao: bytes | None = None
    rh2: bytes | None = None
    for _ in range(MAX_CHAIN):
        if nh in (NH_HOPOPTS, NH_DSTOPTS, NH_ROUTING):
            if p + 2 > end or p + 2 > ip_end:
                raise _short("extension header", p + 2, ip_end, end)
            hlen = (buf[p + 1] + 1) * 8
            if p + hlen > ip_end:
                raise Unreadable(
                    "malformed", f"extension header {nh} length {hlen} runs past the IPv6 payload"
                )
            if p + hlen > end:
                raise Unreadable("snaplen", f"extension header {nh} cut short by the snapshot length")
            if nh == NH_ROUTING:
                if buf[p + 2] == 2:
                    if hlen != 24 or buf[p + 3] != 1:
                        raise Unreadable(
                            "malformed",
                            f"type 2 routing header with length {hlen} and {buf[p + 3]} segments left",
                        )
                    rh2 = buf[p + 8 : p + 24]
            elif nh == NH_DSTOPTS:
                found = _find_hao(buf, p + 2, p + hlen)
                if found is not None:
                    hao = found
            else:
                _check_options(buf, p + 2, p + hlen)
            nh = buf[p]
            p += hlen
        elif nh == NH_FRAGMENT:
            if p + 8 > end:
                raise _short("fragment header", p + 8, ip_end, end)
            offset = _U16(buf, p + 2)[0] & 0xFFF8
            if offset:
                nh = NH_FRAGMENT_TAIL
                p += 8
                break
            nh = buf[p]
            p += 8
        elif nh == NH_AH:
            if p + 2 > end:
                raise _short("authentication header", p + 2, ip_end, end)
            hlen = (buf[p + 1] + 2) * 4
            if p + hlen > ip_end:
                raise Unreadable(
                    "malformed", f"authentication header length {hlen} runs past the IPv6 payload"
                )
            nh = buf[p]
            p += hlen
        elif nh == NH_IPV6:
            tunnels += 1
            if tunnels > MAX_TUNNELS:
                raise Unreadable("malformed", "more than 4 nested IPv6-in-IPv6 headers")
            if p + 40 > end:
                raise _short("inner IPv6 header", p + 40, ip_end, end)
            if buf[p] >> 4 != 6:
                raise Unreadable(
                    "malformed", f"inner header of an IPv6-in-IPv6 packet has IP version {buf[p] >> 4}"
                )
            inner_end = p + 40 + ((buf[p + 4] << 8) | buf[p + 5])
            if inner_end > ip_end:
                raise Unreadable("malformed", "inner IPv6 packet is longer than the tunnel payload")
            ip_end = inner_end
            src = buf[p + 8 : p + 24]
            dst = buf[p + 24 : p + 40]
            hao = rh2 = None
            nh = buf[p + 6]
            p += 40
        else:
            break
    else:
        raise Unreadable("malformed", "more than 16 extension headers")
    if p > ip_end:
        raise Unreadable("malformed", "extension headers run past the IPv6 payload")
    return Chain(src, dst, outer_src, outer_dst, nh, p, ip_end, tunnels, hao, rh2)


def _check_options(buf: bytes, p: int, end: int) -> None:
    """Validate the TLV options of a hop-by-hop or destination options header."""
    while p < end:
        if buf[p] == 0:  # Pad1
            p += 1
            continue
        if p + 2 > end or p + 2 + buf[p + 1] > end:
            raise Unreadable("malformed", f"option {buf[p]} runs past the end of its options header")
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
            raise Unreadable("malformed", "destination option cut inside its header")
        olen = buf[p + 1]
        if p + 2 + olen > end:
            raise Unreadable("malformed", f"destination option {opt} runs past the end of its header")
        if opt == HAO_OPTION:
            if olen != 16:
                raise Unreadable("malformed", f"Home Address option with length {olen} (should be 16)")
            hao = buf[p + 2 : p + 18]
        p += 2 + olen
    return hao


@dataclass(slots=True)
class MobilityMessage:
    """The fields of a Mobility Header message the analyser uses."""

    mh_type: int
    length: int
    seq: int | None = None  # BU, BA
    flags: int = 0  # BU: A H L K ... bits (16-bit field); BA: the K/R byte
    lifetime: int | None = None  # BU, BA: in units of 4 seconds
    status: int | None = None  # BA, BE
    cookie: bytes | None = None  # HoTI/CoTI/HoT/CoT init cookie
    options: list[int] = field(default_factory=list)

    @property
    def home_registration(self) -> bool:
        return self.mh_type == MH_BU and bool(self.flags & 0x4000)

    @property
    def ack_requested(self) -> bool:
        return self.mh_type == MH_BU and bool(self.flags & 0x8000)


def parse_mh(buf: bytes, p: int, ip_end: int, end: int) -> MobilityMessage:
    """Parse and validate a Mobility Header at ``buf[p]`` (RFC 6275, section 6.1)."""
    if p + 3 > end or p + 3 > ip_end:
        raise _short("Mobility Header", p + 3, ip_end, end)
    length = (buf[p + 1] + 1) * 8
    mh_type = buf[p + 2]
    if p + length > ip_end:
        raise Unreadable(
            "malformed",
            f"Mobility Header length {length} exceeds the {ip_end - p} bytes of IPv6 payload left",
        )
    if mh_type not in MH_FIXED_LEN:
        raise Unreadable("unknown-mh-type", f"Mobility Header of unknown type {mh_type}")
    fixed = MH_FIXED_LEN[mh_type]
    if length < fixed:
        raise Unreadable(
            "malformed", f"{MH_NAMES[mh_type]} of {length} bytes, shorter than its {fixed}-byte minimum"
        )
    if p + length > end:
        raise Unreadable("snaplen", f"{MH_NAMES[mh_type]} cut short by the snapshot length")
    msg = MobilityMessage(mh_type, length)
    if mh_type == MH_BU:
        msg.seq, msg.flags, msg.lifetime = struct.unpack_from("!HHH", buf, p + 6)
    elif mh_type == MH_BA:
        msg.status = buf[p + 6]
        msg.flags = buf[p + 7]
        msg.seq, msg.lifetime = struct.unpack_from("!HH", buf, p + 8)
    elif mh_type in (MH_HOTI, MH_COTI) or mh_type in (MH_HOT, MH_COT):
        msg.cookie = buf[p + 8 : p + 16]
    elif mh_type == MH_BE:
        msg.status = buf[p + 6]
    msg.options = _mobility_options(buf, p + fixed, p + length)
    return msg


def _mobility_options(buf: bytes, p: int, end: int) -> list[int]:
    """Validate mobility options; return their types."""
    types: list[int] = []
    while p < end:
        opt = buf[p]
        if opt == 0:  # Pad1
            p += 1
            continue
        if p + 2 > end:
            raise Unreadable("malformed", f"mobility option {opt} cut inside its header")
        olen = buf[p + 1]
        if p + 2 + olen > end:
            raise Unreadable(
                "malformed", f"mobility option {opt} of length {olen} runs past the Mobility Header"
            )
        want = MH_OPTION_LEN.get(opt)
        if want is not None and olen != want:
            raise Unreadable("malformed", f"mobility option {opt} has length {olen} (should be {want})")
        types.append(opt)
        p += 2 + olen
    return types


def parse_ra_prefixes(buf: bytes, p: int, ip_end: int, end: int) -> list[tuple[bytes, int]]:
    """Prefixes ``(16 bytes, length)`` of the Prefix Information options of a Router Advertisement."""
    stop = min(ip_end, end)
    if p + 16 > stop:
        raise _short("Router Advertisement", p + 16, ip_end, end)
    prefixes: list[tuple[bytes, int]] = []
    q = p + 16
    while q < ip_end:
        if q + 2 > end:
            raise _short("Router Advertisement option", q + 2, ip_end, end)
        olen = buf[q + 1] * 8
        if olen == 0:
            raise Unreadable("malformed", f"Router Advertisement option {buf[q]} with length 0")
        if q + olen > ip_end:
            raise Unreadable("malformed", f"Router Advertisement option {buf[q]} runs past the packet")
        if q + olen > end:
            raise Unreadable("snaplen", "Router Advertisement option cut short by the snapshot length")
        if buf[q] == ND_OPT_PREFIX_INFO:
            if olen != 32:
                raise Unreadable("malformed", f"Prefix Information option of {olen} bytes (should be 32)")
            prefixes.append((buf[q + 16 : q + 32], buf[q + 2]))
        q += olen
    return prefixes


def tcp_payload_len(buf: bytes, p: int, ip_end: int, end: int) -> int:
    """TCP payload length of the segment at ``buf[p]``.

    Uses the IPv6 length fields, so a payload cut off by the snapshot length
    still counts. If even the TCP header's data offset was not captured, a
    segment longer than the largest TCP header (60 bytes) still has payload.
    """
    seg = ip_end - p
    if p + 13 <= end:
        hl = (buf[p + 12] >> 4) * 4
        if hl < 20 or hl > seg:
            raise Unreadable("malformed", f"TCP header length {hl} does not fit a {seg}-byte segment")
        return seg - hl
    if seg > 60:
        return seg - 60
    raise _short("TCP header", p + 13, ip_end, end)


_LEN = struct.Struct("!H").pack


def transport_key(nh: int, buf: bytes, p: int, ip_end: int, end: int) -> bytes | None:
    """Bytes that identify a packet on both ends of a path (for matching captures).

    TCP: ports, sequence and acknowledgement numbers, flags and segment length;
    ESP: SPI and sequence number; Mobility Header: the first 32 bytes of the
    message. These do not change between the MN and the CN, whether the packet
    is tunnelled through the home agent or carries route-optimisation headers.
    The kinds cannot collide: TCP keys are 16 bytes, ESP keys 8, Mobility Header
    keys 9, 17, 25 or 33 (messages are multiples of 8 bytes).
    """
    if nh == NH_TCP:
        if p + 14 > end:
            return None
        return buf[p : p + 14] + _LEN((ip_end - p) & 0xFFFF)
    if nh == NH_ESP:
        if p + 8 > end:
            return None
        return buf[p : p + 8]
    if nh in MH_PROTOS:
        stop = min(p + 32, ip_end, end)
        if stop - p < 8:
            return None
        return b"\x87" + buf[p:stop]
    return None


_SEQ_MASK = 0xFFFFFFFF
_SEQ_HALF = 1 << 31
_U32 = struct.Struct("!I").unpack_from
_TCP_SYN = 0x02
_TCP_FIN = 0x01


class TcpHistory:
    """The highest TCP sequence number seen so far per flow direction, to spot resent data.

    A capture taken on a sending host shows what the kernel handed to the driver:
    with TSO/GSO that is one large segment, cut into MSS-sized ones only on the
    wire. Such an original is invisible under the key of the wire segment the
    other end captured, so when part of it is retransmitted (tail loss probe,
    RTO) the retransmission is the sender capture's only packet with that key.
    Matching it with the receiver's copy of the *original* pairs two different
    transmissions, and the one-way "delay" it gives can even be negative. A
    segment whose data starts before data already seen in its flow direction is
    therefore reported as resent (or reordered) and not used to compare clocks.

    Flows are told apart by their ports only: addresses change with every
    handover (care-of address, tunnel) while the connection goes on.
    """

    __slots__ = ("_high",)

    def __init__(self) -> None:
        self._high: dict[bytes, int] = {}

    def resent(self, buf: bytes, p: int, ip_end: int, end: int) -> bool:
        """Record the TCP segment at ``buf[p]``; True if its data starts before data seen earlier.

        ``ip_end`` is the end of the IPv6 packet by its length field, ``end`` the
        end of the captured bytes (the header must be captured up to its flags).
        """
        if p + 14 > end:
            return False
        flags = buf[p + 13]
        length = ip_end - p - (buf[p + 12] >> 4) * 4  # payload, by the IPv6 length
        if length < 0:
            return False
        if flags & 3:  # SYN and FIN take a sequence number each
            length += (flags & _TCP_FIN) + ((flags & _TCP_SYN) >> 1)
        elif length == 0:  # a pure ACK carries no data that could have been sent before
            return False
        flow = buf[p : p + 4]
        seq = _U32(buf, p + 4)[0]
        stop = (seq + length) & _SEQ_MASK
        high = self._high.get(flow)
        if high is None or flags & _TCP_SYN:  # first sight of the flow, or a new connection
            self._high[flow] = stop
            return False
        if 0 < (stop - high) & _SEQ_MASK < _SEQ_HALF:
            self._high[flow] = stop
        return 0 < (high - seq) & _SEQ_MASK <= _SEQ_HALF
