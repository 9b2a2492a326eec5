"""Forged and malformed Mobility Header signalling, for testing the daemon's defences.

``mvpn-lab mip6 attack KIND [options]`` builds one IPv6 packet with scapy, sends it ``--count``
times (scapy ``send()`` at layer 3, or ``sendp()`` on an Ethernet ``--iface``) and prints one JSON
line describing it; ``--dry-run`` only builds and prints. It runs as root in a lab host's network
namespace, with Debian's ``python3-scapy``.

Kinds, and the ``rejected`` counter each one should raise at the daemon (docs/mip6.md, "Attack
generator", has the conditions):

* ``bad-auth``: BU to a correspondent with Nonce Indices and a random authenticator:
  ``expired_nonce_index`` (indices unknown to the CN), ``bad_authenticator`` (current indices);
* ``old-seq``: home registration with a sequence number not newer than the HA's cached one:
  ``sequence_out_of_window`` (BA 135);
* ``foreign-home``: home registration for a home address outside the HA's prefix:
  ``not_home_subnet`` (BA 132);
* ``unknown-mn``: home registration for a home address in the prefix but not allowed:
  ``unknown_mobile_node`` (BA 129);
* ``truncated``: a BU whose Header Len cuts its Alternate Care-of Address option short:
  ``malformed`` (variants ``short`` and ``hdrlen`` never reach the daemon, see below);
* ``garbage``: 64 random octets behind a plausible header whose first option overruns the
  message: ``malformed``;
* ``hao-data``: a UDP datagram (not a Mobility Header message) with a Home Address option to a
  correspondent that has no binding for that home address: the CN's kernel drops and reports it,
  the daemon answers with a Binding Error, status 1: ``hao_without_binding`` (RFC 6275 9.3.1);
* ``replay``: an earlier packet (hex), sent verbatim: ``sequence_out_of_window``.
* ``replay-after-dereg``: the same, for a BU captured while the MN was away and sent after it came
  home and de-registered (RFC 6275 9.5.1, 5.2.8): a BU to the correspondent meets
  ``sequence_out_of_window`` (BA 135; the CN keeps the number while the BU's nonces are valid);
  an ESP-protected BU to the home agent is dropped by the HA's kernel (the SA's anti-replay
  window, ``XfrmInStateSeqError``), and with the window off meets ``sequence_out_of_window``
  (the HA keeps the number for ``max_binding_lifetime``).

Every packet carries a correct Mobility Header checksum over the pseudo-header (home address as
the source when there is a Home Address option): the receiving raw socket has ``IPV6_CHECKSUM``
set, so the kernel would drop a bad checksum and the test would prove nothing. The well-formed
kinds take scapy's checksum (which uses the home address, as the kernel does); the malformed ones
get it from :func:`mvpn_lab.mip6.wire.ipv6.mh_checksum`.

A Mobile IPv6 kernel filters Mobility Headers before any raw socket (``mip6_mh_filter``): fewer
than 8 octets, a Header Len beyond the packet, a Header Len below the minimum of a known type and
a Payload Proto other than 59 are dropped (the last two with an ICMPv6 Parameter Problem). So
the ``malformed`` kinds keep a consistent Header Len and Payload Proto 59 and break the options.

scapy is imported inside the functions that need it: the daemon's zip bundle contains this
module and must start without scapy.
"""

from __future__ import annotations

import argparse
import json
import os
import random as _random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any, NoReturn

from mvpn_lab.errors import LabError
from mvpn_lab.mip6.attack_args import ALL_KIND_OPTIONS, KIND_OPTIONS, KINDS, flag
from mvpn_lab.mip6.core import counters as reasons
from mvpn_lab.mip6.wire.constants import IPPROTO_MH, MHType
from mvpn_lab.mip6.wire.ipv6 import mh_checksum, parse_ipv6, verify_mh_checksum
from mvpn_lab.mip6.wire.messages import (
    MESSAGE_CLASSES,
    MH_HEADER_LEN,
    BindingUpdate,
    MHDecodeError,
    decode_mh,
)

RandomSource = Callable[[int], bytes]

#: What drops a replayed ESP-protected packet: the receiving kernel's anti-replay window
#: (``/proc/net/xfrm_stat``), before the daemon ever sees it.
KERNEL_REPLAY_COUNTER = "kernel:XfrmInStateSeqError"
TRUNCATED_VARIANTS = ("option", "short", "hdrlen")

