"""playbooks/preflight.yml on the twin: it passes (hwsim radios with AP and managed modes, Debian's
stock kernel, the cabled interfaces, one shared clock), and a missing interface gives exactly one
problem line for its host, naming the interface and the inventory variable, not a traceback."""

from __future__ import annotations

import json

from conftest import BIN, run_logged, tail

HOSTS = ("mn", "ha", "fn", "cn", "impair")


def _problem_lines(out: str, host: str) -> list[str]:
    """The preflight's lines for HOST ("HOST: ..."), as the YAML result format prints them."""
    return [line.strip() for line in out.splitlines() if line.strip().startswith(f"{host}: ")]


def test_preflight_passes_on_the_twin(twin):
    argv = [str(BIN / "ansible-playbook"), "playbooks/preflight.yml"]
    code, out = run_logged("preflight", argv, timeout=900)
    assert code == 0, f"preflight failed on the twin:\n{tail(out, 80)}"
    for host in HOSTS:
        assert f"{host}: ready" in out, host
    assert "mn: clock synchronised with the correspondent node by construction" in out
    assert "Traceback" not in out


def test_preflight_names_a_missing_interface_in_one_line(twin):
    extra = {"mvpn_interfaces": {"backbone": "nosuch0"}}
    code, out = run_logged(
        "preflight-missing-interface",
        [str(BIN / "ansible-playbook"), "playbooks/preflight.yml", "--limit", "cn", "-e", json.dumps(extra)],
        timeout=900,
    )
    assert code != 0, f"preflight passed with a missing interface:\n{tail(out, 80)}"
    lines = _problem_lines(out, "cn")
    assert len(lines) == 1, f"expected one problem line for cn, got {lines}:\n{tail(out, 80)}"
    assert "nosuch0" in lines[0] and "mvpn_interfaces" in lines[0], lines[0]
    assert "cn: ready" not in out
    assert "Traceback" not in out
