"""The daemon's control socket: a UNIX stream socket answering one command per connection.

Protocol: the client sends one line (``status``, ``ping``, ``reload`` or ``check PATH``), the
daemon answers with one JSON object and a newline, then closes. The client side is the
collection's ``plugins/module_utils/mip6control.py`` (the daemon bundle carries it): ``mvpn-lab
mip6 status`` and ``mvpn-lab mip6 reload`` here, the ``mvpn.lab.mip6_control`` and
``mvpn.lab.mip6_config`` modules on a lab host.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mvpn_lab.collection import module_utils
from mvpn_lab.errors import LabError

#: ``plugins/module_utils/mip6control.py``: the one client of this socket
_client = module_utils("mip6control")

MAX_REQUEST = 4096
CLIENT_TIMEOUT = 0.5  # seconds a client may take to send its line (the loop waits that long at most)


class ControlError(LabError):
    """The control socket cannot be set up or queried (one line)."""


#: The commands that take one argument after a space (``check PATH``); the others take none.
WITH_ARGUMENT = frozenset({"check"})


def handle_request(line: str, commands: dict[str, Callable[..., dict[str, Any]]]) -> dict[str, Any]:
    command, _, argument = line.strip().partition(" ")
    argument = argument.strip()
    handler = commands.get(command)
    if handler is None:
        return {"error": f"unknown command {command[:40]!r}; try one of {', '.join(sorted(commands))}"}
    if command in WITH_ARGUMENT:
        if not argument:
            return {"error": f"{command}: expected an argument after the command"}
        return handler(argument)
    if argument:
        return {"error": f"{command}: takes no argument"}
    return handler()


class ControlServer:
    def __init__(
        self,
        path: str,
        commands: dict[str, Callable[..., dict[str, Any]]],
        *,
        factory: Callable[..., Any] = socket.socket,
    ) -> None:
        self.path = path
        self.commands = commands
        self.factory = factory
        self.sock: Any = None

    def open(self) -> None:
        path = Path(self.path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ControlError(f"control socket directory {path.parent}: {exc.strerror or exc}") from None
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise ControlError(f"control socket path {path} exists and is not a socket")
            if self._alive(path):
                raise ControlError(f"another daemon listens on {path}")
            path.unlink()
        sock = self.factory(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
            os.chmod(path, 0o660)
            sock.listen(8)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise ControlError(f"control socket {path}: {exc.strerror or exc}") from None
        self.sock = sock

    @staticmethod
    def _alive(path: Path) -> bool:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect(str(path))
        except OSError:
            return False
        finally:
            probe.close()
        return True

    def fileno(self) -> int:
        return int(self.sock.fileno())

    def accept(self) -> None:
        """Serve one waiting client (called when the listening socket is readable)."""
        try:
            client, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        with client:
            client.settimeout(CLIENT_TIMEOUT)
            data = b""
            try:
                while b"\n" not in data and len(data) < MAX_REQUEST:
                    chunk = client.recv(MAX_REQUEST)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                return  # a client too slow or gone: nothing to answer
            reply = handle_request(data.decode("utf-8", "replace"), self.commands)
            with contextlib.suppress(OSError):
                client.sendall((json.dumps(reply) + "\n").encode())

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def query(path: str, command: str = "status", *, timeout: float = 5.0) -> dict[str, Any]:
    """Ask a running daemon; raises :class:`ControlError` with one line on any problem (the
    client is the collection's ``module_utils/mip6control.py``, shared with the modules)."""
    try:
        return dict(_client.query(path, command, timeout))
    except _client.ControlError as exc:
        raise ControlError(str(exc)) from None


def reload(path: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """Reload a running daemon and wait for its new generation (``module_utils/mip6control``)."""
    try:
        return dict(_client.reload(path, timeout))
    except _client.ControlError as exc:
        raise ControlError(str(exc)) from None
