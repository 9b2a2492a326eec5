"""mvpn.lab.transfer with the real curl against a local HTTP server in a thread."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ansible_collections.mvpn.lab.plugins.module_utils import background
from ansible_collections.mvpn.lab.plugins.modules import transfer

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


def content(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


class Handler(BaseHTTPRequestHandler):
    """/files/SIZE: SIZE bytes at once; /slow/SIZE: half, then the rest once the server is released."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        kind, _slash, size = self.path.strip("/").partition("/")
        if kind not in ("files", "slow") or not size.isdigit():
            self.send_error(404)
            return
        data = content(int(size))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            if kind == "files":
                self.wfile.write(data)
                return
            half = len(data) // 2
            self.wfile.write(data[:half])
            self.wfile.flush()
            self.server.sent_half.set()
            if self.server.release.wait(30):
                self.wfile.write(data[half:])
        except OSError:
            pass  # the client went away (killed transfers)


class Server(ThreadingHTTPServer):
    daemon_threads = True


def _serve(address_family, host):
    Server.address_family = address_family
    server = Server((host, 0), Handler)
    server.release = threading.Event()
    server.sent_half = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def http():
    server = _serve(socket.AF_INET, "127.0.0.1")
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def spawned():
    """Pids of curls the tests started; any still running at the end is killed."""
    pids = []
    yield pids
    for pid in pids:
        if background.is_running(pid):
            os.kill(pid, 9)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(run_module, tmp_path, check=False, **args):
    return run_module(transfer, dict({"name": "dl", "state_dir": str(tmp_path / "t")}, **args), check=check)


def started(run_module, tmp_path, spawned, **args):
    result = run(run_module, tmp_path, **args)
    assert result["changed"] is True, result
    spawned.append(result["pid"])
    return result


def test_download_completes_and_is_checked(http, tmp_path, run_module, spawned):
    data = content(300_000)
    start = started(
        run_module,
        tmp_path,
        spawned,
        url=http.url + "/files/300000",
        expected_sha256=sha(data).upper(),
        expected_bytes=len(data),
    )
    record = json.loads((tmp_path / "t/dl.json").read_text())
    assert record["pid"] == start["pid"] and record["started_at"] == start["started_at"]
    assert record["url"] == http.url + "/files/300000"
    command = record["command"]
    assert command[1:5] == ["--silent", "--show-error", "--fail", "--globoff"]
    assert command[command.index("--write-out") + 1] == "%{json}"
    assert command[command.index("--output") + 1] == str(tmp_path / "t/dl.body")
    for limit in ("--speed-limit", "--speed-time", "--max-time", "-m", "-y", "-Y", "--limit-rate"):
        assert limit not in command
    # expectations given at start are used by stopped
    result = run(run_module, tmp_path, state="stopped", timeout=20)
    assert result["changed"] is True
    assert result["status"] == "completed"
    assert result["bytes"] == len(data) and result["bytes_ok"] is True
    assert result["sha256"] == sha(data) and result["sha256_ok"] is True
    assert result["http_code"] == 200 and result["curl_exit"] == 0 and result["error"] is None
    assert result["started_at"] <= result["finished_at"] <= time.time()
    assert isinstance(result["time_total"], float)
    assert (tmp_path / "t/dl.body").read_bytes() == data
    again = run(run_module, tmp_path, state="stopped")
    assert again["changed"] is False
    same = ("changed", "invocation")
    assert {k: v for k, v in again.items() if k not in same} == {
        k: v for k, v in result.items() if k not in same
    }
    assert json.loads((tmp_path / "t/dl.json").read_text())["result"]["status"] == "completed"


def test_curl_is_detached(http, tmp_path, run_module, spawned):
    begin = time.monotonic()
    result = started(run_module, tmp_path, spawned, url=http.url + "/slow/200000")
    assert time.monotonic() - begin < 15, "the module waited for curl"
    pid = result["pid"]
    assert http.sent_half.wait(10)
    stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ppid, pgrp, session = int(stat[1]), int(stat[2]), int(stat[3])
    assert ppid != os.getpid(), "curl is the module's child"
    assert session != os.getsid(0), "curl is in the module's session"
    assert pgrp == session != pid, "curl should be in a new session whose leader is gone"
    fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert fds[0] == "/dev/null"
    assert fds[1] == str(tmp_path / "t/dl.out")
    assert fds[2] == str(tmp_path / "t/dl.log")
    assert not [target for target in fds.values() if target.startswith("pipe:")], fds
    assert os.readlink(f"/proc/{pid}/cwd") == "/"


