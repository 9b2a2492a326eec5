#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: transfer
short_description: Start, observe and stop a long HTTP download with curl in the background
description:
  - With O(state=started), starts C(curl) detached from the module (new session, no inherited
    descriptors), so the task returns at once and the download goes on across handovers. curl runs
    without low-speed limit or maximum time, so its TCP connection survives a long outage, never
    through a proxy, and with C(--globoff) so IPv6 URLs with brackets work; C(--no-buffer) keeps the
    data file up to date for O(state=running).
  - The transfer's files are in O(state_dir), named after O(name) - C(NAME.json) (metadata and, once
    stopped, the result), C(NAME.body) (the data), C(NAME.out) (curl's C(--write-out '%{json}'))
    and C(NAME.log) (curl's stderr).
  - With O(state=running), reports the bytes received so far.
  - With O(state=stopped), waits for the download to end (or stops it), checks size and sha256 and
    records the result in C(NAME.json); a later O(state=stopped) returns the recorded result unchanged.
    The task fails when the download did not complete or its size or sha256 is not the expected one,
    and still returns every field.
  - The process is identified by pid and kernel start time, so a reused pid is never taken for curl.
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  state:
    description: Start the download, report on it, or wait for its end (or stop it) and check it.
    type: str
    choices: [started, running, stopped]
    default: started
  name:
    description: Name of the transfer (letters, digits, dot, dash, underscore); names its files.
    type: str
    required: true
  state_dir:
    description: Folder of the transfer's files; created by O(state=started) if missing.
    type: path
    required: true
  url:
    description: URL to download; required with O(state=started).
    type: str
  expected_sha256:
    description:
      - SHA-256 (64 hex digits) the downloaded data must have.
      - Given with O(state=started), it is recorded and used by O(state=stopped) unless given again there.
    type: str
  expected_bytes:
    description:
      - Size in bytes the downloaded data must have.
      - Given with O(state=started), it is recorded and used by O(state=stopped) unless given again there.
    type: int
  limit_rate:
    description: Maximum transfer rate, passed to C(curl --limit-rate), for example V(200k) or V(1M).
    type: str
  timeout:
    description: With O(state=stopped) and O(wait=true), seconds to wait for the end before killing curl.
    type: float
    default: 300.0
  wait:
    description: With O(state=stopped), wait for the download to end (V(true)) or kill it now (V(false)).
    type: bool
    default: true
  wait_for_data:
    description:
      - With O(state=started), seconds to wait until the first bytes of the body have arrived (the
        connection is up and the server sends), so that what follows the task (a handover) finds the
        transfer flowing. The task fails, and curl is stopped, when curl ends or nothing arrives in
        that time. V(0) returns as soon as curl is started.
    type: float
    default: 0.0
  force:
    description:
      - With O(state=started), remove the files of an earlier, finished transfer of the same name first.
      - A running transfer is never replaced.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports whether it would start or stop the transfer; starts, stops and writes nothing.
  diff_mode:
    support: none
    description: No diff is returned.
"""

EXAMPLES = r"""
- name: Start the download before the handover
  mvpn.lab.transfer:
    name: download
    state_dir: /var/lib/mvpn-lab/mn/transfers
    url: "http://[fec0:106:2500::2]/files/test-100M.bin"
    expected_sha256: "{{ test_file.sha256 }}"
    expected_bytes: 104857600
    limit_rate: 200k
    wait_for_data: 10
  register: download

- name: Bytes so far
  mvpn.lab.transfer:
    name: download
    state_dir: /var/lib/mvpn-lab/mn/transfers
    state: running

- name: Wait for the end of the download and check it
  mvpn.lab.transfer:
    name: download
    state_dir: /var/lib/mvpn-lab/mn/transfers
    state: stopped
    timeout: 600
  register: download_result
"""

RETURN = r"""
name:
  description: The transfer's name.
  returned: always
  type: str
  sample: download
url:
  description: The URL being downloaded.
  returned: when state is stopped
  type: str
  sample: "http://[fec0:106:2500::2]/files/test-100M.bin"
expected_sha256:
  description: The expected sha256 that was checked (lower case); null without one.
  returned: when state is stopped
  type: str
  sample: 20492a4d0d84f8beb1767f6616229f85d44c2827b64bdbfb260ee12fa1109e0e
expected_bytes:
  description: The expected size that was checked; null without one.
  returned: when state is stopped
  type: int
  sample: 104857600
pid:
  description: Process id of curl.
  returned: always
  type: int
  sample: 4242
started_at:
  description: time.time() when curl was started; null in check mode when nothing was started.
  returned: always
  type: float
  sample: 1764183900.5
first_data_at:
  description: time.time() when the first bytes of the body were seen, with O(wait_for_data) > 0.
  returned: when state is started
  type: float
  sample: 1764183900.9
running:
  description: Whether curl is still running.
  returned: when state is running
  type: bool
  sample: true
bytes:
  description: Size of the downloaded data so far (with O(state=running)) or in the end.
  returned: when state is running or stopped
  type: int
  sample: 104857600
status:
  description:
    - V(running) or V(exited) (not yet stopped) with O(state=running), unless a result is recorded.
    - The result with O(state=stopped) - V(completed) (curl exited 0), V(failed) (curl failed) or
      V(killed) (still running after O(timeout), or O(wait=false)).
  returned: when state is running or stopped
  type: str
  sample: completed
sha256:
  description: SHA-256 of the downloaded data; null when there is none.
  returned: when state is stopped
  type: str
  sample: 20492a4d0d84f8beb1767f6616229f85d44c2827b64bdbfb260ee12fa1109e0e
sha256_ok:
  description: Whether RV(sha256) is the expected one; null without an expected sha256.
  returned: when state is stopped
  type: bool
  sample: true
bytes_ok:
  description: Whether RV(bytes) is the expected size; null without an expected size.
  returned: when state is stopped
  type: bool
  sample: true
http_code:
  description: HTTP status code from curl's write-out; null when curl wrote none (killed).
  returned: when state is stopped
  type: int
  sample: 200
curl_exit:
  description: curl's exit code from its write-out; null when curl wrote none (killed).
  returned: when state is stopped
  type: int
  sample: 0
time_total:
  description: curl's C(time_total) in seconds; null when curl wrote none.
  returned: when state is stopped
  type: float
  sample: 524.3
finished_at:
  description: time.time() when curl ended (its write-out file's time) or was killed.
  returned: when state is stopped
  type: float
  sample: 1764184424.8
error:
  description: Why the transfer did not complete (the last line of curl's stderr); null when it completed.
  returned: when state is stopped
  type: str
  sample: "curl: (22) The requested URL returned error: 404"
"""

import hashlib
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
    wait_exit,
    write_json,
)
from ansible_collections.mvpn.lab.plugins.module_utils.checksum import file_sha256

NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
RATE_RE = re.compile(r"^[0-9]+[kKmMgG]?$")
#: Seconds between SIGTERM and SIGKILL when a transfer is killed.
TERM_TIMEOUT = 5.0


def files(p):
    base = os.path.join(p["state_dir"], p["name"])
    return dict(json=base + ".json", body=base + ".body", out=base + ".out", log=base + ".log")


def size_of(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def last_line(path):
    try:
        with open(path, "rb") as fh:
            lines = [line.strip() for line in fh.read().decode("utf-8", "replace").splitlines()]
    except (IOError, OSError):
        return None
    lines = [line for line in lines if line]
    return lines[-1] if lines else None


def load_record(module, paths):
    if not os.path.exists(paths["json"]):
        module.fail_json(
            msg="name: no transfer %s in %s (no %s)"
            % (module.params["name"], module.params["state_dir"], os.path.basename(paths["json"]))
        )
    try:
        return read_json(paths["json"])
    except (IOError, OSError, ValueError) as exc:
        module.fail_json(msg="name: cannot read %s: %s" % (paths["json"], exc))


def start(module, paths):
    p = module.params
    if not p["url"]:
        module.fail_json(msg="url: required when state is started")
    if p["url"].startswith("-") or "://" not in p["url"]:
        module.fail_json(msg="url: expected a URL like http://[fec0::2]/files/x.bin, got %r" % p["url"])
    if p["limit_rate"] is not None and not RATE_RE.match(p["limit_rate"]):
        module.fail_json(msg="limit_rate: expected a rate like 200k or 1M, got %r" % p["limit_rate"])
    if os.path.exists(paths["json"]):
        record = load_record(module, paths)
        if is_running(record.get("pid"), record.get("proc_start")):
            module.fail_json(
                msg="name: transfer %s is already running (pid %s)" % (p["name"], record.get("pid"))
            )
        if not p["force"]:
            module.fail_json(
                msg="name: transfer %s already exists in %s; use force=true to start it again"
                % (p["name"], p["state_dir"])
            )
    curl = module.get_bin_path("curl", required=True)
    command = [curl, "--silent", "--show-error", "--fail", "--globoff", "--noproxy", "*", "--no-buffer"]
    command += ["--output", paths["body"], "--write-out", "%{json}"]
    if p["limit_rate"]:
        command += ["--limit-rate", p["limit_rate"]]
    command += ["--", p["url"]]
    result = dict(changed=True, name=p["name"], pid=None, started_at=None)
    if module.check_mode:
        module.exit_json(**result)
    if not os.path.isdir(p["state_dir"]):
        try:
            os.makedirs(p["state_dir"], 0o755)
        except OSError as exc:
            module.fail_json(msg="state_dir: cannot create %s: %s" % (p["state_dir"], exc.strerror))
    for path in paths.values():  # force: the old transfer's files go
        if os.path.exists(path):
            os.unlink(path)
    started_at = time.time()
    try:
        pid, proc_start = spawn_detached(command, paths["out"], paths["log"])
    except SpawnError as exc:
        module.fail_json(msg="url: cannot start curl: %s" % exc)
    record = dict(
        name=p["name"],
        pid=pid,
        proc_start=proc_start,
        url=p["url"],
        started_at=started_at,
        command=command,
        files=paths,
        expected_sha256=p["expected_sha256"],
        expected_bytes=p["expected_bytes"],
    )
    write_json(paths["json"], record)
    result.update(pid=pid, started_at=started_at, first_data_at=None)
    if p["wait_for_data"] > 0:
        result["first_data_at"] = wait_for_data(module, paths, pid, proc_start, p["wait_for_data"])
    module.exit_json(**result)


def wait_for_data(module, paths, pid, proc_start, seconds):
    """time.time() when the body file first has a byte; fails (curl stopped) when curl ends first
    or nothing arrives within ``seconds``."""
    deadline = time.time() + seconds
    while True:
        if size_of(paths["body"]) > 0:
            return time.time()
        if not is_running(pid, proc_start):
            said = last_line(paths["log"]) or "no message"
            module.fail_json(msg="url: curl ended before any data arrived (%s)" % said, pid=pid)
        if time.time() >= deadline:
            stop(pid, proc_start, signal.SIGTERM, TERM_TIMEOUT)
            module.fail_json(
                msg="url: no data from %s within %s s (wait_for_data); curl stopped"
                % (module.params["url"], seconds),
                pid=pid,
            )
        time.sleep(0.02)


def running(module, paths):
    record = load_record(module, paths)
    alive = is_running(record.get("pid"), record.get("proc_start"))
    status = "running" if alive else "exited"
    if "result" in record:
        status = record["result"]["status"]
    module.exit_json(
        changed=False,
        name=record.get("name", module.params["name"]),
        pid=record.get("pid"),
        started_at=record.get("started_at"),
        running=alive,
        bytes=size_of(paths["body"]),
        status=status,
    )


def read_write_out(path):
    """curl's --write-out '%{json}' as a dict, or None when curl wrote none."""
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except (IOError, OSError):
        return None
    if not text:
        return None
    try:
        data = read_json(path)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def verdict(result):
    """The one-line failure message for a result, or None when the transfer is good."""
    name = result["name"]
    if result["status"] == "killed":
        return "transfer %s killed: %s (%d bytes received)" % (name, result["error"], result["bytes"])
    if result["status"] == "failed":
        return "transfer %s failed: curl exit %s, HTTP %s: %s" % (
            name,
            result["curl_exit"],
            result["http_code"],
            result["error"],
        )
    if result["bytes_ok"] is False:
        return "transfer %s: %d bytes, expected %d" % (name, result["bytes"], result["expected_bytes"])
    if result["sha256_ok"] is False:
        return "transfer %s: sha256 %s, expected %s" % (name, result["sha256"], result["expected_sha256"])
    return None


def finish(module, result):
    msg = verdict(result)
    if msg:
        module.fail_json(msg=msg, **result)
    module.exit_json(**result)


def stopped(module, paths):
    p = module.params
    record = load_record(module, paths)
    if "result" in record:
        finish(module, dict(record["result"], changed=False))
    pid, proc_start = record.get("pid"), record.get("proc_start")
    if module.check_mode:
        module.exit_json(
            changed=True,
            name=record.get("name", p["name"]),
            pid=pid,
            started_at=record.get("started_at"),
            bytes=size_of(paths["body"]),
        )
    error = None
    if is_running(pid, proc_start):
        ended = p["wait"] and wait_exit(pid, proc_start, p["timeout"])
        # "gone": curl ended by itself just before the signal; its write-out tells how
        if not ended and stop(pid, proc_start, signal.SIGTERM, TERM_TIMEOUT) != "gone":
            error = "still running after %s s" % p["timeout"] if p["wait"] else "stopped with wait=false"
    write_out = read_write_out(paths["out"])
    if error:
        status = "killed"
    elif write_out is None:
        status = "failed"
        error = last_line(paths["log"]) or "curl ended without writing %s" % paths["out"]
    elif write_out.get("exitcode") == 0:
        status = "completed"
    else:
        status = "failed"
        error = last_line(paths["log"]) or write_out.get("errormsg") or "curl failed"
    # curl writes its write-out when it ends: that file's time is when the transfer ended.
    finished_at = os.path.getmtime(paths["out"]) if write_out is not None else time.time()
    expected_sha256 = p["expected_sha256"] or record.get("expected_sha256")
    expected_bytes = p["expected_bytes"] if p["expected_bytes"] is not None else record.get("expected_bytes")
    have_body = os.path.isfile(paths["body"])
    size = size_of(paths["body"])
    sha256 = file_sha256(paths["body"]) if have_body else None
    if sha256 is None and status == "completed":
        sha256 = hashlib.sha256(b"").hexdigest()  # curl creates no file for an empty body
    result = dict(
        changed=True,
        name=record.get("name", p["name"]),
        url=record.get("url"),
        pid=pid,
        started_at=record.get("started_at"),
        finished_at=finished_at,
        status=status,
        bytes=size,
        sha256=sha256,
        expected_sha256=expected_sha256.lower() if expected_sha256 else None,
        expected_bytes=expected_bytes,
        sha256_ok=None,
        bytes_ok=None,
        http_code=write_out.get("http_code") if write_out else None,
        curl_exit=write_out.get("exitcode") if write_out else None,
        time_total=write_out.get("time_total") if write_out else None,
        error=error,
    )
    if result["expected_sha256"]:
        result["sha256_ok"] = sha256 == result["expected_sha256"]
    if expected_bytes is not None:
        result["bytes_ok"] = size == expected_bytes
    record["result"] = dict((k, v) for k, v in result.items() if k != "changed")
    write_json(paths["json"], record)
    finish(module, result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["started", "running", "stopped"], default="started"),
            name=dict(type="str", required=True),
            state_dir=dict(type="path", required=True),
            url=dict(type="str"),
            expected_sha256=dict(type="str"),
            expected_bytes=dict(type="int"),
            limit_rate=dict(type="str"),
            timeout=dict(type="float", default=300.0),
            wait=dict(type="bool", default=True),
            force=dict(type="bool", default=False),
            wait_for_data=dict(type="float", default=0.0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not NAME_RE.match(p["name"]) or p["name"] in (".", ".."):
        module.fail_json(
            msg="name: expected a name of letters, digits, dot, dash, underscore, got %r" % p["name"]
        )
    if p["expected_sha256"] is not None and not SHA256_RE.match(p["expected_sha256"]):
        module.fail_json(msg="expected_sha256: expected 64 hex digits, got %r" % p["expected_sha256"])
    if p["expected_bytes"] is not None and p["expected_bytes"] < 0:
        module.fail_json(msg="expected_bytes: expected a number of bytes >= 0, got %d" % p["expected_bytes"])
    if p["timeout"] < 0:
        module.fail_json(msg="timeout: expected a number of seconds >= 0, got %s" % p["timeout"])
    if p["wait_for_data"] < 0:
        module.fail_json(msg="wait_for_data: expected a number of seconds >= 0, got %s" % p["wait_for_data"])
    paths = files(p)
    if p["state"] == "started":
        start(module, paths)
    elif p["state"] == "running":
        running(module, paths)
    else:
        stopped(module, paths)


if __name__ == "__main__":
    main()
