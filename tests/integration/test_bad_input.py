"""Bad inventory input stops ``playbooks/validate.yml`` with one clear line, before any host is touched.

Each case runs the real ``ansible-playbook`` on validate.yml with the default inventory
(inventories/virtual, from ansible.cfg) and extra-vars that break one thing. Host contact
is made impossible and detectable: every host is pointed at 192.0.2.1 (TEST-NET-1) over
``ssh``, and the ssh executable is a stub that records its arguments and fails, so any
task that needed a host would show as UNREACHABLE and leave a record.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
INVENTORY = ROOT / "inventories/virtual"
LAB_HOSTS = ("mn", "ha", "fn", "cn", "impair")


def _group_vars(name: str) -> dict:
    """The collection's copy of the shared data (playbooks/vars/NAME), which both inventories use."""
    return yaml.safe_load((ROOT / "playbooks/vars" / name).read_text())


def _role_option(role: str, suffix: str) -> str:
    """The name of a role's option ending in suffix (roles may prefix their variables)."""
    spec = yaml.safe_load((ROOT / "roles" / role / "meta/argument_specs.yml").read_text())
    names = [name for name in spec["argument_specs"]["main"]["options"] if name.endswith(suffix)]
    assert len(names) == 1, f"{role}: options ending in {suffix}: {names}"
    return names[0]


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, ssh_log: Path) -> None:
        self.returncode = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.ssh_calls = ssh_log.read_text().splitlines() if ssh_log.exists() else []

    def lines_with(self, *words: str) -> list[str]:
        return [line for line in self.output.splitlines() if all(word in line for word in words)]


@pytest.fixture
def validate(tmp_path):
    """Run validate.yml with extra-vars (a dict, passed as a JSON file) and more arguments."""
    ssh_log = tmp_path / "ssh-calls.log"
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{ssh_log}"\n'
        'echo "ssh: connect to host 192.0.2.1 port 22: Connection timed out" >&2\n'
        "exit 255\n"
    )
    fake_ssh.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(
        PATH=f"{ANSIBLE_PLAYBOOK.parent}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp_path / "cp"),
    )
    no_contact = {
        "ansible_host": "192.0.2.1",
        "ansible_connection": "ssh",
        "ansible_ssh_executable": str(fake_ssh),
        "ansible_ssh_common_args": "-oConnectTimeout=1",
    }

    def run(extra_vars: dict | None = None, *args: str, playbook: str = "playbooks/validate.yml") -> Run:
        argv = [str(ANSIBLE_PLAYBOOK), playbook, "-e", json.dumps(no_contact)]
        if extra_vars is not None:
            vars_file = tmp_path / "extra-vars.json"
            vars_file.write_text(json.dumps(extra_vars, ensure_ascii=False))
            argv += ["-e", f"@{vars_file}"]
        argv += list(args)
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        return Run(proc, ssh_log)

    return run


def _assert_no_host_contacted(run: Run) -> None:
    assert "UNREACHABLE" not in run.output
    assert run.ssh_calls == []
    assert "Traceback" not in run.output


def _assert_rejected(run: Run, *words: str) -> str:
    """validate.yml failed, and one output line holds all of words (variable and expectation)."""
    _assert_no_host_contacted(run)
    assert run.returncode != 0, run.output
    lines = run.lines_with(*words)
    assert lines, f"no single line contains all of {words!r} in:\n{run.output}"
    return lines[0]


# --- guard and positive control ------------------------------------------------------


def test_the_no_contact_guard_detects_a_module_run(validate, tmp_path):
    """A play that does need a host shows as UNREACHABLE and reaches the ssh stub."""
    playbook = tmp_path / "contact.yml"
    playbook.write_text("- hosts: mn\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n")
    run = validate(None, playbook=str(playbook))
    assert run.returncode != 0
    assert "UNREACHABLE" in run.output
    assert run.ssh_calls, "the ssh stub was not called"


def test_default_inventory_is_valid(validate):
    run = validate()
    _assert_no_host_contacted(run)
    assert run.returncode == 0, run.output
    for host in LAB_HOSTS:
        assert run.lines_with(f"{host} ", "failed=0", "unreachable=0"), f"{host} missing from the recap"


# --- one broken thing each -------------------------------------------------------------


def test_malformed_ipv6_prefix(validate):
    plans = _group_vars("topology.yml")["mvpn_address_plans"]
    plans["paper"]["backbone"] = "fec0:106:25000::/64"
    run = validate({"mvpn_address_plans": plans})
    _assert_rejected(
        run,
        "mvpn_address_plans.paper.backbone:",
        "'fec0:106:25000::/64' is not an IPv6 prefix",
        "(expected an address/length such as",
    )


