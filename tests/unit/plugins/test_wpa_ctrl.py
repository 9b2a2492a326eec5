"""module_utils.wpa_ctrl against a fake wpa_supplicant on a real UNIX datagram socket."""

from __future__ import annotations

import os
import socket
import time

import pytest
from ansible_collections.mvpn.lab.plugins.module_utils import wpa_ctrl
from ansible_collections.mvpn.lab.plugins.module_utils.wpa_ctrl import (
    WpaCtrl,
    WpaCtrlError,
    WpaCtrlTimeout,
)

CONNECTED = "CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=1 id_str=VISITME]"


def test_parse_event():
    event = wpa_ctrl.parse_event("<3>" + CONNECTED + "\n", 12.5)
    assert event == wpa_ctrl.Event(3, CONNECTED, 12.5)
    assert wpa_ctrl.parse_event("OK\n") is None
    assert wpa_ctrl.parse_event("bssid=02:00:00:00:01:00\nwpa_state=COMPLETED\n") is None
    assert wpa_ctrl.event_network_id(CONNECTED) == 1
    assert wpa_ctrl.event_network_id("CTRL-EVENT-SCAN-STARTED ") is None
    assert wpa_ctrl.event_bssid(CONNECTED) == "02:00:00:00:01:00"
    assert wpa_ctrl.event_bssid("CTRL-EVENT-DISCONNECTED bssid=02:00:00:00:00:00 reason=3") == (
        "02:00:00:00:00:00"
    )


def test_parse_status_and_networks():
    status = wpa_ctrl.parse_status("bssid=02:00:00:00:00:00\nssid=LOCAL\nwpa_state=COMPLETED\n")
    assert status == {"bssid": "02:00:00:00:00:00", "ssid": "LOCAL", "wpa_state": "COMPLETED"}
    networks = wpa_ctrl.parse_networks(
        "network id / ssid / bssid / flags\n0\tLOCAL\tany\t[CURRENT]\n1\tVISIT ME\tany\t[DISABLED]\n"
    )
    assert networks == [
        {"id": 0, "ssid": "LOCAL", "bssid": "any", "flags": "[CURRENT]"},
        {"id": 1, "ssid": "VISIT ME", "bssid": "any", "flags": "[DISABLED]"},
    ]
    assert wpa_ctrl.parse_networks("network id / ssid / bssid / flags\n") == []


def test_commands_against_the_fake(fake_wpa, wpa_dirs):
    fake = fake_wpa()
    with WpaCtrl(fake.path) as ctrl:
        ctrl.ping()
        assert ctrl.status()["ssid"] == "LOCAL"
        assert [n["ssid"] for n in ctrl.networks()] == ["LOCAL", "VISITME"]
        assert ctrl.request("BOGUS") == "UNKNOWN COMMAND\n"
        with pytest.raises(WpaCtrlError, match="answered FAIL to SELECT_NETWORK 7"):
            ctrl.request_ok("SELECT_NETWORK 7")
    assert fake.command_names() == ["PING", "STATUS", "LIST_NETWORKS", "BOGUS", "SELECT_NETWORK 7"]


def test_events_are_separated_from_replies(fake_wpa):
    fake = fake_wpa(noise=True)
    with WpaCtrl(fake.path) as ctrl:
        ctrl.attach()
        # noise: a scan event arrives before every reply; it is queued, never taken as the reply
        status = ctrl.status()
        assert status["wpa_state"] == "COMPLETED"
        assert [e.text for e in ctrl.events] == ["CTRL-EVENT-SCAN-STARTED ", "CTRL-EVENT-SCAN-STARTED "]
        ctrl.clear_events()
        before = time.time()
        ctrl.request_ok("SELECT_NETWORK 1")
        texts = []
        while True:
            event = ctrl.next_event(2.0)
            assert event is not None, texts
            assert event.received_at >= before
            texts.append(event.text)
            if event.text.startswith("CTRL-EVENT-CONNECTED"):
                break
    assert texts[0] == "CTRL-EVENT-SCAN-STARTED "
    assert any(t.startswith("CTRL-EVENT-DISCONNECTED bssid=02:00:00:00:00:00") for t in texts)
    assert texts[-1] == CONNECTED
    assert fake.command_names()[-1] == "DETACH", "close() must detach"
    assert fake.monitors == []


def test_next_event_times_out(fake_wpa):
    fake = fake_wpa()
    with WpaCtrl(fake.path) as ctrl:
        ctrl.attach()
        start = time.monotonic()
        assert ctrl.next_event(0.2) is None
        assert 0.15 < time.monotonic() - start < 10


def test_request_times_out(fake_wpa):
    fake = fake_wpa(silent=True)
    with WpaCtrl(fake.path, timeout=0.2) as ctrl:
        start = time.monotonic()
        with pytest.raises(WpaCtrlTimeout, match=r"did not answer PING within 0\.2 s"):
            ctrl.ping()
        assert time.monotonic() - start < 10


def test_client_socket_is_removed(fake_wpa, wpa_dirs):
    fake = fake_wpa()
    clients = wpa_dirs[1]
    ctrl = WpaCtrl(fake.path)
    names = os.listdir(clients)
    assert len(names) == 1 and names[0].startswith(f"mvpn-wpa-ctrl-{os.getpid()}-")
    ctrl.attach()
    ctrl.close()
    ctrl.close()  # twice is fine
    assert os.listdir(clients) == []


def test_missing_socket_leaves_nothing_behind(wpa_dirs):
    ctrl_dir, clients = wpa_dirs
    with pytest.raises(WpaCtrlError, match=r"cannot connect to .*/wlan9"):
        WpaCtrl(str(ctrl_dir / "wlan9"))
    assert os.listdir(clients) == []


def test_dead_server_socket_is_an_error(wpa_dirs):
    ctrl_dir, clients = wpa_dirs
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(ctrl_dir / "wlan0"))
    stale.close()  # the file stays, nobody listens: like a crashed wpa_supplicant
    with pytest.raises(WpaCtrlError, match="Connection refused"):
        WpaCtrl(str(ctrl_dir / "wlan0"))
    assert os.listdir(clients) == []
