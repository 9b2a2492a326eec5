"""Reloading the daemon's configuration in its running process (control command ``reload``).

The daemons here run :func:`serve` with fake sockets and a fake kernel but the real loop, the real
control socket and the collection's real client (``module_utils/mip6control.py``), which the
``mvpn.lab.mip6_control`` module, ``mvpn-lab mip6 reload`` and the unit's ExecReload use. The
twin's Test 2 and Test 4 tests reload the real daemons between configurations.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from mvpn_lab.cli import main
from mvpn_lab.collection import module_utils
from mvpn_lab.mip6.core.clock import SystemClock
from mvpn_lab.mip6.core.config import NodeConfig, load_config
from mvpn_lab.mip6.daemon.control import ControlServer
from mvpn_lab.mip6.daemon.loop import Daemon, serve

from ._daemon_fakes import lines
from .test_mip6_daemon import _SelectableMH, make

client = module_utils("mip6control")


def _cn_file(path: Path, sock: Path, **extra: Any) -> None:
    data = {"role": "cn", "name": "cn", "address": "2001:db8:3::1", "control_socket": str(sock)}
    data.update(extra)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


class Lab:
    """``serve`` in a thread (the loop takes no signals there), each generation's daemon kept."""

    def __init__(self, tmp: Path, notify: Path | None = None) -> None:
        # UNIX socket paths are short: pytest's tmp_path can be too long for one
        self.sock = Path(f"/tmp/mvpn-reload-{os.getpid()}-{id(self)}.sock")
        self.config = tmp / "cn.yml"
        _cn_file(self.config, self.sock, nonce_rotation=30.0)
        self.daemons: list[Daemon] = []
        self.streams: list[Any] = []
        self.status: list[int] = []
        self.error: list[BaseException] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def opener(self, cfg: NodeConfig, *, debug: bool, config_path: str | None, generation: int) -> Daemon:
        daemon, stream = make(cfg, clock=SystemClock(), mh=_SelectableMH(), ndisc=None, raw=None)
        daemon.config_path, daemon.generation = config_path, generation
        server = ControlServer(str(self.sock), daemon.control_commands())
        server.open()
        daemon.io.control = server
        self.daemons.append(daemon)
        self.streams.append(stream)
        return daemon

    def _serve(self) -> None:
        try:
            self.status.append(
                serve(load_config(self.config), config_path=str(self.config), opener=self.opener)
            )
        except BaseException as exc:  # the test reads it
            self.error.append(exc)

    def __enter__(self) -> Lab:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.daemons or not self.sock.exists():
            assert time.monotonic() < deadline, "the daemon's control socket never appeared"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.daemons:
            self.daemons[-1].request_stop()
            with contextlib.suppress(client.ControlError):  # wakes the loop, which then stops
                client.query(str(self.sock), "ping", 2)
        self.thread.join(10)
        assert not self.thread.is_alive()
        with pytest.raises(FileNotFoundError):
            self.sock.lstat()  # every generation removed its socket


def test_reload_starts_the_new_configuration_in_the_same_process(tmp_path):
    with Lab(tmp_path) as lab:
        assert client.query(str(lab.sock), "ping") == {"ok": True, "pid": os.getpid(), "generation": 1}
        _cn_file(lab.config, lab.sock, nonce_rotation=45.0)
        answer = client.reload(str(lab.sock), timeout=10)
        assert answer["before"] == {"pid": os.getpid(), "generation": 1}
        assert answer["after"] == {"pid": os.getpid(), "generation": 2}
        status = client.query(str(lab.sock), "status")
        assert status["daemon"]["generation"] == 2
    assert lab.status == [0] and not lab.error
    first, second = lab.daemons
    assert first.cfg.nonce_rotation == 30.0 and second.cfg.nonce_rotation == 45.0
    assert first.stopped and first.io.control is not None and first.io.mh.closed
    events = [r["event"] for r in lines(lab.streams[0])]
    assert events[-3:] == ["reload", "stopping", "stop"]
    stop = next(r for r in lines(lab.streams[0]) if r["event"] == "stop")
    assert stop["reload"] is True
    assert lines(lab.streams[1])[0]["event"] == "start"


