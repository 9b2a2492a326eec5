"""The virtual and the physical inventory describe the same lab.

Hosts and their variables are read the way Ansible reads them (InventoryManager and
VariableManager: hosts.yml, group_vars, host_vars), without templating or contacting a host.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.manager import VariableManager

from mvpn_lab.vlab import paths

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES = {name: ROOT / "inventories" / name for name in ("virtual", "physical")}
# The shared data lives once, in the collection (playbooks/vars); no inventory has a copy.
SHARED = ROOT / "playbooks/vars"
TOPOLOGY = yaml.safe_load((SHARED / "topology.yml").read_text())
ROLES_BY_GROUP = yaml.safe_load((SHARED / "roles.yml").read_text())["mvpn_roles_by_group"]
NODE_OF_GROUP = {
    "mobile_nodes": "mn",
    "home_agents": "ha",
    "foreign_routers": "fn",
    "correspondent_nodes": "cn",
    "impairment_nodes": "impair",
}
DOCUMENTATION_NETS = [
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]


def _load(name):
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(INVENTORIES[name])])
    variables = VariableManager(loader=loader, inventory=inventory)
    hosts = {}
    for host in inventory.get_hosts():
        hv = variables.get_vars(host=host)
        hosts[host.name] = {"vars": hv, "groups": set(hv["group_names"])}
    return hosts


INVENTORY = {name: _load(name) for name in INVENTORIES}
# The lab hosts (group mvpn_lab); other hosts, such as the controller, are not lab nodes.
HOSTS = {
    inv: {h: d for h, d in hosts.items() if "mvpn_lab" in d["groups"]} for inv, hosts in INVENTORY.items()
}
ALL_HOSTS = [(inv, host) for inv in INVENTORIES for host in sorted(HOSTS[inv])]


def links_used(figure, node, groups):
    """The links a node needs an interface on in a figure, from the topology data and the roles."""
    spec = TOPOLOGY["mvpn_topology_figures"][figure]["nodes"].get(node) or {}
    links = set(spec.get("addresses") or {}) | {r["via"] for r in spec.get("routes") or []}
    links |= {n["link"] for n in TOPOLOGY["mvpn_wlan_networks"] if n["node"] == node}  # hostapd, radvd
    if node == "mn":
        links.add("wireless")  # station, topology, capture
    roles = {r for g in groups for r in ROLES_BY_GROUP.get(g, [])}
    if "capture" in roles and node != "mn":
        links.add("backbone")  # the capture role's default capture link
    return links


@pytest.mark.parametrize("inv", INVENTORIES)
def test_inventories_hold_no_copy_of_the_shared_data(inv):
    """Topology data and roles per group come from the collection, unless an inventory overrides one."""
    shared = {
        name for f in ("topology.yml", "roles.yml") for name in yaml.safe_load((SHARED / f).read_text())
    }
    assert "mvpn_tunnel_inner" in shared and "mvpn_roles_by_group" in shared
    for path in sorted(INVENTORIES[inv].rglob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        assert not shared & set(data), f"{path}: sets {sorted(shared & set(data))} (the collection has them)"


@pytest.mark.parametrize("inv", INVENTORIES)
def test_each_host_gets_the_same_lab_model_as_the_twin(inv):
    """The model each inventory's hosts get is the twin's but for the interface names."""
    from ansible_collections.mvpn.lab.plugins.filter.lab_model import lab_model

    def without_host(model):
        return {k: v for k, v in model.items() if k != "host"}

    twin = {d["vars"]["mvpn_node"]: lab_model(d["vars"]) for d in HOSTS["virtual"].values()}
    for host, data in HOSTS[inv].items():
        model = lab_model(data["vars"])
        node = data["vars"]["mvpn_node"]
        assert without_host(model) == without_host(twin[node]), (inv, host)
        assert model["host"]["node"] == node
        assert [a["address"] for a in model["host"]["addresses"]] == [
            a["address"] for a in twin[node]["host"]["addresses"]
        ]
        assert model["home_address"] == "fec0:106:2700:0:20c:30ff:febb:f0b6"


@pytest.mark.parametrize("inv", INVENTORIES)
def test_one_host_per_node_in_the_lab_groups(inv):
    hosts = HOSTS[inv]
    for group, node in NODE_OF_GROUP.items():
        members = [h for h, d in hosts.items() if group in d["groups"]]
        assert len(members) == 1, (inv, group, members)
        assert hosts[members[0]]["vars"]["mvpn_node"] == node, (inv, members[0])
        assert "mvpn_lab" in hosts[members[0]]["groups"]
    assert sorted(d["vars"]["mvpn_node"] for d in hosts.values()) == sorted(NODE_OF_GROUP.values())


def test_both_inventories_have_the_same_groups():
    groups = {inv: set().union(*(d["groups"] for d in INVENTORY[inv].values())) for inv in INVENTORIES}
    assert groups["virtual"] == groups["physical"]
    assert set(NODE_OF_GROUP) | {"mvpn_lab"} <= groups["virtual"]
    assert set(ROLES_BY_GROUP) <= groups["virtual"]
    lab = {inv: {g for d in HOSTS[inv].values() for g in d["groups"]} for inv in INVENTORIES}
    assert lab["virtual"] == lab["physical"] == set(NODE_OF_GROUP) | {"mvpn_lab"}


def test_both_inventories_have_the_same_hosts_outside_the_lab():
    """E.g. the controller (localhost), where run folders are written."""
    others = {inv: set(INVENTORY[inv]) - set(HOSTS[inv]) for inv in INVENTORIES}
    assert others["virtual"] == others["physical"]
    for host in others["physical"]:
        hv = INVENTORY["physical"][host]["vars"]
        assert not hv.get("ansible_become"), f"{host}: no sudo outside the lab"


@pytest.mark.parametrize(("inv", "host"), ALL_HOSTS)
def test_host_has_mvpn_node_and_interfaces_for_its_fig5_links(inv, host):
    hv = HOSTS[inv][host]["vars"]
    assert hv.get("mvpn_node") in NODE_OF_GROUP.values(), (inv, host)
    interfaces = hv.get("mvpn_interfaces")
    assert isinstance(interfaces, dict) and interfaces, (inv, host)
    missing = links_used("fig5", hv["mvpn_node"], HOSTS[inv][host]["groups"]) - set(interfaces)
    assert not missing, f"{inv}/{host}: mvpn_interfaces lacks {sorted(missing)}"


@pytest.mark.parametrize(("inv", "host"), ALL_HOSTS)
def test_host_has_interfaces_for_its_fig1_links(inv, host):
    hv = HOSTS[inv][host]["vars"]
    missing = links_used("fig1", hv["mvpn_node"], HOSTS[inv][host]["groups"]) - set(hv["mvpn_interfaces"])
    assert not missing, f"{inv}/{host}: mvpn_interfaces lacks {sorted(missing)}"


@pytest.mark.parametrize(("inv", "host"), ALL_HOSTS)
def test_interface_names_are_linux_names(inv, host):
    for link, name in HOSTS[inv][host]["vars"]["mvpn_interfaces"].items():
        assert link in TOPOLOGY["mvpn_address_plans"]["paper"] or link == "wireless", (inv, host, link)
        assert re.fullmatch(r"[A-Za-z0-9_.@:-]{1,15}", str(name)) and name not in (".", ".."), (
            inv,
            host,
            name,
        )


def test_links_used_follow_the_paper():
    """The helper itself: Fig. 5's foreign router is on the impaired and foreign links, Fig. 1's on
    the backbone."""
    assert links_used("fig5", "fn", {"foreign_routers", "mvpn_lab"}) == {"impaired", "foreign"}
    assert links_used("fig1", "fn", {"foreign_routers", "mvpn_lab"}) == {"backbone", "foreign"}
    assert links_used("fig5", "mn", {"mobile_nodes", "mvpn_lab"}) == {"wireless"}
    assert links_used("fig1", "impair", {"impairment_nodes", "mvpn_lab"}) == set()


# ---- the virtual inventory and the twin's CLI agree

STATE_DIR_EXPR = re.compile(
    r"\{\{ lookup\('ansible\.builtin\.env', '(?P<var>\w+)', "
    r"default=lookup\('ansible\.builtin\.env', 'HOME'\) ~ '(?P<suffix>[^']+)'\) \}\}"
)


def _vlab_dir_definitions():
    """(file, value) of every mvpn_vlab_dir in the virtual inventory's group_vars and hosts.yml."""
    base = INVENTORIES["virtual"]
    found = []
    for path in [base / "hosts.yml", *sorted((base / "group_vars").rglob("*.yml"))]:
        if "mvpn_vlab_dir:" in path.read_text():
            data = yaml.safe_load(path.read_text()) or {}
            if "mvpn_vlab_dir" in data:
                found.append((path, data["mvpn_vlab_dir"]))
    return found


