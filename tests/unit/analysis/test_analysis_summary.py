"""Statistics, matching the paper's rows, and the milestone rules on hand-made signalling."""

from __future__ import annotations

import math
import statistics

import pytest

from mvpn_lab.analysis.phases import find_milestones, required_milestones
from mvpn_lab.analysis.rundir import Configuration, parse_config_id
from mvpn_lab.analysis.signals import DataHit, Signal
from mvpn_lab.analysis.summary import describe, load_paper, paper_row, paper_test, t975


def test_describe_matches_textbook_values() -> None:
    values = [4.25, 8.84, 6.1, 7.0, 5.5]
    d = describe(values)
    assert d["mean"] == pytest.approx(statistics.fmean(values))
    assert d["median"] == 6.1
    sd = statistics.stdev(values)
    assert d["stdev"] == pytest.approx(sd)
    half = 2.776 * sd / math.sqrt(5)  # t(0.975, 4)
    assert d["ci95"] == pytest.approx([d["mean"] - half, d["mean"] + half])
    assert describe([3.0])["ci95"] is None and describe([3.0])["stdev"] is None
    assert describe([])["mean"] is None


def test_t_quantiles() -> None:
    assert t975(1) == 12.706
    assert t975(30) == 2.042
    assert 2.021 > t975(50) > 2.000
    assert t975(10_000) == pytest.approx(1.960, abs=0.001)


def _config(mip6: str, ipsec: str, profile: str = "wlan") -> Configuration:
    return Configuration(f"mip6-{mip6}_ipsec-{ipsec}_md-ra", mip6, ipsec, "ra", profile)


def test_paper_rows() -> None:
    paper = load_paper()
    assert paper["test2_wlan_horizontal"]["results"][0]["avg"] == 6.96
    row = paper_row("test2_wlan_horizontal", _config("ro", "none"))
    assert row is not None and (row["avg"], row["test"]) == (6.96, "test2_wlan_horizontal")
    # "any" rows match both modes; an exact row wins over "any"
    assert paper_row("horizontal", _config("bt", "transport"))["mip6"] == "any"  # type: ignore[index]
    assert paper_row("test3", _config("bt", "transport"))["avg"] == 7.56  # type: ignore[index]
    # by profile when the test name says nothing
    assert paper_row("handover", _config("ro", "tunnel", "umts"))["avg"] == 12.6  # type: ignore[index]
    assert paper_row("test1_validation", _config("ro", "none")) is None
    assert paper_row("test4_wlan_umts_vertical", _config("bt", "tunnel", "umts")) is None
    assert paper_test("whatever", "gprs") == "test3_wlan_gprs_vertical"


def test_config_id_parsing() -> None:
    assert parse_config_id("mip6-ro_ipsec-none_md-l2") == {"mip6": "ro", "ipsec": "none", "md": "l2"}


# -- milestone rules ------------------------------------------------------------------------------
T0 = 100.0


def _sig(kind: str, ts: float, index: int, **kw: object) -> Signal:
    return Signal(kind, T0 + ts, index, **kw)  # type: ignore[arg-type]


def _data(ts: float, index: int) -> DataHit:
    return DataHit(T0 + ts, index, None, "ro")


def test_each_milestone_is_the_first_after_the_previous_one() -> None:
    start = Signal("t0", T0, 0)
    start.next_data = _data(0.05, 1)  # a late packet of the old path right after t0
    signals = [
        _sig("bu_ha", 0.1, 2, seq=7),  # before the RA: not the milestone
        _sig("ra", 0.5, 3, new_prefix=False),  # the old prefix
        _sig("ra", 0.8, 4),
        _sig("bu_ha", 0.82, 5, seq=8),
        _sig("ba_ha", 0.9, 6, seq=7, status=0),  # answers the BU before the RA: not ours
        _sig("ba_ha", 1.0, 7, seq=8, status=0),
        _sig("coti", 1.1, 8, cookie=b"a" * 8),
        _sig("cot", 1.15, 9, cookie=b"x" * 8),  # a stale CoT
        _sig("cot", 1.2, 10, cookie=b"a" * 8),
        _sig("bu_cn", 1.3, 11),
    ]
    signals[-1].next_data = _data(1.5, 12)
    r = find_milestones(signals, T0, start, "ro", "away")
    assert r.reasons == []
    want = {"ra": 0.8, "bu_ha": 0.02, "ba_ha": 0.18, "coti": 0.1, "cot": 0.1, "bu_cn": 0.1, "next_tcp": 0.2}
    assert r.phases == pytest.approx(want)
    assert r.total_s == pytest.approx(1.5)
    assert r.data_resumed_s == pytest.approx(0.05)
    assert any("old prefix" in n for n in r.notes) and any("before the RA" in n for n in r.notes)


