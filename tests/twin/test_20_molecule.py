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
    if RUN_ALL:
        plain = _molecule("molecule", ["test", "--all"], timeout=5400)
        _executed(plain, WHOLE + VERIFIED, "converge", "verify")
        _executed(plain, IDEMPOTENCE, "idempotence")
        return

    plain = _molecule("molecule", ["test", *_scenarios(WHOLE)], timeout=3600)
    _executed(plain, WHOLE, "converge", "verify")
    _executed(plain, IDEMPOTENCE, "idempotence")

    plain = _molecule("molecule-verify", ["verify", *_scenarios(VERIFIED)], timeout=1800)
    _executed(plain, VERIFIED, "verify")
    for scenario in VERIFIED:
        assert f"{scenario} ➜ converge" not in plain, scenario  # the lab is site.yml's, untouched


def _scenarios(names: tuple[str, ...]) -> list[str]:
    return [arg for name in names for arg in ("-s", name)]


def _molecule(log: str, args: list[str], timeout: float) -> str:
    """Run molecule; its output without colours, once it succeeded."""
    code, out = run_logged(log, [str(BIN / "molecule"), *args], timeout=timeout, stamp=True)
    assert code == 0, f"molecule {' '.join(args)} failed:\n{tail(out, 120)}"
    return re.sub(r"\x1b\[[0-9;]*m", "", out)


def _executed(plain: str, scenarios: tuple[str, ...], *steps: str) -> None:
    for scenario in scenarios:
        for step in steps:
            assert f"{scenario} ➜ {step}: Executed: Successful" in plain, (scenario, step)
