"""The daemon's own event log: one JSON line per event (start, stop, kernel command, error).

Mobility Header messages go to the message log of :mod:`~mvpn_lab.mip6.core.log`; this log records
what the daemon around the protocol core did and what went wrong. Every line carries a
wall-clock timestamp (``ts``, RFC 3339 UTC, and ``epoch``), the node name and role, a ``level``
(``debug``, ``info``, ``warning``, ``error``) and an ``event`` name. Errors are one line each and
never contain a traceback.
"""

from __future__ import annotations

import json
from ipaddress import IPv6Address, IPv6Network
from typing import Any, TextIO

from mvpn_lab.mip6.core.clock import Clock, iso_timestamp
from mvpn_lab.mip6.core.counters import Counters


def _jsonable(value: Any) -> Any:
    if isinstance(value, IPv6Address | IPv6Network):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class EventLog:
    def __init__(
        self, stream: TextIO | None, clock: Clock, *, node: str, role: str, debug: bool = False
    ) -> None:
        self.stream = stream
        self.clock = clock
        self.node = node
        self.role = role
        self.debug_enabled = debug
        self.counts = Counters()  # by level
        self.last_error: str | None = None

    def emit(self, event: str, level: str = "info", **fields: Any) -> None:
        self.counts.inc(level)
        if level == "error":
            self.last_error = str(fields.get("message", event))
        if level == "debug" and not self.debug_enabled:
            return
        if self.stream is None:
            return
        epoch = self.clock.wall()
        record: dict[str, Any] = {
            "ts": iso_timestamp(epoch),
            "epoch": round(epoch, 6),
            "node": self.node,
            "role": self.role,
            "level": level,
            "event": event,
        }
        record.update({k: _jsonable(v) for k, v in fields.items()})
        try:
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or full log must not stop the daemon
            pass

    def info(self, event: str, **fields: Any) -> None:
        self.emit(event, "info", **fields)

    def debug(self, event: str, **fields: Any) -> None:
        self.emit(event, "debug", **fields)

    def warning(self, event: str, message: str, **fields: Any) -> None:
        self.emit(event, "warning", message=message, **fields)

    def error(self, event: str, message: str, **fields: Any) -> None:
        """One line; ``message`` is a single human-readable line (newlines are flattened)."""
        self.emit(event, "error", message=" ".join(str(message).split()), **fields)
