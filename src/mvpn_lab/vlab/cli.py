"""``mvpn-lab vlab build|up|down|status|ssh``: the virtual twin."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mvpn_lab.vlab import image, machine, paths


def _build(args: argparse.Namespace) -> int:
    image.build(mirror=args.mirror, force=args.force)
    return 0


def _up(args: argparse.Namespace) -> int:
    machine.up(mirror=args.mirror)
    return 0


def _down(_args: argparse.Namespace) -> int:
    machine.down()
    return 0


def _image_id(info: dict[str, Any]) -> str:
    """The image's key: run.json's (a running twin) or the current image's (``image.key``)."""
    img = info.get("image")
    if isinstance(img, dict):
        key = img.get("key") or "-"
        return f"{key} ({'cached' if img.get('cached') else 'not built'})"
    return str(img) if img else "-"


def status_rows(info: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, value, rich style) rows of ``machine.status()``'s dict, in reading order."""
    running = bool(info.get("running"))
    rows = [("twin", "running" if running else "not running", "bold green" if running else "bold")]
    if info.get("error"):
        rows.append(("error", str(info["error"]), "red"))
    rows.append(("image", _image_id(info), ""))
    port = info.get("port")
    ready = info.get("ssh_ready")
    ssh = "-" if port is None else f"127.0.0.1:{port}"
    if port is not None and ready is not None:
        ssh += " (answers)" if ready else " (does not answer)"
    rows.append(("SSH port", ssh, "" if ready is not False else "red"))
    rows.append(("pid", "-" if info.get("pid") is None else str(info["pid"]), ""))
    boot = info.get("boot_seconds")
    rows.append(("boot", "-" if boot is None else f"{boot} s", ""))
    if info.get("started_at"):
        rows.append(("up since", str(info["started_at"]), ""))
    hosts = info.get("lab_hosts")
    if isinstance(hosts, list):
        missing = [h for h in paths.LAB_HOSTS if h not in hosts]
        text = ", ".join(str(h) for h in hosts) or "none"
        rows.append(("lab hosts", text + (f" (missing: {', '.join(missing)})" if missing else ""),
                     "red" if missing else ""))  # fmt: skip
    else:
        rows.append(("lab hosts", "-", ""))
    rows.append(("state", str(info.get("state_dir", "-")), "dim"))
    return rows


def _status(args: argparse.Namespace) -> int:
    info = machine.status()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title="virtual twin", title_justify="left", show_header=False)
        table.add_column("field", no_wrap=True, style="bold")
        table.add_column("value", overflow="fold")
        for name, value, style in status_rows(info):
            table.add_row(Text(name), Text(value, style=style))
        Console().print(table)
    return 0 if "error" not in info else 1


def _ssh(args: argparse.Namespace) -> int:
    command = list(args.cmd)
    if command[:1] == ["--"]:
        command = command[1:]
    return machine.ssh(args.host, command)


def register(subparsers: argparse._SubParsersAction) -> None:
    vlab = subparsers.add_parser("vlab", help="the virtual twin (QEMU VM with one namespace per lab host)")
    sub = vlab.add_subparsers(dest="vlab_command", metavar="ACTION", required=True)

    build = sub.add_parser("build", help="build the twin's image, or reuse the cached one")
    build.add_argument("--mirror", help="Debian mirror URI (default: the host's apt sources)")
    build.add_argument("--force", action="store_true", help="rebuild even when the cache is current")
    build.set_defaults(func=_build)

    up = sub.add_parser("up", help="boot the twin and cable the lab (no-op when running)")
    up.add_argument("--mirror", help="Debian mirror URI for a first image build")
    up.set_defaults(func=_up)

    down = sub.add_parser("down", help="stop the twin; nothing is left running")
    down.set_defaults(func=_down)

    status = sub.add_parser("status", help="is the twin running, on which image and port")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=_status)

    ssh = sub.add_parser("ssh", help="a shell or command on the twin, or inside one lab host")
    ssh.add_argument("--host", help="lab host whose namespace to enter (mn, ha, fn, cn, impair)")
    ssh.add_argument("cmd", nargs=argparse.REMAINDER, help="command to run (default: a shell)")
    ssh.set_defaults(func=_ssh)
