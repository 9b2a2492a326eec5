"""Mobility Header socket: ancillary data parsing (canned bytes), socket setup (fake), loopback."""

from __future__ import annotations

import socket
import struct
import time
from ipaddress import IPv6Address

import pytest
from scapy.layers.inet6 import HAO, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting, PadN

from mvpn_lab.mip6.daemon.mhsocket import (
    IPV6_CHECKSUM,
    IPV6_DSTOPTS,
    IPV6_HOPLIMIT,
    IPV6_PKTINFO,
    IPV6_RECVDSTOPTS,
    IPV6_RECVPKTINFO,
    IPV6_RECVRTHDR,
    IPV6_RTHDR,
    SOL_IPV6,
    AncillaryError,
    MHSocket,
    hao_from_dstopts,
    pack_pktinfo,
    parse_ancillary,
    received_packet,
    rh2_from_rthdr,
)
from mvpn_lab.mip6.wire.messages import BindingRefreshRequest, BindingUpdate, encode_mh

from ._daemon_fakes import FakeSocket
from ._helpers import CN, COA1, HA, HOA

# What a CONFIG_IPV6_MIP6 kernel hands over for a BU with a Home Address option (after its swap:
# the source is the home address, the option holds the care-of address). The HAO sits at 8n+6,
# after a PadN of 4, as the kernel's mip6 destination option output lays it out.
DSTOPTS_HAO = bytes([135, 2, 1, 2, 0, 0, 0xC9, 16]) + COA1.packed
# ... and for a BA with a type 2 routing header (processed: segments left 0, the header now holds
# the care-of address, IPV6_PKTINFO the home address).
RTHDR_RH2 = bytes([135, 2, 2, 0, 0, 0, 0, 0]) + COA1.packed


def test_canned_headers_match_scapy_layouts():
    assert (
        bytes(IPv6ExtHdrDestOpt(nh=135, options=[PadN(optdata=b"\0\0"), HAO(hoa=str(COA1))])) == DSTOPTS_HAO
    )
    assert bytes(IPv6ExtHdrRouting(nh=135, type=2, segleft=0, addresses=[str(COA1)])) == RTHDR_RH2


def test_option_and_header_parsers():
    assert hao_from_dstopts(DSTOPTS_HAO) == COA1
    assert hao_from_dstopts(bytes([59, 0, 1, 4, 0, 0, 0, 0])) is None  # PadN only
    assert hao_from_dstopts(bytes([59, 0, 0, 0, 0, 0, 0, 0])) is None  # Pad1s
    assert rh2_from_rthdr(RTHDR_RH2) == (COA1, 0)
    assert rh2_from_rthdr(bytes([59, 0, 0, 0, 0, 0, 0, 0])) is None  # type 0: not ours
    for bad, reason in (
        (bytes([59]), "shorter than 2"),
        (bytes([59, 0, 0xC9, 4, 0, 0, 0, 0]), "Home Address option of length 4"),
        (bytes([59, 0, 1, 9, 0, 0, 0, 0]), "overruns"),
        (bytes([59, 0, 0, 0, 0, 0, 0, 1]), "without its length"),
    ):
        with pytest.raises(AncillaryError, match=reason):
            hao_from_dstopts(bad)
    with pytest.raises(AncillaryError, match="length field 4"):
        rh2_from_rthdr(bytes([59, 4, 2, 0]) + bytes(36))


def test_parse_ancillary_collects_everything():
    anc = parse_ancillary(
        [
            (SOL_IPV6, IPV6_PKTINFO, pack_pktinfo(HA, 7)),
            (SOL_IPV6, IPV6_DSTOPTS, DSTOPTS_HAO),
            (SOL_IPV6, IPV6_RTHDR, RTHDR_RH2),
            (SOL_IPV6, IPV6_HOPLIMIT, struct.pack("=i", 255)),
            (socket.SOL_SOCKET, 29, b"\0" * 16),  # e.g. a timestamp: ignored
        ]
    )
    assert (anc.dst, anc.ifindex, anc.hao, anc.rh2, anc.rh2_segments_left, anc.hoplimit) == (
        HA,
        7,
        COA1,
        COA1,
        0,
        255,
    )


def test_received_bu_with_home_address_option_is_unswapped():
    mh = encode_mh(BindingUpdate(seq=1, lifetime=10, ack=True, home=True), src=HOA, dst=HA)
    pkt = received_packet(
        mh,
        [(SOL_IPV6, IPV6_PKTINFO, pack_pktinfo(HA, 2)), (SOL_IPV6, IPV6_DSTOPTS, DSTOPTS_HAO)],
        (str(HOA), 0, 0, 0),
        ifname={2: "eth0"}.get,
    )
    assert (pkt.src, pkt.dst, pkt.hao, pkt.rh2) == (COA1, HA, HOA, None)
    assert pkt.checksum_verified and pkt.iface == "eth0" and not pkt.via_tunnel and not pkt.esp
    assert pkt.pseudo_src == HOA  # what the kernel verified the checksum with


def test_received_ba_with_routing_header_is_unswapped():
    pkt = received_packet(
        b"x" * 16,
        [(SOL_IPV6, IPV6_PKTINFO, pack_pktinfo(HOA, 3)), (SOL_IPV6, IPV6_RTHDR, RTHDR_RH2)],
        (str(HA), 0, 0, 0),
        ifname={3: "wlan0"}.get,
    )
    assert (pkt.src, pkt.dst, pkt.hao, pkt.rh2) == (HA, COA1, None, HOA)
    # an unprocessed header (segments left 1) is reported as it is
    raw = bytes([135, 2, 2, 1, 0, 0, 0, 0]) + HOA.packed
    pkt = received_packet(
        b"x" * 16,
        [(SOL_IPV6, IPV6_PKTINFO, pack_pktinfo(COA1, 3)), (SOL_IPV6, IPV6_RTHDR, raw)],
        ("::1", 0, 0, 0),
    )
    assert (pkt.dst, pkt.rh2) == (COA1, HOA)


