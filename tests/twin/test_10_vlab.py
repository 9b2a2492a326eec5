"""The twin itself: idempotent up, status, cabling, pinned host key."""

from __future__ import annotations

import json
import subprocess
import time

from conftest import ROOT, cli


def test_up_on_a_running_twin_is_a_no_op(twin):
    started = time.monotonic()
    proc = cli("vlab", "up")
    assert proc.returncode == 0, proc.stderr
    assert "already running" in proc.stdout
    assert time.monotonic() - started < 30
    assert json.loads(cli("vlab", "status", "--json").stdout)["pid"] == twin["pid"]


def test_status_lists_one_namespace_per_lab_host(twin):
    assert twin["lab_hosts"] == ["cn", "fn", "ha", "impair", "mn"]


def test_cabling_mirrors_the_hardware(twin):
    expected = {
        "mn": {"wlan0"},
        "ha": {"eth0", "wlan0"},
        "fn": {"eth0", "eth2", "wlan0"},
        "cn": {"eth0"},
        "impair": {"eth0", "eth1"},
    }
    for host, links in expected.items():
        proc = cli("vlab", "ssh", "--host", host, "--", "ip", "-j", "link", "show")
        assert proc.returncode == 0, proc.stderr
        names = {link["ifname"] for link in json.loads(proc.stdout)}
        assert links <= names, f"{host}: {sorted(names)}"
    # The three radios are mac80211_hwsim phys, one per wireless lab host.
    # ssh hands the remote shell one command line.
    proc = cli("vlab", "ssh", "--", "for n in ha fn mn; do ip netns exec $n iw dev; done")
    assert proc.stdout.count("Interface wlan0") == 3


def test_host_key_is_pinned(twin, tmp_path):
    state = twin["state_dir"]
    # With the lab's known_hosts the connection is accepted...
    ok = subprocess.run(
        ["ssh", "-F", f"{state}/ssh_config", "-o", "ControlPath=none", "mvpn-twin", "true"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    # ...and with any other host key on record it is refused.
    other = tmp_path / "known_hosts"
    other.write_text(
        "mvpn-twin ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKcRgzbGIgh4k3+B4x9QpXgD3cUvTT1gx0W5uGQ5HfpW\n"
    )
    bad = subprocess.run(
        [
            "ssh",
            "-F",
            f"{state}/ssh_config",
            "-o",
            "ControlPath=none",
            "-o",
            f"UserKnownHostsFile={other}",
            "mvpn-twin",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode != 0
    assert "host key" in bad.stderr.lower() or "REMOTE HOST IDENTIFICATION" in bad.stderr


def test_ansible_reaches_each_lab_host_inside_its_namespace(twin):
    proc = subprocess.run(
        [
            str(ROOT / ".venv/bin/ansible"),
            "mvpn_lab",
            "-m",
            "ansible.builtin.command",
            "-a",
            "ip netns identify",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    for host in ("mn", "ha", "fn", "cn", "impair"):
        assert f"{host} | CHANGED | rc=0 >>\n{host}" in proc.stdout
