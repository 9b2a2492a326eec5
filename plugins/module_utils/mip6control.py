# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client side of the Mobile IPv6 daemon's control socket: one owner for the protocol.

The daemon (``mvpn_lab.mip6.daemon.control``, which carries this file in its bundle) listens on a
UNIX stream socket and answers one command per connection: the client sends one line, the daemon
answers with one JSON object and a newline, then closes. Commands: ``ping`` (pid and generation),
``status`` (the whole status), ``reload`` and ``check PATH`` (would ``reload`` take the file at
PATH? The running daemon checks it with the code it reloads with, no new process).

``reload`` makes the running process read its configuration file again and start afresh with it,
without a new Python process: the daemon checks the new file first and refuses it in one line (the
old configuration keeps running), answers with its pid and generation, stops as it would on
SIGTERM (the mobile node de-registers when away, the kernel entries are removed) and starts with
the new configuration under generation + 1. :func:`reload` waits until the socket answers from the
new generation (or from a new pid: the daemon failed to start again and systemd restarted it).

Used by the ``mvpn.lab.mip6_control`` and ``mvpn.lab.mip6_config`` modules, ``mvpn-lab mip6
status`` and ``mvpn-lab mip6 reload`` (the unit's ``ExecReload``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import time

MAX_ANSWER = 1 << 20  # the status of a busy home agent is a few KB; a megabyte is not an answer


class ControlError(Exception):
    """The daemon could not be asked, or its answer is not one (one line)."""


def query(path, command="status", timeout=5.0):
    """Send ``command`` to the daemon listening on ``path``; its answer as a dict.

    Raises :class:`ControlError` with one line on any problem, including an answer that is only
    ``{"error": ...}`` (the daemon refused the command)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except FileNotFoundError:
            raise ControlError("no daemon control socket at %s" % path) from None
        except ConnectionRefusedError:
            raise ControlError("no daemon listens on %s" % path) from None
        except OSError as exc:
            raise ControlError("cannot connect to %s: %s" % (path, exc.strerror or exc)) from None
        try:
            sock.sendall(command.encode() + b"\n")
            data = b""
            while len(data) <= MAX_ANSWER:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise ControlError("%s: %s" % (path, exc.strerror or exc)) from None
    finally:
        sock.close()
    if len(data) > MAX_ANSWER:
        raise ControlError("%s: the daemon's answer is longer than %d bytes" % (path, MAX_ANSWER))
    try:
        reply = json.loads(data.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and json's JSONDecodeError are ValueErrors
        raise ControlError("%s: the daemon's answer is not JSON" % path) from None
    if not isinstance(reply, dict):
        raise ControlError("%s: the daemon's answer is not a JSON object" % path)
    if "error" in reply and len(reply) == 1:
        raise ControlError("%s: %s" % (path, reply["error"]))
    return reply


def check(path, candidate, timeout=5.0):
    """Ask the daemon on ``path`` whether ``reload`` would take the file ``candidate``; its answer
    (``{"ok": true, ...}``), or :class:`ControlError` with the daemon's one-line reason."""
    if not candidate or any(c in candidate for c in "\r\n"):
        raise ControlError("check: the candidate's path must be one line, got %r" % candidate)
    return query(path, "check " + candidate, timeout)


def _identity(answer):
    return (answer.get("pid"), answer.get("generation"))


def reload(path, timeout=30.0, poll=0.05, clock=time.monotonic, sleep=time.sleep, ask=None):
    """Reload the daemon on ``path`` and wait until its new generation answers.

    Returns ``{"before": {...}, "after": {...}, "seconds": s}`` with the pid and generation of
    each; raises :class:`ControlError` when the daemon refuses (e.g. the new configuration is not
    valid: it keeps running the old one) or does not answer again within ``timeout`` seconds.
    ``ask`` replaces :func:`query` (tests)."""
    ask = ask or query
    began = clock()
    before = ask(path, "reload", min(timeout, 5.0))
    if not before.get("reloading"):
        raise ControlError(
            "%s: the daemon did not take the reload (answer %s)" % (path, json.dumps(before)[:200])
        )
    deadline = began + timeout
    last = "no answer yet"
    while True:
        try:
            after = ask(path, "ping", min(timeout, 2.0))
            if after.get("ok") and _identity(after) != _identity(before):
                return {
                    "before": {"pid": before.get("pid"), "generation": before.get("generation")},
                    "after": {"pid": after.get("pid"), "generation": after.get("generation")},
                    "seconds": round(clock() - began, 3),
                }
            last = "still generation %s" % after.get("generation")
        except ControlError as exc:
            last = str(exc)
        if clock() >= deadline:
            raise ControlError(
                "%s: the daemon did not answer with a new generation within %s s of the reload (%s)"
                % (path, timeout, last)
            )
        sleep(poll)