def test_running_reports_progress(http, tmp_path, run_module, spawned):
    start = started(run_module, tmp_path, spawned, url=http.url + "/slow/400000")
    assert http.sent_half.wait(10)
    body = tmp_path / "t/dl.body"
    deadline = time.time() + 10
    while not body.exists() or body.stat().st_size < 200_000:
        assert time.time() < deadline, "curl did not write what it received (no --no-buffer?)"
        time.sleep(0.05)
    result = run(run_module, tmp_path, state="running")
    assert result["changed"] is False
    assert result["running"] is True and result["status"] == "running"
    assert result["pid"] == start["pid"]
    assert result["bytes"] == 200_000
    http.release.set()
    done = run(run_module, tmp_path, state="stopped", timeout=20, expected_bytes=400_000)
    assert done["status"] == "completed" and done["bytes_ok"] is True
    after = run(run_module, tmp_path, state="running")
    assert after["running"] is False and after["status"] == "completed"


def test_stop_without_wait_kills(http, tmp_path, run_module, spawned):
    start = started(run_module, tmp_path, spawned, url=http.url + "/slow/400000")
    assert http.sent_half.wait(10)
    begin = time.monotonic()
    result = run(run_module, tmp_path, state="stopped", wait=False)
    assert time.monotonic() - begin < 10
    assert result["failed"] is True and result["changed"] is True
    assert result["status"] == "killed"
    assert result["curl_exit"] is None and result["http_code"] is None
    assert result["error"] == "stopped with wait=false"
    assert result["msg"] == f"transfer dl killed: stopped with wait=false ({result['bytes']} bytes received)"
    assert not background.is_running(start["pid"])
    again = run(run_module, tmp_path, state="stopped")
    assert again["failed"] is True and again["changed"] is False
    assert again["status"] == "killed" and again["finished_at"] == result["finished_at"]


def test_stop_kills_after_timeout(http, tmp_path, run_module, spawned):
    start = started(run_module, tmp_path, spawned, url=http.url + "/slow/400000")
    begin = time.monotonic()
    result = run(run_module, tmp_path, state="stopped", timeout=0.5)
    assert 0.5 <= time.monotonic() - begin < 15
    assert result["status"] == "killed"
    assert result["msg"].startswith("transfer dl killed: still running after 0.5 s (")
    assert not background.is_running(start["pid"])


def test_http_error(http, tmp_path, run_module, spawned):
    started(run_module, tmp_path, spawned, url=http.url + "/missing")
    result = run(run_module, tmp_path, state="stopped", timeout=20)
    assert result["status"] == "failed"
    assert result["http_code"] == 404 and result["curl_exit"] == 22
    assert result["error"] == "curl: (22) The requested URL returned error: 404"
    assert result["msg"] == (
        "transfer dl failed: curl exit 22, HTTP 404: curl: (22) The requested URL returned error: 404"
    )
    assert result["bytes"] == 0 and result["sha256"] is None


def test_start_waits_for_the_first_data(http, tmp_path, run_module, spawned):
    begin = time.time()
    start = started(run_module, tmp_path, spawned, url=http.url + "/slow/400000", wait_for_data=10)
    assert begin <= start["started_at"] <= start["first_data_at"] <= time.time()
    assert (tmp_path / "t/dl.body").stat().st_size > 0  # the connection was up when it returned
    http.release.set()
    assert run(run_module, tmp_path, state="stopped", timeout=20)["status"] == "completed"
    # without the option: no waiting, no time
    again = started(run_module, tmp_path, spawned, url=http.url + "/files/10", force=True)
    assert again["first_data_at"] is None


def test_start_fails_when_no_data_comes(tmp_path, run_module, spawned):
    with socket.socket() as s:  # a port nobody listens on: curl ends at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run(run_module, tmp_path, url=f"http://127.0.0.1:{port}/x", wait_for_data=10)
    assert result["failed"] is True
    assert result["msg"].startswith("url: curl ended before any data arrived (curl: (7) Failed to connect")
    # a server that accepts but never answers: the wait ends and curl is stopped
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x"
        result = run(run_module, tmp_path, url=url, wait_for_data=0.5, force=True)
        spawned.append(result["pid"])
        assert result["failed"] is True
        assert result["msg"] == f"url: no data from {url} within 0.5 s (wait_for_data); curl stopped"
        assert not background.is_running(result["pid"])


def test_connection_refused(tmp_path, run_module, spawned):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started(run_module, tmp_path, spawned, url=f"http://127.0.0.1:{port}/x")
    result = run(run_module, tmp_path, state="stopped", timeout=20)
    assert result["status"] == "failed" and result["curl_exit"] == 7
    assert "Failed to connect" in result["error"]


def test_sha256_and_size_mismatch(http, tmp_path, run_module, spawned):
    started(run_module, tmp_path, spawned, url=http.url + "/files/1000")
    wrong = sha(b"something else")
    result = run(run_module, tmp_path, state="stopped", timeout=20, expected_sha256=wrong)
    assert result["status"] == "completed" and result["sha256_ok"] is False and result["bytes_ok"] is None
    assert result["msg"] == f"transfer dl: sha256 {sha(content(1000))}, expected {wrong}"
    run(run_module, tmp_path, name="dl2", url=http.url + "/files/1000")
    spawned.append(json.loads((tmp_path / "t/dl2.json").read_text())["pid"])
    result = run(run_module, tmp_path, name="dl2", state="stopped", timeout=20, expected_bytes=999)
    assert result["bytes_ok"] is False and result["sha256_ok"] is None
    assert result["msg"] == "transfer dl2: 1000 bytes, expected 999"


