"""mvpn.lab.run_folder: run folders are created fresh, never reused, and finished with checksums."""

from __future__ import annotations

import hashlib
import json

from ansible_collections.mvpn.lab.plugins.filter.results import kv_lines
from ansible_collections.mvpn.lab.plugins.module_utils import runfolder as schema
from ansible_collections.mvpn.lab.plugins.modules import run_folder


def test_start_creates_a_new_folder_with_the_manifest(tmp_path, run_module):
    result = run_module(
        run_folder,
        {"base": str(tmp_path), "test": "test1_validation", "manifest": {"configurations": [{"id": "a"}]}},
    )
    run = tmp_path / "test1_validation" / result["path"].rsplit("/", 1)[1]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["test"] == "test1_validation"
    assert manifest["run"] == run.name
    assert manifest["configurations"] == [{"id": "a"}]
    assert manifest["started_at"].endswith("Z")
    assert result["daemon_logs"] == str(run / "daemon")  # where the tests fetch the daemons' logs


def test_a_run_folder_is_never_reused(tmp_path, run_module, monkeypatch):
    import datetime

    fixed = datetime.datetime(2026, 11, 26, 18, 0, 0, tzinfo=datetime.UTC)
    monkeypatch.setattr(run_folder, "utc_now", lambda: fixed)
    first = run_module(run_folder, {"base": str(tmp_path), "test": "t"})
    (tmp_path / "t" / "20261126T180000Z" / "mn.pcap").write_bytes(b"capture")
    second = run_module(run_folder, {"base": str(tmp_path), "test": "t"})
    assert first["path"].endswith("/20261126T180000Z")
    assert second["path"].endswith("/20261126T180000Z-2")
    assert (tmp_path / "t" / "20261126T180000Z" / "mn.pcap").read_bytes() == b"capture"


def test_finish_writes_summary_and_checksums(tmp_path, run_module):
    started = run_module(run_folder, {"base": str(tmp_path), "test": "t"})
    run = tmp_path / "t" / started["path"].rsplit("/", 1)[1]
    (run / "cfg").mkdir()
    (run / "cfg" / "data.bin").write_bytes(b"abc")
    result = run_module(
        run_folder, {"state": "finished", "path": str(run), "summary": {"test": "t", "configurations": []}}
    )
    manifest = json.loads((run / "manifest.json").read_text())
    assert json.loads((run / "summary.json").read_text()) == {"test": "t", "configurations": []}
    assert manifest["files"]["cfg/data.bin"] == hashlib.sha256(b"abc").hexdigest()
    assert (
        manifest["files"]["summary.json"] == hashlib.sha256((run / "summary.json").read_bytes()).hexdigest()
    )
    assert "manifest.json" not in manifest["files"]
    assert manifest["ended_at"] >= manifest["started_at"]
    assert result["files"] == manifest["files"]


def test_bad_input_is_one_line(tmp_path, run_module):
    result = run_module(run_folder, {"base": str(tmp_path), "test": "../escape"})
    assert result["failed"] and result["msg"].startswith("test: ") and "\n" not in result["msg"]
    result = run_module(run_folder, {"state": "finished", "path": str(tmp_path)})
    assert result["failed"] and result["msg"].startswith("path: ")
    result = run_module(run_folder, {"test": "t"})
    assert result["failed"] and result["msg"].startswith("base: ")


def test_kv_lines():
    assert kv_lines(["kernel=6.1.0-50-amd64", "radvd=2.19", "junk", "x=a=b"]) == {
        "kernel": "6.1.0-50-amd64",
        "radvd": "2.19",
        "x": "a=b",
    }
    assert kv_lines(None) == {}


def test_summary_file_names_the_summary(tmp_path, run_module):
    started = run_module(run_folder, {"base": str(tmp_path), "test": "t"})
    run = tmp_path / "t" / started["path"].rsplit("/", 1)[1]
    args = {"state": "finished", "path": str(run), "summary": {"x": 1}, "summary_file": "outcome.json"}
    result = run_module(run_folder, args)
    assert json.loads((run / "outcome.json").read_text()) == {"x": 1}
    assert not (run / "summary.json").exists() and "outcome.json" in result["files"]
    for bad in ("../x.json", "manifest.json", "a/b.json"):
        result = run_module(run_folder, {"state": "finished", "path": str(run), "summary_file": bad})
        assert result["failed"] and result["msg"].startswith("summary_file: ")


# --- resume and outcome of the handover tests -------------------------------------------------------------

CONFIGS = ["mip6-bt_ipsec-none_md-ra", "mip6-ro_ipsec-tunnel_md-l2"]


