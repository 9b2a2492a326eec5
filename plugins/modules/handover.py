#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: handover
short_description: Switch the mobile node's WLAN station to another SSID and time the handover
description:
  - Talks to the running wpa_supplicant through its control socket C(CTRL_DIR/INTERFACE) (what
    C(wpa_cli -p CTRL_DIR -i INTERFACE) uses), looks the target network's id up by SSID with
    C(LIST_NETWORKS) and selects it with C(SELECT_NETWORK).
  - The module attaches to wpa_supplicant's events first, records RV(handover_at) just before it
    sends C(SELECT_NETWORK), and RV(associated_at) when the C(CTRL-EVENT-CONNECTED) event of the
    target network arrives; C(STATUS) then has to confirm C(wpa_state=COMPLETED) on the target SSID.
  - With O(mode=break_before_make) (the paper's handover), wpa_supplicant leaves the old network
    itself when the target is selected on O(interface); the time of its C(CTRL-EVENT-DISCONNECTED)
    event is RV(disconnected_at).
  - With O(mode=make_before_break), O(interface) is a second station; the association of
    O(old_interface) is dropped (C(DISCONNECT)) only after O(interface) has associated to the target,
    and RV(disconnected_at) is the time of O(old_interface)'s C(CTRL-EVENT-DISCONNECTED) event.
  - A station already associated to the target SSID is left alone (no change, nothing sent).
  - Run it in the network namespace of the mobile node (on the virtual twin the interpreter wrapper
    does this), on the host where wpa_supplicant runs.
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  ssid:
    description: SSID of the target network; it must be a configured network of O(interface).
    type: str
    required: true
  interface:
    description: Station interface that joins the target network (the name of its control socket).
    type: str
    default: wlan0
  ctrl_dir:
    description: wpa_supplicant's control interface folder (C(ctrl_interface=DIR=...), C(wpa_cli -p)).
    type: path
    required: true
  mode:
    description:
      - V(break_before_make) selects the target on O(interface), which leaves its old network first.
      - V(make_before_break) associates O(interface) first and then drops O(old_interface).
    type: str
    choices: [break_before_make, make_before_break]
    default: break_before_make
  old_interface:
    description:
      - Station interface whose association is dropped after O(interface) has associated.
      - Required with O(mode=make_before_break), an error with O(mode=break_before_make).
    type: str
  timeout:
    description: Seconds to wait for the association to the target network.
    type: float
    default: 10.0
  settle:
    description: Seconds to wait after the association, for example for the care-of address.
    type: float
    default: 0.0
  scan_first:
    description:
      - Scan (C(SCAN)) and wait for C(CTRL-EVENT-SCAN-RESULTS) before RV(handover_at), as a roaming
        station's background scan does. wpa_supplicant then associates from these fresh results
        (younger than its C(scan_res_valid_for_connect), 5 s by default) without scanning during
        the handover, so the handover time no longer includes a scan.
      - The scan waits at most O(timeout) seconds; it is skipped when the station is already on the target.
    type: bool
    default: false
  scan_freqs:
    description:
      - With O(scan_first), scan only these frequencies (MHz), C(SCAN freq=...), normally the target
        network's channel (the lab model's C(scan_freqs)). A scan of one channel takes about 0.1 s on
        the twin's C(mac80211_hwsim) radios, a full scan 10 s; on hardware the saving is smaller but the
        result is the same, as long as the access point is on the channel given.
      - Empty (the default) scans every channel.
    type: list
    elements: int
    default: []
attributes:
  check_mode:
    support: full
    description: Reads the station's state and reports whether it would switch; changes nothing.
  diff_mode:
    support: none
    description: No diff is returned.
"""

EXAMPLES = r"""
- name: Hand the mobile node over to the visited network
  mvpn.lab.handover:
    ssid: VISITME
    interface: wlan0
    ctrl_dir: /run/mvpn-lab/mn/wpa_supplicant
    timeout: 10
    settle: 2
    scan_first: true
    scan_freqs: [2437]  # channel 6, the visited network's
  register: handover

- name: Make before break, with a second station interface
  mvpn.lab.handover:
    ssid: VISITME
    interface: wlan1
    old_interface: wlan0
    mode: make_before_break
    ctrl_dir: /run/mvpn-lab/mn/wpa_supplicant
"""

RETURN = r"""
handover_at:
  description: time.time() just before C(SELECT_NETWORK) was sent; null when nothing was selected.
  returned: always
  type: float
  sample: 1764183901.123456
associated_at:
  description:
    - time.time() when the target network's C(CTRL-EVENT-CONNECTED) event arrived.
    - Null when nothing was selected.
  returned: always
  type: float
  sample: 1764183901.987654
