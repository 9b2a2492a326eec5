"""Run a handover test's playbook through ansible-runner, with progress, resume and a final table.

The playbook is ``playbooks/<test>.yml`` of the checkout, run with the checkout's ``ansible.cfg`` and
these extra variables (``<N>`` is the test's number)::

    mvpn_test<N>_repetitions: the plan's repetitions
    mvpn_test<N>_only:        ["^<id>$", ...], the plan's configurations
    mvpn_provision:           false with --no-provision
    mvpn_handover_resume:     the run folder to resume (absolute), else ""

Exit codes: 0 every repetition passed; 1 some failed, were not run, or the playbook failed;
2 bad input (one line); 130 interrupted (Ctrl-C; the hint names the run folder to resume).
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from rich.console import Console
from rich.text import Text

from mvpn_lab.errors import LabError
from mvpn_lab.runner import rundir
from mvpn_lab.runner.display import Display, print_report
from mvpn_lab.runner.events import EventTracker, RepetitionDone, RunFolder, StepStarted, TaskFailed
from mvpn_lab.runner.matrix import (
    Plan,
    canonical_test,
    plan_from_options,
    read_matrix,
    read_matrix_rows,
    variable,
)
from mvpn_lab.runner.project import find_root

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
# On Ctrl-C, ansible-playbook first gets SIGINT: it stops its workers (each in its own session, which
# ansible-runner's SIGKILL of the process group would miss, leaving the current task running) and
# exits. If it is still there after this long, or on a second Ctrl-C, the cancel callback returns true
# and ansible-runner kills it.
STOP_GRACE_S = 15.0


@dataclass(frozen=True)
class Options:
    """The command line of ``mvpn-lab run``."""

    test: str
    reps: str | None = None
    configs: Sequence[str] | None = None
    quick: bool = False
    resume: Path | None = None
    inventory: str | None = None
    provision: bool = True
    results_dir: Path | None = None


@dataclass(frozen=True)
class Prepared:
    """A checked run: its plan, the folder it resumes and the playbook's inputs."""

    test: str
    plan: Plan
    resume: Path | None
    done: frozenset[str]
    inventory: str | None
    extravars: dict[str, Any]


def extravars(
    plan: Plan, provision: bool, resume: Path | None, results_dir: Path | None = None
) -> dict[str, Any]:
    """The playbook's extra variables for a plan."""
    out: dict[str, Any] = {
        variable(plan.test, "repetitions"): plan.repetitions,
        variable(plan.test, "only"): [f"^{config}$" for config in plan.configurations],
        "mvpn_provision": provision,
        "mvpn_handover_resume": str(resume) if resume is not None else "",
    }
    if resume is None:  # a resumed run keeps its folder; a new one goes under results/ of the cwd
        base = results_dir if results_dir is not None else Path("results")
        out["mvpn_results_dir"] = str(base.expanduser().resolve())
    return out


def _inventory(value: str | None) -> str | None:
    if value is None:
        return None  # ansible.cfg's inventory applies
    path = Path(value).expanduser()
    path = path if path.is_absolute() else Path.cwd() / path
    if not path.exists():
        raise LabError(f"-i: no inventory at {value}")
    return str(path)


def prepare(options: Options, root: Path) -> Prepared:
    """Check the options against the matrix (or the run folder to resume) and make the plan."""
    test = canonical_test(options.test)
    inventory = _inventory(options.inventory)
    resume = None
    done: frozenset[str] = frozenset()
    if options.resume is not None:
        given = [
            name
            for name, value in (
                ("--configs", options.configs is not None),
                ("--reps", options.reps is not None),
                ("--quick", options.quick),
                ("--results-dir", options.results_dir is not None),
            )
            if value
        ]
        if given:
            raise LabError(
                f"--resume: the plan comes from RUN_DIR/manifest.json; {', '.join(given)} cannot change it"
            )
        resume = options.resume.expanduser().resolve()
        plan = rundir.resume_plan(resume, test, read_matrix(root))
        done = frozenset(rundir.completed(resume, plan))
    else:
        plan = plan_from_options(root, test, options.configs, options.reps, options.quick)
    return Prepared(
        test, plan, resume, done, inventory, extravars(plan, options.provision, resume, options.results_dir)
    )


def resume_command(prepared: Prepared, run_dir: Path) -> str:
    """The command that resumes ``run_dir`` against the same lab (inventory, provisioning)."""
    words = ["mvpn-lab", "run", prepared.test]
    if prepared.inventory is not None:
        words += ["-i", prepared.inventory]
    if not prepared.extravars.get("mvpn_provision", True):
        words.append("--no-provision")
    words += ["--resume", str(run_dir)]
    return shlex.join(words)


