"""The streaming capture reader: formats, link types, chunking and broken files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
from analysis_builder import ETH_MN, frame, write_capture
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

from mvpn_lab.analysis.pcapstream import CaptureError, CaptureReader, read_all

T = 1_700_000_000.0


def _packets(n: int = 5) -> list[tuple[float, bytes]]:
    return [
        (
            T + i * 0.25 + 0.000001 * i,
            bytes(IPv6(src="fec0::1", dst=f"fec0::{i + 2:x}") / TCP(seq=i) / (b"x" * i)),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("linktype", "fmt", "nanoseconds", "big_endian"),
    [
        (1, "pcap", False, False),
        (1, "pcap", True, True),
        (113, "pcap", False, False),
        (276, "pcap", False, True),
        (101, "pcap", True, False),
        (229, "pcap", False, False),
        (1, "pcapng", False, False),
        (1, "pcapng", False, True),
        (276, "pcapng", False, False),
    ],
)
def test_formats_and_link_types_give_the_same_packets(
    tmp_path: Path, linktype: int, fmt: str, nanoseconds: bool, big_endian: bool
) -> None:
    records = _packets()
    path = tmp_path / "cap"
    write_capture(path, records, linktype, fmt, nanoseconds=nanoseconds, big_endian=big_endian)
    got = read_all(path)
    assert [pkt for _, pkt in got] == [pkt for _, pkt in records]
    assert [ts for ts, _ in got] == pytest.approx([ts for ts, _ in records], abs=1e-6)


def test_gzip_and_small_chunks(tmp_path: Path) -> None:
    records = _packets(300)
    plain = tmp_path / "a.pcap"
    write_capture(plain, records)
    packed = tmp_path / "b.pcap.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    with CaptureReader(plain, chunk_size=4096) as reader:
        small = [(ts, bytes(buf[l3:end])) for ts, buf, l3, end, _, _ in reader.packets()]
    assert [p for _, p in small] == [p for _, p in records]
    assert [p for _, p in read_all(packed)] == [p for _, p in records]


def test_non_ipv6_frames_are_skipped_and_vlan_tags_are_followed(tmp_path: Path) -> None:
    v6 = bytes(IPv6(src="fec0::1", dst="fec0::2") / TCP())
    path = tmp_path / "mixed.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        frames = [
            bytes(Ether() / IP() / TCP()),
            bytes(Ether() / ARP()),
            bytes(
                Ether(dst="00:0c:29:bb:f0:b6") / Dot1Q(vlan=5) / IPv6(src="fec0::1", dst="fec0::2") / TCP()
            ),
            ETH_MN + b"\x86\xdd" + v6,
        ]
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", int(T) + i, 0, len(fr), len(fr)) + fr)
    got = read_all(path)
    assert [p for _, p in got] == [v6, v6]
    assert [ts for ts, _ in got] == [T + 2, T + 3]


def test_truncated_inside_a_record_keeps_what_came_before(tmp_path: Path) -> None:
    records = _packets(10)
    path = tmp_path / "cut.pcap"
    write_capture(path, records)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5])
    with CaptureReader(path) as reader:
        got = list(reader.packets())
    assert len(got) == 9
    assert reader.truncated
    assert "truncated" in reader.problems
    assert reader.last_ts == pytest.approx(records[8][0])


def test_truncated_inside_a_record_header(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    write_capture(path, _packets(3))
    data = path.read_bytes()
    first_record = 24 + 16 + len(frame(_packets(3)[0][1], 1))
    path.write_bytes(data[: first_record + 7])
    with CaptureReader(path) as reader:
        assert len(list(reader.packets())) == 1
    assert reader.truncated


def test_corrupt_record_length_stops_reading(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.pcap"
    write_capture(path, _packets(2))
    with open(path, "ab") as f:
        f.write(struct.pack("<IIII", int(T) + 9, 0, 10_000_000, 10_000_000) + b"\0" * 32)
    with CaptureReader(path) as reader:
        assert len(list(reader.packets())) == 2
    assert reader.truncated
    assert any("claims" in p.message for p in reader.problems)


def test_truncated_pcapng_block(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcapng"
    write_capture(path, _packets(4), fmt="pcapng")
    data = path.read_bytes()
    path.write_bytes(data[:-9])
    with CaptureReader(path) as reader:
        assert len(list(reader.packets())) == 3
    assert reader.truncated


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"this is not a capture at all\n", "not-a-capture"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "truncated"),
        (struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 105), "unsupported-linktype"),
    ],
)
def test_unusable_files_raise_capture_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError) as err:
        CaptureReader(path)
    assert err.value.reason == reason
    assert err.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as err:
        CaptureReader(tmp_path / "nope.pcap")
    assert err.value.reason == "missing"


def test_snaplen_cut_reports_missing_bytes(tmp_path: Path) -> None:
    records = _packets(3)
    path = tmp_path / "snap.pcap"
    write_capture(path, [(ts, pkt + b"y" * 100) for ts, pkt in records], snaplen=70)
    with CaptureReader(path) as reader:
        got = list(reader.packets())
    assert [end - l3 for _, _, l3, end, _, _ in got] == [56, 56, 56]
    assert all(missing > 0 for *_, missing, _ in got)
    assert [frame for *_, frame in got] == [1, 2, 3]


def test_fcs_bits_in_the_link_type_field_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "fcs.pcap"
    pkt = bytes(IPv6() / TCP())
    fr = frame(pkt, 229)
    path.write_bytes(
        struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 0x300000E5)
        + struct.pack("<IIII", int(T), 0, len(fr), len(fr))
        + fr
    )
    assert read_all(path) == [(T, pkt)]
