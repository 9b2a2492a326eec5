"""mvpn.lab.capture with a fake tcpdump (a real program first on PATH, see _faketcpdump)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
from ansible_collections.mvpn.lab.plugins.module_utils import background
from ansible_collections.mvpn.lab.plugins.modules import capture

from . import _faketcpdump


@pytest.fixture
def fake_tcpdump(tmp_path, monkeypatch):
    """The fake tcpdump first on PATH; returns a function giving the argument lists it was run with."""
    _faketcpdump.install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_TCPDUMP_ARGS", str(tmp_path / "tcpdump-args.jsonl"))
    monkeypatch.delenv("FAKE_TCPDUMP_MODE", raising=False)
    pids = []

    def runs():
        log = tmp_path / "tcpdump-args.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    runs.pids = pids
    yield runs
    for pid in pids:
        if background.is_running(pid):
            os.kill(pid, 9)


@pytest.fixture
def pcap(tmp_path):
    (tmp_path / "caps").mkdir()
    return tmp_path / "caps" / "mn.pcap"


def run(run_module, pcap, check=False, **args):
    return run_module(capture, dict({"path": str(pcap)}, **args), check=check)


def start(run_module, pcap, fake_tcpdump, **args):
    result = run(run_module, pcap, state="started", **dict({"interface": "wlan0"}, **args))
    if result.get("pid"):
        fake_tcpdump.pids.append(result["pid"])
    return result


def pcap_records(path):
    data = path.read_bytes()
    header = struct.unpack("<IHHiIII", data[:24])
    magic, snaplen, linktype = header[0], header[5], header[6]
    assert magic == 0xA1B2C3D4 and linktype == 1
    n, offset = 0, 24
    while offset + 16 <= len(data):
        incl = struct.unpack("<IIII", data[offset : offset + 16])[2]
        offset += 16 + incl
        n += 1
    assert offset == len(data), "truncated record"
    return snaplen, n


def test_start_and_stop(run_module, pcap, fake_tcpdump):
    result = start(run_module, pcap, fake_tcpdump, filter="ip6 and not port 22")
    assert result["changed"] is True
    assert "listening on wlan0" in pcap.with_name("mn.pcap.log").read_text(), "returned before ready"
    args = fake_tcpdump()[0]
    assert args == [
        "-i", "wlan0", "-n", "-U", "-w", str(pcap), "-s", "0", "-B", "16384", "--immediate-mode",
        "ip6 and not port 22",
    ]  # fmt: skip
    record = json.loads(pcap.with_name("mn.pcap.pid").read_text())
    assert record["pid"] == result["pid"] and record["started_at"] == result["started_at"]
    assert record["interface"] == "wlan0"
    assert record["proc_start"] == background.start_time(result["pid"])
    assert record["command"][1:] == args
    time.sleep(0.1)

    stopped = run(run_module, pcap, state="stopped")
    assert stopped["changed"] is True and stopped["status"] == "stopped"
    assert not background.is_running(result["pid"])
    snaplen, packets = pcap_records(pcap)
    assert snaplen == 262144
    assert packets >= 3
    assert stopped["packets_captured"] == packets
    assert stopped["packets_received"] == packets + 1
    assert stopped["packets_dropped"] == 0
    assert stopped["size"] == pcap.stat().st_size
    assert stopped["sha256"] == hashlib.sha256(pcap.read_bytes()).hexdigest()
    assert stopped["started_at"] == result["started_at"] < stopped["stopped_at"] <= time.time()

    again = run(run_module, pcap, state="stopped")
    assert again["changed"] is False
    for key in ("sha256", "size", "packets_captured", "packets_dropped", "stopped_at", "status"):
        assert again[key] == stopped[key], key


def test_tcpdump_is_detached(run_module, pcap, fake_tcpdump):
    pid = start(run_module, pcap, fake_tcpdump)["pid"]
    stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    assert int(stat[1]) != os.getpid() and int(stat[3]) != os.getsid(0)
    fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert fds[0] == fds[1] == "/dev/null"
    assert fds[2] == str(pcap) + ".log"
    assert not [t for t in fds.values() if t.startswith(("pipe:", "socket:"))], fds


def test_snaplen(run_module, pcap, fake_tcpdump):
    start(run_module, pcap, fake_tcpdump, snaplen=128)
    assert fake_tcpdump()[0][fake_tcpdump()[0].index("-s") + 1] == "128"
    run(run_module, pcap, state="stopped")
    assert pcap_records(pcap)[0] == 128


@pytest.mark.parametrize("size, expected", [(4096, ["-B", "4096"]), (0, [])])
def test_buffer_size(run_module, pcap, fake_tcpdump, size, expected):
    start(run_module, pcap, fake_tcpdump, buffer_size=size)
    args = fake_tcpdump()[0]
    assert args[args.index("-s") + 2 : args.index("--immediate-mode")] == expected
    run(run_module, pcap, state="stopped")


def test_start_is_idempotent_while_running(run_module, pcap, fake_tcpdump):
    first = start(run_module, pcap, fake_tcpdump)
    second = start(run_module, pcap, fake_tcpdump)
    assert second["changed"] is False
    assert second["pid"] == first["pid"] and second["started_at"] == first["started_at"]
    assert len(fake_tcpdump()) == 1
    other = start(run_module, pcap, fake_tcpdump, interface="eth0")
    assert other["msg"] == f"interface: {pcap} is being captured on wlan0, not eth0"


def test_captures_are_never_overwritten(run_module, pcap, fake_tcpdump):
    start(run_module, pcap, fake_tcpdump)
    stopped = run(run_module, pcap, state="stopped")
    result = start(run_module, pcap, fake_tcpdump)
    assert result["failed"] is True
    assert result["msg"] == f"path: {pcap} exists; captures are never overwritten"
    assert hashlib.sha256(pcap.read_bytes()).hexdigest() == stopped["sha256"]
    assert len(fake_tcpdump()) == 1


def test_existing_file_is_never_overwritten(run_module, pcap, fake_tcpdump):
    pcap.write_bytes(b"an older capture")
    result = start(run_module, pcap, fake_tcpdump)
    assert result["msg"] == f"path: {pcap} exists; captures are never overwritten"
    assert pcap.read_bytes() == b"an older capture"
    assert fake_tcpdump() == []


def test_tcpdump_fails_to_start(run_module, pcap, fake_tcpdump):
    result = start(run_module, pcap, fake_tcpdump, interface="nosuch")
    assert result["failed"] is True
    assert result["msg"] == "interface: tcpdump exited: (SIOCGIFHWADDR: No such device)"
    assert not pcap.exists() and not pcap.with_name("mn.pcap.pid").exists()
    # a corrected retry works
    assert start(run_module, pcap, fake_tcpdump)["changed"] is True


def test_ready_timeout(run_module, pcap, fake_tcpdump, monkeypatch):
    monkeypatch.setenv("FAKE_TCPDUMP_MODE", "mute")
    begin = time.monotonic()
    result = start(run_module, pcap, fake_tcpdump, ready_timeout=0.4)
    assert 0.4 <= time.monotonic() - begin < 10
    assert result["msg"].startswith("ready_timeout: tcpdump on wlan0 did not report listening within 0.4 s")
    assert not pcap.exists() and not pcap.with_name("mn.pcap.pid").exists()
    assert not [p for p in _pids_of(pcap) if background.is_running(p)], "tcpdump left running"


def _pids_of(pcap):
    """Pids of processes whose command line names the capture file."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if str(pcap).encode() in cmdline.split(b"\0"):
                pids.append(int(name))
    return pids


