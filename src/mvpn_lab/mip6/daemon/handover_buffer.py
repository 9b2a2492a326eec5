"""The home agent's handover buffer (``handover_buffer``, off by default; docs/mip6.md).

When a mobile node leaves the home link, the correspondent's packets to its home address go on
reaching the home link until the home agent has the node's Binding Update: a round trip over the
new access network later. They are lost there, and the correspondent's TCP sender waits for its
retransmission timer, backed off, often long after the binding is in place. RFC 6275 leaves this
gap open; fast handovers (RFC 5568) close it by buffering at the previous access router. In the
paper's lab the home agent *is* that router (it runs the home link's access point), so it can do
the same:

1. hostapd reports ``AP-STA-DISCONNECTED <mac>`` on its control socket (:class:`HostapdEvents`);
2. the daemon looks the MAC address up in the home link's neighbour table and, for each home
   address of an allowed mobile node behind it, routes ``HOA/128`` to a TUN device it holds open
   (:class:`TunDevice`);
3. it reads the packets the kernel routes there and holds them, at most ``buffer_packets`` per
   node (later ones are dropped and counted);
4. when the node's Binding Update is accepted, the tunnel's host route replaces the TUN route
   (``ip -6 route replace``) and the daemon writes the held packets back into the TUN device: the
   kernel receives them again and forwards them into the tunnel, right behind the BA;
5. without a Binding Update for ``buffer_hold`` seconds the route goes and the packets are
   dropped. The node coming back (``AP-STA-CONNECTED``) ends the hold too; its packets then go out
   on the home link.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import Any

from mvpn_lab.mip6.core.counters import Counters
from mvpn_lab.mip6.daemon.events import EventLog

# <linux/if_tun.h>
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

_EVENT = re.compile(
    r"^(?:<\d+>)?(AP-STA-CONNECTED|AP-STA-DISCONNECTED) ((?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2})\b"
)
LEFT = "left"
JOINED = "joined"


def parse_ap_event(text: str) -> tuple[str, str] | None:
    """``("left" | "joined", mac)`` for a hostapd station event, else None (replies, other events)."""
    match = _EVENT.match(text.strip())
    if match is None:
        return None
    return (JOINED if match.group(1) == "AP-STA-CONNECTED" else LEFT), match.group(2).lower()


def ipv6_destination(packet: bytes) -> IPv6Address | None:
    """The destination address of an IPv6 packet, or None when ``packet`` is not one."""
    if len(packet) < 40 or packet[0] >> 4 != 6:
        return None
    return IPv6Address(packet[24:40])


class TunDevice:
    """A TUN device (IPv6 packets without a packet-information header) the daemon holds open; it
    disappears when the descriptor closes."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name

    @classmethod
    def open(cls, name: str) -> TunDevice:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
        except OSError:
            os.close(fd)
            raise
        return cls(fd, name)

    def fileno(self) -> int:
        return self.fd

    def read(self) -> bytes | None:
        try:
            return os.read(self.fd, 65536)
        except BlockingIOError:
            return None

    def write(self, packet: bytes) -> None:
        os.write(self.fd, packet)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class HostapdEvents:
    """Station events from hostapd's control socket (``ATTACH``; hostapd_cli does the same).

    One datagram socket for the daemon's lifetime, so its descriptor can stay in the selector:
    :meth:`attach` connects it (again) and attaches; call it at start and on :meth:`keepalive`
    failures, since a restarted hostapd forgets its listeners."""

    def __init__(self, control_path: str, *, timeout: float = 1.0) -> None:
        self.control_path = control_path
        self.local_path = f"/tmp/mvpn-lab-mip6-{os.getpid()}-hostapd"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.local_path)
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.local_path)
        # never blocking: the daemon's loop reads it (a Python socket timeout would make recv wait)
        self.sock.setblocking(False)
        self.attached = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def attach(self) -> None:
        """Connect and attach; raises OSError (hostapd not running, no such socket)."""
        self.attached = False
        self.sock.connect(self.control_path)
        self.sock.send(b"ATTACH")
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([self.sock], [], [], left)[0]:
                break
            if self.sock.recv(4096).strip() == b"OK":  # events may come before the reply
                self.attached = True
                return
        raise OSError(f"hostapd at {self.control_path} did not answer ATTACH within {self.timeout:g} s")

    def keepalive(self) -> bool:
        """PING hostapd (the PONG comes back among the events); False when it cannot be reached."""
        try:
            self.sock.send(b"PING")
        except OSError:
            self.attached = False
            return False
        return True

    def receive(self) -> list[str]:
        """Messages waiting on the socket (without blocking)."""
        out: list[str] = []
        while True:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return out
            except OSError:
                self.attached = False
                return out
            out.append(data.decode("utf-8", "replace"))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.attached:
                self.sock.send(b"DETACH")
        self.sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.local_path)


@dataclass
class Hold:
    home_address: IPv6Address
    mac: str
    started: float
    deadline: float
    packets: list[bytes] = field(default_factory=list)
    dropped: int = 0


