"""IPv6 header chain walking, HAO/RH2 helpers, capture reading and writing."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

import pytest

from mvpn_lab.mip6.wire.constants import IPPROTO_MH
from mvpn_lab.mip6.wire.ipv6 import (
    build_ipv6_packet,
    encode_hao_dstopts,
    encode_rh2,
    internet_checksum,
    mh_checksum,
    parse_ipv6,
    verify_mh_checksum,
)
from mvpn_lab.mip6.wire.messages import BindingUpdate, HomeTestInit, MHDecodeError, decode_mh, encode_mh
from mvpn_lab.mip6.wire.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_NULL,
    ethernet_frame,
    ipv6_payload,
    read_capture,
    read_capture_file,
    write_pcap,
)

from ._helpers import CN, COA1, HA, HOA


def test_internet_checksum_known_properties():
    data = bytes(range(37))
    c = internet_checksum(data)
    # Appending the checksum (on a 16-bit boundary) makes the sum verify to zero.
    assert internet_checksum(data + b"\0" + struct.pack("!H", c)) == 0
    assert internet_checksum(b"") == 0xFFFF


def test_hao_and_rh2_layout():
    hao = encode_hao_dstopts(HOA, IPPROTO_MH)
    assert len(hao) == 24 and hao[0] == IPPROTO_MH and hao[1] == 2
    assert hao.index(b"\xc9\x10") % 8 == 6  # option starts at 8n+6
    assert hao[8:24] == HOA.packed
    rh2 = encode_rh2(HOA, IPPROTO_MH)
    assert rh2[:4] == bytes([IPPROTO_MH, 2, 2, 1]) and rh2[8:] == HOA.packed


def test_build_and_parse_packet_with_both_headers():
    mh = encode_mh(BindingUpdate(seq=1, lifetime=2, ack=True, home=True))
    pkt = build_ipv6_packet(COA1, HA, mh, hao=HOA, rh2=CN)
    parsed = parse_ipv6(pkt)
    assert (parsed.src, parsed.dst, parsed.hao, parsed.rh2) == (COA1, HA, HOA, CN)
    assert parsed.pseudo_src == HOA and parsed.pseudo_dst == CN
    assert verify_mh_checksum(parsed.pseudo_src, parsed.pseudo_dst, parsed.mh)
    assert decode_mh(parsed.mh) == decode_mh(mh)
    # routing header comes before the destination options header
    assert pkt[6] == 43 and pkt[40] == 60 and pkt[64] == 135


def test_parse_tunnelled_packet_reports_outer_addresses():
    inner = build_ipv6_packet(HOA, CN, encode_mh(HomeTestInit(cookie=b"x" * 8)))
    outer = struct.pack("!IHBB", 6 << 28, len(inner), 41, 64) + COA1.packed + HA.packed + inner
    parsed = parse_ipv6(outer)
    assert parsed.tunnel == [(COA1, HA)]
    assert (parsed.src, parsed.dst) == (HOA, CN)
    assert isinstance(decode_mh(parsed.mh), HomeTestInit)


def test_parse_stops_at_esp_and_fragments():
    esp = struct.pack("!IHBB", 6 << 28, 8, 50, 64) + HOA.packed + HA.packed + bytes(8)
    assert parse_ipv6(esp).note == "ESP-protected payload" and parse_ipv6(esp).mh is None
    frag = (
        struct.pack("!IHBB", 6 << 28, 16, 44, 64) + HOA.packed + HA.packed + bytes([135, 0, 0, 9]) + bytes(12)
    )
    assert parse_ipv6(frag).note == "fragmented packet not reassembled"


def _pkt(next_header: int, rest: bytes, payload_length: int | None = None) -> bytes:
    """An IPv6 header (payload length: that of ``rest`` unless given) followed by ``rest``."""
    plen = len(rest) if payload_length is None else payload_length
    return struct.pack("!IHBB", 6 << 28, plen, next_header, 64) + bytes(32) + rest


@pytest.mark.parametrize(
    ("packet", "fragment"),
    [
        (b"\x60" + bytes(10), "IPv6 header truncated"),
        (b"\x45" + bytes(39), "IP version 4"),
        (_pkt(60, b"\x87\x05"), "extension header 60 length 48 runs past the IPv6 payload"),
        (_pkt(60, b"\x87\x05", payload_length=48), "extension header 60 cut short by the snapshot length"),
        (_pkt(60, b"\x87\x01\xc9\x08" + bytes(12)), r"Home Address option with length 8 \(should be 16\)"),
        (_pkt(60, b"\x87\x00\xc9\x10" + bytes(4)), "destination option 201 runs past the end of its header"),
        (
            _pkt(43, bytes([135, 4, 2, 1]) + bytes(36)),
            "type 2 routing header with length 40 and 1 segments left",
        ),
        (_pkt(41, bytes(40)), "inner header of an IPv6-in-IPv6 packet has IP version 0"),
    ],
)
def test_parse_errors(packet, fragment):
    with pytest.raises(MHDecodeError, match=fragment):
        parse_ipv6(packet)


def test_mh_checksum_ignores_existing_checksum_field():
    mh = encode_mh(HomeTestInit(cookie=b"q" * 8))
    assert mh_checksum(HOA, CN, mh) == mh_checksum(HOA, CN, mh[:4] + b"\xff\xff" + mh[6:])
    assert not verify_mh_checksum(HOA, CN, b"\x00")


def test_pcap_round_trip(tmp_path):
    packets = [build_ipv6_packet(HOA, CN, encode_mh(HomeTestInit(cookie=bytes([i]) * 8))) for i in range(3)]
    path = tmp_path / "x.pcap"
    write_pcap(path, [ethernet_frame(p) for p in packets])
    cap = read_capture_file(path)
    assert cap.warnings == []
    assert [f.index for f in cap.frames] == [1, 2, 3]
    assert [f.data for f in cap.frames] == packets
    assert cap.frames[1].timestamp == pytest.approx(0.001)


def test_frames_keep_their_number_in_the_file(tmp_path):
    """Frames that are not IPv6 are skipped, and the IPv6 ones keep Wireshark's frame numbers."""
    packet = build_ipv6_packet(HOA, CN, encode_mh(HomeTestInit()))
    arp = b"\x02" * 12 + b"\x08\x06" + bytes(28)
    path = tmp_path / "mixed.pcap"
    write_pcap(path, [arp, ethernet_frame(packet), arp, ethernet_frame(packet)])
    assert [f.index for f in read_capture_file(path).frames] == [2, 4]


