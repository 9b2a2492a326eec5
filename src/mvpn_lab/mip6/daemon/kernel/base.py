"""Kernel adapter: the state machines' data-plane actions as iproute2 commands.

Every command goes through an injectable runner (``argv -> CommandResult``) so tests can assert
the exact command lines. The adapter keeps a record of what it installed, which makes most steps
idempotent (``replace``/``update`` semantics, "already exists" and "does not exist" answers
accepted where they mean the desired state is there) and lets :meth:`KernelAdapter.teardown`
remove it all on exit. A failing step stops that one action and is reported as one line naming
the action; the daemon goes on.

Route optimisation uses the kernel's Mobile IPv6 xfrm types (``proto hao``/``proto route2`` in
``mode ro``); all policies the daemon installs are of ``ptype sub``, so they combine with
``ptype main`` IPsec policies (ESP for MN-HA signalling) instead of competing with them. Policy
priorities (lower wins) are the ``PRIO_*`` constants. See docs/mip6.md for the full table.
"""

from __future__ import annotations

import json
import re
import subprocess
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from mvpn_lab.mip6.core.actions import (
    Action,
    AddHostRoute,
    ConfigureAddress,
    DelHostRoute,
    DelProxyNdp,
    DelRouteViaTunnel,
    DelTunnel,
    InstallHao,
    InstallRoute2,
    ProxyNdp,
    RemoveAddress,
    RemoveHao,
    RemoveRoute2,
    RouteViaTunnel,
    SendMH,
    SetHomeAddress,
    SetTunnel,
    UseCachedRouter,
)
from mvpn_lab.mip6.core.config import CNConfig, HAConfig, MNConfig, NodeConfig
from mvpn_lab.mip6.core.counters import Counters
from mvpn_lab.mip6.daemon.events import EventLog
from mvpn_lab.mip6.wire.constants import MHType
from mvpn_lab.mip6.wire.messages import HomeTest, HomeTestInit

ANY = IPv6Address("::")
#: Metric of the MN's default route via a cached router (below the kernel's 1024 for RA routes).
CACHED_ROUTER_METRIC = 1023
ANY_NET = IPv6Network("::/0")

# xfrm sub-policy priorities (lower value = preferred)
PRIO_BYPASS = 10  # HoTI never gets a Home Address option, HoT never a type 2 routing header
PRIO_SIGNAL = 20  # Mobility Header signalling between MN and HA (and per-send fallbacks)
PRIO_MH_ANY = 30  # accept Mobility Header messages carrying a Home Address option from anyone
PRIO_DATA = 40  # route-optimised traffic of one binding

_EXISTS = ("file exists", "already assigned", "already exists")
_MISSING = (
    "cannot assign requested address",  # ip addr del of an address that is not there
    "no such process",
    "no such file or directory",
    "no such device",
    "cannot find device",
    "not found",
    "does not exist",
)


class KernelError(Exception):
    """A kernel step failed; the message is one line."""


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def message(self) -> str:
        """The first non-empty line of stderr (else stdout), for one-line errors."""
        for text in (self.stderr, self.stdout):
            for line in text.splitlines():
                if line.strip():
                    return line.strip()
        return f"exit status {self.returncode}"


CommandRunner = Callable[[Sequence[str]], CommandResult]


