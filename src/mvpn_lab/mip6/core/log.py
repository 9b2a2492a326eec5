"""One structured JSON line per Mobility Header message sent or received.

Each line has a wall-clock timestamp (``ts``, RFC 3339 UTC, and ``epoch``), the node name and
role, the direction (``tx``/``rx``), the addresses (``src``, ``dst``, ``hao``, ``rh2``), the
decoded message (``msg``) and, for received messages, the ``result``: ``accepted``, ``ignored``
or ``rejected:<reason>``. Undecodable input is logged with ``msg: null`` and ``error``.
"""

from __future__ import annotations

import json
from ipaddress import IPv6Address
from typing import Any, TextIO

from mvpn_lab.mip6.core.clock import Clock, iso_timestamp
from mvpn_lab.mip6.wire.messages import Message, message_to_dict


def _text(addr: IPv6Address | None) -> str | None:
    return None if addr is None else str(addr)


class MHLogger:
    def __init__(self, stream: TextIO | None, clock: Clock, *, node: str, role: str) -> None:
        self.stream = stream
        self.clock = clock
        self.node = node
        self.role = role
        self.lines = 0

    def log(
        self,
        direction: str,
        *,
        src: IPv6Address,
        dst: IPv6Address,
        msg: Message | None,
        hao: IPv6Address | None = None,
        rh2: IPv6Address | None = None,
        **extra: Any,
    ) -> None:
        if self.stream is None:
            return
        epoch = self.clock.wall()
        record: dict[str, Any] = {
            "ts": iso_timestamp(epoch),
            "epoch": round(epoch, 6),
            "node": self.node,
            "role": self.role,
            "dir": direction,
            "src": _text(src),
            "dst": _text(dst),
            "hao": _text(hao),
            "rh2": _text(rh2),
            "msg": None if msg is None else message_to_dict(msg),
        }
        record.update({k: (str(v) if isinstance(v, IPv6Address) else v) for k, v in extra.items()})
        self.stream.write(json.dumps(record, sort_keys=False) + "\n")
        self.stream.flush()
        self.lines += 1


def open_logger(path: str | None, clock: Clock, *, node: str, role: str) -> MHLogger:
    """A logger appending to ``path`` (line-buffered), or one that discards when ``path`` is None."""
    if path is None:
        return MHLogger(None, clock, node=node, role=role)
    stream = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the daemon
    return MHLogger(stream, clock, node=node, role=role)
