"""One streaming pass over the MN capture: signalling and data per handover window.

Each handover ``i`` owns the window ``[t0_i, t0_{i+1})``. The pass keeps, per
window, the signalling packets (Router Advertisements and Mobility Headers:
a few dozen per handover) and, for each of them, the first transfer data packet
that follows it. Data packets are only classified while something waits for
one, so the common case costs a few byte comparisons per record:

* plain TCP / ESP: skipped unless a signal waits for data (or clock-offset
  samples are being collected);
* ICMPv6: only type 134 is parsed;
* extension-header chains (type 2 routing header, Home Address option,
  IPv6-in-IPv6): walked by reading two bytes per header, fully parsed only if
  they end in a Mobility Header or a packet someone waits for.

It also collects a bounded sample of packet identities (TCP/ESP/Mobility
Header) exchanged with the CN, for estimating the MN-CN clock offset.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from mvpn_lab.analysis.diagnostics import Problems
from mvpn_lab.analysis.esp import EspError, EspKey, decrypt
from mvpn_lab.analysis.packets import (
    EXT_HEADERS,
    EXT_HEADERS_8N,
    ICMPV6_RA,
    MH_BA,
    MH_BE,
    MH_BRR,
    MH_BU,
    MH_COT,
    MH_COTI,
    MH_HOT,
    MH_HOTI,
    MH_PROTOS,
    NH_AH,
    NH_ESP,
    NH_FRAGMENT,
    NH_ICMPV6,
    NH_IPV6,
    NH_TCP,
    Chain,
    TcpHistory,
    Unreadable,
    parse_chain,
    parse_mh,
    parse_ra_prefixes,
    tcp_payload_len,
    transport_key,
)
from mvpn_lab.analysis.pcapstream import Packet
from mvpn_lab.analysis.rundir import Addresses, Configuration, HandoverEvent
from mvpn_lab.analysis.signals import DataHit, Signal

# Signalling packets kept per window before giving up on it (a storm, not a handover).
MAX_SIGNALS = 20000
# Packet identities sampled for the clock offset, from the start and after each t0.
SAMPLE_BUDGET = 2000

# Direction of a sampled packet: CN -> MN is "forward", MN -> CN "reverse".
FWD = 1
REV = -1
_SAMPLE_DIRECTION = {"coti": REV, "hoti": REV, "bu_cn": REV, "cot": FWD, "hot": FWD, "ba_cn": FWD}


@dataclass(eq=False)
class Window:
    """One handover's slice of the MN capture."""

    event: HandoverEvent
    end: float  # next handover's t0, or +inf
    left_prefix: ipaddress.IPv6Network | None
    new_prefix: ipaddress.IPv6Network | None
    marker: Signal = field(init=False)
    signals: list[Signal] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # reason slugs found inside the window
    first_index: int | None = None
    overflow: bool = False
    # (mask, network) of the prefix data arrive in over the new path; None: any path counts
    _new_path: tuple[int, int, bool] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.marker = Signal("t0", self.event.t0, 0)
        net = self.new_prefix if self.new_prefix is not None else self.left_prefix
        if net is not None:
            mask = int(net.netmask)
            self._new_path = (mask, int(net.network_address) & mask, self.new_prefix is not None)

    def over_new_path(self, outer_dst: bytes) -> bool:
        """Whether a packet to ``outer_dst`` (its outermost destination) came over the path the
        MN moved to: to an address in the new prefix (away: the new care-of address, tunnelled or
        route-optimised; home: the home address), not e.g. tunnelled to the old care-of address."""
        if self._new_path is None:
            return True
        mask, network, inside = self._new_path
        return ((int.from_bytes(outer_dst, "big") & mask) == network) == inside

    @property
    def t0(self) -> float:
        return self.event.t0


@dataclass(slots=True)
class Sample:
    mn_ts: float
    direction: int
    mn_count: int = 1
    resent: bool = False  # a TCP segment the MN capture saw as a retransmission (see TcpHistory)


