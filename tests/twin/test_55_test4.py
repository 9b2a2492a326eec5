"""The paper's Test 4 (WLAN to UMTS) on the twin through the experiment runner, `--quick` (one
repetition per configuration): a lab host is down during the first repetition, the run is
interrupted (SIGINT, as Ctrl-C) during the second and resumed; the analysis and the report come
out at the end.

CI runs CI_CONFIGURATIONS (IPsec none and tunnel mode under bt, L2 movement detection, the
shorter) to stay inside its time budget; MVPN_TEST4_ALL=1 runs all 12 (the host down and the
interruption then fall on the first and second).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from conftest import BIN, OUTPUT, ROOT, cli

ALL = [
    f"mip6-{mode}_ipsec-{ipsec}_md-{md}"
    for ipsec in ("none", "transport", "tunnel")
    for md in ("ra", "l2")
    for mode in ("bt", "ro")
]
CI_CONFIGURATIONS = [
    "mip6-bt_ipsec-none_md-l2",  # the CN is down during this one
    "mip6-bt_ipsec-tunnel_md-l2",  # interrupted during this one, then resumed
]
CONFIGURATIONS = ALL if os.environ.get("MVPN_TEST4_ALL") == "1" else CI_CONFIGURATIONS
DOWN, INTERRUPTED = CONFIGURATIONS[0], CONFIGURATIONS[1]
# the CN's namespace wrapper: without it nothing runs on the CN, as on a host that is down
WRAPPER = "/usr/local/bin/python3-cn"
# In its place while the run starts: it passes every call on to the real wrapper except the
# first repetition's probe (the interpreter started bare, `-c ''`, nothing else runs it), which
# fails as a missing interpreter does, after it put the real wrapper back. So the CN is down for
# that one repetition exactly, whenever the playbook gets there and however soon it goes on.
DOWN_AT_PROBE = f"""#!/bin/sh
if [ "$#" -eq 2 ] && [ "$1" = "-c" ] && [ -z "$2" ]; then
  mv -f {WRAPPER}.real {WRAPPER}
  echo "{WRAPPER}: not found (the CN is down for this repetition)" >&2
  exit 127
