"""The twin VM's lifecycle around QEMU: pid file, port check, SSH files, command line.

Nothing here starts QEMU or SSH: state lives in tmp_path (see conftest.py) and the
functions that would run a process are replaced.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess

import pytest

from mvpn_lab.errors import LabError
from mvpn_lab.vlab import image, machine, paths

PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILabKey mvpn-lab twin"


@pytest.fixture
def busy_port():
    """A loopback TCP port held by a listening socket for the test's duration."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_build(monkeypatch):
    monkeypatch.setattr(image, "build", lambda *a, **k: pytest.fail("image.build called"))
    monkeypatch.setattr(machine.image_mod, "build", lambda *a, **k: pytest.fail("image.build called"))


@pytest.fixture
def qemu_installed(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# --- pid file --------------------------------------------------------------------------


def test_default_lab_is_the_state_dir(isolated_lab):
    assert machine.default_lab() == isolated_lab
    assert isolated_lab.pidfile.parent == isolated_lab.directory


def test_running_pid_without_pid_file(isolated_lab):
    assert machine.running_pid(isolated_lab) is None


@pytest.mark.parametrize("content", ["garbage", "", "12ab\n"])
def test_running_pid_garbage_is_stale(isolated_lab, content):
    isolated_lab.pidfile.write_text(content)
    with pytest.raises(LabError) as err:
        machine.running_pid(isolated_lab)
    message = _one_line(err)
    assert "stale pid file" in message and "mvpn-lab vlab down" in message
    assert str(isolated_lab.pidfile) in message


def test_running_pid_dead_process_is_stale(isolated_lab, dead_pid):
    isolated_lab.pidfile.write_text(f"{dead_pid}\n")
    with pytest.raises(LabError) as err:
        machine.running_pid(isolated_lab)
    message = _one_line(err)
    assert "stale pid file" in message and "mvpn-lab vlab down" in message
    assert f"pid {dead_pid}" in message


def test_running_pid_live_process_that_is_not_qemu_is_stale(isolated_lab):
    isolated_lab.pidfile.write_text(str(os.getpid()))  # pytest: alive, not QEMU
    with pytest.raises(LabError, match=r"stale pid file .*: pid \d+ is not a running QEMU"):
        machine.running_pid(isolated_lab)


def test_running_pid_of_a_qemu(isolated_lab, monkeypatch):
    isolated_lab.pidfile.write_text("4242\n")
    monkeypatch.setattr(machine, "_pid_alive", lambda pid: pid == 4242)
    monkeypatch.setattr(machine, "_is_qemu", lambda pid: pid == 4242)
    assert machine.running_pid(isolated_lab) == 4242


def test_is_qemu_checks_the_program_name():
    assert not machine._is_qemu(os.getpid())
    assert machine._pid_alive(os.getpid())


# --- up --------------------------------------------------------------------------------


def test_up_with_the_port_in_use(monkeypatch, busy_port, no_build, qemu_installed):
    monkeypatch.setenv("MVPN_VLAB_PORT", str(busy_port))
    with pytest.raises(LabError) as err:
        machine.up()
    message = _one_line(err)
    assert f"127.0.0.1:{busy_port}" in message
    assert "MVPN_VLAB_PORT" in message


def test_port_free_and_in_use(busy_port, free_port):
    assert not machine._port_free(busy_port)
    assert machine._port_free(free_port)


def test_up_without_qemu(monkeypatch, no_build):
    monkeypatch.setattr(shutil, "which", lambda name: None if name == machine.QEMU else f"/usr/bin/{name}")
    with pytest.raises(LabError) as err:
        machine.up()
    message = _one_line(err)
    assert message.startswith("qemu-system-x86_64 not found")
    assert "'apt-get install qemu-system-x86'" in message


@pytest.mark.parametrize("value", ["abc", "0", "65536", "-1", "22.5", ""])
def test_up_with_an_invalid_port(monkeypatch, no_build, qemu_installed, value):
    monkeypatch.setenv("MVPN_VLAB_PORT", value)
    with pytest.raises(LabError) as err:
        machine.up()
    message = _one_line(err)
    assert message.startswith("MVPN_VLAB_PORT:")
    assert "1-65535" in message and repr(value) in message


def test_ssh_port_default_and_valid(monkeypatch):
    assert paths.ssh_port() == paths.DEFAULT_PORT
    monkeypatch.setenv("MVPN_VLAB_PORT", "2299")
    assert paths.ssh_port() == 2299


def test_up_with_a_stale_pid_file_stops_before_anything(isolated_lab, no_build, qemu_installed):
    isolated_lab.pidfile.write_text("garbage")
    with pytest.raises(LabError, match="stale pid file"):
        machine.up()


def test_up_when_running_is_a_no_op(isolated_lab, monkeypatch, no_build, capsys):
    monkeypatch.setattr(machine, "running_pid", lambda lab: 4242)
    monkeypatch.setattr(shutil, "which", lambda name: pytest.fail("checked for tools while running"))
    assert machine.up() == isolated_lab
    assert "already running (pid 4242)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("stdout", "stderr", "detail"),
    [
        ("", "qemu: warning\nqemu: could not open disk image\n", "qemu: could not open disk image"),
        ("only stdout\n", "", "only stdout"),
        ("", "", "no output"),
    ],
)
def test_up_qemu_failure_is_one_line_and_removes_the_pid_file(
    isolated_lab, monkeypatch, free_port, fake_image, qemu_installed, stdout, stderr, detail
):
    monkeypatch.setenv("MVPN_VLAB_PORT", str(free_port))
    img = image.Image(fake_image)
    monkeypatch.setattr(machine.image_mod, "build", lambda mirror=None: img)
    monkeypatch.setattr(machine, "_ensure_key", lambda lab: PUBKEY)
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        isolated_lab.pidfile.write_text("999999999")
        return subprocess.CompletedProcess(cmd, 1, stdout, stderr)

    monkeypatch.setattr(machine.subprocess, "run", fake_run)
    with pytest.raises(LabError) as err:
        machine.up()
    message = _one_line(err)
    assert message == f"qemu-system-x86_64 failed to start (exit 1): {detail}"
    assert [cmd[0] for cmd in calls] == [machine.QEMU]
    assert not isolated_lab.pidfile.exists()
    assert isolated_lab.ssh_config.exists() and isolated_lab.known_hosts.exists()