def test_an_invalid_file_is_refused_in_one_line_and_the_old_configuration_stays(tmp_path):
    with Lab(tmp_path) as lab:
        lab.config.write_text(yaml.safe_dump({"role": "cn", "name": "cn", "address": "not-an-address"}))
        with pytest.raises(client.ControlError) as refused:
            client.reload(str(lab.sock), timeout=5)
        message = str(refused.value)
        assert "reload refused, the running configuration stays" in message and "address" in message
        assert "\n" not in message
        assert client.query(str(lab.sock), "ping")["generation"] == 1  # still running, not stopping
        assert not lab.daemons[0].stopping
        assert [r["event"] for r in lines(lab.streams[0]) if r["level"] == "error"] == ["reload_refused"]
    assert len(lab.daemons) == 1


def test_a_file_that_moves_the_control_socket_is_refused(tmp_path):
    with Lab(tmp_path) as lab:
        _cn_file(lab.config, Path(str(lab.sock) + ".new"))
        with pytest.raises(client.ControlError, match=r"moves the control socket .* restart the daemon"):
            client.reload(str(lab.sock), timeout=5)
        assert client.query(str(lab.sock), "ping")["generation"] == 1
    assert len(lab.daemons) == 1


def test_systemd_hears_reloading_then_ready(tmp_path, monkeypatch):
    notify_path = tmp_path / "notify"
    notify_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_sock.bind(str(notify_path))
    notify_sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_path))
    with Lab(tmp_path) as lab:
        client.reload(str(lab.sock), timeout=10)
    heard = [notify_sock.recv(64) for _ in range(4)]
    notify_sock.close()
    assert heard == [b"READY=1", b"RELOADING=1", b"READY=1", b"STOPPING=1"]


def test_a_daemon_that_cannot_start_again_ends_serve_with_its_error(tmp_path, monkeypatch):
    """The reloaded configuration fails at start (here the kernel refuses): serve raises the one
    line, and systemd's Restart=on-failure takes over as after a failed start."""
    from mvpn_lab.mip6.daemon.loop import DaemonError

    calls: list[int] = []

    def opener(cfg: NodeConfig, *, debug: bool, config_path: str | None, generation: int) -> Daemon:
        calls.append(generation)
        daemon, _ = make(cfg, clock=SystemClock(), mh=_SelectableMH(), ndisc=None, raw=None)
        daemon.config_path, daemon.generation = config_path, generation
        if generation == 1:
            daemon.reload_config = cfg  # as a reload taken would leave it
            daemon.request_stop()
        else:
            monkeypatch.setattr(daemon, "start", lambda: (_ for _ in ()).throw(DaemonError("kernel: no")))
        return daemon

    config = tmp_path / "cn.yml"
    _cn_file(config, tmp_path / "s.sock")
    with pytest.raises(DaemonError, match="kernel: no"):
        serve(load_config(config), config_path=str(config), opener=opener)
    assert calls == [1, 2]


# ------------------------------------------------------------------------------ the client alone


