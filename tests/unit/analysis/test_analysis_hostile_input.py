"""Hostile run folders: no traceback, no endless read, no invalid JSON written (issue 14).

NaN, Infinity, integers beyond 64 bits and deep nesting in manifest.json or events.json are an
error (exit 2, one line); so is a boolean or negative handover_at (it would be a handover 1.7e9 s
long). A FIFO in place of a capture or of events.json is refused with one warning line. The
reading goes through the run folder's schema (plugins/module_utils/runfolder.py), tested here
both through ``mvpn-lab analyze`` and its functions.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from analysis_builder import Scenario, config_entry, make_run, random_plan

from mvpn_lab.analysis import analyze_run, write_analysis
from mvpn_lab.analysis.diagnostics import Diagnostics
from mvpn_lab.analysis.rundir import load_events, schema
from mvpn_lab.cli import main as lab_main
from mvpn_lab.errors import LabError

DEEP = 100_000  # beyond Python's recursion limit


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(21)
    entry = config_entry("bt", "none")
    s = Scenario(mip6="bt")
    s.handover(random_plan(rng, "away"))
    s.finish()
    return make_run(tmp_path_factory.mktemp("hostile"), {entry["id"]: [s]}, [entry])


@pytest.fixture
def run(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(built, copy)
    return copy


def _events(run: Path) -> Path:
    (path,) = run.glob("*/rep-01/events.json")
    return path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _set_handover_at(run: Path, raw: str) -> None:
    path = _events(run)
    data = json.loads(path.read_text())
    marker = 987654321.5
    data["handovers"][0]["handover_at"] = marker
    path.write_text(json.dumps(data).replace(repr(marker), raw))


def _analyze_fails(run: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert lab_main(["analyze", str(run)]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mvpn-lab: error: ")
    assert "Traceback" not in err
    assert not (run / "handovers.json").exists()
    return lines[0]


# -- events.json --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"),
        ("1e400", "out of range"),
        ("1" + "0" * 400, "beyond 64 bits"),
        ("1" + "0" * 5000, "beyond 64 bits"),  # past Python's own limit on integer digits
        ("true", "handovers[0].handover_at"),
        ("-1700000000.5", "handovers[0].handover_at"),
    ],
)
def test_hostile_handover_at_is_an_error(
    run: Path, capsys: pytest.CaptureFixture[str], raw: str, words: str
) -> None:
    _set_handover_at(run, raw)
    line = _analyze_fails(run, capsys)
    assert "events.json" in line and words in line


def test_deeply_nested_events_is_an_error(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(_events(run), '"errors": []', '"errors": ' + "[" * DEEP + "]" * DEEP)
    line = _analyze_fails(run, capsys)
    assert "events.json" in line and "nested" in line


def test_moderately_nested_events_is_an_error(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Deep enough to hurt whoever walks it later, not deep enough for the parser to refuse."""
    _edit(_events(run), '"errors": []', '"errors": ' + "[" * 200 + "]" * 200)
    assert "nested more than 32 levels" in _analyze_fails(run, capsys)


