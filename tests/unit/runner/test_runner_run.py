"""``mvpn-lab run``: extra variables, progress, resume, failures, exit codes and Ctrl-C, against a fake
ansible-runner (no twin, no ansible-playbook)."""

from __future__ import annotations

import io
import json
import os
import shlex
import signal
from pathlib import Path

import pytest
from rich.console import Console

from mvpn_lab.cli import main
from mvpn_lab.runner import run as runner_run
from mvpn_lab.runner.run import Options

from .conftest import ROOT, events, make_run
from .test_runner_matrix import IDS

A, B = IDS[0], IDS[4]


def rep_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("[")]


def error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("mvpn-lab: error: ")
    return lines[0].removeprefix("mvpn-lab: error: ")


def test_defaults(fake_playbook, capsys, run_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the run folder goes under results/ of the directory mvpn-lab runs in
    assert main(["run", "test2", "--quick"]) == 0
    (call,) = fake_playbook.calls
    assert call["project_dir"] == str(ROOT)
    assert call["playbook"] == "playbooks/test2_wlan.yml"
    env = call["envvars"]
    assert env["ANSIBLE_CONFIG"] == str(ROOT / "ansible.cfg") and env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert set(env) <= {"ANSIBLE_CONFIG", "ANSIBLE_HOST_KEY_CHECKING", "PATH"}
    assert "binary" not in call  # ansible-runner would run it raw, without the playbook
    assert call["inventory"] is None and call["quiet"] is True
    assert call["extravars"] == {
        "mvpn_test2_repetitions": 1,
        "mvpn_test2_only": [f"^{i}$" for i in IDS],
        "mvpn_provision": True,
        "mvpn_handover_resume": "",
        "mvpn_results_dir": str(tmp_path / "results"),
    }
    assert not Path(call["private_data_dir"]).exists()
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0] == "test2_wlan: 12 configurations x 1 repetitions = 12"
    assert f"run folder: {run_dir}" in captured.err
    assert captured.out.splitlines() == [
        "test2_wlan: 12 of 12 repetitions passed",
        f"run folder: {run_dir}",
    ]


@pytest.mark.parametrize(
    ("argv", "number", "reps", "ids", "provision"),
    [
        (["test2_wlan"], 2, 5, IDS, True),
        (["test3", "--reps", "2", "--configs", f"{B},{A}"], 3, 2, [A, B], True),
        (["test4", "--configs", B, "--configs", A, "--no-provision"], 4, 1, [A, B], False),
        (["test4_umts", "--quick", "--configs", A], 4, 1, [A], True),
    ],
)
def test_extra_variables(fake_playbook, capsys, argv, number, reps, ids, provision):
    assert main(["run", *argv]) == 0
    assert fake_playbook.calls[0]["extravars"] == {
        f"mvpn_test{number}_repetitions": reps,
        f"mvpn_test{number}_only": [f"^{i}$" for i in ids],
        "mvpn_provision": provision,
        "mvpn_handover_resume": "",
        "mvpn_results_dir": str(Path.cwd() / "results"),
    }
    assert len(rep_lines(capsys.readouterr().err)) == reps * len(ids)


