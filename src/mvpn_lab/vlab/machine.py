"""Run the twin VM: up, down, status, ssh.

QEMU in TCG mode (a stock kernel hangs under KVM on these hosts), the
cached image opened read-only with ``snapshot=on`` (every boot starts from
the clean image), SSH over a loopback port forward with a key made for
this lab, and the host key of the image pinned in the lab's known_hosts.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mvpn_lab.errors import LabError
from mvpn_lab.progress import step
from mvpn_lab.vlab import image as image_mod
from mvpn_lab.vlab import paths

QEMU = "qemu-system-x86_64"
BOOT_TIMEOUT = 300.0
MEMORY_MB = 3072


@dataclass(frozen=True)
class Lab:
    """The files of one lab's state directory."""

    directory: Path

    @property
    def key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def ssh_config(self) -> Path:
        return self.directory / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"

    @property
    def ipsec_keys(self) -> Path:
        """This lab's own manual IPsec keys (inventories/virtual reads them); never in the repository."""
        return self.directory / "ipsec-keys.yml"

    @property
    def pidfile(self) -> Path:
        return self.directory / "qemu.pid"

    @property
    def console(self) -> Path:
        return self.directory / "console.log"

    @property
    def runinfo(self) -> Path:
        return self.directory / "run.json"


def default_lab() -> Lab:
    return Lab(paths.state_dir())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_qemu(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and Path(cmdline[0].decode(errors="replace")).name.startswith("qemu-system")


def running_pid(lab: Lab) -> int | None:
    """The pid of this lab's QEMU, None when stopped; a stale pid file is an error."""
    if not lab.pidfile.exists():
        return None
    text = lab.pidfile.read_text().strip()
    try:
        pid = int(text)
    except ValueError as exc:
        raise LabError(
            f"stale pid file {lab.pidfile} (content {text!r} is not a pid); "
            "run 'mvpn-lab vlab down' to clean up"
        ) from exc
    if _pid_alive(pid) and _is_qemu(pid):
        return pid
    raise LabError(
        f"stale pid file {lab.pidfile}: pid {pid} is not a running QEMU; run 'mvpn-lab vlab down' to clean up"
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _ensure_key(lab: Lab) -> str:
    lab.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not lab.key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mvpn-lab twin", "-f", str(lab.key)],
            check=True,
        )
    return lab.key.with_suffix(".pub").read_text().strip()


def _ensure_ipsec_keys(lab: Lab) -> None:
    """Fresh keys for this lab (both cipher suites), made once and kept with the lab's state."""
    if not lab.ipsec_keys.exists():
        from mvpn_lab.keys import write_key_file

        write_key_file(lab.ipsec_keys, "both")
        print(f"made this lab's IPsec keys: {lab.ipsec_keys} (mode 0600)")


def _write_ssh_files(lab: Lab, img: image_mod.Image, port: int) -> None:
    host_key = " ".join(img.host_key.read_text().split()[:2])
    lab.known_hosts.write_text(f"{paths.SSH_ALIAS} {host_key}\n")
    lab.ssh_config.write_text(
        f"Host {paths.SSH_ALIAS}\n"
        f"  HostName 127.0.0.1\n"
        f"  Port {port}\n"
        f"  User root\n"
        f"  IdentityFile {lab.key}\n"
        f"  IdentitiesOnly yes\n"
        f"  HostKeyAlias {paths.SSH_ALIAS}\n"
        f"  UserKnownHostsFile {lab.known_hosts}\n"
        f"  StrictHostKeyChecking yes\n"
        f"  ControlMaster auto\n"
        f"  ControlPath {lab.directory}/cm-%C\n"
        f"  ControlPersist 10m\n"
        f"  ServerAliveInterval 15\n"
        f"  LogLevel ERROR\n"
    )


def ssh_base(lab: Lab) -> list[str]:
    return ["ssh", "-F", str(lab.ssh_config), paths.SSH_ALIAS]


def _ssh_ready(lab: Lab) -> bool:
    proc = subprocess.run(
        [*ssh_base(lab)[:-1], "-o", "ConnectTimeout=5", "-o", "BatchMode=yes", paths.SSH_ALIAS, "true"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return proc.returncode == 0


def _last_console_line(lab: Lab) -> str:
    try:
        with lab.console.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 2048))
            lines = [ln for ln in fh.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].replace("\r", "").strip() if lines else ""


def qemu_command(lab: Lab, img: image_mod.Image, port: int, pubkey: str, smp: int = 2) -> list[str]:
    authkey = base64.b64encode(pubkey.encode()).decode()
    append = f"root=/dev/vda rw console=ttyS0 quiet panic=-1 net.ifnames=0 mvpn.authkey={authkey}"
    return [
        QEMU,
        "-name",
        "mvpn-twin",
        "-accel",
        "tcg,thread=multi",
        "-cpu",
        "max",
        "-smp",
        str(smp),
        "-m",
        str(MEMORY_MB),
        "-kernel",
        str(img.kernel),
        "-initrd",
        str(img.initrd),
        "-append",
        append,
        "-drive",
        f"file={img.disk},if=virtio,format=raw,snapshot=on",
        "-netdev",
        f"user,id=mgmt,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device",
        "virtio-net-pci,netdev=mgmt",
        "-device",
        "virtio-rng-pci",
        "-display",
        "none",
        "-serial",
        f"file:{lab.console}",
        "-monitor",
        "none",
        "-no-reboot",
        "-daemonize",
        "-pidfile",
        str(lab.pidfile),
    ]


def cabling_script() -> str:
    return (resources.files("mvpn_lab.vlab") / "data" / "cabling.sh").read_text()


def cable(lab: Lab) -> None:
    """Create the lab hosts' namespaces, links and radios inside the VM (idempotent)."""
    with step("cabling the lab inside the twin (namespaces, backbone, hwsim radios)"):
        proc = subprocess.run(
            [*ssh_base(lab), "sh", "-s"],
            input=cabling_script(),
            text=True,
            capture_output=True,
            check=False,
        )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise LabError(f"cabling the twin failed (exit {proc.returncode}): {tail[0]}")


def up(mirror: str | None = None) -> Lab:
    """Boot the twin (building the image if needed); a no-op when it already runs."""
    lab = default_lab()
    pid = running_pid(lab)
    if pid is not None:
        print(f"twin already running (pid {pid}); nothing to do")
        return lab
    if shutil.which(QEMU) is None:
        raise LabError(
            f"{QEMU} not found on this host: install it with 'apt-get install qemu-system-x86' "
            "(or run scripts/setup.sh)"
        )
    port = paths.ssh_port()
    if not _port_free(port):
        raise LabError(f"port 127.0.0.1:{port} is in use; stop what holds it or set MVPN_VLAB_PORT")
    img = image_mod.build(mirror=mirror)
    pubkey = _ensure_key(lab)
    _ensure_ipsec_keys(lab)
    _write_ssh_files(lab, img, port)
    lab.console.write_text("")
    started = time.monotonic()
    proc = subprocess.run(qemu_command(lab, img, port, pubkey), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lab.pidfile.unlink(missing_ok=True)
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise LabError(f"{QEMU} failed to start (exit {proc.returncode}): {tail[0]}")
    with step("booting the twin and waiting for SSH") as progress:
        while not _ssh_ready(lab):
            if time.monotonic() - started > BOOT_TIMEOUT:
                raise LabError(f"the twin did not answer SSH within {BOOT_TIMEOUT:.0f} s; see {lab.console}")
            if running_pid(lab) is None:
                raise LabError(f"QEMU exited during boot; see {lab.console}")
            progress.update(_last_console_line(lab))
            time.sleep(1)
    boot_s = time.monotonic() - started
    cable(lab)
    lab.runinfo.write_text(
        json.dumps(
            {
                "image": img.key,
                "port": port,
                "pid": running_pid(lab),
                "boot_seconds": round(boot_s, 1),
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"twin up: image {img.key}, SSH on 127.0.0.1:{port}, ready in {boot_s:.1f} s")
    return lab


def down() -> None:
    """Stop the twin and clean its pid file and SSH control sockets."""
    lab = default_lab()
    pid = None
    if lab.pidfile.exists():
        try:
            pid = int(lab.pidfile.read_text().strip())
        except ValueError:
            pid = None
    if lab.ssh_config.exists():
        subprocess.run(
            [*ssh_base(lab)[:-1], "-O", "exit", paths.SSH_ALIAS],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    if pid is not None and _pid_alive(pid) and _is_qemu(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        print(f"twin stopped (pid {pid})")
    else:
        print("twin not running")
    lab.pidfile.unlink(missing_ok=True)
    lab.runinfo.unlink(missing_ok=True)
    for control in lab.directory.glob("cm-*"):
        control.unlink(missing_ok=True)


def status() -> dict[str, object]:
    lab = default_lab()
    info: dict[str, object] = {"state_dir": str(lab.directory)}
    try:
        pid = running_pid(lab)
    except LabError as exc:
        info.update(running=False, error=str(exc))
        return info
    info["running"] = pid is not None
    img = image_mod.current()
    info["image"] = {"key": img.key, "cached": img.complete(), "path": str(img.directory)}
    if pid is None:
        return info
    info["pid"] = pid
    with contextlib.suppress(OSError, ValueError):
        info.update(json.loads(lab.runinfo.read_text()))
    proc = subprocess.run(
        [*ssh_base(lab), "ip", "netns", "list"], capture_output=True, text=True, timeout=30, check=False
    )
    info["ssh_ready"] = proc.returncode == 0
    info["lab_hosts"] = sorted(line.split()[0] for line in proc.stdout.splitlines() if line.strip())
    return info


def ssh(host: str | None, command: list[str]) -> int:
    lab = default_lab()
    if running_pid(lab) is None:
        raise LabError("the twin is not running; start it with 'mvpn-lab vlab up'")
    if host is not None and host not in paths.LAB_HOSTS:
        raise LabError(f"--host: expected one of {', '.join(paths.LAB_HOSTS)}, got {host!r}")
    argv = ssh_base(lab)
    if host:
        tty = ["-t"] if sys.stdin.isatty() else []
        argv = [*argv[:-1], *tty, paths.SSH_ALIAS, "ip", "netns", "exec", host, *(command or ["bash", "-l"])]
    elif command:
        argv = [*argv, *command]
    os.execvp(argv[0], argv)
    return 0  # not reached
