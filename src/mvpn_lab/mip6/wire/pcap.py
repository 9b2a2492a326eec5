"""The one pcap / pcapng reader (streaming, defensive) and a pcap writer.

Used by ``mip6 decode`` and by the handover analyser (``mvpn_lab.analysis``), whose captures can
be gigabytes long and hostile (see tests/unit/data/malformed-mobility). :class:`CaptureReader`
never holds more than one chunk (1 MiB by default) of the file in memory and never trusts a
length: anything wrong with the file (cut inside a record, corrupt record length, unsupported
link type, ...) is recorded in ``reader.problems`` as one line, and reading stops where the rest
cannot be read. It yields only IPv6 packets, as ``(ts, buf, l3, end, missing, frame)``:

* ``ts`` the capture time in seconds since the epoch (float);
* ``buf`` a ``bytes`` chunk of the file that holds the whole captured frame;
* ``l3`` the offset in ``buf`` of the IPv6 header, ``end`` the end of the captured bytes of the
  frame (so the packet is ``buf[l3:end]``);
* ``missing`` how many bytes of the frame were not captured (snaplen);
* ``frame`` the record's number in the file (1-based, like Wireshark's frame number).

The consumer indexes ``buf`` directly, so nothing is copied per packet. Frames that are not IPv6
(ARP, IPv4, ...) are skipped silently. Supported link types: Ethernet (1, with 802.1Q/802.1ad
tags), Linux cooked capture SLL (113) and SLL2 (276), raw IP (101, 228, 229: the IP version is
taken from the packet) and BSD loopback (0, 108). pcapng interface timestamp resolution and
offset (``if_tsresol``, ``if_tsoffset``) are honoured. Records whose time goes backwards are
counted (``reader.backwards``, ``backwards_line()``), not reordered: the consumer decides. A FIFO or
a device in place of the file is refused (``CaptureError`` ``not-a-file``). Gzip-compressed files are read
transparently. :func:`read_capture` reads a small capture whole (for ``mip6 decode`` and tests)
and raises only :class:`~mvpn_lab.mip6.wire.messages.MHDecodeError`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from mvpn_lab.mip6.wire.messages import MHDecodeError

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETHERTYPE_IPV6 = 0x86DD


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


# --------------------------------------------------------------------------- problems


@dataclass
class Problem:
    """One kind of problem in one file: the first occurrence and how often it happened."""

    reason: str
    message: str
    count: int = 1
    first_ts: float | None = None


MAX_PROBLEM_TIMES = 10000


class Problems:
    """Problems found while reading one file, keyed by a short reason slug.

    ``times`` keeps (timestamp, reason) of per-packet problems (bounded), so
    they can be attributed to the handover window they fall in.
    """

    def __init__(self) -> None:
        self._by_reason: dict[str, Problem] = {}
        self.times: list[tuple[float, str]] = []

    def add(self, reason: str, message: str, ts: float | None = None) -> None:
        if ts is not None and len(self.times) < MAX_PROBLEM_TIMES:
            self.times.append((ts, reason))
        known = self._by_reason.get(reason)
        if known is None:
            self._by_reason[reason] = Problem(reason, message, 1, ts)
        else:
            known.count += 1

    def __iter__(self) -> Iterator[Problem]:
        return iter(self._by_reason.values())

    def __len__(self) -> int:
        return len(self._by_reason)

    def __contains__(self, reason: object) -> bool:
        return reason in self._by_reason

    def reasons(self) -> list[str]:
        return list(self._by_reason)

    def lines(self) -> list[str]:
        """One line per kind of problem, with how often it happened."""
        return [p.message + (f" ({p.count} times, first shown)" if p.count > 1 else "") for p in self]


# --------------------------------------------------------------------------- the reader

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "BSD loopback",
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_RAW: "raw IP",
    LINKTYPE_LOOP: "OpenBSD loopback",
    LINKTYPE_LINUX_SLL: "Linux cooked (SLL)",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2 (SLL2)",
}

# How the IPv6 header is found in a frame, per link type.
_ETHERNET, _SLL, _SLL2, _RAW, _NULL = range(5)
_LINK_KIND = {
    LINKTYPE_ETHERNET: _ETHERNET,
    LINKTYPE_LINUX_SLL: _SLL,
    LINKTYPE_LINUX_SLL2: _SLL2,
    LINKTYPE_RAW: _RAW,
    LINKTYPE_IPV4: _RAW,
    LINKTYPE_IPV6: _RAW,
    LINKTYPE_NULL: _NULL,
    LINKTYPE_LOOP: _NULL,
    12: _RAW,  # DLT_RAW as some systems number it
    14: _RAW,
}
# AF_INET6 as written by BSDs, macOS and Linux, in either byte order.
_AF_INET6 = {24, 28, 30, 10, 24 << 24, 28 << 24, 30 << 24, 10 << 24}

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D

# libpcap's largest snapshot length; a record claiming more is corrupt.
MAX_CAPLEN = 262144
# Largest pcapng block accepted (a packet block plus generous options).
MAX_BLOCK = 16 * 1024 * 1024
CHUNK = 1 << 20

# (ts, buf, l3, end, missing, frame): see the module docstring.
Packet = tuple[float, bytes, int, int, int, int]


class CaptureError(Exception):
    """The file cannot be read as a capture at all."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _l3_offset(kind: int, buf: bytes, start: int, end: int) -> int:
    """Offset of the IPv6 header in a frame, or -1 if the frame is not IPv6.

    Used by the pcapng reader and for the less common link types; the pcap
    reader inlines the Ethernet case.
    """
    if kind == _ETHERNET:
        if end - start < 14:
            return -1
        et = (buf[start + 12] << 8) | buf[start + 13]
        off = start + 14
        while et in (0x8100, 0x88A8, 0x9100) and off + 4 <= end:
            et = (buf[off + 2] << 8) | buf[off + 3]
            off += 4
        return off if et == 0x86DD else -1
    if kind == _SLL:
        if end - start < 16:
            return -1
        return start + 16 if buf[start + 14] == 0x86 and buf[start + 15] == 0xDD else -1
    if kind == _SLL2:
        if end - start < 20:
            return -1
        return start + 20 if buf[start] == 0x86 and buf[start + 1] == 0xDD else -1
    if kind == _RAW:
        return start if end > start and buf[start] >> 4 == 6 else -1
    if kind == _NULL:
        if end - start < 5:
            return -1
        family = int.from_bytes(buf[start : start + 4], "little")
        return start + 4 if family in _AF_INET6 else -1
    return -1