def test_sigint_ignored_means_sigkill(run_module, pcap, fake_tcpdump, monkeypatch):
    monkeypatch.setenv("FAKE_TCPDUMP_MODE", "deaf")
    monkeypatch.setattr(capture, "STOP_TIMEOUT", 0.3)
    pid = start(run_module, pcap, fake_tcpdump)["pid"]
    result = run(run_module, pcap, state="stopped")
    assert result["status"] == "killed"
    assert result["packets_captured"] is None and result["packets_dropped"] is None
    assert result["sha256"] == hashlib.sha256(pcap.read_bytes()).hexdigest()
    assert not background.is_running(pid)


def test_tcpdump_ended_before_the_stop(run_module, pcap, fake_tcpdump, monkeypatch):
    from ansible.module_utils.basic import AnsibleModule

    warnings = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, msg, **kw: warnings.append(msg))
    monkeypatch.setenv("FAKE_TCPDUMP_MODE", "short")
    pid = start(run_module, pcap, fake_tcpdump)["pid"]
    assert background.wait_exit(pid, None, 5)
    result = run(run_module, pcap, state="stopped")
    assert result["status"] == "exited" and result["changed"] is True
    assert warnings == [f"tcpdump (pid {pid}) for {pcap} had ended before the stop"]
    assert result["size"] == pcap.stat().st_size