NO_NEXT_HEADER = 59
GARBAGE_LENGTH = 64
AUTHENTICATOR_LENGTH = 12
DEFAULT_LIFETIME = {"bad-auth": 4, "old-seq": 100, "foreign-home": 100, "unknown-mn": 100, "truncated": 100}

# scapy's BU flags field: 7 bits "PRMKLHA", the first letter the least significant bit.
_SCAPY_A, _SCAPY_H = 0x40, 0x20

KERNEL_DROP_NOTE = (
    "a Mobile IPv6 kernel drops this in mip6_mh_filter before any raw socket: no daemon counter"
)


@dataclass(frozen=True)
class Attack:
    """One crafted packet and what it is expected to do."""

    kind: str
    packet: bytes  # the whole IPv6 packet
    src: IPv6Address
    dst: IPv6Address
    home_address: IPv6Address | None = None
    seq: int | None = None
    lifetime: int | None = None  # BU lifetime field, units of 4 s
    expected: tuple[str, ...] = ()  # any one of these rejection counters
    note: str | None = None

    @property
    def checksum_ok(self) -> bool | None:
        """The MH checksum verified with the kernel's rule; None without a Mobility Header."""
        try:
            parsed = parse_ipv6(self.packet)
        except MHDecodeError:
            return None
        if parsed.mh is None:
            return None
        return verify_mh_checksum(parsed.pseudo_src, parsed.pseudo_dst, parsed.mh)

    def to_dict(self, *, count: int = 1, iface: str | None = None, sent: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "src": str(self.src),
            "dst": str(self.dst),
            "home_address": None if self.home_address is None else str(self.home_address),
            "seq": self.seq,
            "lifetime": self.lifetime,
            "count": count,
            "iface": iface,
            "sent": sent,
            "length": len(self.packet),
            "checksum_ok": self.checksum_ok,
            "expected": list(self.expected),
        }
        if self.note:
            out["note"] = self.note
        out["hex"] = self.packet.hex()
        return out


# --------------------------------------------------------------------------- scapy helpers


def _need_scapy() -> NoReturn:
    raise LabError("scapy is needed to build and send attack packets (Debian: apt install python3-scapy)")


def _ipv6_chain(src: IPv6Address, dst: IPv6Address, home_address: IPv6Address | None) -> Any:
    """scapy IPv6 header, plus a Destination Options header with the Home Address option."""
    try:
        from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrDestOpt
    except ImportError:
        _need_scapy()
    pkt = IPv6(src=str(src), dst=str(dst))
    if home_address is not None:
        pkt = pkt / IPv6ExtHdrDestOpt(options=[HAO(hoa=str(home_address))])
    return pkt


def _scapy_bu(
    src: IPv6Address,
    dst: IPv6Address,
    home_address: IPv6Address | None,
    *,
    seq: int,
    lifetime: int,
    home: bool,
    options: list[Any],
) -> bytes:
    """A whole BU packet built by scapy (scapy fills in lengths, alignment and the checksum)."""
    try:
        from scapy.layers.inet6 import MIP6MH_BU
    except ImportError:
        _need_scapy()
    flags = _SCAPY_A | (_SCAPY_H if home else 0)
    bu = MIP6MH_BU(seq=seq, flags=flags, mhtime=lifetime, options=options)
    return bytes(_ipv6_chain(src, dst, home_address) / bu)


def _raw_mh_packet(src: IPv6Address, dst: IPv6Address, home_address: IPv6Address | None, mh: bytes) -> bytes:
    """A packet around Mobility Header bytes scapy cannot express; the checksum is ours."""
    try:
        from scapy.packet import Raw
    except ImportError:
        _need_scapy()
    csum = mh_checksum(home_address if home_address is not None else src, dst, mh)
    mh = mh[:4] + struct.pack("!H", csum) + mh[6:]
    chain = _ipv6_chain(src, dst, home_address)
    chain.lastlayer().nh = IPPROTO_MH
    return bytes(chain / Raw(mh))


def _mh_offset(packet: bytes) -> int:
    parsed = parse_ipv6(packet)
    assert parsed.mh is not None
    return len(packet) - len(parsed.mh)


def _seq(seq: int | None, random: RandomSource) -> int:
    return seq if seq is not None else struct.unpack("!H", random(2))[0]


# --------------------------------------------------------------------------- the kinds


