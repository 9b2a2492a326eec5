"""Analyse a run folder: every repetition of every configuration, one handover per row."""

from __future__ import annotations

import csv
import ipaddress
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mvpn_lab import __version__
from mvpn_lab.analysis.crosscheck import (
    ClockOffset,
    CorrespondentPass,
    cn_time_for,
    estimate_offset,
)
from mvpn_lab.analysis.diagnostics import Diagnostics, Problems, Warning_
from mvpn_lab.analysis.esp import EspKey
from mvpn_lab.analysis.milestones import MobileNodePass, Window, make_windows
from mvpn_lab.analysis.packets import MH_BA
from mvpn_lab.analysis.pcapstream import CaptureError, CaptureReader
from mvpn_lab.analysis.phases import MILESTONES, NA, MilestoneResult, find_milestones
from mvpn_lab.analysis.processing import daemon_views
from mvpn_lab.analysis.rundir import Configuration, Events, Rep, RunFolder, load_events, load_run, schema
from mvpn_lab.analysis.signals import DataHit, Signal
from mvpn_lab.vocabulary import Direction

CSV_COLUMNS = (
    "config",
    "rep",
    "direction",
    "total_s",
    "data_resumed_s",
    "ra_s",
    "bu_ha_s",
    "ba_ha_s",
    "coti_s",
    "cot_s",
    "bu_cn_s",
    "next_tcp_s",
    "bu_retransmissions",
    "status",
)
MAX_SIGNALLING_LISTED = 60


@dataclass
class HandoverResult:
    config: Configuration
    rep: int
    index: int
    direction: Direction | Literal[""]  # "": a placeholder for a repetition without handovers
    t0: float | None
    from_ssid: str = ""
    to_ssid: str = ""
    associated_s: float | None = None
    milestones: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(MILESTONES))
    phases: dict[str, float | str | None] = field(default_factory=dict)
    total_s: float | None = None
    data_resumed_s: float | None = None
    data_path: str | None = None
    bu_retransmissions: int = 0
    ba_statuses: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cn: dict[str, Any] = field(default_factory=dict)
    signalling: list[dict[str, Any]] = field(default_factory=list)
    daemon: dict[str, Any] = field(default_factory=dict)  # the daemons' processing times (processing.py)

    def __post_init__(self) -> None:
        if not self.phases:
            ro = self.config.mip6 == "ro"
            self.phases = {m: (None if ro or m not in ("coti", "cot", "bu_cn") else NA) for m in MILESTONES}

    @property
    def status(self) -> str:
        if not self.reasons:
            return "ok"
        return "incomplete:" + ";".join(dict.fromkeys(self.reasons))

    @property
    def complete(self) -> bool:
        return not self.reasons


@dataclass
class RepResult:
    config: Configuration
    number: int
    path: Path
    handovers: list[HandoverResult] = field(default_factory=list)
    clock: ClockOffset | None = None
    transfer: dict[str, Any] = field(default_factory=dict)
    captures: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class RunAnalysis:
    folder: RunFolder
    reps: list[RepResult]
    warnings: list[Warning_]
    keys_used: bool = False

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def handovers(self) -> list[HandoverResult]:
        return [h for rep in self.reps for h in rep.handovers]

    @property
    def exit_code(self) -> int:
        return 0 if all(h.complete for h in self.handovers) else 1


# ---------------------------------------------------------------------------------------------
def _rel(t: float | None, t0: float) -> float | None:
    return None if t is None else t - t0


