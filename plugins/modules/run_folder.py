#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: run_folder
short_description: Create and finish a test run's result folder
description:
  - With O(state=started), creates C(BASE/TEST/UTC-TIMESTAMP/) and writes C(manifest.json). A folder is
    never reused; if the timestamp's folder exists, a suffix C(-2), C(-3)... is added.
  - With O(state=finished), writes C(summary.json) (or O(summary_file)) into an existing run folder,
    adds the end time and the sha256 of every file of the folder to C(manifest.json).
  - "Runs on the controller: use it with C(delegate_to: localhost)."
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  state:
    description: Start a run (new folder and manifest) or finish it (summary and checksums).
    type: str
    choices: [started, finished]
    default: started
  base:
    description: Folder under which runs are kept, one sub-folder per test.
    type: path
  test:
    description: Test name, for example C(test1_validation).
    type: str
  path:
    description: Run folder to finish (the RV(path) returned when it started).
    type: path
  manifest:
    description:
      - Manifest content for O(state=started) (test, versions, inventory summary, configurations, addresses).
    type: dict
    default: {}
  summary:
    description: Summary content for O(state=finished).
    type: dict
    default: {}
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
"""

import datetime
import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mvpn.lab.plugins.module_utils.checksum import file_sha256


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
    if not path or not os.path.isfile(os.path.join(path, "manifest.json")):
        module.fail_json(msg="path: %r is not a run folder (no manifest.json)" % path)
    name = p["summary_file"]
    if not name or os.path.basename(name) != name or name in (".", "..", "manifest.json"):
        module.fail_json(msg="summary_file: expected a plain file name, not manifest.json, got %r" % name)
    write_json(os.path.join(path, name), p["summary"])
    files = {}
    for root, _dirs, names in os.walk(path):
        for name in sorted(names):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path)
            if rel != "manifest.json":
                files[rel] = file_sha256(full)
    manifest_path = os.path.join(path, "manifest.json")
    with open(manifest_path) as fh:
        manifest = json.load(fh)
    manifest["ended_at"] = iso(utc_now())
    manifest["files"] = dict(sorted(files.items()))
    write_json(manifest_path, manifest)
    module.exit_json(changed=True, path=path, files=files)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["started", "finished"], default="started"),
            base=dict(type="path"),
            test=dict(type="str"),
            path=dict(type="path"),
            manifest=dict(type="dict", default={}),
            summary=dict(type="dict", default={}),
            summary_file=dict(type="str", default="summary.json"),
        ),
        supports_check_mode=False,
    )
    if module.params["state"] == "started":
        start(module)
    else:
        finish(module)


if __name__ == "__main__":
    main()
