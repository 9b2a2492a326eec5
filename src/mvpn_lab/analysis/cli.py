"""``mvpn-lab analyze`` and ``mvpn-lab report``.

Exit codes: 0 every handover complete; 1 some handover incomplete (see the
``status`` column); 2 unusable input (not a run folder, bad keys file, ...).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mvpn_lab.analysis.diagnostics import Diagnostics
from mvpn_lab.errors import LabError


def _keys(path: Path | None) -> dict[int, Any] | None:
    if path is None:
        return None
    from mvpn_lab.analysis.esp import load_keys

    return load_keys(path)


def _analyse(run_dir: Path, keys: dict[int, Any] | None, quiet: bool) -> Any:
    from mvpn_lab.analysis import analyze_run, write_analysis

    analysis = analyze_run(run_dir, keys=keys, diag=Diagnostics(quiet=quiet))
    try:
        write_analysis(analysis)
    except OSError as exc:
        raise LabError(f"{run_dir}: cannot write the results: {exc.strerror or exc}", 2) from None
    return analysis


def _print_summary(analysis: Any) -> None:
    from mvpn_lab.analysis.summary import summarize

    summary = summarize(analysis)
    print(f"{analysis.folder.test} / {analysis.folder.run}:")
    for c in summary["configurations"]:
        mean = c["total_s"]["mean"]
        paper = (c["paper"] or {}).get("avg")
        text = f"mean {mean:.3f} s" if mean is not None else "no complete handover"
        if paper is not None:
            text += f" (paper avg {paper} s)"
        extra = f", {c['n_incomplete']} incomplete" if c["n_incomplete"] else ""
        print(f"  {c['id']}: n={c['n']}{extra}, {text}")
    handovers = analysis.handovers
    bad = sum(1 for h in handovers if not h.complete)
    print(f"  {len(handovers)} handovers, {bad} incomplete")


def cmd_analyze(args: argparse.Namespace) -> int:
    keys = _keys(args.keys)
    analysis = _analyse(args.run_dir, keys, args.quiet)
    written = [analysis.path / name for name in ("handover.csv", "summary.json", "handovers.json")]
    if args.report:
        from mvpn_lab.analysis import write_report

        paths = write_report([analysis])
        written += [paths["markdown"], paths["html"], paths["figures"]]
    _print_summary(analysis)
    print("wrote " + ", ".join(str(p) for p in written))
    return analysis.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    if args.label and len(args.label) != len(args.run_dirs):
        raise LabError(f"--label given {len(args.label)} times for {len(args.run_dirs)} runs", 2)
    keys = _keys(args.keys)
    analyses = [_analyse(run_dir, keys, args.quiet) for run_dir in args.run_dirs]
    from mvpn_lab.analysis import write_report

    try:
        paths = write_report(analyses, args.out, args.label)
    except OSError as exc:
        raise LabError(f"cannot write the report: {exc.strerror or exc}", 2) from None
    for analysis in analyses:
        _print_summary(analysis)
    print(f"wrote {paths['markdown']}, {paths['html']}, {paths['figures']}/")
    return max(a.exit_code for a in analyses)


def register(subparsers: Any) -> None:
    analyze = subparsers.add_parser(
        "analyze",
        help="measure handovers in a run folder (handover.csv, summary.json)",
        description="Find the handover milestones in a run folder's captures and write handover.csv, "
        "summary.json and handovers.json into it. Exit 0: all handovers complete; 1: some incomplete; "
        "2: unusable input.",
    )
    analyze.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="results/<test>/<UTC-timestamp>")
    analyze.add_argument(
        "--keys",
        type=Path,
        metavar="FILE",
        help="YAML/JSON file mapping ESP SPI -> algorithms and keys; decrypts ESP to confirm TCP payload",
    )
    analyze.add_argument(
        "--report", action="store_true", help="also write report.md, report.html and figures/"
    )
    analyze.add_argument("-q", "--quiet", action="store_true", help="do not print warnings on stderr")
    analyze.set_defaults(func=cmd_analyze)

    report = subparsers.add_parser(
        "report",
        help="write report.md/report.html with figures; several runs are compared side by side",
        description="Analyse each run folder (refreshing its handover.csv and summary.json) and write "
        "report.md, report.html (self-contained) and figures/. One run: into the run folder. Several runs: "
        "a side-by-side comparison into --out (default: <first RUN_DIR>/comparison). "
        "Exit codes as for analyze.",
    )
    report.add_argument("run_dirs", metavar="RUN_DIR", type=Path, nargs="+")
    report.add_argument("--out", type=Path, metavar="DIR", help="where to write the report")
    report.add_argument(
        "--label", action="append", metavar="NAME", help="name of each run in a comparison (once per RUN_DIR)"
    )
    report.add_argument("--keys", type=Path, metavar="FILE", help="ESP keys file (see analyze --keys)")
    report.add_argument("-q", "--quiet", action="store_true", help="do not print warnings on stderr")
    report.set_defaults(func=cmd_report)


def main(argv: list[str] | None = None) -> int:
    """Run the two sub-commands on their own (``python -m mvpn_lab.analysis.cli``)."""
    parser = argparse.ArgumentParser(prog="mvpn-lab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LabError as exc:
        print(f"mvpn-lab: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