class _RepAnalyser:
    def __init__(
        self, folder: RunFolder, rep: Rep, keys: dict[int, EspKey] | None, diag: Diagnostics
    ) -> None:
        self.folder = folder
        self.rep = rep
        self.config = rep.config
        self.keys = keys
        self.diag = diag

    def _checksum(self, path: Path) -> str | None:
        try:
            rel = path.relative_to(self.folder.path).as_posix()
        except ValueError:
            return None
        return self.folder.checksums.get(rel)

    def placeholder(self, reason: str, events: Events | None = None) -> RepResult:
        result = RepResult(self.config, self.rep.number, self.rep.path)
        if events is not None:
            result.transfer = events.transfer
        result.handovers.append(HandoverResult(self.config, self.rep.number, 0, "", None, reasons=[reason]))
        return result

    def run(self) -> RepResult:
        events = load_events(self.rep.path / "events.json", self.diag, self.folder.home_ssid)
        if isinstance(events, str):
            return self.placeholder(events)
        if not events.handovers:
            self.diag.warn(self.rep.path / "events.json", "lists no handovers")
            return self.placeholder("no-handovers", events)
        result = RepResult(self.config, self.rep.number, self.rep.path, transfer=events.transfer)
        if events.transfer and events.transfer.get("sha256_ok") is False:
            self.diag.warn(self.rep.path / "events.json", "the transfer's sha256 check failed")
        windows = make_windows(events.handovers, self.folder.addresses)
        window_reasons: dict[int, list[str]] = {i: [] for i in range(len(windows))}
        mn_pass, mn_info = self._mn_pass(windows, window_reasons)
        result.captures["mn"] = mn_info
        outcomes = [
            find_milestones(w.signals, w.t0, w.marker, self.config.mip6, w.event.direction) for w in windows
        ]
        clock, cn_pass, cn_info = self._cn_pass(mn_pass, windows, outcomes, window_reasons)
        result.clock = clock
        result.captures["cn"] = cn_info
        for i, (window, outcome) in enumerate(zip(windows, outcomes, strict=True)):
            if mn_pass is None:  # no MN capture: the capture's reason says it all
                outcome.reasons.clear()
            result.handovers.append(self._handover(i, window, outcome, window_reasons[i], clock, cn_pass))
        self._capture_losses(events, result)
        return result

    def _capture_losses(self, events: Events, result: RepResult) -> None:
        """tcpdump's 'dropped by kernel' count: packets the host received but the capture lost, so a
        message missing from the capture may still have arrived. Said once per capture, and beside
        every handover that misses a message."""
        for role in ("mn", "cn"):
            dropped = events.capture_stats.get(role, {}).get("packets_dropped")
            if dropped is None:
                continue
            result.captures.setdefault(role, {})["packets_dropped"] = dropped
            if not dropped:
                continue
            self.diag.warn(
                self.rep.capture(role),
                f"tcpdump lost {dropped} packet(s) the host received (dropped by kernel: buffer full)",
            )
            for handover in result.handovers:
                if any(r.startswith("missing-") for r in handover.reasons):
                    handover.notes.append(
                        f"the {role.upper()} capture lost {dropped} packet(s) (tcpdump: dropped by kernel); "
                        "a missing message may have been lost to the capture, not on the network"
                    )

    # -- MN capture -------------------------------------------------------------------------
    def _mn_pass(
        self, windows: list[Window], window_reasons: dict[int, list[str]]
    ) -> tuple[MobileNodePass | None, dict[str, Any]]:
        path = self.rep.capture("mn")
        problems = Problems()
        expected = self._checksum(path)
        info: dict[str, Any] = {"file": path.name}
        try:
            reader = CaptureReader(path, sha256=expected is not None)
        except CaptureError as exc:
            self.diag.warn(path, exc.message)
            for reasons in window_reasons.values():
                reasons.append(f"{path.name}-{exc.reason}")
            info["error"] = exc.message
            return None, info
        scanner = MobileNodePass(self.config, self.folder.addresses, windows, problems, self.keys)
        with reader:
            scanner.run(reader.packets())
        for problem in reader.problems:
            problems.add(problem.reason, problem.message)
        self.diag.report_problems(path, problems)
        disorder = reader.backwards_line()
        if disorder is not None:
            # Times went backwards: each window's packets are taken in time order (a second pass).
            self.diag.warn(path, f"{disorder}; each handover's packets were taken in time order")
            info["out_of_order_records"] = reader.backwards
            with CaptureReader(path) as again:
                scanner.reorder(again.packets())
        record_problems = [(ts, slug) for ts, slug in reader.problems.times if slug != "truncated"]
        info.update(
            format=reader.format,
            records=reader.records,
            first_ts=reader.first_ts,
            last_ts=reader.last_ts,
            decrypted_esp=scanner.decrypted,
        )
        if expected is not None and reader.sha256 is not None and reader.sha256 != expected:
            self.diag.warn(path, "sha256 differs from the one in manifest.json (file changed since the run?)")
            info["sha256_mismatch"] = True
        for i, window in enumerate(windows):
            reasons = window_reasons[i]
            for slug in window.problems:
                reasons.append(f"{path.name}-{slug}")
            for ts, slug in record_problems:
                if window.t0 <= ts < window.end and f"{path.name}-{slug}" not in reasons:
                    reasons.append(f"{path.name}-{slug}")
            if reader.truncated and (reader.last_ts is None or window.end > reader.last_ts):
                reasons.append(f"{path.name}-truncated")
            if window.first_index is None and not reader.truncated:
                reasons.append(f"{path.name}-no-packets-after-handover")
        return scanner, info

    # -- CN capture -------------------------------------------------------------------------
    def _cn_pass(
        self,
        mn_pass: MobileNodePass | None,
        windows: list[Window],
        outcomes: list[MilestoneResult],
        window_reasons: dict[int, list[str]],
    ) -> tuple[ClockOffset | None, CorrespondentPass | None, dict[str, Any]]:
        path = self.rep.capture("cn")
        info: dict[str, Any] = {"file": path.name}
        if mn_pass is None:
            return None, None, info
        wanted: set[bytes] = set(mn_pass.samples)
        for window, outcome in zip(windows, outcomes, strict=True):
            for sig in window.signals:
                if sig.key is not None:
                    wanted.add(sig.key)
            for hit in (*outcome.packets.values(), outcome.data_resumed):
                if isinstance(hit, DataHit) and hit.key is not None:
                    wanted.add(hit.key)
        problems = Problems()
        expected = self._checksum(path)
        try:
            reader = CaptureReader(path, sha256=expected is not None)
        except CaptureError as exc:
            self.diag.warn(path, exc.message + ("" if exc.reason != "missing" else "; no CN cross-check"))
            for reasons in window_reasons.values():
                reasons.append(f"{path.name}-{exc.reason}")
            info["error"] = exc.message
            return None, None, info
        cn_pass = CorrespondentPass(wanted, problems)
        with reader:
            cn_pass.run(reader.packets())
        for problem in reader.problems:
            problems.add(problem.reason, problem.message)
        self.diag.report_problems(path, problems)
        disorder = reader.backwards_line()
        if disorder is not None:  # the CN's times are looked up per packet: order does not matter
            self.diag.warn(path, disorder)
            info["out_of_order_records"] = reader.backwards
        if expected is not None and reader.sha256 is not None and reader.sha256 != expected:
            self.diag.warn(path, "sha256 differs from the one in manifest.json (file changed since the run?)")
            info["sha256_mismatch"] = True
        record_problems = [
            (ts, slug) for ts, slug in (*problems.times, *reader.problems.times) if slug != "truncated"
        ]
        clock = estimate_offset(mn_pass.samples, cn_pass.times, cn_pass.resent)
        if clock.method == "none":
            self.diag.warn(
                path, "no packet seen in both captures: MN-CN clock offset unknown, CN times not used"
            )
        elif clock.method == "inconsistent":
            self.diag.warn(
                path,
                f"the {clock.inconsistent_samples} packets seen in both captures give no consistent "
                "round trip: MN-CN clock offset unknown, CN times not used",
            )
        elif clock.inconsistent_samples:
            self.diag.warn(
                path,
                f"{clock.inconsistent_samples} packet(s) seen in both captures gave a negative round trip "
                "with the others (two transmissions of the same bytes?) and were left out of the "
                "MN-CN clock offset",
            )
        info.update(
            format=reader.format, records=reader.records, first_ts=reader.first_ts, last_ts=reader.last_ts
        )
        shift = clock.offset_s or 0.0
        for i, window in enumerate(windows):
            reasons = window_reasons[i]
            for ts, slug in record_problems:
                if window.t0 <= ts + shift < window.end and f"{path.name}-{slug}" not in reasons:
                    reasons.append(f"{path.name}-{slug}")
            if reader.truncated and (reader.last_ts is None or window.end > reader.last_ts + shift):
                reasons.append(f"{path.name}-truncated")
        return clock, cn_pass, info

    # -- one handover ------------------------------------------------------------------------
    def _handover(
        self,
        i: int,
        window: Window,
        outcome: MilestoneResult,
        input_reasons: list[str],
        clock: ClockOffset | None,
        cn_pass: CorrespondentPass | None,
    ) -> HandoverResult:
        event = window.event
        t0 = event.t0
        result = HandoverResult(
            self.config,
            self.rep.number,
            i,
            event.direction,
            t0,
            event.from_ssid,
            event.to_ssid,
            _rel(event.associated_at, t0),
            milestones={name: _rel(value, t0) for name, value in outcome.times.items()},
            phases=outcome.phases,
            total_s=outcome.total_s,
            data_resumed_s=outcome.data_resumed_s,
            bu_retransmissions=outcome.bu_retransmissions,
            ba_statuses=outcome.ba_statuses,
            reasons=[*input_reasons, *outcome.reasons],
            notes=list(outcome.notes),
        )
        next_hit = outcome.packets.get("next_tcp")
        if isinstance(next_hit, DataHit):
            result.data_path = next_hit.path
        result.signalling = [
            {"t_s": round(sig.ts - t0, 6), **sig.describe()} for sig in window.signals[:MAX_SIGNALLING_LISTED]
        ]
        result.cn = self._cn_view(window, outcome, clock, cn_pass, result.notes)
        return result

    def _cn_view(
        self,
        window: Window,
        outcome: MilestoneResult,
        clock: ClockOffset | None,
        cn_pass: CorrespondentPass | None,
        notes: list[str],
    ) -> dict[str, Any]:
        if cn_pass is None or clock is None:
            return {"available": False}
        t0 = window.t0
        view: dict[str, Any] = {
            "available": True,
            "clock": "MN clock (CN capture time + offset)",
            "offset_s": clock.offset_s,
        }

        def sent(hit: Signal | DataHit | None) -> float | None:
            if hit is None or hit.key is None:
                return None
            return _rel(cn_time_for(cn_pass.times.get(hit.key), hit.ts, clock), t0)

        view["data_resumed_sent_s"] = sent(outcome.data_resumed)
        next_tcp = outcome.packets.get("next_tcp")
        view["next_tcp_sent_s"] = sent(next_tcp if isinstance(next_tcp, DataHit) else None)
        resumed = outcome.data_resumed
        if resumed is not None and resumed.key is not None and not cn_pass.times.get(resumed.key):
            notes.append("the first data packet after the handover is not in the CN capture")
        if self.config.mip6 == "ro":
            bu = outcome.packets.get("bu_cn")
            cot = outcome.packets.get("cot")
            coti = outcome.packets.get("coti")
            view["coti_received_s"] = sent(coti if isinstance(coti, Signal) else None)
            view["cot_sent_s"] = sent(cot if isinstance(cot, Signal) else None)
            view["bu_cn_received_s"] = sent(bu if isinstance(bu, Signal) else None)
            if isinstance(bu, Signal) and bu.key is not None:
                saw = bool(cn_pass.times.get(bu.key))
                view["saw_bu"] = saw
                if not saw:
                    notes.append("the CN capture has no trace of the Binding Update to the CN")
                if bu.flags & 0x8000:
                    bu_cn_ts = cn_pass.times.get(bu.key) or []
                    answered = any(
                        e.mh_type == MH_BA and e.seq == bu.seq and (not bu_cn_ts or e.ts >= bu_cn_ts[0])
                        for e in cn_pass.mobility
                    )
                    view["sent_ba"] = answered
                    if not answered:
                        notes.append("the CN did not answer the Binding Update (ack requested) with a BA")
            if isinstance(cot, Signal) and cot.key is not None:
                view["answered_coti"] = bool(cn_pass.times.get(cot.key))
        return view


