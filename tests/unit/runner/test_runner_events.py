"""ansible-runner events -> progress: steps, the run folder, complete repetitions, failed tasks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mvpn_lab.runner import rundir
from mvpn_lab.runner.events import (
    EventTracker,
    RepetitionDone,
    RunFolder,
    StepStarted,
    TaskFailed,
    shorten,
)
from mvpn_lab.runner.matrix import Plan

from .conftest import ROOT, events

PLAN = Plan("test2_wlan", ("a", "b"), 2)


def ok(task, **res):
    return {"event": "runner_on_ok", "event_data": {"task": task, "host": "mn", "res": res}}


def test_steps_run_folder_and_repetitions():
    tracker = EventTracker(PLAN, done={"a/rep-01", "z/rep-09"})
    assert tracker.done == {"a/rep-01"}  # only the plan's
    start = {"event": "playbook_on_task_start", "event_data": {"task": "Start the download, a/rep-02"}}
    assert tracker.handle(start) == StepStarted("Start the download, a/rep-02")
    assert tracker.handle(ok("Create the run folder and its manifest", path="/r/t/X")) == RunFolder(
        Path("/r/t/X")
    )
    assert tracker.run_dir == Path("/r/t/X")
    # another task's path is not the run folder
    assert tracker.handle(ok("Compute something", path="/elsewhere")) is None
    record = ok("Record the events, a/rep-02", dest="/r/t/X/a/rep-02/events.json", changed=True)
    assert tracker.handle(record) == RepetitionDone("a/rep-02", Path("/r/t/X/a/rep-02/events.json"))
    assert tracker.handle(record) is None  # counted once
    assert tracker.handle(ok("Record the events, a/rep-01", dest="/r/t/X/a/rep-01/events.json")) is None
    assert tracker.handle(ok("Fetch", dest="/r/t/X/b/rep-01/mn.pcap")) is None
    assert tracker.handle(ok("Record", dest="/r/t/X/c/rep-01/events.json")) is None  # not planned
    assert tracker.done == {"a/rep-01", "a/rep-02"}
    reopened = EventTracker(PLAN)
    assert reopened.handle(ok("Reopen the run folder", path="/r/t/Y")) == RunFolder(Path("/r/t/Y"))


def test_failed_tasks_unless_ignored():
    tracker = EventTracker(PLAN)
    failed = {
        "event": "runner_on_failed",
        "event_data": {"task": "Start the captures, a/rep-01", "host": "cn", "res": {"msg": "no\ndevice"}},
    }
    assert tracker.handle(failed) == TaskFailed("cn", "Start the captures, a/rep-01", "no device", False)
    ignored = {"event": "runner_on_failed", "event_data": {"task": "x", "host": "cn", "ignore_errors": True}}
    assert tracker.handle(ignored) is None
    down = {
        "event": "runner_on_unreachable",
        "event_data": {"task": "Ping", "host": "ha", "res": {"msg": "ssh"}},
    }
    assert tracker.handle(down) == TaskFailed("ha", "Ping", "ssh", True)
    assert len(tracker.failures) == 2


def test_shorten_keeps_the_end():
    name = "Run the repetition on the mobile node, mip6-ro_ipsec-transport_md-l2/rep-03"
    short = shorten(name, 40)
    assert len(short) == 40 and short.endswith("md-l2/rep-03") and "…" in short
    assert shorten("a  b\nc") == "a b c"


CASES = [
    events("a", 1),
    events("a", 1, reason="curl: (28) timed out"),
    events("a", 1, hosts_down=["cn"]),
    events("a", 1, reason="x", hosts_down=["cn", "ha"]),
    {**events("a", 1), "hosts_absent": ["cn"]},
    {"transfer": {"status": "completed", "sha256_ok": False}, "handovers": []},
    {"transfer": {"status": "completed", "sha256_ok": "True"}, "handovers": [{"ok": "False", "error": "e"}]},
    {"handovers": [{"to_ssid": "VISITME", "ok": False, "error": "association\ntimed out"}]},
    {},
    {"transfer": {"status": "completed", "sha256_ok": True}, "handovers": [], "errors": ["cn: Stop: boom"]},
    {"transfer": {"status": "completed", "sha256_ok": True}, "handovers": [], "errors": ["", "mn: a\n b"]},
]


@pytest.mark.parametrize("data", CASES)
def test_the_runners_verdict_is_the_modules(data):
    """The live verdict (runner) and outcome.json (mvpn.lab.run_folder) agree: the runner loads
    the collection's rule file (plugins/module_utils/repetition.py) from this checkout."""
    collections = str(ROOT / "collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)
    from ansible_collections.mvpn.lab.plugins.modules import run_folder

    entry = run_folder.repetition_outcome(data, "a", 1)
    assert rundir.failure_reason(data) == entry["reason"]
    assert (rundir.failure_reason(data) is None) == entry["passed"]