def test_pcap_truncated_record_gives_warning(tmp_path):
    path = tmp_path / "t.pcap"
    write_pcap(path, [b"\x60" * 50, b"\x60" * 50], linktype=LINKTYPE_IPV6)
    data = path.read_bytes()
    cap = read_capture(data[:-10])
    assert len(cap.frames) == 1 and len(cap.frames[0].data) == 50
    assert cap.warnings == ["capture cut short: file ends inside record #2 (40 of 50 bytes)"]
    cap = read_capture(data[: 24 + 16 + 50 + 5])
    assert len(cap.frames) == 1
    assert cap.warnings == ["capture cut short: file ends inside the header of record #2"]


def _pcapng(linktype: int, packet: bytes, big: bool = False) -> bytes:
    e = ">" if big else "<"

    def block(btype: int, body: bytes) -> bytes:
        body += bytes((-len(body)) % 4)
        n = 12 + len(body)
        return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)

    shb = block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack(e + "HHI", linktype, 0, 65535))
    epb = block(6, struct.pack(e + "IIIII", 0, 0, 1_000_000, len(packet), len(packet)) + packet)
    spb = block(3, struct.pack(e + "I", len(packet)) + packet)
    return shb + idb + epb + spb


@pytest.mark.parametrize("big", [False, True])
def test_pcapng_is_read(big):
    packet = build_ipv6_packet(HOA, CN, encode_mh(HomeTestInit(cookie=b"n" * 8)))
    cap = read_capture(_pcapng(LINKTYPE_ETHERNET, ethernet_frame(packet), big))
    # The simple packet block has no timestamp: counted (frame 2), not returned, and said once.
    assert cap.warnings == ["simple packet blocks carry no timestamp; those packets were skipped"]
    assert [f.data for f in cap.frames] == [packet]
    assert cap.frames[0].timestamp == pytest.approx(1.0)


def test_pcapng_truncated_block_warns():
    data = _pcapng(LINKTYPE_IPV6, b"\x60" * 40)
    cap = read_capture(data[:-3])  # the last block (simple packet block) now overruns the file
    assert len(cap.frames) == 1
    assert cap.warnings == ["capture cut short: file ends inside a pcapng block after record #1"]
    bad_bom = bytearray(data)
    bad_bom[8:12] = b"\0\0\0\0"
    cap = read_capture(bytes(bad_bom))
    assert cap.frames == [] and cap.warnings == ["corrupt pcapng section header after record #0"]


def test_not_a_capture():
    with pytest.raises(MHDecodeError, match="not a pcap or pcapng file"):
        read_capture(b"hello world")
    with pytest.raises(MHDecodeError):
        read_capture(b"\xd4\xc3")


def test_link_layers():
    pkt = build_ipv6_packet(HOA, CN, encode_mh(HomeTestInit()))
    vlan = b"\x02" * 12 + b"\x81\x00\x00\x05" + b"\x86\xdd" + pkt
    assert ipv6_payload(LINKTYPE_ETHERNET, vlan) == pkt
    assert ipv6_payload(LINKTYPE_ETHERNET, b"\x02" * 12 + b"\x08\x00" + pkt) is None
    assert ipv6_payload(LINKTYPE_NULL, struct.pack("<I", 30) + pkt) == pkt
    assert ipv6_payload(LINKTYPE_NULL, struct.pack("<I", 2) + pkt) is None
    sll = bytes(14) + b"\x86\xdd" + pkt
    assert ipv6_payload(LINKTYPE_LINUX_SLL, sll) == pkt
    assert ipv6_payload(999, pkt) is None
    assert ipv6_payload(LINKTYPE_IPV6, b"\x45" + pkt[1:]) is None
    assert IPv6Address(parse_ipv6(ipv6_payload(LINKTYPE_IPV6, pkt)).src) == HOA
