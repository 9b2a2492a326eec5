"""The home agent's kernel adapter: one tunnel device per mobile node (named after its remote,
reused when idle), host routes into them, proxy neighbour discovery on the home link, and the
static policies for Binding Updates from anyone and ESP-protected signalling to its mobile nodes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from mvpn_lab.mip6.core.actions import AddHostRoute, DelHostRoute, DelProxyNdp, ProxyNdp, SetTunnel
from mvpn_lab.mip6.core.config import HAConfig
from mvpn_lab.mip6.daemon.kernel.base import (
    PRIO_SIGNAL,
    EspNeed,
    KernelAdapter,
    KernelError,
    PolicyKey,
    Template,
    _net,
    accept_binding_updates,
    sysctl_key,
    tunnel_name_for,
)
from mvpn_lab.mip6.wire.constants import MHType


@dataclass
class HAKernel(KernelAdapter):
    cfg: HAConfig

    @property
    def address(self) -> IPv6Address:
        return self.cfg.address

    def tunnel_name(self, remote: IPv6Address) -> str:
        for name, (_, current) in self.tunnels.items():
            if current == remote:  # possibly a reused device named after an earlier remote
                return name
        return self._fresh_tunnel_name(remote)

    def tunnel_for(self, remote: IPv6Address) -> str:
        return self.tunnel_name(remote)

    def _fresh_tunnel_name(self, remote: IPv6Address) -> str:
        """HA: the name for a new device towards ``remote`` that no tracked device uses (a reused
        device keeps the name of the remote it was made for)."""
        taken = set(self.tunnels) | self.parked
        for salt in range(256):
            name = tunnel_name_for(self.cfg.tunnel_name, IPv6Address(int(remote) ^ salt))
            if name not in taken:
                return name
        raise KernelError(f"no free tunnel name for {remote}")

    def setup_role(self) -> None:
        cfg = self.cfg
        accept_binding_updates(self)
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

    def tunnels_to_prepare(self) -> list[tuple[str, IPv6Address | None, IPv6Address]]:
        if self.cfg.interface is None:
            return []
        cfg = self.cfg
        return [
            (tunnel_name_for(cfg.tunnel_name, hoa), cfg.address, hoa)
            for hoa in cfg.allowed_mobile_nodes or ()
        ]

    def requires_esp(self) -> bool:
        return self.cfg.require_ipsec

    def protected_home_addresses(self) -> list[IPv6Network]:
        """HA: the home addresses whose signalling is ESP-protected (allowed list, or the prefix)."""
        if self.cfg.allowed_mobile_nodes is None:
            return [self.cfg.home_prefix]
        return [_net(a) for a in self.cfg.allowed_mobile_nodes]

    def esp_needs(self) -> list[EspNeed]:
        """Per allowed home address (with ``any``, the whole home prefix): its BUs in, our BAs out."""
        me = _net(self.cfg.address)
        needs: list[EspNeed] = []
        for net in self.protected_home_addresses():
            needs += [EspNeed(net, me, "in", MHType.BU), EspNeed(me, net, "out", MHType.BA)]
        return needs

    def teardown_routing(self) -> list[tuple[str, Callable[[], Any]]]:
        steps: list[tuple[str, Callable[[], Any]]] = []
        if self.cfg.interface is not None:
            for addr in sorted(self.proxies):
                argv = ["ip", "-6", "neigh", "del", "proxy", str(addr), "dev", self.cfg.interface]
                steps.append((f"proxy {addr}", partial(self.run, argv, missing_ok=True)))
        return steps

    def _do_set_tunnel(self, action: SetTunnel) -> None:
        name = self.tunnel_name(action.remote)
        if name not in self.tunnels and self.parked:
            # reuse an idle device: the one last pointed at this remote (the kernel refuses two
            # devices with the same endpoints), else any; tunnel_name() then finds it by remote
            same = sorted(n for n in self.parked if self.parked_remotes.get(n) == action.remote)
            name = same[0] if same else min(self.parked)
        self._ensure_tunnel(name, action.local, action.remote)

    # ------------------------------------------------------------------ home link

    def _home_link(self) -> str:
        if self.cfg.interface is None:
            raise KernelError("needs the home agent's interface (config field 'interface')")
        return self.cfg.interface

    def _do_add_host_route(self, action: AddHostRoute) -> None:
        dev = self.tunnel_name(action.careof_address)
        self.run(["ip", "-6", "route", "replace", f"{action.home_address}/128", "dev", dev])
        self.host_routes[action.home_address] = dev

    def _do_del_host_route(self, action: DelHostRoute) -> None:
        dev = self.host_routes.pop(action.home_address, None)
        undo = None if dev is None else partial(self.host_routes.__setitem__, action.home_address, dev)
        self.queue(["ip", "-6", "route", "del", f"{action.home_address}/128"], missing_ok=True, undo=undo)

    def _do_proxy_ndp(self, action: ProxyNdp) -> None:
        link = self._home_link()
        self.sysctl(sysctl_key(link, "proxy_ndp"), "1")
        self.run(["ip", "-6", "neigh", "add", "proxy", str(action.address), "dev", link], exists_ok=True)
        self.proxies.add(action.address)

    def _do_del_proxy_ndp(self, action: DelProxyNdp) -> None:
        link = self._home_link()
        self.run(["ip", "-6", "neigh", "del", "proxy", str(action.address), "dev", link], missing_ok=True)
        self.proxies.discard(action.address)
