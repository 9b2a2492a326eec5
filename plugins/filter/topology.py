# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Address math and per-node plans for the paper's lab topology (netaddr based)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

try:
    import netaddr
except ImportError:  # pragma: no cover - reported when a filter is used
    netaddr = None

NODES = ("mn", "ha", "fn", "cn", "impair")


def _need_netaddr():
    if netaddr is None:
        raise AnsibleFilterError(
            "the mvpn.lab topology filters need the Python package netaddr on the controller"
        )


def ipv6_prefix(value, field="prefix"):
    """Validate an IPv6 prefix and return it normalised (``fec0:106:2500::/64``)."""
    _need_netaddr()
    text = str(value)
    try:
        if "/" not in text:
            raise ValueError("no prefix length")
        net = netaddr.IPNetwork(text, version=6)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise AnsibleFilterError(
            "%s: %r is not an IPv6 prefix (expected an address/length such as fec0:106:2500::/64)"
            % (field, text)
        ) from None
    if net.ip != net.network:
        raise AnsibleFilterError(
            "%s: %r has host bits set (expected the network address, e.g. %s)" % (field, text, net.cidr)
        )
    return str(net.cidr)


def ipv6_address(prefix, iid, field="address"):
    """Join a prefix and an interface identifier.

    ``fec0:106:2700::/64`` + ``::1`` -> ``fec0:106:2700::1/64``.
    """
    _need_netaddr()
    net = netaddr.IPNetwork(ipv6_prefix(prefix, field))
    try:
        host = netaddr.IPAddress(str(iid), version=6)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise AnsibleFilterError(
            "%s: %r is not an IPv6 interface identifier (expected e.g. ::1)" % (field, iid)
        ) from None
    if int(host) >> (128 - net.prefixlen):
        raise AnsibleFilterError(
            "%s: interface identifier %s does not fit in the host part of %s" % (field, host, net)
        )
    return "%s/%d" % (netaddr.IPAddress(int(net.network) | int(host), 6), net.prefixlen)


def ipv6_host(prefix, iid, field="address"):
    """Like ipv6_address, without the prefix length."""
    return ipv6_address(prefix, iid, field).split("/")[0]


def _plan_prefixes(plans, plan_name):
    if plan_name not in (plans or {}):
        raise AnsibleFilterError(
            "mvpn_address_plan: %r is not a plan of mvpn_address_plans (expected one of: %s)"
            % (plan_name, ", ".join(sorted(plans or {})))
        )
    return {
        link: ipv6_prefix(prefix, "mvpn_address_plans.%s.%s" % (plan_name, link))
        for link, prefix in plans[plan_name].items()
    }


def node_plan(figures, figure, plans, plan_name, node, interfaces, host="this host"):
    """Addresses, routes and forwarding of one lab node in the selected figure and address plan.

    Raises a one-line error naming the variable when the inventory is incomplete.
    """
    if figure not in (figures or {}):
        raise AnsibleFilterError(
            "mvpn_topology_figure: %r is not a figure of mvpn_topology_figures (expected one of: %s)"
            % (figure, ", ".join(sorted(figures or {})))
        )
    if node not in NODES:
        raise AnsibleFilterError(
            "mvpn_node: %r on %s is not a lab node (expected one of: %s)" % (node, host, ", ".join(NODES))
        )
    prefixes = _plan_prefixes(plans, plan_name)
    spec = (figures[figure].get("nodes") or {}).get(node) or {}
    interfaces = interfaces or {}
    result = {
        "node": node,
        "forwarding": bool(spec.get("forwarding", False)),
        "addresses": [],
        "routes": [],
        "interfaces": [],
    }

    def iface(link):
        name = interfaces.get(link)
        if not name or not str(name).strip():
            raise AnsibleFilterError(
                "mvpn_interfaces.%s: missing on %s (expected the name of its interface on the %s link, "
                "e.g. eth0)" % (link, host, link)
            )
        return str(name)

    def prefix_of(link):
        if link not in prefixes:
            raise AnsibleFilterError(
                "mvpn_address_plans.%s.%s: missing (expected the link's IPv6 prefix)" % (plan_name, link)
            )
        return prefixes[link]

    for link, iid in (spec.get("addresses") or {}).items():
        name = iface(link)
        result["addresses"].append(
            {
                "interface": name,
                "address": ipv6_address(
                    prefix_of(link),
                    iid,
                    "mvpn_topology_figures.%s.nodes.%s.addresses.%s" % (figure, node, link),
                ),
            }
        )
        if name not in result["interfaces"]:
            result["interfaces"].append(name)
    for route in spec.get("routes") or []:
        via = route.get("via")
        gateway = ipv6_host(
            prefix_of(via), route.get("gateway"), "mvpn_topology_figures.%s.nodes.%s.routes" % (figure, node)
        )
        dest = route.get("to")
        result["routes"].append(
            {
                "dest": "::/0" if dest == "default" else prefix_of(dest),
                "gateway": gateway,
                "interface": iface(via),
            }
        )
    return result


def node_sysctls(interfaces, forwarding, slaac):
    """Kernel parameters of a lab node: forwarding, and RA/SLAAC handling on its managed interfaces.

    Routers and the correspondent node ignore Router Advertisements; a mobile node in dynamic
    mode accepts them and autoconfigures its address (prefix + token).
    """
    accept = 1 if slaac else 0
    settings = {"net.ipv6.conf.all.forwarding": 1 if forwarding else 0}
    for name in interfaces:
        # sysctl spells a "." inside an interface name (VLAN eth0.100) as "/".
        key = str(name).replace(".", "/")
        settings["net.ipv6.conf.%s.accept_ra" % key] = accept
        settings["net.ipv6.conf.%s.autoconf" % key] = accept
    return settings


def utf8_length(value):
    """Length in bytes of a string encoded as UTF-8 (an SSID is at most 32 bytes)."""
    return len(str(value).encode("utf-8"))


def unit_name(service, netns=""):
    """systemd unit of a lab service: an instance unit per namespace on the twin, a plain unit on hardware."""
    if netns:
        return "mvpn-%s@%s.service" % (service, netns)
    return "mvpn-%s.service" % service


def unit_file(service, netns=""):
    """File name of the unit that :func:`unit_name` instantiates."""
    return "mvpn-%s@.service" % service if netns else "mvpn-%s.service" % service


class FilterModule:
    def filters(self):
        return {
            "ipv6_prefix": ipv6_prefix,
            "ipv6_address": ipv6_address,
            "ipv6_host": ipv6_host,
            "node_plan": node_plan,
            "node_sysctls": node_sysctls,
            "utf8_length": utf8_length,
            "unit_name": unit_name,
            "unit_file": unit_file,
        }