def test_up_makes_the_labs_ipsec_keys_once(isolated_lab, monkeypatch, free_port, fake_image, qemu_installed):
    monkeypatch.setenv("MVPN_VLAB_PORT", str(free_port))
    img = image.Image(fake_image)
    monkeypatch.setattr(machine.image_mod, "build", lambda mirror=None: img)
    monkeypatch.setattr(machine, "_ensure_key", lambda lab: PUBKEY)
    monkeypatch.setattr(
        machine.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "boom")
    )
    with pytest.raises(LabError):
        machine.up()
    keys = isolated_lab.ipsec_keys
    assert keys.parent == isolated_lab.directory and keys.name == "ipsec-keys.yml"
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    text = keys.read_text()
    assert "mvpn_ipsec_keys:" in text and text.count("aead_key:") == 6 and text.count("enc_key:") == 6
    # a second up keeps the lab's keys
    with pytest.raises(LabError):
        machine.up()
    assert keys.read_text() == text


# --- QEMU command line -----------------------------------------------------------------


def test_qemu_command(isolated_lab, fake_image):
    img = image.Image(fake_image)
    cmd = machine.qemu_command(isolated_lab, img, 2345, PUBKEY)
    line = " ".join(cmd)
    assert cmd[0] == "qemu-system-x86_64"
    assert "-accel tcg" in line
    assert "kvm" not in line
    drive = cmd[cmd.index("-drive") + 1]
    assert f"file={img.disk}" in drive and "snapshot=on" in drive
    netdev = cmd[cmd.index("-netdev") + 1]
    assert "hostfwd=tcp:127.0.0.1:2345-:22" in netdev
    append = cmd[cmd.index("-append") + 1]
    authkey = base64.b64encode(PUBKEY.encode()).decode()
    assert f"mvpn.authkey={authkey}" in append.split()
    assert base64.b64decode(authkey).decode() == PUBKEY
    assert cmd[cmd.index("-kernel") + 1] == str(img.kernel)
    assert cmd[cmd.index("-initrd") + 1] == str(img.initrd)
    assert cmd[cmd.index("-pidfile") + 1] == str(isolated_lab.pidfile)
    assert f"file:{isolated_lab.console}" in cmd
    assert "-daemonize" in cmd


