"""Turn ansible-runner events into what the runner shows: steps, the run folder, finished repetitions.

ansible-runner calls the event handler with one dict per Ansible callback event (``event``,
``event_data`` with ``task``, ``host``, ``res``...). The runner recognises:

* ``playbook_on_task_start``: the current step (the task's name);
* ``runner_on_ok`` of the run folder task (its name starts with ``Create the run folder`` or
  ``Reopen the run folder``) whose result has ``path``: the run folder;
* ``runner_on_ok`` whose ``res.dest`` ends with ``/<config>/rep-NN/events.json`` (the copy task
  ``Record the events, ...``): a repetition is complete;
* ``runner_on_failed`` (not ignored) and ``runner_on_unreachable``: a task failed on a host.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvpn_lab.runner.matrix import Plan, rep_name

RUN_FOLDER_TASKS = ("Create the run folder", "Reopen the run folder")
#: The playbook's last task, which fails when a repetition failed (the runner's table says why).
VERDICT_TASK = "Report the result"
EVENTS_DEST = re.compile(r"/([^/]+)/rep-(\d+)/events\.json$")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TAIL_LINES = 6


@dataclass(frozen=True)
class StepStarted:
    task: str


@dataclass(frozen=True)
class RunFolder:
    path: Path


@dataclass(frozen=True)
class RepetitionDone:
    name: str
    events_path: Path


@dataclass(frozen=True)
class TaskFailed:
    host: str
    task: str
    message: str
    unreachable: bool


Notice = StepStarted | RunFolder | RepetitionDone | TaskFailed


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


class EventTracker:
    """Follows the events of one playbook run against a plan."""

    def __init__(self, plan: Plan, done: Iterable[str] = (), run_dir: Path | None = None) -> None:
        self.plan = plan
        self.planned = set(plan.names())
        self.done: set[str] = set(done) & self.planned
        self.run_dir = run_dir
        self.step = ""
        self.failures: list[TaskFailed] = []
        #: the last lines ansible-playbook printed (why it stopped, when no task failed)
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def set_plan(self, plan: Plan) -> None:
        """The plan the run folder's manifest records (it wins over the one the runner computed)."""
        self.plan = plan
        self.planned = set(plan.names())
        self.done &= self.planned

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
        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        if kind == "runner_on_ok":
            if task.startswith(RUN_FOLDER_TASKS) and res.get("path"):
                self.run_dir = Path(str(res["path"]))
                return RunFolder(self.run_dir)
            dest = res.get("dest")
            match = EVENTS_DEST.search(str(dest)) if dest else None
            if match:
                name = rep_name(match.group(1), int(match.group(2)))
                if name in self.planned and name not in self.done:
                    self.done.add(name)
                    return RepetitionDone(name, Path(str(dest)))
            return None
        if kind == "runner_on_unreachable" or (kind == "runner_on_failed" and not data.get("ignore_errors")):
            failure = TaskFailed(
                host=str(data.get("host") or "?"),
                task=task,
                message=_message(res),
                unreachable=kind == "runner_on_unreachable",
            )
            self.failures.append(failure)
            return failure
        return None