def bad_auth(
    *,
    coa: IPv6Address,
    dst: IPv6Address,
    home_address: IPv6Address,
    seq: int | None = None,
    lifetime: int = DEFAULT_LIFETIME["bad-auth"],
    home_nonce_index: int = 0,
    careof_nonce_index: int = 0,
    random: RandomSource = os.urandom,
) -> Attack:
    """Route-optimisation BU to a correspondent (A=1, H=0) with a random authenticator."""
    try:
        from scapy.layers.inet6 import MIP6OptBindingAuthData, MIP6OptNonceIndices
    except ImportError:
        _need_scapy()
    seq = _seq(seq, random)
    authenticator = int.from_bytes(random(AUTHENTICATOR_LENGTH), "big")
    # scapy 2.6.1's default option lengths for these two are wrong (16): set them.
    options = [
        MIP6OptNonceIndices(olen=4, hni=home_nonce_index, coni=careof_nonce_index),
        MIP6OptBindingAuthData(olen=AUTHENTICATOR_LENGTH, authenticator=authenticator),
    ]
    packet = _scapy_bu(coa, dst, home_address, seq=seq, lifetime=lifetime, home=False, options=options)
    return Attack(
        "bad-auth",
        packet,
        coa,
        dst,
        home_address,
        seq,
        lifetime,
        expected=(reasons.EXPIRED_NONCE, reasons.BAD_AUTHENTICATOR),
        note="expired_nonce_index unless both nonce indices are valid at the CN, then bad_authenticator",
    )


def home_bu(
    kind: str,
    *,
    coa: IPv6Address,
    dst: IPv6Address,
    home_address: IPv6Address,
    seq: int | None = None,
    lifetime: int = 100,
    random: RandomSource = os.urandom,
) -> Attack:
    """Home registration BU to a home agent (A=1, H=1, Alternate CoA = ``coa``) for the kinds
    ``old-seq``, ``foreign-home`` and ``unknown-mn``; they differ in what the caller passes."""
    try:
        from scapy.layers.inet6 import MIP6OptAltCoA
    except ImportError:
        _need_scapy()
    expected = {
        "old-seq": reasons.SEQUENCE_OUT_OF_WINDOW,
        "foreign-home": reasons.NOT_HOME_SUBNET,
        "unknown-mn": reasons.UNKNOWN_MOBILE_NODE,
    }[kind]
    seq = _seq(seq, random)
    options = [MIP6OptAltCoA(acoa=str(coa))]
    packet = _scapy_bu(coa, dst, home_address, seq=seq, lifetime=lifetime, home=True, options=options)
    return Attack(kind, packet, coa, dst, home_address, seq, lifetime, expected=(expected,))


def old_seq(**kwargs: Any) -> Attack:
    return home_bu("old-seq", **kwargs)


def foreign_home(**kwargs: Any) -> Attack:
    return home_bu("foreign-home", **kwargs)


def unknown_mn(**kwargs: Any) -> Attack:
    return home_bu("unknown-mn", **kwargs)


def truncated(
    *,
    coa: IPv6Address,
    dst: IPv6Address,
    home_address: IPv6Address | None = None,
    seq: int | None = None,
    lifetime: int = DEFAULT_LIFETIME["truncated"],
    variant: str = "option",
    random: RandomSource = os.urandom,
) -> Attack:
    """A home registration BU cut short.

    ``option``: the packet ends after 16 octets of Mobility Header and Header Len says 16
    (consistent, so the kernel passes it), in the middle of the Alternate Care-of Address option.
    ``short``: only the first 6 octets. ``hdrlen``: the whole BU with Header Len 255. The last two
    are what the decoder also rejects, but a Mobile IPv6 kernel drops them first.
    """
    if variant not in TRUNCATED_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    try:
        from scapy.layers.inet6 import MIP6OptAltCoA
    except ImportError:
        _need_scapy()
    seq = _seq(seq, random)
    options = [MIP6OptAltCoA(acoa=str(coa))]
    full = _scapy_bu(coa, dst, home_address, seq=seq, lifetime=lifetime, home=True, options=options)
    mh = full[_mh_offset(full) :]  # 32 octets: BU (12), PadN (2), Alternate CoA (18)
    note = None
    if variant == "option":
        mh = mh[:1] + bytes((1,)) + mh[2:16]
        expected: tuple[str, ...] = (reasons.MALFORMED,)
    elif variant == "short":
        mh = mh[:6]
        expected, note = (), KERNEL_DROP_NOTE
    else:
        mh = mh[:1] + b"\xff" + mh[2:]
        expected, note = (), KERNEL_DROP_NOTE
    packet = _raw_mh_packet(coa, dst, home_address, mh)
    return Attack("truncated", packet, coa, dst, home_address, seq, lifetime, expected, note)


