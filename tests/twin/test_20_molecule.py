"""Every role's molecule scenario on the twin.

CI runs, in one molecule run, the default scenario (create provisions the lab from scratch with
site.yml, idempotence runs site.yml again and requires changed=0, verify) and the scenarios whose
converge is not site.yml's (ipsec and impairment converge with variables of their own and check
their idempotence; chrony is not in the twin's site.yml). The other roles (capture, hostapd,
mip6, radvd, station, topology, webserver) converge in site.yml with the same variables their
scenarios use, so CI runs their scenario's verify on that lab and leaves out their prepare
(which undoes the role) and converge (which applies it again): 896 s became 605 s on a fast
2-core machine, about 12 of CI's 90 minutes on a slow one. MVPN_MOLECULE_ALL=1 runs every
scenario whole (`molecule test --all`).
"""

from __future__ import annotations

import os
import re

from conftest import BIN, run_logged, tail

WHOLE = ("default", "chrony", "impairment", "ipsec")
VERIFIED = ("capture", "hostapd", "mip6", "radvd", "station", "topology", "webserver")
IDEMPOTENCE = ("default", "impairment", "ipsec")
RUN_ALL = os.environ.get("MVPN_MOLECULE_ALL") == "1"


def test_molecule_scenarios(twin):
    molecule = str(BIN / "molecule")
    if RUN_ALL:
        code, out = run_logged("molecule", [molecule, "test", "--all"], timeout=5400, stamp=True)
        assert code == 0, f"molecule test --all failed:\n{tail(out, 120)}"
        plain = _plain(out)
        for scenario in WHOLE + VERIFIED:
            assert f"{scenario} ➜ converge: Executed: Successful" in plain, scenario
            assert f"{scenario} ➜ verify: Executed: Successful" in plain, scenario
        for scenario in IDEMPOTENCE:
            assert f"{scenario} ➜ idempotence: Executed: Successful" in plain, scenario
        return

    whole = [arg for scenario in WHOLE for arg in ("-s", scenario)]
    code, out = run_logged("molecule", [molecule, "test", *whole], timeout=3600, stamp=True)
    assert code == 0, f"molecule test {' '.join(whole)} failed:\n{tail(out, 120)}"
    plain = _plain(out)
    for scenario in WHOLE:
        assert f"{scenario} ➜ converge: Executed: Successful" in plain, scenario
        assert f"{scenario} ➜ verify: Executed: Successful" in plain, scenario
    for scenario in IDEMPOTENCE:
        assert f"{scenario} ➜ idempotence: Executed: Successful" in plain, scenario

    verified = [arg for scenario in VERIFIED for arg in ("-s", scenario)]
    code, out = run_logged("molecule-verify", [molecule, "verify", *verified], timeout=1800, stamp=True)
    assert code == 0, f"molecule verify {' '.join(verified)} failed:\n{tail(out, 120)}"
    plain = _plain(out)
    for scenario in VERIFIED:
        assert f"{scenario} ➜ verify: Executed: Successful" in plain, scenario
        assert f"{scenario} ➜ converge" not in plain, scenario  # the lab is site.yml's, untouched


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
