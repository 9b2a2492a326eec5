"""The CN capture: cross-checks and the MN-CN clock offset.

The CN capture is read once. Packets are recognised by identities that do not
change on the way (TCP ports/sequence/ack/flags/length, ESP SPI and sequence,
the Mobility Header message bytes); only identities the MN pass asked for are
kept, so memory stays bounded.

Clock offset: ``offset = MN clock - CN clock``. For packets CN -> MN,
``mn - cn = offset + forward delay``; for packets MN -> CN,
``cn - mn = -offset + reverse delay``. With the smallest value of each,

    offset ~= (min(mn - cn) - min(cn - mn)) / 2,   uncertainty <= (min(mn - cn) + min(cn - mn)) / 2

(the NTP estimate; exact when the smallest one-way delays are equal). Any
forward sample plus any reverse sample is a round trip, so the uncertainty can
only come out negative if a "packet seen in both captures" was in fact two
transmissions of the same bytes: a capture on a host using TSO/GSO shows a large
segment where the wire (and the other capture) has MSS-sized ones, so a
retransmitted piece is the sender capture's only copy under that key, matched
with the receiver's copy of the original. TCP retransmissions seen in either
capture are therefore left out, and pairs that still give a negative round trip
are dropped (as few as possible) and counted. CN times are only ever shown
converted with this offset, and labelled so.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from mvpn_lab.analysis.diagnostics import Problems
from mvpn_lab.analysis.milestones import FWD, Sample
from mvpn_lab.analysis.packets import (
    EXT_HEADERS,
    EXT_HEADERS_8N,
    MH_PROTOS,
    NH_AH,
    NH_FRAGMENT,
    NH_IPV6,
    TcpHistory,
    Unreadable,
    parse_chain,
    parse_mh,
    transport_key,
)
from mvpn_lab.analysis.pcapstream import Packet

MAX_TIMES_PER_KEY = 8
MAX_MH_EVENTS = 10000
_LEN = struct.Struct("!H").pack


@dataclass
class ClockOffset:
    """MN clock minus CN clock, as estimated from packets seen in both captures."""

    offset_s: float | None
    uncertainty_s: float | None
    method: str  # "two-way", "forward-only", "reverse-only", "inconsistent" or "none"
    forward_samples: int = 0  # samples the estimate used, per direction
    reverse_samples: int = 0
    resent_samples: int = 0  # left out: TCP retransmissions in either capture
    inconsistent_samples: int = 0  # left out: gave an impossible (negative) round trip

    def to_mn(self, cn_ts: float) -> float | None:
        """A CN capture time in the MN clock (None if the offset is unknown)."""
        if self.offset_s is None:
            return None
        return cn_ts + self.offset_s

    def as_dict(self) -> dict[str, object]:
        return {
            "offset_s": self.offset_s,
            "uncertainty_s": self.uncertainty_s,
            "method": self.method,
            "forward_samples": self.forward_samples,
            "reverse_samples": self.reverse_samples,
            "resent_samples": self.resent_samples,
            "inconsistent_samples": self.inconsistent_samples,
        }


@dataclass
class MobilityEventCN:
    ts: float  # CN clock
    mh_type: int
    seq: int | None
    status: int | None


@dataclass
class CorrespondentPass:
    """Looks up, in the CN capture, the packets the MN pass recorded."""

    wanted: Iterable[bytes]
    problems: Problems
    times: dict[bytes, list[float]] = field(init=False)
    mobility: list[MobilityEventCN] = field(default_factory=list)
    packets: int = 0
    last_ts: float | None = None
    # Wanted TCP keys the CN capture saw as a retransmission (see TcpHistory).
    resent: set[bytes] = field(default_factory=set)
    history: TcpHistory = field(default_factory=TcpHistory, repr=False)

    def __post_init__(self) -> None:
        self.times = {key: [] for key in self.wanted}

    def run(self, packets: Iterable[Packet]) -> None:
        times = self.times
        get = times.get
        ext = EXT_HEADERS
        ext8 = EXT_HEADERS_8N
        tunnel, fragment, ah = NH_IPV6, NH_FRAGMENT, NH_AH
        mh = MH_PROTOS
        pack_len = _LEN
        cap = MAX_TIMES_PER_KEY
        seen_before = self.history.resent
        resent = self.resent
        idx = 0
        ts = None
        for ts, buf, l3, end, missing, _frame in packets:
            idx += 1
            nh = buf[l3 + 6]
            p = l3 + 40
            ip = l3
            if nh in ext:
                # The fast skip over the shared walk's tables, as in MobileNodePass.run.
                while True:
                    if nh in ext8:
                        if p + 2 > end:
                            break
                        nh, p = buf[p], p + (buf[p + 1] + 1) * 8
                    elif nh == tunnel:
                        if p + 40 > end:
                            break
                        ip = p
                        nh = buf[p + 6]
                        p += 40
                    elif nh == fragment:
                        if p + 8 > end:
                            break
                        nh, p = buf[p], p + 8
                    elif nh == ah:
                        if p + 2 > end:
                            break
                        nh, p = buf[p], p + (buf[p + 1] + 2) * 4
                    else:
                        break
            if nh == 6:
                if p + 14 > end:
                    continue
                ip_end = ip + 40 + ((buf[ip + 4] << 8) | buf[ip + 5])
                key = buf[p : p + 14] + pack_len((ip_end - p) & 0xFFFF)
                # Only segments with data (or SYN/FIN) can be resent: pure ACKs skip the call.
                if (
                    (ip_end - p > (buf[p + 12] >> 4) * 4 or buf[p + 13] & 3)
                    and seen_before(buf, p, ip_end, end)
                    and key in times
                ):
                    resent.add(key)
            elif nh == 50:
                if p + 8 > end:
                    continue
                key = buf[p : p + 8]
            elif nh in mh:
                mh_key = self._mobility(ts, idx, buf, l3, end, missing)
                if mh_key is None:
                    continue
                key = mh_key
            else:
                continue
            found = get(key)
            if found is not None and len(found) < cap:
                found.append(ts)
        self.packets = idx
        self.last_ts = ts

    def _mobility(self, ts: float, idx: int, buf: bytes, l3: int, end: int, missing: int) -> bytes | None:
        try:
            chain = parse_chain(buf, l3, end)
            msg = parse_mh(buf, chain.p, chain.ip_end, end)
        except Unreadable as exc:
            reason = exc.kind if not (exc.kind == "snaplen" and missing <= 0) else "malformed"
            self.problems.add(reason, f"packet #{idx} at {ts:.6f}: {exc.message}", ts)
            return None
        if len(self.mobility) < MAX_MH_EVENTS:
            self.mobility.append(MobilityEventCN(ts, msg.mh_type, msg.seq, msg.status))
        return transport_key(chain.nh, buf, chain.p, chain.ip_end, end)


def estimate_offset(
    samples: dict[bytes, Sample], times: dict[bytes, list[float]], resent: Collection[bytes] = ()
) -> ClockOffset:
    """Estimate MN clock - CN clock from packets seen once in each capture.

    ``resent``: keys the CN capture saw as TCP retransmissions; like the ones the
    MN capture saw so (``Sample.resent``), they may pair two different
    transmissions and are left out. Pairs that still contradict each other (a
    forward and a reverse sample whose round trip would be negative) are
    dropped, as few as possible, and counted in ``inconsistent_samples``.
    """
    forward: list[float] = []
    reverse: list[float] = []
    retransmitted = 0
    for key, sample in samples.items():
        if sample.mn_count != 1:
            continue
        seen = times.get(key)
        if not seen or len(seen) != 1:
            continue
        if sample.resent or key in resent:
            retransmitted += 1
            continue
        if sample.direction == FWD:
            forward.append(sample.mn_ts - seen[0])
        else:
            reverse.append(seen[0] - sample.mn_ts)
    if forward and reverse:
        forward.sort()
        reverse.sort()
        cut = _consistent_cut(forward, reverse)
        if cut is None:
            return ClockOffset(None, None, "inconsistent", 0, 0, retransmitted, len(forward) + len(reverse))
        k, j = cut
        d1, d2 = forward[k], reverse[j]
        return ClockOffset(
            (d1 - d2) / 2, (d1 + d2) / 2, "two-way", len(forward) - k, len(reverse) - j, retransmitted, k + j
        )
    if forward:  # offset <= min(mn - cn): assume the smallest delay was ~0
        return ClockOffset(min(forward), None, "forward-only", len(forward), 0, retransmitted)
    if reverse:
        return ClockOffset(-min(reverse), None, "reverse-only", 0, len(reverse), retransmitted)
    return ClockOffset(None, None, "none", resent_samples=retransmitted)


def _consistent_cut(forward: list[float], reverse: list[float]) -> tuple[int, int] | None:
    """The fewest smallest samples ``(k, j)`` to drop so that the smallest ones left agree.

    Both lists sorted. A forward sample is ``offset + forward delay`` and a
    reverse one ``-offset + reverse delay``, so any forward plus any reverse
    sample is a round trip and cannot be negative; if it is, one of the two
    paired different packets. The estimate needs ``forward[k] + reverse[j] >= 0``;
    ties go to the larger round trip (the more cautious uncertainty). None: no
    forward and reverse sample agree at all.
    """
    best: tuple[int, float, int, int] | None = None  # (dropped, -round trip, k, j)
    for k, d1 in enumerate(forward):
        if best is not None and k > best[0]:
            break
        j = bisect_left(reverse, -d1)
        if j == len(reverse):
            continue
        candidate = (k + j, -(d1 + reverse[j]), k, j)
        if best is None or candidate < best:
            best = candidate
    return None if best is None else (best[2], best[3])


def cn_time_for(times: list[float] | None, mn_ts: float, offset: ClockOffset) -> float | None:
    """The CN capture time of the packet the MN saw at ``mn_ts`` (converted to the MN clock).

    A retransmitted TCP segment is seen several times at the CN; the one sent
    last before the MN saw it is taken.
    """
    if not times or offset.offset_s is None:
        return None
    slack = max(offset.uncertainty_s or 0.0, 0.0) + 1e-3
    converted = [t + offset.offset_s for t in times]
    before = [t for t in converted if t <= mn_ts + slack]
    return max(before) if before else min(converted)
