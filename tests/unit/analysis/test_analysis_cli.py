"""``mvpn-lab analyze`` / ``mvpn-lab report``: exit codes, files, CSV columns, summary.json, reports."""

from __future__ import annotations

import csv
import json
import random
import re
import statistics
from pathlib import Path
from typing import Any

import pytest
from analysis_builder import Scenario, config_entry, make_run, random_plan

from mvpn_lab.analysis import CSV_COLUMNS
from mvpn_lab.analysis.cli import main as analysis_main
from mvpn_lab.cli import main as lab_main

EXPECTED_COLUMNS = [
    "config", "rep", "direction", "total_s", "data_resumed_s", "ra_s", "bu_ha_s", "ba_ha_s",
    "coti_s", "cot_s", "bu_cn_s", "next_tcp_s", "bu_retransmissions", "status",
]  # fmt: skip
STAT_KEYS = {"min", "max", "mean", "median", "stdev", "ci95"}
PHASES = ["ra", "bu_ha", "ba_ha", "coti", "cot", "bu_cn", "next_tcp"]


def build(
    root: Path, md: str = "ra", seed: int = 1, reps: int = 2, run: str = "20250101T000000Z"
) -> dict[str, Any]:
    rng = random.Random(seed)
    entries = [config_entry("ro", "none", md=md), config_entry("bt", "none", md=md)]
    scenarios: dict[str, list[Scenario]] = {}
    truths: dict[str, list[float]] = {}
    for entry in entries:
        scenarios[entry["id"]] = []
        for _ in range(reps):
            s = Scenario(mip6=entry["mip6"])
            s.handover(random_plan(rng, "away"))
            s.handover(random_plan(rng, "home"))
            s.finish()
            scenarios[entry["id"]].append(s)
            truths.setdefault(entry["id"], []).extend(t.total for t in s.truths)
    return {"run": make_run(root, scenarios, entries, run=run), "totals": truths, "entries": entries}


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build(tmp_path_factory.mktemp("good"))


def test_csv_columns_are_the_documented_ones() -> None:
    assert list(CSV_COLUMNS) == EXPECTED_COLUMNS


