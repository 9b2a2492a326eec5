"""The analyser reads run folders through the run folder's schema: the direction a handover records,
and old folders (no schema_version) with a note and the old rule."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from mvpn_lab.analysis.analyze import analyze_run
from mvpn_lab.analysis.diagnostics import Diagnostics
from mvpn_lab.analysis.rundir import load_events, load_run
from mvpn_lab.collection import module_utils

TWIN = Path(__file__).parent / "data" / "twin-gso-retransmission" / "run"
schema = module_utils("runfolder")


def test_the_old_twin_folder_is_read_with_a_note(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(TWIN, run_dir)
    assert "schema_version" not in json.loads((run_dir / "manifest.json").read_text())
    err = io.StringIO()
    analysis = analyze_run(run_dir, diag=Diagnostics(stream=err))
    (line,) = err.getvalue().splitlines()
    assert "manifest.json has no schema_version" in line and "goes to LOCAL" in line
    (handover,) = analysis.handovers
    # to LOCAL: home, by the rule of the folders written before the schema
    assert handover.direction == "home" and handover.status == "ok"


def _events_file(tmp_path: Path, handovers: list[dict]) -> Path:
    record = schema.events_record(
        "mip6-bt_ipsec-none_md-ra",
        1,
        hosts=["mn"],
        took_part=["mn"],
        handovers={
            "away": {"changed": True, "handover_at": 10.0, "from_ssid": "HOME", "to_ssid": "AWAY"},
            "home": {"changed": True, "handover_at": 20.0, "from_ssid": "AWAY", "to_ssid": "HOME"},
        },
        transfer={"status": "completed", "sha256_ok": True, "bytes": 1},
    )
    path = tmp_path / "events.json"
    path.write_text(json.dumps(record))
    return path


def test_the_direction_is_the_recorded_one_not_the_ssids(tmp_path: Path) -> None:
    """A lab whose home network is not called LOCAL: events.json says which way each handover went."""
    err = io.StringIO()
    events = load_events(_events_file(tmp_path, []), Diagnostics(stream=err))
    assert not isinstance(events, str)
    assert [(h.to_ssid, h.direction) for h in events.handovers] == [("AWAY", "away"), ("HOME", "home")]
    assert err.getvalue() == ""


def test_an_old_events_file_takes_the_manifests_home_ssid(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    old = {"handovers": [{"handover_at": 1.0, "to_ssid": "HOME"}, {"handover_at": 2.0, "to_ssid": "LOCAL"}]}
    path.write_text(json.dumps(old))
    events = load_events(path, Diagnostics(stream=io.StringIO()), "HOME")
    assert not isinstance(events, str)
    assert [h.direction for h in events.handovers] == ["home", "away"]


def test_a_file_off_the_schema_is_warned_about_and_read(tmp_path: Path) -> None:
    path = _events_file(tmp_path, [])
    data = json.loads(path.read_text())
    data["handovers"][0]["ok"] = "True"
    path.write_text(json.dumps(data))
    err = io.StringIO()
    events = load_events(path, Diagnostics(stream=err))
    assert not isinstance(events, str) and len(events.handovers) == 2
    assert "handovers[0]: ok: expected a boolean, got 'True'" in err.getvalue()


def test_a_manifest_of_the_schema_gives_the_home_ssid(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    manifest = schema.new_manifest(
        {"configurations": [{"id": "mip6-bt_ipsec-none_md-ra"}], "repetitions": 1, "ssids": {"home": "HOME"}},
        "test2_wlan",
        "run",
        "2026-01-01T00:00:00.000000Z",
    )
    (run_dir / "mip6-bt_ipsec-none_md-ra" / "rep-01").mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    err = io.StringIO()
    folder = load_run(run_dir, Diagnostics(stream=err))
    assert folder.home_ssid == "HOME"
    assert "schema_version" not in err.getvalue()


def test_handovers_json_follows_the_schema(tmp_path: Path) -> None:
    from mvpn_lab.analysis import write_analysis

    run_dir = tmp_path / "run"
    shutil.copytree(TWIN, run_dir)
    analysis = analyze_run(run_dir, diag=Diagnostics(stream=io.StringIO()))
    details = json.loads(write_analysis(analysis)["details"].read_text())
    assert details["schema_version"] == schema.SCHEMA_VERSION
    assert schema.check_handovers(details) is not None


def test_the_report_names_the_runs_times_from_the_schemas_fields(tmp_path: Path) -> None:
    from mvpn_lab.analysis import write_report

    run_dir = tmp_path / "run"
    shutil.copytree(TWIN, run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest.update(schema_version=1, started_at="2026-11-26T22:19:57.1Z", ended_at="2026-11-26T22:40:00.2Z")
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    analysis = analyze_run(run_dir, diag=Diagnostics(stream=io.StringIO()))
    report = write_report([analysis])["markdown"].read_text()
    assert "started 2026-11-26T22:19:57.1Z, ended 2026-11-26T22:40:00.2Z" in report
