"""``mvpn-lab mip6 run``: the Mobile IPv6 daemon around the protocol core.

One thread, one ``selectors`` loop over the Mobility Header socket, the ICMPv6 (Neighbour
Discovery) socket, the netlink socket (mobile node) and the control socket; timers come from the
core's ``next_deadline()`` and the daemon's own (Neighbour Advertisement repeats, DAD). Inputs go
to the state machine; the actions it emits are executed in order afterwards:

* :class:`SendMH` -> :meth:`KernelAdapter.prepare_send` (xfrm states for HAO/RH2), then the
  Mobility Header socket;
* data-plane actions -> :class:`KernelAdapter` (iproute2); ``ProxyNdp`` also sends unsolicited
  Neighbour Advertisements, the mobile node's deregistration at home announces its home address;
* ``SendRouterSolicitation`` and ``StartDad`` -> Neighbour Discovery; ``ResumeTcp`` (derived by
  the daemon when ``tcp_recovery`` is on) -> :class:`TcpRecovery`.

Nothing a peer sends, and no failing command, stops the daemon: every error is one JSON line in
the event log (:mod:`~mvpn_lab.mip6.daemon.events`). SIGTERM/SIGINT stop it cleanly: the mobile node
first deregisters from its home agent when away (``deregister_on_exit``, waiting up to
``SHUTDOWN_WAIT`` for the BA), then the kernel entries are removed (``cleanup_on_exit``).

The ESP question: a raw socket cannot tell whether a packet arrived ESP-protected. The daemon
relies on a main-type xfrm policy with ``level required`` (declared by ``esp_policy_installed``
and checked at start): the kernel drops unprotected MH messages between the home agent and its
mobile nodes before they reach the socket, so such a message that *does* arrive is marked
``esp``. See docs/mip6.md.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import os
import selectors
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any, TextIO

from mvpn_lab.errors import LabError
from mvpn_lab.mip6.core.actions import (
    Action,
    AddHostRoute,
    DelRouteViaTunnel,
    ProxyNdp,
    ReceivedPacket,
    ResumeTcp,
    SendMH,
    SendRouterSolicitation,
    StartDad,
)
from mvpn_lab.mip6.core.binding import seq_add
from mvpn_lab.mip6.core.clock import Clock, SystemClock, iso_timestamp
from mvpn_lab.mip6.core.config import (
    CNConfig,
    HAConfig,
    MNConfig,
    NodeConfig,
    check_daemon_config,
    control_socket_path,
)
from mvpn_lab.mip6.core.counters import Counters
from mvpn_lab.mip6.core.log import MHLogger
from mvpn_lab.mip6.core.node import Node
from mvpn_lab.mip6.core.nodes import make_node
from mvpn_lab.mip6.daemon.control import ControlServer
from mvpn_lab.mip6.daemon.events import EventLog
from mvpn_lab.mip6.daemon.handover_buffer import HandoverBuffer, HostapdEvents, TunDevice
from mvpn_lab.mip6.daemon.ipbatch import IpBatchRunner
from mvpn_lab.mip6.daemon.kernel.base import CommandRunner, KernelAdapter, KernelError, SubprocessRunner
from mvpn_lab.mip6.daemon.mhsocket import AncillaryError, MHSocket, received_packet
from mvpn_lab.mip6.daemon.ndisc import (
    ALL_NODES,
    ALL_ROUTERS,
    ND_NEIGHBOR_ADVERT,
    ND_ROUTER_ADVERT,
    NdiscError,
    NdiscSocket,
    RawSender,
    build_dad_probe,
    build_na,
    build_rs,
    na_target,
    parse_ra,
)
from mvpn_lab.mip6.daemon.netlink import (
    AddressEvent,
    KernelQueries,
    LinkEvent,
    MovementTranslator,
    NetlinkSource,
    RouteEvent,
)
from mvpn_lab.mip6.daemon.sdnotify import notify
from mvpn_lab.mip6.daemon.tcprecovery import TcpRecovery
from mvpn_lab.mip6.wire.messages import BindingAcknowledgement, BindingUpdate, MHDecodeError, decode_mh

SHUTDOWN_WAIT = 2.0  # seconds to wait for the BA of the deregistration sent at exit
DAD_WAIT = 1.0  # RetransTimer: how long a DAD probe waits for a defending advertisement
NA_REPEATS = 3  # MAX_NEIGHBOR_ADVERTISEMENT (RFC 4861 10)
NA_INTERVAL = 1.0
HOSTAPD_KEEPALIVE = 5.0  # seconds between checks that hostapd still sends the home agent its events
MAX_READS = 64  # packets read per wake-up of one socket, so no socket starves the others


class DaemonError(LabError):
    """The daemon cannot start (one line)."""


def parse_iw_ssid(text: str) -> str | None:
    """The SSID in ``iw dev IFACE link`` output (None when not associated)."""
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "SSID" and value.strip():
            return value.strip()
    return None


def read_lladdr(iface: str) -> bytes | None:
    try:
        text = Path(f"/sys/class/net/{iface}/address").read_text().strip()
        return bytes.fromhex(text.replace(":", ""))
    except (OSError, ValueError):
        return None


def _ifname(index: int) -> str | None:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return None


@dataclass
class DaemonIO:
    """Everything the daemon touches outside itself; tests pass fakes."""

    runner: CommandRunner
    mh: Any  # MHSocket-like: fileno(), receive(), send(payload, src, dst, ifindex), close()
    ndisc: Any = None  # NdiscSocket-like
    raw: Any = None  # RawSender-like: send(packet, ifindex=0)
    netlink: Any = None  # NetlinkSource-like: fileno(), read(), close()
    netlink_dump: Callable[[], list[Any]] = list
    control: Any = None  # ControlServer-like: fileno(), accept(), close()
    ifindex: Callable[[str], int] = socket.if_nametoindex
    ifname: Callable[[int], str | None] = _ifname
    lladdr: Callable[[str], bytes | None] = read_lladdr
    read_tcp6: Callable[[], str] = lambda: Path("/proc/net/tcp6").read_text()
    # MN link-up look-ups in-process (netlink.KernelQueries); None: through ``runner`` (ip, iw)
    ra_default_gateways: Callable[[str], list[str]] | None = None
    ssid: Callable[[str], str | None] | None = None
    # home agent's handover buffer: TunDevice-like (fileno, read, write, close), HostapdEvents-like
    # (fileno, attach, keepalive, receive, close) and the neighbour-table look-up
    tun: Any = None
    ap_events: Any = None
    neighbours: Callable[[str], list[tuple[str, str]]] | None = None
    closables: list[Any] = field(default_factory=list)


class Daemon:
    def __init__(
        self,
        cfg: NodeConfig,
        io: DaemonIO,
        *,
        clock: Clock,
        events: EventLog,
        logger: MHLogger,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.cfg = cfg
        self.io = io
        self.clock = clock
        self.events = events
        self._queue: list[Action] = []
        self.node: Node = make_node(cfg, clock=clock, sink=self._queue.append, logger=logger, random=random)
        self.kernel = KernelAdapter(cfg, io.runner, events)
        self.translator: MovementTranslator | None = None
        self.tcp: TcpRecovery | None = None
        if isinstance(cfg, MNConfig):
            self.translator = MovementTranslator(cfg.interfaces, ifname=io.ifname)
            if cfg.tcp_recovery:
                self.tcp = TcpRecovery(self._send_raw, read_connections=io.read_tcp6, random=random)
        self.buffer: HandoverBuffer | None = None
        self._hostapd_down = False
        if isinstance(cfg, HAConfig) and cfg.handover_buffer and io.tun is not None and cfg.interface:
            self.buffer = HandoverBuffer(
                device=cfg.buffer_device,
                interface=cfg.interface,
                max_packets=cfg.buffer_packets,
                hold=cfg.buffer_hold,
                allowed=lambda hoa: hoa in cfg.home_prefix and cfg.allows(hoa),
                run=self._buffer_run,
                neighbours=io.neighbours or (lambda _iface: []),
                write=io.tun.write,
                now=clock.monotonic,
                events=events,
            )
        self.counters = Counters()
        self._timers: list[tuple[float, int, str, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._dad: set[IPv6Address] = set()
        self._routers: dict[str, IPv6Address] = {}  # last router heard per MN interface
        self._netlink_overruns = 0
        self._resumed_home_coa: IPv6Address | None = None
        self._resumed_cn: dict[IPv6Address, IPv6Address] = {}
        self._stop_requested = False
        self.stopping = False
        self.stopped = False
        self._dereg_seq: int | None = None
        self._dereg_deadline: float | None = None
        self._dereg_acked = False
        self.started = clock.wall()

    # ================================================================== lifecycle

    def start(self) -> None:
        """Install the static kernel entries and read the current links; raises DaemonError."""
        try:
            self.kernel.setup()
        except KernelError as exc:
            raise DaemonError(str(exc)) from None
        self.events.info(
            "start",
            pid=os.getpid(),
            config={"role": self.cfg.role, "name": self.cfg.name},
            control=self._control_path(),
        )
        if isinstance(self.cfg, MNConfig) and self.translator is not None:
            self._load_prefix_cache()
            try:
                messages = self.io.netlink_dump()
            except Exception as exc:  # pyroute2 raises its own types
                self.events.error("netlink_error", f"initial dump of links and addresses: {exc}")
                messages = []
            for msg in messages:
                self._movement(msg)
            if self.cfg.movement_detection == "ra":  # (in l2 mode the core solicits at link-up)
                for iface in self.cfg.interfaces:  # ask for an RA now instead of waiting for one
                    if self.translator.up.get(iface):
                        self._send_rs(iface)
        if self.buffer is not None:
            self._buffer_run(["ip", "link", "set", "dev", self.buffer.device, "up"])
            self._attach_hostapd()
            # The first look-up imports pyroute2 and opens its socket: 0.5 s and more on the
            # twin's emulated CPU, which must not come between a departure and its hold.
            self.buffer.warm_up()
        self._after_input()

    def _control_path(self) -> str:
        return control_socket_path(self.cfg)

    # ------------------------------------------------------------ the home agent's handover buffer

    def _buffer_run(self, argv: Any) -> bool:
        try:
            self.kernel.run(argv, missing_ok=argv[3:4] == ["del"])
        except KernelError as exc:
            self.events.error("handover_buffer_failed", str(exc))
            return False
        return True

    def _attach_hostapd(self) -> None:
        """Attach to hostapd now, and check every HOSTAPD_KEEPALIVE seconds that it still listens."""
        events = self.io.ap_events
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
        self.call_later(HOSTAPD_KEEPALIVE, "hostapd_keepalive", self._attach_hostapd)

    def on_tun_readable(self) -> None:
        for _ in range(MAX_READS):
            data = self.io.tun.read()
            if not data:
                return
            if self.buffer is not None:
                self.buffer.packet(data)

    def on_ap_readable(self) -> None:
        for text in self.io.ap_events.receive():
            if self.buffer is not None:
                self.buffer.on_event(text)

    def request_stop(self, *_args: Any) -> None:
        self._stop_requested = True

    def begin_shutdown(self) -> None:
        """Stop taking part; the mobile node deregisters first when away (if configured)."""
        if self.stopping:
            return
        self.stopping = True
        notify("STOPPING=1")
        self.events.info("stopping")
        node = self.node
        cfg = self.cfg
        if (
            isinstance(cfg, MNConfig)
            and cfg.deregister_on_exit
            and getattr(node, "location", None) == "away"
            and getattr(node, "coa", None) is not None
            and node.home.state in ("registered", "registering")  # type: ignore[attr-defined]
        ):
            seq = seq_add(node.home.seq)  # type: ignore[attr-defined]
            bu = BindingUpdate(seq=seq, lifetime=0, ack=True, home=True, link_local=cfg.link_local_compat)
            node.send(node.coa, cfg.home_agent, bu, hao=cfg.home_address, esp=cfg.require_ipsec)  # type: ignore[attr-defined]
            self._dereg_seq = seq
            self._dereg_deadline = self.clock.monotonic() + SHUTDOWN_WAIT
            self._drain()

    def shutdown_complete(self) -> bool:
        if not self.stopping:
            return False
        if self._dereg_seq is None or self._dereg_acked:
            return True
        return self._dereg_deadline is not None and self.clock.monotonic() >= self._dereg_deadline

    def finish_shutdown(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self._dereg_seq is not None and not self._dereg_acked:
            self.events.warning("deregistration_unanswered", "no BA for the deregistration sent at exit")
        if self.buffer is not None:
            self.buffer.close()
        if self.cfg.cleanup_on_exit:
            self.kernel.teardown()
        io = self.io
        for obj in (io.control, io.netlink, io.ndisc, io.raw, io.mh, io.ap_events, io.tun):
            if obj is not None:
                with contextlib.suppress(Exception):
                    obj.close()
        self.events.info("stop", deregistered=self._dereg_acked if self._dereg_seq is not None else None)
        for stream in self.io.closables:  # the log files, last
            with contextlib.suppress(Exception):
                stream.close()

    # ================================================================== the loop

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (or :meth:`request_stop`); returns the exit status."""
        sel = selectors.DefaultSelector()
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        previous: dict[int, Any] = {}
        old_wakeup = -1
        status = 0
        try:
            old_wakeup = signal.set_wakeup_fd(wake_w.fileno())
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self.request_stop)
        except ValueError:  # not the main thread: no signals, request_stop() still works
            pass
        try:
            sel.register(wake_r, selectors.EVENT_READ, lambda: self._drain_wakeup(wake_r))
            for obj, handler in (
                (self.io.mh, self.on_mh_readable),
                (self.io.ndisc, self.on_ndisc_readable),
                (self.io.netlink, self.on_netlink_readable),
                (self.io.control, self.on_control_readable),
                (self.io.tun, self.on_tun_readable),
                (self.io.ap_events, self.on_ap_readable),
            ):
                if obj is not None:
                    sel.register(obj, selectors.EVENT_READ, handler)
            notify("READY=1")
            while True:
                if self._stop_requested and not self.stopping:
                    self._guard("shutdown", self.begin_shutdown)
                if self.shutdown_complete():
                    break
                for key, _ in sel.select(self.next_timeout()):
                    self._guard(getattr(key.data, "__name__", "handler"), key.data)
                self._guard("timers", self.fire_timers)
        except Exception as exc:  # the loop itself broke (e.g. a closed descriptor): stop cleanly
            self.events.error("fatal", f"event loop: {type(exc).__name__}: {exc}")
            status = 1
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if previous:
                signal.set_wakeup_fd(old_wakeup)
            sel.close()
            wake_r.close()
            wake_w.close()
            self.finish_shutdown()
        return status

    @staticmethod
    def _drain_wakeup(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while sock.recv(512):
                pass

    def _guard(self, name: str, fn: Callable[[], Any]) -> None:
        """Run one handler; whatever it raises becomes one error line, never a traceback."""
        try:
            fn()
        except Exception as exc:
            self.counters.inc("internal_errors")
            self.events.error("internal_error", f"{name}: {type(exc).__name__}: {exc}")

    def call_later(self, delay: float, name: str, callback: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (self.clock.monotonic() + delay, next(self._timer_seq), name, callback))

    def next_timeout(self) -> float | None:
        deadlines = [self._timers[0][0]] if self._timers else []
        if not self.stopping:
            core = self.node.next_deadline()
            if core is not None:
                deadlines.append(core)
        if self._dereg_deadline is not None and self.stopping:
            deadlines.append(self._dereg_deadline)
        if self.buffer is not None and (held := self.buffer.next_deadline()) is not None:
            deadlines.append(held)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - self.clock.monotonic())

    def fire_timers(self) -> None:
        if not self.stopping:
            self.node.tick()
        now = self.clock.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, name, callback = heapq.heappop(self._timers)
            self._guard(name, callback)
        if self.buffer is not None:
            self._guard("handover_buffer", self.buffer.expire)
        self._after_input()

    # ================================================================== inputs

    def on_mh_readable(self) -> None:
        for _ in range(MAX_READS):
            try:
                item = self.io.mh.receive()
            except OSError as exc:
                self.events.error("mh_receive_failed", f"Mobility Header socket: {exc.strerror or exc}")
                return
            if item is None:
                return
            data, ancdata, address = item
            self.counters.inc("mh_received")
            try:
                pkt = received_packet(
                    data, ancdata, address, ifname=self.io.ifname, tunnels=self.kernel.tunnel_names()
                )
            except AncillaryError as exc:
                self.counters.inc("mh_unusable")
                self.events.warning("mh_dropped", f"packet from {address!r}: {exc}")
                continue
            self.handle_packet(replace(pkt, esp=self.esp_for(pkt)))

    def handle_packet(self, pkt: ReceivedPacket) -> str:
        if self._dereg_seq is not None and self._is_dereg_ack(pkt):
            return "accepted"
        result = self.node.receive(pkt)
        self._after_input()
        return result

    def _is_dereg_ack(self, pkt: ReceivedPacket) -> bool:
        cfg = self.cfg
        if not isinstance(cfg, MNConfig) or pkt.src != cfg.home_agent:
            return False
        try:
            msg = decode_mh(pkt.mh)
        except MHDecodeError:
            return False
        if not isinstance(msg, BindingAcknowledgement) or msg.seq != self._dereg_seq:
            return False
        self._dereg_acked = True
        self.node.logger.log(
            "rx",
            src=pkt.src,
            dst=pkt.dst,
            msg=msg,
            hao=pkt.hao,
            rh2=pkt.rh2,
            result="accepted:exit_deregistration",
        )
        return True

    def esp_for(self, pkt: ReceivedPacket) -> bool:
        """True when a ``level required`` ESP policy covers this MN-HA message (see module doc)."""
        cfg = self.cfg
        if isinstance(cfg, CNConfig) or not cfg.require_ipsec or not cfg.esp_policy_installed:
            return False
        if isinstance(cfg, MNConfig):
            return pkt.src == cfg.home_agent and pkt.pseudo_dst == cfg.home_address
        return pkt.pseudo_dst == cfg.address and any(
            pkt.pseudo_src in net for net in self.kernel.protected_home_addresses()
        )

    def on_ndisc_readable(self) -> None:
        for _ in range(MAX_READS):
            try:
                packet = self.io.ndisc.receive()
            except NdiscError as exc:
                self.events.warning("ndisc_dropped", str(exc))
                continue
            except OSError as exc:
                self.events.error("ndisc_receive_failed", f"ICMPv6 socket: {exc.strerror or exc}")
                return
            if packet is None:
                return
            iface = self.io.ifname(packet.ifindex) if packet.ifindex else None
            if packet.hoplimit is not None and packet.hoplimit != 255:
                self.events.warning(
                    "ndisc_dropped", f"hop limit {packet.hoplimit} from {packet.src} on {iface}"
                )
                continue
            kind = packet.data[0] if packet.data else None
            if kind == ND_ROUTER_ADVERT:
                self._router_advertisement(packet.data, packet.src, iface)
            elif kind == ND_NEIGHBOR_ADVERT:
                self._neighbour_advertisement(packet.data, iface)

    def _router_advertisement(self, data: bytes, src: IPv6Address, iface: str | None) -> None:
        cfg = self.cfg
        if not isinstance(cfg, MNConfig) or iface not in cfg.interfaces:
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
        self.counters.inc("ra_received")
        self.events.info("router_advertisement", iface=iface, router=src, prefixes=prefixes)
        if self._routers.get(iface) != src:
            self._routers[iface] = src
            self._drop_default_routes(iface, keep=src)
        iid = self.translator.iids.get(iface) if self.translator is not None else None
        node: Any = self.node
        before = node.detector.cache.copy()
        node.on_router_advertisement(iface, prefixes, iid=iid, router=src)
        if node.detector.cache != before:
            self._save_prefix_cache()
        self._after_input()

    def _load_prefix_cache(self) -> None:
        path = getattr(self.cfg, "prefix_cache_file", None)
        if not path or not getattr(self.cfg, "prefix_cache", False):
            return
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self.events.warning("prefix_cache_unreadable", f"{path}: {exc}; starting with an empty cache")
            return
        loaded = self.node.detector.import_cache(data)  # type: ignore[attr-defined]
        self.events.info("prefix_cache_loaded", path=path, networks=loaded)

    def _save_prefix_cache(self) -> None:
        path = getattr(self.cfg, "prefix_cache_file", None)
        if not path:
            return
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self.node.detector.export_cache(), indent=1) + "\n", encoding="utf-8")  # type: ignore[attr-defined]
            os.replace(tmp, target)
        except OSError as exc:
            self.events.warning("prefix_cache_not_saved", f"{path}: {exc}")

    def _neighbour_advertisement(self, data: bytes, iface: str | None) -> None:
        if not isinstance(self.cfg, HAConfig) or iface != self.cfg.interface or not self._dad:
            return
        try:
            target = na_target(data)
        except NdiscError:
            return
        if target in self._dad:
            self.events.info("dad_failed", address=target)
            self._dad_done(target, ok=False)

    def on_netlink_readable(self) -> None:
        try:
            messages = self.io.netlink.read()
        except Exception as exc:  # pyroute2 raises its own types
            self.events.error("netlink_error", f"netlink read: {exc}")
            return
        overruns = getattr(self.io.netlink, "overruns", 0)
        if overruns > self._netlink_overruns:
            # the kernel dropped events (socket buffer full): read the whole state again
            self._netlink_overruns = overruns
            self.events.warning(
                "netlink_overrun", "netlink events were lost; reading links and addresses again"
            )
            try:
                messages = [*messages, *self.io.netlink_dump()]
            except Exception as exc:
                self.events.error("netlink_error", f"dump after an overrun: {exc}")
        for msg in messages:
            self._movement(msg)
        self._after_input()

    def _movement(self, msg: Any) -> None:
        if self.translator is None:
            return
        node: Any = self.node
        for event in self.translator.translate(msg):
            if isinstance(event, LinkEvent):
                self.events.info("link", iface=event.iface, up=event.up)
                if event.up:
                    if isinstance(self.cfg, MNConfig) and event.iface in self.cfg.interfaces:
                        self._routers.pop(event.iface, None)
                        self._drop_default_routes(event.iface, keep=None)
                    network = self._network_name(event.iface)
                    node.on_link_up(event.iface, network=network, iid=self.translator.iids.get(event.iface))
                else:
                    node.on_link_down(event.iface)
            elif isinstance(event, AddressEvent):
                self.events.info("address", iface=event.iface, address=event.address, state=event.state)
                if (
                    event.state == "dadfailed"
                    and isinstance(self.cfg, MNConfig)
                    and IPv6Address(event.address) == self.cfg.home_address
                    and getattr(node, "location", None) == "home"
                ):
                    # the kernel ran DAD on the home address against the HA's proxy and it failed
                    # (the address is kept dadfailed, or deleted if SLAAC made it; see
                    # KernelAdapter.home_address_at_home). A removal by hand is left alone.
                    self.events.info("home_address_readded", iface=event.iface)
                    self._guard(
                        "home_address", lambda: self.kernel.home_address_at_home(self.cfg.home_prefix_len)
                    )
                node.on_address(event.iface, event.address, event.state)
            elif isinstance(event, RouteEvent):
                self.events.info("default_route", iface=event.iface, added=event.added, gateway=event.gateway)
            self._drain()

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
            done = self.io.runner(argv)
            self.events.info("stale_router_dropped", iface=iface, gateway=gateway, ok=done.ok)

    def _ra_default_gateways(self, iface: str) -> list[str]:
        if self.io.ra_default_gateways is not None:
            try:
                return self.io.ra_default_gateways(iface)
            except Exception as exc:  # pyroute2 raises its own types; fall back to ip
                self.events.warning("netlink_query_failed", f"default routes of {iface}: {exc}")
        result = self.io.runner(["ip", "-6", "-j", "route", "show", "default", "dev", iface, "proto", "ra"])
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
        if not isinstance(self.cfg, MNConfig) or not self.cfg.prefix_cache:
            return None
        if self.io.ssid is not None:
            try:
                return self.io.ssid(iface)
            except Exception as exc:  # pyroute2 raises its own types; fall back to iw
                self.events.warning("netlink_query_failed", f"SSID of {iface}: {exc}")
        result = self.io.runner(["iw", "dev", iface, "link"])
        return parse_iw_ssid(result.stdout) if result.ok else None

    def on_control_readable(self) -> None:
        self.io.control.accept()

    # ================================================================== outputs

    def _after_input(self) -> None:
        self._drain()
        if self.tcp is not None:
            self._check_tcp_recovery()
            self._drain()

    def _drain(self) -> None:
        while self._queue:
            action = self._queue.pop(0)
            self._guard(action.kind, lambda a=action: self._execute(a))

    def _execute(self, action: Action) -> None:
        if isinstance(action, SendMH):
            self._send_mh(action)
            return
        self.events.info("action", **action.to_dict())
        if isinstance(action, SendRouterSolicitation):
            self._send_rs(action.iface)
        elif isinstance(action, StartDad):
            self._start_dad(action.address)
        elif isinstance(action, ResumeTcp):
            self._resume_tcp(action)
        else:
            ok = self.kernel.execute(action)
            if ok and isinstance(action, AddHostRoute) and self.buffer is not None:
                self.buffer.bound(action.home_address)  # the held packets follow the new route
            if ok and isinstance(action, ProxyNdp) and isinstance(self.cfg, HAConfig) and self.cfg.interface:
                self.announce(action.address, self.cfg.interface, self.cfg.address)
            if (
                ok
                and isinstance(action, DelRouteViaTunnel)
                and isinstance(self.cfg, MNConfig)
                and getattr(self.node, "location", None) == "home"
            ):
                # back home and deregistered: neighbours must forget the home agent's proxy entry
                self.announce(self.cfg.home_address, self.cfg.interfaces[0], self.cfg.home_address)

    def _ifindex(self, name: str) -> int:
        try:
            return int(self.io.ifindex(name))
        except (OSError, ValueError):
            return 0

    def _send_mh(self, send: SendMH) -> None:
        try:
            src, dst = self.kernel.prepare_send(send)
        except KernelError as exc:
            self.counters.inc("mh_not_sent")
            self.events.error("mh_not_sent", f"{send.message.NAME} to {send.dst}: {exc}")
            return
        ifindex = 0
        if send.via_tunnel and isinstance(self.cfg, MNConfig):
            ifindex = self._ifindex(self.cfg.tunnel_name)
        try:
            self.io.mh.send(send.wire(), src, dst, ifindex)
        except OSError as exc:
            self.counters.inc("mh_send_failed")
            self.events.error(
                "mh_send_failed", f"{send.message.NAME} from {src} to {dst}: {exc.strerror or exc}"
            )
            return
        self.counters.inc("mh_sent")

    def _send_rs(self, iface: str) -> None:
        ifindex = self._ifindex(iface)
        if self.io.ndisc is None or not ifindex:
            self.events.error(
                "rs_not_sent", f"router solicitation on {iface}: no socket or no such interface"
            )
            return
        try:
            self.io.ndisc.send(build_rs(), ALL_ROUTERS, ifindex)
        except OSError as exc:
            self.events.error("rs_not_sent", f"router solicitation on {iface}: {exc.strerror or exc}")
            return
        self.counters.inc("rs_sent")

    def announce(self, address: IPv6Address, iface: str, src: IPv6Address, repeats: int = NA_REPEATS) -> None:
        """Unsolicited Neighbour Advertisements (override flag, our link-layer address) for
        ``address`` on ``iface``, ``repeats`` times one second apart."""
        ifindex = self._ifindex(iface)
        lladdr = self.io.lladdr(iface)
        if self.io.ndisc is None or not ifindex:
            self.events.error(
                "na_not_sent", f"advertisement for {address} on {iface}: no socket or no such interface"
            )
            return
        payload = build_na(address, lladdr, override=True)

        def send() -> None:
            try:
                self.io.ndisc.send(payload, ALL_NODES, ifindex, src)
                self.counters.inc("na_sent")
            except OSError as exc:
                self.events.error(
                    "na_not_sent", f"advertisement for {address} on {iface}: {exc.strerror or exc}"
                )

        send()
        for i in range(1, repeats):
            self.call_later(i * NA_INTERVAL, f"na {address}", send)

    def _start_dad(self, address: IPv6Address) -> None:
        cfg = self.cfg
        iface = cfg.interface if isinstance(cfg, HAConfig) else None
        ifindex = self._ifindex(iface) if iface else 0
        if self.io.raw is None or self.io.ndisc is None or not ifindex:
            self.events.error(
                "dad_error", f"DAD for {address}: no raw socket or home link; refusing the binding"
            )
            self._report_dad(address, ok=False)
            return
        try:
            self.io.raw.send(build_dad_probe(address), ifindex)
        except OSError as exc:
            self.events.error("dad_error", f"DAD for {address}: {exc.strerror or exc}; refusing the binding")
            self._report_dad(address, ok=False)
            return
        self._dad.add(address)
        self.call_later(DAD_WAIT, f"dad {address}", lambda: self._dad_done(address, ok=True))

    def _dad_done(self, address: IPv6Address, *, ok: bool) -> None:
        if address not in self._dad:
            return  # already decided
        self._dad.discard(address)
        self._report_dad(address, ok=ok)

    def _report_dad(self, address: IPv6Address, *, ok: bool) -> None:
        self.node.on_dad_result(address, ok)  # type: ignore[attr-defined]
        self._drain()

    def _send_raw(self, packet: bytes) -> None:
        if self.io.raw is None:
            raise OSError("no raw IPv6 socket")
        self.io.raw.send(packet)

    def _resume_tcp(self, action: ResumeTcp) -> None:
        if self.tcp is None:
            return
        try:
            conns = self.tcp.resume(action)
        except OSError as exc:
            self.events.error("tcp_recovery_failed", f"{action.kind} for {action.peer or 'all peers'}: {exc}")
            return
        self.events.info(
            "tcp_recovery",
            peer=action.peer,
            connections=[f"[{c.local}]:{c.local_port}-[{c.remote}]:{c.remote_port}" for c in conns],
        )

    def _check_tcp_recovery(self) -> None:
        """Queue :class:`ResumeTcp` once per completed handover (not on refreshes)."""
        mn: Any = self.node
        if mn.location != "away" or mn.coa is None:
            return
        if mn.home.state == "registered" and self._resumed_home_coa != mn.coa:
            self._resumed_home_coa = mn.coa
            # correspondents with route optimisation in progress get theirs when bound
            exclude = tuple(p for p, s in mn.cns.items() if s.state not in ("failed", "unsupported", "idle"))
            self._queue.append(ResumeTcp(mn.hoa, None, exclude))
        for peer, session in mn.cns.items():
            if (
                session.state == "bound"
                and session.bul.careof_address == mn.coa
                and self._resumed_cn.get(peer) != mn.coa
            ):
                self._resumed_cn[peer] = mn.coa
                self._queue.append(ResumeTcp(mn.hoa, peer))

    # ================================================================== status

    def status(self) -> dict[str, Any]:
        out = self.node.status()
        now = self.clock.wall()
        out["daemon"] = {
            "pid": os.getpid(),
            "started": iso_timestamp(self.started),
            "uptime": round(now - self.started, 3),
            "stopping": self.stopping,
            "control_socket": self._control_path(),
            "counters": self.counters.as_dict(),
            "errors": self.events.counts.get("error"),
            "warnings": self.events.counts.get("warning"),
            "last_error": self.events.last_error,
            "kernel": self.kernel.status(),
        }
        if self.tcp is not None:
            out["daemon"]["tcp_recovery"] = {"connections_prompted": self.tcp.prompted}
        if self.buffer is not None:
            out["daemon"]["handover_buffer"] = self.buffer.status()
        return out


