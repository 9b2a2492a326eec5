"""What a handover test's run folder says: its plan, its complete repetitions, its outcome.

A run folder is ``results/<test>/<UTC>/`` with ``manifest.json`` (the plan: ``configurations``, each
with an ``id``, and ``repetitions``), one ``<config>/rep-NN/`` folder per repetition, complete when it
holds ``events.json`` (the playbook writes it last), and, once the playbook finished, ``outcome.json``
(``mvpn.lab.run_folder`` with ``outcome_from_events``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from mvpn_lab.collection import module_utils
from mvpn_lab.errors import LabError
from mvpn_lab.runner.matrix import Plan


def _read_json(path: Path) -> Any:
    with path.open() as fh:
        return json.load(fh)


def plan_of(manifest: Any, test: str) -> Plan | None:
    """The plan recorded in a manifest, or None when it has none."""
    if not isinstance(manifest, dict):
        return None
    rows = manifest.get("configurations")
    reps = manifest.get("repetitions")
    if not isinstance(rows, list) or not rows:
        return None
    ids = tuple(r.get("id") if isinstance(r, dict) else r for r in rows)
    if not all(isinstance(i, str) and i for i in ids):
        return None
    try:
        repetitions = int(reps)
    except (TypeError, ValueError):
        return None
    if repetitions < 1:
        return None
    return Plan(test, ids, repetitions)


def read_plan(run_dir: Path, test: str) -> Plan | None:
    """The plan of a run folder (None if its manifest is missing or has no plan)."""
    try:
        return plan_of(_read_json(run_dir / "manifest.json"), test)
    except (OSError, ValueError):
        return None


def resume_plan(run_dir: Path, test: str, matrix: Sequence[str]) -> Plan:
    """The plan of the run folder ``--resume`` names; anything unusable is a one-line error."""
    manifest_path = run_dir / "manifest.json"
    if not run_dir.is_dir():
        raise LabError(f"--resume: {run_dir} is not a folder")
    try:
        manifest = _read_json(manifest_path)
    except FileNotFoundError:
        raise LabError(f"--resume: {run_dir} is not a run folder (no manifest.json)") from None
    except (OSError, ValueError) as exc:
        raise LabError(f"--resume: cannot read {manifest_path}: {' '.join(str(exc).split())}") from None
    recorded = manifest.get("test") if isinstance(manifest, dict) else None
    if recorded != test:
        raise LabError(f"--resume: {run_dir} is a run of {recorded!r}, not of {test}")
    plan = plan_of(manifest, test)
    if plan is None:
        raise LabError(f"--resume: {manifest_path} has no plan (configurations with ids, repetitions)")
    unknown = [i for i in plan.configurations if i not in matrix]
    if unknown:
        raise LabError(
            f"--resume: configuration {', '.join(unknown)} of {run_dir} is not in "
            "playbooks/vars/handover_matrix.yml any more"
        )
    return plan


def completed(run_dir: Path | None, plan: Plan) -> set[str]:
    """The repetitions of the plan whose folder holds events.json."""
    if run_dir is None:
        return set()
    return {name for name in plan.names() if (run_dir / name / "events.json").is_file()}


def _pass_rule() -> ModuleType:
    """The collection's pass rule (``plugins/module_utils/repetition.py``), the one
    ``mvpn.lab.run_folder`` writes outcome.json with."""
    return module_utils("repetition")


def _one_line(text: Any) -> str:
    return str(_pass_rule().one_line(text))


def failure_reason(events: Any) -> str | None:
    """None when a repetition passed, else one line naming what failed: the rule of
    ``mvpn.lab.run_folder`` (used here while the run goes on, and when the playbook stopped
    before writing outcome.json)."""
    reason = _pass_rule().verdict(events)["reason"]
    return None if reason is None else str(reason)


def events_reason(path: Path) -> str | None:
    """The failure reason of a complete repetition from its events.json (None: it passed)."""
    try:
        return failure_reason(_read_json(path))
    except (OSError, ValueError) as exc:
        return f"events.json unreadable: {_one_line(exc)}"


@dataclass
class Outcome:
    """The repetitions that passed, failed (with their reason) and are missing."""

    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    source: str = "outcome.json"

    @property
    def ok(self) -> bool:
        return bool(self.passed) and not self.failed and not self.missing


def read_outcome(run_dir: Path, not_before: float | None = None) -> Outcome | None:
    """outcome.json of a run folder; None if absent, unreadable, or older than ``not_before``."""
    path = run_dir / "outcome.json"
    try:
        if not_before is not None and path.stat().st_mtime < not_before:
            return None
        data = _read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("repetitions"), list):
        return None
    outcome = Outcome()
    for entry in data["repetitions"]:
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("name"))
        if entry.get("passed") is True:
            outcome.passed.append(name)
        else:
            outcome.failed.append((name, str(entry.get("reason") or "failed")))
    outcome.missing = [str(m) for m in data.get("missing") or []]
    return outcome


def outcome_from_folder(run_dir: Path, plan: Plan) -> Outcome:
    """The outcome built from the repetitions' events.json, when outcome.json is not (yet) there."""
    outcome = Outcome(source="events.json")
    for name in plan.names():
        if not (run_dir / name / "events.json").is_file():
            outcome.missing.append(name)
            continue
        reason = events_reason(run_dir / name / "events.json")
        if reason is None:
            outcome.passed.append(name)
        else:
            outcome.failed.append((name, reason))
    return outcome
