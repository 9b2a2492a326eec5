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

The control command ``reload`` (:func:`serve`) reads the configuration file again; a valid one
stops this daemon exactly as SIGTERM would and starts a new one with it in the same process
(generation + 1), which saves the interpreter's start and the imports (seconds on the twin's
emulated CPU); an invalid one is refused in one line and the old configuration keeps running.

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
import os
import selectors
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from ipaddress import IPv6Address
from typing import Any, TextIO

from mvpn_lab.errors import LabError
from mvpn_lab.mip6.core.actions import (
    Action,
    AnnounceAddress,
    ExitDeregistered,
    ReceivedPacket,
    SendMH,
    SendRouterSolicitation,
)
from mvpn_lab.mip6.core.clock import Clock, SystemClock, iso_timestamp
from mvpn_lab.mip6.core.config import (
    NodeConfig,
    check_daemon_config,
    control_socket_path,
    load_config,
)
from mvpn_lab.mip6.core.counters import Counters
from mvpn_lab.mip6.core.log import MHLogger
from mvpn_lab.mip6.core.node import Node
from mvpn_lab.mip6.daemon.control import ControlServer
from mvpn_lab.mip6.daemon.events import EventLog
from mvpn_lab.mip6.daemon.io import DaemonIO, parse_iw_ssid
from mvpn_lab.mip6.daemon.kernel.base import (
    DEFERRABLE,
    IpBatchRunner,
    KernelAdapter,
    KernelError,
    SubprocessRunner,
)
from mvpn_lab.mip6.daemon.mhsocket import AncillaryError, MHSocket, received_packet
from mvpn_lab.mip6.daemon.ndisc import (
    ALL_NODES,
    ALL_ROUTERS,
    NdiscError,
    build_na,
    build_rs,
)
from mvpn_lab.mip6.daemon.roles.base import DriverClass, NodeArgs, RoleDriver
from mvpn_lab.mip6.daemon.roles.cn import CorrespondentDriver
from mvpn_lab.mip6.daemon.roles.ha import HomeAgentDriver
from mvpn_lab.mip6.daemon.roles.mn import MobileNodeDriver
from mvpn_lab.mip6.daemon.sdnotify import notify

SHUTDOWN_WAIT = 2.0  # seconds to wait for the BA of the deregistration sent at exit
NA_REPEATS = 3  # MAX_NEIGHBOR_ADVERTISEMENT (RFC 4861 10)
NA_INTERVAL = 1.0
MAX_READS = 64  # packets read per wake-up of one socket, so no socket starves the others


#: role -> its driver: the one place the daemon looks at the role
DRIVERS: dict[str, DriverClass] = {"mn": MobileNodeDriver, "ha": HomeAgentDriver, "cn": CorrespondentDriver}

__all__ = [
    "DRIVERS",
    "SHUTDOWN_WAIT",
    "Daemon",
    "DaemonError",
    "DaemonIO",
    "open_daemon",
    "parse_iw_ssid",
    "serve",
]


