"""From the signalling seen in one handover window to milestones and phases.

Milestones (Table 1 of the paper), each the first matching packet after the
milestone before it that is present:

1. ``ra``       Router Advertisement with a prefix other than the one left
2. ``bu_ha``    Binding Update MN -> HA (H flag)
3. ``ba_ha``    Binding Acknowledgement HA -> MN accepting one of those BUs (status < 128)
4. ``coti``     Care-of Test Init MN -> CN                (route optimisation only)
5. ``cot``      Care-of Test CN -> MN answering a CoTI    (route optimisation only)
6. ``bu_cn``    Binding Update MN -> CN                   (route optimisation only)
7. ``next_tcp`` next transfer data packet CN -> MN after the last signalling milestone present

Each phase is the time since the previous milestone present (the first since
the handover's t0). The total handover time (the paper's definition) is
``next_tcp - t0``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from mvpn_lab.analysis.signals import DataHit, Signal
from mvpn_lab.mip6.wire.constants import BAStatus
from mvpn_lab.vocabulary import Direction, Mip6Mode

MILESTONES = ("ra", "bu_ha", "ba_ha", "coti", "cot", "bu_cn", "next_tcp")
SIGNAL_MILESTONES = MILESTONES[:-1]
RO_ONLY = ("coti", "cot", "bu_cn")
NA = "n/a"
# A Binding Acknowledgement status below 128, the first rejection code, accepts the Binding
# Update (RFC 6275, 6.1.8); the status codes are the daemon's (mvpn_lab.mip6.wire.constants).
BA_ACCEPTED_MAX = int(BAStatus.REASON_UNSPECIFIED) - 1


def required_milestones(mip6: Mip6Mode, direction: Direction) -> tuple[str, ...]:
    """Milestones a complete handover must have.

    Returning home under route optimisation needs no care-of test (RFC 6275,
    5.2.5: the MN deregisters with the home keygen token only), so CoTI/CoT are
    used there when present but not required.
    """
    base = ("ra", "bu_ha", "ba_ha")
    if mip6 != "ro":
        return (*base, "next_tcp")
    if direction == "home":
        return (*base, "bu_cn", "next_tcp")
    return (*base, "coti", "cot", "bu_cn", "next_tcp")


@dataclass
class MilestoneResult:
    times: dict[str, float | None]  # absolute (MN clock); None: not found
    packets: dict[str, Signal | DataHit | None]
    phases: dict[str, float | str | None]  # seconds, "n/a" or None (missing)
    total_s: float | None
    data_resumed_s: float | None
    data_resumed: DataHit | None
    bu_retransmissions: int
    ba_statuses: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _first(signals: Iterable[Signal], kind: str, after: int) -> Signal | None:
    for sig in signals:
        if sig.kind == kind and sig.index > after:
            return sig
    return None


def _in_prefixes(address: str | None, prefixes: Iterable[str]) -> bool:
    if address is None:
        return False
    addr = ipaddress.IPv6Address(address)
    return any(addr in ipaddress.IPv6Network(p, strict=False) for p in prefixes)


def find_milestones(
    signals: list[Signal], t0: float, start: Signal, mip6: Mip6Mode, direction: Direction
) -> MilestoneResult:
    """Pick the milestones out of a window's signalling (``signals`` in capture order).

    ``start`` is the window's t0 marker: its ``next_data`` is the first transfer
    data packet after t0.
    """
    ro = mip6 == "ro"
    packets: dict[str, Signal | DataHit | None] = dict.fromkeys(MILESTONES)
    notes: list[str] = []
    reasons: list[str] = []
    prev = start.index  # capture index after which the next milestone is looked for

    ra = next((s for s in signals if s.kind == "ra" and s.new_prefix and s.index > prev), None)
    # With RA caching (the MN's prefix cache) the Binding Update leaves at link-up, before the
    # RA of the new link: when a BU from a source in a prefix that RA then advertises comes
    # before it, the handover has no ra milestone and that BU is timed from t0 (BUs from other
    # sources before it, e.g. from the old care-of address, are not the milestone).
    early_bu = None
    if ra is not None:
        early_bu = next(
            (
                s
                for s in signals
                if s.kind == "bu_ha" and prev < s.index < ra.index and _in_prefixes(s.source, ra.prefixes)
            ),
            None,
        )
    ra_skipped = early_bu is not None
    if ra_skipped:
        ra = None
        notes.append("BU to the HA before any RA of the new link (prefix cache): no ra phase")
    if ra is not None:
        packets["ra"] = ra
        prev = ra.index
        stale = sum(1 for s in signals if s.kind == "ra" and not s.new_prefix and s.index < ra.index)
        if stale:
            notes.append(f"{stale} RA(s) with the old prefix before the new one")

    bu = early_bu if early_bu is not None else _first(signals, "bu_ha", prev)
    if bu is not None:
        packets["bu_ha"] = bu
        early = [s for s in signals if s.kind == "bu_ha" and ra is not None and s.index < ra.index]
        if early:
            notes.append(f"{len(early)} BU(s) to the HA before the RA")
        prev = bu.index
    retransmissions = 0
    ba_statuses: list[int] = []
    if bu is not None:
        sent: set[int | None] = set()
        accepted: Signal | None = None
        for s in signals:
            if s.index < bu.index:
                continue
            if s.kind == "bu_ha":
                sent.add(s.seq)
            elif s.kind == "ba_ha" and s.index > bu.index:
                if s.status is not None and s.status > BA_ACCEPTED_MAX:
                    ba_statuses.append(s.status)
                    continue
                if s.seq in sent:
                    accepted = s
                    if s.status:
                        ba_statuses.append(s.status)
                    break
        # Every BU to the HA after the milestone and before the accepted BA, whatever its sequence
        # number: the daemon sends a fresh one on each retransmission (RFC 6275 11.8 allows it).
        until = accepted.index if accepted is not None else None
        retransmissions = sum(
            1
            for s in signals
            if s.kind == "bu_ha" and s.index > bu.index and (until is None or s.index < until)
        )
        if accepted is not None:
            packets["ba_ha"] = accepted
            prev = accepted.index
        if ba_statuses:
            rejected = [st for st in ba_statuses if st > BA_ACCEPTED_MAX]
            if rejected and accepted is None:
                reasons.append(f"ba-status-{rejected[-1]}")
            if rejected and accepted is not None:
                notes.append(f"BA status {', '.join(map(str, rejected))} before an accepted BA")
            info = [st for st in ba_statuses if st <= BA_ACCEPTED_MAX]
            if info:
                notes.append(f"BA accepted with status {info[0]}")
        if retransmissions:
            notes.append(f"{retransmissions} BU retransmission(s) to the HA")

    if ro:
        coti = _first(signals, "coti", prev)
        if coti is not None:
            packets["coti"] = coti
            prev = coti.index
        cookies = {s.cookie for s in signals if s.kind == "coti" and s.index > start.index}
        cot = next(
            (
                s
                for s in signals
                if s.kind == "cot" and s.index > prev and (not cookies or s.cookie in cookies)
            ),
            None,
        )
        if cot is not None:
            packets["cot"] = cot
            prev = cot.index
        bu_cn = _first(signals, "bu_cn", prev)
        if bu_cn is None and bu is not None:
            # going home the MN needs only the HoT for the CN: its BU to the CN can leave before
            # the HA's BA arrives (a race seen on the twin); it counts, with a phase of 0 s
            bu_cn = _first(signals, "bu_cn", bu.index)
            if bu_cn is not None:
                notes.append("BU to the CN before the HA's BA: its phase counts 0 s")
        if bu_cn is not None:
            packets["bu_cn"] = bu_cn
            prev = max(prev, bu_cn.index)

    last: Signal = start
    for name in SIGNAL_MILESTONES:
        found = packets[name]
        if isinstance(found, Signal) and found.index >= last.index:
            last = found
    next_tcp = last.next_data
    packets["next_tcp"] = next_tcp

    times: dict[str, float | None] = {
        name: (hit.ts if hit is not None else None) for name, hit in packets.items()
    }
    phases: dict[str, float | str | None] = {}
    previous = t0
    for name in MILESTONES:
        if (not ro and name in RO_ONLY) or (name == "ra" and ra_skipped):
            phases[name] = NA
            continue
        value = times[name]
        if value is None:
            phases[name] = None
            continue
        if value < previous:  # a milestone before the one ahead of it (the BU to the CN above)
            phases[name] = 0.0
            continue
        phases[name] = value - previous
        previous = value
    total = (times["next_tcp"] - t0) if times["next_tcp"] is not None else None
    resumed = start.next_data
    for name in required_milestones(mip6, direction):
        if name == "ra" and ra_skipped:
            continue
        if times[name] is None and not (name == "ba_ha" and any(r.startswith("ba-status") for r in reasons)):
            reasons.append(f"missing-{name}")
    return MilestoneResult(
        times=times,
        packets=packets,
        phases=phases,
        total_s=total,
        data_resumed_s=(resumed.ts - t0) if resumed is not None else None,
        data_resumed=resumed,
        bu_retransmissions=retransmissions,
        ba_statuses=ba_statuses,
        reasons=reasons,
        notes=notes,
    )
