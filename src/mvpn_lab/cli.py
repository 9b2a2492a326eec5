"""Mobile VPN lab (Mobile IPv6 + IPsec): virtual twin, handover tests, MIPv6 daemon, analysis and reports.

The ``mvpn-lab`` command line (its first docstring line is the one-line description of --help).
Each subsystem owns its sub-commands: a module with a ``register(subparsers)``
function that adds its parsers and sets ``func`` on them. ``func(args)``
returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from mvpn_lab import __version__
from mvpn_lab.errors import LabError

# Modules that contribute sub-commands, in the order they appear in --help.
SUBCOMMAND_MODULES = (
    "mvpn_lab.vlab.cli",
    "mvpn_lab.runner.cli",
    "mvpn_lab.analysis.cli",
    "mvpn_lab.mip6.cli",
    "mvpn_lab.keys",
    "mvpn_lab.topology",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mvpn-lab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mvpn-lab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LabError as exc:
        print(f"mvpn-lab: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mvpn-lab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into head: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
