"""The home agent's handover buffer: hostapd events, what is held and for whom, release and expiry,
the daemon around it (fakes), and the hostapd control socket (a real Unix socket)."""

from __future__ import annotations

import io
import json
import os
import socket
import struct
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import pytest

from mvpn_lab.mip6.core.clock import FakeClock
from mvpn_lab.mip6.core.config import ConfigError, check_daemon_config, parse_config
from mvpn_lab.mip6.daemon.events import EventLog
from mvpn_lab.mip6.daemon.handover_buffer import (
    JOINED,
    LEFT,
    HandoverBuffer,
    HostapdEvents,
    ipv6_destination,
    parse_ap_event,
)

from ._daemon_fakes import Runner, ha_config
from ._helpers import CN, COA1, HA, HOA, HOA2
from .test_mip6_daemon import bu_from, make

MAC = "02:00:00:00:02:00"
OTHER_MAC = "02:00:00:00:03:00"


def packet(dst: IPv6Address, payload: bytes = b"data", src: IPv6Address = CN) -> bytes:
    return struct.pack("!IHBB", 6 << 28, len(payload), 59, 63) + src.packed + dst.packed + payload


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (f"<3>AP-STA-DISCONNECTED {MAC}", (LEFT, MAC)),
        (f"<3>AP-STA-CONNECTED {MAC.upper()}", (JOINED, MAC)),
        (f"AP-STA-DISCONNECTED {MAC} reason=3\n", (LEFT, MAC)),
        ("<3>AP-STA-DISCONNECTED 02:00:00:00:02", None),
        ("<3>CTRL-EVENT-EAP-STARTED 02:00:00:00:02:00", None),
        ("PONG\n", None),
        ("OK\n", None),
        ("", None),
    ],
)
def test_parse_ap_event(text, parsed):
    assert parse_ap_event(text) == parsed


def test_ipv6_destination():
    assert ipv6_destination(packet(HOA)) == HOA
    assert ipv6_destination(b"\x45" + bytes(39)) is None  # IPv4
    assert ipv6_destination(b"\x60" * 20) is None  # short


class Kernel:
    def __init__(self, fail: str = "") -> None:
        self.commands: list[str] = []
        self.fail = fail

    def __call__(self, argv: Any) -> bool:
        line = " ".join(argv)
        self.commands.append(line)
        return not (self.fail and line.startswith(self.fail))


def buffer(
    *, neighbours: list[tuple[str, str]] | None = None, max_packets: int = 3, kernel: Kernel | None = None
) -> tuple[HandoverBuffer, Kernel, list[bytes], FakeClock, io.StringIO]:
    clock = FakeClock()
    stream = io.StringIO()
    written: list[bytes] = []
    kernel = kernel or Kernel()
    table = (
        neighbours
        if neighbours is not None
        else [(str(HOA), MAC), ("fe80::ff:fe00:200", MAC), (str(HOA2), OTHER_MAC), ("2001:db8:1::999", MAC)]
    )
    buf = HandoverBuffer(
        device="mip6buf",
        interface="wlan0",
        max_packets=max_packets,
        hold=2.0,
        allowed=lambda hoa: hoa in (HOA, HOA2),
        run=kernel,
        neighbours=lambda iface: table if iface == "wlan0" else [],
        write=written.append,
        now=clock.monotonic,
        events=EventLog(stream, clock, node="ha", role="ha"),
    )
    return buf, kernel, written, clock, stream


