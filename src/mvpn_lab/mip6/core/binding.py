"""Binding cache (HA, CN), binding update list (MN) and sequence number arithmetic."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv6Address
from typing import Any

from mvpn_lab.mip6.wire.constants import SEQ_HALF, SEQ_MODULUS


class RegistrationState(StrEnum):
    """The mobile node's home registration (its binding update list entry for the home agent).

    See :mod:`mvpn_lab.mip6.core.mn`; the values are the ``state`` of ``mvpn-lab mip6 status``.
    """

    IDLE = "idle"  # a binding update list entry not (yet) in use
    HOME = "home"  # at home, no binding
    REGISTERING = "registering"  # BU sent, waiting for the BA
    REGISTERED = "registered"  # BA accepted, refresh timer armed
    DEREGISTERING = "deregistering"  # lifetime-0 BU sent from home
    FAILED = "failed"  # the home agent refused for good
    DETACHED = "detached"  # no usable care-of address right now


class RouteOptimisationState(StrEnum):
    """The mobile node's binding with one correspondent (route optimisation)."""

    IDLE = "idle"  # no binding; traffic goes through the tunnel
    RR = "rr"  # return routability: HoTI and CoTI sent
    BU_SENT = "bu_sent"  # BU sent, waiting for the correspondent's BA
    BOUND = "bound"  # the correspondent holds the binding
    FAILED = "failed"  # gave up; back to the tunnel until the next move
    UNSUPPORTED = "unsupported"  # the correspondent does not do route optimisation


def seq_add(seq: int, n: int = 1) -> int:
    return (seq + n) % SEQ_MODULUS


def seq_lt(a: int, b: int) -> bool:
    """``a`` comes before ``b`` modulo 2**16: b - a is in 1..32767 (RFC 1982 style).

    Two numbers exactly 32768 apart are not ordered; neither is less than the other.
    """
    return 0 < (b - a) % SEQ_MODULUS < SEQ_HALF


def seq_gt(a: int, b: int) -> bool:
    return seq_lt(b, a)


@dataclass
class BindingCacheEntry:
    home_address: IPv6Address
    careof_address: IPv6Address
    seq: int
    lifetime: float  # seconds granted
    registered: float  # monotonic time of the accepted BU
    home_registration: bool
    link_local: bool = False
    updates: int = 1  # accepted BUs for this home address

    @property
    def expires(self) -> float:
        return self.registered + self.lifetime

    def remaining(self, now: float) -> float:
        return max(0.0, self.expires - now)

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "home_address": str(self.home_address),
            "careof_address": str(self.careof_address),
            "seq": self.seq,
            "lifetime": self.lifetime,
            "remaining": round(self.remaining(now), 3),
            "home_registration": self.home_registration,
            "link_local": self.link_local,
            "updates": self.updates,
        }


