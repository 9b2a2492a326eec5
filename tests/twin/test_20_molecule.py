"""Every role's molecule scenario on the twin (converge, idempotence, verify)."""

from __future__ import annotations

from conftest import BIN, run_logged, tail


def test_molecule_all_scenarios(twin):
    code, out = run_logged("molecule", [str(BIN / "molecule"), "test", "--all"], timeout=3600, stamp=True)
    assert code == 0, f"molecule test --all failed:\n{tail(out, 120)}"
    plain = _plain(out)
    # Every role converged and verified in its own scenario.
    roles = ("topology", "radvd", "hostapd", "station", "webserver", "capture", "ipsec", "mip6")
    roles += ("impairment", "chrony")
    for scenario in ("default", *roles):
        assert f"{scenario} ➜ converge: Executed: Successful" in plain, scenario
        assert f"{scenario} ➜ verify: Executed: Successful" in plain, scenario
    # Idempotence: site.yml's second run (every role with the lab's variables, after create
    # provisioned the twin from scratch), and the scenarios that converge with variables of their own.
    for scenario in ("default", "ipsec", "impairment"):
        assert f"{scenario} ➜ idempotence: Executed: Successful" in plain, scenario


def _plain(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)
