"""report.md / report.html: the lab's topology from the manifest's lab model, the run's start and end
from the schema's fields, and the 95% CI of the mean only from three handovers."""

from __future__ import annotations

import base64
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from analysis_builder import Scenario, config_entry, make_run, random_plan

from mvpn_lab.analysis.cli import main as analysis_main
from mvpn_lab.analysis.summary import CI_MIN_N, describe
from mvpn_lab.collection import filter_plugin

lab_model = filter_plugin("lab_model")
CI_HEADER = "95% CI of mean"


def build(root: Path, reps: dict[str, int], seed: int = 7, run: str = "20250101T000000Z") -> Path:
    """A run folder whose configurations (ro/bt, md-ra/md-l2) have ``reps`` repetitions of one
    handover away each."""
    rng = random.Random(seed)
    entries = []
    scenarios: dict[str, list[Scenario]] = {}
    for key, count in reps.items():
        mip6, md = key.split("/")
        entry = config_entry(mip6, "none", md=md)
        entries.append(entry)
        scenarios[entry["id"]] = []
        for _ in range(count):
            s = Scenario(mip6=mip6)
            s.handover(random_plan(rng, "away"))
            s.finish()
            scenarios[entry["id"]].append(s)
    return make_run(root, scenarios, entries, run=run)


def set_manifest(run_dir: Path, **fields: Any) -> dict[str, Any]:
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(fields)
    path.write_text(json.dumps(manifest, indent=2))
    return manifest


def table(md: str, heading: str) -> list[dict[str, str]]:
    """The first table under ``## heading`` of report.md, as one dict per row."""
    section = md.split(f"## {heading}\n")[1].split("\n## ")[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    headers = [c.strip() for c in lines[0].strip("|").split("|")]
    return [
        dict(zip(headers, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines[2:]
    ]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("ci"), {"ro/ra": 1, "bt/ra": 2, "ro/l2": 3})


def test_ci_needs_three_values() -> None:
    assert CI_MIN_N == 3
    one, two, three = describe([5.0]), describe([5.0, 6.0]), describe([5.0, 6.0, 7.5])
    assert one["ci95"] is None and one["stdev"] is None
    assert two["ci95"] is None and two["stdev"] == pytest.approx(0.7071, abs=1e-4)
    low, high = three["ci95"]
    assert low < three["mean"] < high


def test_the_ci_column_is_a_dash_below_three_handovers(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert analysis_main(["report", str(run_dir), "-q"]) == 0
    capsys.readouterr()
    md = (run_dir / "report.md").read_text()
    rows = {r["configuration"]: r for r in table(md, "Total handover time per configuration (s)")}
    by_n = {r["n"]: r for r in rows.values()}
    assert set(by_n) == {"1", "2", "3"}
    assert by_n["1"][CI_HEADER] == "-" and by_n["1"]["stdev"] == "-"
    assert by_n["2"][CI_HEADER] == "-" and by_n["2"]["stdev"] != "-"
    assert re.fullmatch(r"\d+\.\d{3}-\d+\.\d{3}", by_n["3"][CI_HEADER]), by_n["3"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [c["total_s"]["ci95"] is None for c in summary["configurations"]] == [True, True, False]
    page = (run_dir / "report.html").read_text()
    assert page.count("<td>-</td>") >= 3  # the HTML says the same


def test_the_header_gives_the_manifests_start_and_end(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the builder writes manifest.json as run_folder does: schema_version 1, started_at/ended_at ISO strings
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and isinstance(manifest["started_at"], str)
    assert analysis_main(["report", str(run_dir), "-q"]) == 0
    capsys.readouterr()
    for name in ("report.md", "report.html"):
        text = (run_dir / name).read_text()
        assert "started 2025-01-01T00:00:00Z, ended 2025-01-01T00:10:00Z" in text, name
        assert "started ?" not in text and "ended ?" not in text


def test_a_run_without_a_model_says_no_topology_recorded(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_manifest(run_dir, inventory={"figure": "fig5", "address_plan": "paper", "hosts": {}})
    assert analysis_main(["report", str(run_dir), "-q"]) == 0
    capsys.readouterr()
    assert "## Lab topology" in (run_dir / "report.md").read_text()
    for name in ("report.md", "report.html"):
        assert "no topology recorded" in (run_dir / name).read_text()
    assert not (run_dir / "figures" / "topology.svg").exists()


def test_the_report_draws_the_recorded_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = build(tmp_path, {"ro/ra": 1})
    variables = dict(lab_model.topology_defaults(), mvpn_address_plan="ula")
    model = lab_model.lab_model(variables)
    set_manifest(run_dir, profile="umts", inventory={"figure": "fig5", "address_plan": "ula", "model": model})
    assert analysis_main(["report", str(run_dir), "-q"]) == 0
    capsys.readouterr()
    md = (run_dir / "report.md").read_text()
    page = (run_dir / "report.html").read_text()
    svg = run_dir / "figures" / "topology.svg"
    assert "![The lab of this run (fig5, address plan ula)" in md and "(figures/topology.svg)" in md
    assert "no topology recorded" not in md
    (embedded,) = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert base64.b64decode(embedded) == svg.read_bytes()
    text = svg.read_text()
    for host in model["nodes"]:
        assert f"{host} · " in text
    for prefix in model["prefixes"].values():
        assert prefix in text
    assert "profile: umts" in text and "fec0:" not in text


def test_a_model_missing_a_field_is_named_and_the_report_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = build(tmp_path, {"ro/ra": 1})
    model = lab_model.lab_model(lab_model.topology_defaults())
    del model["wlan_networks"]
    set_manifest(run_dir, inventory={"model": model})
    assert analysis_main(["report", str(run_dir), "-q"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    md = (run_dir / "report.md").read_text()
    assert "topology not drawn: lab model: field wlan_networks missing" in md
    assert "## Total handover time per configuration (s)" in md


def test_a_comparison_draws_each_runs_topology(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = build(tmp_path / "a", {"ro/ra": 1}, run="20250101T000000Z")
    second = build(tmp_path / "b", {"ro/ra": 1}, seed=8, run="20250102T000000Z")
    fig1 = dict(lab_model.topology_defaults(), mvpn_topology_figure="fig1")
    set_manifest(first, inventory={"model": lab_model.lab_model(fig1)})
    assert analysis_main(["report", str(first), str(second), "--label", "one", "--label", "two", "-q"]) == 0
    capsys.readouterr()
    md = (first / "comparison" / "report.md").read_text()
    assert "one: the lab of this run (fig1, address plan paper)" in md
    assert "two: no topology recorded" in md
    assert (first / "comparison" / "figures" / "topology-1.svg").exists()