def test_the_venvs_ansible_playbook_comes_first(monkeypatch, tmp_path):
    bindir = tmp_path / "venv" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "ansible-playbook").write_text("#!/bin/sh\n")
    monkeypatch.setattr("sys.executable", str(bindir / "python"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("ANSIBLE_HOST_KEY_CHECKING", "False")
    assert runner_run.envvars(ROOT) == {
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "PATH": f"{bindir}:/usr/bin:/bin",
    }
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin")
    assert "PATH" not in runner_run.envvars(ROOT)


def test_inventory(fake_playbook, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["run", "test2", "--quick", "--configs", A, "-i", "inventories/virtual"]) == 0
    assert fake_playbook.calls[0]["inventory"] == str(ROOT / "inventories" / "virtual")


def test_progress_counts_every_repetition_once(fake_playbook, capsys, run_dir):
    assert main(["run", "test2", "--reps", "2", "--configs", f"{A},{B}"]) == 0
    err = capsys.readouterr().err
    assert rep_lines(err) == [
        f"[1/4] {A}/rep-01: passed",
        f"[2/4] {A}/rep-02: passed",
        f"[3/4] {B}/rep-01: passed",
        f"[4/4] {B}/rep-02: passed",
    ]
    assert "\x1b[" not in err  # plain lines when stderr is not a terminal


def test_failed_repetitions_are_listed_and_exit_1(fake_playbook, capsys, run_dir):
    fake_playbook.failing = {f"{B}/rep-02": "curl: (28) Operation timed out"}
    assert main(["run", "test2", "--reps", "2", "--configs", f"{A},{B}"]) == 1
    captured = capsys.readouterr()
    assert f"[4/4] {B}/rep-02: FAILED: transfer failed: curl: (28) Operation timed out" in rep_lines(
        captured.err
    )
    out = captured.out.splitlines()
    # the playbook's verdict task failed because of that repetition: not a playbook failure to report
    assert out[0] == "test2_wlan: 3 of 4 repetitions passed, 1 failed"
    row = next(line for line in out if f"{B}/rep-02" in line)
    assert "transfer failed: curl: (28) Operation timed out" in row
    assert out[-1] == f"run folder: {run_dir}"


def test_a_playbook_failure_lists_what_is_missing_from_the_events(fake_playbook, capsys, run_dir):
    fake_playbook.fail_at = f"{B}/rep-01"
    assert main(["run", "test2", "--quick", "--configs", f"{A},{B}"]) == 1
    captured = capsys.readouterr()
    assert "task failed on mn: Start the captures" in captured.err
    assert "test2_wlan: 1 of 2 repetitions passed, 1 not run (from the events.json files)" in captured.out
    assert f"{B}/rep-01" in captured.out and "not run" in captured.out
    assert captured.out.splitlines()[-1] == f"to run the rest: mvpn-lab run test2_wlan --resume {run_dir}"


def test_a_rescued_repetition_task_is_not_a_playbook_failure(fake_playbook, capsys, run_dir):
    fake_playbook.rescued_at = f"{B}/rep-01"
    assert main(["run", "test2", "--quick", "--configs", f"{A},{B}"]) == 1
    out = capsys.readouterr().out
    assert "the playbook failed" not in out
    assert out.splitlines()[0] == "test2_wlan: 1 of 2 repetitions passed, 1 failed"


def test_the_hints_keep_the_inventory_and_no_provision(fake_playbook, capsys, run_dir, tmp_path):
    """A run on another inventory is resumed on that inventory, not on the default (the twin)."""
    inventory = tmp_path / "lab inventory"
    inventory.mkdir()
    fake_playbook.fail_at = f"{B}/rep-01"
    args = ["run", "test2", "--quick", "--configs", f"{A},{B}", "-i", str(inventory), "--no-provision"]
    assert main(args) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    quoted = shlex.quote(str(inventory))
    assert last == f"to run the rest: mvpn-lab run test2_wlan -i {quoted} --no-provision --resume {run_dir}"
    assert shlex.split(last.split(": ", 1)[1])[4] == str(inventory)


def test_a_failure_before_the_run_folder(fake_playbook, capsys, monkeypatch):
    def fail(**kwargs):
        data = {"task": "Ping", "host": "ha", "res": {"msg": "ssh: connect to host mvpn-twin: refused"}}
        kwargs["event_handler"]({"event": "runner_on_unreachable", "event_data": data})
        return type("R", (), {"status": "failed", "rc": 4})()

    monkeypatch.setattr("ansible_runner.run", fail)
    assert main(["run", "test2", "--quick"]) == 1
    captured = capsys.readouterr()
    assert "unreachable on ha: Ping" in captured.err
    assert captured.out.splitlines() == [
        "test2_wlan: the playbook failed before it created the run folder "
        "(last failure on ha: Ping: ssh: connect to host mvpn-twin: refused)"
    ]


def test_without_a_failed_task_the_playbooks_last_lines_are_shown(fake_playbook, capsys, monkeypatch):
    def fail(**kwargs):
        stdout = "\x1b[0;31mERROR! the playbook: playbooks/test2_wlan.yml could not be found\x1b[0m\n\n"
        kwargs["event_handler"]({"event": "verbose", "stdout": stdout})
        return type("R", (), {"status": "failed", "rc": 1})()

    monkeypatch.setattr("ansible_runner.run", fail)
    assert main(["run", "test2", "--quick"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "test2_wlan: the playbook failed before it created the run folder",
        "  ERROR! the playbook: playbooks/test2_wlan.yml could not be found",
    ]


def test_the_report_is_named_when_written(fake_playbook, capsys, run_dir, monkeypatch):
    real = fake_playbook.__call__

    def with_report(**kwargs):
        result = real(**kwargs)
        (run_dir / "report.html").write_text("<html>")
        return result

    monkeypatch.setattr("ansible_runner.run", with_report)
    assert main(["run", "test2", "--quick", "--configs", A]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"report: {run_dir / 'report.html'}"


def test_interrupt_then_resume(fake_playbook, capsys, run_dir):
    before = signal.getsignal(signal.SIGINT)
    fake_playbook.interrupt_at = f"{A}/rep-02"
    assert main(["run", "test2", "--reps", "2", "--configs", f"{A},{B}"]) == 130
    captured = capsys.readouterr()
    assert (
        captured.err.splitlines()[-1]
        == f"interrupted: resume with mvpn-lab run test2_wlan --resume {run_dir}"
    )
    assert rep_lines(captured.err) == [f"[1/4] {A}/rep-01: passed"]
    assert captured.out == ""
    assert signal.getsignal(signal.SIGINT) is before
    # nothing deleted: the complete repetition and the interrupted one's capture are there
    assert (run_dir / A / "rep-01" / "events.json").is_file()
    assert (run_dir / A / "rep-02" / "mn.pcap").read_bytes() == b"capture"
    assert not (run_dir / A / "rep-02" / "events.json").exists()

    fake_playbook.interrupt_at = None
    assert main(["run", "test2", "--resume", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0] == (
        f"test2_wlan: 2 configurations x 2 repetitions = 4, 1 done; resuming {run_dir}"
    )
    assert rep_lines(captured.err) == [
        f"[2/4] {A}/rep-02: passed",
        f"[3/4] {B}/rep-01: passed",
        f"[4/4] {B}/rep-02: passed",
    ]
    extra = fake_playbook.calls[-1]["extravars"]
    assert extra == {
        "mvpn_test2_repetitions": 2,
        "mvpn_test2_only": [f"^{A}$", f"^{B}$"],
        "mvpn_provision": True,
        "mvpn_handover_resume": str(run_dir),
    }
    assert (run_dir / A / "rep-02.interrupted-20261126T190000Z" / "mn.pcap").is_file()
    assert "test2_wlan: 4 of 4 repetitions passed" in captured.out


def test_interrupt_before_the_run_folder(fake_playbook, capsys):
    fake_playbook.interrupt_early = True
    assert main(["run", "test3", "--quick"]) == 130
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "interrupted before the run folder was created: start again with mvpn-lab run test3_gprs"


def test_results_dir_goes_to_the_playbook_absolute(fake_playbook, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "test4", "--quick", "--configs", A, "--results-dir", "out"]) == 0
    assert fake_playbook.calls[0]["extravars"]["mvpn_results_dir"] == str(tmp_path / "out")


def test_resume_does_not_take_a_results_dir(fake_playbook, capsys, tmp_path):
    run_dir = make_run(tmp_path / "results", "test4_umts", [B], 1)
    assert main(["run", "test4", "--resume", str(run_dir), "--results-dir", str(tmp_path)]) == 2
    assert "--results-dir cannot change it" in capsys.readouterr().err
    assert not fake_playbook.calls


def test_resume_with_a_relative_path_passes_it_absolute(fake_playbook, capsys, tmp_path, monkeypatch):
    run_dir = make_run(tmp_path / "results", "test4_umts", [B], 1)
    monkeypatch.chdir(run_dir.parent)
    assert main(["run", "test4", "--resume", run_dir.name, "--no-provision"]) == 0
    extra = fake_playbook.calls[0]["extravars"]
    assert extra["mvpn_handover_resume"] == str(run_dir) and extra["mvpn_provision"] is False
    assert extra["mvpn_test4_only"] == [f"^{B}$"] and extra["mvpn_test4_repetitions"] == 1


def test_a_stale_outcome_is_not_read(fake_playbook, capsys, tmp_path):
    """A resumed run that fails before its end: the report comes from events.json, not the old outcome."""
    run_dir = make_run(tmp_path / "results", "test2_wlan", [A, B], 1)
    (run_dir / A / "rep-01").mkdir(parents=True)
    (run_dir / A / "rep-01" / "events.json").write_text(json.dumps(events(A, 1, reason="boom")))
    old = {"test": "test2_wlan", "run": run_dir.name, "repetitions": [], "missing": []}
    (run_dir / "outcome.json").write_text(json.dumps(old))
    os.utime(run_dir / "outcome.json", (1_700_000_000, 1_700_000_000))
    fake_playbook.fail_at = f"{B}/rep-01"
    assert main(["run", "test2", "--resume", str(run_dir)]) == 1
    out = capsys.readouterr().out
    assert "0 of 2 repetitions passed, 1 failed, 1 not run (from the events.json files)" in out
    assert "transfer failed: boom" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["test5"],
            "TEST: expected test2_wlan, test3_gprs, test4_umts (or test2, test3, test4), got 'test5'",
        ),
        (
            ["test2", "--configs", "nope"],
            "--configs: unknown configuration id 'nope'; valid ids: " + ", ".join(IDS),
        ),
        (
            ["test2", "--quick", "--reps", "3"],
            "--quick: runs one repetition per configuration; not with --reps",
        ),
        (["test2", "--reps", "0"], "--reps: expected a whole number >= 1, got '0'"),
        (["test2", "-i", "no/such/inventory"], "-i: no inventory at no/such/inventory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(fake_playbook, capsys, argv, message):
    assert main(["run", *argv]) == 2
    assert error_line(capsys) == message
    assert fake_playbook.calls == []


def test_bad_resume_is_one_line_and_exit_2(fake_playbook, capsys, tmp_path):
    run_dir = make_run(tmp_path / "results", "test2_wlan", [A], 2)
    cases = [
        (
            ["test2", "--resume", str(run_dir), "--reps", "3"],
            "--resume: the plan comes from RUN_DIR/manifest.json; --reps",
        ),
        (
            ["test2", "--resume", str(run_dir), "--configs", A, "--quick"],
            "--resume: the plan comes from RUN_DIR/manifest.json; --configs, --quick",
        ),
        (
            ["test3", "--resume", str(run_dir)],
            f"--resume: {run_dir} is a run of 'test2_wlan', not of test3_gprs",
        ),
        (
            ["test2", "--resume", str(tmp_path)],
            f"--resume: {tmp_path} is not a run folder (no manifest.json)",
        ),
        (["test2", "--resume", str(tmp_path / "nope")], f"--resume: {tmp_path / 'nope'} is not a folder"),
    ]
    for argv, message in cases:
        assert main(["run", *argv]) == 2
        assert error_line(capsys).startswith(message)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["configurations"].append({"id": "gone-from-the-matrix"})
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    assert main(["run", "test2", "--resume", str(run_dir)]) == 2
    assert "gone-from-the-matrix" in error_line(capsys)
    assert fake_playbook.calls == []


def test_on_a_terminal_the_bar_is_drawn(fake_playbook, run_dir):
    err = io.StringIO()
    out = io.StringIO()
    terminal = Console(file=err, force_terminal=True, width=120)
    code = runner_run.run(
        Options("test2", reps="2", configs=[A]), root=ROOT, err=terminal, out=Console(file=out, width=120)
    )
    assert code == 0
    text = err.getvalue()
    assert "━" in text and "2/2" in text and f"{A}/rep-02: passed" in text
    assert "test2_wlan: 2 of 2 repetitions passed" in out.getvalue()


def start_process(ignore_sigint=False):
    """A stand-in for ansible-playbook's main process: it exits on SIGINT unless told to ignore it."""
    import subprocess
    import sys

    code = "import signal, time\n"
    if ignore_sigint:
        code += "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    code += "print('ready', flush=True)\ntime.sleep(60)\n"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"  # its SIGINT handling is in place
    return child


@pytest.fixture
def playbook_process():
    children = []
    yield lambda **kw: children.append(start_process(**kw)) or children[-1]
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()


def stop_politely(child, presses=1):
    """An ansible-runner whose events carry the playbook's pid; Ctrl-C arrives after the run folder."""
    import time

    def fake(**kwargs):
        handler, cancel = kwargs["event_handler"], kwargs["cancel_callback"]
        data = {
            "task": "Create the run folder",
            "res": {"mvpn_run_step": "created", "path": "/r/test2_wlan/X"},
        }
        handler({"event": "runner_on_ok", "pid": child.pid, "event_data": data})
        for _ in range(presses):
            signal.raise_signal(signal.SIGINT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if cancel():
                return type("R", (), {"status": "canceled", "rc": 254})()
            if child.poll() is not None:  # it stopped by itself
                return type("R", (), {"status": "failed", "rc": 99})()
            time.sleep(0.05)
        raise AssertionError("neither stopped nor cancelled")

    return fake


HINT = "interrupted: resume with mvpn-lab run test2_wlan --resume /r/test2_wlan/X"


def test_ctrl_c_asks_ansible_playbook_to_stop_first(fake_playbook, capsys, monkeypatch, playbook_process):
    child = playbook_process()
    monkeypatch.setattr("ansible_runner.run", stop_politely(child))
    assert main(["run", "test2", "--quick"]) == 130
    assert child.wait(5) != 0  # it got SIGINT (KeyboardInterrupt) and stopped by itself
    assert capsys.readouterr().err.splitlines()[-1] == HINT


@pytest.mark.parametrize(("presses", "grace"), [(2, 60.0), (1, 0.0)])
def test_a_second_ctrl_c_or_the_grace_period_cancels(
    fake_playbook, capsys, monkeypatch, playbook_process, presses, grace
):
    deaf = playbook_process(ignore_sigint=True)
    monkeypatch.setattr(runner_run, "STOP_GRACE_S", grace)
    monkeypatch.setattr("ansible_runner.run", stop_politely(deaf, presses))
    assert main(["run", "test2", "--quick"]) == 130
    assert deaf.poll() is None  # still there: ansible-runner's SIGKILL is what stops it
    assert capsys.readouterr().err.splitlines()[-1] == HINT


def _recorded_run(base: Path, test: str, ids: list[str], reps: int, **changes: object) -> Path:
    """A run folder whose manifest records the matrix's rows as the playbook does (with the SPIs and
    the test's profile that the playbook adds), optionally with a row's field changed."""
    from mvpn_lab.runner.matrix import read_matrix_rows

    from .conftest import RUN, schema

    rows = read_matrix_rows(ROOT)
    configurations = [{**rows[i], "profile": "umts", "esp_spis": ["0x00001001", "0x00001002"]} for i in ids]
    for key, value in changes.items():
        configurations[0][key] = value
    run_dir = base / test / RUN
    run_dir.mkdir(parents=True)
    content = {
        "configurations": configurations,
        "repetitions": reps,
        "code": {"collection": "0.1.0", "package": "0.1.0", "commit": "0" * 40, "dirty": True},
    }
    manifest = schema.new_manifest(content, test, RUN, "2026-11-26T18:00:00Z")
    schema.write_json(str(run_dir / "manifest.json"), manifest)
    return run_dir


def test_rerun_runs_the_recorded_plan_again_beside_it(fake_playbook, capsys, tmp_path):
    old = _recorded_run(tmp_path / "old", "test4_umts", [A, B], 3)
    assert main(["rerun", str(old), "--no-provision"]) == 0
    (call,) = fake_playbook.calls
    assert call["playbook"] == "playbooks/test4_umts.yml"
    assert call["extravars"] == {
        "mvpn_test4_repetitions": 3,
        "mvpn_test4_only": [f"^{A}$", f"^{B}$"],
        "mvpn_provision": False,
        "mvpn_handover_resume": "",
        "mvpn_results_dir": str(tmp_path / "old"),
    }
    err = capsys.readouterr().err
    ran = "collection 0.1.0, package 0.1.0, commit 000000000000 with uncommitted changes"
    note = f"note: {old.name} ran {ran}; "
    assert note + "this is collection " in err, err


def test_rerun_of_a_moved_run_folder_goes_to_results_here(fake_playbook, capsys, tmp_path, monkeypatch):
    old = _recorded_run(tmp_path / "old", "test4_umts", [A], 1)
    moved = old.rename(tmp_path / "kept-run")
    monkeypatch.chdir(tmp_path)
    assert main(["rerun", str(moved), "--no-provision"]) == 0
    assert fake_playbook.calls[0]["extravars"]["mvpn_results_dir"] == str(tmp_path / "results")


def test_rerun_of_a_manifest_with_ids_alone_is_one_line(fake_playbook, capsys, tmp_path):
    from .conftest import make_run

    old = make_run(tmp_path / "old", "test2_wlan", [A], 1)  # configurations: [{"id": A}] only
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["configurations"] = [A]
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert main(["rerun", str(old)]) == 2
    assert error_line(capsys).startswith(f"configurations: {A} of {old} records no settings")
    assert not fake_playbook.calls


def test_rerun_refuses_a_configuration_the_matrix_now_defines_otherwise(fake_playbook, capsys, tmp_path):
    old = _recorded_run(tmp_path / "old", "test2_wlan", [A], 1, mip6="other")
    assert main(["rerun", str(old)]) == 2
    line = error_line(capsys)
    assert line.startswith(f"configurations: {A}.mip6 was 'other' in {old}, the matrix now says ")
    assert not fake_playbook.calls


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda base: base / "missing", "RUN_DIR: "),
        (lambda base: _recorded_run(base, "test1_validation", [A], 1), "RUN_DIR: "),
    ],
)
def test_rerun_bad_run_folders_are_one_line(fake_playbook, capsys, tmp_path, make, expected):
    assert main(["rerun", str(make(tmp_path))]) == 2
    assert error_line(capsys).startswith(expected)
    assert not fake_playbook.calls
