"""The topology filters against the paper's Fig. 1 and Fig. 5, with the inventory's real topology data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.mvpn.lab.plugins.filter import topology as t

ROOT = Path(__file__).resolve().parents[3]
# The paper's topology data: the one copy, which both inventories use (lab_model's defaults).
TOPOLOGY = yaml.safe_load((ROOT / "playbooks/vars/topology.yml").read_text())
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


# ---- the lab model (mvpn.lab.lab_model): every derived value, built once

from ansible_collections.mvpn.lab.plugins.filter import lab_model as lm  # noqa: E402

# What the roles and playbooks rendered before the model existed, recorded from the inventory of
# the time (inventories/virtual) for every host, Fig. 5 and Fig. 1, the paper and the ula plan:
# node plans, the MN's static address and gateway per link, the SAs and inner ends of the ipsec
# role, the addresses in the mip6 role's configuration, radvd's prefix, chrony's server, the
# handover manifest's addresses and verify_impairment's ends.
BEFORE = __import__("json").loads((ROOT / "tests/unit/plugins/data/derived_before.json").read_text())
VIRTUAL_IFACES = {
    "mn": {"wireless": "wlan0"},
    "ha": {"backbone": "eth0", "home": "wlan0"},
    "fn": {"impaired": "eth0", "foreign": "wlan0", "backbone": "eth2"},
    "cn": {"backbone": "eth0"},
    "impair": {"backbone": "eth0", "impaired": "eth1"},
}


def model(node="mn", figure="fig5", plan_name="paper", **overrides):
    variables = {
        "mvpn_node": node,
        "mvpn_interfaces": VIRTUAL_IFACES[node],
        "inventory_hostname": node,
        "mvpn_topology_figure": figure,
        "mvpn_address_plan": plan_name,
    }
    variables.update(overrides)
    return lm.lab_model(variables)


def mip6_addresses(m, node):
    """The address lines of the mip6 role's template (mode ro), from the model."""
    if node == "mn":
        return [
            f'home_address: "{m["home_address"]}"',
            f'home_agent: "{m["home_agent"]}"',
            f'  - "{m["correspondent"]}"',
        ]
    if node == "ha":
        return [
            f'address: "{m["home_agent"]}"',
            f'home_prefix: "{m["home_prefix"]}"',
            f'  - "{m["home_address"]}"',
        ]
    return [f'address: "{m["correspondent"]}"']


@pytest.mark.parametrize("case", sorted(BEFORE))
@pytest.mark.parametrize("node", sorted(VIRTUAL_IFACES))
def test_model_gives_what_the_roles_rendered_before(case, node):
    figure, plan_name = case.split("/")
    m = model(node, figure, plan_name)
    old = BEFORE[case][node]
    assert m["host"] == old["node_plan"]
    if node == "mn":
        for link in ("home", "foreign"):
            assert m["mn_links"][link]["address"] == old["mn_static_" + link]
            assert m["mn_links"][link]["gateway"] == old["mn_gw_" + link]
            assert m["mn_links"][link]["host"] == old["test1_addr_" + link]
            assert m["mn_links"][link]["ssid"] == old["test1_ssid_" + link]
    if node in ("mn", "ha", "cn"):
        assert [{k: v for k, v in sa.items() if k != "spi"} for sa in m["ipsec"]["sas"]] == old["ipsec_sas"]
        assert {n: {k: v for k, v in e.items() if k != "host"} for n, e in m["inner"].items()} == old[
            "ipsec_inner"
        ]
        assert mip6_addresses(m, node) == old["mip6_addresses"]
    if node in ("ha", "fn"):
        network = next(n for n in m["wlan_networks"] if n["node"] == node)
        assert network["freq"] == 2407 + 5 * network["channel"]  # added since: the channel's frequency
        network = {k: v for k, v in network.items() if k != "freq"}
        assert [network, VIRTUAL_IFACES[node][network["link"]], m["prefixes"][network["link"]]] == old[
            "radvd"
        ]
    assert [m["correspondent"], list(m["prefixes"].values())] == old["chrony"]
    assert {k: m[k] for k in old["handover"]} == old["handover"]
    if figure == "fig5":
        assert [m["correspondent"], m["nodes"]["fn"]["hosts"][m["foreign_link"]]] == old["verify_impairment"]


