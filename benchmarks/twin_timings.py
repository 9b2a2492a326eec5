"""Wall times of the virtual twin's main steps, printed as a table.

    .venv/bin/python benchmarks/twin_timings.py [--cold] [--skip-site] [--skip-test1]
        [--test2 CONFIG] [--test4 CONFIG] [--strategy NAME]

--cold builds the image into an empty temporary cache (the real cache is left alone).
If the twin is not running it is booted from the cached image and the boot is timed.
Then site.yml runs twice (the second run must report changed=0), Test 1 once and, with
--test2 or --test4, one repetition of that configuration on the provisioned lab, its wall time
split into the experiment (the download across both handovers and dwells), the daemons' own
processing and the rest (Ansible).
--strategy runs the playbooks with that Ansible strategy (ANSIBLE_STRATEGY; "linear" is Ansible
without Mitogen), else ansible.cfg's (mvpn.lab.mitogen_linear, or ANSIBLE_STRATEGY if set).
The first lines name the strategy and the host's load average (the twin shares the CPU).
A benchmark, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    started = time.monotonic()
    proc = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
    )
    elapsed = time.monotonic() - started
    if proc.returncode != 0:  # the figure is printed anyway; this says why it failed
        print(
            f"{' '.join(argv[:2])}: exit {proc.returncode}",
            *proc.stdout.splitlines()[-15:],
            sep="\n",
            file=sys.stderr,
        )
    return elapsed, proc.returncode, proc.stdout + proc.stderr


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def changed_total(output: str) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", output))


def one_configuration(number: int, test: str, config: str, play_env: dict[str, str]) -> list[tuple[str, str]]:
    """One repetition of one configuration of Test 2 or 4 on the provisioned lab (no analysis), and
    where its wall time went: the experiment itself (the download, from its start to its end,
    which spans both handovers and the dwells after them), the daemons' own processing (the sum
    of their answer lines' processing_ms, from the run folder's daemon logs) and the rest, which is
    Ansible (its tasks before, between and after, the roles that set the configuration up)."""
    label = f"Test {number} {config}, 1 repetition"
    with tempfile.TemporaryDirectory() as results:
        extra = {
            "mvpn_provision": False,
            f"mvpn_test{number}_repetitions": 1,
            f"mvpn_test{number}_only": [f"^{config}$"],
            f"mvpn_test{number}_analyse": False,
            "mvpn_results_dir": results,
        }
        secs, code, out = timed(
            [str(BIN / "ansible-playbook"), f"playbooks/{test}.yml", "-e", json.dumps(extra)], env=play_env
        )
        rows = [(label, f"{secs:.0f} s, exit {code}, tasks run: {tasks_total(out)}")]
        runs = sorted(Path(results, test).glob("*/manifest.json"))
        if not runs:
            return rows
        run = runs[-1].parent
        events = json.loads((run / config / "rep-01" / "events.json").read_text())
        transfer = events.get("transfer") or {}
        started, finished = transfer.get("started_at"), transfer.get("finished_at")
        sys.path.insert(0, str(ROOT / "src"))
        from mvpn_lab.analysis.rundir import schema

        answers, _ = schema().read_answers(run)
        if started and finished:
            during = [a for a in answers if started <= a["epoch"] <= finished]
            daemon_s = sum(a["processing_ms"] for a in during) / 1000
            experiment = finished - started
            dwell = json.loads(runs[-1].read_text()).get("dwell_s")
            rows.append(
                (
                    "  experiment (download: handovers, dwell)",
                    f"{experiment:.1f} s (dwell per network: {dwell})",
                )
            )
            rows.append(
                ("  daemons' processing (answers)", f"{daemon_s * 1000:.0f} ms in {len(during)} answers")
            )
            rows.append(("  Ansible and the rest", f"{secs - experiment:.1f} s"))
        return rows


def tasks_total(output: str) -> int:
    """Tasks that ran on some host, by the recap (ok + changed + failed on the busiest host)."""
    counts = [sum(int(n) for n in re.findall(r"(?:ok|failed)=(\d+)", line))
              for line in output.splitlines() if re.search(r"\bok=\d+", line)]  # fmt: skip
    return max(counts, default=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="also time a cold image build")
    parser.add_argument("--skip-site", action="store_true", help="do not run site.yml")
    parser.add_argument("--skip-test1", action="store_true", help="do not run Test 1")
    parser.add_argument(
        "--test2", metavar="CONFIG", help="also time one repetition of this Test 2 configuration (its id)"
    )
    parser.add_argument(
        "--test4", metavar="CONFIG", help="also time one repetition of this Test 4 configuration (its id)"
    )
    parser.add_argument("--strategy", help="Ansible strategy for the playbooks (linear: without Mitogen)")
    args = parser.parse_args()
    play_env = {"ANSIBLE_STRATEGY": args.strategy} if args.strategy else {}
    strategy = (
        args.strategy or os.environ.get("ANSIBLE_STRATEGY") or "ansible.cfg's (mvpn.lab.mitogen_linear)"
    )
    rows: list[tuple[str, str]] = [("strategy", strategy), ("load average", load_average())]
    cli = str(BIN / "mvpn-lab")
    if args.cold:
        with tempfile.TemporaryDirectory() as cache:
            secs, code, out = timed([cli, "vlab", "build"], env={"MVPN_VLAB_CACHE": cache})
            rows.append(("cold image build", f"{secs:.0f} s" + ("" if code == 0 else f" (failed: {code})")))
    status = json.loads(
        subprocess.run([cli, "vlab", "status", "--json"], capture_output=True, text=True, check=False).stdout
        or "{}"
    )
    if status.get("running"):
        rows.append(
            ("cached up to SSH-ready", f"{status.get('boot_seconds', '?')} s (at the running twin's boot)")
        )
    else:
        secs, code, out = timed([cli, "vlab", "up"])
        ready = re.search(r"ready in ([0-9.]+) s", out)
        rows.append(
            (
                "cached up to SSH-ready",
                f"{ready.group(1) if ready else '?'} s (up incl. cabling {secs:.0f} s)",
            )
        )
    for label in () if args.skip_site else ("site.yml", "site.yml again"):
        secs, code, out = timed([str(BIN / "ansible-playbook"), "playbooks/site.yml"], env=play_env)
        rows.append((label, f"{secs:.0f} s, changed={changed_total(out)}, exit {code}"))
    if not args.skip_test1:
        with tempfile.TemporaryDirectory() as results:
            secs, code, out = timed(
                [
                    str(BIN / "ansible-playbook"),
                    "playbooks/test1_validation.yml",
                    "-e",
                    f"mvpn_results_dir={results}",
                ],
                env=play_env,
            )
            rows.append(("Test 1 (4 configurations)", f"{secs:.0f} s, exit {code}"))
    for number, test, config in ((2, "test2_wlan", args.test2), (4, "test4_umts", args.test4)):
        if config:
            rows += one_configuration(number, test, config, play_env)
    rows.append(("load average after", load_average()))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