disconnected_at:
  description:
    - time.time() when the C(CTRL-EVENT-DISCONNECTED) event of the association being left arrived
      (of O(interface) with O(mode=break_before_make), of O(old_interface) with O(mode=make_before_break)).
    - Null when no such event was seen (for example when the station was not associated).
  returned: always
  type: float
  sample: 1764183901.130001
duration:
  description: RV(associated_at) - RV(handover_at) in seconds; null when nothing was selected.
  returned: always
  type: float
  sample: 0.864198
from_ssid:
  description:
    - SSID of the association being left, from C(STATUS) before the handover (of O(old_interface) with
      O(mode=make_before_break)); null when there was none.
  returned: always
  type: str
  sample: LOCAL
to_ssid:
  description: The target SSID.
  returned: always
  type: str
  sample: VISITME
bssid:
  description: BSSID of the access point O(interface) is associated with at the end, from C(STATUS).
  returned: always
  type: str
  sample: "02:00:00:00:01:00"
network_id:
  description: wpa_supplicant's id of the target network on O(interface) (from C(LIST_NETWORKS)).
  returned: always
  type: int
  sample: 1
"""

import os
import stat
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mvpn.lab.plugins.module_utils.wpa_ctrl import (
    WpaCtrl,
    WpaCtrlError,
    event_bssid,
    event_network_id,
)

#: wpa_state values of a station that holds no association and does not try to get one.
IDLE_STATES = ("DISCONNECTED", "INACTIVE", "INTERFACE_DISABLED")
#: Seconds to wait for the CTRL-EVENT-DISCONNECTED of old_interface after DISCONNECT.
DISCONNECT_TIMEOUT = 5.0


def open_ctrl(module, ctrl_dir, interface, opened):
    """Connect to wpa_supplicant's control socket of interface and check that it answers."""
    path = os.path.join(ctrl_dir, interface)
    try:
        is_socket = stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        is_socket = False
    if not is_socket:
        module.fail_json(msg="ctrl_dir: no wpa_supplicant control socket %s" % path)
    try:
        ctrl = WpaCtrl(path)
    except WpaCtrlError as exc:
        module.fail_json(msg="ctrl_dir: %s" % exc)
    opened.append(ctrl)
    ask(module, ctrl.ping)
    return ctrl


def ask(module, call, *args):
    """Run one control request, failing the module with a one-line message on error."""
    try:
        return call(*args)
    except WpaCtrlError as exc:
        module.fail_json(msg="ctrl_dir: %s" % exc)


def target_id(module, ctrl, ssid, interface):
    networks = ask(module, ctrl.networks)
    for network in networks:
        if network["ssid"] == ssid:
            return network["id"]
    module.fail_json(
        msg="ssid: %s is not a configured network of %s (configured: %s)"
        % (ssid, interface, ", ".join(n["ssid"] for n in networks) or "none")
    )


def wait_connected(module, ctrl, network, result):
    """Wait for CTRL-EVENT-CONNECTED of network; records disconnected_at and associated_at in result."""
    p = module.params
    deadline = result["handover_at"] + p["timeout"]
    record_disconnect = p["mode"] == "break_before_make"
    while True:
        event = ask(module, ctrl.next_event, deadline - time.time())
        if event is None:
            status = ask(module, ctrl.status)
            module.fail_json(
                msg="timeout: no association to %s within %s s (wpa_state=%s)"
                % (p["ssid"], p["timeout"], status.get("wpa_state", "unknown")),
                **result,
            )
        if event.text.startswith("CTRL-EVENT-DISCONNECTED"):
            if record_disconnect and result["disconnected_at"] is None:
                result["disconnected_at"] = event.received_at
        elif event.text.startswith("CTRL-EVENT-CONNECTED") and event_network_id(event.text) == network:
            result["associated_at"] = event.received_at
            result["duration"] = event.received_at - result["handover_at"]
            result["bssid"] = event_bssid(event.text)
            return


def scan(module, ctrl, result):
    """SCAN and wait for its CTRL-EVENT-SCAN-RESULTS (a scan already running counts too)."""
    p = module.params
    deadline = time.time() + p["timeout"]
    command = "SCAN" + (" freq=%s" % ",".join(str(f) for f in p["scan_freqs"]) if p["scan_freqs"] else "")
    reply = ask(module, ctrl.request, command).strip()
    if reply not in ("OK", "FAIL-BUSY"):
        module.fail_json(
            msg="scan_first: wpa_supplicant on %s answered %s to SCAN" % (p["interface"], reply), **result
        )
    seen = []
    while True:
        event = ask(module, ctrl.next_event, deadline - time.time())
        if event is None:
            # what wpa_supplicant did instead, for the one line that explains the failure
            try:
                state = ctrl.status().get("wpa_state", "?")
            except WpaCtrlError:
                state = "?"
            module.fail_json(
                msg="timeout: no scan results on %s within %s s (SCAN: %s; events: %s; wpa_state=%s)"
                % (p["interface"], p["timeout"], reply, ", ".join(seen[-5:]) or "none", state),
                **result,
            )
        seen.append(event.text.split(" ", 1)[0])
        if event.text.startswith("CTRL-EVENT-SCAN-FAILED"):
            module.fail_json(
                msg="scan_first: the scan on %s failed (%s)" % (p["interface"], event.text), **result
            )
        if event.text.startswith("CTRL-EVENT-SCAN-RESULTS"):
            return


