# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Link impairment with tc: the wanted shape of one interface's egress, and the kernel's.

An impairment is netem at the root of the interface (``handle 1:``) with delay, jitter, loss and
a packet limit. The rate is netem's own (``rate``) or, with the ``tbf`` shaper, a token bucket
below netem (``parent 1:1 handle 10:``), for kernels or rates where netem's rate is not enough.

:func:`current` reads ``tc -j qdisc show dev DEV`` into the same :class:`Impairment` shape that
:func:`wanted` builds from the module's parameters, so the module compares the two and changes
the kernel only on a real difference. iproute2 (6.1, Debian 12) prints netem's delay and jitter in
seconds, its loss as a fraction, rates in bytes per second and tbf's latency (``lat``) in
microseconds; all are turned back into milliseconds, percent and kbit/s here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

SHAPERS = ("netem", "tbf")
ROOT_HANDLE = "1:"
TBF_HANDLE = "10:"
# Times are compared to within 2 microseconds (the kernel keeps them in ticks and tc prints them
# rounded down: 242.625 ms reads back as 0.242624 s), rates to the byte per second (the kernel
# keeps whole bytes per second: 12.3 kbit reads back as 1537 B/s, 12.296 kbit).
_TIME_TOLERANCE_MS = 0.002
_RATE_TOLERANCE_KBIT = 0.008


class TcError(Exception):
    """tc printed something this module cannot read."""


class Impairment(object):
    """The egress impairment of one interface (``None`` rate: no shaping)."""

    __slots__ = (
        "delay_ms",
        "jitter_ms",
        "limit",
        "loss_pct",
        "rate_kbit",
        "shaper",
        "tbf_burst",
        "tbf_latency_ms",
    )

    def __init__(
        self,
        delay_ms=0.0,
        jitter_ms=0.0,
        loss_pct=0.0,
        rate_kbit=None,
        limit=1000,
        shaper="netem",
        tbf_burst=None,
        tbf_latency_ms=None,
    ):
        self.delay_ms = float(delay_ms)
        self.jitter_ms = float(jitter_ms)
        self.loss_pct = float(loss_pct)
        self.rate_kbit = None if rate_kbit is None else float(rate_kbit)
        self.limit = int(limit)
        self.shaper = shaper
        self.tbf_burst = None if tbf_burst is None else int(tbf_burst)
        self.tbf_latency_ms = None if tbf_latency_ms is None else float(tbf_latency_ms)

    def as_dict(self):
        out = dict(
            delay_ms=self.delay_ms,
            jitter_ms=self.jitter_ms,
            loss_pct=self.loss_pct,
            rate_kbit=self.rate_kbit,
            limit=self.limit,
            shaper=self.shaper,
        )
        if self.shaper == "tbf":
            out.update(tbf_burst=self.tbf_burst, tbf_latency_ms=self.tbf_latency_ms)
        return out

    def same_as(self, other):
        """True if the kernel need not change (values equal to tc's own rounding)."""
        if other is None or self.shaper != other.shaper or self.limit != other.limit:
            return False
        for name, tolerance in (
            ("delay_ms", _TIME_TOLERANCE_MS),
            ("jitter_ms", _TIME_TOLERANCE_MS),
            ("loss_pct", 1e-4),
        ):
            if abs(getattr(self, name) - getattr(other, name)) > tolerance:
                return False
        if (self.rate_kbit is None) != (other.rate_kbit is None):
            return False
        if self.rate_kbit is not None and abs(self.rate_kbit - other.rate_kbit) > _RATE_TOLERANCE_KBIT:
            return False
        if self.shaper == "tbf":
            if self.tbf_burst != other.tbf_burst:
                return False
            if abs((self.tbf_latency_ms or 0) - (other.tbf_latency_ms or 0)) > 1.0:
                return False  # tbf prints its latency derived from limit: a ms off is rounding
        return True

    def describe(self):
        """One line for diffs and messages."""
        parts = ["delay %gms" % self.delay_ms]
        if self.jitter_ms:
            parts.append("jitter %gms" % self.jitter_ms)
        if self.loss_pct:
            parts.append("loss %g%%" % self.loss_pct)
        if self.rate_kbit is not None:
            parts.append("rate %gkbit (%s)" % (self.rate_kbit, self.shaper))
        parts.append("limit %d" % self.limit)
        return " ".join(parts)


