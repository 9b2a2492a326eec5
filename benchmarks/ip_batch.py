"""Per-command cost of the MIPv6 daemon's data-plane commands: one ``ip`` process per command
against the long-lived ``ip -batch`` co-process (plugins/module_utils/ipbatch.py, which the daemon uses).

    sudo .venv/bin/python benchmarks/ip_batch.py [--commands 200]

Runs in a throw-away network namespace (``unshare --net``; needs root). On the virtual twin,
copy it in and run it with the twin's python3 and the daemon bundle on PYTHONPATH. Prints the
mean and median milliseconds per command for both; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mvpn_lab.mip6.daemon.kernel.base import (  # noqa: E402
    IpBatchRunner,
    SubprocessRunner,
)

COMMANDS = [
    ["ip", "-6", "route", "replace", "2001:db8:1::/64", "dev", "lo"],
    ["ip", "-6", "addr", "replace", "2001:db8:2::1/128", "dev", "lo"],
    ["ip", "-6", "route", "del", "2001:db8:1::/64", "dev", "lo"],
    ["ip", "-6", "addr", "del", "2001:db8:2::1/128", "dev", "lo"],
]


def timed(runner, count: int) -> list[float]:
    out = []
    for i in range(count):
        argv = COMMANDS[i % len(COMMANDS)]
        start = time.perf_counter()
        result = runner(argv)
        out.append((time.perf_counter() - start) * 1000)
        if not result.ok:
            raise SystemExit(f"{' '.join(argv)}: {result.message}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.inside:
        if os.geteuid() != 0:
            raise SystemExit("needs root (a network namespace)")
        argv = ["unshare", "--net", sys.executable, __file__, "--inside", "--commands", str(args.commands)]
        raise SystemExit(subprocess.run(argv, check=False).returncode)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    batch = IpBatchRunner(SubprocessRunner())
    try:
        results = {
            "ip per command": timed(SubprocessRunner(), args.commands),
            "ip -batch": timed(batch, args.commands),
        }
    finally:
        batch.close()
    for name, values in results.items():
        print(f"{name:16} mean {statistics.mean(values):7.3f} ms  median {statistics.median(values):7.3f} ms"
              f"  ({len(values)} commands)")  # fmt: skip


if __name__ == "__main__":
    main()
