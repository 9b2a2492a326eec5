"""The handover tests' plan: the configuration matrix, each test's settings, and the selection.

One matrix for the playbooks and the runner: ``mvpn_handover_configurations`` in
``playbooks/vars/handover_matrix.yml``. Each test's defaults come from ``playbooks/vars/<test>.yml``;
only plain values are read (a Jinja string such as ``"{{ mvpn_test2_only }}"`` is left out).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mvpn_lab.errors import LabError

MATRIX_FILE = "playbooks/vars/handover_matrix.yml"
MATRIX_VARIABLE = "mvpn_handover_configurations"

#: The handover tests, by playbook name, with their number (the N of ``mvpn_test<N>_*``).
TESTS: dict[str, int] = {"test2_wlan": 2, "test3_gprs": 3, "test4_umts": 4}
ALIASES: dict[str, str] = {f"test{n}": name for name, n in TESTS.items()}


def canonical_test(name: str) -> str:
    """``test2`` -> ``test2_wlan``; a test that is not a handover test is a one-line error."""
    if name in TESTS:
        return name
    if name in ALIASES:
        return ALIASES[name]
    raise LabError(
        f"TEST: expected {', '.join(TESTS)} (or {', '.join(ALIASES)}), got {name!r}",
    )


def variable(test: str, suffix: str) -> str:
    """``variable("test3_gprs", "repetitions")`` -> ``mvpn_test3_repetitions``."""
    return f"mvpn_test{TESTS[test]}_{suffix}"


def rep_name(configuration: str, repetition: int) -> str:
    """The name of a repetition, as the playbook's folders and events.json paths read."""
    return f"{configuration}/rep-{repetition:02d}"


@dataclass(frozen=True)
class Plan:
    """What a run does: each configuration (in matrix order) with repetitions 1..N."""

    test: str
    configurations: tuple[str, ...]
    repetitions: int

    @property
    def total(self) -> int:
        return len(self.configurations) * self.repetitions

    def names(self) -> Iterator[str]:
        """``CONFIG/rep-NN`` of every repetition, in the order the playbook runs them."""
        for config in self.configurations:
            for rep in range(1, self.repetitions + 1):
                yield rep_name(config, rep)


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise LabError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise LabError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None


def read_matrix_rows(root: Path) -> dict[str, dict[str, Any]]:
    """The rows of ``mvpn_handover_configurations`` by id, in file order."""
    path = root / MATRIX_FILE
    data = _load_yaml(path)
    rows = data.get(MATRIX_VARIABLE) if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise LabError(f"{path}: expected a non-empty list {MATRIX_VARIABLE}")
    found: dict[str, dict[str, Any]] = {}
    for number, row in enumerate(rows, 1):
        rid = row.get("id") if isinstance(row, dict) else None
        if not isinstance(rid, str) or not rid:
            raise LabError(f"{path}: {MATRIX_VARIABLE}[{number}] has no id")
        if rid in found:
            raise LabError(f"{path}: {MATRIX_VARIABLE}: id {rid!r} appears twice")
        found[rid] = dict(row)
    return found


def read_matrix(root: Path) -> list[str]:
    """The configuration ids of ``mvpn_handover_configurations``, in file order."""
    return list(read_matrix_rows(root))


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _plain(value: Any) -> Any:
    """``value`` without its Jinja strings (at any depth)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not _is_template(v)}
    if isinstance(value, list):
        return [_plain(v) for v in value if not _is_template(v)]
    return value


def read_test_settings(root: Path, test: str) -> dict[str, Any]:
    """The plain values of ``playbooks/vars/<test>.yml``: its Jinja strings are left out."""
    path = root / "playbooks" / "vars" / f"{test}.yml"
    data = _load_yaml(path)
    if not isinstance(data, dict):
        raise LabError(f"{path}: expected a mapping of variables")
    return _plain(data)


def default_repetitions(root: Path, test: str) -> int:
    """The test's default number of repetitions (``mvpn_test<N>_repetitions``)."""
    name = variable(test, "repetitions")
    value = read_test_settings(root, test).get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LabError(
            f"playbooks/vars/{test}.yml: {name} is not a plain number >= 1 ({value!r}); give --reps"
        )
    return value


def parse_repetitions(text: str) -> int:
    """``--reps`` as given on the command line."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise LabError(f"--reps: expected a whole number >= 1, got {text!r}")
    return value


def split_ids(values: Iterable[str] | None) -> list[str]:
    """``--configs a,b --configs c`` -> ``[a, b, c]`` (blanks dropped, duplicates once)."""
    ids: list[str] = []
    for value in values or ():
        for part in value.split(","):
            part = part.strip()
            if part and part not in ids:
                ids.append(part)
    return ids


def select(matrix: Sequence[str], wanted: Sequence[str]) -> tuple[str, ...]:
    """The wanted ids in matrix order; an unknown id is a one-line error naming ``--configs``."""
    unknown = [i for i in wanted if i not in matrix]
    if unknown:
        raise LabError(
            f"--configs: unknown configuration id{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(i) for i in unknown)}; valid ids: {', '.join(matrix)}"
        )
    if not wanted:
        return tuple(matrix)
    return tuple(i for i in matrix if i in wanted)


def plan_from_options(
    root: Path, test: str, configs: Iterable[str] | None, reps: str | None, quick: bool
) -> Plan:
    """The plan of a new run from ``--configs``, ``--reps`` and ``--quick``."""
    if quick and reps is not None:
        raise LabError("--quick: runs one repetition per configuration; not with --reps")
    repetitions = 1 if quick else parse_repetitions(reps) if reps is not None else None
    wanted = split_ids(configs)
    if configs and not wanted:
        raise LabError("--configs: no configuration id given")
    configurations = select(read_matrix(root), wanted)
    if repetitions is None:
        repetitions = default_repetitions(root, test)
    return Plan(test, configurations, repetitions)