def test_received_on_the_tunnel_is_via_tunnel():
    pkt = received_packet(
        b"x" * 16,
        [(SOL_IPV6, IPV6_PKTINFO, pack_pktinfo(HOA, 9))],
        (f"{CN}", 0, 0, 0),
        ifname={9: "mip6tnl"}.get,
        tunnels={"mip6tnl"},
    )
    assert pkt.via_tunnel and pkt.iface == "mip6tnl" and pkt.src == CN


def test_unusable_packets_raise_one_line_errors():
    with pytest.raises(AncillaryError, match="no IPV6_PKTINFO"):
        received_packet(b"x" * 8, [], ("::1", 0, 0, 0))
    with pytest.raises(AncillaryError, match="unusable source address"):
        received_packet(b"x" * 8, [(SOL_IPV6, IPV6_PKTINFO, pack_pktinfo(HA))], ("nonsense", 0))
    with pytest.raises(AncillaryError, match="IPV6_PKTINFO of 4 octets"):
        parse_ancillary([(SOL_IPV6, IPV6_PKTINFO, b"\0" * 4)])
    link_local = received_packet(
        b"x" * 8, [(SOL_IPV6, IPV6_PKTINFO, pack_pktinfo(HA))], ("fe80::1%eth0", 0, 0, 2)
    )
    assert link_local.src == IPv6Address("fe80::1")


def test_socket_setup_and_send_with_a_fake_socket():
    fake = FakeSocket()
    mh = MHSocket(fake)
    assert fake.options == [
        (SOL_IPV6, IPV6_CHECKSUM, 4),
        (SOL_IPV6, IPV6_RECVPKTINFO, 1),
        (SOL_IPV6, IPV6_RECVDSTOPTS, 1),
        (SOL_IPV6, IPV6_RECVRTHDR, 1),
    ]
    assert fake.blocking is False and mh.fileno() == 99
    mh.send(b"payload", HOA, HA)
    mh.send(b"hoti", HOA, CN, ifindex=12)
    mh.send(b"ll", HA, IPv6Address("fe80::1"), ifindex=3)
    assert fake.sent == [
        ([b"payload"], [(SOL_IPV6, IPV6_PKTINFO, HOA.packed + struct.pack("=I", 0))], 0, (str(HA), 0, 0, 0)),
        ([b"hoti"], [(SOL_IPV6, IPV6_PKTINFO, HOA.packed + struct.pack("=I", 12))], 0, (str(CN), 0, 0, 0)),
        ([b"ll"], [(SOL_IPV6, IPV6_PKTINFO, HA.packed + struct.pack("=I", 3))], 0, ("fe80::1", 0, 0, 3)),
    ]
    assert mh.receive() is None
    fake.inbox.append((b"data", [], 0, ("::1", 0, 0, 0)))
    assert mh.receive() == (b"data", [], ("::1", 0, 0, 0))
    mh.close()
    assert fake.closed


def _raw_or_skip() -> tuple[MHSocket, socket.socket]:
    try:
        rx = MHSocket.open()
        raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    except PermissionError:
        pytest.skip("raw sockets need CAP_NET_RAW")
    except OSError as exc:
        pytest.skip(f"no IPv6 raw sockets here: {exc}")
    return rx, raw


def _receive_all(rx: MHSocket) -> list:
    deadline = time.monotonic() + 0.5
    out = []
    while time.monotonic() < deadline:
        item = rx.receive()
        if item is None:
            if out:
                break
            time.sleep(0.01)
            continue
        out.append(item)
    return out


def test_loopback_kernel_checks_checksums_and_reports_pktinfo_and_rthdr():
    """On this (non-MIPv6) host kernel: a bad checksum never reaches the socket, IPV6_PKTINFO and
    a routing header with segments left 0 arrive as ancillary data the parser understands."""
    rx, raw = _raw_or_skip()
    lo = IPv6Address("::1")
    try:
        good = encode_mh(BindingRefreshRequest(), src=lo, dst=lo)
        bad = good[:4] + b"\x12\x34" + good[6:]
        header = struct.pack("!IHBB", 6 << 28, len(good), 135, 64) + lo.packed + lo.packed
        raw.sendto(header + bad, ("::1", 0))
        raw.sendto(header + good, ("::1", 0))
        rth = bytes([135, 2, 2, 0, 0, 0, 0, 0]) + COA1.packed
        with_rh = struct.pack("!IHBB", 6 << 28, len(rth) + len(good), 43, 64) + lo.packed + lo.packed
        raw.sendto(with_rh + rth + good, ("::1", 0))
        items = _receive_all(rx)
    finally:
        rx.close()
        raw.close()
    assert [bytes(item[0]) for item in items] == [good, good]  # the bad one was dropped
    plain = received_packet(*items[0], ifname=socket.if_indextoname)
    assert (plain.src, plain.dst, plain.iface, plain.rh2) == (lo, lo, "lo", None)
    routed = received_packet(*items[1], ifname=socket.if_indextoname)
    assert (routed.dst, routed.rh2) == (COA1, lo)  # read as a processed type 2 header