def events(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_departing_station_gets_its_home_addresses_held_and_released_on_the_binding():
    buf, kernel, written, clock, stream = buffer()
    buf.on_event(f"<3>AP-STA-DISCONNECTED {MAC}")
    # only the allowed global home address behind that MAC (not its link-local, not a stranger's)
    assert kernel.commands == [f"ip -6 route replace {HOA}/128 dev mip6buf"]
    assert list(buf.holds) == [HOA]
    first, second = packet(HOA, b"1"), packet(HOA, b"2")
    buf.packet(first)
    buf.packet(packet(HOA2))  # nobody holds for HOA2
    buf.packet(second)
    assert written == []
    clock.advance(0.4)
    assert buf.bound(HOA) == 2
    assert written == [first, second]  # in order
    assert buf.holds == {}
    assert buf.bound(HOA) == 0  # once
    release = [e for e in events(stream) if e["event"] == "handover_buffer_release"]
    assert release[0]["packets"] == 2 and release[0]["reason"] == "binding"
    assert release[0]["held_s"] == pytest.approx(0.4)
    assert buf.counters.as_dict() == {"holds": 1, "held": 2, "stray": 1, "released": 2}


def test_a_full_hold_drops_and_counts_the_rest():
    buf, _, written, _, stream = buffer(max_packets=2)
    buf.station_left(MAC)
    for n in range(5):
        buf.packet(packet(HOA, bytes([n])))
    buf.bound(HOA)
    assert [p[-1] for p in written] == [0, 1]
    assert buf.counters["dropped"] == 3
    assert events(stream)[-1]["dropped"] == 3


def test_without_a_binding_the_hold_expires_and_its_route_goes():
    buf, kernel, written, clock, stream = buffer()
    buf.station_left(MAC)
    buf.packet(packet(HOA))
    assert buf.next_deadline() == pytest.approx(clock.monotonic() + 2.0)
    clock.advance(1.9)
    buf.expire()
    assert HOA in buf.holds
    clock.advance(0.2)
    buf.expire()
    assert buf.holds == {} and written == [] and buf.next_deadline() is None
    assert kernel.commands[-1] == f"ip -6 route del {HOA}/128 dev mip6buf"
    assert buf.counters["expired"] == 1 and buf.counters["dropped"] == 1
    (expired,) = [e for e in events(stream) if e["event"] == "handover_buffer_expired"]
    assert expired["level"] == "warning" and "1 held packets dropped" in expired["message"]


def test_coming_back_home_sends_the_held_packets_out_on_the_home_link():
    buf, kernel, written, _, stream = buffer()
    buf.station_left(MAC)
    buf.packet(packet(HOA))
    buf.station_joined(OTHER_MAC)  # another station: nothing
    assert buf.holds
    buf.on_event(f"<3>AP-STA-CONNECTED {MAC}")
    # the route goes first, so the packets written back follow the on-link route
    assert kernel.commands[-1] == f"ip -6 route del {HOA}/128 dev mip6buf"
    assert len(written) == 1 and buf.holds == {}
    assert events(stream)[-1]["reason"] == "back home"


def test_no_hold_when_the_route_cannot_be_set_or_nobody_is_known():
    buf, _, _, _, _ = buffer(kernel=Kernel(fail="ip -6 route replace"))
    assert buf.station_left(MAC) == [] and buf.holds == {}
    buf, _, _, _, _ = buffer(neighbours=[])
    assert buf.station_left(MAC) == []


def test_a_broken_neighbour_table_is_one_error_line():
    buf, _, _, _, stream = buffer()

    def broken(iface: str) -> list[tuple[str, str]]:
        raise RuntimeError("netlink said no")

    buf.neighbours = broken
    assert buf.station_left(MAC) == []
    (line,) = events(stream)
    assert line["event"] == "handover_buffer_failed" and "netlink said no" in line["message"]


def test_close_removes_the_routes_of_open_holds():
    buf, kernel, _, _, _ = buffer()
    buf.station_left(MAC)
    buf.close()
    assert kernel.commands[-1] == f"ip -6 route del {HOA}/128 dev mip6buf" and buf.holds == {}


# ------------------------------------------------------------------------------ config


HA_BUFFER = {
    "role": "ha",
    "address": "2001:db8:1::1",
    "home_prefix": "2001:db8:1::/64",
    "allowed_mobile_nodes": ["2001:db8:1::100"],
    "require_ipsec": False,
    "interface": "wlan0",
    "handover_buffer": True,
    "hostapd_control": "/run/mvpn-lab/ha/hostapd/wlan0",
    "buffer_packets": 16,
    "buffer_hold": 1.5,
}


def test_buffer_fields_parse():
    cfg = parse_config(HA_BUFFER)
    fields = (cfg.handover_buffer, cfg.hostapd_control, cfg.buffer_packets, cfg.buffer_hold)
    assert fields == (True, "/run/mvpn-lab/ha/hostapd/wlan0", 16, 1.5) and cfg.buffer_device == "mip6buf"
    check_daemon_config(cfg)
    off = parse_config({**HA_BUFFER, "handover_buffer": False, "hostapd_control": None})
    assert off.handover_buffer is False


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"handover_buffer": "yes"}, "config field 'handover_buffer': expected true or false"),
        ({"buffer_packets": 0}, "config field 'buffer_packets': 0 is outside 1..4096"),
        ({"buffer_hold": "2s"}, "config field 'buffer_hold': expected a number"),
        ({"hostapd_control": "hostapd/wlan0"}, "config field 'hostapd_control': expected an absolute path"),
        ({"buffer_device": "wlan0"}, "config field 'buffer_device': wlan0 is the home link"),
    ],
)
def test_buffer_field_errors_name_the_field(change, message):
    with pytest.raises(ConfigError, match=f"^{message}"):
        parse_config({**HA_BUFFER, **change})


