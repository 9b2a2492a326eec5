# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small client for wpa_supplicant's control interface (a UNIX datagram socket).

wpa_supplicant answers each command datagram with one reply datagram, sent back to the
address the command came from, so the client binds its own socket to a file (removed again by
:meth:`WpaCtrl.close`). After ``ATTACH`` the same socket also receives unsolicited event
messages, which start with a ``<N>`` priority prefix, for example
``<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=1 id_str=]``.
Command replies never start with ``<``: :meth:`WpaCtrl.request` queues every event it
receives while waiting for a reply, and :meth:`WpaCtrl.next_event` hands them out in order,
each with the time it was received.

Every receive has a timeout; nothing here blocks for longer than it was told to.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import collections
import contextlib
import os
import re
import socket
import tempfile
import time

DEFAULT_TIMEOUT = 2.0
RECV_SIZE = 65536
CLIENT_PREFIX = "mvpn-wpa-ctrl-"

#: An unsolicited message: priority level, text without the ``<N>`` prefix, time.time() when received.
Event = collections.namedtuple("Event", ["level", "text", "received_at"])

_EVENT_RE = re.compile(r"^<(\d+)>(.*)$", re.DOTALL)
_ID_RE = re.compile(r"\[id=(\d+)")
_BSSID_RE = re.compile(r"(?:Connection to |bssid=)([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})")


class WpaCtrlError(Exception):
    """The control socket cannot be reached, or wpa_supplicant did not answer as expected."""


class WpaCtrlTimeout(WpaCtrlError):
    """No reply within the timeout."""


def parse_event(message, received_at=None):
    """An :class:`Event` for an unsolicited message, or None for a command reply."""
    match = _EVENT_RE.match(message)
    if not match:
        return None
    return Event(int(match.group(1)), match.group(2).rstrip("\n"), received_at)


def parse_status(text):
    """``STATUS`` reply (``key=value`` lines) as a dict."""
    status = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            status[key.strip()] = value.strip()
    return status


def parse_networks(text):
    """``LIST_NETWORKS`` reply as a list of dicts with id (int), ssid, bssid and flags."""
    networks = []
    for line in text.splitlines()[1:]:  # the first line is the header
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip().isdigit():
            continue
        networks.append(
            dict(
                id=int(fields[0]),
                ssid=fields[1],
                bssid=fields[2] if len(fields) > 2 else "",
                flags=fields[3] if len(fields) > 3 else "",
            )
        )
    return networks


def event_network_id(text):
    """The network id of a ``CTRL-EVENT-CONNECTED`` message (``[id=N ...]``), or None."""
    match = _ID_RE.search(text)
    return int(match.group(1)) if match else None


def event_bssid(text):
    """The BSSID named in a ``CTRL-EVENT-CONNECTED`` or ``CTRL-EVENT-DISCONNECTED`` message, or None."""
    match = _BSSID_RE.search(text)
    return match.group(1).lower() if match else None


class WpaCtrl(object):
    """One connection to ``<ctrl_dir>/<interface>``; use as a context manager or call close()."""

    def __init__(self, path, timeout=None, client_dir=None):
        self.path = path
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self.events = collections.deque()
        self.attached = False
        self.sock = None
        directory = client_dir or tempfile.gettempdir()
        token = binascii.hexlify(os.urandom(4)).decode("ascii")
        self.local = os.path.join(directory, "%s%d-%s" % (CLIENT_PREFIX, os.getpid(), token))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(self.local)
        except OSError as exc:
            sock.close()
            raise WpaCtrlError("cannot bind the client socket %s: %s" % (self.local, exc)) from None
        try:
            sock.connect(path)
        except OSError as exc:
            sock.close()
            self._unlink()
            raise WpaCtrlError("cannot connect to %s: %s" % (path, exc.strerror or exc)) from None
        self.sock = sock

    # ---- context manager
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def _unlink(self):
        with contextlib.suppress(OSError):
            os.unlink(self.local)

    def close(self):
        """Detach (if attached), close the socket and remove the client socket file."""
        if self.sock is None:
            return
        try:
            if self.attached:
                with contextlib.suppress(WpaCtrlError):
                    self.request("DETACH", timeout=min(self.timeout, 0.5))
                self.attached = False
        finally:
            self.sock.close()
            self.sock = None
            self._unlink()

    # ---- low level
    def _recv(self, deadline):
        """One datagram as text, or None when the deadline passes first."""
        remaining = deadline - time.time()
        if remaining <= 0:
            return None
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(RECV_SIZE)
        except socket.timeout:
            return None
        except OSError as exc:
            raise WpaCtrlError("receiving from %s failed: %s" % (self.path, exc.strerror or exc)) from None
        return data.decode("utf-8", "replace")

    def _send(self, command):
        if self.sock is None:
            raise WpaCtrlError("connection to %s is closed" % self.path)
        try:
            self.sock.send(command.encode("utf-8"))
        except OSError as exc:
            raise WpaCtrlError(
                "sending %s to %s failed: %s" % (command, self.path, exc.strerror or exc)
            ) from None

    # ---- commands
    def request(self, command, timeout=None):
        """Send one command and return its reply text; events received meanwhile are queued."""
        timeout = self.timeout if timeout is None else timeout
        self._send(command)
        deadline = time.time() + timeout
        while True:
            message = self._recv(deadline)
            if message is None:
                raise WpaCtrlTimeout(
                    "wpa_supplicant on %s did not answer %s within %s s"
                    % (self.path, command.split(" ", 1)[0], timeout)
                )
            event = parse_event(message, time.time())
            if event is None:
                return message
            self.events.append(event)

    def request_ok(self, command, timeout=None):
        """Send a command whose reply must be ``OK``."""
        reply = self.request(command, timeout).strip()
        if reply != "OK":
            raise WpaCtrlError(
                "wpa_supplicant on %s answered %s to %s" % (self.path, reply or "nothing", command)
            )

    def ping(self, timeout=None):
        reply = self.request("PING", timeout).strip()
        if reply != "PONG":
            raise WpaCtrlError("wpa_supplicant on %s answered %r to PING" % (self.path, reply))

    def status(self, timeout=None):
        return parse_status(self.request("STATUS", timeout))

    def networks(self, timeout=None):
        return parse_networks(self.request("LIST_NETWORKS", timeout))

    def attach(self, timeout=None):
        self.request_ok("ATTACH", timeout)
        self.attached = True

    def detach(self, timeout=None):
        self.request_ok("DETACH", timeout)
        self.attached = False

    # ---- events
    def next_event(self, timeout):
        """The next queued or arriving event, or None after timeout seconds.

        Stray command replies (for example a late answer to a request that timed out) are dropped.
        """
        if self.events:
            return self.events.popleft()
        deadline = time.time() + max(timeout, 0)
        while True:
            message = self._recv(deadline)
            if message is None:
                return None
            event = parse_event(message, time.time())
            if event is not None:
                return event

    def clear_events(self):
        """Drop the queued events; returns how many there were."""
        n = len(self.events)
        self.events.clear()
        return n