class Interrupt:
    """While active, SIGINT (Ctrl-C) only sets a flag (and counts): the cancel callback reads it."""

    def __init__(self) -> None:
        self.requested = False
        self.count = 0
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self.count += 1

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._installed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def __call__(self) -> bool:
        return self.requested


def envvars(root: Path) -> dict[str, str]:
    """The playbook's environment on top of ours.

    The checkout's ansible.cfg (an installed collection has none: the user's ANSIBLE_CONFIG, else
    the ansible.cfg of the directory mvpn-lab runs in, since ansible-runner runs the playbook in the
    collection's folder); host keys stay checked (ansible-runner turns checking off unless
    ANSIBLE_HOST_KEY_CHECKING is set); and the ansible-playbook beside this Python (the project's
    venv) comes first on PATH, so the pinned ansible-core runs even when the venv is not activated.
    """
    env: dict[str, str] = {}
    if (root / "ansible.cfg").is_file():
        env["ANSIBLE_CONFIG"] = str(root / "ansible.cfg")
    elif "ANSIBLE_CONFIG" not in os.environ and (Path.cwd() / "ansible.cfg").is_file():
        env["ANSIBLE_CONFIG"] = str(Path.cwd() / "ansible.cfg")
    if "ANSIBLE_HOST_KEY_CHECKING" not in os.environ:
        env["ANSIBLE_HOST_KEY_CHECKING"] = "True"
    bindir = Path(sys.executable).parent
    path = os.environ.get("PATH", os.defpath)
    if (bindir / "ansible-playbook").is_file() and path.split(os.pathsep)[0] != str(bindir):
        env["PATH"] = f"{bindir}{os.pathsep}{path}"
    return env


class _Session:
    """The event handler and cancel callback of one playbook run."""

    def __init__(self, prepared: Prepared, display: Display, interrupt: Interrupt) -> None:
        self.prepared = prepared
        self.display = display
        self.interrupt = interrupt
        self.tracker = EventTracker(prepared.plan, prepared.done, prepared.resume)
        self.playbook_pid: int | None = None
        self._stop_asked_at: float | None = None
        self._stopping = False

    def on_event(self, event: dict[str, Any]) -> bool:
        pid = event.get("pid")
        if self.playbook_pid is None and isinstance(pid, int) and pid > 1:
            self.playbook_pid = pid  # ansible-playbook's main process: its callbacks make the events
        notice = self.tracker.handle(event)
        if isinstance(notice, StepStarted):
            self.display.step(notice.task)
        elif isinstance(notice, RunFolder):
            self.display.run_folder(notice.path)
            self._adopt_plan(notice.path, notice.manifest)
        elif isinstance(notice, RepetitionDone):
            self.display.repetition_done(notice.name, notice.reason)
        elif isinstance(notice, TaskFailed):
            self.display.task_failed(notice)
        return False  # ansible-runner need not keep the event: its folder is removed afterwards

    def _adopt_plan(self, run_dir: Path, manifest: dict[str, Any] | None) -> None:
        """The manifest's plan is the playbook's: follow it if it differs from the one computed here."""
        plan = rundir.plan_of(manifest, self.prepared.test) if manifest is not None else None
        if plan is None:
            plan = rundir.read_plan(run_dir, self.prepared.test)
        if plan is not None and plan != self.tracker.plan:
            self.tracker.set_plan(plan)
            self.tracker.done |= rundir.completed(run_dir, plan)
            self.display.replan(plan, len(self.tracker.done))

    def cancel(self) -> bool:
        """ansible-runner's cancel callback: true once Ctrl-C was pressed (see :data:`STOP_GRACE_S`)."""
        if not self.interrupt.requested:
            return False
        if not self._stopping:
            self._stopping = True
            self.display.stopping()
            if self.playbook_pid is not None:
                try:
                    os.kill(self.playbook_pid, signal.SIGINT)
                    self._stop_asked_at = time.monotonic()
                except OSError:
                    pass
        if self._stop_asked_at is None or self.interrupt.count > 1:
            return True
        return time.monotonic() - self._stop_asked_at > STOP_GRACE_S


def _header(prepared: Prepared) -> str:
    plan = prepared.plan
    text = (
        f"{prepared.test}: {len(plan.configurations)} configurations x {plan.repetitions} repetitions "
        f"= {plan.total}"
    )
    if prepared.resume is not None:
        text += f", {len(prepared.done)} done; resuming {prepared.resume}"
    return text


