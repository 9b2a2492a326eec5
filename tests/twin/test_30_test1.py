"""The paper's Test 1 (non-IPsec configurations) on the twin."""

from __future__ import annotations

import json

from conftest import BIN, run_logged, tail


def test_test1_validation_passes_every_configuration(twin, tmp_path):
    results = tmp_path / "results"
    code, out = run_logged(
        "test1_validation",
        [
            str(BIN / "ansible-playbook"),
            "playbooks/test1_validation.yml",
            "-e",
            f"mvpn_results_dir={results}",
        ],
        timeout=3600,
    )
    assert code == 0, f"Test 1 failed:\n{tail(out, 80)}"
    runs = sorted((results / "test1_validation").iterdir())
    assert len(runs) == 1
    run = runs[0]
    summary = json.loads((run / "summary.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    assert summary["test"] == "test1_validation"
    ids = [c["id"] for c in summary["configurations"]]
    assert ids == [c["id"] for c in manifest["configurations"]]
    assert len(ids) == 4
    assert all(c["passed"] for c in summary["configurations"]), summary
    for conf in summary["configurations"]:
        assert conf["detail"]["sha256"] == manifest["file_sha256"]
        assert conf["detail"]["size"] == 1048576
    assert {"started_at", "ended_at", "versions", "inventory", "files"} <= manifest.keys()
    assert manifest["files"]["summary.json"]
    assert manifest["versions"]["mn"]["kernel"].endswith("-amd64")
