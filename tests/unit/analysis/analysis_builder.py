"""Synthetic MN/CN captures with known handover timings, for the analyser's tests.

Packets are built with scapy (ESP with scapy's own IPsec code, so the
analyser's decryption is checked against an independent implementation). A
``Scenario`` is one repetition: a TCP download from the CN to the MN running
through one or more handovers. Every handover follows a ``Plan`` of phase
durations; the builder returns, per handover, the ground truth the analyser
must find.

Times: everything is planned in the MN's clock. The CN capture's timestamps
are ``MN time - offset`` (``offset`` = MN clock - CN clock), and every packet
takes ``delay`` seconds between the MN and the CN in either direction.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scapy.layers.inet import TCP
from scapy.layers.inet6 import (
    HAO,
    MIP6MH_BA,
    MIP6MH_BU,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptPrefixInfo,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrRouting,
    MIP6MH_CoT,
    MIP6MH_CoTI,
    MIP6MH_HoT,
    MIP6MH_HoTI,
)
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.packet import Packet, Raw

T_BASE = 1_700_000_000.0
HOME_PREFIX = "fec0:106:2700::/64"
FOREIGN_PREFIX = "fec0:106:1100::/64"
HOA = "fec0:106:2700::20c:30ff:febb:f0b6"
COA = "fec0:106:1100::20c:30ff:febb:f0b6"
HA = "fec0:106:2500::1"
CN = "fec0:106:2500::2"
MN_LL = "fe80::20c:30ff:febb:f0b6"
HOME_ROUTER_LL = "fe80::1"
FOREIGN_ROUTER_LL = "fe80::2"
TUNNEL_CN = "fec0:0:0:1000::10"
TUNNEL_MN = "fec0:0:0:2000::20"

SPI_CN_TO_MN = 0x00001001
SPI_MN_TO_CN = 0x00001002
CBC_KEY = bytes(range(16))
CBC_AUTH = bytes(range(100, 120))
GCM_KEY = bytes(range(32, 48)) + b"\x01\x02\x03\x04"  # AES-128 key + salt

MILESTONES = ("ra", "bu_ha", "ba_ha", "coti", "cot", "bu_cn", "next_tcp")


def round_us(t: float) -> float:
    return round(t * 1e6) / 1e6


@dataclass
class Plan:
    """One handover: phase durations in seconds (each from the previous milestone)."""

    direction: str = "away"
    gap: float = 2.0  # time before t0 since the previous handover's end (or the start)
    ra: float = 0.6
    bu_ha: float = 0.02
    ba_ha: float = 0.15
    coti: float = 0.05
    cot: float = 0.12
    bu_cn: float = 0.03
    next_tcp: float = 0.25
    ra_lost: bool = False  # RS, RA with the old prefix, RS again, then the RA
    # BUs to the HA the MN retransmits before the BA comes: as the daemon does (mip6/core/mn.py),
    # each with a fresh sequence number, the timeout doubling from retransmit_every
    bu_retransmissions: int = 0
    retransmit_every: float = 0.5
    # a first BA with this status, then a new BU that is accepted (after 135, as the daemon does,
    # numbered from the BA's sequence number + 1); that BU counts as a retransmission too
    ba_reject: int | None = None
    ba_fail: int | None = None  # only a rejecting BA: the handover never completes
    tunnel_data: bool = True  # RO: one data packet via the HA between the BA and the CoTI
    skip_coti: bool | None = None  # RO: no CoTI/CoT (default: when returning home)
    cn_ack: bool = False  # RO: BU to the CN asks for an acknowledgement
    esp_ack_before_next: bool = False  # an ESP packet without TCP payload from the CN before next_tcp
    lost_at_cn: int = 3  # data packets the CN sends into the outage (lost)
    # data packets that still reach the MN over the path it left, right after t0 (going away:
    # straight to the home address; coming home: tunnelled by the HA to the old care-of address)
    old_path_data: int = 0


@dataclass
class Truth:
    t0: float
    direction: str
    milestones: dict[str, float | None]
    phases: dict[str, float | str | None]
    total: float | None
    data_resumed: float | None
    bu_retransmissions: int
    cn_data_resumed_sent: float | None = None  # MN clock
    ba_statuses: list[int] = field(default_factory=list)
    esp_ack_at: float | None = None


class Scenario:
    """One repetition's MN and CN captures."""

    def __init__(
        self,
        mip6: str = "ro",
        ipsec: str = "none",
        esp: str = "cbc",
        offset: float = 0.0,
        delay: float = 0.004,
        interval: float = 0.1,
        start: float = T_BASE,
        payload: int = 200,
        spis: tuple[int, int] = (SPI_CN_TO_MN, SPI_MN_TO_CN),
        signalling_spis: tuple[int, int] | None = None,
    ) -> None:
        # (BU SPI, BA SPI): the MN-HA signalling goes inside ESP (its Mobility Header unseen)
        self.signalling_spis = signalling_spis
        self.signalling_seq = 0
        self.mip6 = mip6
        self.ipsec = ipsec
        self.offset = offset
        self.delay = delay
        self.interval = interval
        self.t = start
        self.payload = b"D" * payload
        self.mn: list[tuple[float, bytes]] = []
        # arrival times of the CN -> MN data packets at the MN, with the path they took
        # ("home": direct to the home address, "tunnel": via the HA to the CoA, "ro": to the CoA)
        self.mn_data: list[tuple[float, str]] = []
        self.cn: list[tuple[float, bytes]] = []
        self.truths: list[Truth] = []
        self.away = False
        self.seq_tcp = 1000
        self.ack_tcp = 5000
        self.bu_seq = 10
        self.bound_cn = False
        self.events: list[dict[str, Any]] = []
        self.spis = spis
        if ipsec != "none":
            if esp == "gcm":
                algo: dict[str, Any] = {"crypt_algo": "AES-GCM", "crypt_key": GCM_KEY, "auth_algo": "NULL"}
            else:
                algo = {
                    "crypt_algo": "AES-CBC",
                    "crypt_key": CBC_KEY,
                    "auth_algo": "HMAC-SHA1-96",
                    "auth_key": CBC_AUTH,
                }
            tunnel_in = IPv6(src=CN, dst=HOA) if ipsec == "tunnel" else None
            tunnel_out = IPv6(src=HOA, dst=CN) if ipsec == "tunnel" else None
            self.sa_in = SecurityAssociation(ESP, spi=spis[0], tunnel_header=tunnel_in, **algo)
            self.sa_out = SecurityAssociation(ESP, spi=spis[1], tunnel_header=tunnel_out, **algo)
        self.esp = esp

    # -- keys -----------------------------------------------------------------------------------
    def keys_document(self) -> dict[str, Any]:
        """The --keys file content for this scenario's SAs."""
        out = {}
        for spi in self.spis:
            if self.esp == "gcm":
                out[f"0x{spi:08x}"] = {
                    "aead": {"algo": "rfc4106(gcm(aes))", "key": "0x" + GCM_KEY.hex(), "icv_bits": 128}
                }
            else:
                out[f"0x{spi:08x}"] = {
                    "enc": {"algo": "cbc(aes)", "key": "0x" + CBC_KEY.hex()},
                    "auth": {"algo": "hmac(sha1)", "key": "0x" + CBC_AUTH.hex()},
                }
        return out

    # -- packet shapes --------------------------------------------------------------------------
    def _protect(self, segment: Packet, inbound: bool) -> tuple[int, bytes]:
        """(next header, bytes) of the transport part: TCP, or ESP around TCP / IPv6+TCP."""
        if self.ipsec == "none":
            return 6, bytes(segment)
        sa = self.sa_in if inbound else self.sa_out
        if self.ipsec == "tunnel":
            inner = (
                IPv6(src=TUNNEL_CN, dst=TUNNEL_MN) if inbound else IPv6(src=TUNNEL_MN, dst=TUNNEL_CN)
            ) / segment
        else:
            inner = IPv6(src=CN, dst=HOA) / segment if inbound else IPv6(src=HOA, dst=CN) / segment
        encrypted = sa.encrypt(inner)
        return 50, bytes(encrypted[ESP])

    def _down_packets(self, nh: int, body: bytes, path: str) -> tuple[bytes, bytes]:
        """A CN -> MN packet as (seen at the MN, seen at the CN) for the current path."""
        if path == "home":
            pkt = bytes(IPv6(src=CN, dst=HOA, nh=nh) / Raw(body))
            return pkt, pkt
        if path == "ro":
            pkt = bytes(
                IPv6(src=CN, dst=COA)
                / IPv6ExtHdrRouting(nh=nh, type=2, segleft=1, addresses=[HOA])
                / Raw(body)
            )
            return pkt, pkt
        inner = IPv6(src=CN, dst=HOA, nh=nh) / Raw(body)
        return bytes(IPv6(src=HA, dst=COA) / inner), bytes(inner)

    def _up_packets(self, nh: int, body: bytes, path: str) -> tuple[bytes, bytes]:
        """An MN -> CN packet as (seen at the MN, seen at the CN)."""
        if path == "home":
            pkt = bytes(IPv6(src=HOA, dst=CN, nh=nh) / Raw(body))
            return pkt, pkt
        if path == "ro":
            pkt = bytes(IPv6(src=COA, dst=CN) / IPv6ExtHdrDestOpt(nh=nh, options=[HAO(hoa=HOA)]) / Raw(body))
            return pkt, pkt
        inner = IPv6(src=HOA, dst=CN, nh=nh) / Raw(body)
        return bytes(IPv6(src=COA, dst=HA) / inner), bytes(inner)

    def _path(self) -> str:
        if not self.away:
            return "home"
        return "ro" if self.bound_cn else "tunnel"

    # -- traffic ----------------------------------------------------------------------------------
    def _segment(self, seq: int, payload: bytes, flags: str = "PA") -> Packet:
        return TCP(sport=80, dport=40000, seq=seq, ack=self.ack_tcp, flags=flags, window=8192) / payload

    def data(self, t_mn: float, *, retransmit_of: int | None = None, path: str | None = None) -> None:
        """A data packet the MN receives at ``t_mn``, and the MN's ACK right after."""
        path = path or self._path()
        seq = retransmit_of if retransmit_of is not None else self.seq_tcp
        if retransmit_of is None:
            self.seq_tcp += len(self.payload)
        nh, body = self._protect(self._segment(seq, self.payload), inbound=True)
        at_mn, at_cn = self._down_packets(nh, body, path)
        self.mn.append((round_us(t_mn), at_mn))
        self.mn_data.append((round_us(t_mn), path))
        self.cn.append((round_us(t_mn - self.delay - self.offset), at_cn))
        ack = TCP(
            sport=40000, dport=80, seq=self.ack_tcp, ack=seq + len(self.payload), flags="A", window=65535
        )
        nh, body = self._protect(ack, inbound=False)
        at_mn, at_cn = self._up_packets(nh, body, path)
        t_ack = t_mn + 0.0005
        self.mn.append((round_us(t_ack), at_mn))
        self.cn.append((round_us(t_ack + self.delay - self.offset), at_cn))

    def esp_without_payload(self, t_mn: float) -> None:
        """An ESP packet from the CN carrying a pure ACK (no TCP payload)."""
        seg = TCP(sport=80, dport=40000, seq=self.seq_tcp, ack=self.ack_tcp, flags="A", window=4096)
        nh, body = self._protect(seg, inbound=True)
        at_mn, at_cn = self._down_packets(nh, body, self._path())
        self.mn.append((round_us(t_mn), at_mn))
        self.cn.append((round_us(t_mn - self.delay - self.offset), at_cn))

    def lost(self, t_mn: float) -> int:
        """A data packet the CN sends into the outage (only in the CN capture); returns its seq."""
        seq = self.seq_tcp
        self.seq_tcp += len(self.payload)
        nh, body = self._protect(self._segment(seq, self.payload), inbound=True)
        _, at_cn = self._down_packets(nh, body, self._path())
        self.cn.append((round_us(t_mn - self.delay - self.offset), at_cn))
        return seq

    def gso_burst(
        self, t_mn: float, *, upload: bool = False, segments: int = 3, resend_after: float = 0.03
    ) -> None:
        """Data its sender hands to the NIC as one TSO/GSO segment, with its tail resent later.

        The sender's capture shows one large segment, the receiver's capture the
        ``segments`` MSS-sized ones it was cut into on the wire (1 ms apart, the
        first at ``t_mn`` in the MN clock). ``resend_after`` seconds after the
        burst, the sender resends the last segment alone (a tail loss probe); only
        the sender's capture sees that copy. The receiver's copy of the original
        and the sender's copy of the resend share every identity the analyser
        matches on. ``upload``: the MN sends, else the CN.
        """
        path = self._path()
        size = len(self.payload)
        if upload:
            first = self.ack_tcp
            self.ack_tcp += size * segments

            def seg(seq: int, n: int) -> Packet:
                return TCP(sport=40000, dport=80, seq=seq, ack=self.seq_tcp, flags="PA") / (b"U" * n)

            def pair(segment: Packet) -> tuple[bytes, bytes]:
                nh, body = self._protect(segment, inbound=False)
                return self._up_packets(nh, body, path)

            def to_sender_clock(t: float) -> float:  # the sender is the MN
                return t

            def to_receiver_clock(t: float) -> float:
                return t + self.delay - self.offset

        else:
            first = self.seq_tcp
            self.seq_tcp += size * segments

            def seg(seq: int, n: int) -> Packet:
                return self._segment(seq, b"D" * n)

            def pair(segment: Packet) -> tuple[bytes, bytes]:
                nh, body = self._protect(segment, inbound=True)
                at_mn, at_cn = self._down_packets(nh, body, path)
                return at_cn, at_mn  # (at the sender, at the receiver)

            def to_sender_clock(t: float) -> float:  # the sender is the CN
                return t - self.delay - self.offset

            def to_receiver_clock(t: float) -> float:
                return t

        sender = self.mn if upload else self.cn
        receiver = self.cn if upload else self.mn
        at_sender, _ = pair(seg(first, size * segments))
        sender.append((round_us(to_sender_clock(t_mn)), at_sender))
        for k in range(segments):
            _, at_receiver = pair(seg(first + k * size, size))
            receiver.append((round_us(to_receiver_clock(t_mn + k * 0.001)), at_receiver))
            if not upload:
                self.mn_data.append((round_us(t_mn + k * 0.001), path))
        tail = seg(first + (segments - 1) * size, size)
        sender.append((round_us(to_sender_clock(t_mn) + resend_after), pair(tail)[0]))

    def steady(self, until: float) -> None:
        while self.t < until:
            self.data(self.t)
            self.t += self.interval

    def mn_only(self, t: float, pkt: Packet | bytes) -> None:
        self.mn.append((round_us(t), bytes(pkt)))

    def both(self, t_mn: float, at_mn: Packet | bytes, at_cn: Packet | bytes, towards_cn: bool) -> None:
        self.mn.append((round_us(t_mn), bytes(at_mn)))
        t_cn = t_mn + self.delay if towards_cn else t_mn - self.delay
        self.cn.append((round_us(t_cn - self.offset), bytes(at_cn)))

    # -- one handover -----------------------------------------------------------------------------
    def handover(self, plan: Plan) -> Truth:
        ro = self.mip6 == "ro"
        home = plan.direction == "home"
        self.steady(self.t + plan.gap)
        t0 = round_us(self.t)
        lost = [self.lost(t0 + 0.02 + k * self.interval) for k in range(plan.lost_at_cn)]
        for k in range(plan.old_path_data):
            self.data(t0 + 0.01 + k * 0.01, path="home" if not home else "tunnel")
        self.away = not home
        self.bound_cn = False
        new_prefix = HOME_PREFIX if home else FOREIGN_PREFIX
        old_prefix = FOREIGN_PREFIX if home else HOME_PREFIX
        router = HOME_ROUTER_LL if home else FOREIGN_ROUTER_LL
        truth: dict[str, float | None] = dict.fromkeys(MILESTONES)

        def ra(t: float, prefix: str) -> None:
            pkt = (
                IPv6(src=router, dst="ff02::1")
                / ICMPv6ND_RA(routerlifetime=1800)
                / ICMPv6NDOptPrefixInfo(prefix=prefix.split("/")[0], prefixlen=64)
            )
            self.mn_only(t, pkt)

        t = t0
        if plan.ra_lost:
            self.mn_only(t0 + 0.05, IPv6(src=MN_LL, dst="ff02::2") / ICMPv6ND_RS())
            ra(t0 + 0.1, old_prefix)  # a late RA of the link left: not the milestone
            self.mn_only(t0 + 0.3, IPv6(src=MN_LL, dst="ff02::2") / ICMPv6ND_RS())
        t += plan.ra
        ra(t, new_prefix)
        truth["ra"] = t

        def protected(mh: Packet, spi_index: int) -> Packet:
            if self.signalling_spis is None:
                return mh
            self.signalling_seq += 1
            # what the wire shows of an ESP-protected Mobility Header: SPI, sequence, ciphertext
            return ESP(spi=self.signalling_spis[spi_index], seq=self.signalling_seq, data=b"\x5a" * 48)

        def bu_to_ha(t: float, seq: int) -> None:
            lifetime = 0 if home else 100
            mh = protected(MIP6MH_BU(seq=seq, flags="AH", mhtime=lifetime), 0)
            if home:
                self.mn_only(t, IPv6(src=HOA, dst=HA) / mh)
            else:
                self.mn_only(t, IPv6(src=COA, dst=HA) / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)]) / mh)

        def ba_from_ha(t: float, seq: int, status: int) -> None:
            mh = protected(MIP6MH_BA(status=status, seq=seq, mhtime=0 if home else 100), 1)
            if home:
                self.mn_only(t, IPv6(src=HA, dst=HOA) / mh)
            else:
                self.mn_only(
                    t, IPv6(src=HA, dst=COA) / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA]) / mh
                )

        t += plan.bu_ha
        self.bu_seq += 1
        bu_seq = self.bu_seq
        bu_to_ha(t, bu_seq)
        truth["bu_ha"] = t
        statuses: list[int] = []
        sent_bus = 1
        last_bu = t
        for k in range(plan.bu_retransmissions):
            # mn.py: a fresh sequence number on every transmission, the timeout doubling
            last_bu = t + plan.retransmit_every * (2 ** (k + 1) - 1)
            self.bu_seq += 1
            bu_seq = self.bu_seq
            bu_to_ha(last_bu, bu_seq)
            sent_bus += 1
        first_ba = t + (plan.ba_ha / 2 if plan.ba_reject is not None else plan.ba_ha)
        if plan.ba_fail is None and last_bu >= first_ba:
            raise ValueError("the BA must come after the last retransmission (raise ba_ha)")
        if plan.ba_fail is not None:
            ba_from_ha(t + plan.ba_ha, bu_seq, plan.ba_fail)
            statuses.append(plan.ba_fail)
            end = t + plan.ba_ha + 2.0
            self.t = end
            return self._finish(plan, t0, truth, statuses, lost=lost, completes=False, bus=sent_bus)
        if plan.ba_reject is not None:
            last_accepted = bu_seq - 5  # what a 135 carries: the last sequence number the HA accepted
            ba_from_ha(t + plan.ba_ha / 2, last_accepted, plan.ba_reject)
            statuses.append(plan.ba_reject)
            self.bu_seq = last_accepted + 1 if plan.ba_reject == 135 else self.bu_seq + 1
            bu_to_ha(t + plan.ba_ha / 2 + 0.01, self.bu_seq)
            sent_bus += 1
            bu_seq = self.bu_seq
        t += plan.ba_ha
        ba_from_ha(t, bu_seq, 0)
        truth["ba_ha"] = t
        retransmit_first = lost[0] if lost else None
        first_data_sent: float | None = None
        if ro:
            if plan.tunnel_data and not home:
                # Data already reaches the MN through the home agent's tunnel.
                t_data = t + min(0.01, plan.coti / 3)
                self.data(t_data, retransmit_of=retransmit_first, path="tunnel")
                first_data_sent = t_data - self.delay
                retransmit_first = None
            skip_coti = home if plan.skip_coti is None else plan.skip_coti
            # Home test (via the HA when away), not a milestone.
            cookie_h = b"h" * 8
            hoti_cn = IPv6(src=HOA, dst=CN) / MIP6MH_HoTI(cookie=cookie_h)
            hoti_mn = hoti_cn if home else IPv6(src=COA, dst=HA) / hoti_cn
            self.both(t + 0.001, hoti_mn, hoti_cn, towards_cn=True)
            if not skip_coti:
                t += plan.coti
                cookie = b"c" * 8
                coti = IPv6(src=COA, dst=CN) / MIP6MH_CoTI(cookie=cookie)
                self.both(t, coti, coti, towards_cn=True)
                truth["coti"] = t
                t += plan.cot
                cot = IPv6(src=CN, dst=COA) / MIP6MH_CoT(cookie=cookie, index=1, token=b"k" * 8)
                self.both(t, cot, cot, towards_cn=False)
                truth["cot"] = t
            hot_cn = IPv6(src=CN, dst=HOA) / MIP6MH_HoT(cookie=cookie_h, index=1, token=b"t" * 8)
            hot_mn = hot_cn if home else IPv6(src=HA, dst=COA) / hot_cn
            self.both(t + 0.003 if skip_coti else t - 0.002, hot_mn, hot_cn, towards_cn=False)
            t += plan.bu_cn
            bu = MIP6MH_BU(seq=bu_seq, flags="A" if plan.cn_ack else 0, mhtime=0 if home else 100)
            if home:
                pkt = IPv6(src=HOA, dst=CN) / bu
            else:
                pkt = IPv6(src=COA, dst=CN) / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)]) / bu
            self.both(t, pkt, pkt, towards_cn=True)
            truth["bu_cn"] = t
            if plan.cn_ack:
                back = MIP6MH_BA(status=0, seq=bu_seq, mhtime=0 if home else 100)
                ba = (
                    IPv6(src=CN, dst=HOA) / back
                    if home
                    else IPv6(src=CN, dst=COA) / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA]) / back
                )
                self.both(t + 0.01, ba, ba, towards_cn=False)
            self.bound_cn = not home
        esp_ack_at = None
        if plan.esp_ack_before_next:
            esp_ack_at = t + plan.next_tcp / 2
            self.esp_without_payload(esp_ack_at)
        t += plan.next_tcp
        self.data(t, retransmit_of=retransmit_first)
        if first_data_sent is None:
            first_data_sent = t - self.delay
        truth["next_tcp"] = t
        self.t = t + self.interval
        result = self._finish(plan, t0, truth, statuses, lost=lost, completes=True, bus=sent_bus)
        result.cn_data_resumed_sent = first_data_sent
        result.esp_ack_at = esp_ack_at
        return result

    def _finish(
        self,
        plan: Plan,
        t0: float,
        truth: dict[str, float | None],
        statuses: list[int],
        *,
        lost: list[int],
        completes: bool,
        bus: int = 1,
    ) -> Truth:
        ro = self.mip6 == "ro"
        phases: dict[str, float | str | None] = {}
        prev = t0
        for name in MILESTONES:
            if not ro and name in ("coti", "cot", "bu_cn"):
                phases[name] = "n/a"
                continue
            value = truth[name]
            if value is None:
                phases[name] = None
                continue
            phases[name] = value - prev
            prev = value
        total = truth["next_tcp"] - t0 if truth["next_tcp"] is not None else None
        # data resumes with the first data packet over the new path (docs/analysis.md)
        new_path = ("home",) if plan.direction == "home" else ("tunnel", "ro")
        data_times = [t for t, path in self.mn_data if t > t0 and path in new_path]
        resumed = min(data_times) - t0 if data_times else None
        item = Truth(
            t0,
            plan.direction,
            truth,
            phases,
            total,
            resumed,
            bus - 1,  # every BU to the HA after the first, before the accepted BA
            ba_statuses=statuses,
        )
        self.truths.append(item)
        self.events.append(
            {
                "direction": plan.direction,
                "handover_at": t0,
                "from_ssid": "VISITME" if plan.direction == "home" else "LOCAL",
                "to_ssid": "LOCAL" if plan.direction == "home" else "VISITME",
                "associated_at": round_us(t0 + min(0.2, plan.ra / 2)),
                "scan_first": True,
                "ok": True,
                "error": None,
            }
        )
        return item

    def finish(self, tail: float = 1.0) -> None:
        self.steady(self.t + tail)

    # -- output -----------------------------------------------------------------------------------
    def write(
        self, rep_dir: Path, *, mn: bool = True, cn: bool = True, linktype: int = 1, fmt: str = "pcap"
    ) -> None:
        rep_dir.mkdir(parents=True, exist_ok=True)
        if mn:
            write_capture(rep_dir / ("mn.pcapng" if fmt == "pcapng" else "mn.pcap"), self.mn, linktype, fmt)
        if cn:
            write_capture(rep_dir / "cn.pcap", self.cn, 1, "pcap")
        # events.json as mvpn.lab.run_folder writes it (schema: plugins/module_utils/runfolder.py)
        transfer = {
            "bytes": self.seq_tcp - 1000,
            "sha256": "0" * 64,
            "sha256_ok": True,
            "status": "completed",
            "started_at": None,
            "finished_at": None,
            "error": None,
        }
        events = {
            "schema_version": 1,
            "configuration": rep_dir.parent.name,
            "repetition": int(rep_dir.name.split("-")[-1]) if rep_dir.name.startswith("rep-") else 1,
            "errors": [],
            "hosts_down": [],
            "hosts_absent": [],
            "handovers": self.events,
            "captures": {},
            "transfer": transfer,
        }
        (rep_dir / "events.json").write_text(json.dumps(events))


