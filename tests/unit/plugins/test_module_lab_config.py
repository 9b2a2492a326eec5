"""mvpn.lab.lab_config and run_folder state=configured: a host's rendered configuration in the run
folder, without secrets, never overwritten; the code version and the results folder (filters)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.mvpn.lab.plugins.filter import provenance
from ansible_collections.mvpn.lab.plugins.modules import lab_config, run_folder

ROOT = Path(__file__).resolve().parents[3]

# as the station and hostapd roles would render them with a protected WLAN (the lab's are open)
WPA = 'ctrl_interface=/run/x\nnetwork={\n    ssid="LOCAL"\n    psk="correct horse battery"\n}\n'
HOSTAPD = "interface=wlan0\nssid=LOCAL\nwpa_passphrase=s3cret-pass\nwpa_psk=00112233445566778899\n"


def _node(tmp_path):
    node = tmp_path / "etc" / "mn"
    node.mkdir(parents=True)
    (node / "wpa_supplicant.conf").write_text(WPA)
    (node / "hostapd.conf").write_text(HOSTAPD)
    (node / "mip6.yml").write_text("role: mn\nhome_address: fec0:106:2700::20\n")
    (node / "binary.dat").write_bytes(b"\xff\xfe\x00")
    (node / "sub").mkdir()
    os.mkfifo(node / "fifo")  # never opened: reading a FIFO would hang the module
    return node


def test_files_are_read_with_secrets_masked_and_odd_files_left_out(tmp_path, run_module):
    node = _node(tmp_path)
    result = run_module(lab_config, {"config_dir": str(node), "kernel": False})
    files = result["files"]
    assert sorted(files) == ["hostapd.conf", "mip6.yml", "wpa_supplicant.conf"]
    assert "correct horse" not in json.dumps(result) and "s3cret" not in json.dumps(result)
    assert "00112233445566778899" not in json.dumps(result)
    assert "    psk=<masked>\n" in files["wpa_supplicant.conf"]
    assert "wpa_passphrase=<masked>" in files["hostapd.conf"] and "ssid=LOCAL" in files["hostapd.conf"]
    assert files["mip6.yml"] == "role: mn\nhome_address: fec0:106:2700::20\n"
    assert result["skipped"] == ["binary.dat: not UTF-8 text"]
    assert result["changed"] is False


def test_a_missing_folder_gives_no_files_and_check_mode_reads_the_same(tmp_path, run_module):
    result = run_module(lab_config, {"config_dir": str(tmp_path / "none"), "kernel": False}, check=True)
    assert result["files"] == {} and result["skipped"] == []


def test_the_kernel_state_is_listed_without_keys(tmp_path, run_module, monkeypatch):
    seen = []

    def fake_run(self, argv, **kwargs):
        seen.append(argv)
        if argv[0] == "tc":
            return 1, "", "tc: command not found\n"
        return 0, " ".join(argv) + "\n", ""

    monkeypatch.setattr("ansible.module_utils.basic.AnsibleModule.run_command", fake_run)
    result = run_module(lab_config, {"config_dir": str(tmp_path / "none")})
    assert ["ip", "-6", "xfrm", "state", "list", "nokeys"] in seen  # the kernel never prints a key
    assert set(result["files"]) == {"ip-addr.txt", "ip-route.txt", "xfrm-state.txt", "xfrm-policy.txt"}
    assert result["skipped"] == ["qdisc.txt: tc qdisc show exited 1: tc: command not found"]


def test_bad_max_bytes_is_one_line(tmp_path, run_module):
    result = run_module(lab_config, {"config_dir": str(tmp_path), "max_bytes": 0})
    assert result["failed"] and result["msg"].startswith("max_bytes: ")


def _run(tmp_path, run_module):
    return run_module(run_folder, {"base": str(tmp_path), "test": "t"})["path"]


def test_configured_keeps_each_host_s_files_and_never_overwrites(tmp_path, run_module):
    path = _run(tmp_path, run_module)
    first = {"mn": {"mip6.yml": "a\n", "ip-addr.txt": "x\n"}, "cn": {"apache2.conf": "c\n"}, "fn": {}}
    args = {"state": "configured", "path": path, "configuration": "cfg", "lab_configs": first}
    result = run_module(run_folder, args)
    assert result["changed"] and result["lab_dir"] == os.path.join(path, "cfg", "lab")
    mip6 = Path(path, "cfg", "lab", "mn", "mip6.yml")
    assert mip6.read_text() == "a\n"
    assert not os.path.exists(os.path.join(path, "cfg", "lab", "fn"))  # no files, no folder
    again = run_module(run_folder, args)  # a resumed run, same lab: nothing new
    assert not again["changed"] and again["lab_dir"] == result["lab_dir"]
    changed = run_module(run_folder, dict(args, lab_configs={"mn": {"mip6.yml": "b\n"}}))
    assert changed["changed"] and changed["lab_dir"] == os.path.join(path, "cfg", "lab-2")
    assert mip6.read_text() == "a\n"  # kept
    finished = run_module(run_folder, {"state": "finished", "path": path, "summary": {}})
    kept = {"cfg/lab/mn/mip6.yml", "cfg/lab/cn/apache2.conf", "cfg/lab-2/mn/mip6.yml"}
    assert kept <= set(finished["files"])
    assert finished["mvpn_run_step"] == "finished" and result["mvpn_run_step"] == "configured"


@pytest.mark.parametrize(
    ("lab_configs", "start"),
    [
        ({"../mn": {"a": "x"}}, "lab_configs: expected a host name"),
        ({"mn": {"../../escape": "x"}}, "lab_configs.mn: expected a plain file name"),
        ({"mn": {"a": 3}}, "lab_configs.mn.a: expected text"),
        ({"mn": ["a"]}, "lab_configs.mn: expected {file name: text}"),
        ({}, "lab_configs: expected {host: {file name: text}}"),
    ],
)
def test_configured_bad_input_is_one_line_and_writes_nothing(tmp_path, run_module, lab_configs, start):
    path = _run(tmp_path, run_module)
    args = {"state": "configured", "path": path, "configuration": "cfg", "lab_configs": lab_configs}
    result = run_module(run_folder, args)
    assert result["failed"] and result["msg"].startswith(start) and "\n" not in result["msg"], result["msg"]
    assert not os.path.exists(os.path.join(path, "cfg"))


def test_code_version_of_this_checkout():
    code = provenance.code_version(str(ROOT / "playbooks"))
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    assert code["installed"] is False and code["collection"] == version
    assert code["commit"] == head.stdout.strip()
    assert isinstance(code["dirty"], bool)


def test_code_version_of_an_installed_collection(tmp_path):
    installed = tmp_path / "ansible_collections" / "mvpn" / "lab"
    (installed / "playbooks").mkdir(parents=True)
    (installed / "MANIFEST.json").write_text(json.dumps({"collection_info": {"version": "9.8.7"}}))
    code = provenance.code_version(str(installed / "playbooks"))
    assert code["collection"] == "9.8.7" and code["installed"] is True
    assert code["commit"] is None and code["dirty"] is None  # not a checkout (tmp is no git tree)


def test_code_version_outside_the_collection_is_one_line(tmp_path):
    with pytest.raises(AnsibleFilterError, match=r"^code_version: .* is not inside the mvpn\.lab collection"):
        provenance.code_version(str(tmp_path))


def test_controller_path_is_absolute_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert provenance.controller_path("results") == str(tmp_path / "results")
    assert provenance.controller_path("/abs/x") == "/abs/x"
    with pytest.raises(AnsibleFilterError, match=r"^controller_path: expected a path"):
        provenance.controller_path("")


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("  - enc_key: 0xdeadbeefcafe\n", "deadbeefcafe"),  # a YAML list item
        ('{"psk": "hunter22", "ssid": "LOCAL"}\n', "hunter22"),  # JSON on one line
        ("enc_key: |\n  0xdeadbeefcafe\n  0x0123456789\nnext: 1\n", "0123456789"),  # a block scalar
        ("AUTH_KEY = 0x11223344\n", "11223344"),  # any case, spaces around =
        ("private_key_passwd=p4ss\n", "p4ss"),
        ("auth_server_shared_secret=s3cr3t\n", "s3cr3t"),
        ("r0kh=02:00:00:00:03:00 nas1 00112233\n", "00112233"),  # 802.11r
        ("wep_key2=abcdef0123\n", "abcdef0123"),
    ],
)
def test_every_form_of_a_secret_entry_is_masked(text, secret):
    masked = lab_config.mask_secrets(text)
    assert secret not in masked and "<masked>" in masked, masked


def test_masking_leaves_the_rest_alone():
    text = 'key_mgmt=NONE\nwpa_passphrase=\nssid="LOCAL"\nenc_key: |\n  0xab\nnext: 1\nhome_lifetime: 60\n'
    assert lab_config.mask_secrets(text) == (
        'key_mgmt=NONE\nwpa_passphrase=\nssid="LOCAL"\nenc_key: |\n  <masked>\nnext: 1\nhome_lifetime: 60\n'
    )


def test_a_folder_that_cannot_be_listed_is_one_line(tmp_path, run_module):
    (tmp_path / "file").write_text("x")
    result = run_module(lab_config, {"config_dir": str(tmp_path / "file"), "kernel": False})
    assert (
        result["failed"]
        and result["msg"].startswith("config_dir: cannot list ")
        and "\n" not in result["msg"]
    )
