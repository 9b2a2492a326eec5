"""Per-command cost of the MIPv6 daemon's data-plane commands: one ``ip`` process per command,
the long-lived ``ip -batch`` co-process (plugins/module_utils/ipbatch.py, which the daemon uses),
the same four commands written to it at once (``run_many``, as the daemon sends what it queued
before a Binding Update), and the same changes made in-process over netlink with pyroute2 (issue
16 asked whether the daemon should change routes and addresses that way), with pyroute2's import
time.

    sudo .venv/bin/python benchmarks/ip_batch.py [--commands 200]

Runs in a throw-away network namespace (``unshare --net``; needs root). On the virtual twin,
copy it in and run it with the twin's python3 (Debian's python3-pyroute2, what the lab hosts
have) and the daemon bundle on PYTHONPATH. Prints the mean and median milliseconds per command
for each; asserts nothing.

Measured on the twin (TCG, the 2-core CI machine with nothing else running, 2026-12-05, Debian's
pyroute2 0.7.2, 100 commands, two runs): one ``ip`` per command 33 ms (median), ``ip -batch``
0.65 ms, pyroute2 in-process 2.2 ms, and ``import pyroute2`` 0.9-1.0 s. So the daemon keeps the
co-process for its changes and uses pyroute2 for reading (its rtnetlink events and dumps).
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


class _Outcome:
    ok = True
    message = ""


class Pyroute2Runner:
    """The four commands above as in-process netlink requests (pyroute2's ``IPRoute``)."""

    def __init__(self) -> None:
        started = time.perf_counter()
        from pyroute2 import IPRoute

        self.import_ms = (time.perf_counter() - started) * 1000
        self.ipr = IPRoute()
        self.lo = self.ipr.link_lookup(ifname="lo")[0]

    def __call__(self, argv: list[str]) -> _Outcome:
        what, op, target = argv[2], argv[3], argv[4]
        net, _, plen = target.partition("/")
        if what == "route":
            self.ipr.route("replace" if op == "replace" else "del", dst=net, dst_len=int(plen), oif=self.lo)
        else:
            self.ipr.addr("replace" if op == "replace" else "del", index=self.lo, address=net,
                          prefixlen=int(plen))  # fmt: skip
        return _Outcome()

    def close(self) -> None:
        self.ipr.close()


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


class ManyRunner:
    """``IpBatchRunner.run_many`` over the four commands at once (what the daemon's flush sends
    before a BU); the time per group is split evenly over its commands."""

    def __init__(self, batch: IpBatchRunner) -> None:
        self.batch = batch

    def timed(self, count: int) -> list[float]:
        out = []
        for _ in range(max(1, count // len(COMMANDS))):
            start = time.perf_counter()
            results = self.batch.run_many(COMMANDS)
            elapsed = (time.perf_counter() - start) * 1000
            bad = [r.message for r in results if not r.ok]
            if bad:
                raise SystemExit(f"run_many: {bad[0]}")
            out += [elapsed / len(COMMANDS)] * len(COMMANDS)
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
    netlink = Pyroute2Runner()
    try:
        results = {
            "ip per command": timed(SubprocessRunner(), args.commands),
            "ip -batch": timed(batch, args.commands),
            "ip -batch, 4 per write": ManyRunner(batch).timed(args.commands),
            "pyroute2": timed(netlink, args.commands),
        }
    finally:
        batch.close()
        netlink.close()
    print(f"import pyroute2  {netlink.import_ms:7.1f} ms")
    for name, values in results.items():
        print(f"{name:24} mean {statistics.mean(values):7.3f} ms  median {statistics.median(values):7.3f} ms"
              f"  ({len(values)} commands)")  # fmt: skip


if __name__ == "__main__":
    main()
