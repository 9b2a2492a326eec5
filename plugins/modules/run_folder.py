#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: run_folder
short_description: Create, resume, record and finish a test run's result folder
description:
  - The one writer of a run folder. Its layout and the schema of C(manifest.json), C(events.json) and
    C(outcome.json) (each with C(schema_version)) live in the collection's C(module_utils/runfolder.py);
    the experiment runner and the analyser read through the same file.
  - Every result has RV(mvpn_run_step), the step of the run it is (C(created), C(resumed), C(opened),
    C(recorded), C(finished), C(judged), C(configured)); C(mvpn-lab run) follows a run by this key in
    Ansible's events.
  - With O(state=started), creates C(BASE/TEST/UTC-TIMESTAMP/) and writes C(manifest.json). A folder is
    never reused; if the timestamp's folder exists, a suffix C(-2), C(-3)... is added.
  - With O(state=resumed), reopens an interrupted run folder O(path) of test O(test). A repetition
    C(CONFIG/rep-NN/) is complete when it holds C(events.json) (written last); every
    repetition folder without it is set aside, renamed C(rep-NN.interrupted-UTC-TIMESTAMP) (suffix C(-2),
    C(-3)... if taken), never deleted or overwritten. Appends the time to C(resumptions) in
    C(manifest.json) and drops its C(ended_at) and C(files), which the next O(state=finished) rewrites.
  - With O(state=opened), creates the folder C(CONFIG/rep-NN/) of repetition O(repetition) of
    O(configuration) in the run folder O(path); the repetition begins.
  - With O(state=recorded), writes that repetition's C(events.json) from the results of its handover,
    transfer and capture tasks (O(handovers), O(transfer), O(captures)) and of its hosts (O(hosts),
    O(took_part), O(hosts_down), O(errors)); the repetition is then complete. Returns its verdict.
  - With O(state=finished), writes C(summary.json) (or O(summary_file)) into an existing run folder,
    adds the end time and the sha256 of every file of the folder to C(manifest.json). With
    O(outcome_from_events=true) the summary is built from the repetitions' C(events.json) files.
  - With O(state=judged), reads C(outcome.json) and fails, naming them, when a repetition of the plan
    failed or is missing.
  - With O(state=configured), keeps the rendered lab configuration of configuration O(configuration)
    (O(lab_configs), what M(mvpn.lab.lab_config) returned on each host) as C(CONFIG/lab/HOST/FILE). If
    C(CONFIG/lab) holds the same files, nothing changes; if it holds others (a resumed run whose lab
    changed), they go to C(CONFIG/lab-2) (C(-3)...), so nothing is overwritten. O(state=finished) lists
    them with their sha256 in C(manifest.json) like every file of the run folder.
  - "Runs on the controller: use it with C(delegate_to: localhost)."
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  state:
    description:
      - Start a run (new folder and manifest), resume an interrupted one (set aside its incomplete
        repetitions), open or record one repetition, finish the run (summary and checksums), judge it,
        or keep a configuration's rendered lab configuration.
    type: str
    choices: [started, resumed, opened, recorded, finished, judged, configured]
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
    description: The run folder (the RV(path) returned when it started), for every state but O(state=started).
    type: path
  manifest:
    description:
      - Manifest content for O(state=started) (test, versions, inventory summary, configurations, addresses).
      - C(schema_version), C(run) and C(started_at) are the module's.
    type: dict
    default: {}
  configuration:
    description: With O(state=opened), O(state=recorded) and O(state=configured), the configuration's id.
    type: str
  repetition:
    description: With O(state=opened) and O(state=recorded), the repetition's number, from 1.
    type: int
  hosts:
    description: With O(state=recorded), every lab host of the play.
    type: list
    elements: str
    default: []
  took_part:
    description:
      - With O(state=recorded), the hosts that ran this repetition. The other O(hosts) failed before it
        and took no part (C(hosts_absent) in C(events.json)), and the repetition fails.
    type: list
    elements: str
    default: []
  hosts_down:
    description: With O(state=recorded), the hosts that did not answer.
    type: list
    elements: str
    default: []
  errors:
    description:
      - With O(state=recorded), one line per task of the repetition that failed (empty ones are dropped).
    type: list
    elements: str
    default: []
  handovers:
    description:
      - With O(state=recorded), the registered results of the repetition's M(mvpn.lab.handover) tasks by
        direction, C(away) (to the visited network) and C(home) (back). A missing or empty one was not run
        (the mobile node took no part).
      - A handover is C(ok) when its task neither failed nor left the station where it was.
    type: dict
    default: {}
  transfer:
    description: With O(state=recorded), the registered result of M(mvpn.lab.transfer) with C(state=stopped).
    type: dict
    default: {}
  captures:
    description:
      - With O(state=recorded), node (C(mn), C(cn)) to the registered result of M(mvpn.lab.capture) with
        C(state=stopped); C(events.json) keeps tcpdump's C(packets_*) counts.
    type: dict
    default: {}
  scan_first:
    description: With O(state=recorded), whether the handovers scanned before associating.
    type: bool
    default: false
  summary:
    description:
      - Summary content for O(state=finished).
      - Not allowed with O(outcome_from_events=true), which builds the summary itself.
    type: dict
    default: {}
  outcome_from_events:
    description:
      - With O(state=finished), build the summary from the run folder instead of O(summary), for the
        handover tests C({"schema_version", "test", "run", "repetitions", "missing"}).
      - C(repetitions) has one entry per complete repetition (its C(events.json) exists), in the plan's order
        (C(configurations) of C(manifest.json) in order, each with repetitions 1 to C(repetitions)). An
        entry has C(name) (C(CONFIG/rep-NN)), C(configuration), C(repetition), C(passed), C(transfer) (the
        transfer's status), C(sha256_ok), C(handovers_ok) and C(reason), null when it passed, else one
        line naming what failed, joined by C(; ) (the hosts down, the hosts that took no part, the
        repetition's own C(errors), each failed handover with its target SSID and error, the
        transfer's status and error, or C(sha256 mismatch)).
      - A repetition passed when its transfer's C(status) is C(completed), C(sha256_ok) is true, every
        handover is C(ok) and its C(hosts_down), C(hosts_absent) and C(errors) lists are empty.
      - C(missing) lists the plan's repetitions without C(events.json) (never run, or interrupted).
    type: bool
    default: false
  summary_file:
    description:
      - File name of the summary in the run folder (a plain name, no folder).
      - Test 2 uses C(outcome.json), since the analyser writes its own C(summary.json) there.
    type: str
    default: summary.json
  title:
    description: With O(state=judged), how the verdict names the test (default its C(test)), e.g. C(Test 2).
    type: str
  lab_configs:
    description:
      - With O(state=configured), host to its files (file name to text), the
        RV(mvpn.lab.lab_config#module:files) of each host; hosts with no files are left out. Names are
        plain file names.
    type: dict
    default: {}
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

- name: Keep each host's rendered configuration of a configuration (what mvpn.lab.lab_config registered)
  mvpn.lab.run_folder:
    state: configured
    path: "{{ run.path }}"
    configuration: mip6-bt_ipsec-none_md-l2
    lab_configs: >-
      {{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, ['lab', 'files']))) }}
  delegate_to: localhost
  run_once: true

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