def events(config, rep, status="completed", sha256_ok=True, errors=(None, None), hosts_down=None):
    """An events.json as playbooks/tasks/handover_repetition.yml wrote it in Jinja before the run
    folder's schema (no schema_version): such folders are still read."""
    handovers = [
        {
            "handover_at": "2026-11-26T18:05:01.1Z",
            "from_ssid": src,
            "to_ssid": dst,
            "associated_at": None if error else "2026-11-26T18:05:01.4Z",
            "scan_first": True,
            "ok": error is None,
            "error": error,
        }
        for (src, dst), error in zip((("LOCAL", "VISITME"), ("VISITME", "LOCAL")), errors, strict=True)
    ]
    data = {
        "configuration": config,
        "repetition": rep,
        "handovers": handovers,
        "transfer": {
            "bytes": 8388608 if status == "completed" else 1024,
            "sha256": "ab" * 32,
            "sha256_ok": sha256_ok,
            "status": status,
            "started_at": "2026-11-26T18:04:50Z",
            "finished_at": "2026-11-26T18:05:50Z",
            "error": None if status == "completed" else "curl: (28) Operation timed out",
        },
    }
    if hosts_down is not None:
        data["hosts_down"] = hosts_down
    return data


def handover_run(tmp_path, run_module, repetitions=2, test="test2_wlan"):
    manifest = {"configurations": [{"id": c, "ipsec": "none"} for c in CONFIGS], "repetitions": repetitions}
    started = run_module(run_folder, {"base": str(tmp_path), "test": test, "manifest": manifest})
    return tmp_path / test / started["path"].rsplit("/", 1)[1]


def write_rep(run, config, rep, data=None, pcap=b"pcap"):
    folder = run / config / f"rep-{rep:02d}"
    folder.mkdir(parents=True)
    (folder / "mn.pcap").write_bytes(pcap)
    if data is not None:
        (folder / "events.json").write_text(json.dumps(data))
    return folder


def test_resume_sets_interrupted_repetitions_aside(tmp_path, run_module, monkeypatch):
    import datetime

    run = handover_run(tmp_path, run_module)
    a, b = CONFIGS
    write_rep(run, a, 1, events(a, 1))
    write_rep(run, a, 2, events(a, 2))
    write_rep(run, b, 1, None, pcap=b"half a capture")
    fixed = datetime.datetime(2026, 11, 26, 19, 2, 11, tzinfo=datetime.UTC)
    monkeypatch.setattr(run_folder, "utc_now", lambda: fixed)
    # a folder of that name exists already (say, from an earlier resume): the next suffix is used
    (run / b / "rep-01.interrupted-20261126T190211Z").mkdir()

    result = run_module(run_folder, {"state": "resumed", "path": str(run), "test": "test2_wlan"})

    assert result["changed"] and result["path"] == str(run)
    assert result["done"] == [f"{a}/rep-01", f"{a}/rep-02"]
    assert result["daemon_logs"] == str(run / "daemon")
    assert result["set_aside"] == [f"{b}/rep-01.interrupted-20261126T190211Z-2"]
    aside = run / b / "rep-01.interrupted-20261126T190211Z-2"
    assert (aside / "mn.pcap").read_bytes() == b"half a capture"
    assert not (run / b / "rep-01").exists()
    assert list((run / b / "rep-01.interrupted-20261126T190211Z").iterdir()) == []
    assert (run / a / "rep-01" / "mn.pcap").read_bytes() == b"pcap"
    assert json.loads((run / a / "rep-02" / "events.json").read_text()) == events(a, 2)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["resumptions"] == [
        {"resumed_at": "2026-11-26T19:02:11.000000Z", "set_aside": result["set_aside"]}
    ]
    assert result["manifest"] == manifest
    assert manifest["configurations"][0]["id"] == a and manifest["repetitions"] == 2

    # a second resume finds nothing new to set aside and records itself
    again = run_module(run_folder, {"state": "resumed", "path": str(run), "test": "test2_wlan"})
    assert again["set_aside"] == [] and again["done"] == result["done"]
    assert len(again["manifest"]["resumptions"]) == 2
    assert (aside / "mn.pcap").read_bytes() == b"half a capture"


def test_resume_of_a_finished_run_drops_its_stale_checksums(tmp_path, run_module):
    run = handover_run(tmp_path, run_module)
    run_module(run_folder, {"state": "finished", "path": str(run), "summary": {"x": 1}})
    result = run_module(run_folder, {"state": "resumed", "path": str(run), "test": "test2_wlan"})
    assert "files" not in result["manifest"] and "ended_at" not in result["manifest"]
    assert result["manifest"]["started_at"]