def test_the_buffer_needs_hostapd():
    with pytest.raises(ConfigError, match=r"^config field 'hostapd_control': handover_buffer needs"):
        check_daemon_config(parse_config({**HA_BUFFER, "hostapd_control": None}))


# ------------------------------------------------------------------------------ in the daemon


class FakeTun:
    def __init__(self, runner: Runner | None = None) -> None:
        self.inbox: list[bytes] = []
        self.written: list[bytes] = []
        self.closed = False
        self.runner = runner  # its last command is recorded at each write
        self.last_command_at_write: list[str] = []

    def fileno(self) -> int:
        return -1

    def read(self) -> bytes | None:
        return self.inbox.pop(0) if self.inbox else None

    def write(self, data: bytes) -> None:
        self.written.append(data)
        if self.runner is not None and self.runner.lines:
            self.last_command_at_write.append(self.runner.lines[-1])

    def close(self) -> None:
        self.closed = True


class FakeHostapd:
    control_path = "/run/hostapd/wlan0"

    def __init__(self) -> None:
        self.attached = False
        self.attaches = 0
        self.inbox: list[str] = []
        self.closed = False

    def fileno(self) -> int:
        return -1

    def attach(self) -> None:
        self.attaches += 1
        self.attached = True

    def keepalive(self) -> bool:
        return self.attached

    def receive(self) -> list[str]:
        out, self.inbox = self.inbox, []
        return out

    def close(self) -> None:
        self.closed = True


def test_the_home_agent_daemon_holds_until_the_bu_and_then_tunnels_what_it_held():
    runner = Runner(stdout={"sysctl -n": "1\n"})
    tun, hostapd = FakeTun(runner), FakeHostapd()
    cfg = ha_config(handover_buffer=True, hostapd_control=hostapd.control_path, interface="eth1")
    daemon, stream = make(
        cfg, runner=runner, tun=tun, ap_events=hostapd, neighbours=lambda iface: [(str(HOA), MAC)]
    )
    daemon.start()
    assert "ip link set dev mip6buf up" in runner.take() and hostapd.attaches == 1
    hostapd.inbox.append(f"<3>AP-STA-DISCONNECTED {MAC}")
    daemon.driver.on_ap_readable()
    assert runner.take() == [f"ip -6 route replace {HOA}/128 dev mip6buf"]
    held = packet(HOA)
    tun.inbox.append(held)
    daemon.driver.on_tun_readable()
    assert tun.written == []
    daemon.io.mh.inbox.append(bu_from(HOA, COA1))
    daemon.on_mh_readable()
    assert tun.written == [held]
    # written back right after the tunnel's route replaced the buffer's
    (last,) = tun.last_command_at_write
    assert last.startswith(f"ip -6 route replace {HOA}/128 dev mip6ha"), last
    status = daemon.status()["daemon"]["handover_buffer"]
    assert status["counters"] == {"holds": 1, "held": 1, "released": 1} and status["holding"] == {}
    daemon.finish_shutdown()
    assert tun.closed and hostapd.closed
    logged = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert "handover_buffer_hold" in logged and "handover_buffer_release" in logged


