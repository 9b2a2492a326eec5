"""The impairment node on the twin: netem on the real kernel, verified as the paper did with iperf
(throughput each way and RTT within 10% of the GPRS and UMTS profiles), bad input to the netem
module and the role in one line with the qdiscs untouched, and the Click backend refused in one
line where Click is not installed (the twin never has it)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import BIN, ROOT, cli, run_logged, tail

QDISCS = "sh -c 'tc -j qdisc show dev eth0; tc -j qdisc show dev eth1'"
ENV = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal", "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}


def _qdiscs() -> str:
    proc = cli("vlab", "ssh", "--host", "impair", "--", QDISCS)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_verify_impairment_within_ten_percent(twin):
    before = _qdiscs()
    code, out = run_logged(
        "verify_impairment", [str(BIN / "ansible-playbook"), "playbooks/verify_impairment.yml"], timeout=1800
    )
    assert code == 0, f"verify_impairment failed:\n{tail(out, 60)}"
    assert "impairment within 10% for gprs, umts" in out
    # every figure was measured and compared: three per profile
    for profile in ("gprs", "umts"):
        for figure in ("rtt_ms", "uplink_kbit", "downlink_kbit"):
            assert f"{profile} {figure}: measured" in out, (profile, figure)
    # the lab's own profile (wlan: no netem) is back
    assert _qdiscs() == before and "netem" not in before


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"device": "eth1", "delay_ms": 100, "jitter_ms": 200}, "jitter_ms"),
        ({"device": "eth1", "rate_kbit": 0}, "rate_kbit"),
        ({"device": "nosuch0", "delay_ms": 10}, "device"),
        ({"device": "eth1", "loss_pct": 150}, "loss_pct"),
    ],
)
def test_netem_bad_input_is_one_line_and_changes_nothing(twin, args, field):
    before = _qdiscs()
    proc = subprocess.run(
        [str(BIN / "ansible"), "impair", "-m", "mvpn.lab.netem", "-a", json.dumps(args)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env={**os.environ, **ENV},
    )  # fmt: skip
    head, sep, body = proc.stdout[proc.stdout.rfind("impair | ") :].partition(" => ")
    assert sep and "FAILED" in head, proc.stdout + proc.stderr
    msg = json.loads(body)["msg"]
    assert msg.startswith(f"{field}: ") and "\n" not in msg, msg
    assert _qdiscs() == before


def test_role_refuses_the_click_backend_without_click(twin):
    before = _qdiscs()
    code, out = run_logged(
        "impairment_click",
        [str(BIN / "ansible-playbook"), "molecule/impairment/converge.yml", "-e", "impairment_backend=click"],
        timeout=600,
    )
    assert code != 0
    assert "impairment_backend: click needs the Click modular router's userlevel driver" in out, tail(out)
    assert _qdiscs() == before


def test_role_refuses_an_unknown_profile_by_its_argument_spec(twin):
    code, out = run_logged(
        "impairment_bad_profile",
        [str(BIN / "ansible-playbook"), "molecule/impairment/converge.yml", "-e", "impairment_profile=edge"],
        timeout=600,
    )
    assert code != 0 and "impairment_profile" in out and "edge" in out, tail(out)
