"""mvpn.lab.run_folder: run folders are created fresh, never reused, and finished with checksums."""

from __future__ import annotations

import hashlib
import json

from ansible_collections.mvpn.lab.plugins.filter.results import kv_lines
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