def make_windows(handovers: list[HandoverEvent], addresses: Addresses) -> list[Window]:
    windows = []
    for i, event in enumerate(handovers):
        end = handovers[i + 1].t0 if i + 1 < len(handovers) else float("inf")
        if event.direction == "home":
            left, new = addresses.foreign_prefix, addresses.home_prefix
        else:
            left, new = addresses.home_prefix, addresses.foreign_prefix
        windows.append(Window(event, end, left, new))
    return windows


class MobileNodePass:
    """Finds the signalling and the data resumption of each handover in the MN capture."""

    def __init__(
        self,
        config: Configuration,
        addresses: Addresses,
        windows: list[Window],
        problems: Problems,
        keys: dict[int, EspKey] | None = None,
        sample_budget: int = SAMPLE_BUDGET,
    ) -> None:
        self.config = config
        self.ha = addresses.home_agent
        self.cn = addresses.correspondent
        self.windows = windows
        self.problems = problems
        self.keys = keys or {}
        self.spis = config.esp_spis
        # ESP-protected signalling (RFC 3776): the SA tells the message (BU to, BA from the HA).
        self.signal_spis: dict[bytes, str] = {
            spi.to_bytes(4, "big"): kind
            for spi, kind in ((config.bu_spi, "bu_ha"), (config.ba_spi, "ba_ha"))
            if spi is not None
        }
        self.sample_budget = sample_budget
        self.samples: dict[bytes, Sample] = {}
        # TCP to/from the CN, as far as parsed (while sampling or waiting for data).
        self.history = TcpHistory()
        self.pending: list[Signal] = []
        self.cur: Window | None = None
        self.packets = 0
        self.last_ts: float | None = None
        self.decrypted = 0
        self.esp_failures: dict[int, str] = {}
        self._t0s = [w.t0 for w in windows]

    # -- the hot loop --------------------------------------------------------------------------
    def run(self, packets: Iterable[Packet]) -> None:
        windows = self.windows
        nwin = len(windows)
        inf = float("inf")
        wi = -1
        next_t0 = windows[0].t0 if windows else inf
        pending = self.pending
        budget = self.sample_budget
        sample_left = budget
        slow = self._slow
        sig_spis = self.signal_spis
        ext = EXT_HEADERS
        ext8 = EXT_HEADERS_8N
        tunnel, fragment, ah = NH_IPV6, NH_FRAGMENT, NH_AH
        mh = MH_PROTOS
        idx = 0
        ts = None
        for ts, buf, l3, end, missing, _frame in packets:
            idx += 1
            if ts >= next_t0:
                while ts >= next_t0:
                    wi += 1
                    next_t0 = windows[wi + 1].t0 if wi + 1 < nwin else inf
                cur = windows[wi]
                cur.first_index = idx
                self.cur = cur
                pending.clear()
                cur.marker.index = idx - 1
                pending.append(cur.marker)
                sample_left = budget
            nh = buf[l3 + 6]
            if nh == 6 or nh == 50:
                if (
                    pending
                    or sample_left > 0
                    or (sig_spis and nh == 50 and buf[l3 + 40 : l3 + 44] in sig_spis)
                ):
                    sample_left -= slow(ts, idx, buf, l3, end, missing, sample_left > 0)
                continue
            if nh == 58:
                if l3 + 40 < end and buf[l3 + 40] == 134:
                    slow(ts, idx, buf, l3, end, missing, False)
                continue
            if nh in mh:
                slow(ts, idx, buf, l3, end, missing, sample_left > 0)
                continue
            if nh in ext:
                p = l3 + 40
                # The fast skip over the shared walk's tables (mvpn_lab.mip6.wire.ipv6): two bytes
                # read per header; parse_chain (walk_chain) does the checking, if it comes to it.
                while True:
                    if nh in ext8:
                        if p + 2 > end:
                            break
                        nh, p = buf[p], p + (buf[p + 1] + 1) * 8
                    elif nh == tunnel:
                        if p + 40 > end:
                            break
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
                if nh in ext or p > end:
                    # The chain could not be walked within the captured bytes: find out why.
                    slow(ts, idx, buf, l3, end, missing, False)
                elif nh == 6 or nh == 50:
                    if pending or sample_left > 0 or (nh == 50 and sig_spis and buf[p : p + 4] in sig_spis):
                        sample_left -= slow(ts, idx, buf, l3, end, missing, sample_left > 0)
                elif nh in mh or (nh == 58 and p < end and buf[p] == 134):
                    slow(ts, idx, buf, l3, end, missing, sample_left > 0)
        self.packets = idx
        self.last_ts = ts
        self.pending.clear()

    # -- the slow path: full parsing of candidate packets ------------------------------------
    def _slow(self, ts: float, idx: int, buf: bytes, l3: int, end: int, missing: int, sampling: bool) -> int:
        try:
            chain = parse_chain(buf, l3, end)
            nh = chain.nh
            if nh in MH_PROTOS:
                self._mobility(ts, idx, buf, chain, end, sampling)
            elif nh == NH_ICMPV6:
                if chain.p < end and buf[chain.p] == ICMPV6_RA:
                    self._router_advertisement(ts, idx, buf, chain, end)
            elif nh in (NH_TCP, NH_ESP):
                return self._transport(ts, idx, buf, chain, end, sampling)
        except Unreadable as exc:
            self._problem(exc, ts, idx, missing)
        return 0

    def _problem(self, exc: Unreadable, ts: float, idx: int, missing: int) -> None:
        reason, message = exc.kind, exc.message
        if reason == "snaplen" and missing <= 0:
            reason = "malformed"
            message = f"{message} (but the frame was captured whole: its IPv6 length fields are wrong)"
        self.problems.add(reason, f"packet #{idx} at {ts:.6f}: {message}", ts)
        cur = self.cur
        if cur is not None and cur.t0 <= ts < cur.end and reason not in cur.problems:
            cur.problems.append(reason)

    def _window_for(self, ts: float) -> Window | None:
        """The window a record's time falls in: the current one, unless the capture's times went
        backwards (records out of time order, see reorder())."""
        cur = self.cur
        if cur is None or cur.t0 <= ts < cur.end:
            return cur
        i = bisect.bisect_right(self._t0s, ts) - 1
        return self.windows[i] if i >= 0 else None

    def _add_signal(self, sig: Signal) -> None:
        cur = self._window_for(sig.ts)
        if cur is None:
            return
        if len(cur.signals) >= MAX_SIGNALS:
            if not cur.overflow:
                cur.overflow = True
                cur.problems.append("signalling-storm")
                self.problems.add(
                    "signalling-storm",
                    f"more than {MAX_SIGNALS} signalling packets after the handover at {cur.t0:.6f}; "
                    "the rest were ignored",
                    sig.ts,
                )
            return
        cur.signals.append(sig)
        if cur is self.cur:
            self.pending.append(sig)

    def _mobility(self, ts: float, idx: int, buf: bytes, chain: Chain, end: int, sampling: bool) -> None:
        msg = parse_mh(buf, chain.p, chain.ip_end, end)
        src, dst = chain.src, chain.dst
        ha, cn = self.ha, self.cn
        t = msg.mh_type
        if t == MH_BU:
            if msg.home_registration:
                kind = "bu_ha" if ha is None or dst == ha else "bu_other"
            else:
                kind = "bu_cn" if cn is None or dst == cn else "bu_other"
        elif t == MH_BA:
            if cn is not None and src == cn:
                kind = "ba_cn"
            elif ha is None or src == ha:
                kind = "ba_ha"
            else:
                kind = "ba_other"
        elif t == MH_COTI:
            kind = "coti" if cn is None or dst == cn else "coti_other"
        elif t == MH_COT:
            kind = "cot" if cn is None or src == cn else "cot_other"
        elif t == MH_HOTI:
            kind = "hoti"
        elif t == MH_HOT:
            kind = "hot"
        elif t == MH_BRR:
            kind = "brr"
        elif t == MH_BE:
            kind = "be"
        else:  # pragma: no cover - parse_mh rejects unknown types
            return
        key = transport_key(chain.nh, buf, chain.p, chain.ip_end, end)
        sig = Signal(
            kind,
            ts,
            idx,
            seq=msg.seq,
            status=msg.status,
            lifetime=msg.lifetime,
            flags=msg.flags,
            cookie=msg.cookie,
            key=key,
            source=str(ipaddress.IPv6Address(src)) if kind == "bu_ha" else None,
        )
        self._add_signal(sig)
        direction = _SAMPLE_DIRECTION.get(kind)
        if key is not None and direction is not None:
            self._sample(key, ts, direction)

    def _router_advertisement(self, ts: float, idx: int, buf: bytes, chain: Chain, end: int) -> None:
        prefixes = parse_ra_prefixes(buf, chain.p, chain.ip_end, end)
        cur = self._window_for(ts)
        if cur is None:
            return
        nets = [
            ipaddress.IPv6Network((ipaddress.IPv6Address(raw), min(plen, 128)), strict=False)
            for raw, plen in prefixes
        ]
        if cur.left_prefix is not None:
            new = any(not net.overlaps(cur.left_prefix) for net in nets)
        elif cur.new_prefix is not None:
            new = any(net.overlaps(cur.new_prefix) for net in nets)
        else:
            new = bool(nets)
        self._add_signal(Signal("ra", ts, idx, new_prefix=new, prefixes=tuple(str(n) for n in nets)))

    def _sample(self, key: bytes, ts: float, direction: int, resent: bool = False) -> None:
        known = self.samples.get(key)
        if known is None:
            self.samples[key] = Sample(ts, direction, resent=resent)
        else:
            known.mn_count += 1

    def _transport(self, ts: float, idx: int, buf: bytes, chain: Chain, end: int, sampling: bool) -> int:
        if chain.nh == NH_ESP and self.signal_spis and chain.p + 4 <= end:
            kind = self.signal_spis.get(bytes(buf[chain.p : chain.p + 4]))
            if kind is not None:
                source = str(ipaddress.IPv6Address(chain.src)) if kind == "bu_ha" else None
                self._add_signal(Signal(kind, ts, idx, source=source))
                return 0
        cn = self.cn
        from_cn = cn is None or chain.src == cn
        taken = 0
        if cn is not None and (chain.src == cn or chain.dst == cn):
            resent = chain.nh == NH_TCP and self.history.resent(buf, chain.p, chain.ip_end, end)
            if sampling:
                key = transport_key(chain.nh, buf, chain.p, chain.ip_end, end)
                if key is not None:
                    self._sample(key, ts, FWD if chain.src == cn else REV, resent)
                    taken = 1
        if not self.pending or not from_cn:
            return taken
        hit = self._data_hit(ts, idx, buf, chain, end)
        if hit is None:
            return taken
        pending = self.pending
        marker = pending[0]
        # Data resumes over the new path only: the t0 marker (data_resumed_s) waits on while
        # packets still arrive over the path left; the signalling milestones take any data.
        waiting = (
            marker.kind == "t0" and (cur := self.cur) is not None and not cur.over_new_path(chain.outer_dst)
        )
        for sig in pending:
            sig.next_data = hit
        pending.clear()
        if waiting:
            marker.next_data = None
            pending.append(marker)
        return taken

    def _data_hit(self, ts: float, idx: int, buf: bytes, chain: Chain, end: int) -> DataHit | None:
        """The transfer data packet this TCP/ESP packet from the CN is, or None (no payload, another
        SPI, decrypted and found without TCP payload)."""
        confirmed = False
        if chain.nh == NH_TCP:
            if tcp_payload_len(buf, chain.p, chain.ip_end, end) <= 0:
                return None
        else:
            if chain.p + 8 > end:
                raise Unreadable("snaplen", "ESP header cut short by the snapshot length")
            spi = int.from_bytes(buf[chain.p : chain.p + 4], "big")
            if self.spis is not None and spi not in self.spis:
                return None
            key_material = self.keys.get(spi)
            if key_material is not None:
                verdict = self._decrypted_has_payload(key_material, buf, chain, end, ts, idx)
                if verdict is False:
                    return None
                confirmed = verdict is True
        path = "tunnel" if chain.tunnels else ("ro" if chain.rh2 is not None else "direct")
        return DataHit(ts, idx, transport_key(chain.nh, buf, chain.p, chain.ip_end, end), path, confirmed)

    # -- records out of time order ------------------------------------------------------------
    def reorder(self, packets: Iterable[Packet]) -> None:
        """Put each window in time order after a pass over a capture whose times went backwards.

        The pass gave every signal to the window its time falls in; here each window's signals
        are sorted by time (their ``index`` renumbered in that order, the t0 marker first), and a
        second pass over the capture (``packets``) finds, for the marker and each signal, the
        first transfer data packet after it in time: over the new path for the marker
        (data_resumed_s), by any path for the signals. Only data packets that could be someone's
        first are parsed.
        """
        windows = self.windows
        if not windows:
            return
        t0s = self._t0s
        times: list[list[float]] = []
        any_best: list[list[DataHit | None]] = []
        new_best: list[list[DataHit | None]] = []
        for window in windows:
            window.signals.sort(key=lambda sig: (sig.ts, sig.index))
            window.marker.index = 0
            window.marker.next_data = None
            for k, sig in enumerate(window.signals, start=1):
                sig.index = k
                sig.next_data = None
            times.append([sig.ts for sig in window.signals])
            # slot j: data after the marker and the first j signals (in time), before the next
            any_best.append([None] * (len(window.signals) + 1))
            new_best.append([None] * (len(window.signals) + 1))
        cn = self.cn
        wanted = {NH_TCP, NH_ESP, *EXT_HEADERS}
        idx = 0
        for ts, buf, l3, end, _missing, _frame in packets:
            idx += 1  # numbered as in the first pass
            if buf[l3 + 6] not in wanted or ts < t0s[0]:
                continue
            w = bisect.bisect_right(t0s, ts) - 1
            j = bisect.bisect_right(times[w], ts)
            best_any, best_new = any_best[w][j], new_best[w][j]
            if best_any is not None and best_any.ts <= ts and best_new is not None and best_new.ts <= ts:
                continue
            try:
                chain = parse_chain(buf, l3, end)
                if chain.nh not in (NH_TCP, NH_ESP) or (cn is not None and chain.src != cn):
                    continue
                if chain.nh == NH_ESP and buf[chain.p : chain.p + 4] in self.signal_spis:
                    continue
                hit = self._data_hit(ts, idx, buf, chain, end)
            except Unreadable:
                continue  # said in the first pass
            if hit is None:
                continue
            if best_any is None or hit.ts < best_any.ts:
                any_best[w][j] = hit
            if windows[w].over_new_path(chain.outer_dst) and (best_new is None or hit.ts < best_new.ts):
                new_best[w][j] = hit
        for w, window in enumerate(windows):
            first_any: DataHit | None = None
            first_new: DataHit | None = None
            for j in range(len(window.signals), -1, -1):
                hit = any_best[w][j]
                if hit is not None and (first_any is None or hit.ts <= first_any.ts):
                    first_any = hit
                hit = new_best[w][j]
                if hit is not None and (first_new is None or hit.ts <= first_new.ts):
                    first_new = hit
                if j > 0:
                    window.signals[j - 1].next_data = first_any
            window.marker.next_data = first_new

    def _decrypted_has_payload(
        self, key: EspKey, buf: bytes, chain: Chain, end: int, ts: float, idx: int
    ) -> bool | None:
        """True/False: decrypted and found TCP payload or not; None: could not decrypt."""
        if chain.ip_end > end:
            self.problems.add(
                "esp-cut",
                f"packet #{idx} at {ts:.6f}: ESP packet cut short by the snapshot length, "
                "not decrypted (counted by its SPI)",
                ts,
            )
            return None
        try:
            next_header, payload = decrypt(key, bytes(buf[chain.p : chain.ip_end]))
        except EspError as exc:
            if key.spi not in self.esp_failures:
                self.esp_failures[key.spi] = str(exc)
                self.problems.add(
                    f"esp-decrypt-{key.spi:x}",
                    f"ESP SPI 0x{key.spi:08x} could not be decrypted ({exc}); "
                    "its packets are counted by SPI only",
                    ts,
                )
            return None
        self.decrypted += 1
        try:
            if next_header == NH_TCP:
                return tcp_payload_len(payload, 0, len(payload), len(payload)) > 0
            if next_header == NH_IPV6:
                inner = parse_chain(payload, 0, len(payload))
                if inner.nh == NH_TCP:
                    return tcp_payload_len(payload, inner.p, inner.ip_end, len(payload)) > 0
        except Unreadable:
            return False
        return False
