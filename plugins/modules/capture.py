#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: capture
short_description: Start and stop tcpdump on a lab host; fetch the capture with its sha256
description:
  - With O(state=started), starts
    C(tcpdump -i INTERFACE -n -U -w PATH -s SNAPLEN -B BUFFER_SIZE --immediate-mode [FILTER])
    detached from the module (new session, no inherited descriptors; stderr to C(PATH.log)), records it
    in C(PATH.pid) (JSON) and returns once tcpdump reports that it is listening.
  - Captures are never overwritten - starting fails when O(path) exists, unless the tcpdump recorded for
    O(path) is still running (then nothing changes).
  - With O(state=stopped), sends SIGINT (SIGKILL after 10 s), reads tcpdump's packet counts from
    C(PATH.log) and returns the capture's size and sha256; the result is recorded in C(PATH.pid), so a
    second stop returns the same numbers and reports no change.
  - With O(fetch_to), the action plugin of the same name then copies the capture to the controller,
    checks its sha256 and moves it into place, never over an existing file.
  - The process is identified by pid and kernel start time, so a reused pid is never taken for tcpdump.
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  state:
    description: Start a capture, or stop it (and with O(fetch_to) fetch it).
    type: str
    choices: [started, stopped]
    required: true
  interface:
    description: Interface to capture on; required with O(state=started).
    type: str
  path:
    description:
      - The capture file (pcap) on the host, an absolute path.
      - C(PATH.pid) and C(PATH.log) are kept beside it.
    type: path
    required: true
  snaplen:
    description: Bytes kept of each packet (C(tcpdump -s)); V(0) is tcpdump's default, 262144.
    type: int
    default: 0
  buffer_size:
    description:
      - The kernel capture buffer in KiB (C(tcpdump -B)). Packets that arrive while it is full are lost to
        the capture (reported as RV(packets_dropped)) though the host received them; on a slow host, such
        as the virtual twin under emulation, tcpdump's 2 MiB default lost packets during TCP bursts.
      - V(0) keeps tcpdump's default.
    type: int
    default: 16384
  filter:
    description: A BPF filter expression, for example V(ip6).
    type: str
  ready_timeout:
    description: Seconds to wait, with O(state=started), for tcpdump to report that it is listening.
    type: float
    default: 10.0
  fetch_to:
    description:
      - With O(state=stopped), a path on the controller to copy the capture to (handled by the action
        plugin, the module ignores it). Missing folders are created.
      - An existing file is never overwritten - with the same sha256 nothing changes, with other content
        the task fails.
    type: path
attributes:
  action:
    support: full
    description: The action plugin fetches the capture with O(fetch_to).
  check_mode:
    support: full
    description: Reports whether it would start or stop tcpdump; starts, stops, writes and fetches nothing.
  diff_mode:
    support: none
    description: No diff is returned.
"""

EXAMPLES = r"""
- name: Capture on the mobile node's WLAN interface
  mvpn.lab.capture:
    state: started
    interface: wlan0
    path: /var/lib/mvpn-lab/mn/captures/mn-wlan0.pcap
    filter: ip6

- name: Stop the capture and fetch it into the run folder
  mvpn.lab.capture:
    state: stopped
    path: /var/lib/mvpn-lab/mn/captures/mn-wlan0.pcap
    fetch_to: "{{ run.path }}/mn.pcap"
  register: capture
"""

RETURN = r"""
path:
  description: The capture file on the host.
  returned: always
  type: str
  sample: /var/lib/mvpn-lab/mn/captures/mn-wlan0.pcap
pid:
  description: Process id of tcpdump; null in check mode when nothing was started.
  returned: always
  type: int
  sample: 4242
started_at:
  description: time.time() when tcpdump was started; null in check mode when nothing was started.
  returned: always
  type: float
  sample: 1764183900.5
stopped_at:
  description: time.time() when tcpdump had exited.
  returned: when state is stopped
  type: float
  sample: 1764184500.2
status:
  description:
    - How tcpdump ended - V(stopped) (after SIGINT), V(killed) (SIGKILL, after 10 s) or V(exited) (it
      had ended before the stop, a warning is given).
  returned: when state is stopped
  type: str
  sample: stopped
packets_captured:
  description: tcpdump's C(N packets captured); null when tcpdump did not report it.
  returned: when state is stopped
  type: int
  sample: 1234
packets_received:
  description: tcpdump's C(N packets received by filter); null when tcpdump did not report it.
  returned: when state is stopped
  type: int
  sample: 1240
packets_dropped:
  description: tcpdump's C(N packets dropped by kernel); null when tcpdump did not report it.
  returned: when state is stopped
  type: int
  sample: 0
size:
  description: Size of the capture file in bytes.
  returned: when state is stopped
  type: int
  sample: 183204
sha256:
  description: SHA-256 of the capture file.
  returned: when state is stopped
  type: str
  sample: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
dest:
  description: The controller copy (O(fetch_to)); set by the action plugin.
  returned: when fetch_to is given and state is stopped
  type: str
  sample: /home/lab/mvpn-lab/results/test2/20261126T184501Z/mn.pcap
fetched:
  description: Whether the capture was copied to RV(dest) by this task (false when it was there already).
  returned: when fetch_to is given and state is stopped
  type: bool
  sample: true