- name: Begin repetition 1 of a configuration
  mvpn.lab.run_folder:
    state: opened
    path: "{{ run.path }}"
    configuration: mip6-bt_ipsec-none_md-l2
    repetition: 1
  delegate_to: localhost
  run_once: true
  register: rep

- name: Record it (events.json) from what its tasks registered on the mobile and correspondent nodes
  mvpn.lab.run_folder:
    state: recorded
    path: "{{ run.path }}"
    configuration: mip6-bt_ipsec-none_md-l2
    repetition: 1
    hosts: "{{ ansible_play_hosts_all }}"
    took_part: "{{ ansible_play_hosts }}"
    handovers:
      away: "{{ hostvars['mn'].handover_away }}"
      home: "{{ hostvars['mn'].handover_home }}"
    transfer: "{{ hostvars['mn'].download }}"
    captures:
      mn: "{{ hostvars['mn'].capture }}"
      cn: "{{ hostvars['cn'].capture }}"
    scan_first: true
  delegate_to: localhost
  run_once: true

- name: Write outcome.json from the repetitions' events.json files
  mvpn.lab.run_folder:
    state: finished
    path: "{{ run.path }}"
    summary_file: outcome.json
    outcome_from_events: true
  delegate_to: localhost
  run_once: true

- name: Fail when a repetition failed or was not run
  mvpn.lab.run_folder:
    state: judged
    path: "{{ run.path }}"
    title: Test 2
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
mvpn_run_step:
  description:
    - The step of the run this result is, for readers of Ansible's events (the experiment runner).
    - C(created) (state started), C(resumed), C(opened), C(recorded), C(finished), C(judged) or
      C(configured).
  returned: always, also when the module fails after reading its options
  type: str
  sample: recorded
