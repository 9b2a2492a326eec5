"""Records of what the MN capture showed in a handover window."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, eq=False)
class DataHit:
    """A transfer data packet (CN -> MN, TCP payload > 0) seen in the MN capture."""

    ts: float
    index: int
    key: bytes | None
    path: str  # "direct", "tunnel" (via the HA) or "ro" (type 2 routing header)
    confirmed: bool = False  # ESP decrypted and found to carry TCP payload


@dataclass(slots=True, eq=False)
class Signal:
    """A signalling packet (RA, Mobility Header) or the window's t0 marker ("t0")."""

    kind: str  # ra, bu_ha, ba_ha, bu_cn, ba_cn, bu_other, coti, cot, hoti, hot, brr, be, t0
    ts: float
    index: int
    seq: int | None = None
    status: int | None = None
    lifetime: int | None = None
    flags: int = 0
    cookie: bytes | None = None
    new_prefix: bool = True  # RA: carries a prefix other than the one left
    prefixes: tuple[str, ...] = ()
    key: bytes | None = None
    source: str | None = None  # bu_ha: the IPv6 source (care-of address, or home address at home)
    next_data: DataHit | None = None  # first transfer data packet after this one (in the window)

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind}
        if self.seq is not None:
            out["seq"] = self.seq
        if self.status is not None:
            out["status"] = self.status
        if self.lifetime is not None:
            out["lifetime_s"] = self.lifetime * 4
        if self.prefixes:
            out["prefixes"] = list(self.prefixes)
        return out
