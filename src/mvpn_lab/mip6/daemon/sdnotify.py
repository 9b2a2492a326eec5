"""systemd's readiness protocol (sd_notify(3)): one datagram to ``$NOTIFY_SOCKET``.

The unit is ``Type=notify``, so ``systemctl start``/``restart`` returns only once the daemon
serves its control socket; a status query right after a restart then never meets a socket
that is not listening yet. Outside systemd (no ``$NOTIFY_SOCKET``) this does nothing.
"""

from __future__ import annotations

import os
import socket


def notify(state: str, *, environ: dict[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``READY=1``); True if a notification socket took it."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    target = "\0" + address[1:] if address[0] == "@" else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(target)
            sock.sendall(state.encode())
    except OSError:
        return False  # systemd gone or the socket not reachable: readiness is a courtesy here
    return True
