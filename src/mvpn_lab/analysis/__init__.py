"""Handover analyser and report generator.

Python API (the ``mvpn-lab analyze`` / ``mvpn-lab report`` commands use the same)::

    from mvpn_lab.analysis import analyze_run, write_analysis, write_report, write_comparison

    analysis = analyze_run("results/test2_wlan_horizontal/20250101T120000Z")   # keys=load_keys(path)
    write_analysis(analysis)          # handover.csv, summary.json, handovers.json in the run folder
    write_report([analysis])          # report.md, report.html, figures/*.png
    analysis.exit_code                # 0 all handovers complete, 1 some incomplete

See docs/analysis.md for the outputs and their columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mvpn_lab.analysis.analyze import (
    CSV_COLUMNS,
    HandoverResult,
    RunAnalysis,
    analyze_run,
    handover_details,
    write_csv,
    write_details,
)
from mvpn_lab.analysis.esp import load_keys
from mvpn_lab.analysis.summary import summarize, write_summary

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CSV_COLUMNS",
    "HandoverResult",
    "RunAnalysis",
    "analyze_run",
    "handover_details",
    "load_keys",
    "summarize",
    "write_analysis",
    "write_comparison",
    "write_report",
]


def write_analysis(analysis: RunAnalysis, out_dir: Path | str | None = None) -> dict[str, Path]:
    """Write handover.csv, summary.json and handovers.json (into the run folder by default)."""
    out = Path(out_dir) if out_dir is not None else analysis.path
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out / "handover.csv",
        "summary": out / "summary.json",
        "details": out / "handovers.json",
    }
    write_csv(analysis, paths["csv"])
    write_summary(analysis, paths["summary"])
    write_details(analysis, paths["details"])
    return paths


def write_report(
    analyses: Sequence[RunAnalysis], out_dir: Path | str | None = None, labels: Sequence[str] | None = None
) -> dict[str, Path]:
    """report.md, report.html and figures/ for one run (in its folder) or a comparison of several."""
    from mvpn_lab.analysis.report import write_report as _write

    return _write(list(analyses), Path(out_dir) if out_dir is not None else None, labels)


def write_comparison(
    analyses: Sequence[RunAnalysis], out_dir: Path | str, labels: Sequence[str] | None = None
) -> dict[str, Path]:
    """Side-by-side report of several runs (same as write_report with more than one run)."""
    return write_report(analyses, out_dir, labels)
