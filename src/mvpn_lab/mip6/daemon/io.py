"""Everything the daemon touches outside itself (sockets, look-ups, the command runner), as one
object the tests replace with fakes."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

from mvpn_lab.mip6.daemon.kernel.base import CommandRunner


def parse_iw_ssid(text: str) -> str | None:
    """The SSID in ``iw dev IFACE link`` output (None when not associated)."""
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "SSID" and value.strip():
            return value.strip()
    return None


def read_lladdr(iface: str) -> bytes | None:
    try:
        text = Path(f"/sys/class/net/{iface}/address").read_text().strip()
        return bytes.fromhex(text.replace(":", ""))
    except (OSError, ValueError):
        return None


def _ifname(index: int) -> str | None:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return None


@dataclass
class DaemonIO:
    """Everything the daemon touches outside itself; tests pass fakes."""

    runner: CommandRunner
    mh: Any  # MHSocket-like: fileno(), receive(), send(payload, src, dst, ifindex), close()
    ndisc: Any = None  # NdiscSocket-like
    raw: Any = None  # RawSender-like: send(packet, ifindex=0)
    netlink: Any = None  # NetlinkSource-like: fileno(), read(), close()
    netlink_dump: Callable[[], list[Any]] = list
    control: Any = None  # ControlServer-like: fileno(), accept(), close()
    ifindex: Callable[[str], int] = socket.if_nametoindex
    ifname: Callable[[int], str | None] = _ifname
    lladdr: Callable[[str], bytes | None] = read_lladdr
    read_tcp6: Callable[[], str] = lambda: Path("/proc/net/tcp6").read_text()
    # MN link-up look-ups in-process (netlink.KernelQueries); None: through ``runner`` (ip, iw)
    ra_default_gateways: Callable[[str], list[str]] | None = None
    ssid: Callable[[str], str | None] | None = None
    address_info: Callable[[str, IPv6Address], dict[str, bool] | None] | None = None
    # home agent's handover buffer: TunDevice-like (fileno, read, write, close), HostapdEvents-like
    # (fileno, attach, keepalive, receive, close) and the neighbour-table look-up
    # correspondent: the kernel's xfrm reports (XfrmReports-like: fileno, read, close)
    xfrm_reports: Any = None
    tun: Any = None
    ap_events: Any = None
    neighbours: Callable[[str], list[tuple[str, str]]] | None = None
    closables: list[Any] = field(default_factory=list)