def test_ipv6_url_with_brackets(tmp_path, run_module, spawned):
    try:
        server = _serve(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        url = f"http://[::1]:{server.server_address[1]}/files/5000"
        started(run_module, tmp_path, spawned, url=url, limit_rate="1M")
        command = json.loads((tmp_path / "t/dl.json").read_text())["command"]
        assert command[command.index("--limit-rate") + 1] == "1M"
        result = run(run_module, tmp_path, state="stopped", timeout=20, expected_sha256=sha(content(5000)))
        assert result["status"] == "completed" and result["sha256_ok"] is True, result
    finally:
        server.shutdown()
        server.server_close()


def test_running_transfer_is_never_replaced(http, tmp_path, run_module, spawned):
    start = started(run_module, tmp_path, spawned, url=http.url + "/slow/400000")
    for force in (False, True):
        result = run(run_module, tmp_path, url=http.url + "/files/10", force=force)
        assert result["msg"] == f"name: transfer dl is already running (pid {start['pid']})"
    assert background.is_running(start["pid"])


def test_finished_transfer_needs_force(http, tmp_path, run_module, spawned):
    started(run_module, tmp_path, spawned, url=http.url + "/files/10")
    run(run_module, tmp_path, state="stopped", timeout=20)
    result = run(run_module, tmp_path, url=http.url + "/files/20")
    assert (
        result["msg"]
        == f"name: transfer dl already exists in {tmp_path / 't'}; use force=true to start it again"
    )
    assert (tmp_path / "t/dl.body").read_bytes() == content(10)
    started(run_module, tmp_path, spawned, url=http.url + "/files/20", force=True)
    assert "result" not in json.loads((tmp_path / "t/dl.json").read_text())
    result = run(run_module, tmp_path, state="stopped", timeout=20)
    assert result["changed"] is True and result["bytes"] == 20


def test_check_mode_starts_and_stops_nothing(http, tmp_path, run_module, spawned):
    result = run(run_module, tmp_path, check=True, url=http.url + "/files/10")
    assert result["changed"] is True and result["pid"] is None
    assert not (tmp_path / "t").exists()
    start = started(run_module, tmp_path, spawned, url=http.url + "/slow/400000")
    result = run(run_module, tmp_path, check=True, state="stopped", wait=False)
    assert result["changed"] is True
    assert background.is_running(start["pid"])
    assert "result" not in json.loads((tmp_path / "t/dl.json").read_text())


def test_unknown_transfer(tmp_path, run_module):
    for state in ("running", "stopped"):
        result = run(run_module, tmp_path, state=state)
        assert result["msg"] == f"name: no transfer dl in {tmp_path / 't'} (no dl.json)"


def test_reused_pid_is_not_curl(tmp_path, run_module):
    """A recorded pid that now belongs to another process (other start time) counts as exited."""
    other = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "t").mkdir()
        record = {
            "name": "dl",
            "pid": other.pid,
            "proc_start": background.start_time(other.pid) + 1,
            "url": "http://127.0.0.1:1/x",
            "started_at": time.time() - 5,
        }
        (tmp_path / "t/dl.json").write_text(json.dumps(record))
        assert run(run_module, tmp_path, state="running")["running"] is False
        result = run(run_module, tmp_path, state="stopped", wait=False)
        assert result["status"] == "failed"
        assert result["error"].startswith("curl ended without writing")
        assert other.poll() is None, "the module signalled a process that is not its curl"
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize(
    "args, msg",
    [
        ({"name": "../x"}, "name: expected a name of letters, digits, dot, dash, underscore, got '../x'"),
        ({"expected_sha256": "abc"}, "expected_sha256: expected 64 hex digits, got 'abc'"),
        ({"expected_bytes": -1}, "expected_bytes: expected a number of bytes >= 0, got -1"),
        ({"limit_rate": "2 MB"}, "limit_rate: expected a rate like 200k or 1M, got '2 MB'"),
        ({"url": None}, "url: required when state is started"),
        (
            {"url": "-K/etc/passwd"},
            "url: expected a URL like http://[fec0::2]/files/x.bin, got '-K/etc/passwd'",
        ),
        ({"timeout": -1}, "timeout: expected a number of seconds >= 0, got -1.0"),
        ({"wait_for_data": -1}, "wait_for_data: expected a number of seconds >= 0, got -1.0"),
    ],
)
def test_bad_options(tmp_path, run_module, args, msg):
    result = run(run_module, tmp_path, **dict({"url": "http://127.0.0.1:1/x"}, **args))
    assert result["failed"] is True and result["msg"] == msg
    assert not (tmp_path / "t").exists()
