"""Milestones and phases against the ground truth of synthetic captures.

Phase durations are drawn at random (fixed seeds), so the expected values are
not written anywhere in the analyser or in these tests: they come from the
capture builder's plan.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from analysis_builder import (
    COA,
    HA,
    HOA,
    MILESTONES,
    Plan,
    Scenario,
    Truth,
    config_entry,
    make_run,
    random_plan,
)
from scapy.layers.inet6 import HAO, MIP6MH_BU, IPv6, IPv6ExtHdrDestOpt

from mvpn_lab.analysis import analyze_run
from mvpn_lab.analysis.analyze import HandoverResult, RunAnalysis
from mvpn_lab.analysis.diagnostics import Diagnostics
from mvpn_lab.analysis.esp import load_keys

TOL = 1e-3  # phases must match the ground truth within 1 ms

CONFIGS = [
    ("ro", "none", "cbc", None),
    ("ro", "transport", "cbc", (0x1101, 0x1102)),
    ("ro", "tunnel", "gcm", (0x1201, 0x1202)),
    ("bt", "none", "cbc", None),
    ("bt", "transport", "gcm", (0x2101, 0x2102)),
    ("bt", "tunnel", "cbc", (0x2201, 0x2202)),
]


def analyse(run_dir: Path, keys: dict[int, Any] | None = None) -> tuple[RunAnalysis, str]:
    err = io.StringIO()
    analysis = analyze_run(run_dir, keys=keys, diag=Diagnostics(stream=err))
    return analysis, err.getvalue()


def assert_matches(got: HandoverResult, truth: Truth) -> None:
    assert got.direction == truth.direction
    for name in MILESTONES:
        want = truth.phases[name]
        have = got.phases[name]
        if want == "n/a" or want is None:
            assert have == want, name
        else:
            assert have == pytest.approx(want, abs=TOL), name
    if truth.total is None:
        assert got.total_s is None
    else:
        assert got.total_s == pytest.approx(truth.total, abs=TOL)
    assert got.data_resumed_s == pytest.approx(truth.data_resumed, abs=TOL)
    assert got.bu_retransmissions == truth.bu_retransmissions


@pytest.fixture(scope="module")
def six_configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """BT and RO, each without IPsec, with ESP transport and with ESP tunnel; away and back home."""
    rng = random.Random(4)
    root = tmp_path_factory.mktemp("six")
    reps: dict[str, list[Scenario]] = {}
    entries = []
    keys_doc: dict[str, Any] = {}
    truths: dict[str, list[Truth]] = {}
    offsets: dict[str, float] = {}
    for mip6, ipsec, esp, spis in CONFIGS:
        offset = rng.uniform(-5.0, 5.0)
        scenario = Scenario(mip6=mip6, ipsec=ipsec, esp=esp, offset=offset, spis=spis or (0x1001, 0x1002))
        scenario.handover(random_plan(rng, "away"))
        scenario.handover(random_plan(rng, "home"))
        scenario.finish()
        entry = config_entry(mip6, ipsec, spis=spis or (0x1001, 0x1002))
        entries.append(entry)
        reps[entry["id"]] = [scenario]
        truths[entry["id"]] = scenario.truths
        offsets[entry["id"]] = offset
        if ipsec != "none":
            keys_doc.update(scenario.keys_document())
    run_dir = make_run(root, reps, entries)
    keys_file = root / "esp-keys.yaml"  # outside the run folder, as keys must be
    keys_file.write_text(yaml.safe_dump(keys_doc))
    return {"run": run_dir, "keys": keys_file, "truths": truths, "offsets": offsets}


def test_every_configuration_matches_the_ground_truth_with_keys(six_configs: dict[str, Any]) -> None:
    analysis, stderr = analyse(six_configs["run"], load_keys(six_configs["keys"]))
    assert stderr == ""
    assert analysis.exit_code == 0
    by_config: dict[str, list[HandoverResult]] = {}
    for h in analysis.handovers:
        by_config.setdefault(h.config.id, []).append(h)
    assert set(by_config) == set(six_configs["truths"])
    for config_id, truths in six_configs["truths"].items():
        got = by_config[config_id]
        assert [h.direction for h in got] == ["away", "home"]
        for handover, truth in zip(got, truths, strict=True):
            assert handover.status == "ok", (config_id, handover.reasons)
            assert_matches(handover, truth)
    for rep in analysis.reps:
        if rep.config.ipsec != "none":
            assert rep.captures["mn"]["decrypted_esp"] > 0, rep.config.id


def test_spi_only_identification_without_keys(six_configs: dict[str, Any]) -> None:
    analysis, _ = analyse(six_configs["run"])
    for rep in analysis.reps:
        assert rep.captures["mn"]["decrypted_esp"] == 0
        for handover, truth in zip(rep.handovers, six_configs["truths"][rep.config.id], strict=True):
            assert_matches(handover, truth)


def test_clock_offset_and_the_cn_view(six_configs: dict[str, Any]) -> None:
    analysis, _ = analyse(six_configs["run"])
    for rep in analysis.reps:
        assert rep.clock is not None
        assert rep.clock.method == "two-way"
        assert rep.clock.offset_s == pytest.approx(six_configs["offsets"][rep.config.id], abs=1e-5)
        assert rep.clock.uncertainty_s == pytest.approx(0.004, abs=1e-4)  # the builder's one-way delay
        for handover, truth in zip(rep.handovers, six_configs["truths"][rep.config.id], strict=True):
            sent = handover.cn["data_resumed_sent_s"]
            assert sent == pytest.approx(truth.cn_data_resumed_sent - truth.t0, abs=1e-4)
            if rep.config.mip6 == "ro":
                assert handover.cn["saw_bu"] is True
                assert handover.cn["bu_cn_received_s"] == pytest.approx(
                    truth.milestones["bu_cn"] + 0.004 - truth.t0, abs=1e-4
                )


def test_route_optimisation_uses_the_tunnel_first(six_configs: dict[str, Any]) -> None:
    """Under RO, data comes back through the HA before the CN binding: data_resumed < total."""
    analysis, _ = analyse(six_configs["run"])
    away = [h for h in analysis.handovers if h.config.mip6 == "ro" and h.direction == "away"]
    assert away
    for h in away:
        assert h.data_resumed_s is not None and h.total_s is not None
        assert h.data_resumed_s < h.milestones["coti"] < h.total_s
        assert h.data_path == "ro"


def _single(tmp_path: Path, scenario: Scenario, mip6: str, ipsec: str = "none", **kw: Any) -> Path:
    entry = config_entry(mip6, ipsec, **kw)
    return make_run(tmp_path, {entry["id"]: [scenario]}, [entry])


def test_router_advertisement_lost_and_sent_again(tmp_path: Path) -> None:
    rng = random.Random(11)
    s = Scenario(mip6="ro")
    truth = s.handover(random_plan(rng, "away", ra_lost=True, ra=rng.uniform(0.8, 1.6)))
    s.finish()
    analysis, _ = analyse(_single(tmp_path, s, "ro"))
    (h,) = analysis.handovers
    assert h.status == "ok"
    assert_matches(h, truth)
    assert any("old prefix" in note for note in h.notes)
    kinds = [sig["kind"] for sig in h.signalling]
    assert kinds.count("ra") == 2


@pytest.mark.parametrize("signalling_spis", [None, (0x1005, 0x1006)])
def test_binding_update_retransmissions(tmp_path: Path, signalling_spis: tuple[int, int] | None) -> None:
    """Retransmitted as the daemon does: a fresh sequence number on every BU (RFC 6275 11.8)."""
    rng = random.Random(12)
    s = Scenario(mip6="bt", signalling_spis=signalling_spis)
    truth = s.handover(
        random_plan(rng, "away", bu_retransmissions=2, retransmit_every=0.4, ba_ha=rng.uniform(1.3, 1.8))
    )
    s.finish()
    analysis, _ = analyse(_single(tmp_path, s, "bt", signalling_spis=signalling_spis))
    (h,) = analysis.handovers
    assert truth.bu_retransmissions == 2
    assert h.bu_retransmissions == 2
    assert h.status == "ok"
    assert_matches(h, truth)
    bus = [sig for sig in h.signalling if sig["kind"] == "bu_ha"]
    assert len(bus) == 3
    if signalling_spis is None:
        assert len({sig["seq"] for sig in bus}) == 3  # each BU its own sequence number


def test_binding_update_refreshes_after_the_ba_are_not_retransmissions(tmp_path: Path) -> None:
    """Only BUs before the accepted BA count: a BU after it (a refresh, a new handover) does not."""
    rng = random.Random(18)
    s = Scenario(mip6="bt")
    truth = s.handover(random_plan(rng, "away", bu_retransmissions=1, retransmit_every=0.3, ba_ha=0.5))
    assert truth.milestones["ba_ha"] is not None
    refresh = MIP6MH_BU(seq=s.bu_seq + 1, flags="AH", mhtime=100)
    s.mn_only(
        truth.milestones["ba_ha"] + 0.2,
        IPv6(src=COA, dst=HA) / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)]) / refresh,
    )
    s.finish()
    analysis, _ = analyse(_single(tmp_path, s, "bt"))
    (h,) = analysis.handovers
    assert [sig["kind"] for sig in h.signalling].count("bu_ha") == 3
    assert h.bu_retransmissions == 1
    assert_matches(h, truth)


def test_binding_acknowledgement_rejected_then_accepted(tmp_path: Path) -> None:
    rng = random.Random(13)
    s = Scenario(mip6="ro")
    truth = s.handover(random_plan(rng, "away", ba_reject=135))
    s.finish()
    analysis, _ = analyse(_single(tmp_path, s, "ro"))
    (h,) = analysis.handovers
    assert h.status == "ok"
    assert h.ba_statuses == [135]
    assert h.bu_retransmissions == truth.bu_retransmissions == 1  # the BU sent again after the 135
    assert any("135" in note for note in h.notes)
    assert_matches(h, truth)


def test_binding_acknowledgement_error_makes_the_handover_incomplete(tmp_path: Path) -> None:
    s = Scenario(mip6="bt")
    s.handover(Plan(ba_fail=129))
    analysis, _ = analyse(_single(tmp_path, s, "bt"))
    (h,) = analysis.handovers
    assert h.status.startswith("incomplete:ba-status-129")  # and no data came after it
    assert h.phases["ba_ha"] is None
    assert analysis.exit_code == 1


@pytest.mark.parametrize("esp", ["cbc", "gcm"])
def test_keys_tell_an_esp_ack_from_data(tmp_path: Path, esp: str) -> None:
    """An ESP packet from the CN without TCP payload: data by SPI alone, not once decrypted."""
    rng = random.Random(14)
    s = Scenario(mip6="ro", ipsec="transport", esp=esp)
    truth = s.handover(random_plan(rng, "away", esp_ack_before_next=True))
    s.finish()
    run_dir = _single(tmp_path, s, "ro", "transport")
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(s.keys_document()))
    with_keys, _ = analyse(run_dir, load_keys(keys_file))
    assert_matches(with_keys.handovers[0], truth)
    without, _ = analyse(run_dir)
    h = without.handovers[0]
    assert truth.esp_ack_at is not None
    assert h.total_s == pytest.approx(truth.esp_ack_at - truth.t0, abs=TOL)


@pytest.mark.parametrize(("mip6", "ipsec"), [("bt", "none"), ("ro", "transport"), ("bt", "tunnel")])
def test_signalling_inside_esp_is_found_by_its_spi(tmp_path: Path, mip6: str, ipsec: str) -> None:
    """BU and BA under ESP (signalling protection): the manifest's signalling SPIs tell them."""
    rng = random.Random(17)
    sig = (0x1005, 0x1006)
    s = Scenario(mip6=mip6, ipsec=ipsec, signalling_spis=sig)
    truths = [s.handover(random_plan(rng, "away")), s.handover(random_plan(rng, "home"))]
    s.finish()
    analysis, _ = analyse(_single(tmp_path, s, mip6, ipsec, signalling_spis=sig))
    assert [h.status for h in analysis.handovers] == ["ok", "ok"]
    for h, truth in zip(analysis.handovers, truths, strict=True):
        assert_matches(h, truth)
    # without the SPIs in the manifest the BU and BA are not seen: the check above can fail
    blind, _ = analyse(_single(tmp_path / "blind", s, mip6, ipsec))
    assert all(h.phases["bu_ha"] is None for h in blind.handovers)