class DaemonError(LabError):
    """The daemon cannot start (one line)."""


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
        config_path: str | None = None,
        generation: int = 1,
    ) -> None:
        self.cfg = cfg
        self.config_path = config_path  # the file ``reload`` reads again
        self.generation = generation  # 1, then + 1 for each reload in this process
        self.reload_config: NodeConfig | None = None  # set by a reload taken: what to start next
        self.io = io
        self.clock = clock
        self.events = events
        self._queue: list[Action] = []
        self.counters = Counters()
        self._timers: list[tuple[float, int, str, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        args = NodeArgs(clock=clock, sink=self._queue.append, logger=logger, random=random)
        self.driver: RoleDriver = DRIVERS[cfg.role](cfg, self, args)  # the role's one choice
        self.node: Node = self.driver.node
        self.kernel: KernelAdapter = self.driver.kernel
        self._last_kernel: tuple[str, bool] | None = None  # the last kernel action and whether it worked
        self._stop_requested = False
        self.stopping = False
        self.stopped = False
        self._exit_deadline: float | None = None
        self.started = clock.wall()
        # what woke the loop (a socket's handler or the timers), when, and the kernel work done
        # since: each Mobility Header message sent is logged with it (event "answer")
        self._trigger = "start"
        self._trigger_at = clock.monotonic()
        self._kernel_s = 0.0
        self._kernel_commands = 0

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
        self.driver.start()
        self.after_input()

    def _control_path(self) -> str:
        return control_socket_path(self.cfg)

    def request_stop(self, *_args: Any) -> None:
        self._stop_requested = True

    def ping(self) -> dict[str, Any]:
        return {"ok": True, "pid": os.getpid(), "generation": self.generation}

    def _check_file(self, path: str, what: str) -> tuple[NodeConfig | None, str | None]:
        """The file at ``path`` as this daemon would run it, or the one-line reason it would not
        (``reload`` and ``check`` share it: what ``check`` passes, ``reload`` takes)."""
        try:
            cfg = load_config(path)
            check_daemon_config(cfg)
        except LabError as exc:
            return None, f"{what}: {exc}"
        if control_socket_path(cfg) != self._control_path():
            return None, (
                f"{what}: the new configuration moves the control socket to "
                f"{control_socket_path(cfg)} (name or control_socket changed); restart the daemon"
            )
        return cfg, None

    def check_candidate(self, path: str) -> dict[str, Any]:
        """The control command ``check PATH``: would ``reload`` take the file at PATH? The
        ``mvpn.lab.mip6_config`` module asks before it puts a new file in place, so that the
        warm daemon checks it instead of a new Python process."""
        _cfg, problem = self._check_file(path, "check refused")
        if problem is not None:
            return {"error": problem}
        return {"ok": True, "checked": path, "generation": self.generation}

    def request_reload(self) -> dict[str, Any]:
        """The control command ``reload``: check the configuration file again and, when it is
        valid, stop as on SIGTERM so that :func:`serve` starts afresh with it."""
        if self.config_path is None:
            return {"error": "reload: this daemon was not started from a configuration file"}
        if self.stopping or self._stop_requested:
            return {"error": "reload: the daemon is already stopping"}
        cfg, problem = self._check_file(self.config_path, "reload refused, the running configuration stays")
        if cfg is None:
            self.events.error("reload_refused", str(problem))
            return {"error": problem}
        self.reload_config = cfg
        self._stop_requested = True
        self.events.info("reload", generation=self.generation)
        return {"ok": True, "reloading": True, "pid": os.getpid(), "generation": self.generation}

    def control_commands(self) -> dict[str, Callable[..., dict[str, Any]]]:
        """What the control socket answers (``check`` takes a path, the others nothing)."""
        return {
            "status": self.status,
            "ping": self.ping,
            "reload": self.request_reload,
            "check": self.check_candidate,
        }

    def begin_shutdown(self) -> None:
        """Stop taking part; the mobile node deregisters first when away (if configured)."""
        if self.stopping:
            return
        self.stopping = True
        # a reload stays in the same process: systemd hears RELOADING=1, then READY=1 from the
        # next generation's loop
        notify("RELOADING=1" if self.reload_config is not None else "STOPPING=1")
        self.events.info("stopping", reload=self.reload_config is not None)
        if self.driver.begin_exit():  # e.g. the mobile node's deregistration: wait for its answer
            self._exit_deadline = self.clock.monotonic() + SHUTDOWN_WAIT
            self.drain()

    def shutdown_complete(self) -> bool:
        if not self.stopping:
            return False
        if self._exit_deadline is None or self.driver.exit_done():
            return True
        return self.clock.monotonic() >= self._exit_deadline

    def finish_shutdown(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.driver.exit_done() is False:
            self.events.warning("deregistration_unanswered", "no BA for the deregistration sent at exit")
        self.driver.close()
        if self.cfg.cleanup_on_exit:
            self.kernel.teardown()
        io = self.io
        for obj in (io.control, io.netlink, io.ndisc, io.raw, io.mh, io.ap_events, io.tun):
            if obj is not None:
                with contextlib.suppress(Exception):
                    obj.close()
        self.events.info("stop", deregistered=self.driver.exit_done(), reload=self.reload_config is not None)
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
        previous: dict[signal.Signals, Any] = {}
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
                (self.io.control, self.on_control_readable),
                *self.driver.readers(),
            ):
                if obj is not None:
                    sel.register(obj, selectors.EVENT_READ, handler)
            notify("READY=1")
            while True:
                if self._stop_requested and not self.stopping:
                    self.guard("shutdown", self.begin_shutdown)
                if self.shutdown_complete():
                    break
                for key, _ in sel.select(self.next_timeout()):
                    name = getattr(key.data, "__name__", "handler")
                    self.begin_trigger(name)
                    self.guard(name, key.data)
                self.begin_trigger("timers")
                self.guard("timers", self.fire_timers)
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

    @property
    def trigger_at(self) -> float:
        """When the loop woke for what it handles now (the clock's monotonic time)."""
        return self._trigger_at

    def begin_trigger(self, name: str) -> None:
        """The loop woke for ``name``: what it sends from now on is timed from here."""
        self._trigger = name
        self._trigger_at = self.clock.monotonic()
        self._kernel_s = 0.0
        self._kernel_commands = self.kernel.commands

    def guard(self, name: str, fn: Callable[[], Any]) -> None:
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
        if self._exit_deadline is not None and self.stopping:
            deadlines.append(self._exit_deadline)
        deadlines += self.driver.deadlines()
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - self.clock.monotonic())

    def fire_timers(self) -> None:
        if not self.stopping:
            self.node.tick()
        now = self.clock.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, name, callback = heapq.heappop(self._timers)
            self.guard(name, callback)
        self.driver.on_timers()
        self.after_input()

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
        result = self.node.receive(pkt)
        self.after_input()
        return result

    def esp_for(self, pkt: ReceivedPacket) -> bool:
        """True when a ``level required`` ESP policy covers this MN-HA message (see module doc)."""
        return self.driver.esp_for(pkt)

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
            self.driver.on_ndisc(kind, packet.data, packet.src, iface)

    def on_control_readable(self) -> None:
        self.io.control.accept()

    # ================================================================== outputs

    def after_input(self) -> None:
        self.drain()

    def drain(self) -> None:
        """Carry out the queued actions in order; the kernel commands still queued run at the end
        (see DEFERRABLE in :mod:`.kernel.base`)."""
        while self._queue:
            action = self._queue.pop(0)
            self.guard(action.kind, partial(self._execute, action))
        self.guard("kernel", self._flush_kernel)

    def _flush_kernel(self) -> None:
        began = self.clock.monotonic()
        try:
            self.kernel.flush()
        finally:
            self._kernel_s += self.clock.monotonic() - began

    def _execute(self, action: Action) -> None:
        if isinstance(action, SendMH):
            self._send_mh(action)  # (prepare_send runs the queued commands first)
            return
        if action.kind not in DEFERRABLE:
            # whatever else the action does (a Router Solicitation, TCP probes, a command whose
            # result is read) comes after the kernel changes queued before it
            self._flush_kernel()
        self.events.info("action", **action.to_dict())
        if isinstance(action, SendRouterSolicitation):
            self.send_rs(action.iface)
        elif isinstance(action, AnnounceAddress):
            if self._last_kernel == (action.after, True):
                self.announce(action.address, action.iface, action.src)
        elif isinstance(action, ExitDeregistered):
            pass  # the driver sees it in the node's state (exit_done)
        elif not self.driver.execute(action):
            began = self.clock.monotonic()
            ok = self.kernel.execute(action)
            self._kernel_s += self.clock.monotonic() - began
            self._last_kernel = (action.kind, ok)
            self.driver.after_kernel(action, ok)

    def ifindex(self, name: str) -> int:
        try:
            return int(self.io.ifindex(name))
        except (OSError, ValueError):
            return 0

    def _send_mh(self, send: SendMH) -> None:
        began = self.clock.monotonic()
        try:
            src, dst = self.kernel.prepare_send(send)
        except KernelError as exc:
            self.counters.inc("mh_not_sent")
            self.events.error("mh_not_sent", f"{send.message.NAME} to {send.dst}: {exc}")
            return
        finally:
            self._kernel_s += self.clock.monotonic() - began
        device = self.driver.send_device(send)
        ifindex = self.ifindex(device) if device is not None else 0
        try:
            self.io.mh.send(send.wire(), src, dst, ifindex)
        except OSError as exc:
            self.counters.inc("mh_send_failed")
            self.events.error(
                "mh_send_failed", f"{send.message.NAME} from {src} to {dst}: {exc.strerror or exc}"
            )
            return
        self.counters.inc("mh_sent")
        # the daemon's own processing time for this message: from the wake-up that led to it
        # (a received BU, the MN's link-up or RA, a timer) to the send, and how much of it the
        # kernel changes took (docs/mip6.md, "Processing times")
        self.events.info(
            "answer",
            message=send.message.NAME,
            dst=dst,
            trigger=self._trigger,
            processing_ms=round((self.clock.monotonic() - self._trigger_at) * 1000, 3),
            kernel_ms=round(self._kernel_s * 1000, 3),
            kernel_commands=self.kernel.commands - self._kernel_commands,
            **self.driver.answer_fields(send),
        )

    def send_rs(self, iface: str) -> None:
        ifindex = self.ifindex(iface)
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
        ifindex = self.ifindex(iface)
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

    # ================================================================== status

    def status(self) -> dict[str, Any]:
        out = self.node.status()
        now = self.clock.wall()
        out["daemon"] = {
            "pid": os.getpid(),
            "generation": self.generation,
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
        out["daemon"].update(self.driver.status())
        return out


# ====================================================================== building the real thing


def _open_stream(path: str | None, default: TextIO) -> TextIO:
    if path is None or path == "-":
        return default
    try:
        return open(path, "a", encoding="utf-8", buffering=1)
    except OSError as exc:
        raise DaemonError(f"cannot open log {path}: {exc.strerror or exc}") from None


def open_daemon(
    cfg: NodeConfig, *, debug: bool = False, config_path: str | None = None, generation: int = 1
) -> Daemon:
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
        extra = DRIVERS[cfg.role].open_io(cfg, opened)
    except OSError as exc:
        for obj in opened:
            obj.close()
        hint = " (the daemon needs root: CAP_NET_RAW and CAP_NET_ADMIN)" if exc.errno in (1, 13) else ""
        raise DaemonError(f"cannot open the daemon's sockets: {exc.strerror or exc}{hint}") from None
    runner = IpBatchRunner(SubprocessRunner())
    closables.append(runner)
    queries = extra.pop("queries", None)
    if queries is not None:
        closables.append(queries)
    io = DaemonIO(runner=runner, mh=mh, closables=closables, **extra)
    daemon = Daemon(
        cfg, io, clock=clock, events=events, logger=logger, config_path=config_path, generation=generation
    )
    control = ControlServer(control_socket_path(cfg), daemon.control_commands())
    try:
        control.open()
    except LabError:
        daemon.finish_shutdown()
        raise
    io.control = control
    return daemon


def serve(
    cfg: NodeConfig,
    *,
    config_path: str | None = None,
    debug: bool = False,
    opener: Callable[..., Daemon] = open_daemon,
) -> int:
    """``mip6 run``: open, start and run the daemon; after a reload taken, do it again with the
    configuration the reload read (generation + 1). Returns the exit status; a daemon that cannot
    start raises :class:`DaemonError` (one line)."""
    generation = 1
    while True:
        daemon = opener(cfg, debug=debug, config_path=config_path, generation=generation)
        try:
            daemon.start()
        except LabError:
            daemon.finish_shutdown()
            raise
        status = daemon.run()
        if daemon.reload_config is None or status != 0:
            return status
        cfg = daemon.reload_config
        generation += 1