# The paper's plan, as the paper prints it, and the same plan in fd00::/8.
PLAN_ADDRESSES = {
    "paper": {
        "home_address": "fec0:106:2700:0:20c:30ff:febb:f0b6",
        "home_agent": "fec0:106:2700::1",
        "correspondent": "fec0:106:2500::2",
        "correspondent_inner": "fec0:0:0:1000::10",
        "home_prefix": "fec0:106:2700::/64",
        "foreign_prefix": "fec0:106:1100::/64",
        "coa": "fec0:106:1100:0:20c:30ff:febb:f0b6/64",
        "mn_inner": "fec0:0:0:2000::20/64",
    },
    "ula": {
        "home_address": "fd00:106:2700:0:20c:30ff:febb:f0b6",
        "home_agent": "fd00:106:2700::1",
        "correspondent": "fd00:106:2500::2",
        "correspondent_inner": "fd00:0:0:1000::10",
        "home_prefix": "fd00:106:2700::/64",
        "foreign_prefix": "fd00:106:1100::/64",
        "coa": "fd00:106:1100:0:20c:30ff:febb:f0b6/64",
        "mn_inner": "fd00:0:0:2000::20/64",
    },
}


@pytest.mark.parametrize("figure", ["fig5", "fig1"])
@pytest.mark.parametrize("plan_name", ["paper", "ula"])
def test_model_addresses_of_the_papers_plan(figure, plan_name):
    m = model("mn", figure, plan_name)
    want = PLAN_ADDRESSES[plan_name]
    for key in (
        "home_address",
        "home_agent",
        "correspondent",
        "correspondent_inner",
        "home_prefix",
        "foreign_prefix",
    ):
        assert m[key] == want[key], key
    assert (m["figure"], m["address_plan"], m["home_prefix_len"]) == (figure, plan_name, 64)
    assert m["ssids"] == {"home": "LOCAL", "visited": "VISITME"}
    assert (m["home_link"], m["foreign_link"]) == ("home", "foreign")
    assert m["mn_links"]["foreign"]["address"] == want["coa"]
    assert m["mn_links"]["home"]["gateway"] == want["home_agent"]
    assert m["inner"]["mn"] == {
        "interface": "nemo0",
        "address": want["mn_inner"],
        "host": want["mn_inner"].split("/")[0],
        "prefix": want["mn_inner"].replace("::20/64", "::/64"),
    }
    sas = {sa["name"]: sa for sa in m["ipsec"]["sas"]}
    assert (sas["mn_to_ha"]["src"], sas["mn_to_ha"]["dst"]) == (want["home_address"], want["home_agent"])
    assert sas["mn_to_ha"]["policy"] == {
        "src": want["home_address"] + "/128",
        "dst": want["home_agent"] + "/128",
        "proto": "135",
        "mh_type": 5,
    }
    assert sas["cn_to_mn_tunnel"]["selector"]["src"] == want["correspondent_inner"].replace("::10", "::/64")
    fn = m["nodes"]["fn"]
    if figure == "fig5":
        assert fn["hosts"] == {
            "impaired": want["home_agent"].replace("2700::1", "1700::2"),
            "foreign": want["home_agent"].replace("2700::1", "1100::1"),
        }
        assert fn["routes"] == [
            {"dest": "::/0", "gateway": want["home_agent"].replace("2700::1", "1700::1"), "link": "impaired"}
        ]
    else:
        assert fn["hosts"]["backbone"] == want["correspondent"].replace("::2", "::3")
        assert m["nodes"]["impair"] == {"forwarding": False, "addresses": {}, "hosts": {}, "routes": []}


def test_model_spis_come_from_the_key_file_else_the_default_numbering():
    m = model("cn", mvpn_ipsec_keys={"cn_to_mn": {"spi": "0x00002001", "enc_key": "00" * 16}})
    spis = {sa["name"]: sa["spi"] for sa in m["ipsec"]["sas"]}
    assert spis["cn_to_mn"] == "0x00002001"
    assert spis["mn_to_cn"] == "0x00001002" and spis["ha_to_mn"] == "0x00001006"
    assert "00" * 16 not in repr(m)  # never a key


