"""Kernel adapter: the state machines' data-plane actions as iproute2 commands.

Every command goes through an injectable runner (``argv -> CommandResult``) so tests can assert
the exact command lines. The adapter keeps a record of what it installed, which makes most steps
idempotent (``replace``/``update`` semantics, "already exists" and "does not exist" answers
accepted where they mean the desired state is there) and lets :meth:`KernelAdapter.teardown`
remove it all on exit. A failing step stops that one action and is reported as one line naming
the action; the daemon goes on.

The actions on the path to a handover's Binding Update or Acknowledgement (:data:`DEFERRABLE`) and
a send's own xfrm changes do not wait for each command: their commands are queued and
:meth:`KernelAdapter.flush` runs them together (one ``ip -batch`` write and one sentinel, see
``plugins/module_utils/ipbatch.py``) right before the message leaves, or at the end of the loop
pass. A queued command that fails is reported against the action that queued it, counted, and
its record undone; a command whose result decides what comes next runs at once, after whatever
is queued.

Route optimisation uses the kernel's Mobile IPv6 xfrm types (``proto hao``/``proto route2`` in
``mode ro``); all policies the daemon installs are of ``ptype sub``, so they combine with
``ptype main`` IPsec policies (ESP for MN-HA signalling) instead of competing with them. Policy
priorities (lower wins) are the ``PRIO_*`` constants. See docs/mip6.md for the full table.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv6Address, IPv6Network
from typing import Any, Protocol

from mvpn_lab.collection import module_utils
from mvpn_lab.mip6.core.actions import (
    Action,
    DelTunnel,
    InstallHao,
    InstallRoute2,
    RemoveHao,
    RemoveRoute2,
    SendMH,
    SetTunnel,
)
from mvpn_lab.mip6.core.config import NodeConfig
from mvpn_lab.mip6.core.counters import Counters
from mvpn_lab.mip6.daemon.events import EventLog
from mvpn_lab.mip6.wire.constants import IPPROTO_MH
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


#: ``plugins/module_utils/ipbatch.py`` of the collection (the daemon bundle carries it): the one
#: runner of iproute2 commands the collection's modules and the daemon share
_ipbatch = module_utils("ipbatch")
#: ``plugins/module_utils/xfrm.py``: the one ``ip xfrm`` command layer
_xfrm = module_utils("xfrm")
CommandResult: Any = _ipbatch.CommandResult
SubprocessRunner: Any = _ipbatch.SubprocessRunner
IpBatchRunner: Any = _ipbatch.IpBatchRunner
batch_line: Callable[[Sequence[str]], tuple[tuple[str, ...], str] | None] = _ipbatch.batch_line


class CommandOutcome(Protocol):
    """What a runner returns (a :data:`CommandResult`)."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool: ...
    @property
    def message(self) -> str: ...


CommandRunner = Callable[[Sequence[str]], CommandOutcome]  # argv -> CommandResult


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
        return list(_xfrm.ro_template_args(self.proto, self.src, self.dst))


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
    return list(_xfrm.sub_policy_args("update", key.selector(), priority, [t.args() for t in templates]))


def policy_delete_argv(key: PolicyKey) -> list[str]:
    return list(_xfrm.sub_policy_args("delete", key.selector()))


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
    return list(_xfrm.ro_state_args(op, src, dst, proto, coa, wildrecv))


# --------------------------------------------------------------------------- ESP policy check


#: ``valid_life_time`` of an address that never expires (INFINITY_LIFE_TIME)
FOREVER = 0xFFFFFFFF


def _address_info(listing: str, address: IPv6Address) -> dict[str, Any] | None:
    """``address``'s entry (``addr_info``) in ``ip -j addr show`` output, or None."""
    try:
        links = json.loads(listing or "[]")
    except ValueError:
        return None
    for link in links if isinstance(links, list) else []:
        for info in link.get("addr_info", []) if isinstance(link, dict) else []:
            if isinstance(info, dict) and info.get("local") == str(address):
                return info
    return None


