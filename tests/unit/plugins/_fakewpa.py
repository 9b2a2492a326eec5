"""A fake wpa_supplicant control interface for the handover tests: a thread on a real UNIX socket.

``FakeWpa(ctrl_dir, "wlan0")`` binds ``ctrl_dir/wlan0`` as a datagram socket and answers the
commands the handover module and ``wpa_ctrl`` use (PING, STATUS, LIST_NETWORKS, SELECT_NETWORK,
DISCONNECT, ATTACH, DETACH) the way wpa_supplicant does: one reply datagram to the sender's
address, events (``<3>CTRL-EVENT-...``) to every attached monitor. Selecting a network drops the
current association (CTRL-EVENT-DISCONNECTED after ``disconnect_delay``) and, when the SSID is
``reachable``, associates after ``assoc_delay`` (CTRL-EVENT-CONNECTED, then STATUS shows
COMPLETED). ``noise`` sends a scan event to the monitors before every reply, so clients have to
tell events from replies; ``spurious_connect`` first reports a connection to another network id.
Every command is recorded in ``commands`` with its time.
"""

from __future__ import annotations

import heapq
import itertools
import os
import select
import socket
import threading
import time

MN_MAC = "02:00:00:00:02:00"


def bssid_for(index: int) -> str:
    return f"02:00:00:00:{index:02x}:00"


class FakeWpa:
    def __init__(
        self,
        ctrl_dir,
        interface="wlan0",
        networks=("LOCAL", "VISITME"),
        current="LOCAL",
        reachable=None,
        assoc_delay=0.05,
        disconnect_delay=0.01,
        noise=False,
        spurious_connect=False,
        silent=False,
        scan_delay=0.05,
        scan_results=True,
    ):
        self.path = os.path.join(str(ctrl_dir), interface)
        self.interface = interface
        self.networks = list(networks)
        self.reachable = set(self.networks if reachable is None else reachable)
        self.assoc_delay = assoc_delay
        self.disconnect_delay = disconnect_delay
        self.noise = noise
        self.spurious_connect = spurious_connect
        self.silent = silent
        self.scan_delay = scan_delay
        self.scan_results = scan_results  # False: a scan that never reports results
        self.state = "COMPLETED" if current else "DISCONNECTED"
        self.current = current  # SSID associated with, or None
        self.selected = self.networks.index(current) if current else None
        self.commands: list[tuple[float, str]] = []
        self.events_sent: list[tuple[float, str]] = []
        self.monitors: list = []
        self._timers: list = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.thread = threading.Thread(target=self._serve, name=f"fakewpa-{interface}", daemon=True)
        self.thread.start()

    # ---- what tests look at
    def command_names(self) -> list[str]:
        return [command for _when, command in self.commands]

    def time_of(self, prefix: str) -> float:
        return next(t for t, c in self.commands if c.startswith(prefix))

    def event_time(self, prefix: str) -> float:
        return next(t for t, e in self.events_sent if e.startswith(prefix))

    def stop(self):
        self._stop.set()
        self.thread.join(5)
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    # ---- the server
    def _serve(self):
        while not self._stop.is_set():
            now = time.time()
            while self._timers and self._timers[0][0] <= now:
                action = heapq.heappop(self._timers)[2]
                action()
            wait = 0.05
            if self._timers:
                wait = max(0.0, min(wait, self._timers[0][0] - time.time()))
            ready = select.select([self.sock], [], [], wait)[0]
            if not ready:
                continue
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                continue
            command = data.decode()
            with self._lock:
                self.commands.append((time.time(), command))
            if self.silent:
                continue
            reply = self._handle(command, addr)
            if self.noise:
                self._event("<2>CTRL-EVENT-SCAN-STARTED ")
            self._send(reply, addr)

    def _send(self, text, addr):
        try:
            self.sock.sendto(text.encode(), addr)
        except OSError:
            if addr in self.monitors:  # like wpa_supplicant: forget monitors that went away
                self.monitors.remove(addr)

    def _event(self, text):
        with self._lock:
            self.events_sent.append((time.time(), text[text.index(">") + 1 :]))
        for addr in list(self.monitors):
            self._send(text, addr)

    def _later(self, delay, action):
        heapq.heappush(self._timers, (time.time() + delay, next(self._seq), action))

    def _drop(self):
        """Leave the current association now; the event follows after disconnect_delay."""
        if self.state != "COMPLETED":
            return
        bssid = bssid_for(self.networks.index(self.current))
        self.state, self.current = "DISCONNECTED", None
        self._later(
            self.disconnect_delay,
            lambda: self._event(f"<3>CTRL-EVENT-DISCONNECTED bssid={bssid} reason=3 locally_generated=1"),
        )

    def _associate(self, index):
        ssid = self.networks[index]
        if self.selected != index or ssid not in self.reachable:
            return
        self.state, self.current = "COMPLETED", ssid
        self._event(
            f"<3>CTRL-EVENT-CONNECTED - Connection to {bssid_for(index)} completed [id={index} id_str={ssid}]"
        )

    def _handle(self, command, addr):
        words = command.split()
        name = words[0] if words else ""
        if name == "PING":
            return "PONG\n"
        if name == "ATTACH":
            self.monitors.append(addr)
            return "OK\n"
        if name == "DETACH":
            if addr not in self.monitors:
                return "FAIL\n"
            self.monitors.remove(addr)
            return "OK\n"
        if name == "STATUS":
            return self._status()
        if name == "LIST_NETWORKS":
            lines = ["network id / ssid / bssid / flags"]
            for i, ssid in enumerate(self.networks):
                flags = "[CURRENT]" if ssid == self.current else ("" if i == self.selected else "[DISABLED]")
                lines.append(f"{i}\t{ssid}\tany\t{flags}")
            return "\n".join(lines) + "\n"
        if name == "SELECT_NETWORK" and len(words) == 2:
            index = int(words[1])
            if not 0 <= index < len(self.networks):
                return "FAIL\n"
            if self.state == "COMPLETED" and self.current == self.networks[index]:
                return "OK\n"
            self.selected = index
            self._drop()
            self.state = "SCANNING"
            if self.spurious_connect:
                other = (index + 1) % len(self.networks)
                self._later(
                    self.disconnect_delay + 0.002,
                    lambda: self._event(
                        f"<3>CTRL-EVENT-CONNECTED - Connection to {bssid_for(other)} completed "
                        f"[id={other} id_str={self.networks[other]}]"
                    ),
                )
            self._later(self.disconnect_delay + self.assoc_delay, lambda: self._associate(index))
            return "OK\n"
        if name == "SCAN":
            self._event("<3>CTRL-EVENT-SCAN-STARTED ")
            if self.scan_results:
                self._later(self.scan_delay, lambda: self._event("<3>CTRL-EVENT-SCAN-RESULTS "))
            return "OK\n"
        if name == "DISCONNECT":
            self._drop()
            self.state = "DISCONNECTED"
            self.selected = None
            return "OK\n"
        return "UNKNOWN COMMAND\n"

    def _status(self):
        lines = []
        if self.state == "COMPLETED":
            index = self.networks.index(self.current)
            lines += [
                f"bssid={bssid_for(index)}",
                "freq=2412",
                f"ssid={self.current}",
                f"id={index}",
                f"id_str={self.current}",
                "mode=station",
                "pairwise_cipher=NONE",
                "group_cipher=NONE",
                "key_mgmt=NONE",
            ]
        lines += [f"wpa_state={self.state}", f"address={MN_MAC}"]
        return "\n".join(lines) + "\n"
