"""``mvpn-lab topology --graph FILE.svg``: the lab model of an inventory (ansible-core reads it), drawn;
bad input is one line and exit 2. And the top-level help's one-line description."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mvpn_lab.cli import main
from mvpn_lab.collection import filter_plugin

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"
lab_model = filter_plugin("lab_model")


def svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()
    return "\n".join("".join(e.itertext()) for e in root.iter(f"{SVG}text"))


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("mvpn-lab: error: ")
    return lines[0]


def test_the_help_says_what_the_tool_is(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    description = " ".join(out.split("\n\n")[1].split())
    assert description.startswith("Mobile VPN lab (Mobile IPv6 + IPsec)")
    assert "command line." not in description
    assert "topology" in out


@pytest.mark.parametrize("inventory", [None, "inventories/virtual", "inventories/physical"])
def test_the_inventories_lab_is_drawn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], inventory: str | None
) -> None:
    out = tmp_path / "lab.svg"
    argv = ["topology", "--graph", str(out)]
    if inventory:
        argv += ["-i", str(ROOT / inventory)]
    assert main(argv) == 0
    said = capsys.readouterr()
    assert said.err == "" and said.out.startswith(f"wrote {out} (fig5, address plan paper")
    text = svg_text(out)
    model = lab_model.lab_model(lab_model.topology_defaults())  # neither inventory overrides the data
    for host in ("ha", "cn", "fn", "impair", "mn"):
        assert f"{host} · " in text
    for prefix in model["prefixes"].values():
        assert prefix in text
    assert "WLAN LOCAL (home)" in text and "WLAN VISITME (visited)" in text
    assert "profile: unknown" in text  # the inventories leave it to each test


def test_an_inventory_that_sets_the_topology_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(
        "all:\n  children:\n    mvpn_lab:\n      hosts:\n"
        "        impair: {mvpn_node: impair, impairment_profile: umts}\n"
        "        mn: {mvpn_node: mn}\n"
    )
    # a templated value, as an inventory may hold: ansible-core templates it
    (inventory / "group_vars" / "all.yml").write_text(
        "mvpn_address_plan: \"{{ 'ula' }}\"\n"
        "mvpn_wlan_networks:\n"
        "  - {ssid: HOMENET, link: home, channel: 11, node: ha}\n"
        "  - {ssid: ROAMING, link: foreign, channel: 13, node: fn}\n"
    )
    out = tmp_path / "lab.svg"
    assert main(["topology", "--graph", str(out), "-i", str(inventory)]) == 0
    assert "(fig5, address plan ula" in capsys.readouterr().out
    text = svg_text(out)
    assert "fec0:" not in text and "fd00:106:1700::/64" in text
    assert "WLAN HOMENET (home)\nchannel 11" in text and "WLAN ROAMING (visited)\nchannel 13" in text
    assert "profile: umts (up 128 / down 128 kbit/s, RTT 500 ms)" in text
    assert main(["topology", "--graph", str(out), "-i", str(inventory), "--profile", "gprs"]) == 0
    assert "profile: gprs" in svg_text(out)


def test_an_unknown_inventory_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    assert main(["topology", "--graph", str(tmp_path / "x.svg"), "-i", str(missing)]) == 2
    assert error_line(capsys) == f"mvpn-lab: error: -i: no inventory at {missing}"
    assert not (tmp_path / "x.svg").exists()


def test_an_unreadable_inventory_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = tmp_path / "broken"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text("all: [\n")
    assert main(["topology", "--graph", str(tmp_path / "x.svg"), "-i", str(inventory)]) == 2
    line = error_line(capsys)
    assert line.startswith(f"mvpn-lab: error: -i {inventory}: not an inventory with hosts (")


def test_topology_data_the_filter_refuses_is_one_line_naming_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    mn: {mvpn_topology_figure: fig9}\n")
    assert main(["topology", "--graph", str(tmp_path / "x.svg"), "-i", str(inventory)]) == 2
    line = error_line(capsys)
    assert line.startswith(f"mvpn-lab: error: -i {inventory}: mvpn_topology_figure: 'fig9' is not a figure")


def test_the_graph_must_be_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", "--graph", str(tmp_path / "lab.png")]) == 2
    assert "expected a file name ending in .svg" in error_line(capsys)
