"""The strategy plugin mvpn.lab.mitogen_linear and the places that make it the default."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
FQCN = "mvpn.lab.mitogen_linear"


def test_ansible_cfg_and_every_molecule_scenario_use_it():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "ansible.cfg")
    assert cfg["defaults"]["strategy"] == FQCN
    scenarios = sorted(ROOT.glob("molecule/*/molecule.yml"))
    assert scenarios
    for path in scenarios:
        defaults = yaml.safe_load(path.read_text())["ansible"]["cfg"]["defaults"]
        assert defaults.get("strategy") == FQCN, path


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_ansible_loads_it_by_name_as_mitogen_on_the_linear_strategy():
    code = (
        "from ansible.plugins.loader import init_plugin_loader, strategy_loader; init_plugin_loader(); "
        f"cls = strategy_loader.get({FQCN!r}, class_only=True); "
        "import ansible_mitogen.strategy as m; "
        "linear = strategy_loader.get('ansible.builtin.linear', class_only=True); "
        "print(issubclass(cls, m.StrategyMixin), issubclass(cls, linear))"
    )
    proc = _fresh(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-2:] == ["True", "True"]


def test_without_mitogen_it_refuses_with_one_line_naming_the_switch():
    # ansible_mitogen made unimportable, as on a controller without the package
    code = (
        "import sys; sys.modules['ansible_mitogen'] = None; sys.modules['ansible_mitogen.strategy'] = None\n"
        "from ansible.plugins.loader import init_plugin_loader, strategy_loader; init_plugin_loader()\n"
        f"cls = strategy_loader.get({FQCN!r}, class_only=True)\n"
        "try:\n"
        "    cls(None)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__ + ': ' + str(exc))\n"
    )
    proc = _fresh(code)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("AnsibleError: strategy mvpn.lab.mitogen_linear: the Python package mitogen")
    assert "ANSIBLE_STRATEGY=linear" in line and "scripts/setup.sh" in line
