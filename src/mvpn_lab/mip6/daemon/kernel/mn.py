"""The mobile node's kernel adapter: the home address on the tunnel while away, the ``from HOA``
rule and its routing table, care-of addresses, cached routers, static MN-HA signalling policies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any

from mvpn_lab.mip6.core.actions import (
    ConfigureAddress,
    DelRouteViaTunnel,
    RemoveAddress,
    RouteViaTunnel,
    SetHomeAddress,
    SettleHomeAddress,
    UseCachedRouter,
)
from mvpn_lab.mip6.core.config import MNConfig
from mvpn_lab.mip6.daemon.kernel.base import (
    ANY_NET,
    CACHED_ROUTER_METRIC,
    PRIO_BYPASS,
    PRIO_SIGNAL,
    EspNeed,
    KernelAdapter,
    KernelError,
    PolicyKey,
    Template,
    _net,
    _usable,
    _usable_permanent,
    sysctl_key,
)
from mvpn_lab.mip6.wire.constants import MHType


@dataclass
class MNKernel(KernelAdapter):
    cfg: MNConfig
    away: bool = False
    route_via_tunnel: bool = False
    rule_installed: bool = False
    # this daemon took the home address off the interfaces (leaving home): a copy there now is
    # SLAAC's or someone else's, never ours
    home_address_off_link: bool = False
    # an address's flags in-process (netlink.KernelQueries.address_info); None: an ip listing
    address_info: Callable[[str, IPv6Address], dict[str, bool] | None] | None = None

    @property
    def address(self) -> IPv6Address:
        return self.cfg.home_address

    def tunnel_for(self, remote: IPv6Address) -> str:
        return self.cfg.tunnel_name

    def tunnel_names(self) -> set[str]:
        return {*self.tunnels, self.cfg.tunnel_name}

    def idle_tunnel_fallback(self) -> str | None:
        if self.cfg.tunnel_name in self.parked:
            return None
        return self.cfg.tunnel_name  # e.g. the deregistration after a restart while away

    def route2_source(self) -> IPv6Address:
        raise KernelError("a type 2 routing header state needs a peer")

    def signal_peer(self, peer: IPv6Address | None) -> bool:
        """MN-HA signalling pairs are covered by the static MH policies of :meth:`setup_role`."""
        return peer == self.cfg.home_agent

    def setup_role(self) -> None:
        cfg = self.cfg
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

    def tunnels_to_prepare(self) -> list[tuple[str, IPv6Address | None, IPv6Address]]:
        return [(self.cfg.tunnel_name, None, self.cfg.home_agent)]

    def requires_esp(self) -> bool:
        return self.cfg.require_ipsec

    def esp_needs(self) -> list[EspNeed]:
        """Our BUs to the home agent out, its BAs in."""
        home, agent = _net(self.cfg.home_address), _net(self.cfg.home_agent)
        return [EspNeed(home, agent, "out", MHType.BU), EspNeed(agent, home, "in", MHType.BA)]

    def teardown_first(self) -> list[tuple[str, Callable[[], Any]]]:
        if not self.rule_installed:
            return []
        return [("rule", lambda: self.run(self._rule_argv("del"), missing_ok=True))]

    def after_teardown(self) -> None:
        self.rule_installed = False

    # ------------------------------------------------------------------ routing

    def _rule_argv(self, op: str) -> list[str]:
        cfg = self.cfg
        return [
            "ip", "-6", "rule", op, "from", f"{cfg.home_address}/128",
            "table", str(cfg.table), "priority", str(cfg.rule_priority),
        ]  # fmt: skip

    def _sync_rule(self) -> None:
        """The ``from HOA`` rule exists exactly while the MN is away and registered."""
        want = self.away and self.route_via_tunnel
        if want and not self.rule_installed:
            self.queue(self._rule_argv("add"), exists_ok=True)
            self.rule_installed = True
        elif not want and self.rule_installed:
            self.queue(self._rule_argv("del"), missing_ok=True)
            self.rule_installed = False

    def _do_set_home_address(self, action: SetHomeAddress) -> None:
        """What the registration's BU needs, before it is sent (the rest: settle_home_address).

        Away: the home address gets the ``home`` flag where it is (without it the kernel drops
        a packet whose type 2 routing header names it: the BA may come back before the address
        reaches the tunnel device), and the home prefix's route goes from every interface, so
        the BU to the home agent leaves by the visited router. Home: the ``from HOA`` rule goes
        (the deregistration must not enter the tunnel) and the address is back on the home link.
        """
        cfg = self.cfg
        # (queued both ways: the BU's send runs them, see DEFERRABLE)
        if action.away:
            address = f"{action.home_address}/{action.prefix_len}"
            self.queue(["ip", "-6", "addr", "replace", address, "dev", cfg.interfaces[0], "nodad", "home"])
            for iface in cfg.interfaces:
                self.queue(["ip", "-6", "route", "del", str(cfg.home_prefix), "dev", iface], missing_ok=True)
        else:
            self.away = False
            self._sync_rule()
            self.home_address_at_home(action.prefix_len)

    def _do_settle_home_address(self, action: SettleHomeAddress) -> None:
        """Right after the BU: away, the home address moves to the tunnel device, flagged
        ``home``, and off the interfaces (the ``from HOA`` rule comes back if still registered);
        home, it leaves the tunnel device."""
        cfg = self.cfg
        hoa, tunnel = action.home_address, cfg.tunnel_name
        if action.away:
            self._ensure_tunnel(tunnel, self.tunnels.get(tunnel, (None, cfg.home_agent))[0], cfg.home_agent)
            self.run(["ip", "-6", "addr", "replace", f"{hoa}/128", "dev", tunnel, "home"])
            for iface in cfg.interfaces:
                self.run(
                    ["ip", "-6", "addr", "del", f"{hoa}/{action.prefix_len}", "dev", iface], missing_ok=True
                )
            self.home_address_off_link = True
            self.away = True
            self._sync_rule()
        else:
            self.run(["ip", "-6", "addr", "del", f"{hoa}/128", "dev", tunnel], missing_ok=True)

    def home_address_at_home(self, prefix_len: int) -> None:
        """The home address on the home link, without DAD.

        The home agent defends the address until it deregisters (RFC 6275 11.5.5). If the kernel's
        SLAAC created it from the home RA first, DAD runs against the home agent's proxy: the
        address is tentative (unusable as a source: sending the deregistration fails with EINVAL)
        and then fails or is deleted. So: add it with ``nodad``; if an address with that value
        exists and is not already ours (permanent and usable), replace it. Called again when the
        kernel reports the home address removed or dadfailed at home: an address that is already
        right is left alone, so that does not loop. Coming home after this daemon took the address
        off the link, a copy can only be someone else's (SLAAC's from the home RA, typically): a
        delete (harmless when there is none) and the add are queued together, so the
        deregistration waits neither for a look-up nor for the add's answer.
        """
        cfg = self.cfg
        home_link = cfg.interfaces[0]
        address = f"{cfg.home_address}/{prefix_len}"
        add = ["ip", "-6", "addr", "add", address, "dev", home_link, "nodad"]
        delete = ["ip", "-6", "addr", "del", address, "dev", home_link]
        off_link, self.home_address_off_link = self.home_address_off_link, False
        if off_link:  # any copy is not ours: delete it blindly (no reply to wait for), then add
            self.queue(delete, missing_ok=True)
            self.queue(add, exists_ok=True)
            return
        added = self.run(add, exists_ok=True)
        if added.ok or self._home_address_usable(home_link):
            return
        self.run(delete, missing_ok=True)
        self.run(add, exists_ok=True)

    def _home_address_usable(self, iface: str) -> bool:
        """The home address on ``iface`` is ours: added by hand and out of DAD."""
        home = self.cfg.home_address
        if self.address_info is not None:
            try:
                return _usable(self.address_info(iface, home))
            except Exception as exc:  # pyroute2 raises its own types; fall back to ip
                self.events.warning("netlink_query_failed", f"addresses of {iface}: {exc}")
        listing = self.run(["ip", "-6", "-j", "addr", "show", "dev", iface])
        return _usable_permanent(listing.stdout, home)

    def _do_route_via_tunnel(self, action: RouteViaTunnel) -> None:
        cfg = self.cfg
        self.run(["ip", "-6", "route", "replace", "default", "dev", cfg.tunnel_name, "table", str(cfg.table)])
        self.route_via_tunnel = True
        self._sync_rule()

    def _do_del_route_via_tunnel(self, action: DelRouteViaTunnel) -> None:
        cfg = self.cfg
        self.route_via_tunnel = False
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
