"""An in-memory lab for end-to-end daemon tests: simulated kernels that execute the adapter's
iproute2 command lines, and a network that moves Mobility Header packets between the daemons'
fake sockets the way Linux would.

``SimKernel`` keeps tunnels, addresses, routes, rules, proxy entries, sysctls and the xfrm sub
policies/states (``mode ro``), answering with the real commands' error texts. ``SimNet`` applies
the sender's xfrm policy and states on output (Home Address option and new source, type 2 routing
header and new destination, ip6ip6 encapsulation), routes (home agent host routes into its
tunnels), and on input does the receiving kernel's part: state lookup (exact, then wildcard
``wildrecv``), the care-of address check, the swap, the policy check against the templates, the
ESP requirement, and finally the ancillary data a raw socket would get.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from mvpn_lab.mip6.daemon.kernel.base import CommandResult
from mvpn_lab.mip6.daemon.mhsocket import IPV6_DSTOPTS, IPV6_PKTINFO, IPV6_RTHDR, SOL_IPV6, pack_pktinfo

ANY = IPv6Address("::")


@dataclass
class SimPolicy:
    src: IPv6Network
    dst: IPv6Network
    direction: str
    proto: int | None
    mh_type: int | None
    priority: int
    templates: list[tuple[str, IPv6Address | None, IPv6Address | None]]

    def matches(self, src: IPv6Address, dst: IPv6Address, direction: str, mh_type: int) -> bool:
        return (
            self.direction == direction
            and src in self.src
            and dst in self.dst
            and self.proto in (None, 135)
            and self.mh_type in (None, mh_type)
        )


@dataclass
class SimState:
    coa: IPv6Address
    wildrecv: bool


def _kv(args: Sequence[str]) -> dict[str, str]:
    out = {}
    it = iter(args)
    for key in it:
        out[key] = next(it, "")
    return out


class SimKernel:
    """A command runner that keeps the state the commands describe."""

    def __init__(self, name: str, phys: dict[str, int]) -> None:
        self.name = name
        self.lines: list[str] = []
        self.ifaces: dict[str, int] = dict(phys)
        self.tunnels: dict[str, tuple[IPv6Address, IPv6Address]] = {}
        self.up: set[str] = set(phys)
        self.addrs: dict[tuple[IPv6Address, str], set[str]] = {}
        self.routes: dict[tuple[int, str], str] = {}
        self.rules: set[tuple[str, int, int]] = set()
        self.proxies: set[tuple[IPv6Address, str]] = set()
        self.sysctls: dict[str, str] = {}
        self.states: dict[tuple[IPv6Address, IPv6Address, str], SimState] = {}
        self.policies: dict[tuple[str, str, str, int | None, int | None], SimPolicy] = {}
        self._next_index = 100
        self.esp_listing = ""  # what `ip -6 xfrm policy list ptype main` prints
        self.ra_routes: dict[str, list[str]] = {}  # default routes learned from RAs, per interface

    # ------------------------------------------------------------------ runner

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.lines.append(" ".join(argv))
        try:
            return self._run(list(argv))
        except _Fail as exc:
            return CommandResult(exc.rc, "", exc.text)

    def take(self) -> list[str]:
        """Commands run since the last call, without read-only queries of RA default routes."""
        out, self.lines = self.lines, []
        return [line for line in out if not line.startswith("ip -6 -j route show default")]

    def _run(self, argv: list[str]) -> CommandResult:
        if argv[:3] == ["ip", "-6", "tunnel"]:
            self._tunnel(argv[3], argv[4], _kv(argv[5:]))
        elif argv[:3] == ["ip", "link", "set"]:
            if argv[4] not in self.ifaces:
                raise _Fail(1, f'Cannot find device "{argv[4]}"')
            self.up.add(argv[4])
        elif argv[:6] == ["ip", "-6", "-j", "addr", "show", "dev"]:
            infos = [
                {"local": str(a), "prefixlen": 64, "valid_life_time": 0xFFFFFFFF}  # ip's "forever"
                for (a, dev) in self.addrs
                if dev == argv[6]
            ]
            return CommandResult(0, json.dumps([{"ifname": argv[6], "addr_info": infos}]), "")
        elif argv[:3] == ["ip", "-6", "addr"]:
            self._addr(argv[3], argv[4], argv[6], argv[7:])
        elif argv[:4] == ["ip", "-6", "-j", "route"]:
            routes = [
                {"dst": "default", "gateway": g, "dev": argv[7]} for g in self.ra_routes.get(argv[7], [])
            ]
            return CommandResult(0, json.dumps(routes), "")
        elif argv[:5] == ["ip", "-6", "route", "del", "default"] and argv[-2:] == ["proto", "ra"]:
            gateways = self.ra_routes.get(argv[8], [])
            if argv[6] not in gateways:
                raise _Fail(2, "RTNETLINK answers: No such process")
            gateways.remove(argv[6])
        elif argv[:3] == ["ip", "-6", "route"]:
            self._route(argv[3], argv[4], _kv(argv[5:]))
        elif argv[:3] == ["ip", "-6", "rule"]:
            kv = _kv(argv[4:])
            rule = (kv["from"], int(kv["table"]), int(kv["priority"]))
            if argv[3] == "add":
                if rule in self.rules:
                    raise _Fail(2, "RTNETLINK answers: File exists")
                self.rules.add(rule)
            elif rule in self.rules:
                self.rules.discard(rule)
            else:
                raise _Fail(2, "RTNETLINK answers: No such file or directory")
        elif argv[:3] == ["ip", "-6", "neigh"]:
            entry = (IPv6Address(argv[5]), argv[7])
            if argv[3] == "add":
                self.proxies.add(entry)
            elif entry in self.proxies:
                self.proxies.discard(entry)
            else:
                raise _Fail(2, "RTNETLINK answers: No such file or directory")
        elif argv[:4] == ["ip", "-6", "xfrm", "state"]:
            self._state(argv[4], _kv(argv[5:]))
        elif argv[:4] == ["ip", "-6", "xfrm", "policy"]:
            if argv[4] == "list":
                return CommandResult(0, self.esp_listing, "")
            self._policy(argv[4], argv[5:])
        elif argv[:2] == ["sysctl", "-n"]:
            return CommandResult(0, self.sysctls.get(argv[2], "1") + "\n", "")
        elif argv[:3] == ["sysctl", "-q", "-w"]:
            key, _, value = argv[3].partition("=")
            self.sysctls[key] = value
        elif argv[:2] == ["iw", "dev"]:
            return CommandResult(0, "Connected to 02:00:00:00:01:00 (on wlan0)\n\tSSID: VISITME\n", "")
        else:
            raise _Fail(127, f"simulated kernel: unknown command {' '.join(argv)}")
        return CommandResult(0, "", "")

    def _tunnel(self, op: str, name: str, kv: dict[str, str]) -> None:
        local = IPv6Address(kv.get("local", "::"))
        if op == "add":
            if name in self.tunnels:
                raise _Fail(1, f'add tunnel "{name}" failed: File exists')
            self.tunnels[name] = (local, IPv6Address(kv["remote"]))
            self.ifaces[name] = self._next_index
            self._next_index += 1
        elif op == "change":
            if name not in self.tunnels:
                raise _Fail(1, f'get tunnel "{name}" failed: No such device')
            self.tunnels[name] = (local, IPv6Address(kv["remote"]))
        elif op == "del":
            if name not in self.tunnels:
                raise _Fail(1, f'delete tunnel "{name}" failed: No such device')
            del self.tunnels[name]
            del self.ifaces[name]
            self.up.discard(name)
            for key in [k for k in self.addrs if k[1] == name]:
                del self.addrs[key]
            for key in [k for k, dev in self.routes.items() if dev == name]:
                del self.routes[key]

    def _addr(self, op: str, prefix: str, dev: str, flags: list[str]) -> None:
        if dev not in self.ifaces:
            raise _Fail(1, f'Cannot find device "{dev}"')
        key = (IPv6Address(prefix.split("/")[0]), dev)
        if op == "replace":
            self.addrs[key] = set(flags)
        elif op == "add":
            if key in self.addrs:
                raise _Fail(2, "RTNETLINK answers: File exists")
            self.addrs[key] = set(flags)
        elif key in self.addrs:
            del self.addrs[key]
        else:
            raise _Fail(2, "Error: ipv6: address not found.")

    def _route(self, op: str, dst: str, kv: dict[str, str]) -> None:
        key = (int(kv.get("table", 254)), dst)
        if op == "replace":
            if kv["dev"] not in self.ifaces:
                raise _Fail(2, f'Cannot find device "{kv["dev"]}"')
            self.routes[key] = kv["dev"]
        elif key in self.routes and kv.get("dev") in (None, self.routes[key]):
            del self.routes[key]
        else:
            raise _Fail(2, "RTNETLINK answers: No such process")

    def _state(self, op: str, kv: dict[str, str]) -> None:
        key = (IPv6Address(kv["src"]), IPv6Address(kv["dst"]), kv["proto"])
        if op == "add":
            if key in self.states:
                raise _Fail(2, "RTNETLINK answers: File exists")
            self.states[key] = SimState(IPv6Address(kv["coa"]), kv.get("flag") == "wildrecv")
        elif op == "update":
            if key not in self.states:
                raise _Fail(2, "RTNETLINK answers: No such process")
            self.states[key] = SimState(IPv6Address(kv["coa"]), kv.get("flag") == "wildrecv")
        elif key in self.states:
            del self.states[key]
        else:
            raise _Fail(2, "RTNETLINK answers: No such process")

    def _policy(self, op: str, args: list[str]) -> None:
        head = args[: args.index("ptype")] if "ptype" in args else args
        kv = _kv(head)
        proto = int(kv["proto"]) if "proto" in kv else None
        mh_type = int(kv["type"]) if "type" in kv else None
        key = (kv["src"], kv["dst"], kv["dir"], proto, mh_type)
        if op == "delete":
            if key not in self.policies:
                raise _Fail(2, "RTNETLINK answers: No such file or directory")
            del self.policies[key]
            return
        rest = args[args.index("ptype") + 2 :]
        assert args[args.index("ptype") + 1] == "sub"
        priority = int(rest[1])
        templates = []
        for chunk in " ".join(rest[2:]).split("tmpl")[1:]:
            tkv = _kv(chunk.split())
            templates.append(
                (
                    tkv["proto"],
                    IPv6Address(tkv["src"]) if "src" in tkv else None,
                    IPv6Address(tkv["dst"]) if "dst" in tkv else None,
                )
            )
            assert tkv["mode"] == "ro" and tkv["level"] == "use"
        self.policies[key] = SimPolicy(
            IPv6Network(kv["src"]), IPv6Network(kv["dst"]), kv["dir"], proto, mh_type, priority, templates
        )

    # ------------------------------------------------------------------ queries

    def ifindex(self, name: str) -> int:
        if name not in self.ifaces:
            raise OSError(19, "No such device")
        return self.ifaces[name]

    def ifname(self, index: int) -> str | None:
        return next((n for n, i in self.ifaces.items() if i == index), None)

    def local(self, addr: IPv6Address) -> bool:
        return any(a == addr for a, _ in self.addrs)

    def home_address(self, addr: IPv6Address) -> bool:
        return any(a == addr and "home" in flags for (a, _), flags in self.addrs.items())

    def policy(self, direction: str, src: IPv6Address, dst: IPv6Address, mh_type: int) -> SimPolicy | None:
        found = [p for p in self.policies.values() if p.matches(src, dst, direction, mh_type)]
        return min(found, key=lambda p: p.priority, default=None)


class _Fail(Exception):
    def __init__(self, rc: int, text: str) -> None:
        super().__init__(text)
        self.rc = rc
        self.text = text


@dataclass
class Packet:
    src: IPv6Address
    dst: IPv6Address
    mh: bytes
    hao: IPv6Address | None = None
    rh2: IPv6Address | None = None
    esp: bool = False
    outer: tuple[IPv6Address, IPv6Address] | None = None

    @property
    def mh_type(self) -> int:
        return self.mh[2]


class FakeMH:
    """The MH socket of one simulated node."""

    def __init__(self, net: SimNet, node: str) -> None:
        self.net = net
        self.node = node
        self.inbox: list[tuple[bytes, list[Any], Any]] = []
        self.closed = False

    def fileno(self) -> int:
        return -1

    def receive(self) -> tuple[bytes, list[Any], Any] | None:
        return self.inbox.pop(0) if self.inbox else None

    def send(self, payload: bytes, src: IPv6Address, dst: IPv6Address, ifindex: int = 0) -> None:
        self.net.transmit(self.node, payload, src, dst, ifindex)

    def close(self) -> None:
        self.closed = True


class FakeNdisc:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, IPv6Address, int, IPv6Address | None]] = []
        self.inbox: list[Any] = []

    def fileno(self) -> int:
        return -1

    def receive(self) -> Any:
        return self.inbox.pop(0) if self.inbox else None

    def send(self, payload: bytes, dst: IPv6Address, ifindex: int, src: IPv6Address | None = None) -> None:
        self.sent.append((payload, dst, ifindex, src))

    def close(self) -> None:
        pass


class FakeNetlink:
    def __init__(self) -> None:
        self.queue: list[Any] = []

    def fileno(self) -> int:
        return -1

    def read(self) -> list[Any]:
        out, self.queue = self.queue, []
        return out

    def close(self) -> None:
        pass


@dataclass
class SimNode:
    name: str
    kernel: SimKernel
    mh: FakeMH
    phys: set[IPv6Address]  # addresses reachable on the wire
    iface: str
    forwards: bool = False
    daemon: Any = None
    esp_required: set[tuple[IPv6Address, IPv6Address]] = field(default_factory=set)


@dataclass
class SimNet:
    nodes: dict[str, SimNode] = field(default_factory=dict)
    queue: list[Packet] = field(default_factory=list)
    esp_pairs: set[tuple[IPv6Address, IPv6Address]] = field(default_factory=set)  # main ESP policies
    drops: list[str] = field(default_factory=list)
    delivered: list[tuple[str, int, bool, bool]] = field(default_factory=list)  # node, type, hao?, rh2?

    def add(self, name: str, phys: set[IPv6Address], iface: str, *, forwards: bool = False) -> SimNode:
        node = SimNode(
            name, SimKernel(name, {"lo": 1, iface: 2}), FakeMH(self, name), set(phys), iface, forwards
        )
        self.nodes[name] = node
        return node

    # ------------------------------------------------------------------ output

    def transmit(self, name: str, payload: bytes, src: IPv6Address, dst: IPv6Address, ifindex: int) -> None:
        node = self.nodes[name]
        k = node.kernel
        if src not in node.phys and not k.local(src):
            raise OSError(99, "Cannot assign requested address")
        pkt = Packet(src, dst, payload, esp=(src, dst) in self.esp_pairs)
        pol = k.policy("out", src, dst, payload[2])
        transformed = False
        for proto, _tsrc, _tdst in pol.templates if pol else []:
            state = k.states.get((src, dst, proto))
            if state is None or state.wildrecv:
                continue  # optional template without a state: skipped
            transformed = True
            if proto == "hao":
                pkt.hao, pkt.src = src, state.coa
            else:
                pkt.rh2, pkt.dst = dst, state.coa
        tunnel = k.ifname(ifindex) if ifindex else None
        if tunnel is None and not transformed:
            for rule_src, table, _prio in k.rules:
                if src in IPv6Network(rule_src):
                    tunnel = k.routes.get((table, "default"))
        if tunnel is not None and tunnel in k.tunnels:
            local, remote = k.tunnels[tunnel]
            if local == ANY:
                self.drops.append(f"{name}: tunnel {tunnel} without a local address")
                return
            pkt.outer = (local, remote)
        self.queue.append(pkt)

    # ------------------------------------------------------------------ delivery

    def owner(self, addr: IPv6Address) -> SimNode | None:
        return next((n for n in self.nodes.values() if addr in n.phys), None)

    def pump(self) -> int:
        """Deliver queued packets (and what the receivers send back) until the network is quiet."""
        for count in range(500):
            if not self.queue:
                return count
            self.deliver(self.queue.pop(0))
            for node in self.nodes.values():
                if node.mh.inbox and node.daemon is not None:
                    node.daemon.on_mh_readable()
        raise AssertionError("network did not settle")

    def deliver(self, pkt: Packet) -> None:
        if pkt.outer is not None:
            outer_src, outer_dst = pkt.outer
            target = self.owner(outer_dst)
            if target is None:
                self.drops.append(f"tunnelled packet to {outer_dst}: nobody there")
                return
            tunnel = next(
                (
                    n
                    for n, (loc, rem) in target.kernel.tunnels.items()
                    if rem == outer_src and loc in (outer_dst, ANY)
                ),
                None,
            )
            if tunnel is None:
                self.drops.append(f"{target.name}: no tunnel from {outer_src}")
                return
            pkt.outer = None
            if target.kernel.local(pkt.dst) or pkt.dst in target.phys:
                self.receive(target, pkt, tunnel)
            elif target.forwards:
                self.route(pkt)
            return
        self.route(pkt)

    def route(self, pkt: Packet) -> None:
        target = self.owner(pkt.dst)
        if target is not None:
            self.receive(target, pkt, target.iface)
            return
        for node in self.nodes.values():  # the home agent intercepts what it has a host route for
            dev = node.kernel.routes.get((254, f"{pkt.dst}/128"))
            if node.forwards and dev in node.kernel.tunnels:
                pkt.outer = node.kernel.tunnels[dev]
                self.deliver(pkt)
                return
        self.drops.append(f"no route to {pkt.dst}")

    def receive(self, node: SimNode, pkt: Packet, iface: str) -> None:
        k = node.kernel
        src, dst = pkt.src, pkt.dst
        used: list[tuple[str, tuple[IPv6Address, IPv6Address, str]]] = []
        anc: list[Any] = []
        if pkt.rh2 is not None:
            if not k.home_address(pkt.rh2):
                self.drops.append(f"{node.name}: routing header names {pkt.rh2}, not a home address")
                return
            key = (pkt.src, pkt.rh2, "route2")
            state = k.states.get(key)
            if state is None or state.coa not in (pkt.dst, ANY):
                self.drops.append(f"{node.name}: no route2 state for {key}")
                return
            used.append(("route2", key))
            dst = pkt.rh2
            anc.append((SOL_IPV6, IPV6_RTHDR, bytes([135, 2, 2, 0, 0, 0, 0, 0]) + pkt.dst.packed))
        if pkt.hao is not None:
            found = None
            for key in ((pkt.hao, dst, "hao"), (ANY, dst, "hao"), (ANY, ANY, "hao")):
                state = k.states.get(key)
                if state is None or (key[0] == ANY and not state.wildrecv):
                    continue
                if state.coa in (pkt.src, ANY):
                    found = key
                    break
            if found is None:
                self.drops.append(f"{node.name}: no hao state for {pkt.hao} from {pkt.src}")
                return
            used.append(("hao", found))
            src = pkt.hao
            anc.append((SOL_IPV6, IPV6_DSTOPTS, bytes([135, 2, 1, 2, 0, 0, 0xC9, 16]) + pkt.src.packed))
        if used:
            pol = k.policy("in", src, dst, pkt.mh_type)
            if pol is None:
                self.drops.append(f"{node.name}: no inbound policy for the Mobile IPv6 states")
                return
            for proto, key in used:
                ok = any(
                    t[0] == proto and (t[1] is None or t[1] == key[0]) and (t[2] is None or t[2] == key[1])
                    for t in pol.templates
                )
                if not ok:
                    self.drops.append(f"{node.name}: policy templates do not match the {proto} state {key}")
                    return
        if (src, dst) in node.esp_required and not pkt.esp:
            self.drops.append(f"{node.name}: ESP required from {src}")
            return
        ifindex = k.ifaces.get(iface, 2)
        anc.insert(0, (SOL_IPV6, IPV6_PKTINFO, pack_pktinfo(dst, ifindex)))
        self.delivered.append((node.name, pkt.mh_type, pkt.hao is not None, pkt.rh2 is not None))
        node.mh.inbox.append((pkt.mh, anc, (str(src), 0, 0, 0)))


def pktinfo(addr: IPv6Address, ifindex: int) -> tuple[int, int, bytes]:
    return (SOL_IPV6, IPV6_PKTINFO, addr.packed + struct.pack("=I", ifindex))
