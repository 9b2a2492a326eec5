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