class HandoverBuffer:
    """What to hold, for whom and until when; the daemon feeds it events and packets.

    ``run(argv)`` changes the kernel (True when it worked), ``neighbours(iface)`` lists the
    ``(address, lladdr)`` pairs of the home link's neighbour table, ``write(packet)`` puts a packet
    back into the TUN device and ``now()`` is a monotonic clock."""

    def __init__(
        self,
        *,
        device: str,
        interface: str,
        max_packets: int,
        hold: float,
        allowed: Callable[[IPv6Address], bool],
        run: Callable[[Sequence[str]], bool],
        neighbours: Callable[[str], list[tuple[str, str]]],
        write: Callable[[bytes], None],
        now: Callable[[], float],
        events: EventLog,
    ) -> None:
        self.device = device
        self.interface = interface
        self.max_packets = max_packets
        self.hold_time = hold
        self.allowed = allowed
        self.run = run
        self.neighbours = neighbours
        self.write = write
        self.now = now
        self.events = events
        self.holds: dict[IPv6Address, Hold] = {}
        self.counters = Counters()

    def warm_up(self) -> None:
        """One neighbour-table look-up now, so the first departure does not pay for the set-up."""
        self._neighbour_table("warning")

    def _neighbour_table(self, level: str) -> list[tuple[str, str]]:
        try:
            return self.neighbours(self.interface)
        except Exception as exc:  # pyroute2 raises its own types
            self.events.emit(
                "handover_buffer_failed", level, message=f"neighbour table of {self.interface}: {exc}"
            )
            return []

    def _route(self, verb: str, hoa: IPv6Address) -> bool:
        """``replace`` or ``del`` the host route of ``hoa`` through the TUN device."""
        return self.run(["ip", "-6", "route", verb, f"{hoa}/128", "dev", self.device])

    # ---------------------------------------------------------------- station events

    def on_event(self, text: str) -> None:
        parsed = parse_ap_event(text)
        if parsed is None:
            return
        kind, mac = parsed
        if kind == LEFT:
            self.station_left(mac)
        else:
            self.station_joined(mac)

    def station_left(self, mac: str) -> list[IPv6Address]:
        """Start holding for the mobile nodes behind ``mac``; returns their home addresses."""
        started = []
        for address, lladdr in self._neighbour_table("error"):
            if lladdr.lower() != mac:
                continue
            try:
                hoa = IPv6Address(address)
            except ValueError:
                continue
            if hoa.is_link_local or not self.allowed(hoa) or hoa in self.holds:
                continue
            if not self._route("replace", hoa):
                continue
            now = self.now()
            self.holds[hoa] = Hold(hoa, mac, now, now + self.hold_time)
            self.counters.inc("holds")
            self.events.info("handover_buffer_hold", home_address=hoa, mac=mac, hold_s=self.hold_time)
            started.append(hoa)
        return started

    def station_joined(self, mac: str) -> None:
        """The node is back on the home link: its packets go there."""
        for hoa in [h.home_address for h in self.holds.values() if h.mac == mac]:
            self._route("del", hoa)
            self._release(hoa, "back home")

    # ---------------------------------------------------------------- packets

    def packet(self, data: bytes) -> None:
        dst = ipv6_destination(data)
        hold = self.holds.get(dst) if dst is not None else None
        if hold is None:
            self.counters.inc("stray")  # the device's own traffic (MLD, RS), or a hold just ended
            return
        if len(hold.packets) >= self.max_packets:
            hold.dropped += 1
            self.counters.inc("dropped")
            return
        hold.packets.append(data)
        self.counters.inc("held")

    def bound(self, hoa: IPv6Address) -> int:
        """The tunnel's route to ``hoa`` is in place: send what was held; returns how many."""
        return self._release(hoa, "binding")

    def _release(self, hoa: IPv6Address, reason: str) -> int:
        hold = self.holds.pop(hoa, None)
        if hold is None:
            return 0
        sent = 0
        for data in hold.packets:
            try:
                self.write(data)
                sent += 1
            except OSError as exc:
                self.counters.inc("write_failed")
                self.events.error("handover_buffer_failed", f"writing a held packet for {hoa}: {exc}")
                break
        self.counters.inc("released", sent)
        self.events.info(
            "handover_buffer_release",
            home_address=hoa,
            reason=reason,
            packets=sent,
            dropped=hold.dropped,
            held_s=round(self.now() - hold.started, 6),
        )
        return sent

    # ---------------------------------------------------------------- time

    def next_deadline(self) -> float | None:
        return min((h.deadline for h in self.holds.values()), default=None)

    def expire(self) -> None:
        now = self.now()
        for hold in [h for h in self.holds.values() if h.deadline <= now]:
            self.holds.pop(hold.home_address)
            self._route("del", hold.home_address)
            self.counters.inc("expired")
            self.counters.inc("dropped", len(hold.packets))
            self.events.warning(
                "handover_buffer_expired",
                f"no Binding Update from {hold.home_address} within {self.hold_time:g} s: "
                f"{len(hold.packets)} held packets dropped",
                home_address=hold.home_address,
            )

    def close(self) -> None:
        for hoa in list(self.holds):
            self.holds.pop(hoa)
            self._route("del", hoa)

    def status(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "holding": {str(h.home_address): len(h.packets) for h in self.holds.values()},
            "counters": self.counters.as_dict(),
        }
