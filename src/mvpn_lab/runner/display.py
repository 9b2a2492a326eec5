"""What ``mvpn-lab run`` shows: a progress bar of the repetitions, a log line per repetition, and the
final table of the repetitions that failed.

On an interactive terminal, rich draws the bar (repetitions done of configurations x repetitions,
the elapsed time, the ETA and the current step) below the log lines. Elsewhere (CI logs,
``2> file``) the bar is not drawn: only the log lines are written, one per repetition, plain.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from mvpn_lab.runner.events import TaskFailed, shorten
from mvpn_lab.runner.matrix import Plan
from mvpn_lab.runner.rundir import Outcome

# The ETA is the mean time per repetition of this session: keep every sample (rich's default
# window, 30 s, is shorter than one repetition).
SPEED_WINDOW_S = 14 * 24 * 3600.0


class Display:
    """Progress of one run on ``console`` (stderr)."""

    def __init__(self, console: Console, plan: Plan, done: int) -> None:
        self.console = console
        self.plan = plan
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[step]}", markup=False),
            console=console,
            speed_estimate_period=SPEED_WINDOW_S,
        )
        # the bar is drawn on an interactive terminal only; elsewhere the log lines are all
        self.live = console.is_interactive
        self.task: TaskID = self.progress.add_task(plan.test, total=plan.total, completed=done, step="")
        # a first sample at the start: the ETA then counts from here, not from the first repetition
        self.progress.advance(self.task, 0)

    def __enter__(self) -> Display:
        if self.live:
            self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live:
            self.progress.stop()

    @property
    def completed(self) -> int:
        return int(self.progress.tasks[0].completed)

    def line(self, text: str, style: str | None = None) -> None:
        self.console.print(Text(text, style=style or ""), soft_wrap=True)

    def step(self, task: str) -> None:
        self.progress.update(self.task, step=shorten(task))

    def replan(self, plan: Plan, done: int) -> None:
        self.plan = plan
        self.progress.update(self.task, total=plan.total, completed=done)

    def run_folder(self, path: Path) -> None:
        self.line(f"run folder: {path}")

    def repetition_done(self, name: str, reason: str | None) -> None:
        self.progress.advance(self.task)
        width = len(str(self.plan.total))
        count = f"[{self.completed:>{width}}/{self.plan.total}]"
        if reason is None:
            self.line(f"{count} {name}: passed", "green")
        else:
            self.line(f"{count} {name}: FAILED: {reason}", "red")

    def task_failed(self, failure: TaskFailed) -> None:
        what = "unreachable" if failure.unreachable else "task failed"
        message = f": {failure.message}" if failure.message else ""
        self.line(f"{what} on {failure.host}: {shorten(failure.task, 80)}{message}", "yellow")

    def stopping(self) -> None:
        self.progress.update(self.task, step="stopping the playbook (interrupted)")


def print_report(
    console: Console,
    test: str,
    outcome: Outcome | None,
    run_dir: Path | None,
    playbook_ok: bool,
    failures: list[TaskFailed],
    tail: list[str] | None = None,
    *,
    resume_hint: str | None = None,
) -> None:
    """The final lines: the repetitions that failed or are missing, the run folder and the report.
    ``resume_hint`` is the command that runs the rest (default: the test's with --resume only)."""
    # The playbook's verdict (run_folder: judged) fails when a repetition failed, and a
    # repetition's own failed tasks are rescued into its events.json: when the playbook got to its
    # end (outcome.json), the table says that better than "the playbook failed".
    expected = bool(failures) and all(f.expected for f in failures)
    reached_end = outcome is not None and outcome.source == "outcome.json"
    if not playbook_ok and not (expected and reached_end and outcome is not None and not outcome.ok):
        last = failures[-1] if failures else None
        detail = ""
        if last is not None:
            message = f": {last.message}" if last.message else ""
            detail = f" (last failure on {last.host}: {shorten(last.task, 80)}{message})"
        where = "" if run_dir is not None else " before it created the run folder"
        console.print(Text(f"{test}: the playbook failed{where}{detail}", style="red"), soft_wrap=True)
        if last is None:
            for line in tail or []:
                console.print(Text(f"  {line}", style="dim"), soft_wrap=True)
    if outcome is not None:
        total = len(outcome.passed) + len(outcome.failed) + len(outcome.missing)
        parts = [f"{len(outcome.passed)} of {total} repetitions passed"]
        if outcome.failed:
            parts.append(f"{len(outcome.failed)} failed")
        if outcome.missing:
            parts.append(f"{len(outcome.missing)} not run")
        source = "" if outcome.source == "outcome.json" else f" (from the {outcome.source} files)"
        style = "green" if outcome.ok else "red"
        console.print(Text(f"{test}: {', '.join(parts)}{source}", style=style), soft_wrap=True)
        if outcome.failed or outcome.missing:
            table = Table(title=None, show_lines=False)
            table.add_column("repetition", no_wrap=True)
            table.add_column("reason")
            for name, reason in outcome.failed:
                table.add_row(Text(name), Text(reason))
            for name in outcome.missing:
                table.add_row(Text(name), Text("not run (no events.json)", style="dim"))
            console.print(table)
    if run_dir is not None:
        console.print(Text(f"run folder: {run_dir}"), soft_wrap=True)
        report = run_dir / "report.html"
        if report.is_file():
            console.print(Text(f"report: {report}"), soft_wrap=True)
        if outcome is not None and outcome.missing:
            hint = resume_hint or f"mvpn-lab run {test} --resume {run_dir}"
            console.print(Text(f"to run the rest: {hint}"), soft_wrap=True)
