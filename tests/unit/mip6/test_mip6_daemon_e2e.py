"""MN, HA and CN daemons end to end, in one process: simulated kernels, in-memory sockets.

The mobile node starts on a foreign link (netlink: link up, link-local address; an RA with the
foreign prefix; the care-of address preferred), registers with its home agent (ESP required,
kernel-enforced in the simulation), runs return routability and binds with the correspondent,
then moves (link down, link up, RA with another prefix, new address). The test checks the kernel
command sequences of each node, that every Mobility Header message crossed the simulated kernels
(HAO/RH2 through xfrm states, HoTI/HoT through the tunnel), the TCP recovery probes, the status
JSON through the control socket, and the clean shutdown with deregistration.
"""

from __future__ import annotations

import io
import json
import threading
import time
from ipaddress import IPv6Address
from typing import Any

from mvpn_lab.cli import main
from mvpn_lab.mip6.core.clock import FakeClock
from mvpn_lab.mip6.core.config import CNConfig, HAConfig, MNConfig
from mvpn_lab.mip6.core.log import MHLogger
from mvpn_lab.mip6.daemon.control import ControlServer, query
from mvpn_lab.mip6.daemon.events import EventLog
from mvpn_lab.mip6.daemon.kernel.base import tunnel_name_for
from mvpn_lab.mip6.daemon.loop import Daemon, DaemonIO
from mvpn_lab.mip6.daemon.ndisc import NdiscPacket

from ._daemon_fakes import FakeSocket
from ._helpers import CN, COA1, COA2, FOREIGN1, FOREIGN2, HA, HOA, HOME_PREFIX, DetRandom
from ._netsim import FakeNdisc, FakeNetlink, SimNet, SimNode
from .test_mip6_kernel import ESP_LISTING
from .test_mip6_ndisc_tcp import PROC, ra_bytes
from .test_mip6_netlink import UP, addr, link

LL = IPv6Address("fe80::1")
T2 = tunnel_name_for("mip6ha", COA2)
TH = tunnel_name_for("mip6ha", HOA)  # the HA prepares it at start


