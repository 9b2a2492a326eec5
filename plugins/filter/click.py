# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The impairment node's ``click`` backend: a Click (userlevel) configuration that routes IPv6
between the node's two ports and emulates the GPRS/UMTS link in each direction.

The filter's documentation is ``click_config.yml`` beside this file; the configuration itself is
described in docs/impairment.md ("Click backend").
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ansible.errors import AnsibleFilterError

# Outputs of the routing table (LookupIP6Route) that lead to no port.
TO_SELF = 0
NOT_FORWARDED = 3
# port -> (its LookupIP6Route output, the direction of the traffic that leaves by it)
PORTS = {"backbone": (1, "uplink"), "impaired": (2, "downlink")}
# Destinations a router never forwards: multicast and link-local.
NEVER_FORWARDED = (ipaddress.IPv6Network("ff00::/8"), ipaddress.IPv6Network("fe80::/10"))
# Classifier patterns: EtherType IPv6, next header ICMPv6 with hop limit 255, ICMPv6 type 135/136.
ND_SOLICITATION = "12/86dd 20/3aff 54/87"
ND_ADVERTISEMENT = "12/86dd 20/3aff 54/88"
# LinkUnqueue keeps its bandwidth in whole steps of 100 bytes/s and refuses less than one step.
LINK_STEP_BYTES = 100
DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


@dataclass(frozen=True)
class Port:
    role: str  # backbone or impaired
    device: str
    interface: ipaddress.IPv6Interface
    ether: str  # a MAC address, or Click's DEVICE:eth (the device's own address)


@dataclass(frozen=True)
class Route:
    dest: ipaddress.IPv6Network
    gateway: ipaddress.IPv6Address
    device: str


def _error(field: str, value: Any, problem: str, expected: str) -> AnsibleFilterError:
    """``field: 'value' problem (expected ...)``, or ``field: missing (expected ...)``."""
    got = "missing" if value is None else "%r %s" % (value, problem)
    return AnsibleFilterError("%s: %s (expected %s)" % (field, got, expected))


def _text(value: Decimal | float) -> str:
    """A number without exponent or trailing zeros: 350.0 -> "350", 0.005 -> "0.005"."""
    return format(Decimal(str(value)).normalize(), "f")


def _number(
    profile: dict,
    key: str,
    low: float,
    high: float | None = None,
    open_low: bool = False,
    default: Any = None,
) -> Decimal:
    """``profile[key]`` (or ``default`` when absent or null) checked against its bounds."""
    value = default if profile.get(key) is None else profile[key]
    if high is not None:
        expected = "a number from %s to %s" % (_text(low), _text(high))
    else:
        expected = "a number %s %s" % (">" if open_low else ">=", _text(low))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _error("profile.%s" % key, value, "is not a number", expected)
    if value < low or (open_low and value == low) or (high is not None and value > high):
        raise _error("profile.%s" % key, value, "is out of range", expected)
    return Decimal(str(value))


def _profile(profile: Any) -> dict[str, Any]:
    if not isinstance(profile, dict):
        raise _error("profile", profile, "is not a mapping", "uplink_kbit, downlink_kbit and rtt_ms")
    figures: dict[str, Any] = {}
    for key in ("uplink_kbit", "downlink_kbit"):
        figures[key] = _number(profile, key, 0, open_low=True)
        if figures[key] * 125 < LINK_STEP_BYTES:
            raise _error(
                "profile.%s" % key, profile[key], "is too slow", "at least 0.8, LinkUnqueue's smallest rate"
            )
    figures["rtt_ms"] = _number(profile, "rtt_ms", 0)
    if profile.get("jitter_ms") is not None:
        jitter = _number(profile, "jitter_ms", 0, high=float(figures["rtt_ms"] / 2))
        if jitter > 0:
            raise _error(
                "profile.jitter_ms",
                profile["jitter_ms"],
                "is not supported: the click backend does not emulate jitter",
                "0, or the netem backend",
            )
    figures["loss_pct"] = _number(profile, "loss_pct", 0, high=100, default=0)
    queue = 50 if profile.get("queue_packets") is None else profile["queue_packets"]
    if isinstance(queue, bool) or not isinstance(queue, int) or queue < 1:
        raise _error("profile.queue_packets", queue, "is not valid", "an integer >= 1")
    figures["queue_packets"] = queue
    return figures


