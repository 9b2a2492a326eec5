"""Every role's molecule scenario on the twin (converge, idempotence, verify)."""

from __future__ import annotations

from conftest import BIN, run_logged, tail


def test_molecule_all_scenarios(twin):
    code, out = run_logged("molecule", [str(BIN / "molecule"), "test", "--all"], timeout=3600, stamp=True)
    assert code == 0, f"molecule test --all failed:\n{tail(out, 120)}"
    # The idempotence step ran and passed for every scenario.
    scenarios = ("default", "topology", "radvd", "hostapd", "station", "webserver", "capture")
    scenarios += ("ipsec", "mip6", "impairment", "chrony")
    for scenario in scenarios:
        assert f"{scenario} ➜ idempotence: Executed: Successful" in _plain(out), scenario


def _plain(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)