path:
  description: The run folder.
  returned: always
  type: str
  sample: /home/lab/mvpn-lab/results/test1_validation/20261126T184501Z
daemon_logs:
  description:
    - With O(state=started) and O(state=resumed), the folder for the Mobile IPv6 daemons' event logs
      (C(daemon/NODE.jsonl)), which the handover tests fetch at the end of the run.
  returned: when state is started or resumed
  type: str
  sample: /home/lab/mvpn-lab/results/test2_wlan/20261126T184501Z/daemon
lab_dir:
  description: With O(state=configured), the folder that holds the configuration's lab configuration.
  returned: when state is configured
  type: str
  sample: /home/lab/results/test2_wlan/20261126T184501Z/mip6-bt_ipsec-none_md-l2/lab
name:
  description: With O(state=opened) and O(state=recorded), the repetition, C(CONFIG/rep-NN).
  returned: when state is opened or recorded
  type: str
  sample: mip6-bt_ipsec-none_md-l2/rep-01
rep_path:
  description: With O(state=opened) and O(state=recorded), the repetition's folder.
  returned: when state is opened or recorded
  type: str
  sample: /home/lab/mvpn-lab/results/test2_wlan/20261126T184501Z/mip6-bt_ipsec-none_md-l2/rep-01
events:
  description: With O(state=recorded), the content of C(events.json).
  returned: when state is recorded
  type: dict
  sample:
    schema_version: 1
    configuration: mip6-bt_ipsec-none_md-l2
    repetition: 1
    errors: []
    hosts_down: []
    hosts_absent: []
    handovers:
      - {direction: away, handover_at: 1764183901.12, from_ssid: LOCAL, to_ssid: VISITME,
         associated_at: 1764183901.98, scan_first: true, ok: true, error: null}
      - {direction: home, handover_at: 1764183931.4, from_ssid: VISITME, to_ssid: LOCAL,
         associated_at: 1764183932.1, scan_first: true, ok: true, error: null}
    captures: {mn: {packets_captured: 1234, packets_dropped: 0, packets_received: 1240}}
    transfer: {bytes: 8388608, sha256: 9d07..., sha256_ok: true, status: completed,
               started_at: 1764183900.5, finished_at: 1764183960.2, error: null}
outcome:
  description:
    - With O(state=recorded), the repetition's entry of C(outcome.json) (see O(outcome_from_events)).
  returned: when state is recorded
  type: dict
  sample: {name: mip6-bt_ipsec-none_md-l2/rep-01, configuration: mip6-bt_ipsec-none_md-l2, repetition: 1,
           passed: true, transfer: completed, sha256_ok: true, handovers_ok: true, reason: null}