def test_missing_milestones_are_skipped_and_reported() -> None:
    start = Signal("t0", T0, 0)
    signals = [_sig("ra", 0.4, 1), _sig("bu_ha", 0.5, 2, seq=1), _sig("ba_ha", 0.7, 3, seq=1, status=0)]
    signals[-1].next_data = _data(0.9, 4)  # no route optimisation happened at all
    r = find_milestones(signals, T0, start, "ro", "away")
    assert r.reasons == ["missing-coti", "missing-cot", "missing-bu_cn"]
    assert r.phases["next_tcp"] == pytest.approx(0.2)  # since the last milestone present (the BA)
    assert r.total_s == pytest.approx(0.9)
    home = find_milestones(signals, T0, start, "ro", "home")
    assert home.reasons == ["missing-bu_cn"]
    bt = find_milestones(signals, T0, start, "bt", "away")
    assert bt.reasons == [] and bt.phases["coti"] == "n/a"


def test_accepted_status_is_a_note_and_rejection_without_retry_is_incomplete() -> None:
    start = Signal("t0", T0, 0)
    signals = [_sig("ra", 0.1, 1), _sig("bu_ha", 0.2, 2, seq=3), _sig("ba_ha", 0.3, 3, seq=3, status=1)]
    signals[-1].next_data = _data(0.4, 4)
    ok = find_milestones(signals, T0, start, "bt", "away")
    assert ok.reasons == [] and ok.ba_statuses == [1] and any("status 1" in n for n in ok.notes)
    rejected = [_sig("ra", 0.1, 1), _sig("bu_ha", 0.2, 2, seq=3), _sig("ba_ha", 0.3, 3, seq=3, status=132)]
    for sig in rejected:  # as the scanner does: every signal waiting gets the next data packet
        sig.next_data = _data(0.4, 4)
    bad = find_milestones(rejected, T0, start, "bt", "away")
    assert bad.reasons == ["ba-status-132"]
    assert bad.phases["ba_ha"] is None


def test_required_milestones() -> None:
    assert required_milestones("bt", "away") == ("ra", "bu_ha", "ba_ha", "next_tcp")
    assert "coti" in required_milestones("ro", "away")
    assert "coti" not in required_milestones("ro", "home")


def test_a_bu_from_the_new_prefix_before_the_ra_means_no_ra_phase() -> None:
    # RA caching: the MN knows the visited prefix and sends the BU at link-up, before the RA
    start = Signal("t0", T0, 0)
    signals = [
        _sig("bu_ha", 0.2, 2, seq=8, source="fec0:106:1100::f0b6"),
        _sig("ba_ha", 0.3, 3, seq=8, status=0),
        _sig("ra", 0.4, 4, prefixes=("fec0:106:1100::/64",)),
    ]
    signals[1].next_data = _data(0.45, 5)
    r = find_milestones(signals, T0, start, "bt", "away")
    assert r.reasons == [] and r.times["ra"] is None
    assert r.phases["ra"] == "n/a"
    assert r.phases["bu_ha"] == pytest.approx(0.2) and r.phases["ba_ha"] == pytest.approx(0.1)
    assert r.total_s == pytest.approx(0.45)
    assert any("prefix cache" in n for n in r.notes)
    # back home: the deregistration from the home address, before the home RA
    home = [
        _sig("bu_ha", 0.1, 2, seq=9, source="fec0:106:2700::f0b6"),
        _sig("ba_ha", 0.2, 3, seq=9, status=0),
        _sig("ra", 0.3, 4, prefixes=("fec0:106:2700::/64",)),
    ]
    home[1].next_data = _data(0.25, 5)
    r = find_milestones(home, T0, Signal("t0", T0, 0), "bt", "home")
    assert r.reasons == [] and r.phases["ra"] == "n/a" and r.total_s == pytest.approx(0.25)
    # a BU from another prefix before the RA is not the milestone (the RA is still needed)
    other = [
        _sig("bu_ha", 0.1, 2, seq=9, source="fec0:106:3300::f0b6"),
        _sig("ra", 0.3, 4, prefixes=("fec0:106:1100::/64",)),
    ]
    r = find_milestones(other, T0, Signal("t0", T0, 0), "bt", "away")
    assert r.times["ra"] == pytest.approx(T0 + 0.3) and "missing-bu_ha" in r.reasons
    # foreign to foreign: a BU from the old care-of address, then the new one, then the RA
    moved = [
        _sig("bu_ha", 0.05, 2, seq=10, source="fec0:106:3300::f0b6"),
        _sig("bu_ha", 0.2, 3, seq=11, source="fec0:106:1100::f0b6"),
        _sig("ba_ha", 0.3, 4, seq=11, status=0),
        _sig("ra", 0.4, 5, prefixes=("fec0:106:1100::/64",)),
    ]
    moved[2].next_data = _data(0.35, 6)
    r = find_milestones(moved, T0, Signal("t0", T0, 0), "bt", "away")
    assert r.reasons == [] and r.phases["ra"] == "n/a"
    assert r.times["bu_ha"] == pytest.approx(T0 + 0.2) and r.total_s == pytest.approx(0.35)
