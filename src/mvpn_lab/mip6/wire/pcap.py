"""A small, defensive pcap / pcapng reader and a pcap writer.

Captures given to ``mip6 decode`` can be hostile (see tests/unit/mip6/data). The reader never
trusts a length: a record that runs past the end of the file ends reading with a warning. Only
:class:`~mvpn_lab.mip6.wire.messages.MHDecodeError` escapes, for files that are not captures at all.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mvpn_lab.mip6.wire.messages import MHDecodeError

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETHERTYPE_IPV6 = 0x86DD
_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
# BSD loopback address families used for IPv6 on various systems.
_AF_INET6_VALUES = (10, 24, 28, 30)

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = 0x0A0D0D0A
_SHB_BYTES = b"\n\r\r\n"


@dataclass
class Frame:
    index: int  # 1-based, like Wireshark's frame number
    linktype: int
    data: bytes
    timestamp: float = 0.0
    original_length: int = 0


@dataclass
class Capture:
    frames: list[Frame] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_capture(data: bytes) -> Capture:
    """Parse a pcap or pcapng file held in memory."""
    if len(data) < 4:
        raise MHDecodeError("file too short to be a capture")
    try:
        if data[:4] in _PCAP_MAGICS:
            return _read_pcap(data)
        if data[:4] == _SHB_BYTES:
            return _read_pcapng(data)
    except (struct.error, ValueError, IndexError) as exc:  # defence in depth
        raise MHDecodeError(f"unreadable capture ({exc.__class__.__name__})") from exc
    raise MHDecodeError("not a pcap or pcapng file (unknown magic number)")


def read_capture_file(path: str | Path) -> Capture:
    return read_capture(Path(path).read_bytes())


def _read_pcap(data: bytes) -> Capture:
    cap = Capture()
    endian, unit = _PCAP_MAGICS[data[:4]]
    if len(data) < 24:
        raise MHDecodeError("pcap global header truncated")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0xFFFF  # upper bits: FCS info
    pos = 24
    index = 0
    while pos < len(data):
        index += 1
        if pos + 16 > len(data):
            cap.warnings.append(f"frame {index}: record header truncated ({len(data) - pos} of 16 bytes)")
            break
        sec, frac, caplen, origlen = struct.unpack(endian + "IIII", data[pos : pos + 16])
        pos += 16
        if pos + caplen > len(data):
            cap.warnings.append(
                f"frame {index}: record says {caplen} bytes, only {len(data) - pos} left in the file"
            )
            cap.frames.append(Frame(index, linktype, data[pos:], sec + frac * unit, origlen))
            break
        cap.frames.append(Frame(index, linktype, data[pos : pos + caplen], sec + frac * unit, origlen))
        pos += caplen
    return cap


def _read_pcapng(data: bytes) -> Capture:
    cap = Capture()
    endian = "<"
    interfaces: list[int] = []
    pos = 0
    index = 0
    while pos < len(data):
        if pos + 12 > len(data):
            cap.warnings.append(f"block at offset {pos} truncated")
            break
        btype = struct.unpack(endian + "I", data[pos : pos + 4])[0]
        if data[pos : pos + 4] == _SHB_BYTES:  # the block type reads the same in both byte orders
            bom = data[pos + 8 : pos + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                raise MHDecodeError("pcapng section header with an unknown byte-order magic")
            btype = _PCAPNG_SHB
            interfaces = []
        blen = struct.unpack(endian + "I", data[pos + 4 : pos + 8])[0]
        if blen < 12 or blen % 4 or pos + blen > len(data):
            cap.warnings.append(f"block at offset {pos}: bad length {blen}")
            break
        body = data[pos + 8 : pos + blen - 4]
        if btype == 1 and len(body) >= 2:  # Interface Description Block
            interfaces.append(struct.unpack(endian + "H", body[:2])[0])
        elif btype in (6, 2) and len(body) >= 20:  # Enhanced / obsolete Packet Block
            index += 1
            if btype == 6:
                iface, ts_hi, ts_lo, caplen, origlen = struct.unpack(endian + "IIIII", body[:20])
            else:
                iface, _drops, ts_hi, ts_lo, caplen, origlen = struct.unpack(endian + "HHIIII", body[:20])
            if iface >= len(interfaces):
                cap.warnings.append(f"frame {index}: unknown interface {iface}")
            else:
                packet = body[20 : 20 + caplen]
                if len(packet) < caplen:
                    cap.warnings.append(f"frame {index}: block holds fewer bytes than its captured length")
                ts = ((ts_hi << 32) | ts_lo) * 1e-6
                cap.frames.append(Frame(index, interfaces[iface], packet, ts, origlen))
        elif btype == 3 and len(body) >= 4:  # Simple Packet Block
            index += 1
            if not interfaces:
                cap.warnings.append(f"frame {index}: simple packet block without an interface")
            else:
                origlen = struct.unpack(endian + "I", body[:4])[0]
                cap.frames.append(Frame(index, interfaces[0], body[4 : 4 + origlen], 0.0, origlen))
        pos += blen
    return cap


def ipv6_payload(linktype: int, frame: bytes) -> bytes | None:
    """The IPv6 packet inside a link-layer frame, or None when the frame carries something else."""
    if linktype == LINKTYPE_ETHERNET:
        pos, ethertype = 12, None
        while pos + 2 <= len(frame):
            ethertype = struct.unpack("!H", frame[pos : pos + 2])[0]
            if ethertype in _VLAN_TYPES:
                pos += 4
                continue
            break
        if ethertype != ETHERTYPE_IPV6:
            return None
        return frame[pos + 2 :]
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV6, 12, 14):
        return frame if frame and frame[0] >> 4 == 6 else None
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(frame) < 4:
            return None
        family_le = struct.unpack("<I", frame[:4])[0]
        family_be = struct.unpack(">I", frame[:4])[0]
        if family_le in _AF_INET6_VALUES or family_be in _AF_INET6_VALUES:
            return frame[4:]
        return None
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16 or struct.unpack("!H", frame[14:16])[0] != ETHERTYPE_IPV6:
            return None
        return frame[16:]
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20 or struct.unpack("!H", frame[0:2])[0] != ETHERTYPE_IPV6:
            return None
        return frame[20:]
    return None


def ethernet_frame(
    ipv6_packet: bytes, src_mac: bytes = b"\x02\0\0\0\0\x01", dst_mac: bytes = b"\x02\0\0\0\0\x02"
) -> bytes:
    return dst_mac + src_mac + struct.pack("!H", ETHERTYPE_IPV6) + ipv6_packet


def write_pcap(
    path: str | Path, frames: Iterable[bytes], *, linktype: int = LINKTYPE_ETHERNET, start: float = 0.0
) -> None:
    """Write frames to a classic little-endian microsecond pcap file, one millisecond apart."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
    for i, frame in enumerate(frames):
        ts = start + i * 0.001
        sec = int(ts)
        usec = round((ts - sec) * 1e6)
        out += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
    Path(path).write_bytes(bytes(out))