def garbage(
    *,
    coa: IPv6Address,
    dst: IPv6Address,
    home_address: IPv6Address | None = None,
    mh_type: int | None = None,
    random: RandomSource = os.urandom,
) -> Attack:
    """64 random octets as a Mobility Header.

    Payload Proto 59 and Header Len 7 (64 octets) stay consistent with the packet, as the kernel
    requires; the MH type is random among the eight RFC 6275 types (or ``mh_type``); the fixed part
    and the reserved octet are random; the first option has a random non-Pad1 type and a length
    that overruns the message. An ``mh_type`` of 8 or more is an unknown type instead: the
    daemon answers it with a Binding Error (status 2) and counts ``unexpected_message``.
    """
    data = bytearray(random(GARBAGE_LENGTH))
    if mh_type is None:
        mh_type = data[2] % len(MHType)
    data[0] = NO_NEXT_HEADER
    data[1] = GARBAGE_LENGTH // 8 - 1
    data[2] = mh_type
    cls = MESSAGE_CLASSES.get(mh_type)
    if cls is not None:
        start = MH_HEADER_LEN + cls.FIXED
        data[start] = 1 + data[start] % 255  # any option type but Pad1
        room = GARBAGE_LENGTH - start - 2  # octets left for its data
        data[start + 1] = room + 1 + data[start + 1] % (255 - room)
        expected = reasons.MALFORMED
    else:
        expected = reasons.UNEXPECTED_MESSAGE
    packet = _raw_mh_packet(coa, dst, home_address, bytes(data))
    return Attack("garbage", packet, coa, dst, home_address, expected=(expected,))


def hao_data(*, coa: IPv6Address, dst: IPv6Address, home_address: IPv6Address, **_: Any) -> Attack:
    """A UDP datagram from ``coa`` with a Home Address option for ``home_address``."""
    try:
        from scapy.layers.inet import UDP
        from scapy.packet import Raw
    except ImportError:
        _need_scapy()
    packet = bytes(
        _ipv6_chain(coa, dst, home_address) / UDP(sport=40000, dport=9) / Raw(b"mvpn-lab hao-data")
    )
    return Attack("hao-data", packet, coa, dst, home_address, expected=(reasons.HAO_WITHOUT_BINDING,))


def replay(packet: bytes, kind: str = "replay") -> Attack:
    """An earlier packet, verbatim (any IPv6 packet: an ESP-protected BU is replayed as it is).
    ``replay-after-dereg`` expects an ESP-protected one to be dropped by the kernel first."""
    parsed = parse_ipv6(packet)
    expected: tuple[str, ...] = (reasons.SEQUENCE_OUT_OF_WINDOW,)
    if kind == "replay-after-dereg" and parsed.note == "ESP-protected payload":
        expected = (KERNEL_REPLAY_COUNTER, reasons.SEQUENCE_OUT_OF_WINDOW)
    seq = lifetime = None
    if parsed.mh is not None:
        try:
            msg = decode_mh(parsed.mh)
        except MHDecodeError:
            msg = None
        if isinstance(msg, BindingUpdate):
            seq, lifetime = msg.seq, msg.lifetime
    return Attack(kind, bytes(packet), parsed.src, parsed.dst, parsed.hao, seq, lifetime, expected=expected)


# --------------------------------------------------------------------------- sending


def scapy_packet(packet: bytes) -> Any:
    """The packet as a scapy object that serialises to exactly ``packet`` (header + Raw)."""
    try:
        from scapy.layers.inet6 import IPv6
        from scapy.packet import Raw
    except ImportError:
        _need_scapy()
    pkt = IPv6(packet[:40]) / Raw(packet[40:])
    if bytes(pkt) != packet:  # pragma: no cover - scapy keeps parsed fields and Raw bytes as they are
        raise LabError("scapy would not send the packet byte for byte")
    return pkt


