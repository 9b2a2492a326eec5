"""The topology filters against the paper's Fig. 1 and Fig. 5, with the inventory's real topology data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.mvpn.lab.plugins.filter import topology as t

ROOT = Path(__file__).resolve().parents[3]
TOPOLOGY = yaml.safe_load((ROOT / "inventories/virtual/group_vars/all/topology.yml").read_text())
PAPER = yaml.safe_load((ROOT / "src/mvpn_lab/data/paper_results.yaml").read_text())["topology"]

# Interface names as the paper's figures print them (Eth0/Eth1 of each machine).
PAPER_IFACES = {
    "fig5": {
        "ha": {"backbone": "eth0", "home": "eth1"},
        "cn": {"backbone": "eth0"},
        "impair": {"backbone": "eth0", "impaired": "eth1"},
        "fn": {"impaired": "eth0", "foreign": "eth1"},
        "mn": {"wireless": "eth0"},
    },
    "fig1": {
        "ha": {"backbone": "eth0", "home": "eth1"},
        "cn": {"backbone": "eth0"},
        "impair": {},
        "fn": {"backbone": "eth0", "foreign": "eth1"},
        "mn": {"wireless": "eth0"},
    },
}

# What Fig. 5 and Fig. 1 of the paper print for each machine.
HA = {
    "forwarding": True,
    "addresses": [("eth0", "fec0:106:2500::1/64"), ("eth1", "fec0:106:2700::1/64")],
    "routes": [("fec0:106:1100::/64", "fec0:106:2500::3", "eth0")],
}
CN = {
    "forwarding": False,
    "addresses": [("eth0", "fec0:106:2500::2/64")],
    "routes": [
        ("fec0:106:2700::/64", "fec0:106:2500::1", "eth0"),
        ("fec0:106:1100::/64", "fec0:106:2500::3", "eth0"),
    ],
}
NOTHING = {"forwarding": False, "addresses": [], "routes": []}
EXPECTED = {
    "fig5": {
        "ha": HA,
        "cn": CN,
        "impair": {
            "forwarding": True,
            "addresses": [("eth0", "fec0:106:2500::3/64"), ("eth1", "fec0:106:1700::1/64")],
            "routes": [
                ("fec0:106:2700::/64", "fec0:106:2500::1", "eth0"),
                ("fec0:106:1100::/64", "fec0:106:1700::2", "eth1"),
            ],
        },
        "fn": {
            "forwarding": True,
            "addresses": [("eth0", "fec0:106:1700::2/64"), ("eth1", "fec0:106:1100::1/64")],
            "routes": [("::/0", "fec0:106:1700::1", "eth0")],
        },
        "mn": NOTHING,
    },
    "fig1": {
        "ha": HA,
        "cn": CN,
        "impair": NOTHING,
        "fn": {
            "forwarding": True,
            "addresses": [("eth0", "fec0:106:2500::3/64"), ("eth1", "fec0:106:1100::1/64")],
            "routes": [("fec0:106:2700::/64", "fec0:106:2500::1", "eth0")],
        },
        "mn": NOTHING,
    },
}


def plan(figure, node, plan_name="paper", interfaces=None, figures=None, plans=None):
    return t.node_plan(
        TOPOLOGY["mvpn_topology_figures"] if figures is None else figures,
        figure,
        TOPOLOGY["mvpn_address_plans"] if plans is None else plans,
        plan_name,
        node,
        PAPER_IFACES[figure][node] if interfaces is None else interfaces,
        f"host-{node}",
    )


def flat(p):
    return {
        "forwarding": p["forwarding"],
        "addresses": [(a["interface"], a["address"]) for a in p["addresses"]],
        "routes": [(r["dest"], r["gateway"], r["interface"]) for r in p["routes"]],
    }


def one_line_error(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg.strip(), msg
    for needle in needles:
        assert needle in msg, msg
    return msg


# ---- the data is the paper's


def test_inventory_selects_fig5_with_the_papers_prefixes():
    assert TOPOLOGY["mvpn_topology_figure"] == "fig5"
    assert TOPOLOGY["mvpn_address_plan"] == "paper"
    assert set(TOPOLOGY["mvpn_topology_figures"]) == {"fig1", "fig5"}
    prefixes = TOPOLOGY["mvpn_address_plans"]["paper"]
    assert prefixes["backbone"] == PAPER["backbone"]
    assert prefixes["home"] == PAPER["home_link"]
    assert prefixes["foreign"] == PAPER["foreign_link"]
    assert prefixes["impaired"] == PAPER["impaired_link"]


@pytest.mark.parametrize("figure", ["fig5", "fig1"])
@pytest.mark.parametrize("node", t.NODES)
def test_node_plan_matches_the_papers_figure(figure, node):
    assert flat(plan(figure, node)) == EXPECTED[figure][node]


def test_fig5_matches_paper_results_yaml():
    """The per-machine table of paper_results.yaml (Fig. 5) read back through node_plan."""
    nodes = PAPER["nodes"]
    pairs = {"home_agent": "ha", "foreign_router": "fn", "impairment": "impair", "web_server": "cn"}
    for paper_name, node in pairs.items():
        got = dict(flat(plan("fig5", node))["addresses"])
        want = {k: v for k, v in nodes[paper_name].items() if k in ("eth0", "eth1")}
        assert got == want, paper_name
    fn_default = [r for r in plan("fig5", "fn")["routes"] if r["dest"] == "::/0"]
    assert fn_default == [
        {"dest": "::/0", "gateway": nodes["foreign_router"]["default_route"], "interface": "eth0"}
    ]


def test_fig5_foreign_router_default_route_is_on_its_impaired_interface():
    p = plan("fig5", "fn", interfaces={"impaired": "enp1s0", "foreign": "wlp2s0"})
    assert p["routes"] == [{"dest": "::/0", "gateway": "fec0:106:1700::1", "interface": "enp1s0"}]
    assert p["interfaces"] == ["enp1s0", "wlp2s0"]


def test_fig1_puts_the_foreign_router_on_the_backbone_at_3():
    p = plan("fig1", "fn")
    assert {"interface": "eth0", "address": "fec0:106:2500::3/64"} in p["addresses"]
    assert not any(a["address"].startswith("fec0:106:1700:") for a in p["addresses"])


def test_node_plan_shape_and_interface_order():
    p = plan("fig5", "ha", interfaces={"backbone": "eth0", "home": "wlan0", "unused": "eth9"})
    assert p == {
        "node": "ha",
        "forwarding": True,
        "addresses": [
            {"interface": "eth0", "address": "fec0:106:2500::1/64"},
            {"interface": "wlan0", "address": "fec0:106:2700::1/64"},
        ],
        "routes": [{"dest": "fec0:106:1100::/64", "gateway": "fec0:106:2500::3", "interface": "eth0"}],
        "interfaces": ["eth0", "wlan0"],
    }


def test_node_with_nothing_in_the_figure_needs_no_interfaces():
    assert plan("fig1", "impair", interfaces={}) == {
        "node": "impair",
        "forwarding": False,
        "addresses": [],
        "routes": [],
        "interfaces": [],
    }
    assert plan("fig5", "mn", interfaces=None)["interfaces"] == []


def test_interface_shared_by_two_links_is_listed_once():
    figures = {"f": {"nodes": {"ha": {"addresses": {"backbone": "::1", "home": "::1"}}}}}
    p = plan("f", "ha", figures=figures, interfaces={"backbone": "br0", "home": "br0"})
    assert p["interfaces"] == ["br0"]
    assert [a["address"] for a in p["addresses"]] == ["fec0:106:2500::1/64", "fec0:106:2700::1/64"]


# ---- ULA plan


@pytest.mark.parametrize("figure", ["fig5", "fig1"])
@pytest.mark.parametrize("node", t.NODES)
def test_ula_plan_is_the_paper_plan_in_fd00(figure, node):
    paper = plan(figure, node, "paper")
    ula = plan(figure, node, "ula")
    assert ula["forwarding"] == paper["forwarding"]
    swap = {a["address"].replace("fec0:", "fd00:", 1) for a in paper["addresses"]}
    assert {a["address"] for a in ula["addresses"]} == swap
    for r_paper, r_ula in zip(paper["routes"], ula["routes"], strict=True):
        assert r_ula["gateway"] == r_paper["gateway"].replace("fec0:", "fd00:", 1)
        assert r_ula["dest"] == r_paper["dest"].replace("fec0:", "fd00:", 1)
        assert r_ula["interface"] == r_paper["interface"]


def test_ula_plan_examples():
    assert flat(plan("fig5", "ha", "ula"))["addresses"] == [
        ("eth0", "fd00:106:2500::1/64"),
        ("eth1", "fd00:106:2700::1/64"),
    ]
    assert flat(plan("fig5", "fn", "ula"))["routes"] == [("::/0", "fd00:106:1700::1", "eth0")]
    for prefix in TOPOLOGY["mvpn_address_plans"]["ula"].values():
        assert t.ipv6_prefix(prefix).startswith("fd00:")


# ---- address math


def test_ipv6_prefix_normalises():
    assert t.ipv6_prefix("fec0:106:2500::/64") == "fec0:106:2500::/64"
    assert t.ipv6_prefix("FEC0:0106:2500:0:0::/64") == "fec0:106:2500::/64"
    assert t.ipv6_prefix("fec0:0:0:1000::/64") == "fec0:0:0:1000::/64"
    assert t.ipv6_prefix("::/0") == "::/0"


def test_ipv6_address_and_host():
    assert t.ipv6_address("fec0:106:2500::/64", "::1") == "fec0:106:2500::1/64"
    assert t.ipv6_host("fec0:106:1700::/64", "::1") == "fec0:106:1700::1"
    home = TOPOLOGY["mvpn_address_plans"]["paper"]["home"]
    # RFC 5952 text, as ip prints it: a single zero group is not shortened to "::".
    assert t.ipv6_address(home, TOPOLOGY["mvpn_mn_token"]) == "fec0:106:2700:0:20c:30ff:febb:f0b6/64"
    assert t.ipv6_host("fec0:106:1100::/64", "::20c:30ff:febb:f0b6") == "fec0:106:1100:0:20c:30ff:febb:f0b6"
    # The paper's tunnel inner address (MN -> nemo0: fec0:0:0:2000::20/64).
    assert t.ipv6_address("fec0:0:0:2000::/64", "::20") == "fec0:0:0:2000::20/64"


@pytest.mark.parametrize(
    "value",
    [
        "fec0:106:2500::",
        "garbage/64",
        "10.0.0.0/8",
        "fec0::/129",
        "",
        None,
        " fec0::/64",
        "fec0:106:2500::/64/1",
    ],
)
def test_ipv6_prefix_rejects_malformed(value):
    with pytest.raises(AnsibleFilterError) as excinfo:
        t.ipv6_prefix(value, "mvpn_address_plans.paper.backbone")
    one_line_error(excinfo, "mvpn_address_plans.paper.backbone:", "is not an IPv6 prefix")


def test_ipv6_prefix_rejects_host_bits():
    with pytest.raises(AnsibleFilterError) as excinfo:
        t.ipv6_prefix("fec0:106:2500::1/64", "mvpn_address_plans.paper.backbone")
    one_line_error(excinfo, "mvpn_address_plans.paper.backbone:", "host bits set", "fec0:106:2500::/64")


@pytest.mark.parametrize("iid", ["1", "garbage", None, "0.0.0.1"])
def test_ipv6_address_rejects_malformed_identifier(iid):
    with pytest.raises(AnsibleFilterError) as excinfo:
        t.ipv6_address("fec0:106:2500::/64", iid, "mvpn_mn_token")
    one_line_error(excinfo, "mvpn_mn_token:", "interface identifier")


def test_ipv6_address_rejects_identifier_wider_than_the_host_part():
    with pytest.raises(AnsibleFilterError) as excinfo:
        t.ipv6_address("fec0:106:2500::/64", "fec0::1", "mvpn_mn_token")
    one_line_error(excinfo, "mvpn_mn_token:", "does not fit", "fec0:106:2500::/64")


def test_ipv6_address_checks_its_prefix_under_the_callers_name():
    with pytest.raises(AnsibleFilterError) as excinfo:
        t.ipv6_host("fec0:106:2500::1/64", "::1", "mvpn_address_plans")
    one_line_error(excinfo, "mvpn_address_plans:", "host bits set")


# ---- node_plan errors: one line, naming the variable


def test_unknown_figure():
    with pytest.raises(AnsibleFilterError) as excinfo:
        plan("fig9", "ha", interfaces={})
    one_line_error(excinfo, "mvpn_topology_figure:", "'fig9'", "fig1, fig5")


def test_unknown_plan():
    with pytest.raises(AnsibleFilterError) as excinfo:
        plan("fig5", "ha", plan_name="private")
    one_line_error(excinfo, "mvpn_address_plan:", "'private'", "paper, ula")


@pytest.mark.parametrize("node", ["router", "", None, "MN"])
def test_unknown_node(node):
    with pytest.raises(AnsibleFilterError) as excinfo:
        plan("fig5", node, interfaces={})
    one_line_error(excinfo, "mvpn_node:", f"host-{node}", "mn, ha, fn, cn, impair")


@pytest.mark.parametrize("name", [None, "", "  "])
def test_missing_interface_name(name):
    with pytest.raises(AnsibleFilterError) as excinfo:
        plan("fig5", "ha", interfaces={"backbone": "eth0", "home": name})
    one_line_error(excinfo, "mvpn_interfaces.home: missing on host-ha", "home link")


def test_missing_interface_of_a_route_only_link():
    figures = {"f": {"nodes": {"cn": {"routes": [{"to": "home", "via": "backbone", "gateway": "::1"}]}}}}
    with pytest.raises(AnsibleFilterError) as excinfo:
        plan("f", "cn", figures=figures, interfaces={})
    one_line_error(excinfo, "mvpn_interfaces.backbone: missing on host-cn")


def test_fig5_foreign_router_needs_its_impaired_interface():
    with pytest.raises(AnsibleFilterError) as excinfo:
        plan("fig5", "fn", interfaces={"backbone": "eth0", "foreign": "wlan0"})
    one_line_error(excinfo, "mvpn_interfaces.impaired: missing on host-fn")


def test_malformed_prefix_in_the_plan():
    plans = {"paper": dict(TOPOLOGY["mvpn_address_plans"]["paper"], home="fec0:106:2700::/6x")}
    with pytest.raises(AnsibleFilterError) as excinfo:
        plan("fig5", "cn", plans=plans)
    one_line_error(excinfo, "mvpn_address_plans.paper.home:", "is not an IPv6 prefix")


def test_plan_prefix_with_host_bits():
    plans = {"paper": dict(TOPOLOGY["mvpn_address_plans"]["paper"], backbone="fec0:106:2500::1/64")}
    with pytest.raises(AnsibleFilterError) as excinfo:
        plan("fig5", "cn", plans=plans)
    one_line_error(excinfo, "mvpn_address_plans.paper.backbone:", "host bits set")


def test_plan_without_a_link_the_figure_uses():
    plans = {"paper": {k: v for k, v in TOPOLOGY["mvpn_address_plans"]["paper"].items() if k != "impaired"}}
    with pytest.raises(AnsibleFilterError) as excinfo:
        plan("fig5", "fn", plans=plans)
    one_line_error(excinfo, "mvpn_address_plans.paper.impaired: missing")


def test_bad_identifier_in_the_figure():
    figures = {"f": {"nodes": {"ha": {"addresses": {"backbone": "::1::2"}}}}}
    with pytest.raises(AnsibleFilterError) as excinfo:
        plan("f", "ha", figures=figures, interfaces={"backbone": "eth0"})
    one_line_error(excinfo, "mvpn_topology_figures.f.nodes.ha.addresses.backbone:")


def test_bad_gateway_in_the_figure():
    figures = {"f": {"nodes": {"fn": {"routes": [{"to": "default", "via": "impaired", "gateway": "1"}]}}}}
    with pytest.raises(AnsibleFilterError) as excinfo:
        plan("f", "fn", figures=figures, interfaces={"impaired": "eth0"})
    one_line_error(excinfo, "mvpn_topology_figures.f.nodes.fn.routes:")


# ---- kernel parameters, SSIDs, unit names


def test_node_sysctls_router():
    assert t.node_sysctls(["eth0", "wlan0"], True, False) == {
        "net.ipv6.conf.all.forwarding": 1,
        "net.ipv6.conf.eth0.accept_ra": 0,
        "net.ipv6.conf.eth0.autoconf": 0,
        "net.ipv6.conf.wlan0.accept_ra": 0,
        "net.ipv6.conf.wlan0.autoconf": 0,
    }


def test_node_sysctls_mobile_node_with_slaac():
    assert t.node_sysctls(["wlan0"], False, True) == {
        "net.ipv6.conf.all.forwarding": 0,
        "net.ipv6.conf.wlan0.accept_ra": 1,
        "net.ipv6.conf.wlan0.autoconf": 1,
    }


def test_node_sysctls_without_interfaces_sets_forwarding_only():
    assert t.node_sysctls([], False, False) == {"net.ipv6.conf.all.forwarding": 0}


def test_node_sysctls_spells_a_vlan_interface_as_sysctl_does():
    settings = t.node_sysctls(["eth0.100"], True, False)
    assert settings["net.ipv6.conf.eth0/100.accept_ra"] == 0
    assert "net.ipv6.conf.eth0.100.accept_ra" not in settings


@pytest.mark.parametrize(
    ("value", "length"),
    [("LOCAL", 5), ("VISITME", 7), ("", 0), ("é", 2), ("ü" * 16, 32), ("\U0001f4f6", 4), (123, 3)],
)
def test_utf8_length(value, length):
    assert t.utf8_length(value) == length


def test_unit_names_on_the_twin_and_on_hardware():
    assert t.unit_name("hostapd", "ha") == "mvpn-hostapd@ha.service"
    assert t.unit_file("hostapd", "ha") == "mvpn-hostapd@.service"
    assert t.unit_name("radvd", "") == "mvpn-radvd.service"
    assert t.unit_file("radvd", "") == "mvpn-radvd.service"
    assert t.unit_name("apache") == "mvpn-apache.service"
    assert t.unit_file("apache") == "mvpn-apache.service"


def test_filter_module_exports_every_filter():
    filters = t.FilterModule().filters()
    assert filters == {
        "ipv6_prefix": t.ipv6_prefix,
        "ipv6_address": t.ipv6_address,
        "ipv6_host": t.ipv6_host,
        "node_plan": t.node_plan,
        "node_sysctls": t.node_sysctls,
        "utf8_length": t.utf8_length,
        "unit_name": t.unit_name,
        "unit_file": t.unit_file,
    }
