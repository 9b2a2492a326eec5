"""mvpn.lab.handover run in-process against fake wpa_supplicants (see _fakewpa.FakeWpa)."""

from __future__ import annotations

import os

import pytest
from ansible_collections.mvpn.lab.plugins.module_utils import wpa_ctrl
from ansible_collections.mvpn.lab.plugins.modules import handover


def args(wpa_dirs, **extra):
    return dict({"ssid": "VISITME", "ctrl_dir": str(wpa_dirs[0])}, **extra)


def test_break_before_make(fake_wpa, wpa_dirs, run_module):
    fake = fake_wpa(assoc_delay=0.15)
    result = run_module(handover, args(wpa_dirs))
    assert result["changed"] is True
    assert result["from_ssid"] == "LOCAL" and result["to_ssid"] == "VISITME"
    assert result["network_id"] == 1
    assert result["bssid"] == "02:00:00:00:01:00"
    # ATTACH before SELECT_NETWORK, the id looked up by SSID; STATUS confirms; DETACH at the end
    names = fake.command_names()
    assert names.index("ATTACH") < names.index("SELECT_NETWORK 1") < len(names) - 2
    assert names.index("LIST_NETWORKS") < names.index("SELECT_NETWORK 1")
    assert names[-2:] == ["STATUS", "DETACH"]
    assert fake.state == "COMPLETED" and fake.current == "VISITME"
    # the timeline: handover_at just before SELECT_NETWORK, then the drop, then the association
    assert result["handover_at"] <= fake.time_of("SELECT_NETWORK")
    assert fake.time_of("SELECT_NETWORK") - result["handover_at"] < 2
    assert result["handover_at"] < result["disconnected_at"] < result["associated_at"]
    assert result["associated_at"] >= fake.event_time("CTRL-EVENT-CONNECTED")
    assert result["duration"] == pytest.approx(result["associated_at"] - result["handover_at"])
    assert 0.15 <= result["duration"] < 10
    assert os.listdir(wpa_dirs[1]) == [], "client socket left behind"


def test_network_id_is_looked_up_not_assumed(fake_wpa, wpa_dirs, run_module):
    fake = fake_wpa(networks=("VISITME", "LOCAL"), current="LOCAL")
    result = run_module(handover, args(wpa_dirs))
    assert result["network_id"] == 0
    assert "SELECT_NETWORK 0" in fake.command_names()
    assert fake.current == "VISITME"


def test_events_of_other_networks_and_noise_are_ignored(fake_wpa, wpa_dirs, run_module):
    fake = fake_wpa(noise=True, spurious_connect=True, assoc_delay=0.1)
    result = run_module(handover, args(wpa_dirs))
    spurious = fake.event_time("CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:00:00")
    real = fake.event_time("CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00")
    assert spurious < real <= result["associated_at"]
    assert result["bssid"] == "02:00:00:00:01:00"


def test_already_on_target_sends_nothing(fake_wpa, wpa_dirs, run_module):
    fake = fake_wpa(current="VISITME")
    result = run_module(handover, args(wpa_dirs))
    assert result["changed"] is False
    assert result["handover_at"] is None and result["associated_at"] is None
    assert result["disconnected_at"] is None and result["duration"] is None
    assert result["from_ssid"] == result["to_ssid"] == "VISITME"
    assert fake.command_names() == ["PING", "STATUS", "LIST_NETWORKS"]


def test_second_run_is_idempotent(fake_wpa, wpa_dirs, run_module):
    fake = fake_wpa()
    assert run_module(handover, args(wpa_dirs))["changed"] is True
    fake.commands.clear()
    assert run_module(handover, args(wpa_dirs))["changed"] is False
    assert not [c for c in fake.command_names() if c.startswith(("SELECT", "ATTACH", "DISCONNECT"))]


def test_check_mode_sends_nothing(fake_wpa, wpa_dirs, run_module):
    fake = fake_wpa()
    result = run_module(handover, args(wpa_dirs), check=True)
    assert result["changed"] is True
    assert result["handover_at"] is None
    assert fake.command_names() == ["PING", "STATUS", "LIST_NETWORKS"]
    assert fake.current == "LOCAL"


def test_timeout(fake_wpa, wpa_dirs, run_module):
    fake = fake_wpa(reachable=["LOCAL"])
    result = run_module(handover, args(wpa_dirs, timeout=0.3))
    assert result["failed"] is True
    assert result["msg"] == "timeout: no association to VISITME within 0.3 s (wpa_state=SCANNING)"
    assert result["handover_at"] is not None and result["associated_at"] is None
    assert fake.command_names()[-1] == "DETACH"
    assert os.listdir(wpa_dirs[1]) == []


def test_unknown_ssid(fake_wpa, wpa_dirs, run_module):
    fake = fake_wpa(networks=("LOCAL",))
    result = run_module(handover, args(wpa_dirs))
    assert result["msg"] == "ssid: VISITME is not a configured network of wlan0 (configured: LOCAL)"
    assert "SELECT_NETWORK" not in " ".join(fake.command_names())


def test_missing_control_socket(wpa_dirs, run_module):
    result = run_module(handover, args(wpa_dirs, interface="wlan7"))
    assert result["msg"] == f"ctrl_dir: no wpa_supplicant control socket {wpa_dirs[0]}/wlan7"


def test_wpa_supplicant_not_answering(fake_wpa, wpa_dirs, run_module, monkeypatch):
    fake_wpa(silent=True)
    monkeypatch.setattr(wpa_ctrl, "DEFAULT_TIMEOUT", 0.2)
    result = run_module(handover, args(wpa_dirs))
    assert result["failed"] is True
    assert result["msg"] == (
        f"ctrl_dir: wpa_supplicant on {wpa_dirs[0]}/wlan0 did not answer PING within 0.2 s"
    )
    assert os.listdir(wpa_dirs[1]) == []


