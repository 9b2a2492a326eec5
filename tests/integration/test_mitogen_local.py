"""The default strategy (mvpn.lab.mitogen_linear, Mitogen) through the real ansible-playbook, on localhost.

Each kind of task the suite relies on, under the checkout's ansible.cfg, with and without
Mitogen (ANSIBLE_STRATEGY=linear is the switch): modules run in one persistent interpreter only
with Mitogen; raw, delegate_to + run_once, async with poll 0 and async_status, a failure caught by
rescue and ``meta: clear_host_errors`` behave the same; a host that does not answer is recorded as
unreachable (ignore_unreachable) at once, never waited for.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Probe the host as the repetitions do (raw, the interpreter started bare)
      ansible.builtin.raw: "{{ ansible_python_interpreter }} -c ''"
      register: probe
      changed_when: false
      ignore_unreachable: true

    - name: Note a host that does not answer
      ansible.builtin.set_fact:
        down: "{{ probe.unreachable | default(false) }}"

    - name: Stop here for a host that does not answer
      ansible.builtin.meta: end_host
      when: down | bool

    - name: The parent of a command (the module's interpreter)
      ansible.builtin.command: "{{ ansible_python_interpreter }} -c 'import os; print(os.getppid())'"
      register: first
      changed_when: false

    - name: Again, in a second task
      ansible.builtin.command: "{{ ansible_python_interpreter }} -c 'import os; print(os.getppid())'"
      register: second
      changed_when: false

    - name: A background job
      ansible.builtin.command: "{{ ansible_python_interpreter }} -c 'import time; time.sleep(1); print(42)'"
      async: 60
      poll: 0
      register: job
      changed_when: false

    - name: Wait for it
      ansible.builtin.async_status:
        jid: "{{ job.ansible_job_id }}"
      register: job_result
      until: job_result.finished
      retries: 30
      delay: 1

    - name: Once, on the controller
      ansible.builtin.command: "{{ ansible_python_interpreter }} -c 'print(7)'"
      delegate_to: localhost
      run_once: true
      register: once
      changed_when: false

    - name: A failure, caught
      block:
        - name: Fail
          ansible.builtin.command: "false"
          changed_when: false
      rescue:
        - name: Caught
          ansible.builtin.set_fact:
            rescued: "{{ ansible_failed_task.name }}"

    - name: Bring back failed hosts
      ansible.builtin.meta: clear_host_errors

- hosts: localhost
  gather_facts: false
  tasks:
    - name: Results
      ansible.builtin.copy:
        dest: "{{ work }}/results.json"
        mode: "0644"
        content: >-
          {{ {'probe': hostvars['localhost'].probe, 'first': first.stdout, 'second': second.stdout,
              'job': job_result.stdout, 'once': once.stdout, 'rescued': rescued,
              'down': hostvars['gone'].down, 'gone_probe': hostvars['gone'].probe} | to_json }}
"""


def _closed_port() -> int:
    """A local TCP port nothing listens on (connections to it are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _play(tmp_path: Path, strategy: str | None) -> tuple[dict, float]:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {
                        "localhost": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable,
                        },
                        # a host that is down: SSH to a port where nothing listens
                        "gone": {
                            "ansible_connection": "ssh",
                            "ansible_host": "127.0.0.1",
                            "ansible_port": _closed_port(),
                            "ansible_user": "nobody",
                            "ansible_python_interpreter": "/usr/bin/python3",
                            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o BatchMode=yes",
                        },
                    }
                }
            }
        )
    )
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    if strategy is not None:
        env["ANSIBLE_STRATEGY"] = strategy
    argv = [
        str(ANSIBLE_PLAYBOOK),
        "-i",
        str(inventory),
        str(playbook),
        "-e",
        json.dumps({"work": str(tmp_path)}),
    ]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((tmp_path / "results.json").read_text()), elapsed


@pytest.mark.parametrize(
    ("strategy", "persistent"), [(None, True), ("linear", False)], ids=["default", "linear"]
)
def test_the_suite_s_kinds_of_task_with_and_without_mitogen(tmp_path, strategy, persistent):
    results, elapsed = _play(tmp_path, strategy)
    # with Mitogen both commands are children of the one interpreter that stays; without, of a
    # fresh module interpreter per task
    assert results["first"].isdigit() and (results["first"] == results["second"]) is persistent
    assert results["probe"]["rc"] == 0 and not results["probe"].get("unreachable")
    assert results["job"] == "42" and results["once"] == "7"
    assert results["rescued"] == "Fail"
    # the host that is down: recorded, not waited for (the timeout is ansible.cfg's 60 s)
    assert results["down"] is True and results["gone_probe"]["unreachable"] is True
    assert elapsed < 60, elapsed