def send_packet(packet: bytes, *, count: int = 1, iface: str | None = None) -> None:
    """Send ``count`` copies: at layer 3 (scapy routes it), or on Ethernet interface ``iface``."""
    pkt = scapy_packet(packet)
    try:
        from scapy.arch import get_if_hwaddr
        from scapy.layers.l2 import Ether
        from scapy.sendrecv import send, sendp
    except ImportError:
        _need_scapy()
    try:
        if iface is None:
            send(pkt, count=count, verbose=False)
            return
        try:
            link_type = Path(f"/sys/class/net/{iface}/type").read_text().strip()
        except OSError:
            raise LabError(f"--iface: no such interface: {iface!r}") from None
        if link_type != "1":
            raise LabError(
                f"--iface: {iface} is not an Ethernet interface; leave --iface out to send at layer 3"
            )
        sendp(Ether(src=get_if_hwaddr(iface)) / pkt, iface=iface, count=count, verbose=False)
    except PermissionError:
        raise LabError("cannot send: raw sockets need root (CAP_NET_RAW)", exit_code=1) from None
    except OSError as exc:
        raise LabError(f"cannot send: {exc.strerror or exc}", exit_code=1) from None


# --------------------------------------------------------------------------- command line


def _address(option: str, value: str) -> IPv6Address:
    try:
        return IPv6Address(value)
    except ValueError:
        raise LabError(f"{option}: not an IPv6 address: {value!r}") from None


def _integer(option: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value, 0)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise LabError(f"{option}: not an integer {low}..{high}: {value!r}")
    return number


def _packet_hex(value: str) -> bytes:
    text = "".join(value.split()).removeprefix("0x")
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise LabError("--packet-hex: not hexadecimal") from None
    try:
        parse_ipv6(data)
    except MHDecodeError as exc:
        raise LabError(f"--packet-hex: not an IPv6 packet: {exc.reason}") from None
    return data


def build_from_args(args: argparse.Namespace) -> Attack:
    """The :class:`Attack` described by parsed command-line options (one-line LabError if wrong)."""
    kind = args.kind
    if kind not in KINDS:
        raise LabError(f"KIND: unknown attack {kind!r} (one of {', '.join(KINDS)})")
    allowed = KIND_OPTIONS[kind]
    for name in ALL_KIND_OPTIONS:
        given = getattr(args, name) is not None
        if given and name not in allowed:
            raise LabError(f"{flag(name)}: not used by {kind}")
        if not given and allowed.get(name):
            raise LabError(f"{flag(name)}: required by {kind}")
    if not kind.startswith("replay") and args.dst is None:
        raise LabError(f"--dst: required by {kind}")
    dst = None if args.dst is None else _address("--dst", args.dst)
    random: RandomSource = os.urandom
    if args.seed is not None:
        random = _random.Random(_integer("--seed", args.seed, 0, 2**64 - 1)).randbytes

    if kind.startswith("replay"):
        attack = replay(_packet_hex(args.packet_hex), kind)
        if dst is not None and dst != attack.dst:
            raise LabError(f"--dst: the packet is addressed to {attack.dst}, not {dst}")
        return attack

    kw: dict[str, Any] = {"coa": _address("--coa", args.coa), "dst": dst, "random": random}
    if args.home_address is not None:
        kw["home_address"] = _address("--home-address", args.home_address)
    if args.seq is not None:
        kw["seq"] = _integer("--seq", args.seq, 0, 0xFFFF)
    if args.lifetime is not None:
        kw["lifetime"] = _integer("--lifetime", args.lifetime, 0, 0xFFFF)
    if kind == "hao-data":
        return hao_data(**kw)
    if kind == "bad-auth":
        if args.home_nonce_index is not None:
            kw["home_nonce_index"] = _integer("--home-nonce-index", args.home_nonce_index, 0, 0xFFFF)
        if args.careof_nonce_index is not None:
            kw["careof_nonce_index"] = _integer("--careof-nonce-index", args.careof_nonce_index, 0, 0xFFFF)
        return bad_auth(**kw)
    if kind == "truncated":
        if args.variant is not None:
            if args.variant not in TRUNCATED_VARIANTS:
                raise LabError(f"--variant: not one of {', '.join(TRUNCATED_VARIANTS)}: {args.variant!r}")
            kw["variant"] = args.variant
        return truncated(**kw)
    if kind == "garbage":
        if args.mh_type is not None:
            kw["mh_type"] = _integer("--mh-type", args.mh_type, 0, 255)
        return garbage(**kw)
    return home_bu(kind, **kw)


def cmd_attack(args: argparse.Namespace) -> int:
    count = _integer("--count", args.count, 1, 1_000_000)
    attack = build_from_args(args)
    if not args.dry_run:
        send_packet(attack.packet, count=count, iface=args.iface)
    print(json.dumps(attack.to_dict(count=count, iface=args.iface, sent=not args.dry_run)), flush=True)
    return 0
