# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab model: every value derived from the topology data, computed in one place.

``playbooks/validate.yml`` builds it once per host and publishes it as ``mvpn_lab_model``; roles,
playbooks and molecule checks read it and derive nothing. The topology data (figures, address
plans, the mobile node's token, the wireless networks, the tunnel-mode inner ends) defaults to the
paper's, in ``playbooks/vars/topology.yml`` of this collection; an inventory (or ``-e``) that sets
one of those variables overrides it. The filter's documentation is ``lab_model.yml`` beside this
file; docs/architecture.md and README ("Topology as data") describe the data flow.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.mvpn.lab.plugins.filter.topology import (
    ipv6_address,
    ipv6_host,
    ipv6_prefix,
    node_plan,
)
from ansible_collections.mvpn.lab.plugins.module_utils.suites import DEFAULT_SPIS, key_problems, lab_suites

#: The topology variables the model is built from, in the order they are checked.
TOPOLOGY_VARIABLES = (
    "mvpn_topology_figures",
    "mvpn_topology_figure",
    "mvpn_address_plans",
    "mvpn_address_plan",
    "mvpn_mn_token",
    "mvpn_wlan_networks",
    "mvpn_tunnel_inner",
)
#: The paper's topology data, shipped with the collection: the defaults of every variable above.
DEFAULTS_FILE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "playbooks", "vars", "topology.yml"
)

# The SAs of the ipsec role: name, group, source and destination node, mode, reqid, and what the
# policy selects (transport: the two ends' addresses and an upper-layer protocol; tunnel: the two
# inner prefixes). Addresses and SPIs are filled in by lab_model.
_SAS = (
    ("cn_to_mn", "transport", "cn", "mn", "transport", 1, {"proto": "tcp"}),
    ("mn_to_cn", "transport", "mn", "cn", "transport", 1, {"proto": "tcp"}),
    ("cn_to_mn_tunnel", "tunnel", "cn", "mn", "tunnel", 2, None),
    ("mn_to_cn_tunnel", "tunnel", "mn", "cn", "tunnel", 2, None),
    # Mobility Header (135) type 5: Binding Update
    ("mn_to_ha", "signalling", "mn", "ha", "transport", 3, {"proto": "135", "mh_type": 5}),
    # Mobility Header (135) type 6: Binding Acknowledgement
    ("ha_to_mn", "signalling", "ha", "mn", "transport", 3, {"proto": "135", "mh_type": 6}),
)


def topology_defaults():
    """The collection's topology data (``playbooks/vars/topology.yml``) as a dict."""
    try:
        with open(DEFAULTS_FILE) as handle:
            data = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise AnsibleFilterError(
            "mvpn.lab.lab_model: cannot read the collection's topology data %s (%s)" % (DEFAULTS_FILE, exc)
        ) from None
    return dict((name, data.get(name)) for name in TOPOLOGY_VARIABLES)


def _lookup(variables, name):
    """A variable of the host, or None when it is not set (or set to null)."""
    try:
        return variables[name]
    except (KeyError, TypeError):
        return None
    except Exception as exc:  # an undefined value inside hostvars raises on access
        if type(exc).__name__.startswith("AnsibleUndefined"):
            return None
        raise


