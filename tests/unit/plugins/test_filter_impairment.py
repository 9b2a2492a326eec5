"""The impairment node's per-direction netem parameters from the paper's link profiles."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.mvpn.lab.plugins.filter.impairment import (
    impairment_directions,
    iperf_wire_kbit,
    ping_median_ms,
    serialization_ms,
)

PROFILES = {
    "wlan": {"description": "802.11b"},
    "gprs": {"uplink_kbit": 10, "downlink_kbit": 40, "rtt_ms": 700, "queue_packets": 20},
    "umts": {"uplink_kbit": 128, "downlink_kbit": 128, "rtt_ms": 500, "queue_packets": 50},
}
IFACES = {"backbone": "eth0", "impaired": "eth1"}


def test_gprs_directions_and_the_rtt_a_ping_sees():
    up, down = impairment_directions("gprs", PROFILES, IFACES)
    assert (up["direction"], up["device"], up["rate_kbit"]) == ("uplink", "eth0", 10)
    assert (down["direction"], down["device"], down["rate_kbit"]) == ("downlink", "eth1", 40)
    # a 118-byte frame: 94.4 ms at 10 kbit/s, 23.6 ms at 40; the rest of the 700 ms split evenly
    assert up["delay_ms"] == down["delay_ms"] == pytest.approx((700 - 94.4 - 23.6) / 2)
    assert serialization_ms(118, 10) == pytest.approx(94.4)
    assert serialization_ms(118, 40) == pytest.approx(23.6)
    # queue plus what is in flight during the delay at 100-byte packets
    assert up["limit"] == 20 + 4 and down["limit"] == 20 + 15
    assert up["state"] == down["state"] == "present" and up["loss_pct"] == up["jitter_ms"] == 0


def test_a_token_bucket_adds_no_serialization_to_a_lone_ping():
    """tbf lets a ping through at once: each delay is half the RTT (netem's rate would add 118 ms)."""
    up, down = impairment_directions("gprs", PROFILES, IFACES, serialized=False)
    assert up["delay_ms"] == down["delay_ms"] == 350
    assert (up["rate_kbit"], down["rate_kbit"]) == (10, 40)
    assert up["limit"] == 20 + 5 and down["limit"] == 20 + 18  # more in flight during the longer delay


def test_umts_is_symmetric():
    up, down = impairment_directions("umts", PROFILES, IFACES)
    assert up["rate_kbit"] == down["rate_kbit"] == 128
    assert up["delay_ms"] == pytest.approx(250 - 118 * 8 / 128)
    assert up["limit"] == down["limit"] == 50 + 39  # 16000 B/s x 242.6 ms = 3882 B


def test_wlan_means_no_impairment():
    assert impairment_directions("wlan", PROFILES, IFACES) == [
        {"direction": "uplink", "device": "eth0", "state": "absent"},
        {"direction": "downlink", "device": "eth1", "state": "absent"},
    ]


def test_custom_profile_with_loss_and_jitter():
    custom = {"uplink_kbit": 384, "downlink_kbit": 2000, "rtt_ms": 120, "jitter_ms": 5, "loss_pct": 0.5}
    up, down = impairment_directions("custom", PROFILES, IFACES, custom)
    assert up["jitter_ms"] == 5 and down["loss_pct"] == 0.5 and up["limit"] > 50


@pytest.mark.parametrize(
    ("name", "profiles", "custom", "ifaces", "message"),
    [
        (
            "edge",
            PROFILES,
            None,
            IFACES,
            "impairment_profile: expected one of wlan, gprs, umts, custom, got 'edge'",
        ),
        (
            "custom",
            PROFILES,
            None,
            IFACES,
            "impairment_custom: expected a dict with uplink_kbit, downlink_kbit",
        ),
        (
            "gprs",
            {"gprs": {"uplink_kbit": 10, "downlink_kbit": 40}},
            None,
            IFACES,
            "impairment_profiles.gprs.rtt_ms: missing (expected a number)",
        ),
        (
            "gprs",
            {"gprs": {"uplink_kbit": 0, "downlink_kbit": 40, "rtt_ms": 700}},
            None,
            IFACES,
            "impairment_profiles.gprs.uplink_kbit: expected a number above 0, got 0",
        ),
        (
            "gprs",
            {"gprs": {"uplink_kbit": "fast", "downlink_kbit": 40, "rtt_ms": 700}},
            None,
            IFACES,
            "impairment_profiles.gprs.uplink_kbit: expected a number, got 'fast'",
        ),
        (
            "gprs",
            {"gprs": {"uplink_kbit": 10, "downlink_kbit": 40, "rtt_ms": 100}},
            None,
            IFACES,
            "impairment_profiles.gprs.rtt_ms: 100 ms is less than the 118.0 ms",
        ),
        (
            "custom",
            PROFILES,
            {"uplink_kbit": 10, "downlink_kbit": 40, "rtt_ms": 700, "loss_pct": 120},
            IFACES,
            "impairment_custom.loss_pct: expected at most 100, got 120",
        ),
        (
            "custom",
            PROFILES,
            {"uplink_kbit": 100, "downlink_kbit": 100, "rtt_ms": 100, "jitter_ms": 60},
            IFACES,
            "impairment_custom.jitter_ms: expected at most the one-way delay",
        ),
        ("umts", PROFILES, None, {"backbone": "eth0"}, "mvpn_interfaces.impaired: missing"),
    ],
)
def test_bad_profiles_name_the_field(name, profiles, custom, ifaces, message):
    with pytest.raises(AnsibleFilterError) as err:
        impairment_directions(name, profiles, ifaces, custom)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_check_marks_figures_off_by_more_than_the_tolerance():
    from ansible_collections.mvpn.lab.plugins.filter.impairment import impairment_check

    rows = impairment_check(
        [
            {"profile": "gprs", "figure": "rtt_ms", "expected": 700, "measured": "742.5"},
            {"profile": "gprs", "figure": "uplink_kbit", "expected": "10", "measured": 8.7},
        ],
        10,
    )
    assert [r["ok"] for r in rows] == [True, False]
    assert rows[0]["off_pct"] == 6.1 and rows[1]["off_pct"] == 13.0
    assert rows[1]["line"] == "gprs uplink_kbit: measured 8.7, profile 10 (13.0% off, more than 10%)"


def test_role_profiles_are_the_papers_and_match_the_argument_specs():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[3]
    defaults = yaml.safe_load((root / "roles/impairment/defaults/main.yml").read_text())
    specs = yaml.safe_load((root / "roles/impairment/meta/argument_specs.yml").read_text())
    paper = yaml.safe_load((root / "src/mvpn_lab/data/paper_results.yaml").read_text())["impairment_profiles"]
    profiles = defaults["impairment_profiles"]
    for name in ("gprs", "umts"):
        for key in ("uplink_kbit", "downlink_kbit", "rtt_ms"):
            assert profiles[name][key] == paper[name][key], (name, key)
    assert "uplink_kbit" not in profiles["wlan"]
    assert specs["argument_specs"]["main"]["options"]["impairment_profiles"]["default"] == profiles


DATA = Path(__file__).parent / "data"


def test_iperf_wire_rate_from_a_real_umts_receiver_report():
    # recorded on the twin: UMTS (128 kbit/s) offered 192 kbit/s of 1000-byte datagrams for 12 s
    report = (DATA / "iperf3-umts-receiver.json").read_text()
    # 15 or 16 datagrams a second in the steady intervals: (15000 + 15 * 62) * 8 bit and more
    assert iperf_wire_kbit(report) == pytest.approx(128.0, abs=0.5)
    assert iperf_wire_kbit(json.loads(report), header_bytes=0) == pytest.approx(120.5, abs=0.5)


def _report(per_second: list[int], blksize: int = 200) -> dict:
    intervals = [{"sum": {"bytes": b, "seconds": 1.0}} for b in per_second]
    return {"start": {"test_start": {"blksize": blksize}}, "intervals": intervals}


def test_iperf_wire_rate_leaves_out_the_first_and_last_intervals():
    # the first second is the path's delay, the last the queue draining
    assert iperf_wire_kbit(_report([200, 1000, 1000, 1000, 1000, 400])) == pytest.approx(10.48)


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ("not json", "expected iperf3 -J output (JSON)"),
        ({"error": "unable to read from stream socket"}, "the test failed: unable to read"),
        ({"intervals": []}, "expected start.test_start.blksize"),
        (_report([1000, 1000, 1000, 1000]), "expected at least 5 one-second intervals, got 4"),
    ],
)
def test_iperf_wire_rate_bad_reports_fail_in_one_line(report, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        iperf_wire_kbit(report)


def test_ping_median_ignores_a_late_packet():
    out = "\n".join(
        f"64 bytes from fec0:106:2500::2: icmp_seq={n} ttl=63 time={t} ms"
        for n, t in enumerate([722, 702, 701.5, 702, 1900, 702.3], 1)
    )
    out += "\nrtt min/avg/max/mdev = 701.462/904.800/1900.000/6.807 ms\n"
    assert ping_median_ms(out) == 702.15


def test_ping_median_without_replies_fails_in_one_line():
    with pytest.raises(AnsibleFilterError, match="found none"):
        ping_median_ms("5 packets transmitted, 0 received, 100% packet loss")
