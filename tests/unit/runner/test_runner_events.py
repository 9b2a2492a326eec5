"""ansible-runner events -> progress: steps, the run folder, complete repetitions, failed tasks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mvpn_lab.runner import rundir
from mvpn_lab.runner.events import (
    EventTracker,
    RepetitionDone,
    RunFinished,
    RunFolder,
    StepStarted,
    TaskFailed,
    shorten,
)
from mvpn_lab.runner.matrix import Plan

from .conftest import ROOT, events, schema, step

PLAN = Plan("test2_wlan", ("a", "b"), 2)


def ok(task, **res):
    return {"event": "runner_on_ok", "event_data": {"task": task, "host": "mn", "res": res}}


def failed(task, host="cn", **res):
    return {"event": "runner_on_failed", "event_data": {"task": task, "host": host, "res": res}}


def test_steps_run_folder_and_repetitions():
    """The run folder and the repetitions come from run_folder's mvpn_run_step, whatever the tasks' names."""
    tracker = EventTracker(PLAN, done={"a/rep-01", "z/rep-09"})
    assert tracker.done == {"a/rep-01"}  # only the plan's
    start = {"event": "playbook_on_task_start", "event_data": {"task": "Start the download, a/rep-02"}}
    assert tracker.handle(start) == StepStarted("Start the download, a/rep-02")
    manifest = {"test": "test2_wlan", "configurations": [{"id": "a"}], "repetitions": 1}
    assert tracker.handle(ok("x", **step("created", path="/r/t/X", manifest=manifest))) == RunFolder(
        Path("/r/t/X"), manifest
    )
    assert tracker.run_dir == Path("/r/t/X")
    # a task named like the run folder's, or another task's path, is not the run folder
    assert tracker.handle(ok("Create the run folder and its manifest", path="/elsewhere")) is None
    assert tracker.run_dir == Path("/r/t/X")
    data = events("a", 2, reason="curl: (28) timed out")
    entry = schema.outcome_entry(data, "a", 2)
    record = ok("y", **step("recorded", path="/r/t/X", name="a/rep-02", events=data, outcome=entry))
    assert tracker.handle(record) == RepetitionDone("a/rep-02", "transfer failed: curl: (28) timed out")
    assert tracker.handle(record) is None  # counted once
    passed = step("recorded", name="a/rep-01", outcome=schema.outcome_entry(events("a", 1), "a", 1))
    assert tracker.handle(ok("y", **passed)) is None  # done before
    assert tracker.handle(ok("Record the events, b/rep-01", dest="/r/t/X/b/rep-01/events.json")) is None
    assert tracker.handle(ok("y", **step("recorded", name="c/rep-01", outcome={"passed": True}))) is None
    assert tracker.done == {"a/rep-01", "a/rep-02"}
    b1 = step("recorded", name="b/rep-01", outcome=schema.outcome_entry(events("b", 1), "b", 1))
    assert tracker.handle(ok("y", **b1)) == RepetitionDone("b/rep-01", None)
    summary = {"repetitions": [], "missing": []}
    assert tracker.handle(ok("z", **step("finished", summary=summary))) == RunFinished(summary)
    assert tracker.summary == summary
    reopened = EventTracker(PLAN)
    assert reopened.handle(ok("z", **step("resumed", path="/r/t/Y"))) == RunFolder(Path("/r/t/Y"))


def test_failed_tasks_unless_ignored():
    tracker = EventTracker(PLAN)
    assert tracker.handle(failed("Start the captures, a/rep-01", msg="no\ndevice")) == TaskFailed(
        "cn", "Start the captures, a/rep-01", "no device", False
    )
    ignored = {"event": "runner_on_failed", "event_data": {"task": "x", "host": "cn", "ignore_errors": True}}
    assert tracker.handle(ignored) is None
    down = {
        "event": "runner_on_unreachable",
        "event_data": {"task": "Ping", "host": "ha", "res": {"msg": "ssh"}},
    }
    assert tracker.handle(down) == TaskFailed("ha", "Ping", "ssh", True)
    assert len(tracker.failures) == 2


def test_failures_the_run_folder_accounts_for():
    """Between a repetition's opened and recorded steps a failure is the repetition's (its events.json
    says it); the verdict step's failure is the playbook's judgement; any other failure is not."""
    tracker = EventTracker(PLAN)
    assert not tracker.handle(failed("Emulate the link", host="impair", msg="tc")).expected
    tracker.handle(ok("o", **step("opened", name="a/rep-01")))
    assert tracker.handle(failed("Check", host="cn", msg="boom")).expected
    unreachable = {"event": "runner_on_unreachable", "event_data": {"task": "Hand over", "host": "mn"}}
    assert tracker.handle(unreachable).expected
    # the record itself failing (cannot write events.json) is a real failure
    assert not tracker.handle(
        failed("Record", host="mn", **step("recorded", msg="path: cannot write"))
    ).expected
    tracker.handle(ok("r", **step("recorded", name="a/rep-01", outcome={"passed": False, "reason": "x"})))
    assert not tracker.handle(failed("Apply IPsec", host="ha", msg="xfrm")).expected
    verdict = step("judged", msg="Test 2: 1 of 4 repetitions failed", failed_repetitions=["a/rep-01"])
    assert tracker.handle(failed("Report the result", host="mn", **verdict)).expected
    assert not tracker.handle(
        failed("Report the result", host="mn", **step("judged", msg="path: no"))
    ).expected


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