class Lab:
    def __init__(self, tmp_path: Any, *, mode: str = "ro") -> None:
        self.clock = FakeClock()
        self.net = SimNet()
        self.mn = self.net.add("mn", {COA1}, "wlan0")
        self.ha = self.net.add("ha", {HA}, "eth1", forwards=True)
        self.cn = self.net.add("cn", {CN}, "eth0")
        for node in (self.mn, self.ha):
            node.kernel.esp_listing = ESP_LISTING
        self.net.esp_pairs = {(HOA, HA), (HA, HOA)}
        self.ha.esp_required = {(HOA, HA)}
        self.mn.esp_required = {(HA, HOA)}
        self.logs: dict[str, io.StringIO] = {}
        self.mh_logs: dict[str, io.StringIO] = {}
        self.raw: list[bytes] = []
        extra = {"mode": "ro", "correspondents": (CN,), "cn_ack": True} if mode == "ro" else {}
        self.mn_cfg = MNConfig(
            home_address=HOA,
            home_agent=HA,
            interfaces=("wlan0",),
            require_ipsec=True,
            esp_policy_installed=True,
            tcp_recovery=True,
            control_socket=str(tmp_path / "mn.sock"),
            **extra,
        )
        ha_cfg = HAConfig(
            address=HA,
            home_prefix=HOME_PREFIX,
            allowed_mobile_nodes=(HOA,),
            interface="eth1",
            require_ipsec=True,
            esp_policy_installed=True,
        )
        self.ha_daemon = self._daemon(self.ha, ha_cfg, 1)
        # the home link's RetransTimer as a Linux home agent has it: RFC 4861's default
        retrans = tmp_path / "ha-proc" / "net" / "ipv6" / "neigh" / str(ha_cfg.interface) / "retrans_time_ms"
        retrans.parent.mkdir(parents=True)
        retrans.write_text("1000\n")
        self.ha_daemon.driver.proc_sys = tmp_path / "ha-proc"
        self.cn_daemon = self._daemon(self.cn, CNConfig(address=CN), 2)
        self.mn_daemon = self._daemon(self.mn, self.mn_cfg, 3)

    def _daemon(self, node: SimNode, cfg: Any, seed: int) -> Daemon:
        self.logs[node.name] = events = io.StringIO()
        self.mh_logs[node.name] = mh = io.StringIO()
        raw = FakeSocket()
        raw.sendto = lambda data, address: self.raw.append(bytes(data)) or len(data)  # type: ignore[method-assign]
        dio = DaemonIO(
            runner=node.kernel,
            mh=node.mh,
            ndisc=FakeNdisc(),
            raw=_Raw(self.raw),
            netlink=FakeNetlink() if cfg.role == "mn" else None,
            ifindex=node.kernel.ifindex,
            ifname=node.kernel.ifname,
            lladdr=lambda iface: bytes.fromhex("020000000001"),
            read_tcp6=lambda: PROC,
        )
        daemon = Daemon(
            cfg,
            dio,
            clock=self.clock,
            events=EventLog(events, self.clock, node=node.name, role=cfg.role),
            logger=MHLogger(mh, self.clock, node=node.name, role=cfg.role),
            random=DetRandom(seed),
        )
        node.daemon = daemon
        daemon.start()
        return daemon

    # ------------------------------------------------------------------ driving

    def netlink(self, *messages: Any) -> None:
        self.mn_daemon.io.netlink.queue.extend(messages)
        self.mn_daemon.driver.on_netlink_readable()
        self.net.pump()

    def ra(self, prefix: str) -> None:
        data = ra_bytes((prefix, 64, 1, 86400))
        self.mn_daemon.io.ndisc.inbox.append(NdiscPacket(data, LL, 2, 255))
        self.mn_daemon.on_ndisc_readable()
        self.net.pump()

    def run(self, seconds: float) -> None:
        end = self.clock.monotonic() + seconds
        daemons = (self.mn_daemon, self.ha_daemon, self.cn_daemon)
        self.net.pump()
        while True:
            waits = [t for t in (d.next_timeout() for d in daemons) if t is not None]
            if not waits or self.clock.monotonic() + min(waits) > end:
                break
            self.clock.advance(min(waits))
            for d in daemons:
                d.fire_timers()
            self.net.pump()
        self.clock.advance(max(0.0, end - self.clock.monotonic()))

    def errors(self) -> list[dict[str, Any]]:
        return [
            rec
            for text in self.logs.values()
            for rec in map(json.loads, text.getvalue().splitlines())
            if rec["level"] in ("error", "warning")
        ]

    def mh_records(self, node: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.mh_logs[node].getvalue().splitlines()]


class _Raw:
    def __init__(self, sink: list[bytes]) -> None:
        self.sink = sink

    def send(self, packet: bytes, ifindex: int = 0) -> None:
        self.sink.append(packet)

    def close(self) -> None:
        pass


def arrive(lab: Lab) -> None:
    """The MN appears on the foreign link FOREIGN1 with care-of address COA1."""
    lab.netlink(link(2, "wlan0", UP), addr(2, "fe80::100", 0x80))
    lab.ra(str(FOREIGN1.network_address))
    lab.netlink(addr(2, str(COA1), 0))
    lab.run(5)


def move(lab: Lab) -> None:
    """Link down, link up on FOREIGN2, RA, new address COA2 preferred."""
    lab.netlink(link(2, "wlan0", 0x1))
    lab.mn.phys = {COA2}
    lab.netlink(link(2, "wlan0", UP), addr(2, str(COA1), 0, event="RTM_DELADDR"))
    lab.ra(str(FOREIGN2.network_address))
    lab.netlink(addr(2, str(COA2), 0))
    lab.run(5)


