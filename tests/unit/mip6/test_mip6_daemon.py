"""The daemon with fakes: error handling, ESP marking, ND, DAD, the loop, signals, shutdown, CLI."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest
import yaml

from mvpn_lab.cli import main
from mvpn_lab.collection import module_utils
from mvpn_lab.mip6.core.actions import ReceivedPacket, SendMH
from mvpn_lab.mip6.core.clock import FakeClock, SystemClock
from mvpn_lab.mip6.core.config import ConfigError, check_daemon_config, parse_config
from mvpn_lab.mip6.core.log import MHLogger
from mvpn_lab.mip6.core.movement import CachedNetwork
from mvpn_lab.mip6.daemon.control import ControlError, ControlServer, handle_request, query
from mvpn_lab.mip6.daemon.events import EventLog
from mvpn_lab.mip6.daemon.loop import SHUTDOWN_WAIT, Daemon, DaemonError, DaemonIO, parse_iw_ssid
from mvpn_lab.mip6.daemon.mhsocket import IPV6_PKTINFO, SOL_IPV6, pack_pktinfo
from mvpn_lab.mip6.daemon.ndisc import ND_NEIGHBOR_SOLICIT, NdiscPacket, build_na
from mvpn_lab.mip6.daemon.netlink import IFF_RUNNING, IFF_UP
from mvpn_lab.mip6.wire.messages import BindingAcknowledgement, BindingUpdate, decode_mh, encode_mh

from ._daemon_fakes import Runner, cn_config, ha_config, lines, mn_config
from ._helpers import CN, COA1, HA, HOA, HOA2, DetRandom
from ._netsim import FakeNdisc, FakeNetlink
from .test_mip6_kernel import HA_POLICIES
from .test_mip6_ndisc_tcp import ra_bytes
from .test_mip6_netlink import addr, link

UP = IFF_UP | IFF_RUNNING


class FakeMH:
    def __init__(self) -> None:
        self.inbox: list[Any] = []
        self.sent: list[tuple[bytes, IPv6Address, IPv6Address, int]] = []
        self.error: OSError | None = None
        self.closed = False

    def fileno(self) -> int:
        return -1

    def receive(self) -> Any:
        return self.inbox.pop(0) if self.inbox else None

    def send(self, payload: bytes, src: IPv6Address, dst: IPv6Address, ifindex: int = 0) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append((payload, src, dst, ifindex))

    def close(self) -> None:
        self.closed = True


class FakeRaw:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, int]] = []

    def send(self, packet: bytes, ifindex: int = 0) -> None:
        self.sent.append((packet, ifindex))

    def close(self) -> None:
        pass


IFACES = {"lo": 1, "wlan0": 2, "eth1": 3, "mip6tnl": 10}


def make(
    cfg: Any, *, runner: Runner | None = None, clock: Any = None, **io_kw: Any
) -> tuple[Daemon, io.StringIO]:
    clock = clock or FakeClock()
    stream = io.StringIO()
    kw: dict[str, Any] = {
        "runner": runner or Runner(stdout={"sysctl -n": "1\n"}),
        "mh": FakeMH(),
        "ndisc": FakeNdisc(),
        "raw": FakeRaw(),
        "netlink": FakeNetlink() if cfg.role == "mn" else None,
        "ifindex": lambda name: IFACES[name]
        if name in IFACES
        else (_ for _ in ()).throw(OSError(19, "No such device")),
        "ifname": {v: k for k, v in IFACES.items()}.get,
        "lladdr": lambda iface: bytes.fromhex("020000000003"),
    }
    kw.update(io_kw)
    daemon = Daemon(
        cfg,
        DaemonIO(**kw),
        clock=clock,
        events=EventLog(stream, clock, node=cfg.name, role=cfg.role),
        logger=MHLogger(io.StringIO(), clock, node=cfg.name, role=cfg.role),
        random=DetRandom(5),
    )
    return daemon, stream


def mh_item(
    mh: bytes, src: IPv6Address, dst: IPv6Address, ifindex: int = 3, extra: list | None = None
) -> Any:
    return (mh, [(SOL_IPV6, IPV6_PKTINFO, pack_pktinfo(dst, ifindex)), *(extra or [])], (str(src), 0, 0, 0))


HAO_OPT = bytes([135, 2, 1, 2, 0, 0, 0xC9, 16])


def bu_from(hoa: IPv6Address, coa: IPv6Address, seq: int = 1) -> Any:
    mh = encode_mh(BindingUpdate(seq=seq, lifetime=100, ack=True, home=True), src=hoa, dst=HA)
    return mh_item(mh, hoa, HA, extra=[(SOL_IPV6, 59, HAO_OPT + coa.packed)])


# ------------------------------------------------------------------------------ input handling


def test_bad_input_is_counted_and_logged_never_raised():
    daemon, stream = make(ha_config())
    daemon.start()
    mh: FakeMH = daemon.io.mh
    mh.inbox += [
        mh_item(b"\x00\x01garbage", COA1, HA),  # malformed MH: the core counts it
        (b"x" * 8, [], ("::1", 0, 0, 0)),  # no IPV6_PKTINFO: unusable
        (b"x" * 8, [(SOL_IPV6, 59, b"\x87")], ("::1", 0, 0, 0)),  # broken destination options
        mh_item(b"\x00" * 8, IPv6Address("::"), HA),  # an unspecified source
    ]
    daemon.on_mh_readable()
    # 8 zeros: a BRR with Payload Proto 0, not 59
    assert daemon.node.rejected.as_dict() == {"malformed": 1, "bad_payload_proto": 1}
    records = lines(stream)
    warnings = [r for r in records if r["level"] == "warning"]
    assert [w["event"] for w in warnings] == ["mh_dropped", "mh_dropped"]
    assert all("\n" not in json.dumps(w) for w in warnings)
    assert daemon.counters.as_dict() == {"mh_received": 4, "mh_unusable": 2}


def test_an_exception_in_a_handler_is_one_error_line(monkeypatch):
    daemon, stream = make(ha_config())

    def boom() -> None:
        raise RuntimeError("something\nbroke")

    daemon.guard("on_mh_readable", boom)
    (record,) = lines(stream)
    assert record["level"] == "error" and record["event"] == "internal_error"
    assert record["message"] == "on_mh_readable: RuntimeError: something broke"
    assert daemon.counters["internal_errors"] == 1


@pytest.mark.parametrize(
    ("cfg", "pkt", "esp"),
    [
        (
            ha_config(require_ipsec=True, esp_policy_installed=True),
            ReceivedPacket(COA1, HA, b"", hao=HOA),
            True,
        ),
        (ha_config(require_ipsec=True, esp_policy_installed=True), ReceivedPacket(HOA2, HA, b""), True),
        (ha_config(require_ipsec=True, esp_policy_installed=True), ReceivedPacket(COA1, HA, b""), False),
        (
            ha_config(require_ipsec=True, esp_policy_installed=True, allowed_mobile_nodes=None),
            ReceivedPacket(COA1, HA, b"", hao=IPv6Address("2001:db8:1::77")),
            True,
        ),
        (ha_config(require_ipsec=False), ReceivedPacket(COA1, HA, b"", hao=HOA), False),
        (
            mn_config(require_ipsec=True, esp_policy_installed=True),
            ReceivedPacket(HA, COA1, b"", rh2=HOA),
            True,
        ),
        (
            mn_config(require_ipsec=True, esp_policy_installed=True),
            ReceivedPacket(CN, COA1, b"", rh2=HOA),
            False,
        ),
        (cn_config(), ReceivedPacket(COA1, CN, b"", hao=HOA), False),
    ],
)
def test_esp_marking_follows_the_declared_policy(cfg, pkt, esp):
    daemon, _ = make(cfg)
    assert daemon.esp_for(pkt) is esp


def test_protected_bu_reaches_the_home_agent_as_esp():
    # the ipsec role's signalling policies on the HA, for both allowed home addresses
    listing = HA_POLICIES + HA_POLICIES.replace(str(HOA), str(HOA2))
    runner = Runner(stdout={"ip -6 xfrm policy list": listing})
    daemon, _ = make(ha_config(require_ipsec=True, esp_policy_installed=True), runner=runner)
    daemon.start()
    daemon.io.mh.inbox.append(bu_from(HOA, COA1))
    daemon.on_mh_readable()
    assert daemon.node.cache.get(HOA).careof_address == COA1
    (payload, src, dst, _), *_ = daemon.io.mh.sent
    assert (src, dst) == (HA, HOA) and isinstance(decode_mh(payload), BindingAcknowledgement)


def test_each_answer_is_logged_with_its_processing_and_kernel_time():
    """The BA's "answer" line times it from the wake-up for the BU; here each kernel command
    takes 4 ms of the fake clock and the handler 1 ms before them, nothing else takes time."""
    clock = FakeClock()

    class SlowRunner(Runner):
        def __call__(self, argv: Any) -> Any:
            clock.advance(0.004)
            return super().__call__(argv)

    class WatchedMH(FakeMH):
        def send(self, payload: bytes, src: IPv6Address, dst: IPv6Address, ifindex: int = 0) -> None:
            super().send(payload, src, dst, ifindex)
            self.commands_before_send = len(runner.lines)

    runner = SlowRunner(stdout={"sysctl -n": "1\n"})
    daemon, stream = make(ha_config(), runner=runner, clock=clock, mh=WatchedMH())
    daemon.start()
    runner.take()
    clock.advance(1.0)  # idle time before the BU is not the daemon's
    daemon.io.mh.inbox.append(bu_from(HOA, COA1))
    daemon.begin_trigger("on_mh_readable")
    clock.advance(0.001)
    daemon.on_mh_readable()
    before = daemon.io.mh.commands_before_send
    (answer,) = [r for r in lines(stream) if r["event"] == "answer"]
    assert before >= 1 and answer["kernel_commands"] == before
    assert answer["message"] == "BA" and answer["dst"] == str(HOA) and answer["trigger"] == "on_mh_readable"
    # the fields the run folder's reader takes (module_utils/runfolder.ANSWER_FIELDS)
    assert set(module_utils("runfolder").ANSWER_FIELDS) <= set(answer)
    assert answer["kernel_ms"] == pytest.approx(4.0 * before)
    assert answer["processing_ms"] == pytest.approx(4.0 * before + 1.0)
    assert len(runner.take()) > before  # the tunnel, route and proxy follow the BA


def test_the_home_agent_caps_lifetimes_at_its_home_prefix_s_valid_lifetime():
    """The HA reads its own address's valid lifetime at start (ip -j addr, as the kernel prints
    it) and grants no binding beyond it; a static address (forever) caps nothing."""

    def addr_json(valid: int) -> str:
        info = {"family": "inet6", "local": str(HA), "prefixlen": 64, "valid_life_time": valid}
        return json.dumps([{"ifname": "eth1", "addr_info": [info]}])

    runner = Runner(stdout={"sysctl -n": "1\n", "ip -6 -j addr show dev eth1": addr_json(100)})
    daemon, stream = make(ha_config(), runner=runner)
    daemon.start()
    assert [r["valid_seconds"] for r in lines(stream) if r["event"] == "home_prefix_lifetime"] == [100.0]
    daemon.io.mh.inbox.append(bu_from(HOA, COA1))
    daemon.on_mh_readable()
    (payload, *_), *_ = daemon.io.mh.sent
    assert decode_mh(payload).lifetime == 25  # 100 s, not the 100 units (400 s) asked for
    forever = Runner(stdout={"sysctl -n": "1\n", "ip -6 -j addr show dev eth1": addr_json(4294967295)})
    daemon, _ = make(ha_config(), runner=forever)
    daemon.start()
    daemon.io.mh.inbox.append(bu_from(HOA, COA1))
    daemon.on_mh_readable()
    (payload, *_), *_ = daemon.io.mh.sent
    assert decode_mh(payload).lifetime == 100


def test_start_fails_with_one_line_when_the_kernel_says_no():
    runner = Runner(fail={"ip -6 xfrm state add": (2, "Error: Requested type not found.")})
    daemon, _ = make(cn_config(), runner=runner)
    with pytest.raises(
        DaemonError, match=r"'ip -6 xfrm state add .* failed: Error: Requested type not found\.$"
    ):
        daemon.start()


def test_send_failures_are_logged():
    daemon, stream = make(cn_config())
    daemon.io.mh.error = OSError(101, "Network is unreachable")
    daemon._execute(SendMH(CN, COA1, BindingAcknowledgement(status=0, seq=1, lifetime=1)))
    assert lines(stream)[-1]["message"] == f"BA from {CN} to {COA1}: Network is unreachable"
    assert daemon.counters["mh_send_failed"] == 1


# ------------------------------------------------------------------------------ movement inputs


def test_l2_link_up_sends_a_router_solicitation_and_ra_is_validated():
    daemon, stream = make(mn_config(movement_detection="l2", prefix_cache=True))
    daemon.start()
    daemon.io.netlink.queue += [link(2, "wlan0", UP), addr(2, "fe80::100", 0x80)]
    daemon.driver.on_netlink_readable()
    # the network name for the prefix cache, then the stale routers' listing (not home: first)
    assert daemon.io.runner.lines[-2:] == [
        "iw dev wlan0 link",
        "ip -6 -j route show default dev wlan0 proto ra",
    ]
    (rs, dst, ifindex, src), *_ = daemon.io.ndisc.sent
    assert rs[0] == 133 and dst == IPv6Address("ff02::2") and ifindex == 2 and src is None
    nd: FakeNdisc = daemon.io.ndisc
    good = ra_bytes(("2001:db8:2::", 64, 1, 3600))
    nd.inbox += [
        NdiscPacket(good, IPv6Address("fe80::1"), 2, 254),  # hop limit not 255: forged or forwarded
        NdiscPacket(good, IPv6Address("2001:db8:2::1"), 2, 255),  # not from a link-local address
        NdiscPacket(good, IPv6Address("fe80::1"), 1, 255),  # not a watched interface
        NdiscPacket(good[:10], IPv6Address("fe80::1"), 2, 255),  # truncated
        NdiscPacket(good, IPv6Address("fe80::1"), 2, 255),
    ]
    daemon.on_ndisc_readable()
    events = [(r["event"], r["level"]) for r in lines(stream)]
    assert events.count(("ndisc_dropped", "warning")) == 1 and events.count(("ra_dropped", "warning")) == 2
    assert daemon.counters["ra_received"] == 1
    assert daemon.node.detector.links["wlan0"].prefixes == {IPv6Network("2001:db8:2::/64")}
    assert daemon.driver.translator.iids["wlan0"] == 0x100


def test_prefix_cache_is_saved_on_an_ra_and_loaded_at_the_next_start(tmp_path):
    cache_file = tmp_path / "state" / "prefix_cache.json"
    cfg = mn_config(
        movement_detection="l2", optimistic_dad=True, prefix_cache=True, prefix_cache_file=str(cache_file)
    )
    runner = Runner(stdout={"sysctl -n": "1\n", "iw dev wlan0 link": "Connected\n\tSSID: VISITME\n"})
    daemon, _ = make(cfg, runner=runner)
    daemon.start()
    daemon.io.netlink.queue += [link(2, "wlan0", UP), addr(2, "fe80::100", 0x80)]
    daemon.driver.on_netlink_readable()
    daemon.io.ndisc.inbox.append(
        NdiscPacket(ra_bytes(("2001:db8:2::", 64, 1, 3600)), IPv6Address("fe80::1"), 2, 255)
    )
    daemon.on_ndisc_readable()
    assert json.loads(cache_file.read_text()) == {
        "VISITME": {"prefix": "2001:db8:2::/64", "router": "fe80::1"}
    }

    # a restarted daemon predicts the care-of address and routes via the router at link-up
    runner2 = Runner(stdout={"sysctl -n": "1\n", "iw dev wlan0 link": "Connected\n\tSSID: VISITME\n"})
    dump = [link(2, "wlan0", 0), addr(2, "fe80::100", 0x80)]  # down, link-local address kept
    again, stream = make(cfg, runner=runner2, netlink_dump=lambda: dump)
    again.start()
    assert ("prefix_cache_loaded", 1) in [(r["event"], r.get("networks")) for r in lines(stream)]
    again.io.netlink.queue.append(link(2, "wlan0", UP))
    again.driver.on_netlink_readable()
    commands = runner2.take()
    route = "ip -6 route replace default via fe80::1 dev wlan0 metric 1023 proto ra"
    address = "ip -6 addr replace 2001:db8:2::100/64 dev wlan0 optimistic"
    assert route in commands, commands
    assert address in commands, "\n".join(commands)
    assert commands.index(route) < commands.index(address)


def _link_up_commands(daemon: Daemon) -> list[str]:
    """Start the daemon, bring wlan0 up, and return the commands that link-up ran."""
    daemon.start()
    daemon.io.runner.take()
    daemon.io.netlink.queue += [link(2, "wlan0", UP), addr(2, "fe80::100", 0x80)]
    daemon.driver.on_netlink_readable()
    return daemon.io.runner.take()


def test_back_on_a_cached_home_link_the_deregistration_goes_before_the_old_routers_routes():
    cfg = mn_config(movement_detection="l2", prefix_cache=True)
    gateways = lambda iface: ["fe80::9", "fe80::1"]  # noqa: E731 (the old router's, the home router's)
    daemon, stream = make(cfg, ra_default_gateways=gateways, ssid=lambda iface: "LOCAL")
    daemon.node.detector.cache["LOCAL"] = CachedNetwork(cfg.home_prefix, IPv6Address("fe80::1"))
    daemon.start()
    daemon.io.netlink.queue += [addr(2, "fe80::100", 0x80)]  # the interface identifier
    daemon.driver.on_netlink_readable()
    daemon.node.move_to(COA1)  # away (its BU is not answered)
    daemon.drain()
    stream.seek(0)
    stream.truncate()
    daemon.io.netlink.queue += [link(2, "wlan0", UP)]
    daemon.driver.on_netlink_readable()
    order = [r["event"] for r in lines(stream) if r["event"] in ("answer", "stale_router_dropped")]
    assert order == ["answer", "stale_router_dropped"]
    # the home router's route stays: the RA answering the RS sent at link-up may have renewed it
    assert [c for c in daemon.io.runner.lines if "route del default" in c] == [
        "ip -6 route del default via fe80::9 dev wlan0 proto ra"
    ]
    (bu,) = [r for r in lines(stream) if r["event"] == "answer"]
    assert bu["message"] == "BU" and bu["dst"] == str(HA)
    assert daemon.node.home.state == "deregistering"


def test_a_new_router_s_stale_routes_go_after_the_bu_only_when_link_up_dropped_them_already():
    cfg = mn_config()  # movement detection by RA
    asked: list[str] = []

    def gateways(iface: str) -> list[str]:
        asked.append(iface)
        return ["fe80::9", "fe80::1"]

    daemon, stream = make(cfg, ra_default_gateways=gateways)
    daemon.start()
    daemon.io.netlink.queue += [link(2, "wlan0", UP), addr(2, "fe80::100", 0x80)]
    daemon.driver.on_netlink_readable()  # link-up: every router's default route goes
    assert asked == ["wlan0"]
    stream.seek(0)
    stream.truncate()

    def ra_from(router: str, prefix: str) -> None:
        # as on the twin: the kernel's SLAAC (optimistic DAD) reports the care-of address before
        # the daemon reads the RA, so the RA is what sends the BU
        daemon.io.netlink.queue.append(addr(2, prefix.replace("::", "::100"), 0))
        daemon.driver.on_netlink_readable()
        ra = ra_bytes((prefix, 64, 1, 3600))
        daemon.io.ndisc.inbox.append(NdiscPacket(ra, IPv6Address(router), 2, 255))
        daemon.on_ndisc_readable()

    # the first RA after the link-up: the BU first, the look-up and deletions after it
    ra_from("fe80::1", "2001:db8:2::")
    order = [r["event"] for r in lines(stream) if r["event"] in ("answer", "stale_router_dropped")]
    assert order[:2] == ["answer", "stale_router_dropped"], order
    assert asked == ["wlan0", "wlan0"]
    stream.seek(0)
    stream.truncate()
    # another router on the same link, no link change: its predecessor's route goes before the BU
    ra_from("fe80::9", "2001:db8:3::")
    order = [r["event"] for r in lines(stream) if r["event"] in ("answer", "stale_router_dropped")]
    assert order[:2] == ["stale_router_dropped", "answer"], order
    assert asked == ["wlan0", "wlan0", "wlan0"]


def test_the_first_bu_after_a_link_up_says_how_long_since_the_link_up():
    # l2 with the prefix cache: the BU waits for the kernel's report of the predicted address, a
    # later wake-up; since_link_up_ms counts from the link-up's, processing_ms from the last one
    cfg = mn_config(movement_detection="l2", prefix_cache=True, optimistic_dad=True)
    clock = FakeClock()
    daemon, stream = make(cfg, clock=clock, ra_default_gateways=lambda iface: [], ssid=lambda i: "VISITME")
    daemon.node.detector.cache["VISITME"] = CachedNetwork(
        IPv6Network("2001:db8:2::/64"), IPv6Address("fe80::1")
    )
    daemon.start()
    daemon.io.netlink.queue += [addr(2, "fe80::100", 0x80)]
    daemon.driver.on_netlink_readable()
    daemon.begin_trigger("on_netlink_readable")
    daemon.io.netlink.queue.append(link(2, "wlan0", UP))
    daemon.driver.on_netlink_readable()
    clock.advance(0.05)
    daemon.begin_trigger("on_netlink_readable")
    daemon.io.netlink.queue.append(addr(2, "2001:db8:2::100", 0x04 | 0x40 | 0x80))  # optimistic
    daemon.driver.on_netlink_readable()
    (bu,) = [r for r in lines(stream) if r["event"] == "answer"]
    assert bu["message"] == "BU" and bu["dst"] == str(HA)
    assert bu["since_link_up_ms"] == 50.0 and bu["processing_ms"] == 0.0
    # a refresh later is not a handover's BU: no such field
    clock.advance(400)
    daemon.fire_timers()
    later = [r for r in lines(stream) if r["event"] == "answer"][1:]
    assert later and all("since_link_up_ms" not in r for r in later)


def test_link_up_look_ups_go_in_process_and_fall_back_to_ip_and_iw():
    cfg = mn_config(movement_detection="l2", prefix_cache=True)
    asked: list[str] = []

    def gateways(iface: str) -> list[str]:
        asked.append(f"gw {iface}")
        return ["fe80::1", "fe80::2"]

    def ssid(iface: str) -> str:
        asked.append(f"ssid {iface}")
        return "VISITME"

    daemon, _ = make(cfg, ra_default_gateways=gateways, ssid=ssid)
    commands = _link_up_commands(daemon)
    assert asked == ["ssid wlan0", "gw wlan0"]
    assert not [c for c in commands if c.startswith(("ip -6 -j route", "iw "))]
    assert [c for c in commands if "route del default" in c] == [
        "ip -6 route del default via fe80::1 dev wlan0 proto ra",
        "ip -6 route del default via fe80::2 dev wlan0 proto ra",
    ]
    assert daemon.node.detector.links["wlan0"].network == "VISITME"

    def broken(iface: str) -> Any:
        raise OSError("netlink gone")

    daemon, stream = make(cfg, ra_default_gateways=broken, ssid=broken)
    commands = _link_up_commands(daemon)
    assert "ip -6 -j route show default dev wlan0 proto ra" in commands and "iw dev wlan0 link" in commands
    assert [r["event"] for r in lines(stream)].count("netlink_query_failed") == 2


@pytest.mark.parametrize("flags, event", [(0x08 | 0x40, "RTM_NEWADDR"), (0x08 | 0x40 | 0x04, "RTM_DELADDR")])
def test_home_address_lost_at_home_is_added_back_without_dad(flags, event):
    # DAD of SLAAC's copy failed against the home agent's proxy: kept dadfailed, or deleted
    daemon, stream = make(mn_config())
    daemon.start()
    daemon.io.netlink.queue += [link(2, "wlan0", UP), addr(2, "fe80::100", 0x80)]
    daemon.driver.on_netlink_readable()
    daemon.node.location = "home"
    daemon.io.runner.take()
    daemon.io.netlink.queue.append(addr(2, str(HOA), flags, event=event))
    daemon.driver.on_netlink_readable()
    assert f"ip -6 addr add {HOA}/64 dev wlan0 nodad" in daemon.io.runner.take()
    assert "home_address_readded" in [r["event"] for r in lines(stream)]
    # removed by hand (e.g. a playbook clearing the link): not put back
    daemon.io.netlink.queue.append(addr(2, str(HOA), 0, event="RTM_DELADDR"))
    daemon.driver.on_netlink_readable()
    assert not [c for c in daemon.io.runner.take() if "nodad" in c]
    daemon.node.location = "away"  # away, the home address is not on the link: nothing to do
    daemon.io.netlink.queue.append(addr(2, str(HOA), 0, event="RTM_DELADDR"))
    daemon.driver.on_netlink_readable()
    assert not [c for c in daemon.io.runner.take() if "nodad" in c]


def test_an_unreadable_prefix_cache_file_is_reported_and_ignored(tmp_path):
    cache_file = tmp_path / "prefix_cache.json"
    cache_file.write_text("{not json")
    cfg = mn_config(movement_detection="l2", prefix_cache=True, prefix_cache_file=str(cache_file))
    daemon, stream = make(cfg)
    daemon.start()
    assert "prefix_cache_unreadable" in [r["event"] for r in lines(stream)]
    assert daemon.node.detector.cache == {}


def test_parse_iw_ssid():
    assert (
        parse_iw_ssid("Connected to 02:00:00:00:01:00 (on wlan0)\n\tSSID: VISITME\n\tfreq: 2437\n")
        == "VISITME"
    )
    assert parse_iw_ssid("Not connected.\n") is None


def test_initial_dump_feeds_the_mobile_node_and_solicits():
    daemon, _ = make(
        mn_config(),
        netlink_dump=lambda: [link(2, "wlan0", UP), addr(2, "fe80::100", 0x80), addr(2, str(COA1), 0)],
    )
    daemon.start()
    assert daemon.node.detector.links["wlan0"].addresses == {COA1: "preferred"}
    assert [s[1] for s in daemon.io.ndisc.sent] == [IPv6Address("ff02::2")]


# ------------------------------------------------------------------------------ home agent extras


def test_dad_before_a_first_registration():
    daemon, stream = make(ha_config(perform_dad=True))
    daemon.start()
    daemon.io.mh.inbox.append(bu_from(HOA, COA1))
    daemon.on_mh_readable()
    ((probe, ifindex),) = daemon.io.raw.sent
    assert ifindex == 3 and probe[40] == ND_NEIGHBOR_SOLICIT and IPv6Address(probe[48:64]) == HOA
    assert daemon.io.mh.sent == []  # waiting for DAD
    daemon.clock.advance(1.0)
    daemon.fire_timers()
    assert daemon.node.cache.get(HOA) is not None
    # a defended address: BA 134
    daemon.io.mh.inbox.append(bu_from(HOA2, COA1))
    daemon.on_mh_readable()
    daemon.io.ndisc.inbox.append(NdiscPacket(build_na(HOA2, None), IPv6Address("fe80::9"), 3, 255))
    daemon.on_ndisc_readable()
    assert decode_mh(daemon.io.mh.sent[-1][0]).status == 134
    daemon.clock.advance(1.0)
    daemon.fire_timers()  # the timer finds the decision made
    assert daemon.node.cache.get(HOA2) is None and daemon.node.rejected["dad_failed"] == 1
    assert [r["event"] for r in lines(stream) if r["event"] == "dad_failed"] == ["dad_failed"]


@pytest.mark.parametrize(
    "content, wait, warned",
    [("200\n", 0.2, False), ("0\n", 1.0, True), ("lots\n", 1.0, True), (None, 1.0, True)],
)
def test_dad_waits_the_home_link_s_retrans_timer(tmp_path, content, wait, warned):
    daemon, stream = make(ha_config(perform_dad=True))
    daemon.driver.proc_sys = tmp_path
    if content is not None:
        leaf = tmp_path / "net" / "ipv6" / "neigh" / "eth1" / "retrans_time_ms"
        leaf.parent.mkdir(parents=True)
        leaf.write_text(content)
    daemon.start()
    daemon.io.mh.inbox.append(bu_from(HOA, COA1))
    daemon.on_mh_readable()
    daemon.clock.advance(wait - 0.01)
    daemon.fire_timers()
    assert daemon.io.mh.sent == []  # still waiting for a defence
    daemon.clock.advance(0.02)
    daemon.fire_timers()
    assert decode_mh(daemon.io.mh.sent[-1][0]).status == 0
    warnings = [r for r in lines(stream) if r["event"] == "retrans_timer_unreadable"]
    assert bool(warnings) == warned
    if warned:
        assert "retrans_time_ms" in warnings[0]["message"] and "DAD waits 1 s" in warnings[0]["message"]


def test_proxy_ndp_advertisements_repeat():
    daemon, _ = make(ha_config())
    daemon.start()
    daemon.io.mh.inbox.append(bu_from(HOA, COA1))
    daemon.on_mh_readable()
    assert len(daemon.io.ndisc.sent) == 1
    for _ in range(3):
        daemon.clock.advance(1.0)
        daemon.fire_timers()
    sent = daemon.io.ndisc.sent
    assert len(sent) == 3 and {(s[1], s[2], s[3]) for s in sent} == {(IPv6Address("ff02::1"), 3, HA)}
    na = sent[0][0]
    assert (
        na[0] == 136
        and na[4] == 0x20
        and IPv6Address(na[8:24]) == HOA
        and na[-6:] == bytes.fromhex("020000000003")
    )


# ------------------------------------------------------------------------------ shutdown and loop


def _registered_mn(**kw: Any) -> Daemon:
    daemon, _ = make(mn_config(**kw))
    daemon.start()
    mn = daemon.node
    mn.move_to(COA1)
    daemon.drain()
    bu = decode_mh(daemon.io.mh.sent[-1][0])
    ba = encode_mh(BindingAcknowledgement(status=0, seq=bu.seq, lifetime=100), src=HA, dst=HOA)
    daemon.io.mh.inbox.append(
        mh_item(ba, HA, HOA, 2, [(SOL_IPV6, 57, bytes([135, 2, 2, 0, 0, 0, 0, 0]) + COA1.packed)])
    )
    daemon.on_mh_readable()
    assert mn.home.state == "registered"
    return daemon


def test_shutdown_deregisters_and_waits_for_the_ba_at_most_shutdown_wait():
    daemon = _registered_mn()
    daemon.begin_shutdown()
    payload, src, dst, _ = daemon.io.mh.sent[-1]
    bu = decode_mh(payload)
    assert (bu.lifetime, bu.home, src, dst) == (0, True, HOA, HA)  # the HAO state makes the source the CoA
    assert not daemon.shutdown_complete()
    assert daemon.next_timeout() == SHUTDOWN_WAIT
    daemon.clock.advance(SHUTDOWN_WAIT)
    assert daemon.shutdown_complete()
    daemon.finish_shutdown()
    assert daemon.events.counts["warning"] == 1  # deregistration_unanswered
    assert daemon.io.mh.closed


def test_no_deregistration_when_not_configured():
    daemon = _registered_mn(deregister_on_exit=False, cleanup_on_exit=False)
    sent = len(daemon.io.mh.sent)
    daemon.io.runner.take()
    daemon.begin_shutdown()
    assert daemon.shutdown_complete() and len(daemon.io.mh.sent) == sent
    daemon.finish_shutdown()
    assert daemon.io.runner.take() == []  # nothing removed either


class _SelectableMH(FakeMH):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = socket.socketpair()

    def fileno(self) -> int:
        return self.a.fileno()

    def close(self) -> None:
        super().close()
        self.a.close()
        self.b.close()


def test_run_loop_serves_timers_and_stops_on_sigterm(tmp_path, monkeypatch):
    notify_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_sock.bind(str(tmp_path / "notify"))
    notify_sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    mh = _SelectableMH()
    daemon, stream = make(cn_config(), clock=SystemClock(), mh=mh, ndisc=None, raw=None)
    server = ControlServer(str(tmp_path / "cn.sock"), {"status": daemon.status})
    server.open()
    daemon.io.control = server
    daemon.start()
    ticks: list[float] = []
    daemon.call_later(0.01, "tick", lambda: ticks.append(1.0))
    daemon.call_later(0.05, "term", lambda: os.kill(os.getpid(), signal.SIGTERM))
    before = signal.getsignal(signal.SIGTERM)
    assert daemon.run() == 0
    assert signal.getsignal(signal.SIGTERM) is before
    assert ticks == [1.0] and mh.closed and not (tmp_path / "cn.sock").exists()
    assert [r["event"] for r in lines(stream)][-2:] == ["stopping", "stop"]
    # systemd (Type=notify) heard that the control socket was ready, then that it stops
    assert [notify_sock.recv(64), notify_sock.recv(64)] == [b"READY=1", b"STOPPING=1"]
    notify_sock.close()


# ------------------------------------------------------------------------------ control socket


def test_control_requests_and_errors(tmp_path):
    assert handle_request("status\n", {"status": lambda: {"ok": 1}}) == {"ok": 1}
    assert "unknown command 'nope'" in handle_request("nope", {"status": dict})["error"]
    with pytest.raises(ControlError, match="no daemon control socket at"):
        query(str(tmp_path / "missing.sock"))
    path = tmp_path / "x.sock"
    path.write_text("not a socket")
    with pytest.raises(ControlError, match="exists and is not a socket"):
        ControlServer(str(path), {}).open()
    # a stale socket file (no daemon behind it) is replaced
    stale = tmp_path / "stale.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(stale))
    sock.close()
    server = ControlServer(str(stale), {})
    server.open()
    with pytest.raises(ControlError, match="another daemon listens"):
        ControlServer(str(stale), {}).open()
    server.close()
    assert not stale.exists()


def test_status_cli_without_a_daemon(tmp_path, capsys):
    assert main(["mip6", "status", "--socket", str(tmp_path / "none.sock")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"mvpn-lab: error: no daemon control socket at {tmp_path}/none.sock"
    )


# ------------------------------------------------------------------------------ configuration


MN_DAEMON = {
    "role": "mn",
    "name": "mn1",
    "home_address": "2001:db8:1::100",
    "home_agent": "2001:db8:1::1",
    "interfaces": ["wlan0"],
    "tunnel_name": "mip6mn",
    "table": 42,
    "rule_priority": 900,
    "tcp_recovery": True,
    "require_ipsec": True,
    "esp_policy_installed": True,
    "control_socket": "/run/lab/mn1.sock",
    "daemon_log": "/var/log/mn1-daemon.jsonl",
}


def test_daemon_fields_parse():
    cfg = parse_config(MN_DAEMON)
    assert (cfg.tunnel_name, cfg.table, cfg.rule_priority, cfg.tcp_recovery) == ("mip6mn", 42, 900, True)
    assert cfg.control_socket == "/run/lab/mn1.sock" and cfg.deregister_on_exit and cfg.cleanup_on_exit
    check_daemon_config(cfg)
    assert parse_config({**MN_DAEMON, "control_socket": None}).control_socket == "/run/mvpn-lab/mip6-mn1.sock"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tunnel_name": "a-very-long-tunnel-name"}, "config field 'tunnel_name': not an interface name"),
        ({"tunnel_name": "bad name"}, "config field 'tunnel_name'"),
        ({"table": 254}, "config field 'table': 254 is a reserved table"),
        ({"table": 0}, "config field 'table': 0 is outside"),
        ({"rule_priority": 40000}, "config field 'rule_priority'"),
        ({"control_socket": "relative.sock"}, "config field 'control_socket': expected an absolute path"),
        ({"tcp_recovery": "yes"}, "config field 'tcp_recovery': expected true or false"),
        ({"interfaces": ["wlan0", "x" * 16]}, r"config field 'interfaces\[1\]'"),
        ({"name": "mn 1"}, "config field 'name': use letters"),
    ],
)
def test_daemon_field_errors_name_the_field(change, message):
    with pytest.raises(ConfigError, match=f"^{message}"):
        parse_config({**MN_DAEMON, **change})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {**MN_DAEMON, "interfaces": []},
            "config field 'interfaces': the daemon needs at least one interface",
        ),
        ({**MN_DAEMON, "esp_policy_installed": False}, "config field 'esp_policy_installed': require_ipsec"),
        ({**MN_DAEMON, "tunnel_name": "wlan0"}, "config field 'tunnel_name': wlan0 is also listed"),
        (
            {
                "role": "ha",
                "address": "2001:db8:1::1",
                "home_prefix": "2001:db8:1::/64",
                "allowed_mobile_nodes": "any",
                "require_ipsec": False,
            },
            "config field 'interface': the daemon needs the home link",
        ),
    ],
)
def test_run_refuses_configs_the_daemon_cannot_use(tmp_path, capsys, data, message):
    path = tmp_path / "node.yml"
    path.write_text(yaml.safe_dump(data))
    assert main(["mip6", "run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mvpn-lab: error: {message}") and err.count("\n") == 1


def test_ha_tunnel_prefix_length_leaves_room_for_the_suffix():
    base = {
        "role": "ha",
        "address": "2001:db8:1::1",
        "home_prefix": "2001:db8:1::/64",
        "allowed_mobile_nodes": "any",
    }
    assert parse_config({**base, "tunnel_name": "abcdefghi"}).tunnel_name == "abcdefghi"
    with pytest.raises(ConfigError, match=r"^config field 'tunnel_name': not an interface name of at most 9"):
        parse_config({**base, "tunnel_name": "abcdefghij"})


def test_check_config_json_shows_daemon_fields(tmp_path, capsys):
    path = tmp_path / "mn.yml"
    path.write_text(yaml.safe_dump(MN_DAEMON))
    assert main(["mip6", "check-config", "--json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["table"] == 42 and out["control_socket"] == "/run/lab/mn1.sock" and out["tcp_recovery"] is True


def test_pktinfo_layout_is_native():
    assert pack_pktinfo(HOA, 7)[16:] == struct.pack("=I", 7)


def test_netlink_overrun_rereads_the_state():
    dumps: list[int] = []

    def dump() -> list:
        dumps.append(1)
        return [link(2, "wlan0", UP), addr(2, str(COA1), 0)]

    daemon, stream = make(mn_config(), netlink_dump=dump)
    daemon.start()
    daemon.io.netlink.overruns = 1
    daemon.driver.on_netlink_readable()
    assert len(dumps) == 2 and daemon.node.detector.links["wlan0"].addresses == {COA1: "preferred"}
    assert [r["event"] for r in lines(stream) if r["level"] == "warning"] == ["netlink_overrun"]
    daemon.driver.on_netlink_readable()
    assert len(dumps) == 2  # once per overrun


def test_a_broken_loop_stops_cleanly_with_status_1():
    mh = _SelectableMH()
    mh.a.close()  # fileno() is now -1: the selector refuses it
    daemon, stream = make(cn_config(), clock=SystemClock(), mh=mh, ndisc=None, raw=None)
    daemon.start()
    assert daemon.run() == 1
    records = lines(stream)
    fatal = [r for r in records if r["event"] == "fatal"]
    assert len(fatal) == 1 and fatal[0]["message"].startswith("event loop: ValueError")
    assert records[-1]["event"] == "stop" and daemon.stopped


def test_l2_mode_solicits_once_at_start():
    daemon, _ = make(mn_config(movement_detection="l2"), netlink_dump=lambda: [link(2, "wlan0", UP)])
    daemon.start()
    assert [s[1] for s in daemon.io.ndisc.sent] == [IPv6Address("ff02::2")]  # from the core's link-up


def test_live_mobile_node_daemon_in_a_network_namespace(tmp_path):
    """`mip6 run` for real (sockets, rtnetlink, sysctl, xfrm sub policies, control socket,
    SIGTERM) in a throwaway network namespace. Only the MN role: the host kernel lacks the
    Mobile IPv6 xfrm types the HA and CN install at start."""
    import shutil
    import subprocess
    import sys
    import time

    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare and iproute2")
    cfg = {
        **{k: v for k, v in MN_DAEMON.items() if k not in ("esp_policy_installed", "daemon_log")},
        "interfaces": ["lo"],
        "require_ipsec": False,
        "control_socket": str(tmp_path / "mn.sock"),
        "daemon_log": str(tmp_path / "daemon.jsonl"),
        "log_file": str(tmp_path / "mh.jsonl"),
    }
    path = tmp_path / "mn.yml"
    path.write_text(yaml.safe_dump(cfg))
    command = f"ip link set lo up && exec {sys.executable} -m mvpn_lab.cli mip6 run --config {path}"
    proc = subprocess.Popen(["unshare", "-n", "sh", "-c", command], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "mn.sock").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is not None:
            pytest.skip(f"could not start in a namespace: {proc.stderr.read().strip()[:200]}")
        status = query(str(tmp_path / "mn.sock"))
        assert status["role"] == "mn" and status["movement"]["links"]["lo"]["up"] is True
        assert status["daemon"]["kernel"]["xfrm_policies"] == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    records = [json.loads(line) for line in (tmp_path / "daemon.jsonl").read_text().splitlines()]
    events = [r["event"] for r in records]
    # this host's kernel has no ip6_tnl: the tunnel is not prepared at start (a warning, no error)
    events = [e for e in events if e != "tunnel_not_prepared"]
    assert events[0] == "start" and events[-2:] == ["stopping", "stop"] and "link" in events
    # the only error: a router solicitation cannot leave the loopback interface
    assert {r["event"] for r in records if r["level"] == "error"} == {"rs_not_sent"}
    assert not (tmp_path / "mn.sock").exists()