files:
  description: With O(state=finished), relative path to sha256 of every file in the folder.
  returned: when state is finished
  type: dict
  sample: {"summary.json": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
summary:
  description:
    - With O(state=finished), the summary written to O(summary_file).
    - With O(state=judged), the content of C(outcome.json).
  returned: when state is finished or judged
  type: dict
  sample:
    schema_version: 1
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
  description: With O(state=started) and O(state=resumed), the content of C(manifest.json).
  returned: when state is started or resumed
  type: dict
  sample: {"schema_version": 1, "test": "test2_wlan", "run": "20261126T184501Z", "repetitions": 5,
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
failed_repetitions:
  description:
    - With O(state=judged), the repetitions that failed and those not run (C( (not run)) after the name).
  returned: when state is judged
  type: list
  elements: str
  sample: [mip6-bt_ipsec-none_md-ra/rep-01, mip6-bt_ipsec-none_md-ra/rep-02 (not run)]
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mvpn.lab.plugins.module_utils import runfolder as schema
from ansible_collections.mvpn.lab.plugins.module_utils.checksum import file_sha256

STEP = {
    "started": schema.STEP_CREATED,
    "resumed": schema.STEP_RESUMED,
    "opened": schema.STEP_OPENED,
    "recorded": schema.STEP_RECORDED,
    "finished": schema.STEP_FINISHED,
    "judged": schema.STEP_JUDGED,
    "configured": schema.STEP_CONFIGURED,
}


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(ts):
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Run:
    """The module with its step: every result, failed or not, carries mvpn_run_step."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.step = STEP[module.params["state"]]

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, **dict(extra, **{schema.STEP_KEY: self.step}))

    def exit(self, **result):
        self.module.exit_json(**dict(result, **{schema.STEP_KEY: self.step}))

    def require(self, *names):
        for name in names:
            if self.p[name] is None or self.p[name] == "":
                self.fail("%s: required when state is %s" % (name, self.p["state"]))

    def manifest(self):
        path = self.p["path"]
        try:
            manifest, _notes = schema.read_manifest(path or "")
        except schema.SchemaError as exc:
            self.fail("path: %s" % exc)
        return manifest

    def write(self, path, data):
        try:
            schema.write_json(path, data)
        except OSError as exc:
            self.fail("path: cannot write %s: %s" % (path, schema.one_line(exc)))


def set_aside(run, config_dir, name, stamp):
    """Rename an interrupted repetition's folder to a name not taken yet; never overwrite."""
    for n in range(1, 100):
        new = "%s.interrupted-%s" % (name, stamp if n == 1 else "%s-%d" % (stamp, n))
        target = os.path.join(config_dir, new)
        if os.path.lexists(target):
            continue
        try:
            os.rename(os.path.join(config_dir, name), target)
        except OSError as exc:
            run.fail("path: cannot set aside %s: %s" % (os.path.join(config_dir, name), exc))
        return new
    run.fail("path: no free name to set aside %s in %s" % (name, config_dir))


def resume(run):
    p = run.p
    run.require("test")
    path = p["path"]
    manifest = run.manifest()
    if manifest.get("test") != p["test"]:
        run.fail("test: %s is a run folder of test %r, not %r" % (path, manifest.get("test"), p["test"]))
    now = utc_now()
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    done = []
    moved = []
    for config, name in schema.repetition_folders(path):
        config_dir = os.path.join(path, config)
        if schema.is_complete(path, "%s/%s" % (config, name)):
            done.append("%s/%s" % (config, name))
        else:
            moved.append("%s/%s" % (config, set_aside(run, config_dir, name, stamp)))
    # the folder changes from here on: the next state=finished writes the end time and checksums
    manifest.pop("ended_at", None)
    manifest.pop("files", None)
    resumptions = manifest.get("resumptions")
    if not isinstance(resumptions, list):
        resumptions = []
    resumptions.append({"resumed_at": iso(now), "set_aside": sorted(moved)})
    manifest["resumptions"] = resumptions
    run.write(os.path.join(path, schema.MANIFEST), manifest)
    run.exit(
        changed=True,
        path=path,
        manifest=manifest,
        done=sorted(done),
        set_aside=sorted(moved),
        daemon_logs=schema.daemon_logs(path),
    )


def repetition_outcome(events, configuration, repetition):
    """One entry of the outcome from a repetition's events.json (the rule: module_utils/repetition.py)."""
    return schema.outcome_entry(events, configuration, repetition)


def start(run):
    p = run.p
    run.require("base", "test")
    if not all(c.isalnum() or c in "._-" for c in p["test"]):
        run.fail("test: expected a name of letters, digits, dot, dash, underscore, got %r" % p["test"])
    now = utc_now()
    parent = os.path.join(p["base"], p["test"])
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        run.fail("base: cannot create %s: %s" % (parent, exc))
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 100):
        path = os.path.join(parent, stamp if n == 1 else "%s-%d" % (stamp, n))
        try:
            os.mkdir(path)
            break
        except FileExistsError:
            continue
    else:
        run.fail("base: no free run folder name for %s in %s" % (stamp, parent))
    try:
        manifest = schema.new_manifest(p["manifest"], p["test"], os.path.basename(path), iso(now))
    except schema.SchemaError as exc:
        os.rmdir(path)
        run.fail("manifest: %s" % str(exc).split(": ", 1)[-1])
    run.write(os.path.join(path, schema.MANIFEST), manifest)
    run.exit(changed=True, path=path, manifest=manifest, daemon_logs=schema.daemon_logs(path))


def checked_configuration(run):
    """The configuration id of the options: a folder name in the run folder (no '/', no dot first)."""
    config = run.p["configuration"]
    if "/" in config or config.startswith(".") or not config.strip():
        run.fail(
            "configuration: expected a configuration id (no '/', not starting with '.'), got %r" % config
        )
    return config


def repetition(run):
    """Check configuration and repetition; the run folder's manifest and the repetition's folder."""
    run.require("path", "configuration", "repetition")
    p = run.p
    if p["repetition"] < 1:
        run.fail("repetition: expected a number from 1, got %d" % p["repetition"])
    config = checked_configuration(run)
    run.manifest()
    return schema.rep_name(config, p["repetition"]), schema.rep_dir(p["path"], config, p["repetition"])


def open_repetition(run):
    name, rep_path = repetition(run)
    changed = not os.path.isdir(rep_path)
    try:
        os.makedirs(rep_path, exist_ok=True)
    except OSError as exc:
        run.fail("path: cannot create %s: %s" % (rep_path, schema.one_line(exc)))
    run.exit(changed=changed, path=run.p["path"], name=name, rep_path=rep_path)


def record(run):
    p = run.p
    name, rep_path = repetition(run)
    for key in ("away", "home"):
        value = p["handovers"].get(key)
        if value is not None and not isinstance(value, dict):
            run.fail("handovers: %s: expected a task's result (a dict), got %r" % (key, value))
    unknown = sorted(set(p["handovers"]) - set(schema.DIRECTIONS))
    if unknown:
        run.fail("handovers: expected the directions away and home, got %s" % ", ".join(unknown))
    for node, value in p["captures"].items():
        if not isinstance(value, dict):
            run.fail("captures: %s: expected a task's result (a dict), got %r" % (node, value))
    try:
        events = schema.events_record(
            p["configuration"],
            p["repetition"],
            hosts=p["hosts"],
            took_part=p["took_part"],
            hosts_down=p["hosts_down"],
            errors=p["errors"],
            handovers=p["handovers"],
            transfer=p["transfer"],
            captures=p["captures"],
            scan_first=p["scan_first"],
        )
    except schema.SchemaError as exc:
        run.fail("%s" % exc)
    try:
        os.makedirs(rep_path, exist_ok=True)
    except OSError as exc:
        run.fail("path: cannot create %s: %s" % (rep_path, schema.one_line(exc)))
    run.write(os.path.join(rep_path, schema.EVENTS), events)
    outcome = schema.outcome_entry(events, p["configuration"], p["repetition"])
    run.exit(changed=True, path=p["path"], name=name, rep_path=rep_path, events=events, outcome=outcome)


def configured(run):
    """Keep a configuration's rendered lab configuration: ``CONFIG/lab/HOST/FILE`` (never overwritten)."""
    p = run.p
    run.require("path", "configuration")
    config = checked_configuration(run)
    run.manifest()
    files = {host: entries for host, entries in p["lab_configs"].items() if entries}
    try:
        schema.check_lab_configs(files)
        folder, there = schema.lab_config_folder(p["path"], config, files)
    except schema.SchemaError as exc:
        run.fail("%s" % exc)
    if not there:
        for host, entries in sorted(files.items()):
            host_dir = os.path.join(folder, host)
            try:
                os.makedirs(host_dir)
                for name, text in sorted(entries.items()):
                    with open(os.path.join(host_dir, name), "x", encoding="utf-8") as handle:
                        handle.write(text)
            except OSError as exc:
                run.fail("path: cannot write %s: %s" % (host_dir, schema.one_line(exc)))
    run.exit(changed=not there, path=p["path"], lab_dir=folder)


def checked_summary_file(run):
    name = run.p["summary_file"]
    if not name or os.path.basename(name) != name or name in (".", "..", schema.MANIFEST):
        run.fail("summary_file: expected a plain file name, not manifest.json, got %r" % name)
    return name


def finish(run):
    p = run.p
    run.require("path")
    path = p["path"]
    manifest = run.manifest()
    name = checked_summary_file(run)
    if p["outcome_from_events"]:
        if p["summary"]:
            run.fail("summary: not allowed with outcome_from_events=true (it builds the summary)")
        try:
            summary = schema.outcome(path, manifest)
        except schema.SchemaError as exc:
            run.fail("outcome_from_events: %s" % exc)
    else:
        summary = p["summary"]
    run.write(os.path.join(path, name), summary)
    files = {}
    for root, _dirs, names in os.walk(path):
        for name in sorted(names):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path)
            if rel != schema.MANIFEST:
                files[rel] = file_sha256(full)
    manifest["ended_at"] = iso(utc_now())
    manifest["files"] = dict(sorted(files.items()))
    run.write(os.path.join(path, schema.MANIFEST), manifest)
    run.exit(changed=True, path=path, files=files, summary=summary)