def test_start_up_installs_the_static_entries(tmp_path):
    lab = Lab(tmp_path)
    assert lab.cn.kernel.take() == [
        "ip -6 xfrm state add src :: dst :: proto hao mode ro coa :: flag wildrecv",
        "ip -6 xfrm policy update src ::/0 dst ::/0 proto 135 dir in ptype sub priority 30 "
        "tmpl proto hao mode ro level use",
        "ip -6 xfrm policy update src ::/0 dst ::/0 proto 135 type 3 dir out ptype sub priority 10",
    ]
    # the ESP check, then the home prefix's lifetime (the HA's address on the home link)
    assert lab.ha.kernel.take()[-2:] == ["ip -6 xfrm policy list ptype main", "ip -6 -j addr show dev eth1"]
    assert lab.mn.kernel.take()[-4:] == [
        "sysctl -q -w net.ipv4.tcp_invalid_ratelimit=0",
        f"ip -6 tunnel add mip6tnl mode ip6ip6 remote {HA} encaplimit none",  # parked until needed
        "ip link set dev mip6tnl down",
        "ip -6 xfrm policy list ptype main",
    ]
    assert lab.mn_daemon.io.ndisc.sent == []  # wlan0 was not up at start: no RS yet


def test_registration_route_optimisation_and_handover(tmp_path):
    lab = Lab(tmp_path)
    for node in (lab.mn, lab.ha, lab.cn):
        node.kernel.take()
    arrive(lab)
    mn, ha, cn = lab.mn_daemon.node, lab.ha_daemon.node, lab.cn_daemon.node

    assert mn.home.state == "registered" and ha.cache.get(HOA).careof_address == COA1
    assert mn.cns[CN].state == "bound" and cn.cache.get(HOA).careof_address == COA1
    assert lab.mn.kernel.take() == [
        # what the BU needs: the home flag for the BA's routing header, no home prefix on-link
        f"ip -6 addr replace {HOA}/64 dev wlan0 nodad home",
        f"ip -6 route del {HOME_PREFIX} dev wlan0",
        f"ip -6 xfrm state add src {HOA} dst {HA} proto hao mode ro coa {COA1}",
        f"ip -6 xfrm state add src {HA} dst {HOA} proto route2 mode ro coa {COA1}",
        # the BU has left: the home address moves to the tunnel device
        f"ip -6 tunnel change mip6tnl mode ip6ip6 remote {HA} encaplimit none",  # prepared at start
        "ip link set dev mip6tnl up",
        f"ip -6 addr replace {HOA}/128 dev mip6tnl home",
        f"ip -6 addr del {HOA}/64 dev wlan0",
        # the BA
        f"ip -6 tunnel change mip6tnl mode ip6ip6 local {COA1} remote {HA} encaplimit none",
        "ip -6 route replace default dev mip6tnl table 100",
        f"ip -6 rule add from {HOA}/128 table 100 priority 1000",
        f"ip -6 xfrm state add src {HOA} dst {CN} proto hao mode ro coa {COA1}",
        f"ip -6 xfrm policy update src {HOA}/128 dst {CN}/128 dir out ptype sub priority 40 "
        f"tmpl src {HOA} dst {CN} proto hao mode ro level use",
        f"ip -6 xfrm state add src {CN} dst {HOA} proto route2 mode ro coa {COA1}",
        f"ip -6 xfrm policy update src {CN}/128 dst {HOA}/128 dir in ptype sub priority 40 "
        f"tmpl src {CN} dst {HOA} proto route2 mode ro level use",
    ]
    assert lab.ha.kernel.take() == [
        f"ip -6 xfrm state add src {HA} dst {HOA} proto route2 mode ro coa {COA1}",  # for the BA
        # the BA has left: now the data plane
        f"ip -6 tunnel change {TH} mode ip6ip6 local {HA} remote {COA1} encaplimit none",  # prepared
        f"ip link set dev {TH} up",
        f"ip -6 route replace {HOA}/128 dev {TH}",
        "sysctl -q -w net.ipv6.conf.eth1.proxy_ndp=1",
        f"ip -6 neigh add proxy {HOA} dev eth1",
    ]
    assert lab.cn.kernel.take() == [
        f"ip -6 xfrm state add src {CN} dst {HOA} proto route2 mode ro coa {COA1}",
        f"ip -6 xfrm policy update src {CN}/128 dst {HOA}/128 dir out ptype sub priority 40 "
        f"tmpl src {CN} dst {HOA} proto route2 mode ro level use",
        f"ip -6 xfrm state add src {HOA} dst {CN} proto hao mode ro coa {COA1}",
        f"ip -6 xfrm policy update src {HOA}/128 dst {CN}/128 dir in ptype sub priority 40 "
        f"tmpl src {HOA} dst {CN} proto hao mode ro level use",
    ]
    # what crossed the simulated kernels: BU with HAO, BA with RH2, HoTI/HoT via the tunnel,
    # CoTI/CoT direct, BU to the CN with HAO, BA from the CN with RH2
    assert lab.net.delivered == [
        ("ha", 5, True, False),
        ("mn", 6, False, True),
        ("cn", 1, False, False),
        ("cn", 2, False, False),
        ("mn", 3, False, False),
        ("mn", 4, False, False),
        ("cn", 5, True, False),
        ("mn", 6, False, True),
    ]
    hot = [r for r in lab.mh_records("mn") if r["dir"] == "rx" and r["msg"]["type"] == "HoT"]
    assert hot[0]["via_tunnel"] is True and hot[0]["result"] == "accepted"
    ba = [r for r in lab.mh_records("mn") if r["dir"] == "rx" and r["msg"]["type"] == "BA"]
    assert ba[0]["esp"] is True and ba[0]["rh2"] == str(HOA) and ba[0]["dst"] == str(COA1)
    # the home agent announced the home address on the home link, three times
    nas = lab.ha_daemon.io.ndisc.sent
    assert len(nas) == 3 and {(dst, src) for _, dst, _, src in nas} == {(IPv6Address("ff02::1"), HA)}
    assert lab.net.drops == [] and lab.errors() == []

    lab.net.delivered.clear()
    move(lab)
    assert mn.coa == COA2 and mn.home.state == "registered" and mn.cns[CN].state == "bound"
    assert ha.cache.get(HOA).careof_address == COA2 and cn.cache.get(HOA).careof_address == COA2
    assert lab.mn.kernel.take() == [
        f"ip -6 xfrm state update src {HOA} dst {HA} proto hao mode ro coa {COA2}",
        f"ip -6 xfrm state update src {HA} dst {HOA} proto route2 mode ro coa {COA2}",
        f"ip -6 tunnel change mip6tnl mode ip6ip6 local {COA2} remote {HA} encaplimit none",
        f"ip -6 xfrm state update src {HOA} dst {CN} proto hao mode ro coa {COA2}",
        f"ip -6 xfrm state update src {CN} dst {HOA} proto route2 mode ro coa {COA2}",
    ]
    assert lab.ha.kernel.take() == [
        f"ip -6 xfrm state update src {HA} dst {HOA} proto route2 mode ro coa {COA2}",  # for the BA
        # the device of the old binding is parked and re-pointed, not deleted and re-created
        f"ip link set dev {TH} down",
        f"ip -6 tunnel change {TH} mode ip6ip6 local {HA} remote {COA2} encaplimit none",
        f"ip link set dev {TH} up",
        f"ip -6 route replace {HOA}/128 dev {TH}",
    ]
    assert lab.cn.kernel.take() == [
        f"ip -6 xfrm state update src {CN} dst {HOA} proto route2 mode ro coa {COA2}",
        f"ip -6 xfrm state update src {HOA} dst {CN} proto hao mode ro coa {COA2}",
    ]
    # after the move only the care-of test was repeated
    assert [t for _, t, _, _ in lab.net.delivered] == [5, 6, 2, 4, 5, 6]
    assert lab.ha.kernel.tunnels == {TH: (HA, COA2)} and lab.ha.kernel.routes[(254, f"{HOA}/128")] == TH
    assert lab.mn.kernel.tunnels == {"mip6tnl": (COA2, HA)}
    assert lab.net.drops == [] and lab.errors() == []

    # TCP recovery: after each handover, three probes per connection (HOA:40000 -> CN:80 after
    # the CN binding; HOA:40001 -> COA1:22 after the home BA, the CN being left to RO)
    # (the first raw packet is the HA's DAD probe, a Neighbour Solicitation from :: to the home
    # address's solicited-node group, before the first registration: DAD is on by default)
    dad, *probes = lab.raw
    assert (IPv6Address(dad[8:24]), IPv6Address(dad[24:40])) == (
        IPv6Address("::"),
        IPv6Address("ff02::1:ff00:100"),
    )
    peers = [(IPv6Address(p[8:24]), IPv6Address(p[24:40])) for p in probes]
    assert peers == [(COA1, HOA)] * 3 + [(CN, HOA)] * 3 + [(COA1, HOA)] * 3 + [(CN, HOA)] * 3
    assert lab.mn_daemon.driver.tcp.prompted == 4

    # status through the control socket
    server = ControlServer(lab.mn_cfg.control_socket, {"status": lab.mn_daemon.status})
    server.open()
    lab.mn_daemon.io.control = server
    try:
        status = _ask(server, lambda: query(lab.mn_cfg.control_socket))
    finally:
        server.close()
    assert status["role"] == "mn" and status["care_of_address"] == str(COA2)
    home, cn_entry = status["binding_update_list"]
    assert home["careof_address"] == str(COA2) and home["state"] == "registered"
    assert cn_entry["state"] == "bound" and cn_entry["peer"] == str(CN)
    assert status["rejected"] == {} and status["daemon"]["errors"] == 0
    assert status["daemon"]["kernel"]["tunnels"] == {"mip6tnl": {"local": str(COA2), "remote": str(HA)}}
    ha_status = lab.ha_daemon.status()
    assert [e["careof_address"] for e in ha_status["binding_cache"]] == [str(COA2)]
    assert ha_status["rejected"] == {} and lab.cn_daemon.status()["rejected"] == {}
    json.dumps(ha_status)
    json.dumps(lab.cn_daemon.status())

    # SIGTERM on the MN: deregistration from the care-of address, then the kernel is cleaned up
    lab.mn_daemon.request_stop()
    lab.mn_daemon.begin_shutdown()
    lab.net.pump()
    assert lab.mn_daemon.shutdown_complete()
    lab.mn_daemon.finish_shutdown()
    assert ha.cache.get(HOA) is None
    assert lab.ha.kernel.take()[:3] == [
        f"ip -6 route del {HOA}/128",
        f"ip -6 neigh del proxy {HOA} dev eth1",
        f"ip link set dev {TH} down",  # parked for the next binding
    ]
    assert lab.mn.kernel.tunnels == {} and lab.mn.kernel.rules == set() and lab.mn.kernel.policies == {}
    assert lab.mn.kernel.states == {}
    records = lab.mh_records("mn")
    assert records[-1]["result"] == "accepted:exit_deregistration" and records[-2]["msg"]["lifetime"] == 0
    assert json.loads(lab.logs["mn"].getvalue().splitlines()[-1])["event"] == "stop"
    assert lab.net.drops == [] and lab.errors() == []