def test_wrong_key_falls_back_to_spi_and_warns(tmp_path: Path) -> None:
    rng = random.Random(15)
    s = Scenario(mip6="bt", ipsec="tunnel")
    truth = s.handover(random_plan(rng, "away"))
    s.finish()
    run_dir = _single(tmp_path, s, "bt", "tunnel")
    for part in ("enc", "auth"):  # a wrong encryption key, then a wrong authentication key
        doc = s.keys_document()
        for entry in doc.values():
            entry[part]["key"] = "0x" + "ab" * (16 if part == "enc" else 20)
        keys_file = tmp_path / f"keys-{part}.yaml"
        keys_file.write_text(yaml.safe_dump(doc))
        analysis, stderr = analyse(run_dir, load_keys(keys_file))
        assert "could not be decrypted" in stderr and "mn.pcap" in stderr
        assert analysis.reps[0].captures["mn"]["decrypted_esp"] == 0
        assert_matches(analysis.handovers[0], truth)


def test_large_clock_offset_like_separate_hardware(tmp_path: Path) -> None:
    rng = random.Random(16)
    s = Scenario(mip6="ro", offset=-3600.25, delay=0.0125)
    truths = [s.handover(random_plan(rng, "away")), s.handover(random_plan(rng, "home"))]
    s.finish()
    analysis, _ = analyse(_single(tmp_path, s, "ro"))
    clock = analysis.reps[0].clock
    assert clock is not None
    assert clock.offset_s == pytest.approx(-3600.25, abs=1e-5)
    assert clock.uncertainty_s == pytest.approx(0.0125, abs=1e-4)
    for h, truth in zip(analysis.handovers, truths, strict=True):
        assert_matches(h, truth)  # the MN's clock alone decides the phases
        assert h.cn["data_resumed_sent_s"] == pytest.approx(truth.cn_data_resumed_sent - truth.t0, abs=1e-4)