class _Answers:
    """A scripted daemon for the client: each call takes the next answer (or raises it)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, path: str, command: str, timeout: float) -> dict[str, Any]:
        self.asked.append(command)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)


def test_the_client_waits_through_the_gap_until_a_new_generation_or_pid_answers():
    gone = client.ControlError("no daemon control socket at /s")
    ask = _Answers(
        {"ok": True, "reloading": True, "pid": 7, "generation": 3},
        {"ok": True, "pid": 7, "generation": 3},  # the old one, still shutting down
        gone,
        {"ok": True, "pid": 7, "generation": 4},
    )
    out = client.reload("/s", timeout=5, poll=0, ask=ask)
    assert out["before"] == {"pid": 7, "generation": 3} and out["after"] == {"pid": 7, "generation": 4}
    assert ask.asked == ["reload", "ping", "ping", "ping"]
    # a new process (the reload failed at start and systemd restarted it) counts as back too
    ask = _Answers(
        {"ok": True, "reloading": True, "pid": 7, "generation": 3}, {"ok": True, "pid": 9, "generation": 1}
    )
    assert client.reload("/s", timeout=5, poll=0, ask=ask)["after"] == {"pid": 9, "generation": 1}


def test_the_client_gives_up_after_the_timeout_with_the_last_thing_it_heard():
    now = [0.0]
    ask = _Answers(
        {"ok": True, "reloading": True, "pid": 7, "generation": 3},
        *[client.ControlError("no daemon listens on /s")] * 50,
    )
    with pytest.raises(client.ControlError, match=r"within 2.0 s of the reload \(no daemon listens on /s\)"):
        client.reload(
            "/s",
            timeout=2.0,
            poll=0.5,
            clock=lambda: now[0],
            sleep=lambda s: now.__setitem__(0, now[0] + s),
            ask=ask,
        )
    # an answer that is not a reload taken is not waited for
    with pytest.raises(client.ControlError, match="did not take the reload"):
        client.reload("/s", ask=_Answers({"ok": True}))


def test_the_client_refuses_answers_that_are_not_json_objects(tmp_path):
    path = f"/tmp/mvpn-reload-bad-{os.getpid()}.sock"
    for payload, message in ((b"[1]\n", "not a JSON object"), (b"\xff\n", "not JSON")):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)

        def answer(srv: socket.socket = server, data: bytes = payload) -> None:
            conn, _ = srv.accept()
            conn.recv(64)
            conn.sendall(data)
            conn.close()

        t = threading.Thread(target=answer)
        t.start()
        with pytest.raises(client.ControlError, match=message):
            client.query(path, "ping", 5)
        t.join()
        server.close()
        os.unlink(path)


# ------------------------------------------------------------------------------ CLI and module


def test_the_reload_cli_prints_one_json_line_or_one_error_line(tmp_path, capsys):
    with Lab(tmp_path) as lab:
        assert main(["mip6", "reload", "--socket", str(lab.sock), "--timeout", "10"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["after"]["generation"] == 2
    assert main(["mip6", "reload", "--socket", str(tmp_path / "none.sock")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"mvpn-lab: error: no daemon control socket at {tmp_path}/none.sock"
    )
    assert main(["mip6", "reload", "--socket", "/x", "--timeout", "0"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "mvpn-lab: error: --timeout: expected a number of seconds > 0, got 0.0"
    )


def _run_module(args: dict[str, Any], capsys: Any, check: bool = False) -> dict[str, Any]:
    module = importlib.import_module("ansible_collections.mvpn.lab.plugins.modules.mip6_control")
    with patch_module_args(dict(args, _ansible_check_mode=check)), pytest.raises(SystemExit):
        module.main()
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_the_module_reloads_reports_status_and_starts_a_stopped_unit(tmp_path, capsys, monkeypatch):
    from ansible.module_utils import basic

    with Lab(tmp_path) as lab:
        checked = _run_module({"socket": str(lab.sock), "command": "reload"}, capsys, check=True)
        assert checked["changed"] is True and checked["started"] is False and "after" not in checked
        done = _run_module({"socket": str(lab.sock), "command": "reload", "timeout": 10}, capsys)
        assert done["changed"] is True and done["after"]["generation"] == 2 and done["started"] is False
        status = _run_module({"socket": str(lab.sock)}, capsys)
        assert status["changed"] is False and status["status"]["daemon"]["generation"] == 2
    # no daemon: fails naming the socket, unless a unit is given to start instead
    gone = _run_module({"socket": str(tmp_path / "none.sock"), "command": "reload"}, capsys)
    assert gone["failed"] and gone["msg"] == f"socket: no daemon control socket at {tmp_path}/none.sock"
    started: list[list[str]] = []
    monkeypatch.setattr(
        basic.AnsibleModule, "run_command", lambda self, argv, **kw: (started.append(argv), (0, "", ""))[1]
    )
    out = _run_module(
        {"socket": str(tmp_path / "none.sock"), "command": "reload", "start_unit": "mvpn-mip6@mn.service"},
        capsys,
    )
    assert out["changed"] and out["started"] is True
    assert started == [["systemctl", "start", "--", "mvpn-mip6@mn.service"]]
    bad = _run_module({"socket": "/x", "timeout": -1}, capsys)
    assert bad["msg"] == "timeout: expected a number of seconds > 0, got -1.0"


# ----------------------------------------------------------------- check PATH and mvpn.lab.mip6_config


def test_check_answers_what_reload_would_do_without_reloading(tmp_path):
    with Lab(tmp_path) as lab:
        good, bad, moved = tmp_path / "good.yml", tmp_path / "bad.yml", tmp_path / "moved.yml"
        _cn_file(good, lab.sock, nonce_rotation=60.0)
        bad.write_text(yaml.safe_dump({"role": "cn", "name": "cn", "address": "not-an-address"}))
        _cn_file(moved, Path(str(lab.sock) + ".new"))
        assert client.check(str(lab.sock), str(good)) == {"ok": True, "checked": str(good), "generation": 1}
        with pytest.raises(client.ControlError, match=r"check refused: .*address") as refused:
            client.check(str(lab.sock), str(bad))
        assert "\n" not in str(refused.value)
        with pytest.raises(client.ControlError, match=r"moves the control socket"):
            client.check(str(lab.sock), str(moved))
        with pytest.raises(client.ControlError, match="check: expected an argument"):
            client.query(str(lab.sock), "check")
        with pytest.raises(client.ControlError, match="ping: takes no argument"):
            client.query(str(lab.sock), "ping now")
        with pytest.raises(client.ControlError, match="must be one line"):
            client.check(str(lab.sock), "a\nreload")
        assert client.query(str(lab.sock), "ping")["generation"] == 1  # nothing reloaded
        assert not lab.daemons[0].stopping


def _run_config_module(
    args: dict[str, Any], capsys: Any, check: bool = False, diff: bool = False
) -> dict[str, Any]:
    module = importlib.import_module("ansible_collections.mvpn.lab.plugins.modules.mip6_config")
    with (
        patch_module_args(dict(args, _ansible_check_mode=check, _ansible_diff=diff)),
        pytest.raises(SystemExit),
    ):
        module.main()
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_the_config_module_checks_with_the_daemon_writes_and_reloads_once(tmp_path, capsys, monkeypatch):
    from ansible.module_utils import basic

    processes: list[list[str]] = []
    monkeypatch.setattr(
        basic.AnsibleModule, "run_command", lambda self, argv, **kw: (processes.append(argv), (0, "", ""))[1]
    )
    with Lab(tmp_path) as lab:
        base = {"dest": str(lab.config), "socket": str(lab.sock), "bundle": "/opt/b.pyz", "timeout": 10}
        new = yaml.safe_dump(
            {
                "role": "cn",
                "name": "cn",
                "address": "2001:db8:3::1",
                "control_socket": str(lab.sock),
                "nonce_rotation": 45.0,
            }
        )
        planned = _run_config_module(dict(base, content=new), capsys, check=True, diff=True)
        assert planned["changed"] is True and planned["reloaded"] is False
        assert "nonce_rotation: 30.0" in planned["diff"]["before"] and planned["diff"]["after"] == new
        assert "nonce_rotation: 30.0" in lab.config.read_text()  # check mode wrote nothing
        done = _run_config_module(dict(base, content=new), capsys)
        assert done["changed"] is True and done["checked_by"] == "daemon" and done["reloaded"] is True
        assert done["after"]["generation"] == 2
        assert lab.config.read_text() == new and oct(lab.config.stat().st_mode & 0o777) == "0o644"
        assert lab.daemons[-1].cfg.nonce_rotation == 45.0
        again = _run_config_module(dict(base, content=new), capsys)
        assert again == {
            "changed": False,
            "reloaded": False,
            "started": False,
            "invocation": again["invocation"],
        }
        # the same content with other permissions: a chmod, no check and no reload
        private = _run_config_module(dict(base, content=new, mode="u=rw,go="), capsys)
        assert private["changed"] is True and private["reloaded"] is False
        assert oct(lab.config.stat().st_mode & 0o777) == "0o600"
        assert client.query(str(lab.sock), "ping")["generation"] == 2
        # a file the daemon refuses never replaces the one in place, and nothing reloads
        bad = new.replace("2001:db8:3::1", "not-an-address")
        refused = _run_config_module(dict(base, content=bad), capsys)
        assert (
            refused["failed"]
            and refused["msg"].startswith("content: check refused: ")
            and "address" in refused["msg"]
        )
        assert lab.config.read_text() == new and client.query(str(lab.sock), "ping")["generation"] == 2
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cn.yml"]  # no candidate left behind
    assert processes == []  # the running daemon checked: no check-config process
    # no daemon: the bundle's check-config checks it, the unit starts with it
    gone = dict(base, socket=str(tmp_path / "none.sock"), start_unit="mvpn-mip6@cn.service")
    started = _run_config_module(dict(gone, content=new.replace("45.0", "50.0")), capsys)
    assert started["changed"] and started["checked_by"] == "check-config" and started["started"] is True
    assert processes[0][:2] == ["/usr/bin/python3", "/opt/b.pyz"] and processes[0][2:4] == [
        "mip6",
        "check-config",
    ]
    assert processes[1] == ["systemctl", "start", "--", "mvpn-mip6@cn.service"]
    assert "50.0" in lab.config.read_text()


def test_the_config_module_fails_in_one_line_on_bad_parameters_and_refused_files(
    tmp_path, capsys, monkeypatch
):
    from ansible.module_utils import basic

    monkeypatch.setattr(
        basic.AnsibleModule,
        "run_command",
        lambda self, argv, **kw: (
            1,
            "",
            "mvpn-lab: error: cn.yml: address: expected an IPv6 address, got 'x'\n",
        ),
    )
    dest = tmp_path / "cn.yml"
    base = {
        "dest": str(dest),
        "socket": str(tmp_path / "none.sock"),
        "bundle": "/opt/b.pyz",
        "content": "role: cn\n",
    }
    out = _run_config_module(base, capsys)
    assert (
        out["failed"]
        and out["msg"] == "content: mvpn-lab: error: cn.yml: address: expected an IPv6 address, got 'x'"
    )
    assert not dest.exists() and list(tmp_path.iterdir()) == []
    bad_mode = _run_config_module(dict(base, mode="rw"), capsys)
    assert bad_mode["msg"] == "mode must be in octal or symbolic form" and not dest.exists()
    assert list(tmp_path.iterdir()) == []  # the candidate is gone too
    assert (
        _run_config_module(dict(base, timeout=0), capsys)["msg"]
        == "timeout: expected a number of seconds > 0, got 0.0"
    )
    missing = _run_config_module(dict(base, dest=str(tmp_path / "no" / "cn.yml")), capsys)
    assert missing["msg"] == f"dest: the folder {tmp_path}/no does not exist"


def test_the_config_module_checks_with_a_process_when_the_daemon_is_older(tmp_path, capsys, monkeypatch):
    """A daemon from before ``check`` (a bundle not yet restarted) answers "unknown command": the
    module checks with the bundle's check-config instead (found on the twin on the first site.yml)."""
    from ansible.module_utils import basic

    processes: list[list[str]] = []
    monkeypatch.setattr(
        basic.AnsibleModule, "run_command", lambda self, argv, **kw: (processes.append(argv), (0, "", ""))[1]
    )
    with Lab(tmp_path) as lab:
        commands = lab.daemons[0].io.control.commands
        del commands["check"]  # as the daemon of the previous release answers
        new = lab.config.read_text().replace("30.0", "40.0")
        base = {"dest": str(lab.config), "socket": str(lab.sock), "bundle": "/opt/b.pyz", "timeout": 10}
        out = _run_config_module(dict(base, content=new), capsys)
        assert out["checked_by"] == "check-config" and out["reloaded"] is True
        assert [argv[2:4] for argv in processes] == [["mip6", "check-config"]]