def test_analyze_writes_csv_summary_and_details(
    good_run: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = good_run["run"]
    assert lab_main(["analyze", str(run_dir)]) == 0  # through the project's CLI entry point
    out = capsys.readouterr()
    assert out.err == ""
    assert "handover.csv" in out.out
    with open(run_dir / "handover.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == EXPECTED_COLUMNS
        rows = list(reader)
    assert len(rows) == 2 * 2 * 2
    assert {r["status"] for r in rows} == {"ok"}
    assert {r["direction"] for r in rows} == {"away", "home"}
    bt = [r for r in rows if r["config"].startswith("mip6-bt")]
    assert {r["coti_s"] for r in bt} == {"n/a"}
    ro_home = [r for r in rows if r["config"].startswith("mip6-ro") and r["direction"] == "home"]
    assert {r["coti_s"] for r in ro_home} == {""}  # not needed when returning home
    for r in rows:
        phases = [float(r[f"{p}_s"]) for p in PHASES if r[f"{p}_s"] not in ("", "n/a")]
        assert sum(phases) == pytest.approx(float(r["total_s"]), abs=2e-6)

    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary) == {"test", "run", "configurations"}
    assert (summary["test"], summary["run"]) == ("test2_wlan_horizontal", "20250101T000000Z")
    for config in summary["configurations"]:
        for key in ("id", "mip6", "ipsec", "movement_detection", "profile", "n", "total_s", "phase_mean_s",
                    "phase_share_pct", "paper"):  # fmt: skip
            assert key in config
        totals = good_run["totals"][config["id"]]
        assert config["n"] == len(totals)
        assert set(config["total_s"]) == STAT_KEYS
        assert config["total_s"]["mean"] == pytest.approx(statistics.fmean(totals), abs=1e-3)
        assert config["total_s"]["median"] == pytest.approx(statistics.median(totals), abs=1e-3)
        assert config["total_s"]["stdev"] == pytest.approx(statistics.stdev(totals), abs=1e-3)
        lo, hi = config["total_s"]["ci95"]
        assert lo < config["total_s"]["mean"] < hi
        shares = [v for v in config["phase_share_pct"].values() if v is not None]
        assert sum(shares) == pytest.approx(100.0, abs=0.01)
        assert config["paper"]["test"] == "test2_wlan_horizontal"
        assert config["paper"]["mip6"] == config["mip6"]
        if config["mip6"] == "bt":
            assert config["phase_mean_s"]["coti"] is None
    details = json.loads((run_dir / "handovers.json").read_text())
    assert len(details["reps"]) == 4


def test_analyze_exit_code_1_when_a_handover_is_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = build(tmp_path, reps=1)
    (run["run"] / run["entries"][0]["id"] / "rep-01" / "mn.pcap").write_bytes(b"")
    assert analysis_main(["analyze", str(run["run"])]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mn.pcap" in err and "empty" in err
    rows = list(csv.DictReader((run["run"] / "handover.csv").read_text().splitlines()))
    assert [r["status"] for r in rows].count("incomplete:mn.pcap-empty") == 2


@pytest.mark.parametrize("case", ["no-dir", "no-manifest", "bad-json", "no-configs", "no-reps", "bad-keys"])
def test_unusable_input_exits_2_with_one_line(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    args = ["analyze", str(run_dir)]
    if case != "no-dir":
        run_dir.mkdir()
    if case == "bad-json":
        (run_dir / "manifest.json").write_text("{oops")
    elif case == "no-configs":
        (run_dir / "manifest.json").write_text(json.dumps({"test": "t", "configurations": []}))
    elif case == "no-reps":
        (run_dir / "manifest.json").write_text(
            json.dumps({"configurations": [{"id": "mip6-ro_ipsec-none_md-ra"}]})
        )
    elif case == "bad-keys":
        run_dir = build(tmp_path / "k", reps=1)["run"]
        keys = tmp_path / "keys.yaml"
        keys.write_text("0x10: {enc: {algo: 'des'}}")
        args = ["analyze", str(run_dir), "--keys", str(keys)]
    assert lab_main(args) == 2
    lines = capsys.readouterr().err.splitlines()
    errors = [line for line in lines if line.startswith("mvpn-lab: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0]
    assert all(line.startswith("mvpn-lab: ") for line in lines)  # warnings and the error, one line each


def test_report_for_one_run(good_run: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = good_run["run"]
    assert analysis_main(["report", str(run_dir)]) == 0
    capsys.readouterr()
    md = (run_dir / "report.md").read_text()
    page = (run_dir / "report.html").read_text()
    figures = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    assert figures == sorted(
        ["phase_bars.png", "totals.png", *[f"pie_{e['id']}.png" for e in good_run["entries"]]]
    )
    for name in figures:
        assert (run_dir / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"figures/{name}" in md
    assert page.count('src="data:image/png;base64,') == len(figures)
    assert not re.search(r'(src|href)="(?!data:)', page)  # self-contained: nothing to fetch
    for entry in good_run["entries"]:
        assert entry["id"] in md and entry["id"] in page
    # the paper beside ours: test 2, RO without IPsec averaged 6.96 s
    assert "6.960" in md and "paper" in md
    # away and back apart, each direction's median in its own columns
    summary = json.loads((run_dir / "summary.json").read_text())
    section = md.split("## Total handover time by direction (s)")[1].split("\n## ")[0]
    for c in summary["configurations"]:
        cells = next(line for line in section.splitlines() if line.startswith(f"| {c['id']} ")).split("|")
        away, home = (c["by_direction"][d]["total_s"]["median"] for d in ("away", "home"))
        assert cells[3].strip() == f"{away:.3f}" and cells[7].strip() == f"{home:.3f}", cells


def test_report_compares_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ra = build(tmp_path / "a", md="ra", seed=2, reps=1, run="20250101T000000Z")["run"]
    l2 = build(tmp_path / "b", md="l2", seed=3, reps=1, run="20250102T000000Z")["run"]
    (l2 / "mip6-bt_ipsec-none_md-l2" / "rep-01" / "cn.pcap").unlink()  # one incomplete run
    code = analysis_main(["report", str(ra), str(l2), "--label", "twin-ra", "--label", "hw-l2"])
    assert code == 1
    assert "cn.pcap" in capsys.readouterr().err
    out = ra / "comparison"
    md = (out / "report.md").read_text()
    assert "twin-ra · md-ra" in md and "hw-l2 · md-l2" in md
    assert {p.name for p in (out / "figures").glob("*.png")} == {
        "mean_totals.png",
        "phase_bars.png",
        "totals.png",
    }
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 3
    assert (ra / "handover.csv").exists() and (l2 / "summary.json").exists()
    other = tmp_path / "elsewhere"
    assert analysis_main(["report", str(ra), str(l2), "--out", str(other), "-q"]) == 1
    assert (other / "report.md").exists()
    assert analysis_main(["report", str(ra), str(l2), "--label", "only-one"]) == 2