"""

import os
import re
import signal
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mvpn.lab.plugins.module_utils.background import (
    SpawnError,
    is_running,
    read_json,
    spawn_detached,
    stop,
    write_json,
)
from ansible_collections.mvpn.lab.plugins.module_utils.checksum import file_sha256

#: Seconds tcpdump has after SIGINT to flush and exit before it is killed.
STOP_TIMEOUT = 10.0
POLL = 0.05
LISTENING_RE = re.compile(r"listening on (\S+), link-type")
COUNT_RES = dict(
    packets_captured=re.compile(r"^(\d+) packets? captured\s*$", re.M),
    packets_received=re.compile(r"^(\d+) packets? received by filter\s*$", re.M),
    packets_dropped=re.compile(r"^(\d+) packets? dropped by kernel\s*$", re.M),
)


def read_text(path):
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return ""


def last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def load_record(module, pid_path):
    try:
        return read_json(pid_path)
    except (IOError, OSError, ValueError) as exc:
        module.fail_json(msg="path: cannot read %s: %s" % (pid_path, exc))


def remove(*paths):
    for path in paths:
        if os.path.exists(path):
            os.unlink(path)


def start(module, path, pid_path, log_path):
    p = module.params
    if not p["interface"]:
        module.fail_json(msg="interface: required when state is started")
    if p["snaplen"] < 0:
        module.fail_json(msg="snaplen: expected a number of bytes >= 0, got %d" % p["snaplen"])
    if p["buffer_size"] < 0:
        module.fail_json(msg="buffer_size: expected a size in KiB >= 0, got %d" % p["buffer_size"])
    if p["ready_timeout"] <= 0:
        module.fail_json(msg="ready_timeout: expected a number of seconds > 0, got %s" % p["ready_timeout"])
    if os.path.exists(pid_path):
        record = load_record(module, pid_path)
        if "result" not in record and is_running(record.get("pid"), record.get("proc_start")):
            if record.get("interface") != p["interface"]:
                module.fail_json(
                    msg="interface: %s is being captured on %s, not %s"
                    % (path, record.get("interface"), p["interface"])
                )
            module.exit_json(changed=False, path=path, pid=record["pid"], started_at=record.get("started_at"))
    if os.path.lexists(path):
        module.fail_json(msg="path: %s exists; captures are never overwritten" % path)
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        module.fail_json(msg="path: folder %s does not exist" % folder)
    tcpdump = module.get_bin_path("tcpdump", required=True)
    command = [tcpdump, "-i", p["interface"], "-n", "-U", "-w", path, "-s", str(p["snaplen"])]
    if p["buffer_size"]:
        command += ["-B", str(p["buffer_size"])]
    command += ["--immediate-mode"]
    if p["filter"]:
        command.append(p["filter"])
    if module.check_mode:
        module.exit_json(changed=True, path=path, pid=None, started_at=None)

    started_at = time.time()
    try:
        pid, proc_start = spawn_detached(command, os.devnull, log_path)
    except SpawnError as exc:
        module.fail_json(msg="interface: cannot start tcpdump: %s" % exc)
    record = dict(
        pid=pid,
        proc_start=proc_start,
        started_at=started_at,
        interface=p["interface"],
        path=path,
        command=command,
        log=log_path,
    )
    write_json(pid_path, record)

    deadline = started_at + p["ready_timeout"]
    while True:
        text = read_text(log_path)
        if LISTENING_RE.search(text):
            break
        if not is_running(pid, proc_start):
            text = read_text(log_path)  # what it wrote before it exited
            if LISTENING_RE.search(text):
                break
            remove(pid_path, path)
            module.fail_json(msg="interface: tcpdump exited: %s" % last_line(text))
        if time.time() >= deadline:
            stop(pid, proc_start, signal.SIGKILL, 2.0)
            remove(pid_path, path)
            module.fail_json(
                msg="ready_timeout: tcpdump on %s did not report listening within %s s (%s)"
                % (p["interface"], p["ready_timeout"], last_line(text))
            )
        time.sleep(POLL)
    module.exit_json(changed=True, path=path, pid=pid, started_at=started_at)


def finish(module, result):
    if result["sha256"] is None:
        module.fail_json(msg="path: tcpdump left no capture file %s" % result["path"], **result)
    module.exit_json(**result)


def stopped(module, path, pid_path, log_path):
    if not os.path.exists(pid_path):
        module.fail_json(msg="path: no capture recorded for %s (no %s)" % (path, os.path.basename(pid_path)))
    record = load_record(module, pid_path)
    if "result" in record:
        finish(module, dict(record["result"], changed=False))
    pid, proc_start = record.get("pid"), record.get("proc_start")
    if module.check_mode:
        module.exit_json(changed=True, path=path, pid=pid, started_at=record.get("started_at"))
    how = stop(pid, proc_start, signal.SIGINT, STOP_TIMEOUT)
    status = dict(gone="exited").get(how, how)
    if status == "exited":
        module.warn("tcpdump (pid %s) for %s had ended before the stop" % (pid, path))
    result = dict(
        changed=True,
        path=path,
        pid=pid,
        started_at=record.get("started_at"),
        stopped_at=time.time(),
        status=status,
        size=None,
        sha256=None,
    )
    text = read_text(log_path)
    for key, regex in COUNT_RES.items():
        match = regex.search(text)
        result[key] = int(match.group(1)) if match else None
    if os.path.isfile(path):
        result["size"] = os.path.getsize(path)
        result["sha256"] = file_sha256(path)
    record["result"] = dict((k, v) for k, v in result.items() if k != "changed")
    write_json(pid_path, record)
    finish(module, result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["started", "stopped"], required=True),
            interface=dict(type="str"),
            path=dict(type="path", required=True),
            snaplen=dict(type="int", default=0),
            buffer_size=dict(type="int", default=16384),
            filter=dict(type="str"),
            ready_timeout=dict(type="float", default=10.0),
            fetch_to=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    if not os.path.isabs(path):
        module.fail_json(msg="path: expected an absolute path, got %r" % path)
    pid_path, log_path = path + ".pid", path + ".log"
    if module.params["state"] == "started":
        start(module, path, pid_path, log_path)
    else:
        stopped(module, path, pid_path, log_path)


if __name__ == "__main__":
    main()