class SubprocessRunner:
    """Runs commands for real (``timeout`` seconds each)."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        try:
            done = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=self.timeout, check=False
            )
        except FileNotFoundError:
            return CommandResult(127, "", f"{argv[0]}: command not found")
        except subprocess.TimeoutExpired:
            return CommandResult(124, "", f"timed out after {self.timeout:g} s")
        except OSError as exc:
            return CommandResult(126, "", f"{argv[0]}: {exc.strerror or exc}")
        return CommandResult(done.returncode, done.stdout, done.stderr)


def is_exists_error(text: str) -> bool:
    low = text.lower()
    return any(word in low for word in _EXISTS)


def is_missing_error(text: str) -> bool:
    low = text.lower()
    return any(word in low for word in _MISSING)


def describe(action: Action) -> str:
    """``set_tunnel(local=2001:db8:2::100, remote=2001:db8:1::1)``: an action in one short line."""
    parts = []
    for key, value in action.to_dict().items():
        if key in ("action", "message"):
            continue
        parts.append(f"{key}={value}")
    return f"{action.kind}({', '.join(parts)})"


def tunnel_name_for(prefix: str, remote: IPv6Address) -> str:
    """The home agent's tunnel towards one care-of address: prefix + 6 hex digits of a CRC.

    Deterministic, so a restarted daemon finds (and replaces) the tunnels of its previous run.
    """
    return f"{prefix}{zlib.crc32(remote.packed) & 0xFFFFFF:06x}"


def sysctl_key(iface: str, leaf: str, family: str = "ipv6") -> str:
    """``net.ipv6.conf.IFACE.LEAF``; the slash form when the name has dots (VLANs)."""
    if "." in iface:
        return f"net/{family}/conf/{iface}/{leaf}"
    return f"net.{family}.conf.{iface}.{leaf}"


def _net(value: IPv6Address | IPv6Network) -> IPv6Network:
    return IPv6Network(value) if isinstance(value, IPv6Address) else value


# --------------------------------------------------------------------------- xfrm command lines


@dataclass(frozen=True)
class Template:
    """One ``tmpl`` of a sub policy: a Mobile IPv6 transformation in ``mode ro``, ``level use``."""

    proto: str  # "hao" or "route2"
    src: IPv6Address | None = None
    dst: IPv6Address | None = None

    def args(self) -> list[str]:
        out = ["tmpl"]
        if self.src is not None and self.dst is not None:
            out += ["src", str(self.src), "dst", str(self.dst)]
        return [*out, "proto", self.proto, "mode", "ro", "level", "use"]


@dataclass(frozen=True)
class PolicyKey:
    src: IPv6Network
    dst: IPv6Network
    direction: str  # in | out
    proto: int | None = None
    mh_type: int | None = None

    def selector(self) -> list[str]:
        out = ["src", str(self.src), "dst", str(self.dst)]
        if self.proto is not None:
            out += ["proto", str(self.proto)]
            if self.mh_type is not None:
                out += ["type", str(self.mh_type)]
        return [*out, "dir", self.direction]

    def covers(self, src: IPv6Address, dst: IPv6Address, direction: str, proto: int) -> bool:
        return (
            self.direction == direction
            and src in self.src
            and dst in self.dst
            and self.proto in (None, proto)
            and self.mh_type is None
        )


@dataclass
class Policy:
    key: PolicyKey
    priority: int
    templates: tuple[Template, ...]
    owner: str  # static | signal | data


def policy_update_argv(key: PolicyKey, priority: int, templates: Iterable[Template]) -> list[str]:
    argv = ["ip", "-6", "xfrm", "policy", "update", *key.selector(), "ptype", "sub"]
    argv += ["priority", str(priority)]
    for tmpl in templates:
        argv += tmpl.args()
    return argv


def policy_delete_argv(key: PolicyKey) -> list[str]:
    return ["ip", "-6", "xfrm", "policy", "delete", *key.selector(), "ptype", "sub"]


StateKey = tuple[IPv6Address, IPv6Address, str]  # (src, dst, proto)


@dataclass
class XfrmState:
    key: StateKey
    coa: IPv6Address
    owner: str  # static | signal | data
    wildrecv: bool = False


def state_argv(
    op: str, key: StateKey, coa: IPv6Address | None = None, *, wildrecv: bool = False
) -> list[str]:
    src, dst, proto = key
    argv = ["ip", "-6", "xfrm", "state", op, "src", str(src), "dst", str(dst), "proto", proto]
    if op in ("add", "update"):
        argv += ["mode", "ro", "coa", str(coa if coa is not None else ANY)]
        if wildrecv:
            argv += ["flag", "wildrecv"]
    return argv


# --------------------------------------------------------------------------- ESP policy check


def _usable_permanent(listing: str, address: IPv6Address) -> bool:
    """Whether ``ip -j addr show`` output has ``address`` added by hand and out of DAD."""
    try:
        links = json.loads(listing or "[]")
    except ValueError:
        return False
    for link in links if isinstance(links, list) else []:
        for info in link.get("addr_info", []) if isinstance(link, dict) else []:
            if not isinstance(info, dict) or info.get("local") != str(address):
                continue
            return not any(info.get(flag) for flag in ("dynamic", "tentative", "dadfailed"))
    return False


def esp_policy_present(listing: str, src: IPv6Address, dst: IPv6Address) -> bool:
    """Whether ``ip -6 xfrm policy list dir in ptype main`` shows a policy that requires ESP for
    Mobility Header traffic from ``src`` to ``dst`` (selector covering both addresses, protocol
    any or mobility-header, an ``esp`` template without ``level use``)."""
    blocks: list[list[str]] = []
    for line in listing.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            blocks.append([line.strip()])
        elif blocks:
            blocks[-1].append(line.strip())
    for block in blocks:
        head = block[0].split()
        try:
            sel_src = IPv6Network(head[head.index("src") + 1], strict=False)
            sel_dst = IPv6Network(head[head.index("dst") + 1], strict=False)
        except (ValueError, IndexError):
            continue
        if src not in sel_src or dst not in sel_dst:
            continue
        if "proto" in head and head[head.index("proto") + 1] not in ("mobility-header", "135"):
            continue
        if "type" in head and head[head.index("type") + 1] not in ("5", "6"):
            continue
        body = " ".join(block[1:])
        if "dir in" not in body or "action block" in body:
            continue
        # each template starts with "tmpl"; a required ESP one has no "level use"
        for tmpl in body.split("tmpl ")[1:]:
            if re.search(r"\bproto esp\b", tmpl) and "level use" not in tmpl:
                return True
    return False


# --------------------------------------------------------------------------- the adapter


@dataclass
class _MNState:
    away: bool = False
    route_via_tunnel: bool = False
    rule_installed: bool = False


@dataclass
class KernelAdapter:
    """Turns data-plane actions into commands for one node (``cfg`` decides the role)."""

    cfg: NodeConfig
    runner: CommandRunner
    events: EventLog
    tunnels: dict[str, tuple[IPv6Address, IPv6Address]] = field(default_factory=dict)
    states: dict[StateKey, XfrmState] = field(default_factory=dict)
    policies: dict[PolicyKey, Policy] = field(default_factory=dict)
    proxies: set[IPv6Address] = field(default_factory=set)
    parked: set[str] = field(default_factory=set)  # tunnel devices kept down for reuse
    parked_remotes: dict[str, IPv6Address] = field(default_factory=dict)  # their last remote
    host_routes: dict[IPv6Address, str] = field(default_factory=dict)
    addresses: dict[tuple[str, IPv6Address], int] = field(default_factory=dict)
    sysctls: set[str] = field(default_factory=set)
    failures: Counters = field(default_factory=Counters)
    commands: int = 0
    mn: _MNState = field(default_factory=_MNState)

    # ------------------------------------------------------------------ plumbing

    @property
    def address(self) -> IPv6Address:
        """This node's own address (MN: the home address)."""
        if isinstance(self.cfg, MNConfig):
            return self.cfg.home_address
        return self.cfg.address

    def run(self, argv: Sequence[str], *, missing_ok: bool = False, exists_ok: bool = False) -> CommandResult:
        """Run one command; raise :class:`KernelError` unless it worked (or failed harmlessly)."""
        result = self.runner(argv)
        self.commands += 1
        self.events.debug("kernel_command", argv=list(argv), returncode=result.returncode)
        if result.ok:
            return result
        text = result.message
        if (missing_ok and is_missing_error(text)) or (exists_ok and is_exists_error(text)):
            return result
        raise KernelError(f"'{' '.join(argv)}' failed: {text}")

    def execute(self, action: Action) -> bool:
        """Carry out one data-plane action; False (and one error line) when a step failed."""
        handler = getattr(self, f"_do_{action.kind}", None)
        if handler is None:
            self.failures.inc(action.kind)
            self.events.error("kernel_error", f"{describe(action)}: no kernel mapping for this action")
            return False
        try:
            handler(action)
        except KernelError as exc:
            self.failures.inc(action.kind)
            self.events.error("kernel_error", f"{describe(action)}: {exc}", action=action.kind)
            return False
        return True

    def sysctl(self, key: str, value: str) -> None:
        if f"{key}={value}" in self.sysctls:
            return
        self.run(["sysctl", "-q", "-w", f"{key}={value}"])
        self.sysctls.add(f"{key}={value}")

    # ------------------------------------------------------------------ tunnels

    def tunnel_name(self, remote: IPv6Address) -> str:
        if isinstance(self.cfg, HAConfig):
            for name, (_, current) in self.tunnels.items():
                if current == remote:  # possibly a reused device named after an earlier remote
                    return name
            return self._fresh_tunnel_name(remote)
        if isinstance(self.cfg, MNConfig):
            return self.cfg.tunnel_name
        raise KernelError("a correspondent node has no tunnels")

    def _fresh_tunnel_name(self, remote: IPv6Address) -> str:
        """HA: the name for a new device towards ``remote`` that no tracked device uses (a reused
        device keeps the name of the remote it was made for)."""
        assert isinstance(self.cfg, HAConfig)
        taken = set(self.tunnels) | self.parked
        for salt in range(256):
            name = tunnel_name_for(self.cfg.tunnel_name, IPv6Address(int(remote) ^ salt))
            if name not in taken:
                return name
        raise KernelError(f"no free tunnel name for {remote}")

    def tunnel_names(self) -> set[str]:
        names = set(self.tunnels)
        if isinstance(self.cfg, MNConfig):
            names.add(self.cfg.tunnel_name)
        return names

    def _tunnel_args(self, name: str, local: IPv6Address | None, remote: IPv6Address) -> list[str]:
        args = [name, "mode", "ip6ip6"]
        if local is not None and local != ANY:
            args += ["local", str(local)]
        return [*args, "remote", str(remote), "encaplimit", "none"]

    def _ensure_tunnel(self, name: str, local: IPv6Address | None, remote: IPv6Address) -> None:
        current = self.tunnels.get(name)
        if current == (local or ANY, remote):
            return
        if current is None and name in self.parked:
            # an idle device from an earlier binding: re-pointing it is far cheaper than creating
            # one (registering a net device waits for RCU grace periods: about 0.5 s on the twin)
            self.parked.discard(name)
            self.parked_remotes.pop(name, None)
            changed = self.run(
                ["ip", "-6", "tunnel", "change", *self._tunnel_args(name, local, remote)], missing_ok=True
            )
            if not changed.ok:  # deleted behind our back: make it again
                self.run(["ip", "-6", "tunnel", "add", *self._tunnel_args(name, local, remote)])
            self.run(["ip", "link", "set", "dev", name, "up"])
        elif current is None:
            result = self.run(
                ["ip", "-6", "tunnel", "add", *self._tunnel_args(name, local, remote)], exists_ok=True
            )
            if not result.ok:  # left over from an earlier run: re-point it
                self.run(["ip", "-6", "tunnel", "change", *self._tunnel_args(name, local, remote)])
            self.run(["ip", "link", "set", "dev", name, "up"])
        else:
            self.run(["ip", "-6", "tunnel", "change", *self._tunnel_args(name, local, remote)])
        self.tunnels[name] = (local or ANY, remote)

    def _do_set_tunnel(self, action: SetTunnel) -> None:
        name = self.tunnel_name(action.remote)
        if isinstance(self.cfg, HAConfig) and name not in self.tunnels and self.parked:
            # reuse an idle device: the one last pointed at this remote (the kernel refuses two
            # devices with the same endpoints), else any; tunnel_name() then finds it by remote
            same = sorted(n for n in self.parked if self.parked_remotes.get(n) == action.remote)
            name = same[0] if same else min(self.parked)
        self._ensure_tunnel(name, action.local, action.remote)

    def _do_del_tunnel(self, action: DelTunnel) -> None:
        """Park the device (down, kept for the next binding) instead of deleting it."""
        name = next((n for n, (_, r) in self.tunnels.items() if r == action.remote), None)
        if isinstance(self.cfg, MNConfig) and name is None and self.cfg.tunnel_name not in self.parked:
            name = self.cfg.tunnel_name  # e.g. the deregistration after a restart while away
        if name is None:
            return  # no device of ours points there: nothing to undo, nothing else to touch
        self.run(["ip", "link", "set", "dev", name, "down"], missing_ok=True)
        self.parked.add(name)
        self.parked_remotes[name] = action.remote
        self.tunnels.pop(name, None)
        for hoa, dev in list(self.host_routes.items()):
            if dev == name:  # the kernel removed the route when the device went down
                del self.host_routes[hoa]

    # ------------------------------------------------------------------ mobile node routing

    def _mn_cfg(self) -> MNConfig:
        if not isinstance(self.cfg, MNConfig):
            raise KernelError("only a mobile node does this")
        return self.cfg

    def _rule_argv(self, op: str) -> list[str]:
        cfg = self._mn_cfg()
        return [
            "ip", "-6", "rule", op, "from", f"{cfg.home_address}/128",
            "table", str(cfg.table), "priority", str(cfg.rule_priority),
        ]  # fmt: skip

    def _sync_rule(self) -> None:
        """The ``from HOA`` rule exists exactly while the MN is away and registered."""
        want = self.mn.away and self.mn.route_via_tunnel
        if want and not self.mn.rule_installed:
            self.run(self._rule_argv("add"), exists_ok=True)
            self.mn.rule_installed = True
        elif not want and self.mn.rule_installed:
            self.run(self._rule_argv("del"), missing_ok=True)
            self.mn.rule_installed = False

    def _do_set_home_address(self, action: SetHomeAddress) -> None:
        cfg = self._mn_cfg()
        hoa, tunnel = action.home_address, cfg.tunnel_name
        if action.away:
            # The home address moves to the tunnel device, flagged "home" (without the flag the
            # kernel drops packets whose type 2 routing header names it).
            self._ensure_tunnel(tunnel, self.tunnels.get(tunnel, (None, cfg.home_agent))[0], cfg.home_agent)
            self.run(["ip", "-6", "addr", "replace", f"{hoa}/128", "dev", tunnel, "home"])
            for iface in cfg.interfaces:
                self.run(
                    ["ip", "-6", "addr", "del", f"{hoa}/{action.prefix_len}", "dev", iface], missing_ok=True
                )
                self.run(["ip", "-6", "route", "del", str(cfg.home_prefix), "dev", iface], missing_ok=True)
            self.mn.away = True
            self._sync_rule()
        else:
            self.mn.away = False
            self._sync_rule()
            self.run(["ip", "-6", "addr", "del", f"{hoa}/128", "dev", tunnel], missing_ok=True)
            self.home_address_at_home(action.prefix_len)

    def home_address_at_home(self, prefix_len: int) -> None:
        """The home address on the home link, without DAD.

        The home agent defends the address until it deregisters (RFC 6275 11.5.5). If the kernel's
        SLAAC created it from the home RA first, DAD runs against the home agent's proxy: the
        address is tentative (unusable as a source: sending the deregistration fails with EINVAL)
        and then fails or is deleted. So: add it with ``nodad``; if an address with that value
        exists and is not already ours (permanent and usable), replace it. Called again when the
        kernel reports the home address removed or dadfailed at home: an address that is already
        right is left alone, so that does not loop.
        """
        cfg = self._mn_cfg()
        home_link = cfg.interfaces[0]
        address = f"{cfg.home_address}/{prefix_len}"
        added = self.run(["ip", "-6", "addr", "add", address, "dev", home_link, "nodad"], exists_ok=True)
        if added.ok:
            return
        listing = self.run(["ip", "-6", "-j", "addr", "show", "dev", home_link])
        if _usable_permanent(listing.stdout, cfg.home_address):
            return
        self.run(["ip", "-6", "addr", "del", address, "dev", home_link], missing_ok=True)
        self.run(["ip", "-6", "addr", "add", address, "dev", home_link, "nodad"], exists_ok=True)

    def _do_route_via_tunnel(self, action: RouteViaTunnel) -> None:
        cfg = self._mn_cfg()
        self.run(["ip", "-6", "route", "replace", "default", "dev", cfg.tunnel_name, "table", str(cfg.table)])
        self.mn.route_via_tunnel = True
        self._sync_rule()

    def _do_del_route_via_tunnel(self, action: DelRouteViaTunnel) -> None:
        cfg = self._mn_cfg()
        self.mn.route_via_tunnel = False
        self._sync_rule()
        self.run(
            ["ip", "-6", "route", "del", "default", "dev", cfg.tunnel_name, "table", str(cfg.table)],
            missing_ok=True,
        )

    def _do_use_cached_router(self, action: UseCachedRouter) -> None:
        # "proto ra" so the next movement drops it with the RA's own routes; metric 1023 so the
        # kernel's RA route (metric 1024) can still be added beside it when the RA comes.
        self.run(
            ["ip", "-6", "route", "replace", "default", "via", str(action.router), "dev", action.iface,
             "metric", str(CACHED_ROUTER_METRIC), "proto", "ra"]
        )  # fmt: skip

    def _do_configure_address(self, action: ConfigureAddress) -> None:
        argv = ["ip", "-6", "addr", "replace", f"{action.address}/{action.prefix_len}", "dev", action.iface]
        if action.optimistic:
            argv.append("optimistic")
        self.run(argv)
        self.addresses[(action.iface, action.address)] = action.prefix_len

    def _do_remove_address(self, action: RemoveAddress) -> None:
        plen = self.addresses.pop((action.iface, action.address), 64)
        self.run(
            ["ip", "-6", "addr", "del", f"{action.address}/{plen}", "dev", action.iface], missing_ok=True
        )

    # ------------------------------------------------------------------ home agent

    def _home_link(self) -> str:
        if not isinstance(self.cfg, HAConfig) or self.cfg.interface is None:
            raise KernelError("needs the home agent's interface (config field 'interface')")
        return self.cfg.interface

    def _do_add_host_route(self, action: AddHostRoute) -> None:
        dev = self.tunnel_name(action.careof_address)
        self.run(["ip", "-6", "route", "replace", f"{action.home_address}/128", "dev", dev])
        self.host_routes[action.home_address] = dev

    def _do_del_host_route(self, action: DelHostRoute) -> None:
        self.run(["ip", "-6", "route", "del", f"{action.home_address}/128"], missing_ok=True)
        self.host_routes.pop(action.home_address, None)

    def _do_proxy_ndp(self, action: ProxyNdp) -> None:
        link = self._home_link()
        self.sysctl(sysctl_key(link, "proxy_ndp"), "1")
        self.run(["ip", "-6", "neigh", "add", "proxy", str(action.address), "dev", link], exists_ok=True)
        self.proxies.add(action.address)

    def _do_del_proxy_ndp(self, action: DelProxyNdp) -> None:
        link = self._home_link()
        self.run(["ip", "-6", "neigh", "del", "proxy", str(action.address), "dev", link], missing_ok=True)
        self.proxies.discard(action.address)

    # ------------------------------------------------------------------ xfrm states and policies

    def put_state(self, key: StateKey, coa: IPv6Address, owner: str, *, wildrecv: bool = False) -> None:
        current = self.states.get(key)
        if current is not None and current.coa == coa:
            current.owner = owner if current.owner != "static" else current.owner
            return
        if current is None:
            result = self.run(state_argv("add", key, coa, wildrecv=wildrecv), exists_ok=True)
            if not result.ok:  # an earlier run's (or a kernel "acquire") state: take it over
                self.run(state_argv("update", key, coa, wildrecv=wildrecv))
        else:
            self.run(state_argv("update", key, coa, wildrecv=wildrecv))
        self.states[key] = XfrmState(key, coa, owner, wildrecv)

    def drop_state(self, key: StateKey) -> None:
        self.run(state_argv("delete", key), missing_ok=True)
        self.states.pop(key, None)

    def put_policy(self, key: PolicyKey, priority: int, templates: tuple[Template, ...], owner: str) -> None:
        current = self.policies.get(key)
        if current is not None and current.priority == priority and current.templates == templates:
            return
        self.run(policy_update_argv(key, priority, templates))
        self.policies[key] = Policy(key, priority, templates, owner)

    def drop_policy(self, key: PolicyKey) -> None:
        self.run(policy_delete_argv(key), missing_ok=True)
        self.policies.pop(key, None)

    def _covered(self, src: IPv6Address, dst: IPv6Address, direction: str, proto: str) -> bool:
        return any(
            pol.key.covers(src, dst, direction, 135) and any(t.proto == proto for t in pol.templates)
            for pol in self.policies.values()
        )

    def _signal_peer(self, peer: IPv6Address | None) -> bool:
        """MN-HA signalling pairs are covered by the static MH policies of :meth:`setup`."""
        return isinstance(self.cfg, MNConfig) and peer == self.cfg.home_agent

    def _hao_key(self, action: InstallHao | RemoveHao) -> tuple[StateKey, PolicyKey]:
        if action.direction == "out":
            if action.peer is None:
                raise KernelError("an outgoing Home Address option needs a peer")
            dst = action.peer
        else:  # accept the option on packets to this node
            dst = self.address
        key: StateKey = (action.home_address, dst, "hao")
        return key, PolicyKey(_net(action.home_address), _net(dst), action.direction)

    def _route2_key(self, action: InstallRoute2 | RemoveRoute2) -> tuple[StateKey, PolicyKey]:
        if action.peer is not None:
            src = action.peer
        elif isinstance(self.cfg, CNConfig | HAConfig):
            src = self.address
        else:
            raise KernelError("a type 2 routing header state needs a peer")
        key: StateKey = (src, action.home_address, "route2")
        return key, PolicyKey(_net(src), _net(action.home_address), action.direction)

    def _do_install_hao(self, action: InstallHao) -> None:
        key, pkey = self._hao_key(action)
        if self._signal_peer(action.peer):
            self.put_state(key, action.careof_address, "signal")
            return
        self.put_state(key, action.careof_address, "data")
        self.put_policy(pkey, PRIO_DATA, (Template("hao", key[0], key[1]),), "data")

    def _do_remove_hao(self, action: RemoveHao) -> None:
        key, pkey = self._hao_key(action)
        self.drop_state(key)
        if pkey in self.policies and self.policies[pkey].owner != "static":
            self.drop_policy(pkey)

    def _do_install_route2(self, action: InstallRoute2) -> None:
        key, pkey = self._route2_key(action)
        if self._signal_peer(action.peer):
            self.put_state(key, action.careof_address, "signal")
            return
        self.put_state(key, action.careof_address, "data")
        self.put_policy(pkey, PRIO_DATA, (Template("route2", key[0], key[1]),), "data")

    def _do_remove_route2(self, action: RemoveRoute2) -> None:
        key, pkey = self._route2_key(action)
        self.drop_state(key)
        if pkey in self.policies and self.policies[pkey].owner != "static":
            self.drop_policy(pkey)

    # ------------------------------------------------------------------ sending

    def prepare_send(self, send: SendMH) -> tuple[IPv6Address, IPv6Address]:
        """Make the kernel add exactly the Home Address option / type 2 routing header ``send``
        asks for; returns the (source, destination) to give the socket.

        The socket sends from the home address (HAO) or to it (RH2); the xfrm ``hao`` state puts
        the care-of address in the source and the home address in the option, the ``route2``
        state the care-of address in the destination and the home address in the header.
        Raises :class:`KernelError` when that cannot be arranged (the message is not sent).
        """
        if send.hao is not None:
            self._ensure_send_state((send.hao, send.dst, "hao"), send.src)
        else:
            key: StateKey = (send.src, send.dst, "hao")
            state = self.states.get(key)
            if state is not None and not isinstance(send.message, HomeTestInit):
                # e.g. the deregistration from home: this peer gets no option any more
                self.events.info("xfrm_state_dropped_for_send", state=list(key), message=send.message.NAME)
                self.drop_state(key)
        if send.rh2 is not None:
            self._ensure_send_state((send.src, send.rh2, "route2"), send.dst)
        else:
            key = (send.src, send.dst, "route2")
            state = self.states.get(key)
            if state is not None and state.owner == "signal" and not isinstance(send.message, HomeTest):
                self.events.info("xfrm_state_dropped_for_send", state=list(key), message=send.message.NAME)
                self.drop_state(key)
        src = send.hao if send.hao is not None else send.src
        dst = send.rh2 if send.rh2 is not None else send.dst
        return src, dst

    def _ensure_send_state(self, key: StateKey, coa: IPv6Address) -> None:
        state = self.states.get(key)
        if state is not None and state.coa == coa:
            return
        if state is not None and state.owner == "data" and key[2] == "route2":
            # Never re-point a binding's routing header for one message (an unauthenticated BU
            # could otherwise redirect the binding's traffic); the message follows the binding.
            self.events.warning(
                "rh2_follows_binding",
                f"message for {key[1]} via {coa} sent along the binding's care-of address {state.coa}",
            )
            return
        self.put_state(key, coa, state.owner if state is not None else "signal")
        src, dst, proto = key
        if not self._covered(src, dst, "out", proto):
            pkey = PolicyKey(_net(src), _net(dst), "out", 135)
            self.put_policy(pkey, PRIO_SIGNAL, (Template(proto, src, dst),), "signal")

    # ------------------------------------------------------------------ start and stop

    def setup(self) -> None:
        """Static xfrm entries and sysctls of the role; raises :class:`KernelError`."""
        cfg = self.cfg
        if isinstance(cfg, MNConfig):
            hoa, ha = cfg.home_address, cfg.home_agent
            # HoTI goes through the tunnel without a Home Address option, even while a route
            # optimisation state for that correspondent exists.
            self.put_policy(
                PolicyKey(_net(hoa), ANY_NET, "out", 135, int(MHType.HOTI)), PRIO_BYPASS, (), "static"
            )
            self.put_policy(
                PolicyKey(_net(hoa), _net(ha), "out", 135), PRIO_SIGNAL, (Template("hao", hoa, ha),), "static"
            )
            self.put_policy(
                PolicyKey(_net(ha), _net(hoa), "in", 135),
                PRIO_SIGNAL,
                (Template("route2", ha, hoa),),
                "static",
            )
            if cfg.optimistic_dad:
                for iface in cfg.interfaces:
                    self.sysctl(sysctl_key(iface, "optimistic_dad"), "1")
                    self.sysctl(sysctl_key(iface, "use_optimistic"), "1")
            if cfg.tcp_recovery:
                # one duplicate ACK per elicited segment, not one per 500 ms and socket
                self.sysctl("net.ipv4.tcp_invalid_ratelimit", "0")
        else:
            # A Binding Update carries a Home Address option before any binding exists.
            self.put_state((ANY, ANY, "hao"), ANY, "static", wildrecv=True)
            self.put_policy(PolicyKey(ANY_NET, ANY_NET, "in", 135), PRIO_MH_ANY, (Template("hao"),), "static")
        if isinstance(cfg, HAConfig):
            if cfg.interface is not None:
                # proxy neighbour discovery and the tunnels need a router (lab configuration)
                key = sysctl_key(cfg.interface, "forwarding")
                value = self.runner(["sysctl", "-n", key])
                self.commands += 1
                if value.stdout.strip() != "1":
                    self.events.warning(
                        "forwarding_off", f"{key} is not 1: proxy ND and forwarding will not work"
                    )
            for peers in self.protected_home_addresses():
                self.put_policy(
                    PolicyKey(_net(cfg.address), peers, "out", 135),
                    PRIO_SIGNAL,
                    (Template("route2"),),
                    "static",
                )
        if isinstance(cfg, CNConfig):
            # HoT goes to the home address through the home agent, never with a routing header.
            self.put_policy(
                PolicyKey(ANY_NET, ANY_NET, "out", 135, int(MHType.HOT)), PRIO_BYPASS, (), "static"
            )
        # Tunnel devices made now, parked (down) until a binding needs one: creating a device
        # during a handover costs about 0.5 s on the twin (see _ensure_tunnel).
        if isinstance(cfg, MNConfig):
            self._park_new_tunnel(cfg.tunnel_name, None, cfg.home_agent)
        if isinstance(cfg, HAConfig) and cfg.interface is not None:
            for hoa in cfg.allowed_mobile_nodes or ():
                self._park_new_tunnel(tunnel_name_for(cfg.tunnel_name, hoa), cfg.address, hoa)
        if isinstance(cfg, MNConfig | HAConfig) and cfg.require_ipsec:
            self.check_esp_policy()

    def _park_new_tunnel(self, name: str, local: IPv6Address | None, remote: IPv6Address) -> None:
        """Best effort: without it the first binding creates the device instead."""
        try:
            result = self.run(
                ["ip", "-6", "tunnel", "add", *self._tunnel_args(name, local, remote)], exists_ok=True
            )
            if not result.ok:  # left over from an earlier run
                self.run(["ip", "-6", "tunnel", "change", *self._tunnel_args(name, local, remote)])
            self.run(["ip", "link", "set", "dev", name, "down"])
        except KernelError as exc:
            self.events.warning("tunnel_not_prepared", f"{name}: {exc}; the first binding creates it")
            return
        self.parked.add(name)
        self.parked_remotes[name] = remote

    def protected_home_addresses(self) -> list[IPv6Network]:
        """HA: the home addresses whose signalling is ESP-protected (allowed list, or the prefix)."""
        if not isinstance(self.cfg, HAConfig):
            return []
        if self.cfg.allowed_mobile_nodes is None:
            return [self.cfg.home_prefix]
        return [_net(a) for a in self.cfg.allowed_mobile_nodes]

    def check_esp_policy(self) -> None:
        """With ``esp_policy_installed``, verify the main-type policy that keeps unprotected
        Mobility Header messages away from the socket is really there."""
        result = self.run(["ip", "-6", "xfrm", "policy", "list", "dir", "in", "ptype", "main"])
        pairs: list[tuple[IPv6Address, IPv6Address]]
        if isinstance(self.cfg, MNConfig):
            pairs = [(self.cfg.home_agent, self.cfg.home_address)]
        elif isinstance(self.cfg, HAConfig):
            pairs = [(net.network_address, self.cfg.address) for net in self.protected_home_addresses()]
        else:
            return
        for src, dst in pairs:
            if not esp_policy_present(result.stdout, src, dst):
                raise KernelError(
                    f"config field 'esp_policy_installed': no 'dir in' main xfrm policy requires ESP for "
                    f"Mobility Header messages from {src} to {dst} (see docs/mip6.md, IPsec)"
                )

    def teardown(self) -> None:
        """Remove everything this adapter installed, best effort (failures are logged)."""
        steps: list[tuple[str, Callable[[], Any]]] = []
        if isinstance(self.cfg, MNConfig) and self.mn.rule_installed:
            steps.append(("rule", lambda: self.run(self._rule_argv("del"), missing_ok=True)))
        for hoa in list(self.host_routes):
            steps.append(
                (
                    f"route {hoa}",
                    lambda a=hoa: self.run(["ip", "-6", "route", "del", f"{a}/128"], missing_ok=True),
                )
            )
        if isinstance(self.cfg, HAConfig) and self.cfg.interface is not None:
            for addr in sorted(self.proxies):
                argv = ["ip", "-6", "neigh", "del", "proxy", str(addr), "dev", self.cfg.interface]
                steps.append((f"proxy {addr}", lambda v=argv: self.run(v, missing_ok=True)))
        for name in sorted(set(self.tunnels) | self.parked):
            steps.append(
                (f"tunnel {name}", lambda n=name: self.run(["ip", "-6", "tunnel", "del", n], missing_ok=True))
            )
        for key in list(self.policies):
            steps.append((f"policy {key}", lambda k=key: self.drop_policy(k)))
        for skey in list(self.states):
            steps.append((f"state {skey}", lambda k=skey: self.drop_state(k)))
        for what, step in steps:
            try:
                step()
            except KernelError as exc:
                self.events.error("teardown_error", f"{what}: {exc}")
        self.tunnels.clear()
        self.parked.clear()
        self.parked_remotes.clear()
        self.host_routes.clear()
        self.proxies.clear()
        self.policies.clear()
        self.states.clear()
        self.mn.rule_installed = False

    def status(self) -> dict[str, Any]:
        return {
            "commands": self.commands,
            "failures": self.failures.as_dict(),
            "tunnels": {
                name: {"local": str(a), "remote": str(b)} for name, (a, b) in sorted(self.tunnels.items())
            },
            "parked_tunnels": sorted(self.parked),
            "xfrm_states": [
                {"src": str(k[0]), "dst": str(k[1]), "proto": k[2], "coa": str(s.coa), "owner": s.owner}
                for k, s in self.states.items()
            ],
            "xfrm_policies": len(self.policies),
            "proxy_ndp": sorted(str(a) for a in self.proxies),
            "host_routes": {str(h): dev for h, dev in sorted(self.host_routes.items())},
        }