def analyze_run(
    run_dir: Path | str,
    keys: dict[int, EspKey] | None = None,
    diag: Diagnostics | None = None,
) -> RunAnalysis:
    """Analyse every repetition of a run folder (raises LabError, exit 2, if it is not one)."""
    run_path = Path(run_dir)
    diag = diag or Diagnostics()
    folder = load_run(run_path, diag)
    if keys:
        for path in folder.path.rglob("*key*"):
            if path.suffix in (".yaml", ".yml", ".json"):
                diag.warn(path, "looks like a keys file inside the run folder; keys must not be stored there")
    reps: list[RepResult] = []
    for config in folder.configurations:
        for rep in folder.reps.get(config.id, []):
            reps.append(_RepAnalyser(folder, rep, keys, diag).run())
    _daemon_times(folder, reps, diag)
    return RunAnalysis(folder, reps, diag.warnings, keys_used=bool(keys))


def _daemon_times(folder: RunFolder, reps: list[RepResult], diag: Diagnostics) -> None:
    """Each handover's view of the daemons' processing times (analysis/processing.py)."""
    answers, skipped = schema().read_answers(folder.path)
    if skipped:
        diag.warn(
            folder.path / schema().DAEMON_LOGS,
            f"{skipped} line(s) of the daemons' event logs unreadable or with bad answer fields; skipped",
        )
    if not answers:
        return
    raw = folder.addresses.home_agent
    home_agent = str(ipaddress.IPv6Address(raw)) if raw else None
    for rep in reps:
        views = daemon_views(
            [h.t0 for h in rep.handovers],
            answers,
            [h.milestones.get("bu_ha") for h in rep.handovers],
            home_agent,
        )
        for handover, view in zip(rep.handovers, views, strict=True):
            handover.daemon = view