_NOT_REGULAR = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def check_regular_file(path: Path) -> None:
    """Raise :class:`CaptureError` unless ``path`` is a regular file: a FIFO or a device in place of
    a capture would be read forever (stat does not open it)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CaptureError("missing", "file not found") from None
    except OSError as exc:
        raise CaptureError("unreadable", f"cannot open: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _NOT_REGULAR if test(mode)), "not a file")
        raise CaptureError("not-a-file", f"not a regular file ({kind}); refused")


def _open(source: Path | BinaryIO) -> tuple[BinaryIO, BinaryIO]:
    """(the stream to read, the file under it): the same object unless gzip-compressed."""
    if isinstance(source, Path):
        check_regular_file(source)
        f: BinaryIO = open(source, "rb")  # noqa: SIM115 - closed by CaptureReader.close()
    else:
        f = source
    start = f.tell()
    magic = f.read(2)
    f.seek(start)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb"), f  # type: ignore[return-value]
    return f, f


class CaptureReader:
    """Reads a pcap or pcapng file record by record.

    ``CaptureReader(path)`` raises :class:`CaptureError` if the file is empty,
    not a capture, or of an unsupported link type; ``path`` may also be an open binary
    file (read from its current position, closed with the reader). Iterate ``packets()`` once.
    With ``sha256=True`` the SHA-256 of the file's bytes is computed on the way
    (``reader.sha256`` after the pass; None if the pass stopped early).
    """

    def __init__(self, path: Path | str | BinaryIO, *, chunk_size: int = CHUNK, sha256: bool = False) -> None:
        given = path if isinstance(path, Path | str) else None
        self.path = Path(given) if given is not None else Path("-")
        self.chunk_size = max(4096, chunk_size)
        self.problems = Problems()
        self.records = 0
        self.truncated = False
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        #: records whose time is before the record's before them, and the first of them as
        #: (record number, its time, the time before it)
        self.backwards = 0
        self.first_backwards: tuple[int, float, float] | None = None
        self.sha256: str | None = None
        self._hash = hashlib.sha256() if sha256 else None
        self._complete = False
        try:
            self._f, self._raw = _open(self.path if given is not None else path)  # type: ignore[arg-type]
        except FileNotFoundError:
            raise CaptureError("missing", "file not found") from None
        except OSError as exc:
            raise CaptureError("unreadable", f"cannot open: {exc.strerror or exc}") from None
        head = self._read(24)
        if not head and "read-error" in self.problems:
            self.close()
            raise CaptureError("unreadable", next(iter(self.problems)).message)
        if not head:
            self.close()
            raise CaptureError("empty", "file is empty")
        self._rest = head
        magic_le = int.from_bytes(head[:4], "little") if len(head) >= 4 else None
        magic_be = int.from_bytes(head[:4], "big") if len(head) >= 4 else None
        if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS) or magic_be in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            self.format = "pcap"
            self._init_pcap(head)
        elif magic_le == PCAPNG_SHB:
            self.format = "pcapng"
            self.linktype = -1
        else:
            self.close()
            shown = head[:4].hex() if head else ""
            raise CaptureError("not-a-capture", f"not a pcap or pcapng file (starts with 0x{shown})")

    # -- plumbing -----------------------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        try:
            data = self._f.read(n)
        except (OSError, EOFError) as exc:  # e.g. a gzip file cut short
            self.problems.add("read-error", f"read error: {exc}")
            return b""
        if self._hash is not None and data:
            self._hash.update(data)
        return data

    def close(self) -> None:
        for name in ("_f", "_raw"):
            f = getattr(self, name, None)
            if f is not None:
                f.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _finish(self, count: int, first: float | None, last: float | None) -> None:
        self.records = count
        self.first_ts = first
        self.last_ts = last
        if self._hash is not None and self._complete:
            # Read anything left (a pass that stopped on a corrupt record leaves no digest).
            self.sha256 = self._hash.hexdigest()

    def _backwards(self, count: int, ts: float, prev: float) -> None:
        if self.first_backwards is None:
            self.first_backwards = (count, ts, prev)
        self.backwards += 1

    def backwards_line(self) -> str | None:
        """One line on records out of time order, or None."""
        if self.first_backwards is None:
            return None
        number, ts, prev = self.first_backwards
        return (
            f"{self.backwards} record(s) out of time order (the first, #{number} at {ts:.6f}, "
            f"{prev - ts:.6f} s before the record before it)"
        )

    def _truncate(self, message: str, ts: float | None) -> None:
        self.truncated = True
        self.problems.add("truncated", message, ts)

    # -- pcap --------------------------------------------------------------------------------
    def _init_pcap(self, head: bytes) -> None:
        if len(head) < 24:
            self.close()
            raise CaptureError("truncated", f"pcap file header cut short ({len(head)} of 24 bytes)")
        magic = int.from_bytes(head[:4], "little")
        self._endian = "<" if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
        self._ts_scale = 1e-9 if PCAP_MAGIC_NS in (magic, int.from_bytes(head[:4], "big")) else 1e-6
        _, _, _, _, snaplen, linktype = struct.unpack(self._endian + "HHiIII", head[4:24])
        self.snaplen = snaplen
        # Upper bits carry FCS information (pcap-linktype(7)); the link type is the low 16 bits.
        self.linktype = linktype & 0xFFFF
        if self.linktype not in _LINK_KIND:
            self.close()
            raise CaptureError(
                "unsupported-linktype",
                f"link type {self.linktype} is not supported (need Ethernet, SLL, raw IP)",
            )
        self._rest = b""

    def packets(self) -> Iterator[Packet]:
        """Yield the IPv6 packets of the capture (see module docstring)."""
        if self.format == "pcap":
            return self._pcap_packets()
        return self._pcapng_packets()

    def _frame(self, kind: int, buf: bytes, start: int, end: int, wirelen: int, count: int, ts: float) -> int:
        """IPv6 header offset of a frame the fast path did not take (-1: skip it, maybe noting why)."""
        caplen = end - start
        if caplen == 0:
            self.problems.add("empty-record", f"record #{count} has no captured bytes", ts)
            return -1
        l3 = _l3_offset(kind, buf, start, end)
        if l3 < 0:
            return -1
        if l3 + 40 > end:
            if wirelen > caplen:
                self.problems.add(
                    "snaplen",
                    f"packet #{count} cut short by the snapshot length before the end of its IPv6 "
                    f"header ({caplen} of {wirelen} bytes captured)",
                    ts,
                )
            else:
                self.problems.add("short-frame", f"packet #{count} is too short for an IPv6 header", ts)
            return -1
        if buf[l3] >> 4 != 6:
            self.problems.add(
                "not-ipv6", f"packet #{count} is marked IPv6 but has IP version {buf[l3] >> 4}", ts
            )
            return -1
        return l3

    def _pcap_packets(self) -> Iterator[Packet]:
        unpack = struct.Struct(self._endian + "IIII").unpack_from
        scale = self._ts_scale
        kind = _LINK_KIND[self.linktype]
        # Fast path: a fixed link header whose 2-byte protocol field says IPv6 (0x86dd), then an
        # IPv6 header. Anything else (VLAN tags, raw IP, short frames) goes through _frame().
        tpos, hlen = {_ETHERNET: (12, 14), _SLL: (14, 16), _SLL2: (0, 20)}.get(kind, (0, 1 << 30))
        minlen = hlen + 40
        frame = self._frame
        read = self._read
        chunk = self.chunk_size
        buf = self._rest
        n = len(buf)
        pos = 0
        count = 0
        first: float | None = None
        ts: float | None = None
        prev = float("-inf")
        try:
            while True:
                if pos + 16 > n:
                    buf = buf[pos:] + read(chunk)
                    pos = 0
                    n = len(buf)
                    if n < 16:
                        if n:
                            self._truncate(
                                f"capture cut short: file ends inside the header of record #{count + 1}", ts
                            )
                        else:
                            self._complete = True
                        return
                    if first is None:
                        sec, frac, _, _ = unpack(buf, 0)
                        first = sec + frac * scale
                sec, frac, caplen, wirelen = unpack(buf, pos)
                start = pos + 16
                end = start + caplen
                if end > n:
                    if caplen > MAX_CAPLEN:
                        self._truncate(
                            f"record #{count + 1} claims {caplen} captured bytes (corrupt file); "
                            "stopped reading there",
                            ts,
                        )
                        return
                    buf = buf[pos:] + read(max(chunk, caplen + 16))
                    pos = 0
                    n = len(buf)
                    start = 16
                    end = 16 + caplen
                    if end > n:
                        self._truncate(
                            f"capture cut short: file ends inside record #{count + 1} "
                            f"({n - 16} of {caplen} bytes)",
                            ts,
                        )
                        return
                pos = end
                count += 1
                ts = sec + frac * scale
                if ts < prev:
                    self._backwards(count, ts, prev)
                prev = ts
                if (
                    caplen >= minlen
                    and buf[start + tpos] == 0x86
                    and buf[start + tpos + 1] == 0xDD
                    and buf[start + hlen] >> 4 == 6
                ):
                    yield ts, buf, start + hlen, end, wirelen - caplen, count
                else:
                    l3 = frame(kind, buf, start, end, wirelen, count, ts)
                    if l3 >= 0:
                        yield ts, buf, l3, end, wirelen - caplen, count
        finally:
            self._finish(count, first, ts)

    # -- pcapng ------------------------------------------------------------------------------
    def _pcapng_packets(self) -> Iterator[Packet]:
        read = self._read
        chunk = self.chunk_size
        problems = self.problems
        frame = self._frame
        buf = self._rest
        n = len(buf)
        pos = 0
        count = 0
        first: float | None = None
        ts: float | None = None
        endian = "<"
        head = struct.Struct("<II").unpack_from
        epb = struct.Struct("<IIIII").unpack_from
        # Per interface of the current section:
        # (link kind, protocol field offset, link header length, ts scale, ts offset).
        interfaces: list[tuple[int, int, int, float, float]] = []
        warned_spb = False
        prev = float("-inf")
        try:
            while True:
                if pos + 12 > n:
                    buf = buf[pos:] + read(chunk)
                    pos = 0
                    n = len(buf)
                    if n < 12:
                        if n:
                            self._truncate(
                                f"capture cut short: file ends inside block after record #{count}", ts
                            )
                        else:
                            self._complete = True
                        return
                btype, blen = head(buf, pos)
                if btype == PCAPNG_SHB:
                    bom = buf[pos + 8 : pos + 12]
                    if bom == b"\x4d\x3c\x2b\x1a":
                        endian = "<"
                    elif bom == b"\x1a\x2b\x3c\x4d":
                        endian = ">"
                    else:
                        self._truncate(f"corrupt pcapng section header after record #{count}", ts)
                        return
                    head = struct.Struct(endian + "II").unpack_from
                    epb = struct.Struct(endian + "IIIII").unpack_from
                    btype, blen = head(buf, pos)
                    interfaces = []
                if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                    self._truncate(
                        f"corrupt pcapng block (type 0x{btype:x}, length {blen}) after record #{count}; "
                        "stopped reading there",
                        ts,
                    )
                    return
                if pos + blen > n:
                    buf = buf[pos:] + read(max(chunk, blen))
                    pos = 0
                    n = len(buf)
                    if blen > n:
                        self._truncate(
                            f"capture cut short: file ends inside a pcapng block after record #{count}", ts
                        )
                        return
                bstart = pos
                pos += blen
                if btype == 6 or btype == 2:  # enhanced / obsolete packet block
                    iface, ts_hi, ts_lo, caplen, wirelen = epb(buf, bstart + 8)
                    if btype == 2:  # 16-bit interface id and 16-bit drop count, read as one word
                        iface = iface & 0xFFFF if endian == "<" else iface >> 16
                    count += 1
                    if caplen > blen - 32 or iface >= len(interfaces):
                        problems.add("bad-record", f"packet #{count}: bad captured length or interface")
                        continue
                    kind, tpos, hlen, scale, offset = interfaces[iface]
                    ts = ((ts_hi << 32) | ts_lo) * scale + offset
                    if ts < prev:
                        self._backwards(count, ts, prev)
                    prev = ts
                    if first is None:
                        first = ts
                    start = bstart + 28
                    end = start + caplen
                    if (
                        caplen >= hlen + 40
                        and buf[start + tpos] == 0x86
                        and buf[start + tpos + 1] == 0xDD
                        and buf[start + hlen] >> 4 == 6
                    ):
                        yield ts, buf, start + hlen, end, wirelen - caplen, count
                    elif kind >= 0:
                        l3 = frame(kind, buf, start, end, wirelen, count, ts)
                        if l3 >= 0:
                            yield ts, buf, l3, end, wirelen - caplen, count
                elif btype == 1:  # interface description block
                    lt = struct.unpack_from(endian + "H", buf, bstart + 8)[0]
                    scale, offset = self._idb_options(buf, bstart + 16, bstart + blen - 4, endian)
                    kind = _LINK_KIND.get(lt, -1)
                    if kind < 0:
                        problems.add(
                            "unsupported-linktype",
                            f"interface {len(interfaces)} has unsupported link type {lt}",
                        )
                    tpos, hlen = {_ETHERNET: (12, 14), _SLL: (14, 16), _SLL2: (0, 20)}.get(kind, (0, 1 << 30))
                    interfaces.append((kind, tpos, hlen, scale, offset))
                    if self.linktype == -1:
                        self.linktype = lt
                elif btype == 3:  # simple packet block: no timestamp, unusable for timing
                    count += 1
                    if not warned_spb:
                        problems.add(
                            "no-timestamp",
                            "simple packet blocks carry no timestamp; those packets were skipped",
                        )
                        warned_spb = True
        finally:
            self._finish(count, first, ts)

    @staticmethod
    def _idb_options(buf: bytes, pos: int, end: int, endian: str) -> tuple[float, float]:
        """Timestamp resolution and offset from an interface description block's options."""
        scale = 1e-6
        offset = 0.0
        while pos + 4 <= end:
            code, length = struct.unpack_from(endian + "HH", buf, pos)
            if code == 0:
                break
            value = buf[pos + 4 : pos + 4 + length]
            if code == 9 and length >= 1:  # if_tsresol
                v = value[0]
                scale = 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -(v & 0x7F)
            elif code == 14 and length == 8:  # if_tsoffset
                offset = float(struct.unpack(endian + "q", value)[0])
            pos += 4 + ((length + 3) & ~3)
        return scale, offset


