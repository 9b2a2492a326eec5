"""Header-chain, Mobility Header and RA parsing, including malformed input."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from analysis_builder import CN, COA, HA, HOA
from scapy.layers.inet import TCP
from scapy.layers.inet6 import (
    HAO,
    MIP6MH_BA,
    MIP6MH_BE,
    MIP6MH_BRR,
    MIP6MH_BU,
    ICMPv6ND_RA,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    MIP6MH_CoT,
    MIP6MH_CoTI,
    MIP6MH_HoT,
    MIP6MH_HoTI,
)
from scapy.packet import Raw

from mvpn_lab.analysis.packets import (
    MH_PROTOS,
    NH_ICMPV6,
    NH_MH,
    NH_TCP,
    Unreadable,
    parse_chain,
    parse_mh,
    parse_ra_prefixes,
    tcp_payload_len,
    transport_key,
)
from mvpn_lab.analysis.pcapstream import CaptureReader

DATA = Path(__file__).parent.parent / "data" / "malformed-mobility"


def _addr(text: str) -> bytes:
    import ipaddress

    return ipaddress.IPv6Address(text).packed


def test_bu_with_home_address_option() -> None:
    pkt = bytes(
        IPv6(src=COA, dst=HA)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
        / MIP6MH_BU(seq=4242, flags="AH", mhtime=25)
    )
    chain = parse_chain(pkt, 0, len(pkt))
    assert chain.nh == NH_MH
    assert chain.hao == _addr(HOA)
    assert chain.dst == _addr(HA)
    msg = parse_mh(pkt, chain.p, chain.ip_end, len(pkt))
    assert (msg.mh_type, msg.seq, msg.lifetime) == (5, 4242, 25)
    assert msg.home_registration and msg.ack_requested


def test_ba_with_type2_routing_header_and_status() -> None:
    pkt = bytes(
        IPv6(src=HA, dst=COA)
        / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA])
        / MIP6MH_BA(status=135, seq=77, mhtime=3)
    )
    chain = parse_chain(pkt, 0, len(pkt))
    assert chain.rh2 == _addr(HOA)
    msg = parse_mh(pkt, chain.p, chain.ip_end, len(pkt))
    assert (msg.mh_type, msg.status, msg.seq, msg.lifetime) == (6, 135, 77, 3)


def test_tunnelled_home_test_init_and_other_types() -> None:
    pkt = bytes(IPv6(src=COA, dst=HA) / IPv6(src=HOA, dst=CN) / MIP6MH_HoTI(cookie=b"abcdefgh"))
    chain = parse_chain(pkt, 0, len(pkt))
    assert chain.tunnels == 1
    assert (chain.src, chain.dst, chain.outer_src) == (_addr(HOA), _addr(CN), _addr(COA))
    assert parse_mh(pkt, chain.p, chain.ip_end, len(pkt)).cookie == b"abcdefgh"
    for layer, mh_type in (
        (MIP6MH_BRR(), 0),
        (MIP6MH_CoTI(cookie=b"12345678"), 2),
        (MIP6MH_HoT(cookie=b"12345678"), 3),
        (MIP6MH_CoT(cookie=b"87654321"), 4),
        (MIP6MH_BE(status=2, ha=HOA), 7),
    ):
        raw = bytes(IPv6(src=CN, dst=COA) / layer)
        chain = parse_chain(raw, 0, len(raw))
        assert parse_mh(raw, chain.p, chain.ip_end, len(raw)).mh_type == mh_type


def test_hop_by_hop_fragment_and_destination_options_chain() -> None:
    pkt = bytes(
        IPv6(src=CN, dst=COA)
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA])
        / IPv6ExtHdrFragment(offset=0, m=0)
        / IPv6ExtHdrDestOpt()
        / TCP(dataofs=5)
        / (b"z" * 33)
    )
    chain = parse_chain(pkt, 0, len(pkt))
    assert chain.nh == NH_TCP
    assert tcp_payload_len(pkt, chain.p, chain.ip_end, len(pkt)) == 33
    later = bytes(IPv6(src=CN, dst=COA) / IPv6ExtHdrFragment(offset=10, nh=6) / Raw(b"q" * 16))
    assert parse_chain(later, 0, len(later)).nh == -1


def test_router_advertisement_prefixes() -> None:
    pkt = bytes(
        IPv6(src="fe80::2", dst="ff02::1")
        / ICMPv6ND_RA()
        / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:02")
        / ICMPv6NDOptPrefixInfo(prefix="fec0:106:1100::", prefixlen=64)
        / ICMPv6NDOptPrefixInfo(prefix="2001:db8::", prefixlen=48)
    )
    chain = parse_chain(pkt, 0, len(pkt))
    assert chain.nh == NH_ICMPV6
    prefixes = parse_ra_prefixes(pkt, chain.p, chain.ip_end, len(pkt))
    assert [(p, n) for p, n in prefixes] == [(_addr("fec0:106:1100::"), 64), (_addr("2001:db8::"), 48)]


def test_router_advertisement_option_with_length_zero_is_malformed() -> None:
    pkt = bytearray(bytes(IPv6(src="fe80::2", dst="ff02::1") / ICMPv6ND_RA() / ICMPv6NDOptSrcLLAddr()))
    pkt[40 + 16 + 1] = 0  # option length 0 would loop forever in a naive parser
    with pytest.raises(Unreadable) as err:
        parse_ra_prefixes(bytes(pkt), 40, len(pkt), len(pkt))
    assert err.value.kind == "malformed"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b.__setitem__(41, 200), "malformed"),  # MH length far past the payload
        (lambda b: b.__setitem__(42, 42), "unknown-mh-type"),
        (lambda b: b.__setitem__(41, 0), "malformed"),  # BU of 8 bytes: shorter than its fixed part
    ],
)
def test_bad_mobility_headers(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    pkt = bytearray(bytes(IPv6(src=COA, dst=HA) / MIP6MH_BU(seq=1, flags="H")))
    mutate(pkt)
    raw = bytes(pkt)
    chain = parse_chain(raw, 0, len(raw))
    with pytest.raises(Unreadable) as err:
        parse_mh(raw, chain.p, chain.ip_end, len(raw))
    assert err.value.kind == reason


def test_mobility_option_with_wrong_length_is_malformed() -> None:
    # Binding Refresh Advice (type 2) must have length 2.
    body = bytes([59, 1, 5, 0, 0, 0]) + b"\x00\x01\x40\x00\x00\x10" + bytes([2, 3, 0, 0])
    pkt = bytes(IPv6(src=COA, dst=HA, nh=135) / Raw(body))
    with pytest.raises(Unreadable) as err:
        parse_mh(pkt, 40, len(pkt), len(pkt))
    assert err.value.kind == "malformed"
    assert "option type 2" in err.value.message  # the daemon decoder's words


def test_cut_by_snapshot_length_is_told_apart_from_malformed() -> None:
    pkt = bytes(
        IPv6(src=COA, dst=HA) / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)]) / MIP6MH_BU(seq=1, flags="H")
    )
    with pytest.raises(Unreadable) as err:
        parse_chain(pkt, 0, 50)
    assert err.value.kind == "snaplen"
    chain = parse_chain(pkt, 0, 70)
    with pytest.raises(Unreadable) as err:
        parse_mh(pkt, chain.p, chain.ip_end, 70)
    assert err.value.kind == "snaplen"


def test_tcp_payload_when_the_header_was_not_captured() -> None:
    pkt = bytes(IPv6(src=CN, dst=HOA) / TCP() / (b"d" * 500))
    chain = parse_chain(pkt, 0, len(pkt))
    assert tcp_payload_len(pkt, chain.p, chain.ip_end, 45) == 500 + 20 - 60  # lower bound, still > 0
    small = bytes(IPv6(src=CN, dst=HOA) / TCP())
    with pytest.raises(Unreadable):
        tcp_payload_len(small, 40, len(small), 45)


def test_transport_key_is_the_same_through_the_tunnel_and_with_route_optimisation() -> None:
    seg = TCP(sport=80, dport=4000, seq=7, ack=9) / (b"p" * 10)
    direct = bytes(IPv6(src=CN, dst=HOA) / seg)
    tunnel = bytes(IPv6(src=HA, dst=COA) / IPv6(src=CN, dst=HOA) / seg)
    ro = bytes(IPv6(src=CN, dst=COA) / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA]) / seg)
    keys = set()
    for pkt in (direct, tunnel, ro):
        chain = parse_chain(pkt, 0, len(pkt))
        keys.add(transport_key(chain.nh, pkt, chain.p, chain.ip_end, len(pkt)))
    assert len(keys) == 1


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.pcap")))
def test_tcpdump_malformed_captures_only_raise_unreadable(name: str) -> None:
    """Every packet of tcpdump's crash captures either parses or is reported as unreadable."""
    with CaptureReader(DATA / name) as reader:
        packets = [bytes(buf[l3:end]) for _, buf, l3, end, _, _ in reader.packets()]
    assert packets, "the file should contain at least one IPv6 packet"
    problems = len(reader.problems)  # e.g. an empty record after the ICMPv6 mobile prefix message
    for pkt in packets:
        try:
            chain = parse_chain(pkt, 0, len(pkt))
            if chain.nh in MH_PROTOS:
                parse_mh(pkt, chain.p, chain.ip_end, len(pkt))
        except Unreadable as exc:
            assert exc.kind in ("snaplen", "malformed", "unknown-mh-type")
            problems += 1
    assert problems >= 1


def test_fuzzed_mobility_packets_never_raise_anything_else() -> None:
    rng = random.Random(20250101)
    seeds = [
        bytes(
            IPv6(src=COA, dst=HA) / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)]) / MIP6MH_BU(seq=3, flags="AH")
        ),
        bytes(
            IPv6(src=HA, dst=COA) / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA]) / MIP6MH_BA(seq=3)
        ),
        bytes(IPv6(src=COA, dst=HA) / IPv6(src=HOA, dst=CN) / MIP6MH_HoTI(cookie=b"abcdefgh")),
        bytes(IPv6(src="fe80::1", dst="ff02::1") / ICMPv6ND_RA() / ICMPv6NDOptPrefixInfo(prefix="fec0::")),
    ]
    for _ in range(3000):
        pkt = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            pkt[rng.randrange(len(pkt))] = rng.randrange(256)
        end = rng.randint(40, len(pkt))
        raw = bytes(pkt)
        try:
            chain = parse_chain(raw, 0, end)
            if chain.nh in MH_PROTOS:
                parse_mh(raw, chain.p, chain.ip_end, end)
            elif chain.nh == NH_ICMPV6:
                parse_ra_prefixes(raw, chain.p, chain.ip_end, end)
        except Unreadable:
            pass
