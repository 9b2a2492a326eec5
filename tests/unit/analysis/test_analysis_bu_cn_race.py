"""A real twin capture (Test 2, ro/transport/l2, 2026-12-05, cut to the second around the return
home): the MN's BU to the CN left on the HoT, 0.02 s before the home agent's BA reached it. The
analyser took BUs to the CN only after the BA and called the handover incomplete
(missing-bu_cn), which failed a whole-suite run; the BU counts, with a phase of 0 s."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from mvpn_lab.cli import main

DATA = Path(__file__).parent / "data" / "race_bu_cn_before_ba"


def test_a_bu_to_the_cn_before_the_ha_s_ba_still_completes_the_handover(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(DATA, run)
    main(["analyze", "--quiet", str(run)])
    capsys.readouterr()
    rows = {r["direction"]: r for r in csv.DictReader((run / "handover.csv").open())}
    home = rows["home"]
    assert home["status"] == "ok", home
    assert float(home["bu_cn_s"]) == 0.0
    assert abs(float(home["total_s"]) - 0.402635) < 1e-6  # next_tcp still from the BA, as before
    assert abs(float(home["next_tcp_s"]) - 0.110273) < 1e-6
    details = json.loads((run / "handovers.json").read_text())
    (handover,) = [h for r in details["reps"] for h in r["handovers"] if h["direction"] == "home"]
    assert "BU to the CN before the HA's BA: its phase counts 0 s" in handover["notes"]
    assert handover["milestones_s"]["bu_cn"] < handover["milestones_s"]["ba_ha"]
