"""Mobility Header wire format (RFC 6275 6.1 and 6.2): encode and decode every message and option.

Decoding is strict and total: :func:`decode_mh` either returns a message object or raises
:class:`MHDecodeError` with a short reason. It never raises anything else, whatever the input.

Design choices (see docs/mip6.md):

* An unknown MH type decodes to :class:`UnknownMessage` (type number and raw data) rather than
  failing, because a correspondent node must answer it with a Binding Error, status 2.
* An unknown mobility option decodes to :class:`UnknownOption` (RFC 6275 6.2.1: skip it).
* Pad1/PadN are kept in ``options`` so that decoding is faithful; :func:`strip_padding` drops them.
* Bytes after the length given by the Header Len field are ignored (they are the payload named by
  Payload Proto, which RFC 6275 senders set to 59, "no next header").
* Reserved fields are sent as zero and ignored on receipt, except the BU and BA flag bits this
  module does not name, which are kept in ``other_flags`` so that re-encoding is byte-exact.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, fields, replace
from ipaddress import IPv6Address
from typing import Any, ClassVar

from mvpn_lab.mip6.wire.constants import (
    IPPROTO_NONE,
    LIFETIME_UNIT,
    MAX_LIFETIME_UNITS,
    MHType,
    OptionType,
    ba_status_name,
)
from mvpn_lab.mip6.wire.errors import MHDecodeError

_UNSPECIFIED = IPv6Address("::")


class MHEncodeError(ValueError):
    """A message object that cannot be put on the wire (a field out of range)."""


# --------------------------------------------------------------------------- helpers


def _addr(value: IPv6Address | str | bytes) -> IPv6Address:
    if isinstance(value, IPv6Address):
        return value
    return IPv6Address(value)


def _u8(name: str, value: int) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise MHEncodeError(f"{name} must be an integer 0..255, got {value!r}")
    return value


def _u16(name: str, value: int) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise MHEncodeError(f"{name} must be an integer 0..65535, got {value!r}")
    return value


def _fixed_bytes(name: str, value: bytes, size: int) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != size:
        raise MHEncodeError(f"{name} must be {size} bytes")
    return bytes(value)


def lifetime_units(seconds: float) -> int:
    """Seconds to the 4-second units of BU/BA/BRA, rounded down and clamped to 16 bits."""
    if seconds <= 0:
        return 0
    return min(int(seconds) // LIFETIME_UNIT, MAX_LIFETIME_UNITS)


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Pad1:
    """One octet of padding (type 0, no length field)."""

    TYPE: ClassVar[int] = OptionType.PAD1
    ALIGN: ClassVar[tuple[int, int]] = (0, 0)
    NAME: ClassVar[str] = "Pad1"

    def encode(self) -> bytes:
        return b"\x00"


@dataclass(frozen=True)
class PadN:
    """``length`` octets of padding data (the option is ``length + 2`` octets long)."""

    length: int = 0
    TYPE: ClassVar[int] = OptionType.PADN
    ALIGN: ClassVar[tuple[int, int]] = (0, 0)
    NAME: ClassVar[str] = "PadN"

    def encode(self) -> bytes:
        return bytes((self.TYPE, _u8("PadN length", self.length))) + bytes(self.length)


@dataclass(frozen=True)
class BindingRefreshAdvice:
    """Refresh interval in 4-second units (RFC 6275 6.2.4); alignment 2n."""

    refresh_interval: int
    TYPE: ClassVar[int] = OptionType.BINDING_REFRESH_ADVICE
    ALIGN: ClassVar[tuple[int, int]] = (2, 0)
    LENGTH: ClassVar[int] = 2
    NAME: ClassVar[str] = "BindingRefreshAdvice"

    @property
    def refresh_seconds(self) -> int:
        return self.refresh_interval * LIFETIME_UNIT

    def encode(self) -> bytes:
        return struct.pack("!BBH", self.TYPE, self.LENGTH, _u16("refresh interval", self.refresh_interval))


@dataclass(frozen=True)
class AlternateCareOfAddress:
    """Alternate care-of address (RFC 6275 6.2.5); alignment 8n+6."""

    address: IPv6Address
    TYPE: ClassVar[int] = OptionType.ALTERNATE_COA
    ALIGN: ClassVar[tuple[int, int]] = (8, 6)
    LENGTH: ClassVar[int] = 16
    NAME: ClassVar[str] = "AlternateCareOfAddress"

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", _addr(self.address))

    def encode(self) -> bytes:
        return bytes((self.TYPE, self.LENGTH)) + self.address.packed


@dataclass(frozen=True)
class NonceIndices:
    """Home and care-of nonce indices (RFC 6275 6.2.6); alignment 2n."""

    home_nonce_index: int
    careof_nonce_index: int
    TYPE: ClassVar[int] = OptionType.NONCE_INDICES
    ALIGN: ClassVar[tuple[int, int]] = (2, 0)
    LENGTH: ClassVar[int] = 4
    NAME: ClassVar[str] = "NonceIndices"

    def encode(self) -> bytes:
        return struct.pack(
            "!BBHH",
            self.TYPE,
            self.LENGTH,
            _u16("home nonce index", self.home_nonce_index),
            _u16("care-of nonce index", self.careof_nonce_index),
        )


@dataclass(frozen=True)
class BindingAuthorizationData:
    """Authenticator (RFC 6275 6.2.7); alignment 8n+2.

    The option format allows any length; the return-routability procedure uses 96 bits, and the
    verifiers in :mod:`mvpn_lab.mip6.core.rr` reject any other length.
    """

    authenticator: bytes
    TYPE: ClassVar[int] = OptionType.BINDING_AUTH_DATA
    ALIGN: ClassVar[tuple[int, int]] = (8, 2)
    NAME: ClassVar[str] = "BindingAuthorizationData"

    def encode(self) -> bytes:
        auth = bytes(self.authenticator)
        return bytes((self.TYPE, _u8("authenticator length", len(auth)))) + auth


@dataclass(frozen=True)
class UnknownOption:
    """A mobility option this implementation does not know; skipped by the state machines."""

    type: int
    data: bytes = b""
    ALIGN: ClassVar[tuple[int, int]] = (0, 0)
    NAME: ClassVar[str] = "Unknown"

    @property
    def TYPE(self) -> int:
        return self.type

    def encode(self) -> bytes:
        if self.type == OptionType.PAD1:
            raise MHEncodeError("option type 0 is Pad1 and has no length field")
        return bytes((_u8("option type", self.type), _u8("option length", len(self.data)))) + self.data


MobilityOption = (
    Pad1
    | PadN
    | BindingRefreshAdvice
    | AlternateCareOfAddress
    | NonceIndices
    | BindingAuthorizationData
    | UnknownOption
)

# Options whose data length is fixed by RFC 6275.
_FIXED_OPTION_LENGTH: dict[int, int] = {
    OptionType.BINDING_REFRESH_ADVICE: 2,
    OptionType.ALTERNATE_COA: 16,
    OptionType.NONCE_INDICES: 4,
}


def _decode_option(otype: int, data: bytes) -> MobilityOption:
    if otype == OptionType.PADN:
        return PadN(len(data))
    if otype == OptionType.BINDING_REFRESH_ADVICE:
        return BindingRefreshAdvice(struct.unpack("!H", data)[0])
    if otype == OptionType.ALTERNATE_COA:
        return AlternateCareOfAddress(IPv6Address(data))
    if otype == OptionType.NONCE_INDICES:
        home, careof = struct.unpack("!HH", data)
        return NonceIndices(home, careof)
    if otype == OptionType.BINDING_AUTH_DATA:
        return BindingAuthorizationData(bytes(data))
    return UnknownOption(otype, bytes(data))


def decode_options(buf: bytes, start: int, end: int) -> tuple[MobilityOption, ...]:
    """Decode the mobility options in ``buf[start:end]``; offsets in errors are from the MH start."""
    options: list[MobilityOption] = []
    pos = start
    while pos < end:
        otype = buf[pos]
        if otype == OptionType.PAD1:
            options.append(Pad1())
            pos += 1
            continue
        if pos + 2 > end:
            raise MHDecodeError(f"option type {otype} at offset {pos}: truncated before its length")
        olen = buf[pos + 1]
        if pos + 2 + olen > end:
            raise MHDecodeError(
                f"option type {otype} at offset {pos}: length {olen} overruns the message by "
                f"{pos + 2 + olen - end} bytes"
            )
        expected = _FIXED_OPTION_LENGTH.get(otype)
        if expected is not None and olen != expected:
            name = OptionType(otype).name.lower()
            raise MHDecodeError(f"option {name} at offset {pos}: length {olen}, expected {expected}")
        options.append(_decode_option(otype, buf[pos + 2 : pos + 2 + olen]))
        pos += 2 + olen
    return tuple(options)


def _padding(size: int) -> bytes:
    if size == 0:
        return b""
    if size == 1:
        return Pad1().encode()
    return PadN(size - 2).encode()


def encode_options(options: tuple[MobilityOption, ...] | list[MobilityOption], offset: int) -> bytes:
    """Encode options starting at MH offset ``offset`` and pad the end to a multiple of 8 octets.

    Without explicit Pad1/PadN in ``options`` the alignment padding each option requires is
    inserted automatically; with them the options are written verbatim (for crafted messages).
    """
    verbatim = any(isinstance(opt, Pad1 | PadN) for opt in options)
    out = bytearray()
    pos = offset
    for opt in options:
        if not verbatim:
            mult, rem = opt.ALIGN
            if mult:
                gap = (rem - pos) % mult
                out += _padding(gap)
                pos += gap
        raw = opt.encode()
        out += raw
        pos += len(raw)
    out += _padding((-pos) % 8)
    return bytes(out)


def strip_padding(msg: Message) -> Message:
    """The same message without Pad1/PadN options (for comparisons)."""
    if isinstance(msg, UnknownMessage):  # the one message without options
        return msg
    kept = tuple(opt for opt in msg.options if not isinstance(opt, Pad1 | PadN))
    return replace(msg, options=kept)


def find_option(msg: Message, kind: type) -> Any:
    """The first option of class ``kind`` in ``msg``, or None."""
    for opt in getattr(msg, "options", ()):
        if isinstance(opt, kind):
            return opt
    return None


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class _Base:
    # Decoded header values; not part of message equality.
    payload_proto: int = field(default=IPPROTO_NONE, kw_only=True, compare=False)
    checksum: int = field(default=0, kw_only=True, compare=False)

    # MH_TYPE (ClassVar[int]) is declared by each known message, a property of UnknownMessage
    NAME: ClassVar[str]
    FIXED: ClassVar[int]  # octets of message data after the 6-octet header, before options

    def encode_body(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode_body(cls, body: bytes) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class BindingRefreshRequest(_Base):
    options: tuple[MobilityOption, ...] = ()
    MH_TYPE: ClassVar[int] = MHType.BRR
    NAME: ClassVar[str] = "BRR"
    FIXED: ClassVar[int] = 2

    def encode_body(self) -> bytes:
        return b"\x00\x00"

    @classmethod
    def decode_body(cls, body: bytes) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class _TestInit(_Base):
    cookie: bytes = bytes(8)
    options: tuple[MobilityOption, ...] = ()
    FIXED: ClassVar[int] = 10

    def encode_body(self) -> bytes:
        return b"\x00\x00" + _fixed_bytes("cookie", self.cookie, 8)

    @classmethod
    def decode_body(cls, body: bytes) -> dict[str, Any]:
        return {"cookie": bytes(body[2:10])}


@dataclass(frozen=True)
class HomeTestInit(_TestInit):
    MH_TYPE: ClassVar[int] = MHType.HOTI
    NAME: ClassVar[str] = "HoTI"


@dataclass(frozen=True)
class CareOfTestInit(_TestInit):
    MH_TYPE: ClassVar[int] = MHType.COTI
    NAME: ClassVar[str] = "CoTI"


@dataclass(frozen=True)
class _Test(_Base):
    nonce_index: int = 0
    cookie: bytes = bytes(8)
    token: bytes = bytes(8)
    options: tuple[MobilityOption, ...] = ()
    FIXED: ClassVar[int] = 18

    def encode_body(self) -> bytes:
        return (
            struct.pack("!H", _u16("nonce index", self.nonce_index))
            + _fixed_bytes("cookie", self.cookie, 8)
            + _fixed_bytes("keygen token", self.token, 8)
        )

    @classmethod
    def decode_body(cls, body: bytes) -> dict[str, Any]:
        return {
            "nonce_index": struct.unpack("!H", body[0:2])[0],
            "cookie": bytes(body[2:10]),
            "token": bytes(body[10:18]),
        }


@dataclass(frozen=True)
class HomeTest(_Test):
    MH_TYPE: ClassVar[int] = MHType.HOT
    NAME: ClassVar[str] = "HoT"


@dataclass(frozen=True)
class CareOfTest(_Test):
    MH_TYPE: ClassVar[int] = MHType.COT
    NAME: ClassVar[str] = "CoT"


# BU flag bits in the 16-bit field after the sequence number.
BU_FLAG_A = 0x8000
BU_FLAG_H = 0x4000
BU_FLAG_L = 0x2000
BU_FLAG_K = 0x1000
BU_KNOWN_FLAGS = BU_FLAG_A | BU_FLAG_H | BU_FLAG_L | BU_FLAG_K
BA_FLAG_K = 0x80


@dataclass(frozen=True)
class BindingUpdate(_Base):
    seq: int = 0
    lifetime: int = 0  # 4-second units
    ack: bool = False
    home: bool = False
    link_local: bool = False
    key_mgmt: bool = False
    options: tuple[MobilityOption, ...] = ()
    other_flags: int = 0  # flag bits defined by later RFCs (M, R, P, ...), kept verbatim
    MH_TYPE: ClassVar[int] = MHType.BU
    NAME: ClassVar[str] = "BU"
    FIXED: ClassVar[int] = 6

    @property
    def lifetime_seconds(self) -> int:
        return self.lifetime * LIFETIME_UNIT

    @property
    def flag_string(self) -> str:
        bits = (self.ack, self.home, self.link_local, self.key_mgmt)
        return "".join(c for c, on in zip("AHLK", bits, strict=True) if on)

    @property
    def flag_bits(self) -> int:
        """The 16-bit flags field as on the wire."""
        flags = self.other_flags
        flags |= BU_FLAG_A if self.ack else 0
        flags |= BU_FLAG_H if self.home else 0
        flags |= BU_FLAG_L if self.link_local else 0
        flags |= BU_FLAG_K if self.key_mgmt else 0
        return flags

    def encode_body(self) -> bytes:
        if self.other_flags & BU_KNOWN_FLAGS or not 0 <= self.other_flags <= 0xFFFF:
            raise MHEncodeError("other_flags must not overlap the A, H, L, K bits")
        return struct.pack(
            "!HHH", _u16("sequence", self.seq), self.flag_bits, _u16("lifetime", self.lifetime)
        )

    @classmethod
    def decode_body(cls, body: bytes) -> dict[str, Any]:
        seq, flags, lifetime = struct.unpack("!HHH", body[0:6])
        return {
            "seq": seq,
            "lifetime": lifetime,
            "ack": bool(flags & BU_FLAG_A),
            "home": bool(flags & BU_FLAG_H),
            "link_local": bool(flags & BU_FLAG_L),
            "key_mgmt": bool(flags & BU_FLAG_K),
            "other_flags": flags & ~BU_KNOWN_FLAGS & 0xFFFF,
        }


@dataclass(frozen=True)
class BindingAcknowledgement(_Base):
    status: int = 0
    seq: int = 0
    lifetime: int = 0  # 4-second units
    key_mgmt: bool = False
    options: tuple[MobilityOption, ...] = ()
    other_flags: int = 0  # the 7 bits after K (P, R, ... of later RFCs), kept verbatim
    MH_TYPE: ClassVar[int] = MHType.BA
    NAME: ClassVar[str] = "BA"
    FIXED: ClassVar[int] = 6

    @property
    def lifetime_seconds(self) -> int:
        return self.lifetime * LIFETIME_UNIT

    @property
    def accepted(self) -> bool:
        return self.status < 128

    @property
    def flag_bits(self) -> int:
        """The 8-bit flags field (K and the 7 bits after it) as on the wire."""
        return self.other_flags | (BA_FLAG_K if self.key_mgmt else 0)

    def encode_body(self) -> bytes:
        if not 0 <= self.other_flags <= 0x7F:
            raise MHEncodeError("other_flags must fit in the 7 bits after K")
        return struct.pack(
            "!BBHH",
            _u8("status", self.status),
            self.flag_bits,
            _u16("sequence", self.seq),
            _u16("lifetime", self.lifetime),
        )

    @classmethod
    def decode_body(cls, body: bytes) -> dict[str, Any]:
        status, flags, seq, lifetime = struct.unpack("!BBHH", body[0:6])
        return {
            "status": status,
            "seq": seq,
            "lifetime": lifetime,
            "key_mgmt": bool(flags & BA_FLAG_K),
            "other_flags": flags & 0x7F,
        }


@dataclass(frozen=True)
class BindingError(_Base):
    status: int = 1
    home_address: IPv6Address = _UNSPECIFIED
    options: tuple[MobilityOption, ...] = ()
    MH_TYPE: ClassVar[int] = MHType.BE
    NAME: ClassVar[str] = "BE"
    FIXED: ClassVar[int] = 18

    def __post_init__(self) -> None:
        object.__setattr__(self, "home_address", _addr(self.home_address))

    def encode_body(self) -> bytes:
        return bytes((_u8("status", self.status), 0)) + self.home_address.packed

    @classmethod
    def decode_body(cls, body: bytes) -> dict[str, Any]:
        return {"status": body[0], "home_address": IPv6Address(bytes(body[2:18]))}


@dataclass(frozen=True)
class UnknownMessage(_Base):
    """A message whose MH type this implementation does not know.

    ``data`` is everything after the checksum, up to the length in Header Len.
    """

    mh_type: int = 255
    data: bytes = b"\x00\x00"
    NAME: ClassVar[str] = "Unknown"
    FIXED: ClassVar[int] = 2

    @property
    def MH_TYPE(self) -> int:
        return self.mh_type


KnownMessage = (
    BindingRefreshRequest
    | HomeTestInit
    | CareOfTestInit
    | HomeTest
    | CareOfTest
    | BindingUpdate
    | BindingAcknowledgement
    | BindingError
)
Message = KnownMessage | UnknownMessage

_KNOWN_CLASSES: tuple[type[KnownMessage], ...] = (
    BindingRefreshRequest,
    HomeTestInit,
    CareOfTestInit,
    HomeTest,
    CareOfTest,
    BindingUpdate,
    BindingAcknowledgement,
    BindingError,
)
MESSAGE_CLASSES: dict[int, type[KnownMessage]] = {cls.MH_TYPE: cls for cls in _KNOWN_CLASSES}

MH_HEADER_LEN = 6  # Payload Proto, Header Len, MH Type, Reserved, Checksum


# --------------------------------------------------------------------------- encode / decode


def encode_mh(
    msg: Message,
    *,
    src: IPv6Address | str | None = None,
    dst: IPv6Address | str | None = None,
    checksum: int | None = None,
) -> bytes:
    """Encode a message.

    With ``src`` and ``dst`` the checksum is computed over the IPv6 pseudo-header; pass the home
    address as ``src`` when the packet carries a Home Address option and the home address as
    ``dst`` when it carries a type 2 routing header (RFC 2460 8.1, RFC 6275 6.1.1). With
    ``checksum`` that value is written; otherwise the checksum field is zero.
    """
    if isinstance(msg, UnknownMessage):
        body = bytes(msg.data)
        if len(body) < 2 or (len(body) + MH_HEADER_LEN) % 8:
            raise MHEncodeError("unknown-type message data must make the MH a multiple of 8 octets")
        data = body
    else:
        data = msg.encode_body() + encode_options(msg.options, MH_HEADER_LEN + msg.FIXED)
    total = MH_HEADER_LEN + len(data)
    hlen = total // 8 - 1
    if hlen > 0xFF:
        raise MHEncodeError(f"message of {total} octets does not fit the 8-bit Header Len")
    header = bytes((_u8("payload proto", msg.payload_proto), hlen, _u8("MH type", msg.MH_TYPE), 0))
    raw = header + b"\0\0" + data
    if src is not None and dst is not None:
        from mvpn_lab.mip6.wire.ipv6 import mh_checksum

        checksum = mh_checksum(src, dst, raw)
    if checksum is not None:
        raw = raw[:4] + struct.pack("!H", _u16("checksum", checksum)) + raw[6:]
    return raw


def mh_length(buf: bytes) -> int:
    """Total MH length announced by the Header Len field (needs 2 octets)."""
    if len(buf) < 2:
        raise MHDecodeError(f"truncated: {len(buf)} bytes, no Header Len field")
    return (buf[1] + 1) * 8


def decode_mh(buf: bytes) -> Message:
    """Decode one Mobility Header message from the start of ``buf``.

    Raises :class:`MHDecodeError` and nothing else on bad input.
    """
    try:
        return _decode_mh(bytes(buf))
    except MHDecodeError:
        raise
    except (struct.error, ValueError, IndexError, TypeError) as exc:  # defence in depth
        raise MHDecodeError(f"malformed mobility header ({exc.__class__.__name__})") from exc


def _decode_mh(buf: bytes) -> Message:
    if len(buf) < 8:
        raise MHDecodeError(f"truncated: {len(buf)} bytes, a mobility header has at least 8")
    total = mh_length(buf)
    if total > len(buf):
        raise MHDecodeError(f"header length says {total} bytes, only {len(buf)} available")
    payload_proto, _hlen, mh_type = buf[0], buf[1], buf[2]
    (checksum,) = struct.unpack("!H", buf[4:6])
    cls = MESSAGE_CLASSES.get(mh_type)
    if cls is None:
        return UnknownMessage(
            mh_type=mh_type, data=buf[MH_HEADER_LEN:total], payload_proto=payload_proto, checksum=checksum
        )
    need = MH_HEADER_LEN + cls.FIXED
    if total < need:
        raise MHDecodeError(f"header length {total} bytes too short for {cls.NAME} (needs at least {need})")
    kwargs = cls.decode_body(buf[MH_HEADER_LEN:need])
    kwargs["options"] = decode_options(buf, need, total)
    return cls(payload_proto=payload_proto, checksum=checksum, **kwargs)


# --------------------------------------------------------------------------- JSON view


def option_to_dict(opt: MobilityOption) -> dict[str, Any]:
    out: dict[str, Any] = {"type": opt.NAME, "option_type": int(opt.TYPE)}
    if isinstance(opt, PadN):
        out["length"] = opt.length
    elif isinstance(opt, BindingRefreshAdvice):
        out["refresh_interval"] = opt.refresh_interval
        out["refresh_seconds"] = opt.refresh_seconds
    elif isinstance(opt, AlternateCareOfAddress):
        out["address"] = str(opt.address)
    elif isinstance(opt, NonceIndices):
        out["home_nonce_index"] = opt.home_nonce_index
        out["careof_nonce_index"] = opt.careof_nonce_index
    elif isinstance(opt, BindingAuthorizationData):
        out["authenticator"] = opt.authenticator.hex()
    elif isinstance(opt, UnknownOption):
        out["data"] = opt.data.hex()
    return out


def message_to_dict(msg: Message) -> dict[str, Any]:
    """A JSON-able view of a message (addresses as text, bytes as hex)."""
    out: dict[str, Any] = {"type": msg.NAME, "mh_type": int(msg.MH_TYPE)}
    for f in fields(msg):
        if f.name in ("payload_proto", "checksum", "options"):
            continue
        value = getattr(msg, f.name)
        if isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, IPv6Address):
            value = str(value)
        out[f.name] = value
    if isinstance(msg, BindingUpdate):
        out["flags"] = msg.flag_string
        out["lifetime_seconds"] = msg.lifetime_seconds
    elif isinstance(msg, BindingAcknowledgement):
        out["status_name"] = ba_status_name(msg.status)
        out["lifetime_seconds"] = msg.lifetime_seconds
    if hasattr(msg, "options"):
        out["options"] = [option_to_dict(opt) for opt in msg.options]
    out["payload_proto"] = msg.payload_proto
    out["checksum"] = f"0x{msg.checksum:04x}"
    return out
