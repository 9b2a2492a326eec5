"""The correspondent's xfrm reports: the datagram laid out as the kernel's uapi structs are
(struct nlmsghdr, struct xfrm_user_report with its struct xfrm_selector, one XFRMA_COADDR
attribute), built here with struct, not with the parser under test; and the driver answering each
report with a Binding Error, status 1."""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv6Address

from mvpn_lab.mip6.daemon.xfrmreport import HaoReport, XfrmReports, parse_reports
from mvpn_lab.mip6.wire.messages import BindingError, decode_mh

from ._daemon_fakes import cn_config, lines
from ._helpers import CN, COA1, HOA, HOA2
from .test_mip6_daemon import make

XFRM_MSG_REPORT, XFRM_MSG_EXPIRE, XFRMA_COADDR = 32, 24, 14


def report_datagram(
    src: IPv6Address, dst: IPv6Address, home: IPv6Address | None, *, proto: int = 60
) -> bytes:
    # struct xfrm_selector: daddr, saddr, dport, dport_mask, sport, sport_mask, family,
    # prefixlen_d, prefixlen_s, proto, (3 pad), ifindex, user = 56 bytes
    selector = struct.pack("=16s16sHHHHHBBB3xiI", dst.packed, src.packed, 0, 0, 0, 0, socket.AF_INET6,
                           128, 128, 17, 3, 0)  # fmt: skip
    body = struct.pack("=B3x", proto) + selector  # struct xfrm_user_report
    if home is not None:
        body += struct.pack("=HH", 4 + 16, XFRMA_COADDR) + home.packed
    return struct.pack("=IHHII", 16 + len(body), XFRM_MSG_REPORT, 0, 0, 0) + body


def test_reports_are_read_as_the_kernel_writes_them():
    assert len(report_datagram(COA1, CN, HOA)) == 16 + 60 + 20
    other = struct.pack("=IHHII", 16 + 8, XFRM_MSG_EXPIRE, 0, 0, 0) + bytes(8)  # another kind: skipped
    data = report_datagram(COA1, CN, HOA) + other + report_datagram(COA1, CN, None)
    assert parse_reports(data) == [HaoReport(COA1, CN, HOA)]  # the last has no home address
    assert parse_reports(report_datagram(COA1, CN, HOA, proto=50)) == []  # not a Home Address report
    assert parse_reports(report_datagram(COA1, CN, HOA)[:40]) == []  # truncated: nothing, no error
    assert parse_reports(b"") == []


class FakeReports:
    def __init__(self, datagrams: list[bytes]) -> None:
        self.datagrams = datagrams

    def fileno(self) -> int:
        return -1

    def read(self) -> list[HaoReport]:
        out = [r for d in self.datagrams for r in parse_reports(d)]
        self.datagrams = []
        return out

    def close(self) -> None:
        pass


def test_the_correspondent_answers_a_reported_data_packet_with_binding_error_1():
    daemon, stream = make(cn_config(), xfrm_reports=FakeReports([report_datagram(COA1, CN, HOA)]))
    daemon.start()
    ((reports, handler),) = daemon.driver.readers()
    assert reports is daemon.io.xfrm_reports
    handler()
    ((payload, src, dst, _),) = daemon.io.mh.sent
    error = decode_mh(payload)
    assert isinstance(error, BindingError) and error.status == 1 and error.home_address == HOA
    assert (src, dst) == (CN, COA1)
    assert daemon.node.rejected["hao_without_binding"] == 1
    (logged,) = [r for r in lines(stream) if r["event"] == "data_with_hao"]
    assert logged["home_address"] == str(HOA) and logged["result"] == "rejected:hao_without_binding"


def test_the_socket_is_drained_until_it_would_block():
    """XfrmReports reads every queued datagram and stops when none is left (a datagram socket
    pair stands in for the netlink socket)."""
    mine, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        mine.setblocking(False)
        kernel.send(report_datagram(COA1, CN, HOA))
        kernel.send(report_datagram(COA1, CN, HOA2))
        reports = XfrmReports(mine)
        assert [r.home_address for r in reports.read()] == [HOA, HOA2]
        assert reports.read() == [] and reports.overruns == 0
    finally:
        mine.close()
        kernel.close()