def test_model_suites_are_the_shared_table():
    m = model()
    assert m["ipsec"]["suites"] == {
        "paper": {"algorithm": "aes-cbc-hmac-sha1", "key_bytes": {"enc_key": 16, "auth_key": 20}},
        "aead": {"algorithm": "aes-gcm", "key_bytes": {"aead_key": 20}},
    }


def test_model_without_a_node_has_no_host_part():
    m = lm.lab_model({"mvpn_address_plan": "ula"})
    assert m["host"] is None and m["node"] is None
    assert m["home_address"] == PLAN_ADDRESSES["ula"]["home_address"]


def test_inventory_values_override_the_collections_topology_data():
    plans = {"mine": dict(TOPOLOGY["mvpn_address_plans"]["paper"], home="2001:db8:27::/64")}
    m = model("ha", mvpn_address_plans=plans, mvpn_address_plan="mine", mvpn_mn_token="::42")
    assert m["home_address"] == "2001:db8:27::42"
    assert m["home_agent"] == "2001:db8:27::1"
    assert {"interface": "wlan0", "address": "2001:db8:27::1/64"} in m["host"]["addresses"]
    assert m["correspondent"] == "fec0:106:2500::2"  # the rest of the plan as given


def test_model_defaults_are_the_collections_topology_file():
    assert lm.topology_defaults() == {name: TOPOLOGY.get(name) for name in lm.TOPOLOGY_VARIABLES}
    assert TOPOLOGY["mvpn_tunnel_inner"]["cn"] == {
        "link": "cn_private",
        "id": "::10",
        "interface": "olympus0",
    }


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"mvpn_topology_figure": "fig9"}, ("mvpn_topology_figure: 'fig9' is not a figure", "fig1, fig5")),
        ({"mvpn_address_plan": "x"}, ("mvpn_address_plan: 'x' is not a plan", "paper, ula")),
        ({"mvpn_mn_token": "fec0::1"}, ("mvpn_mn_token:", "does not fit")),
        (
            {"mvpn_wlan_networks": [{"ssid": "LOCAL", "link": "home", "node": "ha"}]},
            ("mvpn_wlan_networks: no network with node: fn", "foreign router"),
        ),
        ({"mvpn_wlan_networks": [{"ssid": "LOCAL", "node": "ha"}]}, ("mvpn_wlan_networks[0].link: missing",)),
        (
            {"mvpn_tunnel_inner": {"cn": {"link": "cn_private", "id": "::10"}}},
            ("mvpn_tunnel_inner.cn.interface: missing", "olympus0"),
        ),
        (
            {"mvpn_tunnel_inner": {"cn": {"link": "nowhere", "id": "::10", "interface": "o0"}}},
            ("mvpn_address_plans.paper.nowhere: missing",),
        ),
        ({"mvpn_interfaces": {"home": "wlan0"}}, ("mvpn_interfaces.backbone: missing on ha",)),
    ],
)
def test_model_rejects_bad_topology_data_in_one_line(overrides, needles):
    with pytest.raises(AnsibleFilterError) as excinfo:
        model("ha", **overrides)
    one_line_error(excinfo, *needles)


def test_model_names_a_missing_home_agent_identifier():
    figures = yaml.safe_load(yaml.safe_dump(TOPOLOGY["mvpn_topology_figures"]))
    del figures["fig5"]["nodes"]["ha"]["addresses"]["home"]
    with pytest.raises(AnsibleFilterError) as excinfo:
        model("cn", mvpn_topology_figures=figures)
    one_line_error(excinfo, "mvpn_topology_figures.fig5.nodes.ha.addresses.home: missing")


def test_lab_model_is_exported():
    assert lm.FilterModule().filters() == {
        "lab_model": lm.lab_model,
        "ipsec_key_problems": lm.ipsec_key_problems,
    }