def address_valid_lifetime(listing: str, address: IPv6Address) -> float | None:
    """The remaining valid lifetime in seconds of ``address`` in ``ip -j addr show`` output; None
    when it never expires or is not listed (nothing to cap)."""
    valid = (_address_info(listing, address) or {}).get("valid_life_time")
    if isinstance(valid, int) and not isinstance(valid, bool) and 0 <= valid < FOREVER:
        return float(valid)
    return None


def _usable(info: dict[str, Any] | None) -> bool:
    """Whether an address, flagged as ``ip -j addr show`` flags it, was added by hand and is out
    of DAD (None: not there)."""
    return info is not None and not any(info.get(flag) for flag in ("dynamic", "tentative", "dadfailed"))


def _usable_permanent(listing: str, address: IPv6Address) -> bool:
    """Whether ``ip -j addr show`` output has ``address`` added by hand and out of DAD."""
    return _usable(_address_info(listing, address))


@dataclass(frozen=True)
class EspNeed:
    """One direction of MN-HA signalling that a main-type xfrm policy must protect with ESP."""

    src: IPv6Network
    dst: IPv6Network
    direction: str  # "in" or "out", as this host's kernel sees it
    mh_type: int  # 5 (BU) or 6 (BA)

    def text(self) -> str:
        name = {5: "BU", 6: "BA"}.get(self.mh_type, f"MH type {self.mh_type}")
        return f"{name} (MH type {self.mh_type}) {self.direction} from {self.src} to {self.dst}"


def esp_policy_covers(policies: Sequence[dict[str, Any]], need: EspNeed) -> bool:
    """Whether a policy of ``policies`` (``module_utils/xfrm.parse_policies`` of ``ip -6 xfrm policy
    list ptype main``) requires ESP for ``need``: its direction, a selector whose addresses contain
    ``need``'s whole source and destination, protocol any or mobility-header, MH type any or
    ``need``'s, action allow, an ``esp`` template of level ``required``."""
    for policy in policies:
        sel = policy["sel"]
        try:
            sel_src, sel_dst = IPv6Network(sel["src"]), IPv6Network(sel["dst"])
        except ValueError:  # an IPv4 selector
            continue
        if not (need.src.subnet_of(sel_src) and need.dst.subnet_of(sel_dst)):
            continue
        if policy["dir"] != need.direction or policy["action"] != "allow" or policy["ptype"] != "main":
            continue
        if sel.get("proto") not in (0, None, IPPROTO_MH) or sel.get("type") not in (None, need.mh_type):
            continue
        if any(t["proto"] == "esp" and t["level"] == "required" for t in policy["templates"]):
            return True
    return False


# --------------------------------------------------------------------------- the adapter


def accept_binding_updates(kernel: KernelAdapter) -> None:
    """HA and CN: a Binding Update carries a Home Address option before any binding exists."""
    kernel.put_state((ANY, ANY, "hao"), ANY, "static", wildrecv=True)
    kernel.put_policy(PolicyKey(ANY_NET, ANY_NET, "in", 135), PRIO_MH_ANY, (Template("hao"),), "static")


#: Actions whose commands may wait for the next :meth:`KernelAdapter.flush`: what the mobile node
#: does before its BU, and the home agent before a deregistration's BA. Whatever reads a command's
#: result (an address look-up, a tunnel's creation) or needs the change in place when the action
#: returns (the home agent's host route, which releases the packets it held) is not here.
DEFERRABLE = frozenset(
    {"set_home_address", "install_hao", "install_route2", "remove_hao", "remove_route2", "del_host_route"}
)
#: ``_Queued.owner`` of a send's own commands (:meth:`KernelAdapter.prepare_send`)
SEND = "send"


@dataclass
class _Queued:
    """A command waiting for :meth:`KernelAdapter.flush`."""

    argv: list[str]
    owner: Action | str | None  # the action that queued it, SEND, or None (run at once)
    missing_ok: bool = False
    exists_ok: bool = False
    if_exists: list[str] | None = None  # run instead when the kernel answers "exists"
    undo: Callable[[], Any] | None = None  # forget what the record says the command did


