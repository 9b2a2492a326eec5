"""The paper's Test 1 on the twin: IPsec and plain configurations, and no key in any output.

CI runs the configurations in CI_CONFIGURATIONS (CI's 90 minutes hold no more): tunnel mode with
radvd addressing, and static addressing on the foreign link without IPsec (the row that broke
twice). Transport mode with the paper's cipher suite runs in the Test 2 twin test, the MN at home
in every handover test. MVPN_TEST1_ALL=1 runs all 24. The run is
verbose (-vvv): the security check reads its output, the run folder, the daemons' logs and the
twin's journal for the lab's keys.
"""

from __future__ import annotations

import base64
import json
import os
import re

from conftest import BIN, cli, run_logged, tail

from mvpn_lab.vlab.machine import default_lab

# One regular expression per configuration id (re.search), in the matrix's order.
CI_CONFIGURATIONS = [
    "addr-static_ipsec-none_suite-paper_loc-foreign",
    "addr-radvd_ipsec-tunnel_suite-aead_loc-foreign",
]
RUN_ALL = os.environ.get("MVPN_TEST1_ALL") == "1"
KEY_FILE = default_lab().ipsec_keys  # the lab's own keys, made by 'mvpn-lab vlab up'


def _lab_keys() -> dict[str, dict[str, str]]:
    import yaml

    return yaml.safe_load(KEY_FILE.read_text())["mvpn_ipsec_keys"]


def _key_forms(keys: dict[str, dict[str, str]]) -> list[tuple[str, str, bool]]:
    """Every key of the lab in the forms a leak would take: (needle, label, case-insensitive).

    Hex in any case, its first 16 digits (a split or truncated print), and base64.
    """
    forms = []
    for sa, entry in keys.items():
        for field, value in entry.items():
            if field == "spi":
                continue
            digits = str(value).lower().removeprefix("0x")
            forms.append((digits, f"{sa}.{field} (hex)", True))
            forms.append((digits[:16], f"{sa}.{field} (hex prefix)", True))
            forms.append((base64.b64encode(bytes.fromhex(digits)).decode(), f"{sa}.{field} (base64)", False))
    return forms


def _leaks(text: str, forms: list[tuple[str, str, bool]]) -> list[str]:
    low = text.lower()
    return sorted(label for needle, label, fold in forms if needle in (low if fold else text))


def test_test1_validation_with_ipsec_and_no_key_in_any_output(twin, tmp_path):
    results = tmp_path / "results"
    extra = {"mvpn_results_dir": str(results)}
    if not RUN_ALL:
        extra["mvpn_test1_only"] = ["^" + re.escape(c) + "$" for c in CI_CONFIGURATIONS]  # type: ignore[assignment]
    code, out = run_logged(
        "test1_validation",
        [str(BIN / "ansible-playbook"), "-vvv", "playbooks/test1_validation.yml", "-e", json.dumps(extra)],
        timeout=5400,
    )
    assert code == 0, f"Test 1 failed:\n{tail(out, 80)}"
    (run,) = sorted((results / "test1_validation").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    assert summary["test"] == "test1_validation"
    ids = [c["id"] for c in summary["configurations"]]
    assert ids == [c["id"] for c in manifest["configurations"]]
    assert len(ids) == (24 if RUN_ALL else len(CI_CONFIGURATIONS))
    if not RUN_ALL:
        assert ids == CI_CONFIGURATIONS
    assert all(c["passed"] for c in summary["configurations"]), summary
    keys = _lab_keys()
    for conf, row in zip(summary["configurations"], manifest["configurations"], strict=True):
        assert conf["detail"]["sha256"] == manifest["file_sha256"]
        assert conf["detail"]["size"] == 1048576
        if row["ipsec"] == "none":
            assert "esp_spis" not in row and conf["detail"]["esp_bytes"] is None
            continue
        # the download came through the configuration's SA (its byte counter on the MN grew by
        # at least the file's size), and the manifest names the SPIs of the data SAs
        sa = "cn_to_mn_tunnel" if row["ipsec"] == "tunnel" else "cn_to_mn"
        assert int(conf["detail"]["esp_spi"], 16) == int(keys[sa]["spi"], 16)
        assert conf["detail"]["esp_bytes"] >= 1048576, conf
        assert int(keys[sa]["spi"], 16) in {int(s, 16) for s in row["esp_spis"]}
        if row["ipsec"] == "tunnel":
            assert conf["detail"]["url"].startswith("http://[fec0:0:0:1000::10]/"), conf["detail"]["url"]
    assert {"started_at", "ended_at", "versions", "inventory", "files"} <= manifest.keys()
    assert manifest["files"]["summary.json"]
    assert manifest["versions"]["mn"]["kernel"].endswith("-amd64")

    # Security: no key, in hex or base64, in the -vvv output, the run folder, the daemons' logs
    # or the journal of the twin.
    forms = _key_forms(keys)
    assert len(forms) == 6 * 3 * 3  # 6 SAs x (enc_key, auth_key, aead_key) x 3 forms
    assert not _leaks(out, forms), _leaks(out, forms)
    for path in run.rglob("*"):
        if path.is_file():
            assert not _leaks(path.read_text(errors="replace"), forms), path
    logs = cli("vlab", "ssh", "--", "cat /var/lib/mvpn-lab/*/mip6/*.jsonl", timeout=300)
    assert logs.returncode == 0 and logs.stdout.count("\n") > 10, logs.stderr
    assert not _leaks(logs.stdout, forms)
    journal = cli("vlab", "ssh", "--", "journalctl --no-pager -o cat", timeout=600)
    assert journal.returncode == 0 and journal.stdout.count("\n") > 100, journal.stderr
    assert not _leaks(journal.stdout, forms)
    # the check can fail: the key file itself shows every key in hex
    assert len(_leaks(KEY_FILE.read_text(), forms)) == 6 * 3 * 2