def test_resume_bad_input_is_one_line(tmp_path, run_module):
    run = handover_run(tmp_path, run_module)
    before = (run / "manifest.json").read_text()
    result = run_module(run_folder, {"state": "resumed", "path": str(run), "test": "test3_gprs"})
    assert result["failed"] and result["msg"].startswith("test: ") and "\n" not in result["msg"]
    assert "'test2_wlan'" in result["msg"] and "'test3_gprs'" in result["msg"]
    assert (run / "manifest.json").read_text() == before
    result = run_module(run_folder, {"state": "resumed", "path": str(tmp_path), "test": "test2_wlan"})
    assert result["failed"] and result["msg"].startswith("path: ") and "no manifest.json" in result["msg"]
    result = run_module(run_folder, {"state": "resumed", "path": str(run)})
    assert result["failed"] and result["msg"].startswith("test: ")


def test_outcome_from_events(tmp_path, run_module):
    run = handover_run(tmp_path, run_module, repetitions=3)
    a, b = CONFIGS
    write_rep(run, a, 1, events(a, 1))
    write_rep(
        run, a, 2, events(a, 2, status="failed", sha256_ok=False, errors=("association timed out", None))
    )
    write_rep(run, a, 3, events(a, 3, sha256_ok=False))
    write_rep(run, b, 2, events(b, 2, status="unknown", sha256_ok=False, hosts_down=["cn"]))
    write_rep(run, b, 3, None)  # interrupted
    result = run_module(
        run_folder,
        {"state": "finished", "path": str(run), "summary_file": "outcome.json", "outcome_from_events": True},
    )
    outcome = json.loads((run / "outcome.json").read_text())
    assert result["summary"] == outcome
    assert outcome["test"] == "test2_wlan" and outcome["run"] == run.name
    assert outcome["missing"] == [f"{b}/rep-01", f"{b}/rep-03"]
    reps = {r["name"]: r for r in outcome["repetitions"]}
    assert list(reps) == [f"{a}/rep-01", f"{a}/rep-02", f"{a}/rep-03", f"{b}/rep-02"]
    assert reps[f"{a}/rep-01"] == {
        "name": f"{a}/rep-01",
        "configuration": a,
        "repetition": 1,
        "passed": True,
        "transfer": "completed",
        "sha256_ok": True,
        "handovers_ok": True,
        "reason": None,
    }
    failed = reps[f"{a}/rep-02"]
    assert not failed["passed"] and not failed["handovers_ok"] and failed["transfer"] == "failed"
    assert failed["reason"] == (
        "handover to VISITME failed: association timed out; transfer failed: curl: (28) Operation timed out"
    )
    assert reps[f"{a}/rep-03"]["reason"] == "sha256 mismatch" and reps[f"{a}/rep-03"]["handovers_ok"]
    down = reps[f"{b}/rep-02"]
    assert not down["passed"] and down["reason"].startswith("host cn down (no answer); transfer unknown")
    assert "outcome.json" in result["files"]


def test_outcome_from_events_reads_template_strings_and_bad_files(tmp_path, run_module):
    run = handover_run(tmp_path, run_module, repetitions=1)
    a, b = CONFIGS
    data = events(a, 1)
    data["transfer"]["sha256_ok"] = "True"
    data["handovers"][1]["ok"] = "False"
    data["handovers"][1]["error"] = "no\nsuch network"
    data["hosts_down"] = ["cn", "ha"]
    write_rep(run, a, 1, data)
    (write_rep(run, b, 1, None) / "events.json").write_text("{not json")
    result = run_module(run_folder, {"state": "finished", "path": str(run), "outcome_from_events": True})
    first, second = result["summary"]["repetitions"]
    assert first["sha256_ok"] is True and first["handovers_ok"] is False
    assert first["reason"] == "hosts cn, ha down (no answer); handover to LOCAL failed: no such network"
    assert not second["passed"] and second["reason"].startswith("events.json unreadable: ")
    assert result["summary"]["missing"] == []


def test_outcome_from_events_bad_input_is_one_line(tmp_path, run_module):
    run = handover_run(tmp_path, run_module)
    args = {"state": "finished", "path": str(run), "outcome_from_events": True}
    result = run_module(run_folder, dict(args, summary={"x": 1}))
    assert result["failed"] and result["msg"].startswith("summary: ") and "\n" not in result["msg"]
    plain = run_module(run_folder, {"base": str(tmp_path), "test": "t"})
    result = run_module(run_folder, dict(args, path=plain["path"]))
    assert (
        result["failed"] and result["msg"].startswith("outcome_from_events: ") and "\n" not in result["msg"]
    )