@dataclass
class KernelAdapter:
    """Turns data-plane actions into commands for one node: the shared part (running commands,
    tunnels, Mobile IPv6 xfrm states and policies, sending, teardown). Each role's adapter
    (:mod:`.mn`, :mod:`.ha`, :mod:`.cn`) adds its actions and static entries; :func:`kernel_adapter`
    in :mod:`mvpn_lab.mip6.daemon.kernel` picks it by the config's role."""

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
    queued: list[_Queued] = field(default_factory=list)
    #: the action (or SEND) whose commands are being queued, else None: commands run at once
    deferring: Action | str | None = None

    # ------------------------------------------------------------------ plumbing

    def run(
        self, argv: Sequence[str], *, missing_ok: bool = False, exists_ok: bool = False
    ) -> CommandOutcome:
        """Run one command now (after the queued ones); raise :class:`KernelError` unless it
        worked (or failed harmlessly)."""
        if self.queued:
            self.flush()
        result = self.runner(argv)
        self._ran(argv, result)
        return self._judge(argv, result, missing_ok=missing_ok, exists_ok=exists_ok)

    def _ran(self, argv: Sequence[str], result: CommandOutcome) -> None:
        self.commands += 1
        self.events.debug("kernel_command", argv=list(argv), returncode=result.returncode)

    @staticmethod
    def _judge(
        argv: Sequence[str], result: CommandOutcome, *, missing_ok: bool = False, exists_ok: bool = False
    ) -> CommandOutcome:
        if result.ok:
            return result
        text = result.message
        if (missing_ok and is_missing_error(text)) or (exists_ok and is_exists_error(text)):
            return result
        raise KernelError(f"'{' '.join(argv)}' failed: {text}")

    def queue(
        self,
        argv: list[str],
        *,
        missing_ok: bool = False,
        exists_ok: bool = False,
        if_exists: list[str] | None = None,
        undo: Callable[[], Any] | None = None,
    ) -> None:
        """A command whose result nothing reads: queued while :attr:`deferring`, else run at once
        (with what is queued before it) and raising like :meth:`run`. ``if_exists`` runs after it
        when the kernel answers "exists"."""
        self.queued.append(_Queued(argv, self.deferring, missing_ok, exists_ok, if_exists, undo))
        if self.deferring is None:
            self.flush()

    def flush(self) -> None:
        """Run the queued commands, in order and together (the runner's ``run_many`` when it has
        one). A failed one is reported against the action that queued it (``kernel_error``,
        counted by the action's kind) and its record undone; raises :class:`KernelError` when a
        command someone waits for failed: one not queued by an action, or a send's (the message
        must not leave without its option or header)."""
        queued, self.queued = self.queued, []
        if not queued:
            return
        argvs = [q.argv for q in queued]
        run_many = getattr(self.runner, "run_many", None)
        results = run_many(argvs) if run_many is not None else [self.runner(argv) for argv in argvs]
        waited_for: KernelError | None = None
        for q, result in zip(queued, results, strict=True):
            self._ran(q.argv, result)
            try:
                exists_ok = q.exists_ok or q.if_exists is not None
                self._judge(q.argv, result, missing_ok=q.missing_ok, exists_ok=exists_ok)
                if q.if_exists is not None and not result.ok:
                    self.run(q.if_exists)
            except KernelError as exc:
                if q.undo is not None:
                    q.undo()
                if q.owner is None or q.owner == SEND:
                    waited_for = waited_for or exc
                    continue
                assert not isinstance(q.owner, str)
                self.failures.inc(q.owner.kind)
                self.events.error("kernel_error", f"{describe(q.owner)}: {exc}", action=q.owner.kind)
        if waited_for is not None:
            raise waited_for

    def execute(self, action: Action) -> bool:
        """Carry out one data-plane action; False (and one error line) when a step failed. The
        commands of a :data:`DEFERRABLE` action are queued (see :meth:`flush`): True then means
        that nothing failed before they were queued."""
        handler = getattr(self, f"_do_{action.kind}", None)
        if handler is None:
            self.failures.inc(action.kind)
            self.events.error("kernel_error", f"{describe(action)}: no kernel mapping for this action")
            return False
        self.deferring = action if action.kind in DEFERRABLE else None
        try:
            handler(action)
        except KernelError as exc:
            self.failures.inc(action.kind)
            self.events.error("kernel_error", f"{describe(action)}: {exc}", action=action.kind)
            return False
        finally:
            self.deferring = None
        return True

    def sysctl(self, key: str, value: str) -> None:
        if f"{key}={value}" in self.sysctls:
            return
        self.run(["sysctl", "-q", "-w", f"{key}={value}"])
        self.sysctls.add(f"{key}={value}")

    # ------------------------------------------------------------------ what each role adds

    @property
    def address(self) -> IPv6Address:
        """This node's own address (MN: the home address)."""
        raise NotImplementedError

    def tunnel_for(self, remote: IPv6Address) -> str:
        """The device for a new or changed tunnel towards ``remote``."""
        raise KernelError("a correspondent node has no tunnels")

    def tunnel_names(self) -> set[str]:
        return set(self.tunnels)

    def idle_tunnel_fallback(self) -> str | None:
        """The device to park on ``del_tunnel`` when none points at the remote."""
        return None

    def route2_source(self) -> IPv6Address:
        """The source of a type 2 routing header state given without a peer."""
        return self.address

    def signal_peer(self, peer: IPv6Address | None) -> bool:
        """Whether ``peer`` is covered by static signalling policies (MN-HA)."""
        return False

    def setup_role(self) -> None:
        """The role's static xfrm entries and sysctls."""

    def tunnels_to_prepare(self) -> list[tuple[str, IPv6Address | None, IPv6Address]]:
        return []

    def requires_esp(self) -> bool:
        return False

    def esp_needs(self) -> list[EspNeed]:
        """The directions of MN-HA signalling that main-type policies must protect with ESP."""
        return []

    def teardown_first(self) -> list[tuple[str, Callable[[], Any]]]:
        return []

    def teardown_routing(self) -> list[tuple[str, Callable[[], Any]]]:
        return []

    def after_teardown(self) -> None:
        """Forget role state once everything is removed."""

    # ------------------------------------------------------------------ tunnels

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
        self._ensure_tunnel(self.tunnel_for(action.remote), action.local, action.remote)

    def _do_del_tunnel(self, action: DelTunnel) -> None:
        """Park the device (down, kept for the next binding) instead of deleting it."""
        name = next((n for n, (_, r) in self.tunnels.items() if r == action.remote), None)
        if name is None:
            name = self.idle_tunnel_fallback()
        if name is None:
            return  # no device of ours points there: nothing to undo, nothing else to touch
        self.run(["ip", "link", "set", "dev", name, "down"], missing_ok=True)
        self.parked.add(name)
        self.parked_remotes[name] = action.remote
        self.tunnels.pop(name, None)
        for hoa, dev in list(self.host_routes.items()):
            if dev == name:  # the kernel removed the route when the device went down
                del self.host_routes[hoa]

    # ------------------------------------------------------------------ xfrm states and policies

    def put_state(self, key: StateKey, coa: IPv6Address, owner: str, *, wildrecv: bool = False) -> None:
        current = self.states.get(key)
        if current is not None and current.coa == coa:
            current.owner = owner if current.owner != "static" else current.owner
            return
        forget = partial(self.states.pop, key, None)
        if current is None:
            # an earlier run's (or a kernel "acquire") state answers "exists": take it over
            self.queue(
                state_argv("add", key, coa, wildrecv=wildrecv),
                if_exists=state_argv("update", key, coa, wildrecv=wildrecv),
                undo=forget,
            )
        else:
            self.queue(state_argv("update", key, coa, wildrecv=wildrecv), undo=forget)
        self.states[key] = XfrmState(key, coa, owner, wildrecv)

    def drop_state(self, key: StateKey) -> None:
        self.queue(state_argv("delete", key), missing_ok=True)
        self.states.pop(key, None)

    def put_policy(self, key: PolicyKey, priority: int, templates: tuple[Template, ...], owner: str) -> None:
        current = self.policies.get(key)
        if current is not None and current.priority == priority and current.templates == templates:
            return
        self.queue(policy_update_argv(key, priority, templates), undo=partial(self.policies.pop, key, None))
        self.policies[key] = Policy(key, priority, templates, owner)

    def drop_policy(self, key: PolicyKey) -> None:
        self.queue(policy_delete_argv(key), missing_ok=True)
        self.policies.pop(key, None)

    def _covered(self, src: IPv6Address, dst: IPv6Address, direction: str, proto: str) -> bool:
        return any(
            pol.key.covers(src, dst, direction, 135) and any(t.proto == proto for t in pol.templates)
            for pol in self.policies.values()
        )

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
        src = action.peer if action.peer is not None else self.route2_source()
        key: StateKey = (src, action.home_address, "route2")
        return key, PolicyKey(_net(src), _net(action.home_address), action.direction)

    def _do_install_hao(self, action: InstallHao) -> None:
        key, pkey = self._hao_key(action)
        if self.signal_peer(action.peer):
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
        if self.signal_peer(action.peer):
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
        Raises :class:`KernelError` when that cannot be arranged (the message is not sent). The
        commands queued before it run together with its own, before it returns.
        """
        self.deferring = SEND
        try:
            self._prepare_send(send)
        finally:
            # what was queued goes to the kernel even when this send cannot be prepared
            self.deferring = None
            self.flush()
        src = send.hao if send.hao is not None else send.src
        dst = send.rh2 if send.rh2 is not None else send.dst
        return src, dst

    def _prepare_send(self, send: SendMH) -> None:
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
        """Static xfrm entries and sysctls, tunnel devices prepared; raises :class:`KernelError`."""
        self.setup_role()
        # Tunnel devices made now, parked (down) until a binding needs one: creating a device
        # during a handover costs about 0.5 s on the twin (see _ensure_tunnel).
        for name, local, remote in self.tunnels_to_prepare():
            self._park_new_tunnel(name, local, remote)
        if self.requires_esp():
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

    def check_esp_policy(self) -> None:
        """With ``esp_policy_installed``, verify that main-type policies require ESP for every
        direction of the MN-HA signalling (:meth:`esp_needs`); refuse to start, naming each one
        that is not covered."""
        result = self.run(["ip", "-6", "xfrm", "policy", "list", "ptype", "main"])
        policies = _xfrm.parse_policies(result.stdout)
        missing = [need.text() for need in self.esp_needs() if not esp_policy_covers(policies, need)]
        if missing:
            raise KernelError(
                "config field 'esp_policy_installed': no main xfrm policy requires ESP for "
                + "; ".join(missing)
                + " (see docs/mip6.md, IPsec)"
            )

    def teardown(self) -> None:
        """Remove everything this adapter installed, best effort (failures are logged)."""
        steps: list[tuple[str, Callable[[], Any]]] = list(self.teardown_first())
        for hoa in list(self.host_routes):
            route = ["ip", "-6", "route", "del", f"{hoa}/128"]
            steps.append((f"route {hoa}", partial(self.run, route, missing_ok=True)))
        steps += self.teardown_routing()
        for name in sorted(set(self.tunnels) | self.parked):
            tunnel = ["ip", "-6", "tunnel", "del", name]
            steps.append((f"tunnel {name}", partial(self.run, tunnel, missing_ok=True)))
        for key in list(self.policies):
            steps.append((f"policy {key}", partial(self.drop_policy, key)))
        for skey in list(self.states):
            steps.append((f"state {skey}", partial(self.drop_state, skey)))
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
        self.after_teardown()

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