# ====================================================================== building the real thing


def _open_stream(path: str | None, default: TextIO) -> TextIO:
    if path is None or path == "-":
        return default
    try:
        return open(path, "a", encoding="utf-8", buffering=1)
    except OSError as exc:
        raise DaemonError(f"cannot open log {path}: {exc.strerror or exc}") from None


def open_daemon(cfg: NodeConfig, *, debug: bool = False) -> Daemon:
    """The daemon with real sockets, netlink and iproute2 (needs root and a MIPv6 kernel)."""
    check_daemon_config(cfg)
    clock = SystemClock()
    events_stream = _open_stream(cfg.daemon_log, sys.stderr)
    events = EventLog(events_stream, clock, node=cfg.name, role=cfg.role, debug=debug)
    # Every MH message goes to the structured log: the log_file, else the event stream.
    mh_stream = _open_stream(cfg.log_file, events_stream)
    logger = MHLogger(mh_stream, clock, node=cfg.name, role=cfg.role)
    closables: list[Any] = [s for s in {events_stream, mh_stream} if s not in (sys.stderr, sys.stdout)]
    opened: list[Any] = []
    try:
        mh = MHSocket.open()
        opened.append(mh)
        ndisc = raw = netlink = queries = tun = ap_events = None
        dump: Callable[[], list[Any]] = list
        if isinstance(cfg, MNConfig):
            ndisc = NdiscSocket.open((ND_ROUTER_ADVERT,))
            opened.append(ndisc)
            netlink = NetlinkSource.open()
            opened.append(netlink)
            dump = NetlinkSource.dump
            queries = KernelQueries()
            opened.append(queries)
            if cfg.tcp_recovery:
                raw = RawSender.open()
        elif isinstance(cfg, HAConfig):
            ndisc = NdiscSocket.open((ND_NEIGHBOR_ADVERT,))
            opened.append(ndisc)
            if cfg.perform_dad:
                raw = RawSender.open()
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
    except OSError as exc:
        for obj in opened:
            obj.close()
        hint = " (the daemon needs root: CAP_NET_RAW and CAP_NET_ADMIN)" if exc.errno in (1, 13) else ""
        raise DaemonError(f"cannot open the daemon's sockets: {exc.strerror or exc}{hint}") from None
    runner = IpBatchRunner(SubprocessRunner())
    closables.append(runner)
    if queries is not None:
        closables.append(queries)
    io = DaemonIO(
        runner=runner,
        mh=mh,
        ndisc=ndisc,
        raw=raw,
        netlink=netlink,
        netlink_dump=dump,
        closables=closables,
        ra_default_gateways=queries.ra_default_gateways if queries is not None else None,
        ssid=queries.ssid if queries is not None else None,
        tun=tun,
        ap_events=ap_events,
        neighbours=queries.neighbours if queries is not None else None,
    )
    daemon = Daemon(cfg, io, clock=clock, events=events, logger=logger)
    control = ControlServer(control_socket_path(cfg), {"status": daemon.status, "ping": lambda: {"ok": True}})
    try:
        control.open()
    except LabError:
        daemon.finish_shutdown()
        raise
    io.control = control
    return daemon