def run(
    options: Options,
    root: Path | None = None,
    err: Console | None = None,
    out: Console | None = None,
) -> int:
    """Run the test; returns the exit code (bad input raises LabError, exit code 2)."""
    root = root or find_root()
    prepared = prepare(options, root)
    err = err or Console(stderr=True, highlight=False)
    out = out or Console(highlight=False)

    import ansible_runner
    from ansible_runner.exceptions import AnsibleRunnerException

    err.print(Text(_header(prepared)), soft_wrap=True)
    display = Display(err, prepared.plan, len(prepared.done))
    session = _Session(prepared, display, Interrupt())
    with tempfile.TemporaryDirectory(prefix="mvpn-lab-run-") as private, session.interrupt, display:
        try:
            result = ansible_runner.run(
                private_data_dir=private,
                project_dir=str(root),
                playbook=f"playbooks/{prepared.test}.yml",
                inventory=prepared.inventory,
                envvars=envvars(root),
                extravars=prepared.extravars,
                quiet=True,
                event_handler=session.on_event,
                cancel_callback=session.cancel,
            )
        except AnsibleRunnerException as exc:
            raise LabError(f"ansible-runner: {' '.join(str(exc).split())}", EXIT_FAILED) from None

    tracker = session.tracker
    run_dir = tracker.run_dir
    if session.interrupt.requested or getattr(result, "status", None) == "canceled":
        if run_dir is not None:
            hint = resume_command(prepared, run_dir)
            err.print(Text(f"interrupted: resume with {hint}"), soft_wrap=True)
        else:
            hint = f"start again with mvpn-lab run {prepared.test}"
            err.print(Text(f"interrupted before the run folder was created: {hint}"), soft_wrap=True)
        return EXIT_INTERRUPTED

    playbook_ok = getattr(result, "status", None) == "successful" and getattr(result, "rc", 1) == 0
    outcome = None
    if tracker.summary is not None:  # outcome.json, written by this run (run_folder: finished)
        outcome = rundir.outcome_of(tracker.summary)
    elif run_dir is not None:
        outcome = rundir.outcome_from_folder(run_dir, tracker.plan)
    print_report(
        out,
        prepared.test,
        outcome,
        run_dir,
        playbook_ok,
        tracker.failures,
        list(tracker.tail),
        resume_hint=resume_command(prepared, run_dir) if run_dir is not None else None,
    )
    return EXIT_OK if playbook_ok and outcome is not None and outcome.ok else EXIT_FAILED


#: what a run folder's ``code`` says about the code that ran it (filter mvpn.lab.code_version)
CODE_FIELDS = ("collection", "package", "commit", "dirty")


def _code_line(code: dict[str, Any]) -> str:
    version = f"collection {code.get('collection') or '?'}, package {code.get('package') or '?'}"
    commit = code.get("commit")
    if not commit:
        return f"{version}, no commit"
    return f"{version}, commit {str(commit)[:12]}{' with uncommitted changes' if code.get('dirty') else ''}"


def rerun(
    run_dir: Path,
    inventory: str | None = None,
    provision: bool = True,
    results_dir: Path | None = None,
    root: Path | None = None,
    err: Console | None = None,
) -> int:
    """``mvpn-lab rerun``: the plan of ``run_dir`` again, into a new run folder (beside it unless
    ``results_dir``); the configurations must still mean what they meant (rundir.rerun_plan)."""
    root = root or find_root()
    err = err or Console(stderr=True, highlight=False)
    run_dir = run_dir.expanduser().resolve()
    again = rundir.rerun_plan(run_dir, read_matrix_rows(root))
    if not again.code:
        err.print(
            Text(f"note: {run_dir.name} records no code version; the run uses this one"), soft_wrap=True
        )
    else:
        try:
            from mvpn_lab.collection import filter_plugin

            ours = filter_plugin("provenance").code_version(str(root / "playbooks"))
            this = _code_line(ours)
        except Exception as exc:  # the note is information only; the run does not depend on it
            ours, this = {}, f"of unknown version ({' '.join(str(exc).split())})"
        if [again.code.get(k) for k in CODE_FIELDS] != [ours.get(k) for k in CODE_FIELDS]:
            err.print(
                Text(f"note: {run_dir.name} ran {_code_line(again.code)}; this is {this}"), soft_wrap=True
            )
    options = Options(
        test=again.test,
        reps=str(again.plan.repetitions),
        configs=list(again.plan.configurations),
        inventory=inventory,
        provision=provision,
        results_dir=results_dir if results_dir is not None else again.base,
    )
    return run(options, root=root, err=err)
