"""``mvpn-lab mip6 ...``: tools around the Mobile IPv6 daemon's protocol core.

* ``mip6 decode FILE`` prints every Mobility Header message in a pcap/pcapng capture as one JSON
  line on stdout and one warning line on stderr per message (or record) it could not read.
  Exit status: 0 all decoded, 1 some could not be decoded, 2 the file is not a capture.
* ``mip6 check-config FILE`` validates a node configuration; prints ``ok: ...`` (or the
  normalised config with ``--json``) or one error line naming the field (exit status 2).
* ``mip6 run --config FILE`` runs the daemon (root, a Mobile IPv6 kernel) until SIGTERM/SIGINT.
* ``mip6 status --socket PATH`` (or ``--config FILE``) prints a running daemon's status JSON.
* ``mip6 bundle FILE`` writes the daemon as one zip application for the lab hosts.
* ``mip6 attack KIND [options]`` sends forged or malformed Mobility Header signalling (scapy,
  root) and prints one JSON line describing it (see :mod:`mvpn_lab.mip6.attacks`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from mvpn_lab.errors import LabError
from mvpn_lab.mip6 import attack_args
from mvpn_lab.mip6.core.config import config_to_dict, load_config

# The wire decoders and the attack generator are imported by the commands that use them, not
# here: ``check-config`` (the role's template validation) and ``reload`` (the unit's ExecReload)
# then start about 0.6 s sooner under the twin's emulated CPU.


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mip6",
        help="Mobile IPv6 daemon tools (decode captures, check configs)",
        description="Mobile IPv6 daemon tools.",
    )
    sub = parser.add_subparsers(dest="mip6_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: _help(parser))

    decode = sub.add_parser(
        "decode",
        help="print the Mobility Header messages of a pcap/pcapng file as JSON lines",
        description="Print each Mobility Header message in a capture as one JSON line; "
        "warn on stderr about each one that cannot be decoded.",
    )
    decode.add_argument("file", metavar="FILE", help="pcap or pcapng capture")
    decode.set_defaults(func=cmd_decode)

    check = sub.add_parser(
        "check-config",
        help="validate a mip6 node configuration file",
        description="Validate a mip6 node configuration (YAML).",
    )
    check.add_argument("file", metavar="FILE", help="YAML configuration of one node")
    check.add_argument("--json", action="store_true", help="print the normalised configuration as JSON")
    check.set_defaults(func=cmd_check_config)

    run = sub.add_parser(
        "run",
        help="run the Mobile IPv6 daemon for one node (root, Mobile IPv6 kernel)",
        description="Run the Mobile IPv6 daemon of one node until SIGTERM or SIGINT. Events and "
        "errors are JSON lines on stderr (or daemon_log), Mobility Header messages JSON lines in "
        "log_file.",
    )
    run.add_argument("--config", required=True, metavar="FILE", help="YAML configuration of the node")
    run.add_argument("--debug", action="store_true", help="also log every kernel command")
    run.set_defaults(func=cmd_run)

    status = sub.add_parser(
        "status",
        help="print a running daemon's status (binding cache / update list, counters) as JSON",
        description="Ask a running daemon for its status through its control socket.",
    )
    where = status.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", metavar="PATH", help="the daemon's control socket")
    where.add_argument("--config", metavar="FILE", help="take the control socket from this configuration")
    status.set_defaults(func=cmd_status)

    reload = sub.add_parser(
        "reload",
        help="make a running daemon read its configuration file again (same process)",
        description="Ask a running daemon to reload: it checks its configuration file again, "
        "refuses an invalid one in one line (the running configuration stays), else stops as on "
        "SIGTERM and starts with the new file in the same process. Waits until the new "
        "generation answers and prints the pid and generation before and after as JSON (the "
        "unit's ExecReload, so 'systemctl reload' returns once the daemon is back).",
    )
    where = reload.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", metavar="PATH", help="the daemon's control socket")
    where.add_argument("--config", metavar="FILE", help="take the control socket from this configuration")
    reload.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="how long to wait (default 30)"
    )
    reload.set_defaults(func=cmd_reload)

    bundle = sub.add_parser(
        "bundle",
        help="write the daemon as one zip application for lab hosts (mvpn-lab-mip6.pyz)",
        description="Write a deterministic zip application of the daemon (run it with python3). "
        "Prints the file's path and sha256.",
    )
    bundle.add_argument("output", metavar="FILE", help="where to write the .pyz")
    bundle.set_defaults(func=cmd_bundle)

    attack = sub.add_parser(
        "attack",
        help="send forged or malformed Mobility Header signalling (scapy, root) for attack tests",
        description="Build one forged or malformed Mobility Header packet with scapy, send it\n"
        "--count times (layer 3, or sendp on --iface) and print one JSON line describing it\n"
        "(--dry-run: build and print only). Every packet carries a correct MH checksum.",
        epilog=attack_args.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    attack_args.add_arguments(attack)
    attack.set_defaults(func=cmd_attack)


def cmd_attack(args: argparse.Namespace) -> int:
    from mvpn_lab.mip6 import attacks

    return attacks.cmd_attack(args)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def decode_capture(data: bytes, *, name: str = "capture") -> tuple[list[dict[str, Any]], list[str]]:
    """Records for each MH message found and warnings for what could not be read."""
    from mvpn_lab.mip6.wire.constants import IPPROTO_MH
    from mvpn_lab.mip6.wire.ipv6 import parse_ipv6, verify_mh_checksum
    from mvpn_lab.mip6.wire.messages import MHDecodeError, decode_mh, message_to_dict, mh_length
    from mvpn_lab.mip6.wire.pcap import read_capture

    try:
        capture = read_capture(data)
    except MHDecodeError as exc:
        raise LabError(f"{name}: {exc.reason}") from None
    records: list[dict[str, Any]] = []
    warnings = [f"{name}: {w}" for w in capture.warnings]
    for frame in capture.frames:  # the IPv6 packets, numbered as frames in the file
        packet = frame.data
        cut = ""
        if frame.original_length > len(frame.data):
            cut = f" (packet captured {len(frame.data)} of {frame.original_length} bytes)"
        try:
            parsed = parse_ipv6(packet)
        except MHDecodeError as exc:
            warnings.append(f"{name}: frame {frame.index}: {exc.reason}{cut}")
            continue
        if parsed.mh is None:
            continue
        base: dict[str, Any] = {
            "frame": frame.index,
            "time": round(frame.timestamp, 6),
            "src": str(parsed.src),
            "dst": str(parsed.dst),
            "hao": None if parsed.hao is None else str(parsed.hao),
            "rh2": None if parsed.rh2 is None else str(parsed.rh2),
        }
        if parsed.mh_next_header != IPPROTO_MH:
            base["next_header"] = parsed.mh_next_header
        if parsed.tunnel:
            base["tunnel"] = [{"src": str(s), "dst": str(d)} for s, d in parsed.tunnel]
        try:
            msg = decode_mh(parsed.mh)
        except MHDecodeError as exc:
            warnings.append(f"{name}: frame {frame.index}: mobility header: {exc.reason}{cut}")
            continue
        raw = parsed.mh[: mh_length(parsed.mh)]
        record = {**base, **message_to_dict(msg)}
        record["checksum_ok"] = verify_mh_checksum(parsed.pseudo_src, parsed.pseudo_dst, raw)
        records.append(record)
    return records, warnings


def cmd_decode(args: argparse.Namespace) -> int:
    from mvpn_lab.mip6.wire.pcap import CaptureError, check_regular_file

    path = Path(args.file)
    try:
        check_regular_file(path)  # a FIFO or a device would be read forever
    except CaptureError as exc:
        if exc.reason != "missing":
            raise LabError(f"{path}: {exc.message}") from None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LabError(f"no such file: {path}") from None
    except OSError as exc:
        raise LabError(f"cannot read {path}: {exc.strerror or exc}") from None
    records, warnings = decode_capture(data, name=str(path))
    for record in records:
        print(json.dumps(record))
    for warning in warnings:
        print(f"mvpn-lab: warning: {warning}", file=sys.stderr)
    return 1 if warnings else 0


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = load_config(args.file)
    if args.json:
        print(json.dumps(config_to_dict(cfg), indent=2))
    else:
        print(f"ok: {args.file}: role {cfg.role}, name {cfg.name}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from mvpn_lab.mip6.daemon.loop import serve

    return serve(load_config(args.config), config_path=str(args.config), debug=args.debug)


def cmd_status(args: argparse.Namespace) -> int:
    from mvpn_lab.mip6.core.config import control_socket_path
    from mvpn_lab.mip6.daemon.control import query

    path = args.socket if args.socket else control_socket_path(load_config(args.config))
    text = json.dumps(query(path, "status"), indent=2)
    try:
        print(text, flush=True)
    except BrokenPipeError:  # e.g. piped into head: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    from mvpn_lab.mip6.core.config import control_socket_path
    from mvpn_lab.mip6.daemon.control import reload

    if not args.timeout > 0:
        raise LabError(f"--timeout: expected a number of seconds > 0, got {args.timeout}")
    path = args.socket if args.socket else control_socket_path(load_config(args.config))
    print(json.dumps(reload(path, timeout=args.timeout)), flush=True)
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from mvpn_lab.mip6.bundle import write_bundle

    try:
        digest = write_bundle(args.output)
    except OSError as exc:
        raise LabError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(json.dumps({"path": str(Path(args.output).resolve()), "sha256": digest}))
    return 0
