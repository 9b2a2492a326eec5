"""The kernel's xfrm reports: data packets with a Home Address option and no binding (CN).

A correspondent must answer a packet that carries a Home Address option for which it has no
binding with a Binding Error, status 1 (RFC 6275 9.3.1), whatever the packet's protocol. Only
Mobility Header messages reach the daemon's socket; for the others the kernel does the work: the
correspondent's wildcard HAO state (``src :: dst :: proto hao ... flag wildrecv``) takes the option,
no policy accepts the resulting route-optimisation transform for a home address without a binding,
so the kernel drops the packet and reports it (``mip6_destopt_reject`` -> ``km_report``,
rate-limited per address pair to one a second) as ``XFRM_MSG_REPORT`` on the netlink xfrm group
``XFRMNLGRP_REPORT``: protocol ``IPPROTO_DSTOPTS``, a selector with the packet's source (the
care-of address) and destination, and the home address in ``XFRMA_COADDR``.

:class:`XfrmReports` is that socket; pyroute2 (0.9) has no xfrm family, so the report message is
declared once here with pyroute2's own ``nlmsg`` machinery, which parses it.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any

from mvpn_lab.mip6.daemon.netlink import NonBlockingNetlink

NETLINK_XFRM = 6
XFRMNLGRP_REPORT = 6  # enum xfrm_nlgroups
XFRM_MSG_REPORT = 32
IPPROTO_DSTOPTS = 60
AF_INET6 = socket.AF_INET6


@dataclass(frozen=True)
class HaoReport:
    """A packet the kernel dropped for its Home Address option: from ``src`` (the care-of
    address) to ``dst`` (this node) for ``home_address``."""

    src: IPv6Address
    dst: IPv6Address
    home_address: IPv6Address


@functools.cache
def _report_class() -> Any:
    """The message class, declared once (pyroute2 is imported on first use, as netlink.py does)."""
    from pyroute2.netlink import nlmsg

    class xfrm_user_report(nlmsg):
        """struct xfrm_user_report { __u8 proto; struct xfrm_selector sel; } and its attributes."""

        fields = (
            ("proto", "B"),
            ("__pad", "3x"),
            ("daddr", "16s"),
            ("saddr", "16s"),
            ("dport", ">H"),
            ("dport_mask", ">H"),
            ("sport", ">H"),
            ("sport_mask", ">H"),
            ("family", "H"),
            ("prefixlen_d", "B"),
            ("prefixlen_s", "B"),
            ("sel_proto", "B"),
            ("__pad2", "3x"),
            ("ifindex", "i"),
            ("user", "I"),
        )
        # enum xfrm_attr_type_t up to XFRMA_COADDR (14); the report carries only that one
        nla_map = (
            ("XFRMA_UNSPEC", "none"),
            ("XFRMA_ALG_AUTH", "hex"),
            ("XFRMA_ALG_CRYPT", "hex"),
            ("XFRMA_ALG_COMP", "hex"),
            ("XFRMA_ENCAP", "hex"),
            ("XFRMA_TMPL", "hex"),
            ("XFRMA_SA", "hex"),
            ("XFRMA_POLICY", "hex"),
            ("XFRMA_SEC_CTX", "hex"),
            ("XFRMA_LTIME_VAL", "hex"),
            ("XFRMA_REPLAY_VAL", "hex"),
            ("XFRMA_REPLAY_THRESH", "hex"),
            ("XFRMA_ETIMER_THRESH", "hex"),
            ("XFRMA_SRCADDR", "cdata"),
            ("XFRMA_COADDR", "cdata"),
        )

    return xfrm_user_report


def parse_reports(data: bytes) -> list[HaoReport]:
    """The Home Address option reports in one netlink datagram (other messages are skipped)."""
    from pyroute2.netlink import nlmsg

    cls = _report_class()
    out: list[HaoReport] = []
    offset = 0
    while offset + 16 <= len(data):
        header = nlmsg(data[offset:])
        header.decode()
        length, kind = header["header"]["length"], header["header"]["type"]
        if length < 16 or offset + length > len(data):
            break
        if kind == XFRM_MSG_REPORT:
            msg = cls(data[offset : offset + length])
            msg.decode()
            coaddr = msg.get_attr("XFRMA_COADDR")
            if msg["proto"] == IPPROTO_DSTOPTS and msg["family"] == AF_INET6 and coaddr and len(coaddr) >= 16:
                out.append(
                    HaoReport(IPv6Address(msg["saddr"]), IPv6Address(msg["daddr"]), IPv6Address(coaddr[:16]))
                )
        offset += (length + 3) & ~3
    return out


class XfrmReports(NonBlockingNetlink):
    """A non-blocking NETLINK_XFRM socket on the report group (ENOBUFS: reports were lost; later
    packets report again)."""

    RCVBUF = 1 << 18

    @classmethod
    def open(cls, factory: Any = socket.socket) -> XfrmReports:
        sock = factory(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_XFRM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cls.RCVBUF)
            sock.bind((0, 1 << (XFRMNLGRP_REPORT - 1)))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return cls(sock)

    def parse(self, data: bytes) -> list[Any]:
        return list(parse_reports(data))