# --- SSH files -------------------------------------------------------------------------


def test_write_ssh_files(isolated_lab, fake_image):
    img = image.Image(fake_image)
    machine._write_ssh_files(isolated_lab, img, 2345)
    config = isolated_lab.ssh_config.read_text().splitlines()
    assert config[0] == f"Host {paths.SSH_ALIAS}"
    settings = dict(line.strip().split(None, 1) for line in config[1:])
    assert settings["StrictHostKeyChecking"] == "yes"
    assert settings["HostName"] == "127.0.0.1"
    assert settings["Port"] == "2345"
    assert settings["User"] == "root"
    assert settings["IdentityFile"] == str(isolated_lab.key)
    assert settings["UserKnownHostsFile"] == str(isolated_lab.known_hosts)
    assert settings["HostKeyAlias"] == paths.SSH_ALIAS
    # the image's host key, without its comment, under the alias
    assert isolated_lab.known_hosts.read_text() == (
        f"{paths.SSH_ALIAS} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey\n"
    )


def test_ssh_base_uses_the_lab_config(isolated_lab):
    assert machine.ssh_base(isolated_lab) == ["ssh", "-F", str(isolated_lab.ssh_config), paths.SSH_ALIAS]


# --- down and status -------------------------------------------------------------------


@pytest.mark.parametrize("content", ["garbage", "dead"])
def test_down_with_a_stale_pid_file(isolated_lab, monkeypatch, capsys, dead_pid, content):
    isolated_lab.pidfile.write_text(str(dead_pid) if content == "dead" else content)
    isolated_lab.runinfo.write_text("{}")
    (isolated_lab.directory / "cm-abc").write_text("")
    monkeypatch.setattr(machine.subprocess, "run", lambda *a, **k: pytest.fail("ran a process"))
    machine.down()
    assert capsys.readouterr().out.strip() == "twin not running"
    assert not isolated_lab.pidfile.exists()
    assert not isolated_lab.runinfo.exists()
    assert not list(isolated_lab.directory.glob("cm-*"))


def test_down_when_nothing_ever_ran(isolated_lab, capsys):
    machine.down()
    assert capsys.readouterr().out.strip() == "twin not running"


def test_status_with_a_stale_pid_file(isolated_lab, monkeypatch):
    isolated_lab.pidfile.write_text("garbage")
    monkeypatch.setattr(machine.image_mod, "current", lambda *a, **k: pytest.fail("looked up the image"))
    info = machine.status()
    assert info["running"] is False
    assert "stale pid file" in info["error"] and "mvpn-lab vlab down" in info["error"]
    assert info["state_dir"] == str(isolated_lab.directory)


def test_status_when_stopped(isolated_lab, monkeypatch):
    monkeypatch.setenv("MVPN_VLAB_MIRROR", "http://mirror.example/debian")
    monkeypatch.setattr(machine.subprocess, "run", lambda *a, **k: pytest.fail("ran a process"))
    info = machine.status()
    assert info["running"] is False and "error" not in info
    assert info["image"]["cached"] is False


def test_ssh_when_stopped(isolated_lab):
    with pytest.raises(LabError, match="not running; start it with 'mvpn-lab vlab up'"):
        machine.ssh(None, [])


def test_ssh_to_an_unknown_lab_host(monkeypatch):
    monkeypatch.setattr(machine, "running_pid", lambda lab: 4242)
    monkeypatch.setattr(machine.os, "execvp", lambda *a: pytest.fail("exec'd ssh"))
    with pytest.raises(LabError, match="--host: expected one of mn, ha, fn, cn, impair, got 'xx'"):
        machine.ssh("xx", [])