def test_reused_pid_is_not_signalled(run_module, pcap, fake_tcpdump):
    other = subprocess.Popen(["sleep", "30"])
    try:
        pcap.write_bytes(b"x")
        record = {"pid": other.pid, "proc_start": background.start_time(other.pid) + 1, "started_at": 1.0}
        pcap.with_name("mn.pcap.pid").write_text(json.dumps(record))
        result = run(run_module, pcap, state="stopped")
        assert result["status"] == "exited"
        assert other.poll() is None, "signalled a process that is not the capture's tcpdump"
    finally:
        other.kill()
        other.wait()


def test_check_mode(run_module, pcap, fake_tcpdump):
    result = run(run_module, pcap, check=True, state="started", interface="wlan0")
    assert result["changed"] is True and result["pid"] is None
    assert fake_tcpdump() == [] and os.listdir(pcap.parent) == []
    pid = start(run_module, pcap, fake_tcpdump)["pid"]
    result = run(run_module, pcap, check=True, state="stopped")
    assert result["changed"] is True
    assert background.is_running(pid)
    assert "result" not in json.loads(pcap.with_name("mn.pcap.pid").read_text())


def test_stop_without_capture(run_module, pcap):
    result = run(run_module, pcap, state="stopped")
    assert result["msg"] == f"path: no capture recorded for {pcap} (no mn.pcap.pid)"


@pytest.mark.parametrize(
    "args, msg",
    [
        ({"state": "started"}, "interface: required when state is started"),
        (
            {"state": "started", "interface": "wlan0", "snaplen": -1},
            "snaplen: expected a number of bytes >= 0, got -1",
        ),
        (
            {"state": "started", "interface": "wlan0", "buffer_size": -1},
            "buffer_size: expected a size in KiB >= 0, got -1",
        ),
        (
            {"state": "started", "interface": "wlan0", "ready_timeout": 0},
            "ready_timeout: expected a number of seconds > 0, got 0.0",
        ),
        ({"state": "stopped", "path": "caps/mn.pcap"}, "path: expected an absolute path, got 'caps/mn.pcap'"),
    ],
)
def test_bad_options(run_module, pcap, fake_tcpdump, args, msg):
    result = run(run_module, pcap, **args)
    assert result["failed"] is True and result["msg"] == msg
    assert fake_tcpdump() == []


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump")
def test_real_tcpdump_on_loopback(run_module, tmp_path):
    """The real tcpdump's messages are what the module expects (skipped where it cannot capture)."""
    path = tmp_path / "lo.pcap"
    result = run_module(capture, {"state": "started", "interface": "lo", "path": str(path), "filter": "udp"})
    if result.get("failed"):
        pytest.skip(f"tcpdump cannot capture here: {result['msg']}")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _packet in range(3):
                s.sendto(b"mvpn-lab", ("127.0.0.1", 9))
        time.sleep(0.3)
    finally:
        stopped = run_module(capture, {"state": "stopped", "path": str(path)})
    assert stopped["status"] == "stopped"
    assert stopped["packets_captured"] >= 3 and stopped["packets_dropped"] == 0
    assert stopped["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    import dpkt

    with open(path, "rb") as fh:
        assert len(list(dpkt.pcap.Reader(fh))) == stopped["packets_captured"]