def test_cn_capture_without_common_packets_gives_no_cn_times(tmp_path: Path) -> None:
    s = Scenario(mip6="bt")
    truth = s.handover(Plan())
    s.finish()
    s.cn = []  # an empty (but valid) CN capture
    analysis, stderr = analyse(_single(tmp_path, s, "bt"))
    assert "clock offset unknown" in stderr
    (h,) = analysis.handovers
    assert h.cn["data_resumed_sent_s"] is None
    assert_matches(h, truth)


def test_milestones_are_only_searched_until_the_next_handover(tmp_path: Path) -> None:
    s = Scenario(mip6="bt")
    truth = s.handover(Plan(ra=0.5, bu_ha=0.02, ba_ha=0.4, next_tcp=0.3))
    s.finish()
    run_dir = _single(tmp_path, s, "bt")
    events_path = next(run_dir.rglob("events.json"))
    events = json.loads(events_path.read_text())
    cut = truth.t0 + 0.5 + 0.02 + 0.2  # between the BU and the BA
    events["handovers"].append({"handover_at": cut, "from_ssid": "VISITME", "to_ssid": "LOCAL"})
    events_path.write_text(json.dumps(events))
    analysis, _ = analyse(run_dir)
    first, second = analysis.handovers
    assert first.phases["ra"] == pytest.approx(0.5, abs=TOL)
    assert first.phases["ba_ha"] is None
    assert "missing-ba_ha" in first.status
    assert second.direction == "home"
    assert second.phases["ra"] is None  # the only RA (foreign prefix) was in the first window


