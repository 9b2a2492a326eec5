# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The impairment node's two directions, from a link profile (the paper's GPRS and UMTS).

A profile gives the uplink and downlink rates and the round-trip time a ping sees. The node
shapes each direction on the interface packets leave by: uplink (from the foreign network
toward the backbone) on its backbone interface, downlink on its impaired-link interface.

The RTT is what a ping of ``reference_frame_bytes`` (default 118: a 56-byte ICMPv6 echo in
an Ethernet frame) measures, as the paper's operators measured their links: each direction's
netem delay is half of the RTT left after that frame's serialization at both rates. At GPRS
rates (10 kbit/s up, 40 down) serialization alone is 118 ms of the 700. With the ``tbf`` shaper
(``serialized=False``) a lone ping passes the token bucket at once, so each delay is half the RTT.

netem holds every packet it delays, so its limit is the profile's queue plus the packets in
flight during the delay (counted at 100 bytes, the size of a bare TCP acknowledgement).
"""

from __future__ import annotations

import json
import math
import re
import statistics
from typing import Any

from ansible.errors import AnsibleFilterError

PROFILE_NAMES = ("wlan", "gprs", "umts", "custom")
DEFAULT_QUEUE_PACKETS = 50
SMALL_PACKET_BYTES = 100


def _number(profile: dict[str, Any], name: str, field: str, *, minimum: float, above: bool = False,
            maximum: float | None = None, default: float | None = None) -> float:  # fmt: skip
    value = profile.get(name, default)
    if value is None:
        raise AnsibleFilterError(f"{field}.{name}: missing (expected a number)")
    if isinstance(value, bool):
        raise AnsibleFilterError(f"{field}.{name}: expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"{field}.{name}: expected a number, got {value!r}") from None
    if (number <= minimum) if above else (number < minimum):
        raise AnsibleFilterError(
            f"{field}.{name}: expected a number {'above' if above else 'of at least'} {minimum:g}, "
            f"got {number:g}"
        )
    if maximum is not None and number > maximum:
        raise AnsibleFilterError(f"{field}.{name}: expected at most {maximum:g}, got {number:g}")
    return number


def serialization_ms(frame_bytes: float, rate_kbit: float) -> float:
    """Time to send one frame at ``rate_kbit`` (1000 bit/s), in milliseconds."""
    return frame_bytes * 8.0 / rate_kbit


def impairment_directions(
    profile_name: str,
    profiles: dict[str, Any],
    interfaces: dict[str, str],
    custom: dict[str, Any] | None = None,
    reference_frame_bytes: int = 118,
    serialized: bool = True,
) -> list[dict[str, Any]]:
    """The ``mvpn.lab.netem`` parameters of the uplink and the downlink, in that order.

    A profile with neither rate (the shipped ``wlan``) means no impairment: both directions
    come back with ``state: absent``. With ``serialized`` (netem's own rate, and Click's links)
    every packet also waits its transmission time, so a ``reference_frame_bytes`` frame's is taken
    off the RTT; a token bucket (``serialized=False``, the ``tbf`` shaper) lets a lone packet
    through at once, so the one-way delay is half the RTT.
    """
    if profile_name not in PROFILE_NAMES:
        raise AnsibleFilterError(
            f"impairment_profile: expected one of {', '.join(PROFILE_NAMES)}, got {profile_name!r}"
        )
    if profile_name == "custom":
        field, profile = "impairment_custom", custom
    else:
        field, profile = f"impairment_profiles.{profile_name}", (profiles or {}).get(profile_name)
    if not isinstance(profile, dict):
        raise AnsibleFilterError(f"{field}: expected a dict with uplink_kbit, downlink_kbit and rtt_ms")
    for role in ("backbone", "impaired"):
        if not (interfaces or {}).get(role):
            raise AnsibleFilterError(
                f"mvpn_interfaces.{role}: missing (the impairment node's {role} interface)"
            )
    devices = {"uplink": interfaces["backbone"], "downlink": interfaces["impaired"]}
    if profile.get("uplink_kbit") is None and profile.get("downlink_kbit") is None:
        return [{"direction": d, "device": devices[d], "state": "absent"} for d in ("uplink", "downlink")]

    rates = {
        "uplink": _number(profile, "uplink_kbit", field, minimum=0, above=True),
        "downlink": _number(profile, "downlink_kbit", field, minimum=0, above=True),
    }
    rtt = _number(profile, "rtt_ms", field, minimum=0)
    jitter = _number(profile, "jitter_ms", field, minimum=0, default=0)
    loss = _number(profile, "loss_pct", field, minimum=0, maximum=100, default=0)
    queue = _number(profile, "queue_packets", field, minimum=1, default=DEFAULT_QUEUE_PACKETS)
    if queue != int(queue):
        raise AnsibleFilterError(f"{field}.queue_packets: expected a whole number of packets, got {queue:g}")
    serialization = 0.0
    if serialized:
        serialization = sum(serialization_ms(reference_frame_bytes, r) for r in rates.values())
    if serialization > rtt:
        raise AnsibleFilterError(
            f"{field}.rtt_ms: {rtt:g} ms is less than the {serialization:.1f} ms a "
            f"{reference_frame_bytes}-byte frame takes to cross both directions at these rates"
        )
    delay = round((rtt - serialization) / 2.0, 3)
    if jitter > delay:
        raise AnsibleFilterError(
            f"{field}.jitter_ms: expected at most the one-way delay {delay:g} ms, got {jitter:g}"
        )
    out = []
    for direction in ("uplink", "downlink"):
        in_flight = math.ceil(
            rates[direction] * 1000.0 / 8.0 * (delay + jitter) / 1000.0 / SMALL_PACKET_BYTES
        )
        out.append(
            {
                "direction": direction,
                "device": devices[direction],
                "state": "present",
                "delay_ms": delay,
                "jitter_ms": jitter,
                "loss_pct": loss,
                "rate_kbit": rates[direction],
                "limit": int(queue) + in_flight,
            }
        )
    return out


def impairment_check(rows: list[dict[str, Any]], tolerance_pct: float = 10) -> list[dict[str, Any]]:
    """Each measured figure beside the profile's: ``off_pct``, ``ok`` and a one-line verdict."""
    out = []
    for row in rows:
        expected, measured = float(row["expected"]), float(row["measured"])
        off = abs(measured - expected) / expected * 100.0 if expected else float("inf")
        ok = off <= float(tolerance_pct)
        out.append(
            dict(
                row,
                expected=expected,
                measured=measured,
                off_pct=round(off, 1),
                ok=ok,
                line=f"{row['profile']} {row['figure']}: measured {measured:g}, profile {expected:g} "
                f"({off:.1f}% off{'' if ok else f', more than {float(tolerance_pct):g}%'})",
            )
        )
    return out