fi
exec {WRAPPER}.real "$@"
"""


def _wait_for(what: str, predicate, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(3)


def _vm(command: str) -> subprocess.CompletedProcess[str]:
    return cli("vlab", "ssh", "--", command)


def _captures(tag: str, host: str = "mn") -> int:
    """The number of captures on a host whose name has ``tag`` (never pgrep: the shell running
    it has the tag in its own command line)."""
    proc = _vm(f"ls /var/lib/mvpn-lab/{host}/captures/ | grep -c -- '{tag}.*[.]pcap$' || true")
    return int(proc.stdout.strip() or 0)


def _runner(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "160"}
    with log.open("a") as out:
        return subprocess.Popen(
            [str(BIN / "mvpn-lab"), "run", "test4_umts", "--no-provision", *args],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
        )  # fmt: skip


def _digests(run: Path) -> dict[str, str]:
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.glob("*/rep-*/*"))
        if p.is_file()
    }


def _cn_down_at_the_first_probe() -> None:
    write = f"printf '%s' {shlex.quote(DOWN_AT_PROBE)} > {WRAPPER}.probe && chmod 755 {WRAPPER}.probe"
    swap = f"mv {WRAPPER} {WRAPPER}.real && mv {WRAPPER}.probe {WRAPPER}"
    assert _vm(f"{write} && {swap}").returncode == 0


def _cn_up() -> None:
    assert _vm(f"test ! -e {WRAPPER}.real || mv -f {WRAPPER}.real {WRAPPER}").returncode == 0


def test_test4_quick_survives_a_host_down_and_an_interruption(twin, tmp_path):
    results = tmp_path / "results"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log = OUTPUT / "test4_umts.log"
    log.write_text("")
    started = float(_vm("date +%s.%N").stdout)  # the twin's clock, for its daemon logs
    _cn_down_at_the_first_probe()
    try:
        proc = _runner(["--quick", "--configs", ",".join(CONFIGURATIONS), "--results-dir", str(results)], log)
        try:
            runs = lambda: sorted((results / "test4_umts").glob("*/manifest.json"))  # noqa: E731
            _wait_for("the run folder", runs, proc, 900)
            run = runs()[0].parent
            down = run / DOWN / "rep-01" / "events.json"
            _wait_for(f"{DOWN} to finish", down.exists, proc, 1200)
            # Ctrl-C once the next repetition's captures run
            tag = f"{run.name}_{INTERRUPTED}_"
            capturing = lambda: _captures(tag) == 1 and _captures(tag, "cn") == 1  # noqa: E731
            _wait_for(f"{INTERRUPTED}'s captures", capturing, proc, 900)
            time.sleep(10)
            before = _digests(run)
            os.killpg(proc.pid, signal.SIGINT)
            code = proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    finally:
        _cn_up()
    output = log.read_text()
    assert code == 130, output[-4000:]
    assert "--resume" in output and str(run) in output, output[-4000:]
    interrupted = run / INTERRUPTED / "rep-01" / "events.json"
    assert not interrupted.exists(), (interrupted.read_text(), output[-4000:])
    assert (run / DOWN / "rep-01" / "mn.pcap").is_file()  # recorded before the interruption

    resumed = _runner(["--resume", str(run)], log)
    code = resumed.wait(timeout=3600)
    output = log.read_text()
    assert code == 1, output[-4000:]  # one repetition failed: the one with the CN down

    # nothing recorded before the interruption changed; the interrupted attempt's captures stay on
    # the hosts beside the resumed attempt's (each attempt has its own name: never overwritten)
    after = _digests(run)
    assert {k: v for k, v in after.items() if k in before} == before
    assert (_captures(tag), _captures(tag, "cn")) == (2, 2)  # the two attempts' on the MN and the CN

    manifest = json.loads((run / "manifest.json").read_text())
    assert [c["id"] for c in manifest["configurations"]] == CONFIGURATIONS
    assert manifest["profile"] == "umts" and manifest["repetitions"] == 1
    outcome = json.loads((run / "outcome.json").read_text())
    reps = {r["name"]: r for r in outcome["repetitions"]}
    assert set(reps) == {f"{c}/rep-01" for c in CONFIGURATIONS}, reps
    failed = reps.pop(f"{DOWN}/rep-01")
    assert not failed["passed"] and failed["reason"].startswith("host cn down (no answer)"), failed
    assert "python3-cn" in failed["reason"], failed  # the host's own error, in one line
    assert all(r["passed"] for r in reps.values()), reps
    events = json.loads((run / DOWN / "rep-01" / "events.json").read_text())
    assert events["hosts_down"] == ["cn"]
    assert events["transfer"]["sha256_ok"] is True  # the MN's part went on

    # the analysis and the report, beside the paper's Test 4 figures
    analysed = json.loads((run / "summary.json").read_text())
    ids = [c["id"] for c in analysed["configurations"]]
    assert ids == CONFIGURATIONS
    csv = (run / "handover.csv").read_text().splitlines()
    for config in CONFIGURATIONS:
        rows = [line for line in csv if line.startswith(config + ",")]
        assert len(rows) == 2, (config, rows)
        if config != DOWN:  # the CN's capture of that one is missing
            assert all(line.endswith(",ok") for line in rows), rows
    report = (run / "report.md").read_text()
    assert "test4_umts" in report and "4.640" in report  # the paper's bt + l2 UMTS average
    assert (run / "report.html").stat().st_size > 0
    assert list((run / "figures").glob("*.png"))
    # the home agent's handover buffer (on in the l2 rows) held the correspondent's packets while
    # the MN moved away and sent them into the tunnel once the BU was in
    logged = _vm("grep -h '\"handover_buffer_' /var/lib/mvpn-lab/ha/mip6/daemon.jsonl").stdout.splitlines()
    buffered = [e for e in map(json.loads, logged) if e["epoch"] >= started]
    holds = [e for e in buffered if e["event"] == "handover_buffer_hold"]
    released = [e for e in buffered if e["event"] == "handover_buffer_release" and e["reason"] == "binding"]
    assert holds and released, buffered
    assert sum(e["packets"] for e in released) > 0, released
    print("\n".join(csv))
