"""The mobile node's driver: netlink (links, addresses, routes) and Router Advertisements into
movement detection, the prefix cache on disk, stale default routes dropped, TCP recovery, and the
deregistration at exit."""

from __future__ import annotations

import json
import os
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

from mvpn_lab.mip6.core.actions import Action, ReceivedPacket, ResumeTcp, SendMH
from mvpn_lab.mip6.core.config import MNConfig
from mvpn_lab.mip6.core.mn import Location, MobileNode
from mvpn_lab.mip6.daemon.io import parse_iw_ssid
from mvpn_lab.mip6.daemon.kernel.mn import MNKernel
from mvpn_lab.mip6.daemon.ndisc import ND_ROUTER_ADVERT, NdiscError, NdiscSocket, RawSender, parse_ra
from mvpn_lab.mip6.daemon.netlink import (
    AddressEvent,
    KernelQueries,
    LinkEvent,
    MovementTranslator,
    NetlinkSource,
    RouteEvent,
)
from mvpn_lab.mip6.daemon.roles.base import NodeArgs, Reader, RoleDriver, Services
from mvpn_lab.mip6.daemon.tcprecovery import TcpRecovery


class MobileNodeDriver(RoleDriver):
    node: MobileNode
    kernel: MNKernel

    def __init__(self, cfg: MNConfig, loop: Services, args: NodeArgs) -> None:
        self.cfg = cfg
        self.loop = loop
        self.events = loop.events
        self.node = MobileNode(cfg, clock=args.clock, sink=args.sink, logger=args.logger, random=args.random)
        self.kernel = MNKernel(cfg, loop.io.runner, loop.events, address_info=loop.io.address_info)
        self.translator = MovementTranslator(cfg.interfaces, ifname=loop.io.ifname)
        self.tcp: TcpRecovery | None = None
        if cfg.tcp_recovery:
            self.tcp = TcpRecovery(self._send_raw, read_connections=loop.io.read_tcp6, random=args.random)
        self._routers: dict[str, IPv6Address] = {}  # last router heard per interface
        # interfaces whose RA default routes went at link-up and that have heard no RA since
        self._cleared_at_link_up: set[str] = set()
        self._netlink_overruns = 0
        # when the loop woke for the last link-up of one of our interfaces not yet followed by a
        # BU to the home agent (answer_fields; the wake-up processing_ms counts from, too)
        self._link_up_at: float | None = None

    @staticmethod
    def open_io(cfg: MNConfig, opened: list[Any]) -> dict[str, Any]:
        """The mobile node's sockets beside the Mobility Header one (closed by the caller on error)."""
        ndisc = NdiscSocket.open((ND_ROUTER_ADVERT,))
        opened.append(ndisc)
        netlink = NetlinkSource.open()
        opened.append(netlink)
        queries = KernelQueries()
        opened.append(queries)
        raw = RawSender.open() if cfg.tcp_recovery else None
        return {
            "ndisc": ndisc,
            "raw": raw,
            "netlink": netlink,
            "netlink_dump": NetlinkSource.dump,
            "queries": queries,
            "ra_default_gateways": queries.ra_default_gateways,
            "ssid": queries.ssid,
            "address_info": queries.address_info,
        }

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        self._load_prefix_cache()
        try:
            messages = self.loop.io.netlink_dump()
        except Exception as exc:  # pyroute2 raises its own types
            self.events.error("netlink_error", f"initial dump of links and addresses: {exc}")
            messages = []
        for msg in messages:
            self._movement(msg)
        if self.cfg.movement_detection == "ra":  # (in l2 mode the core solicits at link-up)
            for iface in self.cfg.interfaces:  # ask for an RA now instead of waiting for one
                if self.translator.up.get(iface):
                    self.loop.send_rs(iface)

    def readers(self) -> list[Reader]:
        return [(self.loop.io.netlink, self.on_netlink_readable)]

    # ------------------------------------------------------------------ signalling

    def esp_for(self, pkt: ReceivedPacket) -> bool:
        cfg = self.cfg
        if not cfg.require_ipsec or not cfg.esp_policy_installed:
            return False
        return pkt.src == cfg.home_agent and pkt.pseudo_dst == cfg.home_address

    def send_device(self, send: SendMH) -> str | None:
        return self.cfg.tunnel_name if send.via_tunnel else None

    def answer_fields(self, send: SendMH) -> dict[str, Any]:
        """The first BU to the home agent after a link-up: ``since_link_up_ms``, from the wake-up
        that read the link-up to the send. With ``l2`` detection that is the whole handover's
        work (the prefix cache, stale routes, the care-of address, the BU's kernel entries);
        ``processing_ms`` only counts from the last wake-up, which may be the kernel's report of
        the new address. With ``ra`` detection it includes waiting for the RA and DAD."""
        if self._link_up_at is None or send.message.NAME != "BU" or send.dst != self.cfg.home_agent:
            return {}
        since, self._link_up_at = self.loop.clock.monotonic() - self._link_up_at, None
        return {"since_link_up_ms": round(since * 1000, 3)}

    def begin_exit(self) -> bool:
        return self.node.begin_exit()

    def exit_done(self) -> bool | None:
        return None if self.node.exit_seq is None else self.node.exit_acked

    # ------------------------------------------------------------------ TCP recovery

    def execute(self, action: Action) -> bool:
        if not isinstance(action, ResumeTcp):
            return False
        if self.tcp is None:
            return True
        try:
            conns = self.tcp.resume(action)
        except OSError as exc:
            self.events.error("tcp_recovery_failed", f"{action.kind} for {action.peer or 'all peers'}: {exc}")
            return True
        self.events.info(
            "tcp_recovery",
            peer=action.peer,
            connections=[f"[{c.local}]:{c.local_port}-[{c.remote}]:{c.remote_port}" for c in conns],
        )
        return True

    def _send_raw(self, packet: bytes) -> None:
        if self.loop.io.raw is None:
            raise OSError("no raw IPv6 socket")
        self.loop.io.raw.send(packet)

    def status(self) -> dict[str, Any]:
        return {} if self.tcp is None else {"tcp_recovery": {"connections_prompted": self.tcp.prompted}}

    # ------------------------------------------------------------------ Router Advertisements

    def on_ndisc(self, kind: int | None, data: bytes, src: IPv6Address, iface: str | None) -> None:
        if kind == ND_ROUTER_ADVERT:
            self._router_advertisement(data, src, iface)

    def _router_advertisement(self, data: bytes, src: IPv6Address, iface: str | None) -> None:
        if iface is None or iface not in self.cfg.interfaces:
            return
        if not src.is_link_local:
            self.events.warning("ra_dropped", f"router advertisement from {src} (not link-local) on {iface}")
            return
        try:
            ra = parse_ra(data)
        except NdiscError as exc:
            self.events.warning("ra_dropped", f"router advertisement from {src} on {iface}: {exc}")
            return
        prefixes = ra.link_prefixes()
        self.loop.counters.inc("ra_received")
        self.events.info("router_advertisement", iface=iface, router=src, prefixes=prefixes)
        # A new router (RFC 6275 11.5.1): the others' default routes go. Without a link change
        # before the BU, which must not leave by them; on the first RA after a link-up, which
        # dropped them all already (routes the kernel added since come from this link's RAs),
        # after it: the look-up and the deletions are not on the BU's path.
        drop_after = False
        if self._routers.get(iface) != src:
            self._routers[iface] = src
            if iface in self._cleared_at_link_up:
                drop_after = True
            else:
                self._drop_default_routes(iface, keep=src)
        self._cleared_at_link_up.discard(iface)
        iid = self.translator.iids.get(iface)
        node = self.node
        before = node.detector.cache.copy()
        node.on_router_advertisement(iface, prefixes, iid=iid, router=src)
        self.loop.after_input()
        if drop_after:
            self._drop_default_routes(iface, keep=src)
        if node.detector.cache != before:
            self._save_prefix_cache()

    def _load_prefix_cache(self) -> None:
        path = self.cfg.prefix_cache_file
        if not path or not self.cfg.prefix_cache:
            return
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self.events.warning("prefix_cache_unreadable", f"{path}: {exc}; starting with an empty cache")
            return
        loaded = self.node.detector.import_cache(data)
        self.events.info("prefix_cache_loaded", path=path, networks=loaded)

    def _save_prefix_cache(self) -> None:
        path = self.cfg.prefix_cache_file
        if not path:
            return
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self.node.detector.export_cache(), indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, target)
        except OSError as exc:
            self.events.warning("prefix_cache_not_saved", f"{path}: {exc}")

    # ------------------------------------------------------------------ netlink

    def on_netlink_readable(self) -> None:
        try:
            messages = self.loop.io.netlink.read()
        except Exception as exc:  # pyroute2 raises its own types
            self.events.error("netlink_error", f"netlink read: {exc}")
            return
        overruns = getattr(self.loop.io.netlink, "overruns", 0)
        if overruns > self._netlink_overruns:
            # the kernel dropped events (socket buffer full): read the whole state again
            self._netlink_overruns = overruns
            self.events.warning(
                "netlink_overrun", "netlink events were lost; reading links and addresses again"
            )
            try:
                messages = [*messages, *self.loop.io.netlink_dump()]
            except Exception as exc:
                self.events.error("netlink_error", f"dump after an overrun: {exc}")
        for msg in messages:
            self._movement(msg)
        self.loop.after_input()

    def _movement(self, msg: Any) -> None:
        node = self.node
        for event in self.translator.translate(msg):
            if isinstance(event, LinkEvent):
                self.events.info("link", iface=event.iface, up=event.up)
                self._link_up_at = self.loop.trigger_at if event.up else None
                if event.up:
                    ours = event.iface in self.cfg.interfaces
                    network = self._network_name(event.iface)
                    # Back on a home link the prefix cache knows with its router, the
                    # deregistration goes on-link first and the other routers' routes after it
                    # (the home router's stays: the RA answering our RS may have put it back
                    # already). Elsewhere they all go first, so that the next BU cannot leave
                    # by a router that is no longer there.
                    home_router = node.detector.home_router(network)
                    if ours:
                        self._routers.pop(event.iface, None)
                        self._cleared_at_link_up.add(event.iface)
                        if home_router is None:
                            self._drop_default_routes(event.iface, keep=None)
                    node.on_link_up(event.iface, network=network, iid=self.translator.iids.get(event.iface))
                    if ours and home_router is not None:
                        self.loop.drain()
                        self._drop_default_routes(event.iface, keep=home_router)
                else:
                    node.on_link_down(event.iface)
            elif isinstance(event, AddressEvent):
                self.events.info("address", iface=event.iface, address=event.address, state=event.state)
                if (
                    event.state == "dadfailed"
                    and IPv6Address(event.address) == self.cfg.home_address
                    and node.location == Location.HOME
                ):
                    # the kernel ran DAD on the home address against the HA's proxy and it failed
                    # (the address is kept dadfailed, or deleted if SLAAC made it; see
                    # KernelAdapter.home_address_at_home). A removal by hand is left alone.
                    self.events.info("home_address_readded", iface=event.iface)
                    self.loop.guard(
                        "home_address", lambda: self.kernel.home_address_at_home(self.cfg.home_prefix_len)
                    )
                node.on_address(event.iface, event.address, event.state)
            elif isinstance(event, RouteEvent):
                self.events.info("default_route", iface=event.iface, added=event.added, gateway=event.gateway)
            self.loop.drain()

    def _drop_default_routes(self, iface: str, keep: IPv6Address | None) -> None:
        """Delete default routes that Router Advertisements put on ``iface``, except via ``keep``.

        A wireless handover only takes the carrier down: Linux keeps the old router's default route
        (flagged linkdown, still used) until its lifetime ends, so the first Binding Update would go
        to a router that is no longer there. Called at link-up (all of them) and when an RA comes
        from a new router (all others), as RFC 6275 11.5.1 asks for a new default router.
        """
        gateways = self._ra_default_gateways(iface)
        for gateway in gateways:
            if keep is not None and IPv6Address(gateway) == keep:
                continue
            argv = ["ip", "-6", "route", "del", "default", "via", gateway, "dev", iface, "proto", "ra"]
            done = self.loop.io.runner(argv)
            self.events.info("stale_router_dropped", iface=iface, gateway=gateway, ok=done.ok)

    def _ra_default_gateways(self, iface: str) -> list[str]:
        if self.loop.io.ra_default_gateways is not None:
            try:
                return self.loop.io.ra_default_gateways(iface)
            except Exception as exc:  # pyroute2 raises its own types; fall back to ip
                self.events.warning("netlink_query_failed", f"default routes of {iface}: {exc}")
        result = self.loop.io.runner(
            ["ip", "-6", "-j", "route", "show", "default", "dev", iface, "proto", "ra"]
        )
        if not result.ok:
            return []
        try:
            routes = json.loads(result.stdout or "[]")
        except ValueError:
            return []
        return [str(r["gateway"]) for r in routes if isinstance(r, dict) and r.get("gateway")]

    def _network_name(self, iface: str) -> str | None:
        """The SSID for the prefix cache, only when the cache is on (nl80211 in-process, else
        ``iw dev IFACE link``)."""
        if not self.cfg.prefix_cache:
            return None
        if self.loop.io.ssid is not None:
            try:
                return self.loop.io.ssid(iface)
            except Exception as exc:  # pyroute2 raises its own types; fall back to iw
                self.events.warning("netlink_query_failed", f"SSID of {iface}: {exc}")
        result = self.loop.io.runner(["iw", "dev", iface, "link"])
        return parse_iw_ssid(result.stdout) if result.ok else None
