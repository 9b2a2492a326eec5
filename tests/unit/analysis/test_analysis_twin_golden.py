"""The real twin capture is analysed exactly as recorded: CSV, summary and details, byte for byte.

The expected files were written by the analyser before the wire code (pcap reader, IPv6 header
walk, Mobility Header decoder) was shared with the daemon (issue 15); any change to what the
analyser reads from these captures shows up here. Only the analyser's version is not compared.
One change since, on purpose (issue 14): data_resumed_s (and the CN's data_resumed_sent_s) count
only data arriving over the new path; this handover home first got data tunnelled by the HA to the
old care-of address 13 ms after t0, and over the home link only with the next_tcp packet.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mvpn_lab.analysis import analyze_run, write_analysis
from mvpn_lab.analysis.diagnostics import Diagnostics

DATA = Path(__file__).parent / "data" / "twin-gso-retransmission"


def _without_version(text: str) -> dict[str, object]:
    doc = json.loads(text)
    doc.get("analyser", {}).pop("version", None)
    # added by the run-folder schema (issue 15) after these files were recorded: checked below
    doc.pop("schema_version", None)
    doc.pop("warnings", None)
    # the daemons' processing times (issue 16): this folder has no daemon logs, so none
    for rep in doc.get("reps", []):
        for handover in rep.get("handovers", []):
            assert handover.pop("daemon", {}) == {}
    return doc


def test_twin_run_is_analysed_as_recorded(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(DATA / "run", run_dir)
    diag = Diagnostics(quiet=True)
    written = write_analysis(analyze_run(run_dir, diag=diag))
    expected = DATA / "expected"
    assert written["csv"].read_text() == (expected / "handover.csv").read_text()
    assert written["summary"].read_text() == (expected / "summary.json").read_text()
    assert _without_version(written["details"].read_text()) == _without_version(
        (expected / "handovers.json").read_text()
    )
    details = json.loads(written["details"].read_text())
    assert details["schema_version"] == 1
    # the folder predates the run-folder schema: read as such, with one note and nothing else
    lines = [w.line() for w in diag.warnings]
    assert len(lines) == 1 and "before run-folder schema 1" in lines[0]
    assert details["warnings"] == lines
