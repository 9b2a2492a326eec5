"""Who checks a new daemon configuration (mvpn.lab.mip6_config check_with), as the role's own task
files decide it: the new bundle's check-config only in the include from the role's main.yml right
after that bundle was copied; every later include (a test configuration's, from
playbooks/tasks/handover_configuration.yml) asks the running daemon, which runs that bundle by then.

``_mip6_copy`` stays registered for the rest of the play, so an expression in configure.yml that read
it directly made every later configuration start a new Python process for the check (2-4 s a write
on the twin instead of 0.8 s; fixed in 7f2dc07). The expressions are read from the task files and
evaluated with ansible-core's own templating, the way the play evaluates them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROOT = Path(__file__).resolve().parents[2]
LOADER = DataLoader()


def _tasks(path: str) -> list[dict[str, Any]]:
    return LOADER.load_from_file(str(ROOT / path))


def _include_vars(path: str, name_starts: str) -> dict[str, Any]:
    """The vars of the task in ``path`` whose name starts with ``name_starts``."""
    (task,) = [t for t in _tasks(path) if str(t.get("name", "")).startswith(name_starts)]
    return dict(task.get("vars") or {})


def _trusted(value: Any) -> Any:
    # task files are trusted templates in a play; DataLoader alone does not tag them
    return trust_as_template(value) if isinstance(value, str) else value


def _check_with(include_vars: dict[str, Any], copy_changed: bool) -> str:
    (task,) = [t for t in _tasks("roles/mip6/tasks/configure.yml") if "mvpn.lab.mip6_config" in t]
    variables = {"_mip6_copy": {"changed": copy_changed}}
    variables.update({k: _trusted(v) for k, v in include_vars.items()})
    expr = task["mvpn.lab.mip6_config"]["check_with"]
    return str(Templar(loader=LOADER, variables=variables).template(_trusted(expr)))


MAIN = ("roles/mip6/tasks/main.yml", "Configure the daemon")
LATER = ("playbooks/tasks/handover_configuration.yml", "Configure the mobile node's Mobile IPv6 daemon")
LATER_HA = ("playbooks/tasks/handover_configuration.yml", "Configure the home agent's daemon")


@pytest.mark.parametrize(
    ("include", "copy_changed", "expected"),
    [
        (MAIN, True, "bundle"),  # a new bundle: its rules, not the old running daemon's
        (MAIN, False, "daemon"),
        (LATER, True, "daemon"),  # the same play, later: the daemon runs the new bundle by then
        (LATER_HA, True, "daemon"),
        (LATER, False, "daemon"),
    ],
)
def test_check_with_is_the_bundle_only_right_after_a_new_bundle(include, copy_changed, expected):
    assert _check_with(_include_vars(*include), copy_changed) == expected