def test_outcome_names_the_repetitions_own_errors(tmp_path, run_module):
    run = handover_run(tmp_path, run_module, repetitions=1)
    a, b = CONFIGS
    data = events(a, 1)
    data["errors"] = ["cn: Start the captures: tcpdump: eth0: No such device\nexit 1", ""]
    write_rep(run, a, 1, data)
    write_rep(run, b, 1, events(b, 1))
    result = run_module(
        run_folder,
        {"state": "finished", "path": str(run), "summary_file": "outcome.json", "outcome_from_events": True},
    )
    reps = {r["name"]: r for r in result["summary"]["repetitions"]}
    assert reps[f"{a}/rep-01"]["passed"] is False
    assert reps[f"{a}/rep-01"]["reason"] == "cn: Start the captures: tcpdump: eth0: No such device exit 1"
    assert reps[f"{b}/rep-01"]["passed"] is True


def test_a_host_that_took_no_part_fails_the_repetition(tmp_path, run_module):
    """A host that failed outside a repetition leaves the play; the repetition must not pass
    without it (seen on the twin: the CN missing from a resumed repetition that then passed)."""
    run = handover_run(tmp_path, run_module, repetitions=1)
    a, b = CONFIGS
    data = events(a, 1)
    data["hosts_absent"] = ["cn"]
    write_rep(run, a, 1, data)
    data = events(b, 1)
    data["hosts_absent"] = []
    write_rep(run, b, 1, data)
    result = run_module(run_folder, {"state": "finished", "path": str(run), "outcome_from_events": True})
    reps = {r["name"]: r for r in result["summary"]["repetitions"]}
    assert reps[f"{a}/rep-01"]["passed"] is False
    assert reps[f"{a}/rep-01"]["reason"] == "host cn took no part (failed before this repetition)"
    assert reps[f"{b}/rep-01"]["passed"] is True


# --- the schema: manifest version, opened, recorded, judged -------------------------------------------


def test_the_manifest_has_the_schema_version(tmp_path, run_module):
    started = run_module(run_folder, {"base": str(tmp_path), "test": "t", "manifest": {"schema_version": 0}})
    manifest = json.loads((tmp_path / "t" / started["path"].rsplit("/", 1)[1] / "manifest.json").read_text())
    assert manifest["schema_version"] == schema.SCHEMA_VERSION
    assert started["mvpn_run_step"] == "created" and started["manifest"] == manifest
    result = run_module(run_folder, {"base": str(tmp_path), "test": "t", "manifest": {"repetitions": "5"}})
    assert result["failed"] and result["msg"] == "manifest: repetitions: expected an integer, got '5'"
    assert result["mvpn_run_step"] == "created"


def recorded_args(run, config, rep, **extra):
    """The options the playbook's Record task gives, from what the tasks registered."""
    args = {
        "state": "recorded",
        "path": str(run),
        "configuration": config,
        "repetition": rep,
        "hosts": ["mn", "ha", "fn", "cn", "impair"],
        "took_part": ["mn", "ha", "fn", "cn", "impair"],
        "hosts_down": [],
        "errors": [],
        "handovers": {
            "away": {
                "changed": True,
                "handover_at": 1764183901.1,
                "associated_at": 1764183901.9,
                "from_ssid": "LOCAL",
                "to_ssid": "VISITME",
                "duration": 0.8,
            },
            "home": {
                "changed": True,
                "handover_at": 1764183931.1,
                "associated_at": 1764183931.7,
                "from_ssid": "VISITME",
                "to_ssid": "LOCAL",
                "duration": 0.6,
            },
        },
        "transfer": {
            "changed": True,
            "bytes": 8388608,
            "sha256": "ab" * 32,
            "sha256_ok": True,
            "status": "completed",
            "started_at": 1764183890.5,
            "finished_at": 1764183950.0,
        },
        "captures": {
            "mn": {
                "changed": True,
                "packets_captured": 9000,
                "packets_received": 9000,
                "packets_dropped": 0,
                "dest": "/r/mn.pcap",
            },
            "cn": {
                "changed": True,
                "packets_captured": 8000,
                "packets_received": 8010,
                "packets_dropped": 10,
            },
        },
        "scan_first": True,
    }
    args.update(extra)
    return args


