"""``mvpn-lab vlab ...``: sub-commands, and errors as one line with exit code 2."""

from __future__ import annotations

import json
import shutil

import pytest

from mvpn_lab.cli import main
from mvpn_lab.errors import LabError
from mvpn_lab.vlab import image, machine


def _error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("mvpn-lab: error: ")
    return lines[0]


def test_vlab_help_lists_the_actions(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["vlab", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for action in ("build", "up", "down", "status", "ssh"):
        assert any(line.split()[:1] == [action] for line in out.splitlines()), action


def test_vlab_without_action_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["vlab"])
    assert exc.value.code == 2
    assert "ACTION" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "function"),
    [
        (["vlab", "up"], "up"),
        (["vlab", "down"], "down"),
        (["vlab", "status"], "status"),
        (["vlab", "ssh", "--host", "mn", "--", "ip", "addr"], "ssh"),
    ],
)
def test_lab_error_is_one_line_and_exit_2(monkeypatch, capsys, argv, function):
    def fail(*args, **kwargs):
        raise LabError(f"{function} went wrong; do this instead")

    monkeypatch.setattr(machine, function, fail)
    assert main(argv) == 2
    assert _error_line(capsys) == f"mvpn-lab: error: {function} went wrong; do this instead"


def test_lab_error_keeps_its_exit_code(monkeypatch, capsys):
    def fail():
        raise LabError("custom", exit_code=3)

    monkeypatch.setattr(machine, "down", fail)
    assert main(["vlab", "down"]) == 3
    assert _error_line(capsys) == "mvpn-lab: error: custom"


def test_ssh_passes_the_command_without_the_separator(monkeypatch):
    calls = []
    monkeypatch.setattr(machine, "ssh", lambda host, command: calls.append((host, command)) or 0)
    assert main(["vlab", "ssh", "--host", "ha", "--", "ip", "-6", "route"]) == 0
    assert main(["vlab", "ssh"]) == 0
    assert calls == [("ha", ["ip", "-6", "route"]), (None, [])]


def test_ssh_with_a_stale_pid_file(isolated_lab, capsys):
    isolated_lab.pidfile.write_text("garbage")
    assert main(["vlab", "ssh"]) == 2
    line = _error_line(capsys)
    assert "stale pid file" in line and "mvpn-lab vlab down" in line


