"""``mvpn-lab run TEST``: run a handover test (Test 2, 3 or 4) with progress, resume and a failure table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mvpn_lab.runner.matrix import ALIASES, TESTS


def cmd_run(args: argparse.Namespace) -> int:
    from mvpn_lab.runner.run import Options, run

    options = Options(
        test=args.test,
        reps=args.reps,
        configs=args.configs,
        quick=args.quick,
        resume=args.resume,
        inventory=args.inventory,
        provision=args.provision,
        results_dir=args.results_dir,
    )
    return run(options)


def cmd_rerun(args: argparse.Namespace) -> int:
    from mvpn_lab.runner.run import rerun

    return rerun(
        args.run_dir, inventory=args.inventory, provision=args.provision, results_dir=args.results_dir
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a handover test (2, 3 or 4) with a progress bar; resume it after an interruption",
        description="Run playbooks/TEST.yml through ansible-runner: the configurations of "
        "playbooks/vars/handover_matrix.yml (or --configs) times the repetitions (the test's default, "
        "--reps or --quick), with a progress bar, then a table of the repetitions that failed. "
        "Ctrl-C stops the playbook and prints how to resume. Exit 0: all repetitions passed; 1: some "
        "failed or the playbook failed; 2: bad input; 130: interrupted. See docs/runner.md.",
    )
    parser.add_argument(
        "test",
        metavar="TEST",
        help=f"{', '.join(TESTS)} (or {', '.join(ALIASES)})",
    )
    parser.add_argument("--reps", metavar="N", help="repetitions per configuration (default: the test's)")
    parser.add_argument(
        "--configs",
        action="append",
        metavar="ID[,ID...]",
        help="only these configuration ids (exact; comma-separated or repeated)",
    )
    parser.add_argument("--quick", action="store_true", help="one repetition per configuration")
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue an interrupted run in RUN_DIR (its manifest.json has the plan)",
    )
    parser.add_argument(
        "-i",
        "--inventory",
        metavar="INVENTORY",
        help="inventory (default: ansible.cfg's, inventories/virtual)",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        metavar="DIR",
        help="write the run folder under DIR/TEST/ (default: results/ of the current directory)",
    )
    parser.add_argument(
        "--no-provision",
        dest="provision",
        action="store_false",
        help="do not run site.yml first (mvpn_provision=false)",
    )
    parser.set_defaults(func=cmd_run)

    again = subparsers.add_parser(
        "rerun",
        help="run a handover test's run folder again: the same configurations and repetitions",
        description="Read RUN_DIR/manifest.json (test, configurations, repetitions, the code version) and "
        "run the same plan again into a new run folder beside it (or under --results-dir). A configuration "
        "whose settings in playbooks/vars/handover_matrix.yml differ from the recorded ones is refused, "
        "naming the field; a different commit is named in a note. Exit codes as mvpn-lab run.",
    )
    again.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a handover test's run folder")
    again.add_argument("-i", "--inventory", metavar="INVENTORY", help="inventory (default: ansible.cfg's)")
    again.add_argument(
        "--results-dir",
        type=Path,
        metavar="DIR",
        help="write the new run folder under DIR/TEST/ (default: the results folder RUN_DIR is in)",
    )
    again.add_argument(
        "--no-provision", dest="provision", action="store_false", help="do not run site.yml first"
    )
    again.set_defaults(func=cmd_rerun)