_PING_TIME = re.compile(r"\btime=([0-9.]+) ms\b")


def ping_median_ms(stdout: str) -> float:
    """The median of the per-packet round-trip times in ``ping``'s output (not ``-q``).

    The median, not ping's average: on an emulated lab one late packet (the host busy for a
    moment) would move the average by tens of milliseconds.
    """
    times = [float(t) for t in _PING_TIME.findall(str(stdout))]
    if not times:
        raise AnsibleFilterError("ping output: expected per-packet 'time=... ms' lines, found none")
    return round(statistics.median(times), 3)


def iperf_wire_kbit(report: dict[str, Any] | str, header_bytes: int = 62) -> float:
    """The rate an iperf3 UDP receiver saw, counted on the wire, in kbit/s.

    ``report`` is the receiving side's ``iperf3 -J`` output. The sender offers more than the
    link carries, so the link's queue stays full and each one-second interval the receiver
    reports is the link's rate; the first (the queue filling, the path's delay) and the last
    (the queue draining, a part of a second) are left out. Each datagram adds
    ``header_bytes`` (UDP 8, IPv6 40, Ethernet 14), which the shaper counts too.
    """
    if isinstance(report, str):
        try:
            report = json.loads(report)
        except ValueError:
            raise AnsibleFilterError("iperf3 report: expected iperf3 -J output (JSON)") from None
    if not isinstance(report, dict):
        raise AnsibleFilterError("iperf3 report: expected iperf3 -J output (a JSON object)")
    if report.get("error"):
        raise AnsibleFilterError(f"iperf3 report: the test failed: {report['error']}")
    try:
        length = int(report["start"]["test_start"]["blksize"])
        sums = [interval["sum"] for interval in report["intervals"]]
    except (KeyError, TypeError, ValueError):
        raise AnsibleFilterError(
            "iperf3 report: expected start.test_start.blksize and intervals[].sum"
        ) from None
    steady = sums[1:-1]
    if len(steady) < 3:
        raise AnsibleFilterError(
            f"iperf3 report: expected at least 5 one-second intervals, got {len(sums)} (run the test longer)"
        )
    data = sum(float(s["bytes"]) for s in steady)
    seconds = sum(float(s["seconds"]) for s in steady)
    if seconds <= 0:
        raise AnsibleFilterError("iperf3 report: the intervals last no time")
    datagrams = data / length
    return round((data + datagrams * header_bytes) * 8 / seconds / 1000, 2)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "impairment_directions": impairment_directions,
            "impairment_check": impairment_check,
            "ping_median_ms": ping_median_ms,
            "iperf_wire_kbit": iperf_wire_kbit,
        }