def test_virtual_state_dir_matches_paths_py(monkeypatch, tmp_path):
    definitions = _vlab_dir_definitions()
    assert len(definitions) == 1, definitions
    expr = definitions[0][1]
    match = STATE_DIR_EXPR.fullmatch(expr.strip())
    assert match, f"mvpn_vlab_dir no longer has the expected form: {expr!r}"
    assert match["suffix"] == "/.local/state/mvpn-lab/twin"
    monkeypatch.delenv(match["var"], raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.state_dir() == Path(str(tmp_path) + match["suffix"])
    monkeypatch.setenv(match["var"], "/srv/lab-state")
    assert paths.state_dir() == Path("/srv/lab-state")


def test_virtual_inventory_uses_the_twins_ssh_alias_and_hosts():
    hv = HOSTS["virtual"]["mn"]["vars"]
    assert hv["ansible_host"] == paths.SSH_ALIAS
    assert "{{ mvpn_vlab_dir }}/ssh_config" in hv["ansible_ssh_common_args"]
    assert set(HOSTS["virtual"]) == set(paths.LAB_HOSTS)
    assert hv["mvpn_netns"] == "{{ inventory_hostname }}"


# ---- the physical inventory is a usable example


@pytest.mark.parametrize("host", sorted(HOSTS["physical"]))
def test_physical_host_connection(host):
    hv = HOSTS["physical"][host]["vars"]
    assert hv["mvpn_netns"] == ""
    assert hv["mvpn_install_packages"] is True
    assert hv["ansible_become"] is True
    assert hv.get("ansible_user")
    address = ipaddress.ip_address(hv["ansible_host"])
    assert any(address in net for net in DOCUMENTATION_NETS), f"{host}: use a documentation address"
    assert "{{" not in str(hv.get("ansible_python_interpreter", ""))


def test_physical_hosts_have_distinct_addresses():
    addresses = [d["vars"]["ansible_host"] for d in HOSTS["physical"].values()]
    assert len(set(addresses)) == len(addresses) == 5


def test_physical_access_points_have_a_bssid():
    ap_nodes = {n["node"] for n in TOPOLOGY["mvpn_wlan_networks"]}
    bssids = []
    for host, data in HOSTS["physical"].items():
        bssid = data["vars"].get("mvpn_wlan_bssid")
        if data["vars"]["mvpn_node"] in ap_nodes:
            assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", str(bssid)), (host, bssid)
            bssids.append(bssid)
        else:
            assert bssid is None, host
    assert len(set(bssids)) == len(ap_nodes) == 2


def test_physical_files_say_they_are_examples():
    base = INVENTORIES["physical"]
    files = sorted(base.rglob("*.yml"))
    assert len(files) >= 7  # hosts.yml, the connection settings, five host_vars
    for path in files:
        assert "EXAMPLE" in path.read_text()[:400], f"{path}: say near the top that it is an example to edit"