def test_every_role_that_reads_the_model_has_it_as_a_documented_default():
    """<role>_lab_model: documented in the role's argument_specs and defaulting to mvpn_lab_model,
    for every role whose files use it; no role reads the raw topology variables."""
    raw = ("mvpn_address_plans", "mvpn_topology_figures", "mvpn_wlan_networks[", "mvpn_mn_token }}")
    for role_dir in sorted((ROOT / "roles").iterdir()):
        role, name = role_dir.name, f"{role_dir.name}_lab_model"
        files = [p for p in role_dir.rglob("*") if p.is_file() and p.suffix in (".yml", ".j2")]
        used = any(name in p.read_text() for p in files if "meta" not in p.parts)
        options = yaml.safe_load((role_dir / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]
        defaults = yaml.safe_load((role_dir / "defaults/main.yml").read_text()) or {}
        assert (name in options["options"]) == used == (name in defaults), role
        if used:
            assert defaults[name].startswith("{{ mvpn_lab_model if mvpn_lab_model is defined else"), role
        for path in files:
            text = path.read_text()
            assert not any(word in text for word in raw if "meta" not in path.parts), path
            assert "ipv6_host(" not in text, path


# ---- the ipsec role's key check, over the one table of key lengths


def test_ipsec_key_problems_accepts_a_generated_key_file():
    from mvpn_lab import keys as keyfile

    generated = keyfile.generate_keys("both")
    for suite in ("paper", "aead"):
        assert lm.ipsec_key_problems(generated, list(generated), suite) == []


def test_ipsec_key_problems_one_line_each_never_a_value():
    secret = "ab" * 15
    given = {
        "cn_to_mn": {"spi": "0x1001", "enc_key": secret, "auth_key": "zz" * 20},
        "mn_to_cn": {"spi": 4097, "enc_key": "0x" + "cd" * 16},
        "mn_to_ha": "nothing",
        "ha_to_mn": {"spi": "4102", "aead_key": "ef" * 20},
    }
    problems = lm.ipsec_key_problems(given, ["cn_to_mn", "mn_to_cn", "mn_to_ha", "ha_to_mn"], "paper")
    assert problems == [
        "mvpn_ipsec_keys.cn_to_mn.enc_key: expected 32 hex digits (16 bytes), got 30",
        "mvpn_ipsec_keys.cn_to_mn.auth_key: not a hex string",
        "mvpn_ipsec_keys.mn_to_cn.auth_key: missing (needed by ipsec_suite paper)",
        "mvpn_ipsec_keys.mn_to_ha: missing or not a mapping (spi and keys)",
        "mvpn_ipsec_keys.ha_to_mn.spi: expected an integer or a 0x... hex string",
        "mvpn_ipsec_keys.ha_to_mn.enc_key: missing (needed by ipsec_suite paper)",
        "mvpn_ipsec_keys.ha_to_mn.auth_key: missing (needed by ipsec_suite paper)",
        "mvpn_ipsec_keys: the SPIs of cn_to_mn, mn_to_cn, mn_to_ha, ha_to_mn are not distinct",
    ]
    assert secret not in repr(problems)
    assert lm.ipsec_key_problems(given, ["ha_to_mn"], "aead") == [
        "mvpn_ipsec_keys.ha_to_mn.spi: expected an integer or a 0x... hex string"
    ]


def _model_with_channels(home, visited):
    from ansible_collections.mvpn.lab.plugins.filter.lab_model import lab_model, topology_defaults

    variables = topology_defaults()
    networks = [dict(n) for n in variables["mvpn_wlan_networks"]]
    for net in networks:
        net["channel"] = home if net["node"] == "ha" else visited
    return lab_model({**variables, "mvpn_wlan_networks": networks})


@pytest.mark.parametrize(
    ("home", "visited", "expected"),
    [
        (1, 6, {"home": [2412], "visited": [2437]}),  # the paper's lab
        (13, 14, {"home": [2472], "visited": [2484]}),  # channel 14 is not 2407 + 5 * 14
        ("11", 6, {"home": [2462], "visited": [2437]}),  # digits from -e or an inventory
    ],
)
def test_the_lab_model_scans_each_network_s_own_channel(home, visited, expected):
    model = _model_with_channels(home, visited)
    assert model["scan_freqs"] == expected
    assert [n["freq"] for n in model["wlan_networks"]] == [expected["home"][0], expected["visited"][0]]


@pytest.mark.parametrize("channel", [36, 0, True, "six", None])
def test_a_channel_that_is_not_2_4_ghz_is_one_line_naming_the_field(channel):
    with pytest.raises(AnsibleFilterError) as raised:
        _model_with_channels(1, channel)
    expected = f"mvpn_wlan_networks[1].channel: expected a 2.4 GHz channel 1-14, got {channel!r}"
    assert str(raised.value) == expected