def _port(value: Any, role: str) -> Port:
    if not isinstance(value, dict):
        raise _error(role, value, "is not a mapping", "device, address and optionally mac")
    device = value.get("device")
    if not isinstance(device, str) or not DEVICE_RE.match(device):
        raise _error("%s.device" % role, device, "is not an interface name", "e.g. eth0")
    address = value.get("address")
    expected = "a unicast IPv6 address with its prefix length, e.g. fec0:106:2500::3/64"
    try:
        if not isinstance(address, str) or "/" not in address:
            raise ValueError
        interface = ipaddress.IPv6Interface(address)
    except ValueError:
        raise _error("%s.address" % role, address, "is not an IPv6 address/length", expected) from None
    ip = interface.ip
    if ip.is_multicast or ip.is_link_local or ip.is_loopback or ip.is_unspecified:
        raise _error("%s.address" % role, address, "is not a routable unicast address", expected)
    if not 0 < interface.network.prefixlen < 128:
        raise _error("%s.address" % role, address, "has no link prefix", "a prefix length from 1 to 127")
    mac = value.get("mac")
    if mac is None:
        ether = "%s:eth" % device
    elif isinstance(mac, str) and MAC_RE.match(mac) and not int(mac[:2], 16) & 1:
        ether = mac.lower()
    else:
        raise _error("%s.mac" % role, mac, "is not a unicast MAC address", "e.g. 52:54:00:12:34:56")
    return Port(role, device, interface, ether)


def _routes(routes: Any, ports: dict[str, Port]) -> list[Route]:
    if routes is None:
        return []
    if not isinstance(routes, list):
        raise _error("routes", routes, "is not a list", "a list of {dest, gateway, device}")
    taken = set(NEVER_FORWARDED)
    for port in ports.values():
        taken.update((port.interface.network, ipaddress.IPv6Network(port.interface.ip)))
    table = []
    for index, route in enumerate(routes):
        field = "routes[%d]" % index
        if not isinstance(route, dict):
            raise _error(field, route, "is not a mapping", "dest, gateway and device")
        device = route.get("device")
        if device not in ports:
            raise _error(field + ".device", device, "is not a port of the node", "backbone or impaired")
        dest = route.get("dest")
        prefix = "::/0" if dest == "default" else dest
        try:
            if not isinstance(prefix, str) or "/" not in prefix:
                raise ValueError
            network = ipaddress.IPv6Network(prefix)
        except ValueError:
            raise _error(
                field + ".dest", dest, "is not an IPv6 prefix", "a prefix such as fec0:106:2700::/64, or ::/0"
            ) from None
        if network in taken:
            raise _error(field + ".dest", dest, "is already in the routing table", "each prefix once")
        taken.add(network)
        gateway = route.get("gateway")
        try:
            if not isinstance(gateway, str):
                raise ValueError
            address = ipaddress.IPv6Address(gateway)
        except ValueError:
            raise _error(
                field + ".gateway", gateway, "is not an IPv6 address", "e.g. fec0:106:2500::1"
            ) from None
        link = ports[device].interface
        if not (address.is_link_local or address in link.network) or address == link.ip:
            raise _error(
                field + ".gateway",
                gateway,
                "is not a neighbour on the %s link" % device,
                "another address in %s, or a link-local one" % link.network,
            )
        table.append(Route(network, address, device))
    return table


def _effective_kbit(kbit: Decimal) -> Decimal:
    """The rate LinkUnqueue emulates for ``kbit``: it keeps whole steps of 100 bytes/s."""
    steps = int(kbit * 125) // LINK_STEP_BYTES
    return Decimal(steps * LINK_STEP_BYTES * 8) / 1000


def _declare(name: str, element: str, *args: str) -> str:
    return "%s :: %s(%s);" % (name, element, ", ".join(args)) if args else "%s :: %s;" % (name, element)


