"""The lab drawn from its model (analysis/topology_graph.py): valid SVG that names what the model holds,
follows the data (figure, address plan), and says which field a broken model lacks."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from mvpn_lab.analysis.topology_graph import draw_topology
from mvpn_lab.collection import filter_plugin
from mvpn_lab.errors import LabError

lab_model = filter_plugin("lab_model")
SVG = "{http://www.w3.org/2000/svg}"


def svg_text(path: Path) -> str:
    """Every text of the SVG (it must parse as XML), one element a line."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return "\n".join("".join(element.itertext()) for element in root.iter(f"{SVG}text"))


def default_model() -> dict[str, Any]:
    return lab_model.lab_model(lab_model.topology_defaults())


def ula_fig1_model() -> dict[str, Any]:
    variables = dict(lab_model.topology_defaults(), mvpn_address_plan="ula", mvpn_topology_figure="fig1")
    return lab_model.lab_model(variables)


def assert_names_the_model(text: str, model: dict[str, Any]) -> None:
    for host in model["nodes"]:
        assert f"{host} · " in text, host
    for link, prefix in model["prefixes"].items():
        assert f"{link}  {prefix}" in text, (link, prefix)
    for net in model["wlan_networks"]:
        assert f"WLAN {net['ssid']}" in text and f"channel {net['channel']}" in text, net
    assert f"home address {model['home_address']}" in text
    assert model["mn_links"][model["foreign_link"]]["host"] in text  # the care-of address
    for inner in model["inner"].values():
        assert inner["interface"] in text and inner["address"] in text
    for node in model["nodes"].values():
        for address in node["addresses"].values():
            assert address in text, address


def test_the_default_lab_is_drawn_with_every_host_prefix_and_ssid(tmp_path: Path) -> None:
    model = default_model()
    assert (model["figure"], model["address_plan"]) == ("fig5", "paper")
    path = draw_topology(model, tmp_path / "topology.svg", "gprs")
    text = svg_text(path)
    assert_names_the_model(text, model)
    assert "Lab topology: fig5, address plan paper" in text
    assert "WLAN LOCAL (home)" in text and "WLAN VISITME (visited)" in text
    assert "home attachment" in text and "visited (VISITME)" in text
    # the impairment node with its profile, from the paper's link figures
    assert "profile: gprs (up 10 / down 40 kbit/s, RTT 700 ms)" in text
    assert "not used in" not in text  # fig5 uses every prefix of the plan


def test_the_drawing_follows_the_data_ula_plan_and_fig1(tmp_path: Path) -> None:
    model = ula_fig1_model()
    text = svg_text(draw_topology(model, tmp_path / "topology.svg"))
    assert_names_the_model(text, model)
    assert "Lab topology: fig1, address plan ula" in text
    assert "fec0:" not in text and "fd00:106:2500::/64" in text
    # fig1 cables no impairment node: it is named, greyed, and its link is in the footnote
    assert "impair · impairment node\nno address in fig1" in text
    assert "prefixes of the plan not used in fig1: impaired  fd00:106:1700::/64" in text
    assert "profile:" not in text  # nothing to say about a node that is not cabled
    assert "fn · foreign router\nbackbone: fd00:106:2500::3/64" in text


def test_an_unknown_profile_says_so_and_the_file_is_reproducible(tmp_path: Path) -> None:
    model = default_model()
    first = draw_topology(model, tmp_path / "a.svg")
    second = draw_topology(copy.deepcopy(model), tmp_path / "b.svg")
    assert "profile: unknown" in svg_text(first)
    assert first.read_bytes() == second.read_bytes()
    assert "profile: custom" in svg_text(draw_topology(model, tmp_path / "c.svg", "custom"))


def _without(model: dict[str, Any], *path: Any) -> dict[str, Any]:
    broken = copy.deepcopy(model)
    here = broken
    for key in path[:-1]:
        here = here[key]
    del here[path[-1]]
    return broken


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("prefixes",), "prefixes"),
        (("nodes", "ha", "addresses"), "nodes.ha.addresses"),
        (("wlan_networks", 1, "ssid"), "wlan_networks[1].ssid"),
        (("mn_links", "foreign", "host"), "mn_links.foreign.host"),
        (("inner", "cn", "interface"), "inner.cn.interface"),
        (("home_address",), "home_address"),
        (("figure",), "figure"),
    ],
)
def test_a_model_without_a_field_is_one_line_naming_it(
    tmp_path: Path, path: tuple[Any, ...], field: str
) -> None:
    with pytest.raises(LabError) as exc:
        draw_topology(_without(default_model(), *path), tmp_path / "x.svg")
    message = str(exc.value)
    assert message == f"lab model: field {field} missing"
    assert "\n" not in message and exc.value.exit_code == 2
    assert not (tmp_path / "x.svg").exists()


def test_a_model_of_the_wrong_shape_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"^lab model: expected a mapping, got list$"):
        draw_topology([], tmp_path / "x.svg")
    model = default_model()
    model["nodes"] = ["ha"]
    with pytest.raises(LabError, match=r"^lab model: field nodes: expected a mapping, got list$"):
        draw_topology(model, tmp_path / "x.svg")
