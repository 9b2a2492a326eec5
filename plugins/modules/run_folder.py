#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: run_folder
short_description: Create, resume and finish a test run's result folder
description:
  - With O(state=started), creates C(BASE/TEST/UTC-TIMESTAMP/) and writes C(manifest.json). A folder is
    never reused; if the timestamp's folder exists, a suffix C(-2), C(-3)... is added.
  - With O(state=resumed), reopens an interrupted run folder O(path) of test O(test). A repetition
    C(CONFIG/rep-NN/) is complete when it holds C(events.json) (the playbook writes it last); every
    repetition folder without it is set aside, renamed C(rep-NN.interrupted-UTC-TIMESTAMP) (suffix C(-2),
    C(-3)... if taken), never deleted or overwritten. Appends the time to C(resumptions) in
    C(manifest.json) and drops its C(ended_at) and C(files), which the next O(state=finished) rewrites.
  - With O(state=finished), writes C(summary.json) (or O(summary_file)) into an existing run folder,
    adds the end time and the sha256 of every file of the folder to C(manifest.json). With
    O(outcome_from_events=true) the summary is built from the repetitions' C(events.json) files.
  - "Runs on the controller: use it with C(delegate_to: localhost)."
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  state:
    description:
      - Start a run (new folder and manifest), resume an interrupted one (set aside its incomplete
        repetitions) or finish it (summary and checksums).
    type: str
    choices: [started, resumed, finished]
    default: started
  base:
    description: Folder under which runs are kept, one sub-folder per test.
    type: path
  test:
    description:
      - Test name, for example C(test1_validation).
      - With O(state=resumed), the test the run folder must belong to (C(test) in its C(manifest.json)).
    type: str
  path:
    description: Run folder to resume or finish (the RV(path) returned when it started).
    type: path
  manifest:
    description:
      - Manifest content for O(state=started) (test, versions, inventory summary, configurations, addresses).
    type: dict
    default: {}
  summary:
    description:
      - Summary content for O(state=finished).
      - Not allowed with O(outcome_from_events=true), which builds the summary itself.
    type: dict
    default: {}
  outcome_from_events:
    description:
      - With O(state=finished), build the summary from the run folder instead of O(summary), for the
        handover tests C({"test", "run", "repetitions", "missing"}).
      - C(repetitions) has one entry per complete repetition (its C(events.json) exists), in the plan's order
        (C(configurations) of C(manifest.json) in order, each with repetitions 1 to C(repetitions)). An
        entry has C(name) (C(CONFIG/rep-NN)), C(configuration), C(repetition), C(passed), C(transfer) (the
        transfer's status), C(sha256_ok), C(handovers_ok) and C(reason), null when it passed, else one
        line naming what failed, joined by C(; ) (the hosts down, the hosts that took no part, the
        repetition's own C(errors), each failed handover with its target SSID and error, the
        transfer's status and error, or C(sha256 mismatch)).
      - A repetition passed when its transfer's C(status) is C(completed), C(sha256_ok) is true, every
        handover is C(ok) and its optional C(hosts_down), C(hosts_absent) and C(errors) lists are empty.
      - C(missing) lists the plan's repetitions without C(events.json) (never run, or interrupted).
    type: bool
    default: false
  summary_file:
    description:
      - File name of the summary in the run folder (a plain name, no folder).
      - Test 2 uses C(outcome.json), since the analyser writes its own C(summary.json) there.
    type: str
    default: summary.json
attributes:
  check_mode:
    support: none
    description: Not supported; the module always acts.
  diff_mode:
    support: none
    description: No diff is returned.
"""

EXAMPLES = r"""
- name: Start a run
  mvpn.lab.run_folder:
    base: "{{ playbook_dir }}/../results"
    test: test1_validation
    manifest:
      configurations: "{{ mvpn_test1_configurations }}"
  delegate_to: localhost
  run_once: true
  register: run

- name: Finish it
  mvpn.lab.run_folder:
    state: finished
    path: "{{ run.path }}"
    summary: {test: test1_validation, configurations: []}
  delegate_to: localhost
  run_once: true

- name: Reopen an interrupted run of Test 2 (its incomplete repetitions are set aside)
  mvpn.lab.run_folder:
    state: resumed
    path: "{{ mvpn_handover_resume }}"
    test: test2_wlan
  delegate_to: localhost
  run_once: true
  register: run

- name: Write outcome.json from the repetitions' events.json files
  mvpn.lab.run_folder:
    state: finished
    path: "{{ run.path }}"
    summary_file: outcome.json
    outcome_from_events: true
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
path:
  description: The run folder.
  returned: always
  type: str
  sample: /home/lab/mvpn-lab/results/test1_validation/20261126T184501Z
files:
  description: With O(state=finished), relative path to sha256 of every file in the folder.
  returned: when state is finished
  type: dict
  sample: {"summary.json": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
summary:
  description: With O(state=finished), the summary written to O(summary_file).
  returned: when state is finished
  type: dict
  sample:
    test: test2_wlan
    run: 20261126T184501Z
    repetitions:
      - name: mip6-bt_ipsec-none_md-ra/rep-01
        configuration: mip6-bt_ipsec-none_md-ra
        repetition: 1
        passed: false
        transfer: failed
        sha256_ok: false
        handovers_ok: true
        reason: "host cn down (no answer); transfer failed: curl: (28) Operation timed out"
    missing: [mip6-bt_ipsec-none_md-ra/rep-02]
manifest:
  description: With O(state=resumed), the content of C(manifest.json) after the update.
  returned: when state is resumed
  type: dict
  sample: {"test": "test2_wlan", "run": "20261126T184501Z", "repetitions": 5,
           "resumptions": [{"resumed_at": "2026-11-26T19:02:11.004512Z", "set_aside": []}]}
done:
  description: With O(state=resumed), the complete repetitions (C(CONFIG/rep-NN) with C(events.json)), sorted.
  returned: when state is resumed
  type: list
  elements: str
  sample: [mip6-bt_ipsec-none_md-ra/rep-01, mip6-bt_ipsec-none_md-ra/rep-02]
set_aside:
  description:
    - With O(state=resumed), the folders of interrupted repetitions after their renaming, relative to
      the run folder, sorted.
  returned: when state is resumed
  type: list
  elements: str
  sample: [mip6-bt_ipsec-none_md-ra/rep-03.interrupted-20261126T190211Z]
"""

import datetime
import json
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mvpn.lab.plugins.module_utils.checksum import file_sha256
from ansible_collections.mvpn.lab.plugins.module_utils.repetition import one_line, verdict


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(ts):
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=False)
        fh.write("\n")
    os.rename(tmp, path)


REP_DIR = re.compile(r"^rep-(\d+)$")


def read_manifest(module, path):
    manifest_path = os.path.join(path or "", "manifest.json")
    if not path or not os.path.isfile(manifest_path):
        module.fail_json(msg="path: %r is not a run folder (no manifest.json)" % path)
    try:
        with open(manifest_path) as fh:
            manifest = json.load(fh)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="path: cannot read %s: %s" % (manifest_path, exc))
    if not isinstance(manifest, dict):
        module.fail_json(msg="path: %s is not a JSON object" % manifest_path)
    return manifest


def rep_name(configuration, repetition):
    return "%s/rep-%02d" % (configuration, repetition)


def repetition_folders(path):
    """(configuration, folder name) of every C(CONFIG/rep-NN) folder in a run folder."""
    found = []
    for config in sorted(os.listdir(path)):
        config_dir = os.path.join(path, config)
        if config.startswith(".") or not os.path.isdir(config_dir):
            continue
        for name in sorted(os.listdir(config_dir)):
            if REP_DIR.match(name) and os.path.isdir(os.path.join(config_dir, name)):
                found.append((config, name))
    return found


def set_aside(module, config_dir, name, stamp):
    """Rename an interrupted repetition's folder to a name not taken yet; never overwrite."""
    for n in range(1, 100):
        new = "%s.interrupted-%s" % (name, stamp if n == 1 else "%s-%d" % (stamp, n))
        target = os.path.join(config_dir, new)
        if os.path.lexists(target):
            continue
        try:
            os.rename(os.path.join(config_dir, name), target)
        except OSError as exc:
            module.fail_json(msg="path: cannot set aside %s: %s" % (os.path.join(config_dir, name), exc))
        return new
    module.fail_json(msg="path: no free name to set aside %s in %s" % (name, config_dir))


def resume(module):
    p = module.params
    if not p["test"]:
        module.fail_json(msg="test: required when state is resumed")
    path = p["path"]
    manifest = read_manifest(module, path)
    if manifest.get("test") != p["test"]:
        module.fail_json(
            msg="test: %s is a run folder of test %r, not %r" % (path, manifest.get("test"), p["test"])
        )
    now = utc_now()
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    done = []
    moved = []
    for config, name in repetition_folders(path):
        config_dir = os.path.join(path, config)
        if os.path.isfile(os.path.join(config_dir, name, "events.json")):
            done.append("%s/%s" % (config, name))
        else:
            moved.append("%s/%s" % (config, set_aside(module, config_dir, name, stamp)))
    # the folder changes from here on: the next state=finished writes the end time and checksums
    manifest.pop("ended_at", None)
    manifest.pop("files", None)
    resumptions = manifest.get("resumptions")
    if not isinstance(resumptions, list):
        resumptions = []
    resumptions.append({"resumed_at": iso(now), "set_aside": sorted(moved)})
    manifest["resumptions"] = resumptions
    write_json(os.path.join(path, "manifest.json"), manifest)
    module.exit_json(changed=True, path=path, manifest=manifest, done=sorted(done), set_aside=sorted(moved))


def repetition_outcome(events, configuration, repetition):
    """One entry of the outcome from a repetition's events.json (the rule: module_utils/repetition.py)."""
    entry = dict(name=rep_name(configuration, repetition), configuration=configuration, repetition=repetition)
    entry.update(verdict(events))
    return entry


def outcome_from_events(module, path, manifest):
    """The summary of a handover test's run from its repetitions' events.json (see outcome_from_events)."""
    configurations = manifest.get("configurations")
    ids = []
    try:
        repetitions = int(manifest.get("repetitions"))
        ids = [c.get("id") if isinstance(c, dict) else c for c in configurations]
    except (TypeError, ValueError):
        repetitions = -1
    if repetitions < 0 or not all(isinstance(i, str) and i for i in ids):
        module.fail_json(
            msg="outcome_from_events: manifest.json of %s has no plan (configurations, each with an id, "
            "and a number of repetitions)" % path
        )
    entries = []
    missing = []
    for config in ids:
        for rep in range(1, repetitions + 1):
            events_path = os.path.join(path, config, "rep-%02d" % rep, "events.json")
            if not os.path.isfile(events_path):
                missing.append(rep_name(config, rep))
                continue
            try:
                with open(events_path) as fh:
                    events = json.load(fh)
            except (OSError, ValueError) as exc:
                entry = repetition_outcome({}, config, rep)
                entry.update(passed=False, reason="events.json unreadable: %s" % one_line(exc))
                entries.append(entry)
                continue
            entries.append(repetition_outcome(events, config, rep))
    return {
        "test": manifest.get("test"),
        "run": os.path.basename(os.path.normpath(path)),
        "repetitions": entries,
        "missing": missing,
    }


def start(module):
    p = module.params
    for name in ("base", "test"):
        if not p[name]:
            module.fail_json(msg="%s: required when state is started" % name)
    if not all(c.isalnum() or c in "._-" for c in p["test"]):
        module.fail_json(
            msg="test: expected a name of letters, digits, dot, dash, underscore, got %r" % p["test"]
        )
    now = utc_now()
    parent = os.path.join(p["base"], p["test"])
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        module.fail_json(msg="base: cannot create %s: %s" % (parent, exc))
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 100):
        path = os.path.join(parent, stamp if n == 1 else "%s-%d" % (stamp, n))
        try:
            os.mkdir(path)
            break
        except FileExistsError:
            continue
    else:
        module.fail_json(msg="base: no free run folder name for %s in %s" % (stamp, parent))
    manifest = dict(p["manifest"])
    manifest.setdefault("test", p["test"])
    manifest["run"] = os.path.basename(path)
    manifest["started_at"] = iso(now)
    write_json(os.path.join(path, "manifest.json"), manifest)
    module.exit_json(changed=True, path=path)


def finish(module):
    p = module.params
    path = p["path"]
    manifest = read_manifest(module, path)
    name = p["summary_file"]
    if not name or os.path.basename(name) != name or name in (".", "..", "manifest.json"):
        module.fail_json(msg="summary_file: expected a plain file name, not manifest.json, got %r" % name)
    if p["outcome_from_events"]:
        if p["summary"]:
            module.fail_json(msg="summary: not allowed with outcome_from_events=true (it builds the summary)")
        summary = outcome_from_events(module, path, manifest)
    else:
        summary = p["summary"]
    write_json(os.path.join(path, name), summary)
    files = {}
    for root, _dirs, names in os.walk(path):
        for name in sorted(names):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path)
            if rel != "manifest.json":
                files[rel] = file_sha256(full)
    manifest["ended_at"] = iso(utc_now())
    manifest["files"] = dict(sorted(files.items()))
    write_json(os.path.join(path, "manifest.json"), manifest)
    module.exit_json(changed=True, path=path, files=files, summary=summary)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["started", "resumed", "finished"], default="started"),
            base=dict(type="path"),
            test=dict(type="str"),
            path=dict(type="path"),
            manifest=dict(type="dict", default={}),
            summary=dict(type="dict", default={}),
            summary_file=dict(type="str", default="summary.json"),
            outcome_from_events=dict(type="bool", default=False),
        ),
        supports_check_mode=False,
    )
    state = module.params["state"]
    if state == "started":
        start(module)
    elif state == "resumed":
        resume(module)
    else:
        finish(module)


if __name__ == "__main__":
    main()