def test_link_types_give_identical_results(tmp_path: Path) -> None:
    rng = random.Random(17)
    s = Scenario(mip6="ro")
    truths = [s.handover(random_plan(rng, "away")), s.handover(random_plan(rng, "home"))]
    s.finish()
    for linktype, fmt in ((113, "pcap"), (276, "pcap"), (101, "pcap"), (1, "pcapng")):
        run_dir = _single(tmp_path / f"lt{linktype}{fmt}", s, "ro")
        rep = next(run_dir.rglob("rep-01"))
        (rep / "mn.pcap").unlink()
        s.write(rep, cn=False, linktype=linktype, fmt=fmt)
        analysis, stderr = analyse(run_dir)
        assert stderr == ""
        for h, truth in zip(analysis.handovers, truths, strict=True):
            assert h.status == "ok"
            assert_matches(h, truth)


def test_capture_losses_reported_by_tcpdump_are_noted(tmp_path: Path) -> None:
    """events.json carries tcpdump's counts: drops are warned about, kept in the result and, beside
    a handover that misses a message, named as a possible cause (the message may have arrived)."""
    s = Scenario(mip6="bt")
    truth = s.handover(Plan(ra=0.5, bu_ha=0.02, ba_ha=0.4, next_tcp=0.3))
    s.finish()
    run_dir = _single(tmp_path, s, "bt")
    events_path = next(run_dir.rglob("events.json"))
    events = json.loads(events_path.read_text())
    cut = truth.t0 + 0.5 + 0.02 + 0.2  # between the BU and the BA: the first handover misses its BA
    events["handovers"].append({"handover_at": cut, "from_ssid": "VISITME", "to_ssid": "LOCAL"})
    events["captures"] = {
        "mn": {"packets_captured": 900, "packets_received": 907, "packets_dropped": 7},
        "cn": {"packets_captured": 300, "packets_received": 300, "packets_dropped": 0},
        "ha": "not a mapping",
    }
    events_path.write_text(json.dumps(events))
    analysis, stderr = analyse(run_dir)
    first, second = analysis.handovers
    assert "missing-ba_ha" in first.status
    assert any("MN capture lost 7 packet(s)" in note for note in first.notes)
    assert "missing-" in second.status and any("MN capture lost 7" in note for note in second.notes)
    assert "tcpdump lost 7 packet(s)" in stderr and "mn.pcap" in stderr
    assert "tcpdump lost 0" not in stderr
    (rep,) = analysis.reps
    assert rep.captures["mn"]["packets_dropped"] == 7
    assert rep.captures["cn"]["packets_dropped"] == 0