# ---------------------------------------------------------------------------------------------
def _fmt(value: float | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if math.isnan(value):
        return ""
    return f"{value:.6f}"


def csv_rows(analysis: RunAnalysis) -> list[dict[str, str]]:
    rows = []
    for h in analysis.handovers:
        row = {
            "config": h.config.id,
            "rep": str(h.rep),
            "direction": h.direction,
            "total_s": _fmt(h.total_s),
            "data_resumed_s": _fmt(h.data_resumed_s),
        }
        for name in MILESTONES:
            row[f"{name}_s"] = _fmt(h.phases.get(name))
        row["bu_retransmissions"] = str(h.bu_retransmissions)
        row["status"] = h.status
        rows.append(row)
    return rows


def write_csv(analysis: RunAnalysis, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(csv_rows(analysis))


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def handover_details(analysis: RunAnalysis) -> dict[str, Any]:
    """Everything behind the CSV, for handovers.json and the report."""
    reps = []
    for rep in analysis.reps:
        reps.append(
            {
                "config": rep.config.id,
                "rep": rep.number,
                "clock_offset": rep.clock.as_dict() if rep.clock else None,
                "captures": rep.captures,
                "transfer": rep.transfer,
                "handovers": [
                    {
                        "index": h.index,
                        "direction": h.direction,
                        "from_ssid": h.from_ssid,
                        "to_ssid": h.to_ssid,
                        "t0": h.t0,
                        "associated_s": h.associated_s,
                        "status": h.status,
                        "total_s": h.total_s,
                        "data_resumed_s": h.data_resumed_s,
                        "next_tcp_path": h.data_path,
                        "milestones_s": h.milestones,
                        "phases_s": h.phases,
                        "bu_retransmissions": h.bu_retransmissions,
                        "ba_statuses": h.ba_statuses,
                        "notes": h.notes,
                        "cn_view": h.cn,
                        "signalling": h.signalling,
                        "daemon": h.daemon,
                    }
                    for h in rep.handovers
                ],
            }
        )
    return _round(
        {
            # the run folder's schema (plugins/module_utils/runfolder.py: check_handovers)
            "schema_version": schema().SCHEMA_VERSION,
            "test": analysis.folder.test,
            "run": analysis.folder.run,
            "analyser": {"version": __version__, "esp_keys_given": analysis.keys_used},
            "reps": reps,
            "warnings": [w.line() for w in analysis.warnings],
        }
    )


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None: JSON has neither."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def write_details(analysis: RunAnalysis, path: Path) -> None:
    # _round leaves no NaN or infinity; allow_nan=False makes sure the file is valid JSON
    text = json.dumps(handover_details(analysis), indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