class BindingCache:
    """Bindings by home address, and the last accepted sequence number of bindings that are gone.

    A binding removed by a de-registration or by expiry leaves its last sequence number behind
    until a given time (:meth:`remove`), so a Binding Update captured earlier and replayed after
    the binding is gone still meets "sequence number out of window" (RFC 6275 9.5.1, 5.2.8).
    """

    def __init__(self) -> None:
        self._entries: dict[IPv6Address, BindingCacheEntry] = {}
        self._gone: dict[IPv6Address, tuple[int, float]] = {}  # home address -> (seq, kept until)

    def get(self, home_address: IPv6Address) -> BindingCacheEntry | None:
        return self._entries.get(home_address)

    def put(self, entry: BindingCacheEntry) -> None:
        self._entries[entry.home_address] = entry
        self._gone.pop(entry.home_address, None)

    def remove(
        self, home_address: IPv6Address, *, last_seq: int | None = None, keep_until: float | None = None
    ) -> BindingCacheEntry | None:
        """Remove the binding; with ``keep_until``, remember ``last_seq`` (default: the binding's
        own) as the home address's last accepted sequence number until then."""
        entry = self._entries.pop(home_address, None)
        seq = last_seq if last_seq is not None else (entry.seq if entry is not None else None)
        if keep_until is not None and seq is not None:
            self._gone[home_address] = (seq, keep_until)
        return entry

    def last_seq(self, home_address: IPv6Address, now: float) -> int | None:
        """The sequence number a new BU for ``home_address`` must exceed: its binding's, else the
        one remembered from a binding removed less than its keep time ago, else None."""
        entry = self._entries.get(home_address)
        if entry is not None:
            return entry.seq
        for address in [a for a, (_, until) in self._gone.items() if until <= now]:
            del self._gone[address]
        gone = self._gone.get(home_address)
        return gone[0] if gone is not None else None

    def remembered(self, now: float) -> list[dict[str, Any]]:
        """The sequence numbers kept for bindings that are gone (for ``status``)."""
        return [
            {"home_address": str(a), "seq": seq, "remaining": round(until - now, 3)}
            for a, (seq, until) in sorted(self._gone.items())
            if until > now
        ]

    def expired(self, now: float) -> list[BindingCacheEntry]:
        return [e for e in self._entries.values() if e.expires <= now]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, home_address: object) -> bool:
        return home_address in self._entries

    def entries(self) -> list[BindingCacheEntry]:
        return list(self._entries.values())

    def to_list(self, now: float) -> list[dict[str, Any]]:
        return [e.to_dict(now) for e in sorted(self._entries.values(), key=lambda e: e.home_address)]


@dataclass
class BindingUpdateListEntry:
    """What the mobile node sent to one peer (its home agent or a correspondent)."""

    peer: IPv6Address
    home_address: IPv6Address
    careof_address: IPv6Address
    home_registration: bool
    seq: int = 0
    requested_lifetime: float = 0.0
    state: RegistrationState = RegistrationState.IDLE
    sent: float | None = None  # monotonic time the current BU was (first) sent
    granted_lifetime: float | None = None
    accepted: float | None = None  # the sent time of the BU that the last accepted BA acknowledged
    transmissions: int = 0
    retransmit_timeout: float = 0.0
    last_status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The BUs of the current series, sequence number -> time sent: every transmission since what
    #: the BU asks for (care-of address, lifetime) last changed. RFC 6275 11.7.3 accepts a BA whose
    #: Sequence Number matches "an outstanding Binding Update", not only the newest: on a slow link
    #: the BA of one transmission can arrive after the next was sent (a BU retransmitted after
    #: InitialBindackTimeoutFirstReg while the home agent's DAD ran), and ignoring it delays the
    #: registration by a whole retransmission interval, or several.
    series: dict[int, float] = field(default_factory=dict)
    series_content: tuple[Any, ...] | None = None

    def record_sent(self, seq: int, now: float, content: tuple[Any, ...]) -> None:
        """A BU left with ``seq`` asking for ``content``; a new content starts a new series."""
        if content != self.series_content:
            self.series = {}
            self.series_content = content
        self.series[seq] = now
        self.seq = seq
        self.sent = now

    def outstanding_sent(self, seq: int) -> float | None:
        """When the outstanding BU with ``seq`` was sent, or None if no BU of the series has it."""
        return self.series.get(seq)

    def acknowledged(self) -> None:
        """A BA matched: no BU of the series is outstanding any more."""
        self.series = {}
        self.series_content = None

    @property
    def expires(self) -> float | None:
        if self.accepted is None or self.granted_lifetime is None:
            return None
        return self.accepted + self.granted_lifetime

    def remaining(self, now: float) -> float | None:
        expires = self.expires
        return None if expires is None else max(0.0, expires - now)

    def to_dict(self, now: float) -> dict[str, Any]:
        remaining = self.remaining(now)
        return {
            "peer": str(self.peer),
            "home_address": str(self.home_address),
            "careof_address": str(self.careof_address),
            "home_registration": self.home_registration,
            "state": self.state.value,
            "seq": self.seq,
            "requested_lifetime": self.requested_lifetime,
            "granted_lifetime": self.granted_lifetime,
            "remaining": None if remaining is None else round(remaining, 3),
            "transmissions": self.transmissions,
            "retransmit_timeout": self.retransmit_timeout,
            "last_status": self.last_status,
            **self.extra,
        }
