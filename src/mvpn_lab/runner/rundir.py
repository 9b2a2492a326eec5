"""What a handover test's run folder says: its plan, its complete repetitions, its outcome.

A run folder is ``results/<test>/<UTC>/`` with ``manifest.json`` (the plan: ``configurations``, each
with an ``id``, and ``repetitions``), one ``<config>/rep-NN/`` folder per repetition, complete when it
holds ``events.json`` (written last), and, once the playbook finished, ``outcome.json``
(``mvpn.lab.run_folder`` with ``outcome_from_events``). Everything is read through the run folder's
schema, the collection's ``plugins/module_utils/runfolder.py`` (imported by name:
:func:`mvpn_lab.collection.module_utils`), which also holds the pass rule of a repetition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from mvpn_lab.collection import module_utils
from mvpn_lab.errors import LabError
from mvpn_lab.runner.matrix import Plan


def schema() -> ModuleType:
    """The run folder's schema (``plugins/module_utils/runfolder.py``), the one
    ``mvpn.lab.run_folder`` writes with."""
    return module_utils("runfolder")


def plan_of(manifest: Any, test: str) -> Plan | None:
    """The plan recorded in a manifest, or None when it has none."""
    plan = schema().plan_of(manifest)
    if plan is None:
        return None
    ids, repetitions = plan
    return Plan(test, tuple(ids), repetitions)


def read_plan(run_dir: Path, test: str) -> Plan | None:
    """The plan of a run folder (None if its manifest is missing, unusable or has no plan)."""
    runfolder = schema()
    try:
        manifest, _notes = runfolder.read_manifest(run_dir)
    except runfolder.SchemaError:
        return None
    return plan_of(manifest, test)


def _manifest_of(run_dir: Path, option: str) -> dict[str, Any]:
    """The manifest of the run folder an option names; a one-line error naming the option."""
    runfolder = schema()
    if not run_dir.is_dir():
        raise LabError(f"{option}: {run_dir} is not a folder")
    try:
        manifest, _notes = runfolder.read_manifest(run_dir)
    except runfolder.SchemaError as exc:
        raise LabError(f"{option}: {exc}") from None
    return dict(manifest)


def resume_plan(run_dir: Path, test: str, matrix: Sequence[str]) -> Plan:
    """The plan of the run folder ``--resume`` names; anything unusable is a one-line error."""
    runfolder = schema()
    manifest = _manifest_of(run_dir, "--resume")
    manifest_path = run_dir / runfolder.MANIFEST
    recorded = manifest.get("test")
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


#: what the playbook adds to a matrix row in the manifest (mvpn.lab.with_esp_spis, the test's profile)
RECORDED_ONLY = ("esp_spis", "signalling_spis", "profile")


@dataclass(frozen=True)
class Rerun:
    """What ``mvpn-lab rerun`` reads from a run folder: the test, its plan and the code it ran."""

    test: str
    plan: Plan
    code: dict[str, Any]
    base: Path


def rerun_plan(run_dir: Path, rows: dict[str, dict[str, Any]]) -> Rerun:
    """The test and plan of ``run_dir`` to run again; a configuration whose row in today's matrix
    differs from the recorded one is a one-line error naming the field (same id, other settings)."""
    from mvpn_lab.runner.matrix import canonical_test

    runfolder = schema()
    manifest = _manifest_of(run_dir, "RUN_DIR")
    try:
        test = canonical_test(str(manifest.get("test")))
    except LabError:
        raise LabError(
            f"RUN_DIR: {run_dir} is a run of {manifest.get('test')!r}; mvpn-lab rerun reruns handover "
            "tests (Test 1: ansible-playbook mvpn.lab.test1_validation, or playbooks/test1_validation.yml "
            "in a checkout)"
        ) from None
    plan = plan_of(manifest, test)
    if plan is None:
        raise LabError(
            f"RUN_DIR: {run_dir / runfolder.MANIFEST} has no plan (configurations with ids, repetitions)"
        )
    for recorded in manifest["configurations"]:
        if not isinstance(recorded, dict):  # an id alone: nothing recorded to rerun it by
            raise LabError(
                f"configurations: {recorded} of {run_dir} records no settings (an id alone); "
                f"run it with mvpn-lab run {test} --configs {recorded} instead"
            )
        cid = recorded["id"]
        if cid not in rows:
            raise LabError(
                f"configurations: {cid} of {run_dir} is not in playbooks/vars/handover_matrix.yml any more"
            )
        was = {k: v for k, v in recorded.items() if k not in RECORDED_ONLY}
        now = rows[cid]
        for key in sorted(set(was) | set(now)):
            if was.get(key) != now.get(key):
                raise LabError(
                    f"configurations: {cid}.{key} was {was.get(key)!r} in {run_dir}, the matrix now says "
                    f"{now.get(key)!r}; check out the recorded commit to rerun it"
                )
    code = manifest.get("code")
    # beside it when it is still where the playbook put it (BASE/TEST/UTC), else results/ here
    base = run_dir.parent.parent if run_dir.parent.name == manifest.get("test") else Path("results").resolve()
    return Rerun(test, plan, code if isinstance(code, dict) else {}, base)


def completed(run_dir: Path | None, plan: Plan) -> set[str]:
    """The repetitions of the plan whose folder holds events.json."""
    if run_dir is None:
        return set()
    runfolder = schema()
    return {name for name in plan.names() if runfolder.is_complete(run_dir, name)}


def failure_reason(events: Any) -> str | None:
    """None when a repetition passed, else one line naming what failed: the rule of
    ``mvpn.lab.run_folder`` (used when the playbook stopped before writing outcome.json)."""
    reason = schema().verdict(events)["reason"]
    return None if reason is None else str(reason)


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


def outcome_of(summary: dict[str, Any], source: str = "outcome.json") -> Outcome:
    """An Outcome from the content of outcome.json (schema: module_utils/runfolder.py)."""
    outcome = Outcome(source=source)
    for entry in summary.get("repetitions") or []:
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("name"))
        if entry.get("passed") is True:
            outcome.passed.append(name)
        else:
            outcome.failed.append((name, str(entry.get("reason") or "failed")))
    outcome.missing = [str(m) for m in summary.get("missing") or []]
    return outcome


def outcome_from_folder(run_dir: Path, plan: Plan) -> Outcome:
    """The outcome built from the repetitions' events.json, when outcome.json is not (yet) there:
    the rule and the order of mvpn.lab.run_folder's outcome_from_events, over the runner's plan."""
    runfolder = schema()
    manifest = {
        "test": plan.test,
        "configurations": list(plan.configurations),
        "repetitions": plan.repetitions,
    }
    return outcome_of(runfolder.outcome(run_dir, manifest), source="events.json")
