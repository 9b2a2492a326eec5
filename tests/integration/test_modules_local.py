"""handover, transfer and capture through the real ansible-playbook, on localhost (connection local).

The unit tests run the modules in-process; this runs them the way a lab host does: AnsiballZ in a
separate Python, the capture action plugin with Ansible's own connection and loader. wpa_supplicant
is the unit tests' fake (a thread of this process serving a real UNIX socket), tcpdump the fake
program, the web server a thread. The playbook returning at all shows that the background
processes hold none of Ansible's pipes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl"),
]

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
FAKES = ROOT / "tests/unit/plugins"
SIZE = 200_000
DATA = (bytes(range(256)) * (SIZE // 256 + 1))[:SIZE]
RELEASE_AFTER = 3.0


def _load(name):
    spec = importlib.util.spec_from_file_location(name, FAKES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Handler(BaseHTTPRequestHandler):
    """Half of DATA at once, the rest RELEASE_AFTER seconds later: curl outlives its task."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(SIZE))
        self.end_headers()
        try:
            self.wfile.write(DATA[: SIZE // 2])
            self.wfile.flush()
            threading.Event().wait(RELEASE_AFTER)
            self.wfile.write(DATA[SIZE // 2 :])
        except OSError:
            pass


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Handover
      mvpn.lab.handover: {ssid: VISITME, ctrl_dir: "{{ ctrl_dir }}"}
      register: handover
    - name: Start the download
      mvpn.lab.transfer: {name: dl, state_dir: "{{ work }}/t", url: "{{ url }}", expected_sha256: "{{ sha }}"}
      register: transfer_started
    - name: Start the capture
      mvpn.lab.capture: {state: started, interface: lo, path: "{{ work }}/caps/mn.pcap"}
      environment: {PATH: "{{ fake_bin }}:{{ ansible_env_path }}"}
      register: capture_started
    - name: Wait for the download
      mvpn.lab.transfer: {name: dl, state_dir: "{{ work }}/t", state: stopped, timeout: 60}
      register: transfer_stopped
    - name: Stop and fetch the capture
      mvpn.lab.capture: {state: stopped, path: "{{ work }}/caps/mn.pcap", fetch_to: "{{ work }}/run/mn.pcap"}
      register: fetched
    - name: Again
      mvpn.lab.capture: {state: stopped, path: "{{ work }}/caps/mn.pcap", fetch_to: "{{ work }}/run/mn.pcap"}
      register: fetched_again
    - name: Results
      ansible.builtin.copy:
        dest: "{{ work }}/results.json"
        mode: "0644"
        content: >-
          {{ {'handover': handover, 'transfer_started': transfer_started,
              'capture_started': capture_started, 'transfer_stopped': transfer_stopped,
              'fetched': fetched, 'fetched_again': fetched_again} | to_json }}
"""


def test_playbook_on_localhost(tmp_path):
    fakewpa = _load("_fakewpa")
    faketcpdump = _load("_faketcpdump")
    ctrl_dir = Path(tempfile.mkdtemp(prefix="mvpn-wpa-"))
    wpa = fakewpa.FakeWpa(ctrl_dir, "wlan0")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        faketcpdump.install(tmp_path / "bin")
        (tmp_path / "caps").mkdir()
        playbook = tmp_path / "play.yml"
        playbook.write_text(PLAYBOOK)
        extra = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "ctrl_dir": str(ctrl_dir),
            "work": str(tmp_path),
            "url": f"http://127.0.0.1:{server.server_address[1]}/file",
            "sha": hashlib.sha256(DATA).hexdigest(),
            "fake_bin": str(tmp_path / "bin"),
            "ansible_env_path": os.environ["PATH"],
        }
        env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
        env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
        argv = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(playbook), "-e", json.dumps(extra)]
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        wpa.stop()
        shutil.rmtree(ctrl_dir, ignore_errors=True)
        server.shutdown()
        server.server_close()
    results = json.loads((tmp_path / "results.json").read_text())

    handover = results["handover"]
    assert (
        handover["changed"] is True and handover["to_ssid"] == "VISITME" and handover["from_ssid"] == "LOCAL"
    )
    assert handover["handover_at"] < handover["associated_at"]
    assert wpa.current == "VISITME"

    started = results["transfer_started"]["started_at"]
    # the capture task ran while curl was still waiting for the second half: the transfer task
    # returned at once instead of waiting for curl
    assert results["capture_started"]["started_at"] - started < RELEASE_AFTER
    stopped = results["transfer_stopped"]
    assert stopped["status"] == "completed" and stopped["sha256_ok"] is True and stopped["bytes"] == SIZE
    assert stopped["finished_at"] - started >= RELEASE_AFTER

    fetched, again = results["fetched"], results["fetched_again"]
    assert fetched["fetched"] is True and fetched["dest"] == str(tmp_path / "run/mn.pcap")
    local = (tmp_path / "run/mn.pcap").read_bytes()
    assert hashlib.sha256(local).hexdigest() == fetched["sha256"] == again["sha256"]
    assert local == (tmp_path / "caps/mn.pcap").read_bytes()
    assert again["changed"] is False and again["fetched"] is False