def _header(figures: dict[str, Any], backbone: Port, impaired: Port) -> list[str]:
    rates = (figures["uplink_kbit"], figures["downlink_kbit"], figures["rtt_ms"], figures["rtt_ms"] / 2)
    lines = [
        "// Impairment node, click backend: Click userlevel configuration.",
        "// Generated by the mvpn.lab.click_config filter; change the profile, not this file.",
        "//",
        "// Profile: uplink %s kbit/s, downlink %s kbit/s, RTT %s ms (%s ms each way),"
        % tuple(_text(value) for value in rates),
        "//   loss %s %%, queue %d packets per direction."
        % (_text(figures["loss_pct"]), figures["queue_packets"]),
        "//   Uplink: impaired side (%s) -> backbone (%s); downlink: backbone -> impaired side."
        % (impaired.device, backbone.device),
    ]
    for direction in ("uplink", "downlink"):
        kbit = figures[direction + "_kbit"]
        if _effective_kbit(kbit) != kbit:
            lines.append(
                "//   LinkUnqueue counts in steps of 100 bytes/s: the %s runs at %s kbit/s."
                % (direction, _text(_effective_kbit(kbit)))
            )
    return [
        *lines,
        "//   Only routed IPv6 packets cross the emulated links (their IPv6 bytes count, not the",
        "//   Ethernet header); neighbour discovery does not.",
        "//",
        "// Click, not the kernel, routes IPv6 between %s and %s: when this backend is used the"
        % (backbone.device, impaired.device),
        "// role disables the kernel's IPv6 on both ports (disable_ipv6), so the kernel neither",
        "// forwards nor answers there. Run with the userlevel driver:",
        "//   click /etc/mvpn-lab/impair/click.conf",
        "",
    ]


def _port_lines(port: Port) -> list[str]:
    """A port's input (frame filter, neighbour discovery, IPv6 checks) and output."""
    r, ip = port.role, port.interface.ip
    return [
        "// ---- %s port: %s, %s ----" % (r, port.device, port.interface),
        "// Promiscuous, because with the kernel's IPv6 off the port joins no solicited-node group;",
        "// HostEtherFilter then keeps only frames for this port and multicast.",
        _declare(r + "_in", "FromDevice", port.device, "PROMISC true"),
        _declare(r + "_ether_filter", "HostEtherFilter", port.ether),
        "// [0] neighbour solicitation, [1] neighbour advertisement, [2] other IPv6, [3] not IPv6",
        _declare(r + "_classifier", "Classifier", ND_SOLICITATION, ND_ADVERTISEMENT, "12/86dd", "-"),
        _declare(r + "_nd_advertiser", "IP6NDAdvertiser", "%s/128 %s" % (ip, port.ether)),
        _declare(r + "_nd_solicitor", "IP6NDSolicitor", str(ip), port.ether),
        _declare(r + "_strip", "Strip", "14"),
        _declare(r + "_check", "CheckIP6Header", "::0"),
        _declare(r + "_dst", "GetIP6Address", "24"),
        _declare(r + "_non_ipv6", "Discard"),
        _declare(r + "_out", "ToDevice", port.device),
        "",
        "%s_in -> %s_ether_filter -> %s_classifier;" % (r, r, r),
        "%s_classifier[0] -> %s_nd_advertiser -> %s_out;" % (r, r, r),
        "%s_classifier[1] -> [1]%s_nd_solicitor;" % (r, r),
        "%s_classifier[2] -> %s_strip -> %s_check -> %s_dst -> router;" % (r, r, r, r),
        "%s_classifier[3] -> %s_non_ipv6;" % (r, r),
        "%s_nd_solicitor -> %s_out;" % (r, r),
        "",
    ]


