"""TCP recovery after a handover (the ``tcp_recovery`` option of the mobile node; off by default).

While the mobile node moves, the correspondent's TCP sender loses segments and backs off its
retransmission timer; it resumes only when that timer fires, often seconds after the binding is
in place. After the handover (home BA in ``bt`` mode, correspondent binding in ``ro`` mode) the
daemon prompts it: for every established TCP connection from the home address to the peer it
makes the mobile node's *own* TCP stack send duplicate ACKs, which carry the exact sequence and
acknowledgement numbers only the kernel knows (``ss``, ``/proc/net/tcp6`` and ``tcp_info`` do not
show them).

How: the daemon injects, for each connection, ``DUPACKS`` pure-ACK segments that look as if they
came from the peer, with a random sequence number (outside the receive window with overwhelming
probability) into the local stack through a raw ``IPPROTO_RAW`` socket. The kernel answers each
out-of-window segment with an immediate ACK (RFC 793/9293), which goes to the peer over the new
path. The daemon sets ``net.ipv4.tcp_invalid_ratelimit=0`` so that the kernel does not limit
these answers to one per 500 ms per socket. The injected segments carry no data and never reach
the application. Connections come from ``/proc/net/tcp6`` (state 01, established).
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address
from pathlib import Path

from mvpn_lab.mip6.core.actions import ResumeTcp
from mvpn_lab.mip6.wire.ipv6 import internet_checksum, pseudo_header

IPPROTO_TCP = 6
TCP_ESTABLISHED = 0x01
TCP_ACK = 0x10
DUPACKS = 3  # what makes a sender's fast retransmit start


@dataclass(frozen=True)
class TcpConnection:
    local: IPv6Address
    local_port: int
    remote: IPv6Address
    remote_port: int


def _proc_address(text: str, byteorder: str) -> IPv6Address:
    """/proc/net/tcp6 prints each 32-bit word of the address in host byte order as 8 hex digits."""
    if len(text) != 32:
        raise ValueError(f"address field {text!r}")
    fmt = "<I" if byteorder == "little" else ">I"
    return IPv6Address(b"".join(struct.pack(fmt, int(text[i : i + 8], 16)) for i in range(0, 32, 8)))


def parse_proc_tcp6(text: str, *, byteorder: str = sys.byteorder) -> list[TcpConnection]:
    """Established connections of a ``/proc/net/tcp6`` listing; unreadable lines are skipped."""
    out = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != f"{TCP_ESTABLISHED:02X}":
            continue
        try:
            local, lport = fields[1].split(":")
            remote, rport = fields[2].split(":")
            out.append(
                TcpConnection(
                    _proc_address(local, byteorder),
                    int(lport, 16),
                    _proc_address(remote, byteorder),
                    int(rport, 16),
                )
            )
        except ValueError:
            continue
    return out


def build_probe(conn: TcpConnection, seq: int) -> bytes:
    """An IPv6 packet from the peer to the mobile node: a pure ACK with sequence number ``seq``."""
    src, dst = conn.remote, conn.local
    tcp = struct.pack("!HHIIBBHHH", conn.remote_port, conn.local_port, seq, 0, 5 << 4, TCP_ACK, 1024, 0, 0)
    csum = internet_checksum(pseudo_header(src, dst, len(tcp), IPPROTO_TCP) + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    header = struct.pack("!IHBB", 6 << 28, len(tcp), IPPROTO_TCP, 64) + src.packed + dst.packed
    return header + tcp


class TcpRecovery:
    """Carries out :class:`ResumeTcp` actions."""

    def __init__(
        self,
        send: Callable[[bytes], None],
        *,
        read_connections: Callable[[], str] = lambda: Path("/proc/net/tcp6").read_text(),
        random: Callable[[int], bytes] = os.urandom,
        dupacks: int = DUPACKS,
    ) -> None:
        self.send = send
        self.read_connections = read_connections
        self.random = random
        self.dupacks = dupacks
        self.prompted = 0  # connections prompted so far

    def connections(self, action: ResumeTcp) -> list[TcpConnection]:
        conns = parse_proc_tcp6(self.read_connections())
        return [
            c
            for c in conns
            if c.local == action.home_address
            and (c.remote == action.peer if action.peer is not None else c.remote not in action.exclude)
        ]

    def resume(self, action: ResumeTcp) -> list[TcpConnection]:
        """Prompt every matching connection; returns them. OSError propagates to the caller."""
        conns = self.connections(action)
        for conn in conns:
            for _ in range(self.dupacks):
                seq = struct.unpack("!I", self.random(4))[0]
                self.send(build_probe(conn, seq))
        self.prompted += len(conns)
        return conns