def test_a_repetition_is_opened_then_recorded(tmp_path, run_module):
    run = handover_run(tmp_path, run_module, repetitions=1)
    a, b = CONFIGS
    opened = run_module(
        run_folder, {"state": "opened", "path": str(run), "configuration": a, "repetition": 1}
    )
    assert opened["mvpn_run_step"] == "opened" and opened["name"] == f"{a}/rep-01"
    assert opened["rep_path"] == str(run / a / "rep-01") and (run / a / "rep-01").is_dir()
    result = run_module(run_folder, recorded_args(run, a, 1))
    assert result["mvpn_run_step"] == "recorded" and result["name"] == f"{a}/rep-01"
    written = json.loads((run / a / "rep-01" / "events.json").read_text())
    assert written == result["events"]
    assert written["schema_version"] == schema.SCHEMA_VERSION
    assert [(h["direction"], h["to_ssid"], h["ok"]) for h in written["handovers"]] == [
        ("away", "VISITME", True),
        ("home", "LOCAL", True),
    ]
    assert written["captures"]["cn"] == {
        "packets_captured": 8000,
        "packets_dropped": 10,
        "packets_received": 8010,
    }
    assert result["outcome"]["passed"] is True and result["outcome"]["reason"] is None
    # the other one: the CN failed before it (absent), a task failed on the MN, the way home did not happen
    args = recorded_args(
        run,
        b,
        1,
        took_part=["mn", "ha", "fn", "impair"],
        errors=["", "mn: Start the download: curl missing"],
        transfer={"status": "not run"},
    )
    args["handovers"]["home"] = {"failed": True, "msg": "not run"}
    result = run_module(run_folder, args)
    assert result["events"]["hosts_absent"] == ["cn"]
    assert result["outcome"]["reason"] == (
        "host cn took no part (failed before this repetition); mn: Start the download: curl missing; "
        "handover 2 failed: not run; transfer not run"
    )
    finished = run_module(
        run_folder,
        {"state": "finished", "path": str(run), "summary_file": "outcome.json", "outcome_from_events": True},
    )
    assert finished["mvpn_run_step"] == "finished"
    assert finished["summary"]["schema_version"] == schema.SCHEMA_VERSION
    assert [e["passed"] for e in finished["summary"]["repetitions"]] == [True, False]
    assert schema.check_outcome(json.loads((run / "outcome.json").read_text()))


def test_recorded_bad_input_is_one_line(tmp_path, run_module):
    run = handover_run(tmp_path, run_module, repetitions=1)
    a = CONFIGS[0]
    cases = [
        (dict(configuration=None), "configuration: required when state is recorded"),
        (dict(configuration="../x"), "configuration: expected a configuration id"),
        (dict(repetition=0), "repetition: expected a number from 1, got 0"),
        (dict(handovers={"sideways": {}}), "handovers: expected the directions away and home, got sideways"),
        (dict(handovers={"away": "moved"}), "handovers: away: expected a task's result"),
        (dict(path=str(tmp_path)), f"path: {tmp_path} is not a run folder (no manifest.json)"),
    ]
    for change, message in cases:
        result = run_module(run_folder, recorded_args(run, a, 1, **change))
        assert result["failed"] and result["msg"].startswith(message), result["msg"]
        assert result["mvpn_run_step"] == "recorded" and "\n" not in result["msg"]
    assert not (run / a / "rep-01").exists()


def test_judged_fails_naming_the_failed_and_missing_repetitions(tmp_path, run_module):
    run = handover_run(tmp_path, run_module, repetitions=1)
    a, b = CONFIGS
    run_module(run_folder, recorded_args(run, a, 1))
    finish = {
        "state": "finished",
        "path": str(run),
        "summary_file": "outcome.json",
        "outcome_from_events": True,
    }
    run_module(run_folder, finish)
    judged = run_module(run_folder, {"state": "judged", "path": str(run), "title": "Test 2"})
    assert judged["failed"] and judged["mvpn_run_step"] == "judged"
    assert judged["msg"] == f"Test 2: 1 of 2 repetitions failed: {b}/rep-01 (not run) (see {run})"
    assert judged["failed_repetitions"] == [f"{b}/rep-01 (not run)"]
    run_module(run_folder, recorded_args(run, b, 1))
    run_module(run_folder, finish)
    (run / "report.html").write_text("<html>")
    judged = run_module(run_folder, {"state": "judged", "path": str(run), "title": "Test 2"})
    assert not judged.get("failed") and judged["failed_repetitions"] == []
    assert judged["msg"] == f"Test 2: all 2 repetitions passed; results in {run}; report: {run}/report.html"
    (run / "outcome.json").unlink()
    judged = run_module(run_folder, {"state": "judged", "path": str(run)})
    assert judged["failed"] and judged["msg"].startswith("path: ") and "failed_repetitions" not in judged
