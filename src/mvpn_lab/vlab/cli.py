"""``mvpn-lab vlab build|up|down|status|ssh``: the virtual twin."""

from __future__ import annotations

import argparse
import json

from mvpn_lab.vlab import image, machine


def _build(args: argparse.Namespace) -> int:
    image.build(mirror=args.mirror, force=args.force)
    return 0


def _up(args: argparse.Namespace) -> int:
    machine.up(mirror=args.mirror)
    return 0


def _down(_args: argparse.Namespace) -> int:
    machine.down()
    return 0


def _status(args: argparse.Namespace) -> int:
    info = machine.status()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key}: {value}")
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