def drop_old(module, old, result):
    """DISCONNECT old_interface and record the time of its CTRL-EVENT-DISCONNECTED event."""
    ask(module, old.attach)
    old.clear_events()
    ask(module, old.request_ok, "DISCONNECT")
    deadline = time.time() + DISCONNECT_TIMEOUT
    while True:
        event = ask(module, old.next_event, deadline - time.time())
        if event is None:
            module.warn(
                "old_interface: no CTRL-EVENT-DISCONNECTED from %s within %s s after DISCONNECT"
                % (module.params["old_interface"], DISCONNECT_TIMEOUT)
            )
            return
        if event.text.startswith("CTRL-EVENT-DISCONNECTED"):
            result["disconnected_at"] = event.received_at
            return


def handover(module, opened):
    p = module.params
    mbb = p["mode"] == "make_before_break"
    ctrl = open_ctrl(module, p["ctrl_dir"], p["interface"], opened)
    old = open_ctrl(module, p["ctrl_dir"], p["old_interface"], opened) if mbb else None

    before = ask(module, ctrl.status)
    network = target_id(module, ctrl, p["ssid"], p["interface"])
    old_before = ask(module, old.status) if mbb else None
    leaving = old_before if mbb else before
    result = dict(
        changed=False,
        handover_at=None,
        associated_at=None,
        disconnected_at=None,
        duration=None,
        from_ssid=leaving.get("ssid") or None,
        to_ssid=p["ssid"],
        bssid=before.get("bssid") or None,
        network_id=network,
    )
    on_target = before.get("wpa_state") == "COMPLETED" and before.get("ssid") == p["ssid"]
    old_dropped = not mbb or old_before.get("wpa_state") in IDLE_STATES
    if on_target and old_dropped:
        return result
    result["changed"] = True
    if module.check_mode:
        return result

    if not on_target:
        ask(module, ctrl.attach)
        ctrl.clear_events()
        if p["scan_first"]:
            scan(module, ctrl, result)
        result["handover_at"] = time.time()
        ask(module, ctrl.request_ok, "SELECT_NETWORK %d" % network)
        wait_connected(module, ctrl, network, result)
        after = ask(module, ctrl.status)
        if after.get("wpa_state") != "COMPLETED" or after.get("ssid") != p["ssid"]:
            module.fail_json(
                msg="ssid: after CTRL-EVENT-CONNECTED, STATUS of %s shows wpa_state=%s ssid=%s, "
                "expected COMPLETED on %s"
                % (p["interface"], after.get("wpa_state"), after.get("ssid"), p["ssid"]),
                **result,
            )
        result["bssid"] = after.get("bssid") or result["bssid"]
    if not old_dropped:
        drop_old(module, old, result)
    if p["settle"] > 0:
        time.sleep(p["settle"])
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ssid=dict(type="str", required=True),
            interface=dict(type="str", default="wlan0"),
            ctrl_dir=dict(type="path", required=True),
            mode=dict(
                type="str", choices=["break_before_make", "make_before_break"], default="break_before_make"
            ),
            old_interface=dict(type="str"),
            timeout=dict(type="float", default=10.0),
            settle=dict(type="float", default=0.0),
            scan_first=dict(type="bool", default=False),
            scan_freqs=dict(type="list", elements="int", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["timeout"] <= 0:
        module.fail_json(msg="timeout: expected a number of seconds > 0, got %s" % p["timeout"])
    if p["settle"] < 0:
        module.fail_json(msg="settle: expected a number of seconds >= 0, got %s" % p["settle"])
    bad = [f for f in p["scan_freqs"] if not 2400 <= f <= 7125]
    if bad:
        module.fail_json(msg="scan_freqs: expected WLAN frequencies in MHz (2400-7125), got %s" % bad)
    if p["mode"] == "break_before_make" and p["old_interface"]:
        module.fail_json(msg="old_interface: only valid with mode=make_before_break")
    if p["mode"] == "make_before_break":
        if not p["old_interface"]:
            module.fail_json(
                msg="old_interface: required with mode=make_before_break (the station to drop afterwards)"
            )
        if p["old_interface"] == p["interface"]:
            module.fail_json(msg="old_interface: must differ from interface (%s)" % p["interface"])
    opened = []
    try:
        result = handover(module, opened)
    finally:
        for ctrl in opened:
            ctrl.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
