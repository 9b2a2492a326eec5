"""The one exception the wire decoders raise (its own file, so ``ipv6`` and ``messages`` need not
import each other)."""

from __future__ import annotations


class MHDecodeError(Exception):
    """Input that is not a well-formed Mobility Header (or IPv6 packet, or capture file).

    The one exception the decoders of this package raise. ``reason`` is a short phrase.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WireError(MHDecodeError):
    """A packet part that cannot be read, with the kind of problem for callers that sort them.

    ``kind``: ``"snaplen"`` (the bytes needed were not captured), ``"malformed"`` (a length field
    points past the end of the packet, or is otherwise impossible) or ``"unknown-mh-type"``.
    ``message`` (also ``reason``) is the one-line explanation.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