def _router_lines(ports: dict[str, Port], routes: list[Route]) -> list[str]:
    entries = ["%s/128 %d" % (port.interface.ip, TO_SELF) for port in ports.values()]
    entries += ["%s %d" % (network, NOT_FORWARDED) for network in NEVER_FORWARDED]
    entries += ["%s %d" % (port.interface.network, PORTS[port.role][0]) for port in ports.values()]
    entries += ["%s %s %d" % (route.dest, route.gateway, PORTS[route.device][0]) for route in routes]
    return [
        "// ---- routing ----",
        "// Outputs: [%d] the node itself, [1] backbone (uplink), [2] impaired (downlink)," % TO_SELF,
        "// [%d] multicast and link-local destinations, never forwarded." % NOT_FORWARDED,
        "router :: LookupIP6Route(\n    %s);" % ",\n    ".join(entries),
        "// Packets for the node's own addresses end here: Click has no ICMPv6 echo responder and",
        "// the kernel's IPv6 is off on both ports, so the node answers neighbour discovery only",
        "// (no ping6 to its lab addresses).",
        _declare("to_self", "Discard"),
        _declare("not_forwarded", "Discard"),
        "",
        "router[%d] -> to_self;" % TO_SELF,
        "router[%d] -> not_forwarded;" % NOT_FORWARDED,
        "",
    ]


def _direction_lines(port: Port, source: Port, figures: dict[str, Any]) -> list[str]:
    """The emulated link of the traffic that leaves by ``port`` (it came in by ``source``)."""
    output, d = PORTS[port.role]
    kbit, latency = figures[d + "_kbit"], figures["rtt_ms"] / 2
    lines = [
        "// ---- %s: %s -> %s (%s), %s kbit/s, %s ms ----"
        % (d, source.role, port.role, port.device, _text(kbit), _text(latency)),
        _declare(d + "_hlim", "DecIP6HLIM"),
        "// Hop limit exceeded: ICMPv6 Time Exceeded from the port the packet came in by.",
        _declare(d + "_time_exceeded", "ICMP6Error", str(source.interface.ip), "3", "0"),
        _declare(d + "_queue", "Queue", str(figures["queue_packets"])),
        _declare(d + "_link", "LinkUnqueue", _text(latency) + "ms", _text(kbit) + "kbps"),
    ]
    chain = ["router[%d]" % output, d + "_hlim", d + "_queue", d + "_link"]
    if figures["loss_pct"] > 0:
        lines += [
            "// Lost on the air, after the packet has used its share of the link.",
            _declare(d + "_loss", "RandomSample", "DROP " + _text(figures["loss_pct"] / 100)),
        ]
        chain.append(d + "_loss")
    chain.append(port.role + "_nd_solicitor")
    return [*lines, "", " -> ".join(chain) + ";", "%s_hlim[1] -> %s_time_exceeded -> router;" % (d, d), ""]


def click_config(profile: Any, backbone: Any = None, impaired: Any = None, routes: Any = None) -> str:
    """The text of the impairment node's Click configuration.

    ``profile`` has ``uplink_kbit``, ``downlink_kbit``, ``rtt_ms`` and optionally ``jitter_ms``
    (only 0), ``loss_pct`` and ``queue_packets``; ``backbone`` and ``impaired`` are the node's two
    ports (``device``, ``address`` with prefix length, optional ``mac``); ``routes`` are
    ``{dest, gateway, device}`` with ``device`` backbone or impaired. Raises a one-line
    AnsibleFilterError naming the field of the first bad value.
    """
    figures = _profile(profile)
    ports = {"backbone": _port(backbone, "backbone"), "impaired": _port(impaired, "impaired")}
    b, i = ports["backbone"], ports["impaired"]
    if i.device == b.device:
        raise _error("impaired.device", i.device, "is also the backbone device", "the node's other port")
    if i.interface.network.overlaps(b.interface.network):
        raise _error(
            "impaired.address", str(i.interface), "overlaps the backbone link", "a prefix of its own"
        )
    table = _routes(routes, ports)
    lines = _header(figures, b, i) + _port_lines(b) + _port_lines(i) + _router_lines(ports, table)
    lines += _direction_lines(b, i, figures) + _direction_lines(i, b, figures)
    return "\n".join(lines).rstrip("\n") + "\n"


class FilterModule:
    def filters(self):
        return {"click_config": click_config}
