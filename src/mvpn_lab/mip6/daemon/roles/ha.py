"""The home agent's driver: duplicate address detection for new home addresses, and the handover
buffer (TUN device and hostapd events) when configured."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

from mvpn_lab.mip6.core.actions import Action, AddHostRoute, ReceivedPacket, StartDad
from mvpn_lab.mip6.core.config import HAConfig
from mvpn_lab.mip6.core.ha import HomeAgent
from mvpn_lab.mip6.daemon.handover_buffer import HandoverBuffer, HostapdEvents, TunDevice
from mvpn_lab.mip6.daemon.kernel.base import KernelError, address_valid_lifetime
from mvpn_lab.mip6.daemon.kernel.ha import HAKernel
from mvpn_lab.mip6.daemon.ndisc import (
    ND_NEIGHBOR_ADVERT,
    NdiscError,
    NdiscSocket,
    RawSender,
    build_dad_probe,
    na_target,
)
from mvpn_lab.mip6.daemon.netlink import KernelQueries
from mvpn_lab.mip6.daemon.roles.base import NodeArgs, Reader, RoleDriver, Services

DAD_WAIT = 1.0  # RETRANS_TIMER (RFC 4861 10): the DAD wait when the kernel's value cannot be read
MAX_RETRANS_TIMER_MS = 3_600_000  # RFC 4861 6.2.1's bound for AdvRetransTimer (one hour)
HOSTAPD_KEEPALIVE = 5.0  # seconds between checks that hostapd still sends the home agent its events
MAX_READS = 64  # packets read per wake-up of one descriptor, so none starves the others


class HomeAgentDriver(RoleDriver):
    node: HomeAgent
    kernel: HAKernel

    def __init__(self, cfg: HAConfig, loop: Services, args: NodeArgs) -> None:
        self.cfg = cfg
        self.loop = loop
        self.events = loop.events
        self.node = HomeAgent(cfg, clock=args.clock, sink=args.sink, logger=args.logger, random=args.random)
        self.kernel = HAKernel(cfg, loop.io.runner, loop.events)
        self._dad: set[IPv6Address] = set()
        self.proc_sys = Path("/proc/sys")  # where the home link's RetransTimer is read (tests move it)
        self._hostapd_down = False
        io = loop.io
        self.buffer: HandoverBuffer | None = None
        if cfg.handover_buffer and io.tun is not None and cfg.interface:
            self.buffer = HandoverBuffer(
                device=cfg.buffer_device,
                interface=cfg.interface,
                max_packets=cfg.buffer_packets,
                hold=cfg.buffer_hold,
                allowed=lambda hoa: hoa in cfg.home_prefix and cfg.allows(hoa),
                run=self._buffer_run,
                neighbours=io.neighbours or (lambda _iface: []),
                write=io.tun.write,
                now=loop.clock.monotonic,
                events=loop.events,
            )

    @staticmethod
    def open_io(cfg: HAConfig, opened: list[Any]) -> dict[str, Any]:
        """The home agent's sockets beside the Mobility Header one (closed by the caller on error)."""
        ndisc = NdiscSocket.open((ND_NEIGHBOR_ADVERT,))
        opened.append(ndisc)
        out: dict[str, Any] = {"ndisc": ndisc, "raw": RawSender.open() if cfg.perform_dad else None}
        if cfg.handover_buffer:
            try:
                tun = TunDevice.open(cfg.buffer_device)
            except OSError as exc:
                what = f"TUN device {cfg.buffer_device} (handover_buffer): {exc.strerror}"
                raise OSError(exc.errno, what) from None
            opened.append(tun)
            ap_events = HostapdEvents(cfg.hostapd_control or "")
            opened.append(ap_events)
            queries = KernelQueries()
            opened.append(queries)
            out.update(tun=tun, ap_events=ap_events, queries=queries, neighbours=queries.neighbours)
        return out

    def esp_for(self, pkt: ReceivedPacket) -> bool:
        cfg = self.cfg
        if not cfg.require_ipsec or not cfg.esp_policy_installed:
            return False
        return pkt.pseudo_dst == cfg.address and any(
            pkt.pseudo_src in net for net in self.kernel.protected_home_addresses()
        )

    # ------------------------------------------------------------------ the handover buffer

    def start(self) -> None:
        self._read_home_prefix_lifetime()
        if self.buffer is not None:
            self._buffer_run(["ip", "link", "set", "dev", self.buffer.device, "up"])
            self._attach_hostapd()
            # The first look-up imports pyroute2 and opens its socket: 0.5 s and more on the
            # twin's emulated CPU, which must not come between a departure and its hold.
            self.buffer.warm_up()

    def _read_home_prefix_lifetime(self) -> None:
        """Tell the core how long the home prefix stays valid (the HA's own address on the home
        link): granted lifetimes never outlast it. A static address never expires."""
        if self.cfg.interface is None:
            return
        try:
            listing = self.kernel.run(["ip", "-6", "-j", "addr", "show", "dev", self.cfg.interface])
        except KernelError as exc:
            self.events.warning("home_prefix_lifetime_unknown", str(exc))
            return
        valid = address_valid_lifetime(listing.stdout, self.cfg.address)
        self.node.on_home_prefix_lifetime(valid)
        if valid is not None:
            self.events.info("home_prefix_lifetime", valid_seconds=valid)

    def readers(self) -> list[Reader]:
        return [(self.loop.io.tun, self.on_tun_readable), (self.loop.io.ap_events, self.on_ap_readable)]

    def _buffer_run(self, argv: Sequence[str]) -> bool:
        try:
            self.kernel.run(argv, missing_ok=list(argv[3:4]) == ["del"])
        except KernelError as exc:
            self.events.error("handover_buffer_failed", str(exc))
            return False
        return True

    def _attach_hostapd(self) -> None:
        """Attach to hostapd now, and check every HOSTAPD_KEEPALIVE seconds that it still listens."""
        events = self.loop.io.ap_events
        if events is None:
            return
        if not events.attached or not events.keepalive():
            try:
                events.attach()
                self._hostapd_down = False
                self.events.info("hostapd_attached", control=events.control_path)
            except OSError as exc:
                if not self._hostapd_down:  # once per outage, not every HOSTAPD_KEEPALIVE
                    self.events.warning(
                        "hostapd_unreachable",
                        f"{events.control_path}: {exc.strerror or exc}; the handover buffer waits for it",
                    )
                self._hostapd_down = True
        self.loop.call_later(HOSTAPD_KEEPALIVE, "hostapd_keepalive", self._attach_hostapd)

    def on_tun_readable(self) -> None:
        for _ in range(MAX_READS):
            data = self.loop.io.tun.read()
            if not data:
                return
            if self.buffer is not None:
                self.buffer.packet(data)

    def on_ap_readable(self) -> None:
        for text in self.loop.io.ap_events.receive():
            if self.buffer is not None:
                self.buffer.on_event(text)

    def after_kernel(self, action: Action, ok: bool) -> None:
        if ok and isinstance(action, AddHostRoute) and self.buffer is not None:
            self.buffer.bound(action.home_address)  # the held packets follow the new route

    def deadlines(self) -> list[float]:
        held = self.buffer.next_deadline() if self.buffer is not None else None
        return [] if held is None else [held]

    def on_timers(self) -> None:
        if self.buffer is not None:
            self.loop.guard("handover_buffer", self.buffer.expire)

    def close(self) -> None:
        if self.buffer is not None:
            self.buffer.close()

    def status(self) -> dict[str, Any]:
        return {} if self.buffer is None else {"handover_buffer": self.buffer.status()}

    # ------------------------------------------------------------------ duplicate address detection

    def execute(self, action: Action) -> bool:
        if not isinstance(action, StartDad):
            return False
        self._start_dad(action.address)
        return True

    def _start_dad(self, address: IPv6Address) -> None:
        iface = self.cfg.interface
        ifindex = self.loop.ifindex(iface) if iface else 0
        io = self.loop.io
        if io.raw is None or io.ndisc is None or not ifindex:
            self.events.error(
                "dad_error", f"DAD for {address}: no raw socket or home link; refusing the binding"
            )
            self._report_dad(address, ok=False)
            return
        try:
            io.raw.send(build_dad_probe(address), ifindex)
        except OSError as exc:
            self.events.error("dad_error", f"DAD for {address}: {exc.strerror or exc}; refusing the binding")
            self._report_dad(address, ok=False)
            return
        self._dad.add(address)
        wait = self.retrans_timer(iface)
        self.loop.call_later(wait, f"dad {address}", lambda: self._dad_done(address, ok=True))

    def retrans_timer(self, iface: str | None) -> float:
        """How long a DAD probe waits for a defence: the home link's RetransTimer (RFC 4862 5.4),
        the kernel's value for the interface (``net.ipv6.neigh.IFACE.retrans_time_ms``, set by
        an operator or learned from an RA), read from /proc/sys at each first registration (a
        file read, no process); 1 s, RFC 4861's default, when it cannot be read or is out of range."""
        if not iface:
            return DAD_WAIT
        path = self.proc_sys / "net" / "ipv6" / "neigh" / iface / "retrans_time_ms"
        try:
            value = int(path.read_text(encoding="ascii").strip())
        except (OSError, ValueError) as exc:
            self.events.warning("retrans_timer_unreadable", f"{path}: {exc}; DAD waits {DAD_WAIT:g} s")
            return DAD_WAIT
        if not 0 < value <= MAX_RETRANS_TIMER_MS:
            self.events.warning(
                "retrans_timer_unreadable",
                f"{path}: {value} ms, expected 1 to {MAX_RETRANS_TIMER_MS}; DAD waits {DAD_WAIT:g} s",
            )
            return DAD_WAIT
        return value / 1000.0

    def _dad_done(self, address: IPv6Address, *, ok: bool) -> None:
        if address not in self._dad:
            return  # already decided
        self._dad.discard(address)
        self._report_dad(address, ok=ok)

    def _report_dad(self, address: IPv6Address, *, ok: bool) -> None:
        self.node.on_dad_result(address, ok)
        self.loop.drain()

    def on_ndisc(self, kind: int | None, data: bytes, src: IPv6Address, iface: str | None) -> None:
        if kind != ND_NEIGHBOR_ADVERT or iface != self.cfg.interface or not self._dad:
            return
        try:
            target = na_target(data)
        except NdiscError:
            return
        if target in self._dad:
            self.events.info("dad_failed", address=target)
            self._dad_done(target, ok=False)
