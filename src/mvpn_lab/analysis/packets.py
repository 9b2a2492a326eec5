"""What the analyser reads from IPv6 packets, over the wire code it shares with the daemon.

The IPv6 header walk (:func:`parse_chain`, i.e. :func:`mvpn_lab.mip6.wire.ipv6.walk_chain`) and the
Mobility Header decoder and its tables (:mod:`mvpn_lab.mip6.wire.messages`) are the daemon's; this
module adds what only the analyser needs: the snapshot-length/malformed distinction around a
Mobility Header, Router Advertisement prefixes, TCP payload lengths, packet identities for
matching the two captures, and resent TCP data. Everything works on ``(buf, offset, end)``
without copying the packet. Problems are raised as :class:`Unreadable`
(:class:`~mvpn_lab.mip6.wire.errors.WireError`) with a short ``kind`` slug:

* ``snaplen``: the bytes needed were not captured (the frame was cut short);
* ``malformed``: a length field points past the end of the packet (or is
  otherwise impossible);
* ``unknown-mh-type``: a Mobility Header of a type RFC 6275 does not define.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from mvpn_lab.mip6.wire.constants import (
    IPPROTO_AH,
    IPPROTO_ESP,
    IPPROTO_FRAGMENT,
    IPPROTO_ICMPV6,
    IPPROTO_IPV6,
    IPPROTO_MH,
    MHType,
    OptionType,
)
from mvpn_lab.mip6.wire.errors import WireError
from mvpn_lab.mip6.wire.ipv6 import (
    EXT_HEADERS,
    EXT_HEADERS_8N,
    FRAGMENT_TAIL,
    MH_PROTOS,
    Chain,
    truncation_error,
    walk_chain,
)
from mvpn_lab.mip6.wire.messages import (
    MESSAGE_CLASSES,
    MH_HEADER_LEN,
    BindingAcknowledgement,
    BindingError,
    BindingUpdate,
    MHDecodeError,
    decode_mh,
)

__all__ = [
    "EXT_HEADERS",
    "EXT_HEADERS_8N",
    "MH_PROTOS",
    "Chain",
    "MobilityMessage",
    "TcpHistory",
    "Unreadable",
    "parse_chain",
    "parse_mh",
    "parse_ra_prefixes",
    "tcp_payload_len",
    "transport_key",
]

# Protocol numbers, as the daemon's constants declare them.
NH_TCP = 6  # not a Mobile IPv6 constant
NH_IPV6 = IPPROTO_IPV6
NH_ESP = IPPROTO_ESP
NH_AH = IPPROTO_AH
NH_FRAGMENT = IPPROTO_FRAGMENT
NH_ICMPV6 = IPPROTO_ICMPV6
NH_MH = IPPROTO_MH
NH_FRAGMENT_TAIL = FRAGMENT_TAIL  # a non-first fragment: the rest of the chain is not in this packet

MH_BRR, MH_HOTI, MH_COTI, MH_HOT, MH_COT, MH_BU, MH_BA, MH_BE = (int(t) for t in MHType)

ICMPV6_RS = 133
ICMPV6_RA = 134
ND_OPT_PREFIX_INFO = 3

Unreadable = WireError
parse_chain = walk_chain


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
    options: list[int] = field(default_factory=list)  # option types, Pad1 left out

    @property
    def home_registration(self) -> bool:
        return self.mh_type == MH_BU and bool(self.flags & 0x4000)

    @property
    def ack_requested(self) -> bool:
        return self.mh_type == MH_BU and bool(self.flags & 0x8000)


def parse_mh(buf: bytes, p: int, ip_end: int, end: int) -> MobilityMessage:
    """Decode and validate a Mobility Header at ``buf[p]`` with the daemon's decoder.

    ``ip_end`` is the end of the IPv6 payload by its length field, ``end`` the end of the
    captured bytes: a message that does not fit the former is malformed, one that does not fit
    the latter was cut by the snapshot length.
    """
    if p + 3 > end or p + 3 > ip_end:
        raise truncation_error("Mobility Header", p + 3, ip_end, end)
    length = (buf[p + 1] + 1) * 8
    mh_type = buf[p + 2]
    if p + length > ip_end:
        raise Unreadable(
            "malformed",
            f"Mobility Header length {length} exceeds the {ip_end - p} bytes of IPv6 payload left",
        )
    cls = MESSAGE_CLASSES.get(mh_type)
    if cls is None:
        raise Unreadable("unknown-mh-type", f"Mobility Header of unknown type {mh_type}")
    fixed = MH_HEADER_LEN + cls.FIXED
    if length < fixed:
        raise Unreadable("malformed", f"{cls.NAME} of {length} bytes, shorter than its {fixed}-byte minimum")
    if p + length > end:
        raise Unreadable("snaplen", f"{cls.NAME} cut short by the snapshot length")
    try:
        msg = decode_mh(buf[p : p + length])
    except MHDecodeError as exc:
        raise Unreadable("malformed", f"{cls.NAME}: {exc.reason}") from None
    out = MobilityMessage(mh_type, length)
    if isinstance(msg, BindingUpdate):
        out.seq, out.flags, out.lifetime = msg.seq, msg.flag_bits, msg.lifetime
    elif isinstance(msg, BindingAcknowledgement):
        out.status, out.flags, out.seq, out.lifetime = msg.status, msg.flag_bits, msg.seq, msg.lifetime
    elif isinstance(msg, BindingError):
        out.status = msg.status
    else:
        out.cookie = getattr(msg, "cookie", None)
    out.options = [int(opt.TYPE) for opt in getattr(msg, "options", ()) if opt.TYPE != OptionType.PAD1]
    return out


def parse_ra_prefixes(buf: bytes, p: int, ip_end: int, end: int) -> list[tuple[bytes, int]]:
    """Prefixes ``(16 bytes, length)`` of the Prefix Information options of a Router Advertisement."""
    stop = min(ip_end, end)
    if p + 16 > stop:
        raise truncation_error("Router Advertisement", p + 16, ip_end, end)
    prefixes: list[tuple[bytes, int]] = []
    q = p + 16
    while q < ip_end:
        if q + 2 > end:
            raise truncation_error("Router Advertisement option", q + 2, ip_end, end)
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
    raise truncation_error("TCP header", p + 13, ip_end, end)


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