# ---------------------------------------------------------------------------------------------
ETH_MN = bytes.fromhex("000c29bbf0b6") + bytes.fromhex("020000000001")


def frame(pkt: bytes, linktype: int) -> bytes:
    """Wrap an IPv6 packet in the link layer of ``linktype``."""
    if linktype == 1:
        return ETH_MN + b"\x86\xdd" + pkt
    if linktype == 113:
        return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00", 0x86DD) + pkt
    if linktype == 276:
        return struct.pack("!HHIHBB8s", 0x86DD, 0, 3, 1, 0, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00") + pkt
    if linktype in (101, 229):
        return pkt
    raise ValueError(linktype)


def write_capture(
    path: Path,
    records: list[tuple[float, bytes]],
    linktype: int = 1,
    fmt: str = "pcap",
    snaplen: int = 65535,
    nanoseconds: bool = False,
    big_endian: bool = False,
    keep_order: bool = False,
) -> None:
    """Write records (sorted by time, unless ``keep_order``) as a pcap or pcapng file."""
    if not keep_order:
        records = sorted(records, key=lambda r: r[0])
    e = ">" if big_endian else "<"
    with open(path, "wb") as f:
        if fmt == "pcapng":
            shb_body = struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)
            f.write(
                struct.pack(e + "II", 0x0A0D0D0A, 12 + len(shb_body))
                + shb_body
                + struct.pack(e + "I", 12 + len(shb_body))
            )
            # Interface with a nanosecond resolution (if_tsresol = 9).
            opts = struct.pack(e + "HHB3x", 9, 1, 9) + struct.pack(e + "HH", 0, 0)
            idb_body = struct.pack(e + "HHI", linktype, 0, snaplen) + opts
            f.write(
                struct.pack(e + "II", 1, 12 + len(idb_body))
                + idb_body
                + struct.pack(e + "I", 12 + len(idb_body))
            )
            for ts, pkt in records:
                data = frame(pkt, linktype)[:snaplen]
                stamp = round(ts * 1e9)
                pad = (-len(data)) % 4
                body = struct.pack(
                    e + "IIIII", 0, stamp >> 32, stamp & 0xFFFFFFFF, len(data), len(frame(pkt, linktype))
                )
                body += data + b"\0" * pad
                f.write(
                    struct.pack(e + "II", 6, 12 + len(body)) + body + struct.pack(e + "I", 12 + len(body))
                )
            return
        magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
        f.write(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        scale = 1_000_000_000 if nanoseconds else 1_000_000
        for ts, pkt in records:
            full = frame(pkt, linktype)
            data = full[:snaplen]
            ticks = round(ts * scale)
            f.write(struct.pack(e + "IIII", ticks // scale, ticks % scale, len(data), len(full)) + data)


# ---------------------------------------------------------------------------------------------
def manifest(
    configs: list[dict[str, Any]],
    test: str = "test2_wlan_horizontal",
    run: str = "20250101T000000Z",
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "test": test,
        "run": run,
        "started_at": "2025-01-01T00:00:00Z",
        "ended_at": "2025-01-01T00:10:00Z",
        "ssids": {"home": "LOCAL", "visited": "VISITME"},
        "versions": {"mvpn-lab": "test"},
        "inventory": {"kind": "synthetic"},
        "configurations": configs,
        "addresses": {
            "home_address": HOA,
            "home_agent": HA,
            "correspondent": CN,
            "home_prefix": HOME_PREFIX,
            "foreign_prefix": FOREIGN_PREFIX,
        },
    }


def config_entry(
    mip6: str,
    ipsec: str,
    md: str = "ra",
    profile: str = "wlan",
    spis: tuple[int, int] = (SPI_CN_TO_MN, SPI_MN_TO_CN),
    signalling_spis: tuple[int, int] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": f"mip6-{mip6}_ipsec-{ipsec}_md-{md}",
        "mip6": mip6,
        "ipsec": ipsec,
        "movement_detection": md,
        "profile": profile,
    }
    if ipsec != "none":
        entry["esp_spis"] = [f"0x{spi:08x}" for spi in spis]
    if signalling_spis is not None:
        entry["signalling_spis"] = {"bu": f"0x{signalling_spis[0]:08x}", "ba": f"0x{signalling_spis[1]:08x}"}
    return entry


def make_run(
    root: Path,
    reps: dict[str, list[Scenario]],
    entries: list[dict[str, Any]],
    test: str = "test2_wlan_horizontal",
    run: str = "20250101T000000Z",
) -> Path:
    """Write a run folder: manifest.json and every scenario as <config>/rep-NN."""
    run_dir = root / test / run
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "manifest.json").write_text(json.dumps(manifest(entries, test, run), indent=2))
    for config_id, scenarios in reps.items():
        for n, scenario in enumerate(scenarios, start=1):
            scenario.write(run_dir / config_id / f"rep-{n:02d}")
    return run_dir


def random_plan(rng: Any, direction: str = "away", **overrides: Any) -> Plan:
    """A handover plan with phase durations drawn from ``rng`` (random.Random)."""
    values = {
        "direction": direction,
        "gap": rng.uniform(0.5, 1.5),
        "ra": rng.uniform(0.15, 1.8),
        "bu_ha": rng.uniform(0.002, 0.05),
        "ba_ha": rng.uniform(0.02, 0.6),
        "coti": rng.uniform(0.03, 0.5),
        "cot": rng.uniform(0.01, 0.4),
        "bu_cn": rng.uniform(0.005, 0.1),
        "next_tcp": rng.uniform(0.02, 0.8),
    }
    values.update(overrides)
    return Plan(**values)