def _ask(server: ControlServer, client: Any) -> Any:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(client()))
    thread.start()
    deadline = time.monotonic() + 5
    while thread.is_alive() and time.monotonic() < deadline:
        server.accept()
        time.sleep(0.005)
    thread.join(1)
    assert out, "no answer from the control socket"
    return out[0]


def test_status_command_line_client(tmp_path, capsys):
    lab = Lab(tmp_path, mode="bt")
    arrive(lab)
    server = ControlServer(str(tmp_path / "ha.sock"), {"status": lab.ha_daemon.status})
    server.open()
    try:
        code = _ask(server, lambda: main(["mip6", "status", "--socket", str(tmp_path / "ha.sock")]))
    finally:
        server.close()
    assert code == 0
    status = json.loads(capsys.readouterr().out)
    assert status["role"] == "ha" and status["binding_cache"][0]["home_address"] == str(HOA)
    assert status["daemon"]["kernel"]["proxy_ndp"] == [str(HOA)]


def test_bidirectional_tunnel_mode_handover(tmp_path):
    lab = Lab(tmp_path, mode="bt")
    arrive(lab)
    move(lab)
    assert lab.mn_daemon.node.home.state == "registered"
    assert lab.ha_daemon.node.cache.get(HOA).careof_address == COA2
    assert lab.cn.kernel.states == {(IPv6Address("::"), IPv6Address("::"), "hao"): lab.cn.kernel.states[
        (IPv6Address("::"), IPv6Address("::"), "hao")]}  # fmt: skip
    # bt: one probe burst per handover, to every peer
    assert len(lab.raw) == 1 + 2 * 3 * 2  # the HA's DAD probe, then the probes
    assert lab.net.drops == [] and lab.errors() == []