def test_the_daemon_waits_for_hostapd_and_attaches_again_later():
    class Unreachable(FakeHostapd):
        failures = 1

        def attach(self) -> None:
            self.attaches += 1
            if self.attaches <= self.failures:
                raise FileNotFoundError(2, "No such file or directory")
            self.attached = True

    clock = FakeClock()
    hostapd = Unreachable()
    cfg = ha_config(handover_buffer=True, hostapd_control=hostapd.control_path)
    daemon, stream = make(cfg, clock=clock, tun=FakeTun(), ap_events=hostapd, neighbours=lambda iface: [])
    hostapd.failures = 2
    daemon.start()
    assert not hostapd.attached
    clock.advance(5.0)
    daemon.fire_timers()  # still down: no second warning
    assert stream.getvalue().count('"hostapd_unreachable"') == 1
    clock.advance(5.0)
    daemon.fire_timers()
    assert hostapd.attached and hostapd.attaches == 3
    assert stream.getvalue().count('"hostapd_attached"') == 1


def test_no_buffer_without_the_option():
    daemon, _ = make(ha_config(), tun=FakeTun(), ap_events=FakeHostapd())
    assert daemon.driver.buffer is None and "handover_buffer" not in daemon.status()["daemon"]


# ------------------------------------------------------------------------------ hostapd's socket


def test_hostapd_events_over_a_real_unix_socket(tmp_path: Path):
    path = str(tmp_path / "wlan0")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    events = HostapdEvents(path, timeout=2.0)
    try:
        # hostapd's side of ATTACH: the reply goes to the client's bound address
        server.settimeout(2.0)
        reply_to: list[Any] = []

        def serve_one() -> bytes:
            data, addr = server.recvfrom(64)
            reply_to.append(addr)
            return data

        import threading

        got: list[bytes] = []
        t = threading.Thread(target=lambda: (got.append(serve_one()), server.sendto(b"OK\n", reply_to[0])))
        t.start()
        events.attach()
        t.join()
        assert got == [b"ATTACH"] and events.attached
        server.sendto(f"<3>AP-STA-DISCONNECTED {MAC}".encode(), reply_to[0])
        assert events.keepalive()
        assert server.recvfrom(64)[0] == b"PING"
        import time

        deadline = time.monotonic() + 2
        messages: list[str] = []
        while not messages and time.monotonic() < deadline:
            messages = events.receive()
        assert parse_ap_event(messages[0]) == (LEFT, MAC)
        # hostapd restarted: its new socket does not know us; the keepalive notices
        server.close()
        os.unlink(path)
        assert not events.keepalive() and not events.attached
        with pytest.raises(OSError):
            events.attach()
    finally:
        events.close()
        server.close()
    assert not os.path.exists(events.local_path)


def test_home_agent_and_ha2_are_distinct():  # the helpers' addresses the tests above rely on
    assert len({HA, HOA, HOA2}) == 3


def test_warm_up_looks_the_table_up_once_and_survives_errors():
    calls: list[str] = []
    buf, _, _, _, stream = buffer()
    buf.neighbours = lambda iface: calls.append(iface) or []
    buf.warm_up()
    assert calls == ["wlan0"]

    def broken(iface: str) -> list[tuple[str, str]]:
        raise RuntimeError("no netlink")

    buf.neighbours = broken
    buf.warm_up()
    assert events(stream)[-1]["level"] == "warning"
