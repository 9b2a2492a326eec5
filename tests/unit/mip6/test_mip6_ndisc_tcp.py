"""Neighbour Discovery messages and socket setup; the TCP recovery option with fakes."""

from __future__ import annotations

import struct
import sys
from ipaddress import IPv6Address, IPv6Network

import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)

from mvpn_lab.mip6.core.actions import ResumeTcp
from mvpn_lab.mip6.daemon.mhsocket import (
    IPV6_HOPLIMIT,
    IPV6_PKTINFO,
    IPV6_RECVHOPLIMIT,
    IPV6_RECVPKTINFO,
    SOL_IPV6,
    pack_pktinfo,
)
from mvpn_lab.mip6.daemon.ndisc import (
    ICMP6_FILTER,
    IPV6_MULTICAST_HOPS,
    IPV6_UNICAST_HOPS,
    NdiscError,
    NdiscSocket,
    RawSender,
    build_dad_probe,
    build_na,
    build_rs,
    icmp6_filter,
    na_target,
    parse_ra,
    solicited_node,
)
from mvpn_lab.mip6.daemon.tcprecovery import TcpConnection, TcpRecovery, build_probe, parse_proc_tcp6
from mvpn_lab.mip6.wire.constants import IPPROTO_ICMPV6

from ._daemon_fakes import FakeSocket
from ._helpers import CN, COA1, FOREIGN1, FOREIGN2, HA, HOA

MAC = "02:00:00:00:01:00"


def ra_bytes(*prefixes: tuple[str, int, int, int], lifetime: int = 1800) -> bytes:
    pkt = ICMPv6ND_RA(routerlifetime=lifetime)
    for prefix, plen, flags_a, valid in prefixes:
        pkt = pkt / ICMPv6NDOptPrefixInfo(prefix=prefix, prefixlen=plen, L=1, A=flags_a, validlifetime=valid)
    pkt = pkt / ICMPv6NDOptSrcLLAddr(lladdr=MAC)
    return bytes(IPv6(src="fe80::1", dst="ff02::1") / pkt)[40:]


def test_parse_router_advertisement_from_scapy():
    ra = parse_ra(
        ra_bytes(("2001:db8:2::", 64, 1, 86400), ("2001:db8:4::", 64, 0, 86400), ("2001:db8:5::", 64, 1, 0))
    )
    assert ra.router_lifetime == 1800 and ra.source_lladdr == bytes.fromhex("020000000100")
    assert [p.prefix for p in ra.prefixes] == [FOREIGN1, FOREIGN2, IPv6Network("2001:db8:5::/64")]
    # only autonomous prefixes with a valid lifetime make addresses
    assert ra.autoconf_prefixes() == [FOREIGN1]
    # movement detection: every prefix of the link (on-link or autonomous) with a valid lifetime
    assert ra.link_prefixes() == [FOREIGN1, FOREIGN2]


def test_link_prefixes_need_the_on_link_or_the_autonomous_flag():
    pkt = ICMPv6ND_RA(routerlifetime=1800)
    for prefix, on_link, auto in (("2001:db8:2::", 1, 0), ("2001:db8:4::", 0, 1), ("2001:db8:5::", 0, 0)):
        pkt = pkt / ICMPv6NDOptPrefixInfo(prefix=prefix, prefixlen=64, L=on_link, A=auto, validlifetime=60)
    ra = parse_ra(bytes(IPv6(src="fe80::1", dst="ff02::1") / pkt)[40:])
    assert ra.link_prefixes() == [FOREIGN1, FOREIGN2]
    assert ra.autoconf_prefixes() == [FOREIGN2]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x86\x00" + bytes(10), "of 12 octets"),
        (b"\x85\x00" + bytes(14), "not a router advertisement"),
        (b"\x86\x00" + bytes(14) + b"\x03\x00", "length 0"),
        (b"\x86\x00" + bytes(14) + b"\x03\x04" + bytes(6), "overruns"),
        (b"\x86\x00" + bytes(14) + b"\x03\x01" + bytes(6), "prefix information option of 8"),
        (b"\x86\x00" + bytes(14) + b"\x03", "truncated option"),
    ],
)
def test_bad_router_advertisements(data, reason):
    with pytest.raises(NdiscError, match=reason):
        parse_ra(data)


def test_built_messages_dissect_with_scapy():
    rs = ICMPv6ND_RS(build_rs())
    assert rs.type == 133 and rs.code == 0
    na = ICMPv6ND_NA(build_na(HOA, bytes.fromhex("020000000100")))
    assert (na.R, na.S, na.O, na.tgt) == (0, 0, 1, str(HOA))
    assert na.payload.lladdr == MAC and na.payload.type == 2
    assert na_target(build_na(HOA, None)) == HOA
    with pytest.raises(NdiscError):
        na_target(build_rs())


def test_dad_probe_is_a_valid_ns_from_the_unspecified_address():
    probe = IPv6(build_dad_probe(HOA))
    assert probe.src == "::" and probe.dst == str(solicited_node(HOA)) == "ff02::1:ff00:100"
    assert probe.hlim == 255 and probe.nh == IPPROTO_ICMPV6
    ns = probe[ICMPv6ND_NS]
    assert ns.tgt == str(HOA)
    claimed = ns.cksum
    del ns.cksum
    assert IPv6(bytes(probe))[ICMPv6ND_NS].cksum == claimed


def test_icmp6_filter_passes_only_the_listed_types():
    words = struct.unpack("=8I", icmp6_filter((134, 136)))
    blocked = {t for t in range(256) if words[t >> 5] & (1 << (t & 31))}
    assert set(range(256)) - blocked == {134, 136}


