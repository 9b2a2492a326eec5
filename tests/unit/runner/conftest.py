"""Fixtures for ``mvpn-lab run``: a fake ansible-runner that plays a handover test's playbook.

``fake_playbook`` replaces ``ansible_runner.run``. Called as the runner calls it, it reads the plan
from the extra variables, creates (or reopens, with ``mvpn_handover_resume``) a run folder under
tmp_path, and for each repetition not complete yet replays the events the real playbook produces
(task starts and the results of ``mvpn.lab.run_folder``, with their ``mvpn_run_step``) through the
runner's event handler while writing the files (``mn.pcap``, then ``events.json``), through the run
folder's schema (``plugins/module_utils/runfolder.py``) as the module does. It polls the cancel
callback after every event, as ansible-runner does, and stops with status ``canceled`` when it
returns true. At the end it writes outcome.json and fails the verdict step as the playbook does.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from mvpn_lab.collection import module_utils

ROOT = Path(__file__).resolve().parents[3]
RUN = "20261126T180000Z"
TESTS = {"test2_wlan": 2, "test3_gprs": 3, "test4_umts": 4}
HOSTS = ["mn", "ha", "fn", "cn", "impair"]
schema = module_utils("runfolder")


def handover_result(from_ssid: str, to_ssid: str, t: float) -> dict[str, Any]:
    """What mvpn.lab.handover registers for a handover that happened."""
    return {
        "changed": True,
        "handover_at": t,
        "associated_at": t + 0.8,
        "from_ssid": from_ssid,
        "to_ssid": to_ssid,
    }


def events(config: str, rep: int, reason: str | None = None, hosts_down: list[str] | None = None) -> dict:
    """events.json of a repetition as mvpn.lab.run_folder writes it from its tasks' results; a
    ``reason`` makes its transfer fail with that error."""
    transfer: dict[str, Any] = {
        "changed": True,
        "bytes": 8,
        "sha256": "ab",
        "sha256_ok": True,
        "status": "completed",
    }
    if reason is not None:
        transfer.update(failed=True, status="failed", sha256_ok=False, error=reason)
    return schema.events_record(
        config,
        rep,
        hosts=HOSTS,
        took_part=HOSTS,
        hosts_down=hosts_down or [],
        handovers={
            "away": handover_result("LOCAL", "VISITME", 1764183901.0),
            "home": handover_result("VISITME", "LOCAL", 1764183931.0),
        },
        transfer=transfer,
        captures={"mn": {"packets_captured": 10, "packets_dropped": 0}},
        scan_first=True,
    )


def step(kind: str, **result: Any) -> dict[str, Any]:
    """A result of mvpn.lab.run_folder."""
    return {schema.STEP_KEY: kind, **result}


@dataclass
class Result:
    status: str
    rc: int


@dataclass
class FakePlaybook:
    results: Path
    #: repetitions ("CONFIG/rep-NN") whose transfer fails, with the error
    failing: dict[str, str] = field(default_factory=dict)
    #: Ctrl-C (a real SIGINT to this process) while this repetition runs, after its capture
    interrupt_at: str | None = None
    #: Ctrl-C before the run folder exists
    interrupt_early: bool = False
    #: the playbook fails (a task error) before this repetition
    fail_at: str | None = None
    #: a task of this repetition fails and is rescued (its transfer fails too); the playbook goes on
    rescued_at: str | None = None
    write_outcome: bool = True
    calls: list[dict[str, Any]] = field(default_factory=list)
    private_dirs: list[Path] = field(default_factory=list)

    def __call__(self, **kwargs: Any) -> Result:
        self.calls.append(kwargs)
        private = Path(kwargs["private_data_dir"])
        assert private.is_dir()
        self.private_dirs.append(private)
        handler = kwargs["event_handler"]
        cancel = kwargs["cancel_callback"]
        test = Path(kwargs["playbook"]).stem
        number = TESTS[test]
        extra = kwargs["extravars"]
        reps = extra[f"mvpn_test{number}_repetitions"]
        configs = [pattern.strip("^$") for pattern in extra[f"mvpn_test{number}_only"]]

        def emit(kind: str, task: str, **data: Any) -> bool:
            handler({"event": kind, "event_data": {"task": task, "host": "mn", **data}})
            return bool(cancel())

        if emit("playbook_on_task_start", "Validate the lab inventory"):
            return Result("canceled", 254)
        if self.interrupt_early:
            signal.raise_signal(signal.SIGINT)
            if emit("playbook_on_task_start", "Provision the lab"):
                return Result("canceled", 254)
        if extra["mvpn_handover_resume"]:
            run_dir = Path(extra["mvpn_handover_resume"])
            manifest = json.loads((run_dir / "manifest.json").read_text())
            for rep_dir in sorted(run_dir.glob("*/rep-*")):  # what state=resumed does
                if "." not in rep_dir.name and not (rep_dir / "events.json").exists():
                    rep_dir.rename(rep_dir.with_name(rep_dir.name + ".interrupted-20261126T190000Z"))
            task = "Reopen the run folder and set interrupted repetitions aside"
        else:
            run_dir = self.results / test / RUN
            run_dir.mkdir(parents=True)
            content = {"configurations": [{"id": c} for c in configs], "repetitions": reps}
            manifest = schema.new_manifest(content, test, RUN, "2026-11-26T18:00:00.000000Z")
            schema.write_json(str(run_dir / "manifest.json"), manifest)
            task = "Create the run folder and its manifest"
        kind = "resumed" if extra["mvpn_handover_resume"] else "created"
        if emit("playbook_on_task_start", task) or emit(
            "runner_on_ok", task, res=step(kind, path=str(run_dir), manifest=manifest)
        ):
            return Result("canceled", 254)
        for config in configs:
            for rep in range(1, reps + 1):
                name = f"{config}/rep-{rep:02d}"
                rep_dir = run_dir / name
                if (rep_dir / "events.json").exists():
                    continue
                if name == self.fail_at:
                    emit("playbook_on_task_start", f"Start the captures, {name}")
                    emit(
                        "runner_on_failed",
                        f"Start the captures, {name}",
                        res={"msg": "tcpdump: no such device"},
                    )
                    return Result("failed", 2)
                opened = step("opened", path=str(run_dir), name=name, rep_path=str(rep_dir))
                if emit("runner_on_ok", f"Open the repetition's folder, {name}", res=opened):
                    return Result("canceled", 254)
                if emit("playbook_on_task_start", f"Start the captures, {name}"):
                    return Result("canceled", 254)
                rep_dir.mkdir(parents=True)
                (rep_dir / "mn.pcap").write_bytes(b"capture")
                if name == self.interrupt_at:
                    signal.raise_signal(signal.SIGINT)
                if emit("playbook_on_task_start", f"Hand over to the visited network, {name}"):
                    return Result("canceled", 254)
                if name == self.rescued_at:
                    self.failing[name] = "cn: Check that every lab host answers: no answer"
                    task = f"Check that every lab host answers, {name}"
                    emit("runner_on_failed", task, res={"msg": "boom"})
                data = events(config, rep, self.failing.get(name))
                schema.write_json(str(rep_dir / "events.json"), data)
                record = f"Record the events, {name}"
                recorded = step(
                    "recorded",
                    path=str(run_dir),
                    name=name,
                    rep_path=str(rep_dir),
                    events=data,
                    outcome=schema.outcome_entry(data, config, rep),
                )
                if emit("playbook_on_task_start", record) or emit("runner_on_ok", record, res=recorded):
                    return Result("canceled", 254)
        if self.write_outcome:
            summary = schema.outcome(str(run_dir), manifest)
            schema.write_json(str(run_dir / "outcome.json"), summary)
            task = "Write the outcome of each repetition from the run folder"
            emit("runner_on_ok", task, res=step("finished", path=str(run_dir), summary=summary, files={}))
            failed = [e["name"] for e in summary["repetitions"] if not e["passed"]] + summary["missing"]
            if failed:
                verdict = step(
                    "judged",
                    path=str(run_dir),
                    summary=summary,
                    failed_repetitions=failed,
                    msg="Test 2: some repetitions failed",
                )
                emit("runner_on_failed", "Report the result", res=verdict)
                return Result("failed", 2)
        return Result("successful", 0)


@pytest.fixture
def fake_playbook(tmp_path, monkeypatch) -> FakePlaybook:
    """The fake ansible-runner, installed; stderr and stdout are plain (not a terminal), 200 wide."""
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "ANSIBLE_HOST_KEY_CHECKING"):
        monkeypatch.delenv(name, raising=False)
    fake = FakePlaybook(tmp_path / "results")
    monkeypatch.setattr(ansible_runner, "run", fake)
    yield fake
    for private in fake.private_dirs:
        assert not private.exists(), "the private data dir is removed after the run"


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return tmp_path / "results" / "test2_wlan" / RUN


def make_run(base: Path, test: str, configs: list[str], reps: int) -> Path:
    """A run folder as 'Create the run folder' leaves it."""
    run_dir = base / test / RUN
    run_dir.mkdir(parents=True)
    content = {"configurations": [{"id": c} for c in configs], "repetitions": reps}
    manifest = schema.new_manifest(content, test, RUN, "2026-11-26T18:00:00.000000Z")
    schema.write_json(str(run_dir / "manifest.json"), manifest)
    return run_dir