def read_all(path: Path | str) -> list[tuple[float, bytes]]:
    """All IPv6 packets of a (small) capture as ``(ts, packet bytes)``; for tests and tools."""
    out: list[tuple[float, bytes]] = []
    with CaptureReader(path) as reader:
        for ts, buf, l3, end, _missing, _frame in reader.packets():
            out.append((ts, bytes(buf[l3:end])))
    return out


@dataclass
class Frame:
    """One IPv6 packet of a capture read whole (:func:`read_capture`)."""

    index: int  # the record's number in the file, 1-based, like Wireshark's frame number
    data: bytes  # the IPv6 packet as captured
    timestamp: float = 0.0
    original_length: int = 0  # of the IPv6 packet on the wire (more than len(data) if cut)


@dataclass
class Capture:
    frames: list[Frame] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_capture(source: bytes | Path | str) -> Capture:
    """Every IPv6 packet of a (small) capture, held in memory or in a file, with the reader's warnings.

    Raises only :class:`MHDecodeError`, for a file that is not a capture at all.
    """
    try:
        reader = CaptureReader(io.BytesIO(bytes(source)) if isinstance(source, bytes | bytearray) else source)
    except CaptureError as exc:
        raise MHDecodeError(exc.message) from None
    cap = Capture()
    with reader:
        for ts, buf, l3, end, missing, index in reader.packets():
            cap.frames.append(Frame(index, bytes(buf[l3:end]), ts, end - l3 + missing))
    cap.warnings = reader.problems.lines()
    return cap


def read_capture_file(path: str | Path) -> Capture:
    return read_capture(Path(path))


def ipv6_payload(linktype: int, frame: bytes) -> bytes | None:
    """The IPv6 packet inside a link-layer frame, or None when the frame carries something else."""
    kind = _LINK_KIND.get(linktype)
    if kind is None:
        return None
    l3 = _l3_offset(kind, frame, 0, len(frame))
    return None if l3 < 0 else frame[l3:]