def test_without_the_esp_policy_the_ha_never_sees_the_bu(tmp_path):
    """The kernel (simulated) drops an unprotected BU; the daemon is not involved."""
    lab = Lab(tmp_path, mode="bt")
    lab.net.esp_pairs = set()
    arrive(lab)
    assert lab.ha_daemon.node.cache.get(HOA) is None
    assert any("ESP required" in d for d in lab.net.drops)
    assert lab.mn_daemon.node.home.state == "registering"


def test_hot_without_the_bypass_policy_would_not_come_through_the_tunnel(tmp_path):
    """Checks the simulation and the reason for the CN's HoT bypass policy: without it, the HoT of
    the next return routability test leaves with a type 2 routing header, straight to the care-of
    address, and the mobile node rejects it."""
    lab = Lab(tmp_path)
    arrive(lab)
    del lab.cn.kernel.policies[("::/0", "::/0", "out", 135, 3)]
    lab.run(400)  # the CN binding refresh redoes the home test (the home token is too old)
    hots = [r for r in lab.mh_records("mn") if r["dir"] == "rx" and r["msg"]["type"] == "HoT"]
    assert hots[0]["rh2"] is None and hots[0]["result"] == "accepted"
    assert hots[-1]["rh2"] == str(HOA) and hots[-1]["result"] == "rejected:wrong_destination"