def judge(run):
    p = run.p
    run.require("path")
    path = p["path"]
    manifest = run.manifest()
    try:
        summary, _notes = schema.read_outcome(path)
    except schema.SchemaError as exc:
        run.fail("path: %s" % exc)
    entries = summary["repetitions"]
    failed = [str(e.get("name")) for e in entries if not (isinstance(e, dict) and e.get("passed") is True)]
    failed += ["%s (not run)" % m for m in summary.get("missing") or []]
    title = p["title"] or manifest.get("test") or "the run"
    result = dict(path=path, summary=summary, failed_repetitions=failed)
    if not entries or failed:
        total = len(entries) + len(summary.get("missing") or [])
        run.fail(
            "%s: %d of %d repetitions failed: %s (see %s)"
            % (title, len(failed), total, ", ".join(failed), path),
            **result,
        )
    report = os.path.join(path, "report.html")
    msg = "%s: all %d repetitions passed; results in %s%s" % (
        title,
        len(entries),
        path,
        "; report: %s" % report if os.path.isfile(report) else "",
    )
    run.exit(changed=False, msg=msg, **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=list(STEP), default="started"),
            base=dict(type="path"),
            test=dict(type="str"),
            path=dict(type="path"),
            manifest=dict(type="dict", default={}),
            configuration=dict(type="str"),
            repetition=dict(type="int"),
            hosts=dict(type="list", elements="str", default=[]),
            took_part=dict(type="list", elements="str", default=[]),
            hosts_down=dict(type="list", elements="str", default=[]),
            errors=dict(type="list", elements="str", default=[]),
            handovers=dict(type="dict", default={}),
            transfer=dict(type="dict", default={}),
            captures=dict(type="dict", default={}),
            scan_first=dict(type="bool", default=False),
            summary=dict(type="dict", default={}),
            summary_file=dict(type="str", default="summary.json"),
            outcome_from_events=dict(type="bool", default=False),
            title=dict(type="str"),
            lab_configs=dict(type="dict", default={}),
        ),
        supports_check_mode=False,
    )
    run = Run(module)
    state = module.params["state"]
    if state == "started":
        start(run)
    elif state == "resumed":
        resume(run)
    elif state == "opened":
        open_repetition(run)
    elif state == "recorded":
        record(run)
    elif state == "judged":
        judge(run)
    elif state == "configured":
        configured(run)
    else:
        finish(run)


if __name__ == "__main__":
    main()