def test_nan_elsewhere_in_events_is_an_error(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before, a NaN in the transfer record went on into handovers.json, which then was not JSON."""
    _edit(_events(run), '"bytes": ', '"bytes": NaN, "was": ')
    assert "NaN" in _analyze_fails(run, capsys)


def test_a_string_handover_at_is_still_skipped_with_a_warning(run: Path) -> None:
    """Not a number at all (schema: a number or null): that handover is skipped, as before."""
    _set_handover_at(run, '"soon"')
    diag = Diagnostics(quiet=True)
    analysis = analyze_run(run, diag=diag)
    assert [h.status for h in analysis.handovers] == ["incomplete:no-handovers"]
    assert any("no numeric handover_at" in w.line() for w in diag.warnings)


def test_load_events_raises_a_one_line_lab_error(run: Path) -> None:
    _set_handover_at(run, "true")
    with pytest.raises(LabError) as info:
        load_events(_events(run), Diagnostics(quiet=True))
    assert info.value.exit_code == 2
    assert "handover_at" in str(info.value) and "\n" not in str(info.value)


# -- manifest.json ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ('"configurations": [', '"configurations": [' + "[" * DEEP + "]" * DEEP + ",", "nested"),
        ('"schema_version": 1', '"schema_version": 1, "x": NaN', "NaN"),
        ('"schema_version": 1', '"schema_version": 1, "x": -Infinity', "-Infinity"),
        ('"schema_version": 1', '"schema_version": 1, "x": ' + "9" * 300, "beyond 64 bits"),
        ('"schema_version": 1', '"schema_version": 1, "x": 2e308', "out of range"),
    ],
)
def test_hostile_manifest_is_an_error(
    run: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, words: str
) -> None:
    _edit(run / "manifest.json", old, new)
    line = _analyze_fails(run, capsys)
    assert "manifest.json" in line and words in line


# -- the schema's functions ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "[NaN]",
        '{"a": Infinity}',
        "[1e999]",
        "[" + "9" * 20 + "]",
        "[" * 40 + "]" * 40,
        "[" * DEEP + "]" * DEEP,
    ],
)
def test_the_schema_refuses_hostile_json(text: str) -> None:
    runfolder = schema()
    with pytest.raises(runfolder.HostileJSON):
        runfolder.loads(text)


def test_the_schema_reads_what_runs_write() -> None:
    runfolder = schema()
    assert runfolder.loads('{"a": [1, 2.5, -3, 9223372036854775807, {"b": null}]}') == {
        "a": [1, 2.5, -3, 2**63 - 1, {"b": None}]
    }
    assert runfolder.loads("[" * 32 + "]" * 32) is not None


@pytest.mark.parametrize(
    ("value", "bad"), [(1.7e9, False), (0, False), (True, True), (-1, True), (math.nan, True)]
)
def test_epoch_error(value: Any, bad: bool) -> None:
    assert (schema().epoch_error(value) is not None) == bad


def test_the_writer_writes_no_nan(tmp_path: Path) -> None:
    runfolder = schema()
    path = str(tmp_path / "x.json")
    with pytest.raises(ValueError):
        runfolder.write_json(path, {"a": math.nan})
    assert (
        runfolder.handover_record("away", {"handover_at": "nan", "associated_at": "inf"}, True)["handover_at"]
        is None
    )


# -- what the analyser writes -------------------------------------------------------------------
def test_handovers_json_is_valid_json_whatever_the_numbers(run: Path) -> None:
    analysis = analyze_run(run, diag=Diagnostics(quiet=True))
    handover = analysis.handovers[0]
    handover.total_s = math.nan
    handover.data_resumed_s = math.inf
    handover.milestones["ra"] = -math.inf
    analysis.reps[0].transfer["rate"] = math.nan
    written = write_analysis(analysis)
    for name in ("details", "summary"):
        schema().loads(written[name].read_text())  # strict: no NaN or Infinity
    details = json.loads(written["details"].read_text())
    got = details["reps"][0]["handovers"][0]
    assert got["total_s"] is None and got["data_resumed_s"] is None and got["milestones_s"]["ra"] is None
    assert details["reps"][0]["transfer"]["rate"] is None


# -- FIFOs ----------------------------------------------------------------------------------------
def _in_a_child(*args: str) -> subprocess.CompletedProcess[str]:
    """``mvpn-lab ARGS`` in a child process with a deadline: a FIFO read forever must fail the
    test, not hang it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    code = "import sys; from mvpn_lab.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def _analyze_in_a_child(run: Path) -> subprocess.CompletedProcess[str]:
    return _in_a_child("analyze", str(run))


@pytest.mark.parametrize("name", ["mn.pcap", "cn.pcap"])
def test_a_fifo_in_place_of_a_capture_is_refused(run: Path, name: str) -> None:
    (capture,) = run.glob(f"*/rep-01/{name}")
    capture.unlink()
    os.mkfifo(capture)
    done = _analyze_in_a_child(run)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if name in line]
    assert len(lines) == 1 and "not a regular file (a FIFO); refused" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    statuses = [h["status"] for h in json.loads((run / "handovers.json").read_text())["reps"][0]["handovers"]]
    assert statuses == [f"incomplete:{name}-not-a-file"]


def test_a_fifo_in_place_of_events_json_is_refused(run: Path) -> None:
    path = _events(run)
    path.unlink()
    os.mkfifo(path)
    done = _analyze_in_a_child(run)
    assert done.returncode == 1, done.stderr
    assert "events.json: unreadable (not a regular file (a FIFO); refused)" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_fifo_in_place_of_the_manifest_is_refused(run: Path) -> None:
    (run / "manifest.json").unlink()
    os.mkfifo(run / "manifest.json")
    done = _analyze_in_a_child(run)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "manifest.json: unreadable: not a regular file (a FIFO); refused" in done.stderr


def test_mip6_decode_refuses_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "capture.pcap"
    os.mkfifo(fifo)
    done = _in_a_child("mip6", "decode", str(fifo))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "not a regular file (a FIFO); refused" in done.stderr
