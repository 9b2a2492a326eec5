"""Turn ansible-runner events into what the runner shows: steps, the run folder, finished repetitions.

ansible-runner calls the event handler with one dict per Ansible callback event (``event``,
``event_data`` with ``task``, ``host``, ``res``...). The runner follows the run by the result key
``mvpn_run_step`` of ``mvpn.lab.run_folder`` (the run folder's schema,
``plugins/module_utils/runfolder.py``), never by a task's name:

* ``playbook_on_task_start``: the current step (the task's name, shown as it is);
* ``created`` / ``resumed``: the run folder (``path``) and its manifest;
* ``opened``: a repetition begins: a task that fails from here to its ``recorded`` is the
  repetition's own failure, which its events.json records;
* ``recorded``: a repetition is complete (``name``, its verdict in ``outcome``);
* ``finished`` with a summary that lists ``repetitions``: outcome.json was written (the playbook
  got to its end);
* ``judged`` failed: the playbook's verdict that some repetition failed (the runner's table says why);
* ``runner_on_failed`` (not ignored) and ``runner_on_unreachable``: a task failed on a host.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvpn_lab.runner.matrix import Plan

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TAIL_LINES = 6
#: the result key of mvpn.lab.run_folder and its values (module_utils/runfolder.py: STEP_*)
STEP_KEY = "mvpn_run_step"


@dataclass(frozen=True)
class StepStarted:
    task: str


@dataclass(frozen=True)
class RunFolder:
    path: Path
    manifest: dict[str, Any] | None = None


@dataclass(frozen=True)
class RepetitionDone:
    name: str
    #: None: it passed; else why not (mvpn.lab.run_folder's verdict, module_utils/repetition.py)
    reason: str | None


@dataclass(frozen=True)
class RunFinished:
    #: the content of outcome.json as mvpn.lab.run_folder wrote it
    summary: dict[str, Any]


@dataclass(frozen=True)
class TaskFailed:
    host: str
    task: str
    message: str
    unreachable: bool
    #: accounted for in the run folder: a failure inside a repetition (in its events.json) or the
    #: playbook's verdict on the repetitions (outcome.json)
    expected: bool = False


Notice = StepStarted | RunFolder | RepetitionDone | RunFinished | TaskFailed


def shorten(text: str, width: int = 60) -> str:
    """One line of at most ``width`` characters, cut in the middle (the end names the repetition)."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    head = (width - 1) * 2 // 5
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


def _message(res: Any) -> str:
    if not isinstance(res, dict):
        return ""
    for key in ("msg", "stderr", "reason"):
        value = res.get(key)
        if value:
            return " ".join(str(value).split())
    return ""


def _reason(outcome: Any) -> str | None:
    """The reason of a repetition's outcome entry (None: it passed)."""
    if not isinstance(outcome, dict):
        return "no verdict recorded"
    if outcome.get("passed") is True:
        return None
    return " ".join(str(outcome.get("reason") or "failed").split())


class EventTracker:
    """Follows the events of one playbook run against a plan."""

    def __init__(self, plan: Plan, done: Iterable[str] = (), run_dir: Path | None = None) -> None:
        self.plan = plan
        self.planned = set(plan.names())
        self.done: set[str] = set(done) & self.planned
        self.run_dir = run_dir
        self.step = ""
        #: the repetition between its run_folder steps opened and recorded
        self.open_repetition: str | None = None
        #: outcome.json, once mvpn.lab.run_folder wrote it in this run
        self.summary: dict[str, Any] | None = None
        self.failures: list[TaskFailed] = []
        #: the last lines ansible-playbook printed (why it stopped, when no task failed)
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def set_plan(self, plan: Plan) -> None:
        """The plan the run folder's manifest records (it wins over the one the runner computed)."""
        self.plan = plan
        self.planned = set(plan.names())
        self.done &= self.planned

    def _run_step(self, res: dict[str, Any]) -> Notice | None:
        step = res.get(STEP_KEY)
        if step in ("created", "resumed") and res.get("path"):
            self.run_dir = Path(str(res["path"]))
            manifest = res.get("manifest")
            return RunFolder(self.run_dir, manifest if isinstance(manifest, dict) else None)
        if step == "opened":
            self.open_repetition = str(res.get("name") or "") or None
            return None
        if step == "recorded":
            self.open_repetition = None
            name = str(res.get("name") or "")
            if name in self.planned and name not in self.done:
                self.done.add(name)
                return RepetitionDone(name, _reason(res.get("outcome")))
            return None
        if step == "finished":
            summary = res.get("summary")
            if isinstance(summary, dict) and isinstance(summary.get("repetitions"), list):
                self.summary = summary
                return RunFinished(summary)
        return None

    def handle(self, event: dict[str, Any]) -> Notice | None:
        for line in ANSI.sub("", str(event.get("stdout") or "")).splitlines():
            if line.strip():
                self.tail.append(line.rstrip())
        kind = event.get("event")
        data = event.get("event_data") or {}
        task = str(data.get("task") or "")
        if kind == "playbook_on_task_start":
            self.step = task
            return StepStarted(task)
        raw_res = data.get("res")
        res: dict[str, Any] = raw_res if isinstance(raw_res, dict) else {}
        if kind == "runner_on_ok":
            return self._run_step(res)
        if kind == "runner_on_unreachable" or (kind == "runner_on_failed" and not data.get("ignore_errors")):
            step = res.get(STEP_KEY)
            # the run folder's own steps fail for real, except the verdict on the repetitions
            if step:
                expected = step == "judged" and "failed_repetitions" in res
            else:
                expected = self.open_repetition is not None
            failure = TaskFailed(
                host=str(data.get("host") or "?"),
                task=task,
                message=_message(res),
                unreachable=kind == "runner_on_unreachable",
                expected=expected,
            )
            self.failures.append(failure)
            return failure
        return None