def test_capture_losses_beside_a_complete_handover_are_only_warned_about(tmp_path: Path) -> None:
    s = Scenario(mip6="bt")
    s.handover(Plan())
    s.finish()
    run_dir = _single(tmp_path, s, "bt")
    events_path = next(run_dir.rglob("events.json"))
    events = json.loads(events_path.read_text())
    events["captures"] = {"mn": {"packets_dropped": 3}}
    events_path.write_text(json.dumps(events))
    analysis, stderr = analyse(run_dir)
    (h,) = analysis.handovers
    assert h.status == "ok" and not any("capture lost" in n for n in h.notes)
    assert "tcpdump lost 3 packet(s)" in stderr


def test_no_capture_counts_no_capture_notes(tmp_path: Path) -> None:
    s = Scenario(mip6="bt")
    s.handover(Plan())
    s.finish()
    analysis, stderr = analyse(_single(tmp_path, s, "bt"))
    (h,) = analysis.handovers
    assert h.status == "ok" and not any("capture lost" in n for n in h.notes)
    assert "packets_dropped" not in analysis.reps[0].captures["mn"]
    assert "tcpdump lost" not in stderr


@pytest.mark.parametrize("mip6", ["bt", "ro"])
def test_data_resumes_over_the_new_path_only(tmp_path: Path, mip6: str) -> None:
    """Data still arriving over the path left (going away: straight to the home address; coming
    home: tunnelled to the old care-of address) right after t0 is not the data resuming."""
    rng = random.Random(19)
    s = Scenario(mip6=mip6)
    truths = [
        s.handover(random_plan(rng, "away", old_path_data=3)),
        s.handover(random_plan(rng, "home", old_path_data=3)),
    ]
    s.finish()
    analysis, _ = analyse(_single(tmp_path, s, mip6))
    for h, truth in zip(analysis.handovers, truths, strict=True):
        assert h.status == "ok"
        assert truth.data_resumed is not None and truth.data_resumed > 0.5  # not the old path's 0.01 s
        assert_matches(h, truth)