def test_return_home_deregisters_everywhere(tmp_path):
    lab = Lab(tmp_path)
    arrive(lab)
    for node in (lab.mn, lab.ha, lab.cn):
        node.kernel.take()
    lab.netlink(link(2, "wlan0", 0x1))
    lab.mn.phys = {HOA}
    lab.netlink(link(2, "wlan0", UP), addr(2, str(COA1), 0, event="RTM_DELADDR"))
    lab.ra(str(HOME_PREFIX.network_address))
    lab.run(5)
    mn = lab.mn_daemon.node
    assert mn.location == "home" and mn.home.state == "home" and mn.cns[CN].state == "idle"
    assert lab.ha_daemon.node.cache.get(HOA) is None and lab.cn_daemon.node.cache.get(HOA) is None
    assert lab.mn.kernel.take() == [
        # SetHomeAddress(away=False): no more tunnel for traffic from the home address
        f"ip -6 rule del from {HOA}/128 table 100 priority 1000",
        f"ip -6 addr del {HOA}/64 dev wlan0",  # a copy there would be SLAAC's, not ours
        f"ip -6 addr add {HOA}/64 dev wlan0 nodad",
        # the plain deregistration BU must not get a Home Address option
        f"ip -6 xfrm state delete src {HOA} dst {HA} proto hao",
        # SettleHomeAddress(away=False), once the BU has left
        f"ip -6 addr del {HOA}/128 dev mip6tnl",
        # its BA: the reverse tunnel and the signalling states go (RemoveHao finds it gone: fine)
        "ip -6 route del default dev mip6tnl table 100",
        "ip link set dev mip6tnl down",  # parked: the next departure re-points it
        f"ip -6 xfrm state delete src {HOA} dst {HA} proto hao",
        f"ip -6 xfrm state delete src {HA} dst {HOA} proto route2",
        # the deregistration with the correspondent, then its route optimisation entries
        f"ip -6 xfrm state delete src {HOA} dst {CN} proto hao",
        f"ip -6 xfrm state delete src {HOA} dst {CN} proto hao",
        f"ip -6 xfrm policy delete src {HOA}/128 dst {CN}/128 dir out ptype sub",
        f"ip -6 xfrm state delete src {CN} dst {HOA} proto route2",
        f"ip -6 xfrm policy delete src {CN}/128 dst {HOA}/128 dir in ptype sub",
    ]
    assert lab.ha.kernel.take() == [
        f"ip -6 route del {HOA}/128",  # the BA goes on the home link, not into the tunnel
        f"ip -6 xfrm state delete src {HA} dst {HOA} proto route2",  # and without RH2
        # after the BA, off its path (RFC 6275 10.3.2: "in addition")
        f"ip -6 neigh del proxy {HOA} dev eth1",
        f"ip link set dev {TH} down",  # parked for the next binding
    ]
    assert lab.cn.kernel.take() == [
        f"ip -6 xfrm state delete src {CN} dst {HOA} proto route2",
        f"ip -6 xfrm policy delete src {CN}/128 dst {HOA}/128 dir out ptype sub",
        f"ip -6 xfrm state delete src {HOA} dst {CN} proto hao",
        f"ip -6 xfrm policy delete src {HOA}/128 dst {CN}/128 dir in ptype sub",
    ]
    # back home, the MN announces its home address itself (the HA stopped proxying)
    lab.run(3)
    nas = [s for s in lab.mn_daemon.io.ndisc.sent if s[0][0] == 136]
    assert len(nas) == 3 and {(s[1], s[3]) for s in nas} == {(IPv6Address("ff02::1"), HOA)}
    assert lab.net.drops == [] and lab.errors() == []


def test_stale_default_routes_are_dropped_at_link_up_and_on_a_new_router(tmp_path):
    """Linux keeps the old router's RA default route across a wireless handover; the MN drops it."""
    lab = Lab(tmp_path, mode="bt")
    routes = lab.mn.kernel.ra_routes
    routes["wlan0"] = ["fe80::1"]  # learned on the previous link
    lab.netlink(link(2, "wlan0", UP))
    assert routes["wlan0"] == []
    # the kernel adds the new router's route from its RA, but a stale one (re)appears as well
    routes["wlan0"] = ["fe80::2", str(LL)]
    lab.ra(str(FOREIGN1.network_address))
    assert routes["wlan0"] == [str(LL)]
    dropped = [
        json.loads(line)
        for line in lab.logs["mn"].getvalue().splitlines()
        if json.loads(line)["event"] == "stale_router_dropped"
    ]
    assert [(d["gateway"], d["ok"]) for d in dropped] == [("fe80::1", True), ("fe80::2", True)]
    # the same router again: no query, nothing dropped
    lab.mn.kernel.take()
    lab.mn.kernel.lines.clear()
    lab.ra(str(FOREIGN1.network_address))
    assert not any("route show default" in line for line in lab.mn.kernel.lines)