def test_prefix_with_host_bits(validate):
    plans = _group_vars("topology.yml")["mvpn_address_plans"]
    plans["paper"]["home"] = "fec0:106:2700::1/64"
    run = validate({"mvpn_address_plans": plans})
    _assert_rejected(
        run, "mvpn_address_plans.paper.home:", "has host bits set", "expected the network address"
    )


def test_ssid_over_32_bytes(validate):
    networks = _group_vars("topology.yml")["mvpn_wlan_networks"]
    networks[0]["ssid"] = "L" * 33
    run = validate({"mvpn_wlan_networks": networks})
    _assert_rejected(run, "mvpn_wlan_networks[0].ssid:", "is 33 bytes", "(expected 1 to 32 bytes)")


def test_multibyte_ssid_over_32_bytes(validate):
    networks = _group_vars("topology.yml")["mvpn_wlan_networks"]
    ssid = "Café-Zürich-Größe-Ångström-ñé"  # 29 characters, 35 bytes in UTF-8
    assert len(ssid) <= 32 < len(ssid.encode())
    networks[1]["ssid"] = ssid
    run = validate({"mvpn_wlan_networks": networks})
    line = _assert_rejected(
        run, "mvpn_wlan_networks[1].ssid:", f"is {len(ssid.encode())} bytes", "(expected 1 to 32 bytes)"
    )
    assert ssid in line  # shown as written, not as \u escapes


@pytest.mark.parametrize(
    ("role", "suffix"),
    [("radvd", "radvd_mode"), ("topology", "mn_addressing")],
)
def test_unknown_role_mode(validate, role, suffix):
    variable = _role_option(role, suffix)
    run = validate({variable: "foo"})
    line = _assert_rejected(
        run, f"role {role}:", f"value of {variable} must be one of: dynamic, static", "got: foo"
    )
    assert re.search(rf"\b({'|'.join(LAB_HOSTS)}): role {role}: value of {variable} ", line)  # names the host
    # the error is reported without dumping the role's whole argument spec
    assert "argument_spec_data" not in run.output and "...ignoring" not in run.output


def test_missing_interface_name(validate):
    run = validate({"mvpn_interfaces": {"home": "wlan0"}}, "--limit", "ha")
    _assert_rejected(
        run, "mvpn_interfaces.backbone: missing on ha", "(expected the name of its interface on the backbone"
    )


def test_missing_wireless_interface_on_the_mobile_node(validate):
    run = validate({"mvpn_interfaces": {"backbone": "eth0"}}, "--limit", "mn")
    _assert_rejected(run, "mvpn_interfaces.wireless: missing on mn", "(expected the WLAN interface name")


def test_unknown_figure(validate):
    run = validate({"mvpn_topology_figure": "fig9"})
    _assert_rejected(
        run,
        "mvpn_topology_figure: 'fig9' is not a figure of mvpn_topology_figures",
        "(expected one of: fig1, fig5)",
    )


# --- the lab model (mvpn_lab_model): built from the collection's topology data and the inventory's


def test_mn_token_that_does_not_fit_the_prefix(validate):
    run = validate({"mvpn_mn_token": "fec0::1"})
    _assert_rejected(run, "mvpn_mn_token:", "does not fit in the host part of")


def test_missing_tunnel_inner_interface(validate):
    inner = _group_vars("topology.yml")["mvpn_tunnel_inner"]
    del inner["cn"]["interface"]
    run = validate({"mvpn_tunnel_inner": inner})
    _assert_rejected(run, "mvpn_tunnel_inner.cn.interface: missing", "(expected the dummy interface's name")


def test_no_network_for_the_home_agent(validate):
    networks = [n for n in _group_vars("topology.yml")["mvpn_wlan_networks"] if n["node"] != "ha"]
    run = validate({"mvpn_wlan_networks": networks})
    _assert_rejected(run, "mvpn_wlan_networks: no network with node: ha", "home agent")


def test_an_override_of_one_variable_reaches_the_model(validate, tmp_path):
    """-e mvpn_address_plan=ula changes the published model; the rest is the collection's data."""
    playbook = tmp_path / "show.yml"
    playbook.write_text(
        f"- ansible.builtin.import_playbook: {ROOT}/playbooks/validate.yml\n"
        "- hosts: mn\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.debug:\n"
        '        msg: "model {{ mvpn_lab_model.home_address }} {{ mvpn_lab_model.correspondent_inner }}"\n'
    )
    run = validate({"mvpn_address_plan": "ula"}, playbook=str(playbook))
    _assert_no_host_contacted(run)
    assert run.returncode == 0, run.output
    assert run.lines_with("model fd00:106:2700:0:20c:30ff:febb:f0b6 fd00:0:0:1000::10"), run.output