def test_up_with_the_port_in_use(monkeypatch, capsys):
    import socket

    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(image, "build", lambda *a, **k: pytest.fail("image.build called"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        monkeypatch.setenv("MVPN_VLAB_PORT", str(port))
        assert main(["vlab", "up"]) == 2
    line = _error_line(capsys)
    assert f"127.0.0.1:{port} is in use" in line and "MVPN_VLAB_PORT" in line


def test_status_with_a_stale_pid_file_exits_1(isolated_lab, capsys):
    isolated_lab.pidfile.write_text("garbage")
    assert main(["vlab", "status", "--json"]) == 1
    info = json.loads(capsys.readouterr().out)
    assert info["running"] is False and "stale pid file" in info["error"]


def test_down_with_a_stale_pid_file(isolated_lab, capsys):
    isolated_lab.pidfile.write_text("garbage")
    assert main(["vlab", "down"]) == 0
    assert capsys.readouterr().out.strip() == "twin not running"
    assert not isolated_lab.pidfile.exists()


# --- build -----------------------------------------------------------------------------


def test_build_without_mmdebstrap(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MVPN_VLAB_MIRROR", "http://mirror.example/debian")
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "mmdebstrap" else f"/usr/bin/{name}")
    monkeypatch.setattr(image.subprocess, "Popen", lambda *a, **k: pytest.fail("ran a process"))
    assert main(["vlab", "build"]) == 2
    line = _error_line(capsys)
    assert line == (
        "mvpn-lab: error: mmdebstrap not found on this host: "
        "install it with 'apt-get install mmdebstrap' (or run scripts/setup.sh)"
    )
    assert not (tmp_path / "cache").exists()


def test_build_passes_mirror_and_force(monkeypatch):
    calls = []
    monkeypatch.setattr(image, "build", lambda mirror=None, force=False: calls.append((mirror, force)))
    assert main(["vlab", "build", "--mirror", "http://m.example/debian", "--force"]) == 0
    assert main(["vlab", "build"]) == 0
    assert calls == [("http://m.example/debian", True), (None, False)]


def test_build_when_cached(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MVPN_VLAB_MIRROR", "http://mirror.example/debian")
    monkeypatch.setattr(shutil, "which", lambda name: pytest.fail(f"looked for {name}"))
    img = image.current()
    img.directory.mkdir(parents=True)
    for path in (img.disk, img.kernel, img.initrd, img.host_key):
        path.write_text("x")
    assert main(["vlab", "build"]) == 0
    assert f"twin image {img.key} is cached" in capsys.readouterr().out


# --- status ----------------------------------------------------------------------------

RUNNING = {
    "state_dir": "/root/.local/state/mvpn-lab/twin",
    "running": True,
    "image": "cc41cfec714db90e",  # run.json's key replaces the image dict while the twin runs
    "pid": 4242,
    "port": 2222,
    "boot_seconds": 38.4,
    "started_at": "2026-12-05T20:00:00Z",
    "ssh_ready": True,
    "lab_hosts": ["cn", "fn", "ha", "impair", "mn"],
}
STOPPED = {
    "state_dir": "/root/.local/state/mvpn-lab/twin",
    "running": False,
    "image": {"key": "cc41cfec714db90e", "cached": True, "path": "/root/.cache/mvpn-lab/images/cc41"},
}


def _rows(out: str) -> dict[str, str]:
    """The table's rows as field -> value (rich draws │ between the columns)."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == 2 and cells[0]:
            rows[cells[0]] = cells[1]
    return rows


def test_status_of_a_running_twin_is_a_table(monkeypatch, capsys):
    monkeypatch.setattr(machine, "status", lambda: dict(RUNNING))
    assert main(["vlab", "status"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].strip() == "virtual twin"
    rows = _rows(out)
    assert rows["twin"] == "running"
    assert rows["image"] == "cc41cfec714db90e"
    assert rows["SSH port"] == "127.0.0.1:2222 (answers)"
    assert rows["pid"] == "4242"
    assert rows["boot"] == "38.4 s"
    assert rows["lab hosts"] == "cn, fn, ha, impair, mn"
    assert "{" not in out  # not the dict


def test_status_of_a_stopped_twin_is_a_table(monkeypatch, capsys):
    monkeypatch.setattr(machine, "status", lambda: dict(STOPPED))
    assert main(["vlab", "status"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["twin"] == "not running"
    assert rows["image"] == "cc41cfec714db90e (cached)"
    assert rows["SSH port"] == rows["pid"] == rows["boot"] == rows["lab hosts"] == "-"


def test_status_names_missing_lab_hosts_and_errors(monkeypatch, capsys):
    partial = dict(RUNNING, ssh_ready=False, lab_hosts=["cn", "mn"])
    monkeypatch.setattr(machine, "status", lambda: partial)
    assert main(["vlab", "status"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["SSH port"] == "127.0.0.1:2222 (does not answer)"
    assert rows["lab hosts"] == "cn, mn (missing: ha, fn, impair)"
    broken = dict(STOPPED, error="stale pid file")
    monkeypatch.setattr(machine, "status", lambda: broken)
    assert main(["vlab", "status"]) == 1
    assert _rows(capsys.readouterr().out)["error"] == "stale pid file"


@pytest.mark.parametrize("info", [RUNNING, STOPPED])
def test_status_json_is_the_status_dict(monkeypatch, capsys, info):
    monkeypatch.setattr(machine, "status", lambda: dict(info))
    assert main(["vlab", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == info