def test_make_before_break(fake_wpa, wpa_dirs, run_module):
    old = fake_wpa("wlan0", current="LOCAL")
    new = fake_wpa("wlan1", current=None, assoc_delay=0.1)
    result = run_module(
        handover, args(wpa_dirs, interface="wlan1", old_interface="wlan0", mode="make_before_break")
    )
    assert result["changed"] is True
    assert result["from_ssid"] == "LOCAL" and result["to_ssid"] == "VISITME"
    assert new.current == "VISITME" and old.state == "DISCONNECTED"
    # the old association is dropped only after the new one is up
    assert old.time_of("DISCONNECT") >= new.event_time("CTRL-EVENT-CONNECTED")
    assert result["handover_at"] < result["associated_at"] < result["disconnected_at"]
    assert "SELECT_NETWORK" not in " ".join(old.command_names())
    assert old.command_names()[-1] == "DETACH" and new.command_names()[-1] == "DETACH"
    again = run_module(
        handover, args(wpa_dirs, interface="wlan1", old_interface="wlan0", mode="make_before_break")
    )
    assert again["changed"] is False


def test_make_before_break_only_drops_when_already_on_target(fake_wpa, wpa_dirs, run_module):
    old = fake_wpa("wlan0", current="LOCAL")
    new = fake_wpa("wlan1", current="VISITME")
    result = run_module(
        handover, args(wpa_dirs, interface="wlan1", old_interface="wlan0", mode="make_before_break")
    )
    assert result["changed"] is True
    assert result["handover_at"] is None and result["disconnected_at"] is not None
    assert "SELECT_NETWORK" not in " ".join(new.command_names())
    assert "DISCONNECT" in old.command_names()


@pytest.mark.parametrize(
    "extra, msg",
    [
        ({"old_interface": "wlan1"}, "old_interface: only valid with mode=make_before_break"),
        (
            {"mode": "make_before_break"},
            "old_interface: required with mode=make_before_break (the station to drop afterwards)",
        ),
        (
            {"mode": "make_before_break", "old_interface": "wlan0"},
            "old_interface: must differ from interface (wlan0)",
        ),
        ({"timeout": 0}, "timeout: expected a number of seconds > 0, got 0.0"),
        ({"settle": -1}, "settle: expected a number of seconds >= 0, got -1.0"),
    ],
)
def test_bad_options(fake_wpa, wpa_dirs, run_module, extra, msg):
    fake = fake_wpa()
    result = run_module(handover, args(wpa_dirs, **extra))
    assert result["msg"] == msg
    assert fake.commands == []


def test_settle_waits_after_association(fake_wpa, wpa_dirs, run_module):
    import time

    fake_wpa()
    start = time.time()
    result = run_module(handover, args(wpa_dirs, settle=0.3))
    assert time.time() - result["associated_at"] >= 0.3
    assert time.time() - start >= 0.3


def test_scan_first_scans_before_the_handover_starts(fake_wpa, wpa_dirs, run_module):
    fake = fake_wpa(scan_delay=0.2)
    result = run_module(handover, args(wpa_dirs, scan_first=True))
    names = fake.command_names()
    assert names.index("ATTACH") < names.index("SCAN") < names.index("SELECT_NETWORK 1")
    # the scan is not part of the handover: handover_at comes after its results
    assert result["handover_at"] >= fake.event_time("CTRL-EVENT-SCAN-RESULTS")
    assert fake.current == "VISITME"


def test_scan_first_without_results_times_out(fake_wpa, wpa_dirs, run_module):
    fake = fake_wpa(scan_results=False)
    result = run_module(handover, args(wpa_dirs, scan_first=True, timeout=0.3))
    assert result["failed"] is True
    assert result["msg"].startswith("timeout: no scan results on wlan0")
    assert "(SCAN: OK; events: " in result["msg"] and "wpa_state=COMPLETED)" in result["msg"], result["msg"]
    assert "SELECT_NETWORK 1" not in fake.command_names()
    # the playbook records a failed handover from these, so they are there even on failure
    assert result["handover_at"] is None and result["to_ssid"] == "VISITME" and result["from_ssid"] == "LOCAL"


def test_scan_first_is_skipped_on_the_target(fake_wpa, wpa_dirs, run_module):
    fake = fake_wpa(current="VISITME")
    assert run_module(handover, args(wpa_dirs, scan_first=True))["changed"] is False
    assert "SCAN" not in fake.command_names()


def test_scan_freqs_scans_only_the_target_s_channel(fake_wpa, wpa_dirs, run_module):
    fake = fake_wpa(scan_delay=0.05)
    result = run_module(handover, args(wpa_dirs, scan_first=True, scan_freqs=[2437, 2412]))
    assert "SCAN freq=2437,2412" in fake.command_names()
    assert "SCAN" not in fake.command_names()  # never a full scan as well
    assert result["handover_at"] >= fake.event_time("CTRL-EVENT-SCAN-RESULTS")


def test_scan_freqs_bad_input_is_one_line(fake_wpa, wpa_dirs, run_module):
    fake = fake_wpa()
    result = run_module(handover, args(wpa_dirs, scan_first=True, scan_freqs=[6, 2437]))
    assert result["failed"]
    assert result["msg"] == "scan_freqs: expected WLAN frequencies in MHz (2400-7125), got [6]"
    assert "SELECT_NETWORK 1" not in fake.command_names()