def test_the_config_module_checks_a_new_bundles_file_with_that_bundle(tmp_path, capsys, monkeypatch):
    """``check_with: bundle`` (the role passes it when it has just copied a new bundle): the new
    bundle's check-config decides, not the running daemon, whose rules are the old bundle's. A
    file the new bundle refuses is not put in place even though the running daemon would take it."""
    from ansible.module_utils import basic

    processes: list[list[str]] = []

    def refuse(self, argv, **kw):
        processes.append(argv)
        return 2, "", "mvpn-lab: error: cn.yml: nonce_rotation: expected at most 240 seconds\n"

    monkeypatch.setattr(basic.AnsibleModule, "run_command", refuse)
    with Lab(tmp_path) as lab:
        new = lab.config.read_text().replace("30.0", "40.0")
        base = {"dest": str(lab.config), "socket": str(lab.sock), "bundle": "/opt/b.pyz", "timeout": 10}
        out = _run_config_module(dict(base, content=new, check_with="bundle"), capsys)
        assert out["failed"] and out["msg"] == (
            "content: mvpn-lab: error: cn.yml: nonce_rotation: expected at most 240 seconds"
        )
        assert "30.0" in lab.config.read_text() and out["reloaded"] is False
        assert [argv[2:4] for argv in processes] == [["mip6", "check-config"]]
        # the same file with the default: the running daemon takes it, no process
        ok = _run_config_module(dict(base, content=new), capsys)
        assert ok["checked_by"] == "daemon" and ok["reloaded"] is True and len(processes) == 1