def _ms(value):
    return "%.3fms" % value


def commands(device, wanted_impairment, existing):
    """The ``tc`` argument lists that turn ``existing`` (or nothing of ours) into the wanted state."""
    w = wanted_impairment
    netem = ["netem", "limit", str(w.limit), "delay", _ms(w.delay_ms)]
    if w.jitter_ms:
        netem += [_ms(w.jitter_ms)]
    if w.loss_pct:
        netem += ["loss", "random", "%g%%" % w.loss_pct]
    if w.rate_kbit is not None and w.shaper == "netem":
        netem += ["rate", "%gkbit" % w.rate_kbit]
    cmds = []
    rate_dropped = existing is not None and existing.rate_kbit is not None and w.rate_kbit is None
    if existing is not None and (existing.shaper != w.shaper or rate_dropped):
        # A token bucket to add or to take away, or a netem rate to drop (the kernel keeps the rate
        # of a netem that is changed without one): start again from the default qdisc.
        cmds.append(["tc", "qdisc", "del", "dev", device, "root"])
    cmds.append(["tc", "qdisc", "replace", "dev", device, "root", "handle", ROOT_HANDLE] + netem)
    if w.shaper == "tbf":
        cmds.append(
            [
                "tc",
                "qdisc",
                "replace",
                "dev",
                device,
                "parent",
                "1:1",
                "handle",
                TBF_HANDLE,
                "tbf",
                "rate",
                "%gkbit" % w.rate_kbit,
                "burst",
                str(w.tbf_burst),
                "latency",
                _ms(w.tbf_latency_ms),
            ]
        )
    return cmds


def parse_qdiscs(text):
    """The list ``tc -j qdisc show`` printed (an empty list for no output)."""
    text = (text or "").strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        raise TcError("tc -j qdisc show printed something that is not JSON") from None
    if not isinstance(data, list):
        raise TcError("tc -j qdisc show printed %s, not a list" % type(data).__name__)
    return data


def _number(value, what):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TcError("tc printed a %s that is not a number: %r" % (what, value)) from None


def current(qdiscs):
    """The impairment the kernel has (a root netem of ours), or ``None`` when there is none."""
    root = next((q for q in qdiscs if q.get("root")), None)
    if root is None or root.get("kind") != "netem":
        return None
    opts = root.get("options") or {}
    delay = opts.get("delay") or {}
    loss = opts.get("loss-random") or {}
    rate = opts.get("rate") or {}
    found = Impairment(
        delay_ms=_number(delay.get("delay", 0), "delay") * 1000.0,  # seconds
        jitter_ms=_number(delay.get("jitter", 0), "jitter") * 1000.0,
        loss_pct=_number(loss.get("loss", 0), "loss") * 100.0,  # a fraction
        rate_kbit=_number(rate["rate"], "rate") * 8.0 / 1000.0 if rate.get("rate") else None,  # bytes/s
        limit=int(_number(opts.get("limit", 1000), "limit")),
        shaper="netem",
    )
    child = next((q for q in qdiscs if q.get("kind") == "tbf" and q.get("parent") == "1:1"), None)
    if child is not None:
        copts = child.get("options") or {}
        found.shaper = "tbf"
        found.rate_kbit = _number(copts.get("rate", 0), "tbf rate") * 8.0 / 1000.0
        found.tbf_burst = int(_number(copts.get("burst", 0), "tbf burst"))
        found.tbf_latency_ms = _number(copts.get("lat", 0), "tbf latency") / 1000.0  # microseconds
    if root.get("handle") != ROOT_HANDLE:
        found.shaper = "foreign"  # a netem someone else set up: replace it
    return found
