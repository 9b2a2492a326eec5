"""The daemons' processing times beside the phases: read from <run>/daemon/*.jsonl (the run folder's
contract, module_utils/runfolder.read_answers) and placed in each handover's window
(analysis/processing.py). The logs are written by the daemon's own EventLog, at the times the
twin's capture shows for the same handover; hostile lines are skipped, counted and said once."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from mvpn_lab.analysis import analyze_run
from mvpn_lab.analysis.diagnostics import Diagnostics
from mvpn_lab.analysis.processing import LAST_WINDOW_S, daemon_views, medians
from mvpn_lab.analysis.rundir import schema
from mvpn_lab.mip6.core.clock import FakeClock
from mvpn_lab.mip6.daemon.events import EventLog

DATA = Path(__file__).parent / "data" / "twin-gso-retransmission"
# the one handover of that run (home, md ra): its t0 and the MN capture's BU to the HA
T0 = 1795731718.060595
BU_CAPTURE_S = 3.638798
BA_AT_MN_S = 4.068437


def _log(role: str, answers: list[tuple[float, dict[str, object]]]) -> str:
    """Event-log lines as the daemon writes them: other events around the answers."""
    clock = FakeClock(start=0.0, wall_start=0.0)
    stream = io.StringIO()
    log = EventLog(stream, clock, node=role, role=role)
    log.info("start", pid=1)
    for epoch, fields in answers:
        clock.advance(epoch - clock.wall())
        log.info("action", action="set_tunnel")
        log.info("answer", **fields)
    return stream.getvalue()


def _answer(
    message: str, trigger: str, ms: float, kernel_ms: float, commands: int, dst: str | None = None
) -> dict[str, object]:
    dst = dst or ("fec0:106:2700:0::1" if message == "BU" else "fec0:106:1100::1")  # BU: to the HA
    return {"message": message, "dst": dst, "trigger": trigger, "processing_ms": ms, "kernel_ms": kernel_ms,
            "kernel_commands": commands}  # fmt: skip


def _run_with_logs(tmp_path: Path, hostile: str = "") -> Path:
    run = tmp_path / "run"
    shutil.copytree(DATA / "run", run)
    logs = run / "daemon"
    logs.mkdir()
    mn = _log(
        "mn",
        [
            (T0 - 5.0, _answer("BU", "on_ndisc_readable", 3.0, 1.0, 1)),  # before the handover
            # a BU to a correspondent (route optimisation) is not the one to the home agent
            (T0 + 1.0, _answer("BU", "on_mh_readable", 2.0, 0.5, 1, dst="fec0:106:2500::2")),
            (T0 + BU_CAPTURE_S + 0.001, _answer("BU", "on_ndisc_readable", 7.5, 2.5, 2)),
            (T0 + BU_CAPTURE_S + 1.0, _answer("BU", "timers", 1.0, 0.0, 0)),  # a retransmission
        ],
    )
    ha = _log("ha", [(T0 + 3.85, _answer("BA", "on_mh_readable", 4.25, 1.5, 1))])
    (logs / "mn.jsonl").write_text(mn + hostile)
    (logs / "ha.jsonl").write_text(ha)
    return run


def test_each_handover_gets_the_mn_s_bu_and_the_ha_s_ba_of_its_window(tmp_path: Path) -> None:
    run = _run_with_logs(tmp_path)
    diag = Diagnostics(quiet=True)
    (handover,) = analyze_run(run, diag=diag).handovers
    assert handover.daemon["mn_bu"] == {
        "processing_ms": 7.5, "kernel_ms": 2.5, "kernel_commands": 2, "trigger": "on_ndisc_readable",
        "sent_s": pytest.approx(BU_CAPTURE_S + 0.001, abs=1e-5), "capture_s": pytest.approx(BU_CAPTURE_S),
    }  # fmt: skip
    ba = handover.daemon["ha_ba"]
    assert ba["processing_ms"] == 4.25 and ba["trigger"] == "on_mh_readable" and "capture_s" not in ba
    assert BU_CAPTURE_S < ba["sent_s"] < BA_AT_MN_S
    assert [w.line() for w in diag.warnings if "daemon" in w.line()] == []


def test_hostile_log_lines_are_skipped_counted_and_said_once(tmp_path: Path) -> None:
    hostile = "\n".join(
        [
            "not json at all",
            json.dumps(["answer"]),
            json.dumps({"event": "answer", "role": "mn", "epoch": "soon", "message": "BU"}),
            json.dumps(
                {
                    **_answer("BU", "t", 0.0, 0.0, 0),
                    "event": "answer",
                    "role": "mn",
                    "epoch": T0 + 1,
                    "processing_ms": True,
                }
            ),
            '{"event": "answer", "role": "mn", "epo',  # a log cut off mid-line
        ]
    )
    run = _run_with_logs(tmp_path, hostile)
    answers, skipped = schema().read_answers(run)
    # lines that do not mention "answer" are other events' business, not counted
    assert skipped == 4 and len(answers) == 5
    assert [a["epoch"] for a in answers] == sorted(a["epoch"] for a in answers)
    diag = Diagnostics(quiet=True)
    (handover,) = analyze_run(run, diag=diag).handovers
    assert handover.daemon["mn_bu"]["processing_ms"] == 7.5  # the good lines still count
    said = [w.line() for w in diag.warnings if "event logs" in w.line()]
    assert len(said) == 1 and "4 line(s)" in said[0] and "daemon" in said[0]


def test_no_daemon_logs_no_view(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(DATA / "run", run)
    (handover,) = analyze_run(run, diag=Diagnostics(quiet=True)).handovers
    assert handover.daemon == {}
    assert schema().read_answers(tmp_path / "nowhere") == ([], 0)


def test_windows_end_at_the_next_handover():
    answers = [
        {"role": "ha", "message": "BA", "epoch": 105.0, "processing_ms": 1.0, "kernel_ms": 0.0,
         "kernel_commands": 0, "trigger": "on_mh_readable"},
        {"role": "ha", "message": "BA", "epoch": 100.0 + LAST_WINDOW_S + 40.0, "processing_ms": 9.0,
         "kernel_ms": 0.0, "kernel_commands": 0, "trigger": "on_mh_readable"},
    ]  # fmt: skip
    # the away handover at 100 s owns the first BA; the last one's window (130 s + LAST_WINDOW_S)
    # ends before the second BA at 200 s
    views = daemon_views([100.0, 130.0], answers, [None, None])
    assert views[0]["ha_ba"]["processing_ms"] == 1.0 and views[0]["ha_ba"]["sent_s"] == 5.0
    assert views[1] == {}
    assert daemon_views([None], answers, [None]) == [{}]
    assert medians(views) == {"mn_bu": None, "ha_ba": 1.0}


def test_the_mn_s_time_since_the_link_up_is_kept_and_a_bad_one_left_out(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(DATA / "run", run)
    (run / "daemon").mkdir()
    good = {**_answer("BU", "on_netlink_readable", 30.5, 13.5, 4), "since_link_up_ms": 116.5}
    (run / "daemon" / "mn.jsonl").write_text(_log("mn", [(T0 + BU_CAPTURE_S + 0.001, good)]))
    (handover,) = analyze_run(run, diag=Diagnostics(quiet=True)).handovers
    assert handover.daemon["mn_bu"]["since_link_up_ms"] == 116.5
    assert medians([handover.daemon], "since_link_up_ms") == {"mn_bu": 116.5, "ha_ba": None}
    # of the wrong kind: the field is left out, the answer kept (not counted as skipped)
    bad = {**good, "since_link_up_ms": "slow"}
    (run / "daemon" / "mn.jsonl").write_text(_log("mn", [(T0 + BU_CAPTURE_S + 0.001, bad)]))
    answers, skipped = schema().read_answers(run)
    assert skipped == 0 and len(answers) == 1 and "since_link_up_ms" not in answers[0]
    (handover,) = analyze_run(run, diag=Diagnostics(quiet=True)).handovers
    assert (
        handover.daemon["mn_bu"]["processing_ms"] == 30.5
        and "since_link_up_ms" not in handover.daemon["mn_bu"]
    )