def test_ndisc_socket_setup_send_and_receive_with_a_fake():
    fake = FakeSocket()
    nd = NdiscSocket(fake, (134,))
    assert fake.options == [
        (IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter((134,))),
        (SOL_IPV6, IPV6_RECVPKTINFO, 1),
        (SOL_IPV6, IPV6_RECVHOPLIMIT, 1),
        (SOL_IPV6, IPV6_MULTICAST_HOPS, 255),
        (SOL_IPV6, IPV6_UNICAST_HOPS, 255),
    ]
    nd.send(build_rs(), IPv6Address("ff02::2"), 3)
    nd.send(b"na", IPv6Address("ff02::1"), 4, HA)
    assert fake.sent[0][1:] == (
        [(SOL_IPV6, IPV6_PKTINFO, pack_pktinfo(IPv6Address("::"), 3))],
        0,
        ("ff02::2", 0, 0, 3),
    )
    assert fake.sent[1][1][0][2] == pack_pktinfo(HA, 4)
    fake.inbox.append(
        (
            ra_bytes(("2001:db8:2::", 64, 1, 100)),
            [
                (SOL_IPV6, IPV6_PKTINFO, pack_pktinfo(IPv6Address("ff02::1"), 3)),
                (SOL_IPV6, IPV6_HOPLIMIT, struct.pack("=i", 255)),
            ],
            0,
            ("fe80::1%wlan0", 0, 0, 3),
        )
    )
    pkt = nd.receive()
    assert (pkt.src, pkt.ifindex, pkt.hoplimit) == (IPv6Address("fe80::1"), 3, 255)
    assert nd.receive() is None


def test_raw_sender_scopes_multicast_and_link_local():
    fake = FakeSocket()
    raw = RawSender(fake)
    raw.send(build_dad_probe(HOA), 5)
    assert fake.sendto_calls[0][1] == ("ff02::1:ff00:100", 0, 0, 5)
    raw.send(build_probe(TcpConnection(HOA, 40000, CN, 80), 7))
    assert fake.sendto_calls[1][1] == (str(HOA), 0, 0, 0)


# ----------------------------------------------------------------------------------- TCP recovery


# /proc/net/tcp6 as printed on a little-endian host (each 32-bit word in host order): a listener
# on the home address, a connection HOA:40000 -> CN:80, one to another peer, one in TIME_WAIT.
def _proc(addr: IPv6Address) -> str:
    return "".join(f"{struct.unpack('<I', addr.packed[i : i + 4])[0]:08X}" for i in range(0, 16, 4))


HEADER = "  sl  local_address                         remote_address                        st tx_queue ...\n"
TAIL = "00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1"
PROC = (
    HEADER
    + f"   0: {_proc(HOA)}:0050 {'0' * 32}:0000 0A {TAIL}\n"
    + f"   1: {_proc(HOA)}:9C40 {_proc(CN)}:0050 01 {TAIL}\n"
    + f"   2: {_proc(HOA)}:9C41 {_proc(COA1)}:0016 01 {TAIL}\n"
    + f"   3: {_proc(HOA)}:9C42 {_proc(CN)}:0050 06 {TAIL}\n"
    + "   4: garbage line\n"
)

LOOPBACK = (
    "  sl  local_address remote_address st\n"
    "   2: 00000000000000000000000001000000:8DCC 00000000000000000000000001000000:9B95 01 00000000:00000000 "
    "00:00000000 00000000     0        0 60290 2 00000000f5f95e2d 20 0 0 10 -1\n"
)


def test_parse_proc_tcp6():
    conns = parse_proc_tcp6(PROC, byteorder="little")
    assert conns == [TcpConnection(HOA, 40000, CN, 80), TcpConnection(HOA, 40001, COA1, 22)]
    # a line captured from a real kernel (::1 port 36300 -> ::1 port 39829)
    lo = IPv6Address("::1")
    assert parse_proc_tcp6(LOOPBACK, byteorder="little") == [TcpConnection(lo, 36300, lo, 39829)]


def test_probe_is_a_pure_ack_from_the_peer_with_a_valid_checksum():
    probe = IPv6(build_probe(TcpConnection(HOA, 40000, CN, 80), 0x12345678))
    assert (probe.src, probe.dst, probe.nh, probe.plen) == (str(CN), str(HOA), 6, 20)
    tcp = probe[TCP]
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, str(tcp.flags), len(tcp.payload)) == (
        80,
        40000,
        0x12345678,
        0,
        "A",
        0,
    )
    claimed = tcp.chksum
    del tcp.chksum
    assert IPv6(bytes(probe))[TCP].chksum == claimed


@pytest.mark.skipif(sys.byteorder != "little", reason="canned /proc text of a little-endian host")
def test_resume_sends_three_probes_per_matching_connection():
    sent: list[bytes] = []
    seqs = iter(range(100, 200))
    recovery = TcpRecovery(
        sent.append, read_connections=lambda: PROC, random=lambda n: struct.pack("!I", next(seqs))
    )
    assert recovery.resume(ResumeTcp(HOA, CN)) == [TcpConnection(HOA, 40000, CN, 80)]
    assert [IPv6(p)[TCP].seq for p in sent] == [100, 101, 102]
    sent.clear()
    assert len(recovery.resume(ResumeTcp(HOA, None))) == 2  # bt mode: every peer
    assert len(sent) == 6
    sent.clear()
    assert recovery.resume(ResumeTcp(HOA, None, exclude=(CN,))) == [TcpConnection(HOA, 40001, COA1, 22)]
    assert recovery.resume(ResumeTcp(IPv6Address("2001:db8:1::999"), None)) == []
    assert recovery.prompted == 4