def _plain(value):
    """Ansible's lazy containers (hostvars) as plain dicts and lists."""
    if isinstance(value, dict) or (hasattr(value, "keys") and hasattr(value, "__getitem__")):
        return dict((k, _plain(value[k])) for k in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _need(mapping, key, where, expected):
    value = (mapping or {}).get(key) if isinstance(mapping, dict) else None
    if value is None or (isinstance(value, str) and not value.strip()):
        raise AnsibleFilterError("%s: missing (expected %s)" % (where, expected))
    return value


def _network_of(networks, node, role):
    for index, net in enumerate(networks):
        if not isinstance(net, dict):
            raise AnsibleFilterError(
                "mvpn_wlan_networks[%d]: expected a mapping with ssid, link, channel and node" % index
            )
        if net.get("node") == node:
            for field in ("ssid", "link"):
                _need(net, field, "mvpn_wlan_networks[%d].%s" % (index, field), "the network's " + field)
            return net
    raise AnsibleFilterError(
        "mvpn_wlan_networks: no network with node: %s (expected the %s's access point)" % (node, role)
    )


def _with_freq(net, index):
    """The network with ``freq``, its 2.4 GHz channel's frequency in MHz (channel 1-14, an integer
    or its digits): the one place the lab derives it (the station's scan_freq, the handovers'
    scan). Anything else is a one-line error naming the field."""
    channel = net.get("channel")
    if isinstance(channel, str) and channel.strip().isdigit():
        channel = int(channel)
    if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 14:
        raise AnsibleFilterError(
            "mvpn_wlan_networks[%d].channel: expected a 2.4 GHz channel 1-14, got %r"
            % (index, net.get("channel"))
        )
    return dict(net, channel=channel, freq=2484 if channel == 14 else 2407 + 5 * channel)


def _spi_text(value):
    return value if isinstance(value, str) else "0x%08x" % int(value)


def lab_model(variables):
    """Build the lab model from a host's variables (``hostvars[inventory_hostname]``)."""
    variables = variables if variables is not None else {}
    topology = topology_defaults()
    for name in TOPOLOGY_VARIABLES:
        value = _lookup(variables, name)
        if value is not None:
            topology[name] = _plain(value)

    figures = topology["mvpn_topology_figures"] or {}
    figure = topology["mvpn_topology_figure"]
    plans = topology["mvpn_address_plans"] or {}
    plan = topology["mvpn_address_plan"]
    token = topology["mvpn_mn_token"]
    networks = topology["mvpn_wlan_networks"]
    if not isinstance(networks, list):
        raise AnsibleFilterError(
            "mvpn_wlan_networks: expected a list of networks (ssid, link, channel, node)"
        )

    inner_spec = topology["mvpn_tunnel_inner"] or {}
    if figure not in figures:
        raise AnsibleFilterError(
            "mvpn_topology_figure: %r is not a figure of mvpn_topology_figures (expected one of: %s)"
            % (figure, ", ".join(sorted(figures)))
        )
    if plan not in plans:
        raise AnsibleFilterError(
            "mvpn_address_plan: %r is not a plan of mvpn_address_plans (expected one of: %s)"
            % (plan, ", ".join(sorted(plans)))
        )
    prefixes = dict(
        (link, ipv6_prefix(prefix, "mvpn_address_plans.%s.%s" % (plan, link)))
        for link, prefix in plans[plan].items()
    )
    nodes_spec = figures[figure].get("nodes") or {}

    def prefix_of(link, why):
        if link not in prefixes:
            raise AnsibleFilterError(
                "mvpn_address_plans.%s.%s: missing (expected the IPv6 prefix of the %s link, %s)"
                % (plan, link, link, why)
            )
        return prefixes[link]

    def node_id(node, link):
        where = "mvpn_topology_figures.%s.nodes.%s.addresses.%s" % (figure, node, link)
        spec = nodes_spec.get(node) or {}
        return _need(
            spec.get("addresses") or {}, link, where, "the %s's interface identifier on %s" % (node, link)
        )

    # Every node's addresses (address/length, and as hosts without it) and routes, by link name.
    nodes = {}
    for node, spec in sorted(nodes_spec.items()):
        spec = spec or {}
        where = "mvpn_topology_figures.%s.nodes.%s" % (figure, node)
        nodes[node] = {
            "forwarding": bool(spec.get("forwarding", False)),
            "addresses": dict(
                (
                    link,
                    ipv6_address(
                        prefix_of(link, "used by %s in %s" % (node, figure)),
                        iid,
                        where + ".addresses." + link,
                    ),
                )
                for link, iid in (spec.get("addresses") or {}).items()
            ),
            "routes": [
                {
                    "dest": "::/0"
                    if route.get("to") == "default"
                    else prefix_of(route.get("to"), "a route of " + node),
                    "gateway": ipv6_host(
                        prefix_of(route.get("via"), "a route of " + node),
                        route.get("gateway"),
                        where + ".routes",
                    ),
                    "link": route.get("via"),
                }
                for route in spec.get("routes") or []
            ],
        }
        nodes[node]["hosts"] = dict(
            (link, address.split("/")[0]) for link, address in nodes[node]["addresses"].items()
        )

    home_net = _network_of(networks, "ha", "home agent")
    visited_net = _network_of(networks, "fn", "foreign router")
    at = (networks.index(home_net), networks.index(visited_net))
    networks = [_with_freq(net, i) if isinstance(net, dict) else net for i, net in enumerate(networks)]
    home_net, visited_net = networks[at[0]], networks[at[1]]
    home_link = home_net["link"]
    foreign_link = visited_net["link"]
    home_prefix = prefix_of(home_link, "the home agent's network")
    home_agent = ipv6_host(
        home_prefix,
        node_id("ha", home_link),
        "mvpn_topology_figures.%s.nodes.ha.addresses.%s" % (figure, home_link),
    )
    correspondent = ipv6_host(
        prefix_of("backbone", "the correspondent's link"),
        node_id("cn", "backbone"),
        "mvpn_topology_figures.%s.nodes.cn.addresses.backbone" % figure,
    )
    home_address = ipv6_host(home_prefix, token, "mvpn_mn_token")

    # The mobile node on each wireless network: its address there (prefix + token) and the access
    # router, the gateway of its default route when it is addressed statically.
    mn_links = {}
    for net in networks:
        link = net["link"]
        router_node = net.get("node")
        mn_links[link] = {
            "ssid": net["ssid"],
            "prefix": prefix_of(link, "network %s" % net["ssid"]),
            "address": ipv6_address(prefix_of(link, "network %s" % net["ssid"]), token, "mvpn_mn_token"),
            "host": ipv6_host(prefix_of(link, "network %s" % net["ssid"]), token, "mvpn_mn_token"),
            "gateway": ipv6_host(
                prefixes[link],
                node_id(router_node, link),
                "mvpn_topology_figures.%s.nodes.%s.addresses.%s" % (figure, router_node, link),
            ),
        }

    # Tunnel mode: the protected (inner) end of the correspondent and of the mobile node.
    inner = {}
    for node in ("cn", "mn"):
        spec = inner_spec.get(node) if isinstance(inner_spec, dict) else None
        where = "mvpn_tunnel_inner.%s" % node
        link = _need(spec, "link", where + ".link", "the address plan's link of the inner prefix")
        iid = _need(spec, "id", where + ".id", "the inner address's interface identifier, e.g. ::10")
        interface = _need(
            spec, "interface", where + ".interface", "the dummy interface's name, e.g. olympus0"
        )
        prefix = prefix_of(link, "the inner prefix of %s" % where)
        inner[node] = {
            "interface": str(interface),
            "address": ipv6_address(prefix, iid, where + ".id"),
            "host": ipv6_host(prefix, iid, where + ".id"),
            "prefix": prefix,
        }

    # The ipsec role's SAs with their ends, policy selectors and SPIs (never keys).
    keys = _plain(_lookup(variables, "mvpn_ipsec_keys")) or {}
    ends = {"mn": home_address, "ha": home_agent, "cn": correspondent}
    sas = []
    for name, group, src_node, dst_node, mode, reqid, upper in _SAS:
        given = keys.get(name) if isinstance(keys, dict) else None
        spi = given.get("spi") if isinstance(given, dict) else None
        sa = {
            "name": name,
            "group": group,
            "src_node": src_node,
            "dst_node": dst_node,
            "src": ends[src_node],
            "dst": ends[dst_node],
            "mode": mode,
            "reqid": reqid,
            "spi": _spi_text(DEFAULT_SPIS[name]) if spi is None else spi,
        }
        if mode == "tunnel":
            selector = {"src": inner[src_node]["prefix"], "dst": inner[dst_node]["prefix"]}
            sa["selector"] = selector
            sa["policy"] = dict(selector)
        else:
            sa["policy"] = dict({"src": ends[src_node] + "/128", "dst": ends[dst_node] + "/128"}, **upper)
        sas.append(sa)

    node = _lookup(variables, "mvpn_node")
    host = None
    if node is not None:
        host = node_plan(
            figures,
            figure,
            plans,
            plan,
            node,
            _plain(_lookup(variables, "mvpn_interfaces")) or {},
            _lookup(variables, "inventory_hostname") or "this host",
        )

    return {
        "figure": figure,
        "address_plan": plan,
        "mn_token": token,
        "prefixes": prefixes,
        "wlan_networks": networks,
        "home_link": home_link,
        "foreign_link": foreign_link,
        "ssids": {"home": home_net["ssid"], "visited": visited_net["ssid"]},
        # what the handovers scan before associating (mvpn.lab.handover scan_freqs): the network's
        # own channel, a tenth of a second, where a full scan takes 10 s on the twin's radios
        "scan_freqs": {"home": [home_net["freq"]], "visited": [visited_net["freq"]]},
        "home_prefix": home_prefix,
        "home_prefix_len": int(home_prefix.split("/")[1]),
        "foreign_prefix": prefix_of(foreign_link, "the foreign router's network"),
        "home_address": home_address,
        "home_agent": home_agent,
        "correspondent": correspondent,
        "correspondent_inner": inner["cn"]["host"],
        "nodes": nodes,
        "mn_links": mn_links,
        "inner": inner,
        "ipsec": {"suites": lab_suites(), "sas": sas},
        "node": node,
        "host": host,
    }


def ipsec_key_problems(keys, names, suite):
    """The ipsec role's check of this host's keys: one line per problem, never a value.

    The key lengths are those of plugins/module_utils/suites.py, as ``mvpn-lab keys`` and the
    xfrm_state module use them.
    """
    return key_problems(_plain(keys), list(names or []), suite)


class FilterModule:
    def filters(self):
        return {"lab_model": lab_model, "ipsec_key_problems": ipsec_key_problems}
