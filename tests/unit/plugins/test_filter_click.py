"""The click backend's filter: the impairment node's Click configuration, read back as a graph."""

from __future__ import annotations

import re
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.mvpn.lab.plugins.filter import click as c

ROOT = Path(__file__).resolve().parents[3]
PROFILES = yaml.safe_load((ROOT / "src/mvpn_lab/data/paper_results.yaml").read_text())["impairment_profiles"]

# The paper's impairment node (Fig. 5).
BACKBONE = {"device": "eth0", "address": "fec0:106:2500::3/64"}
IMPAIRED = {"device": "eth1", "address": "fec0:106:1700::1/64"}
ROUTES = [
    {"dest": "fec0:106:2700::/64", "gateway": "fec0:106:2500::1", "device": "backbone"},
    {"dest": "fec0:106:1100::/64", "gateway": "fec0:106:1700::2", "device": "impaired"},
]

# `name :: Element(args);` or `name :: Element;`, the arguments possibly over several lines.
DECLARATION = re.compile(r"^(\w+) :: (\w+)(?:\((.*?)\))?;$", re.M | re.S)
# One end of a connection: `[in]name[out]`, both ports optional.
ENDPOINT = re.compile(r"^(?:\[(\d+)\])?(\w+)(?:\[(\d+)\])?$")


def render(profile, **changes):
    args = {"backbone": BACKBONE, "impaired": IMPAIRED, "routes": ROUTES, **changes}
    return c.click_config(profile, **args)


def parse(text):
    """The declared elements ``{name: (class, [args])}`` and the connections
    ``{(name, output): [(name, input), ...]}`` of a configuration."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    elements = {}
    for name, element, args in DECLARATION.findall(body):
        assert name not in elements, name
        elements[name] = (element, [" ".join(arg.split()) for arg in args.split(",")] if args else [])
    edges = defaultdict(list)
    for statement in body.split(";"):
        if "->" not in statement:
            continue
        hops = [ENDPOINT.match(hop.strip()) for hop in statement.split("->")]
        assert all(hops), statement
        for a, b in pairwise(hops):
            edges[(a[2], int(a[3] or 0))].append((b[2], int(b[1] or 0)))
    return elements, edges


def path(elements, edges, start):
    """The element names from output ``start`` (name, port) to the first ToDevice, by output 0."""
    hops, here = [], start
    while True:
        (name, _port), *others = edges[here]
        assert not others, here
        hops.append(name)
        if elements[name][0] == "ToDevice":
            return hops
        here = (name, 0)


def of_class(elements, names, element):
    return [elements[name] for name in names if elements[name][0] == element]


def test_paper_profiles_are_the_briefs():
    assert PROFILES["gprs"] == {"uplink_kbit": 10, "downlink_kbit": 40, "rtt_ms": 700}
    assert PROFILES["umts"] == {"uplink_kbit": 128, "downlink_kbit": 128, "rtt_ms": 500}


def test_gprs_link_per_direction():
    elements, edges = parse(render(PROFILES["gprs"]))
    uplink = path(elements, edges, ("router", 1))
    downlink = path(elements, edges, ("router", 2))
    # uplink: foreign side -> backbone (eth0), 10 kbit/s; downlink: backbone -> foreign side (eth1), 40 kbit/s
    assert elements[uplink[-1]] == ("ToDevice", ["eth0"])
    assert elements[downlink[-1]] == ("ToDevice", ["eth1"])
    assert of_class(elements, uplink, "LinkUnqueue") == [("LinkUnqueue", ["350ms", "10kbps"])]
    assert of_class(elements, downlink, "LinkUnqueue") == [("LinkUnqueue", ["350ms", "40kbps"])]
    assert uplink[:4] == ["uplink_hlim", "uplink_queue", "uplink_link", "backbone_nd_solicitor"]
    assert downlink[:4] == ["downlink_hlim", "downlink_queue", "downlink_link", "impaired_nd_solicitor"]
    assert elements["uplink_queue"] == elements["downlink_queue"] == ("Queue", ["50"])
    assert elements["uplink_hlim"] == ("DecIP6HLIM", [])
    assert not [name for name, (element, _args) in elements.items() if element == "RandomSample"]


def test_gprs_header_names_the_figures():
    text = render(PROFILES["gprs"])
    header = text.split("\n\n", maxsplit=1)[0]
    assert all(line.startswith("//") for line in header.splitlines())
    assert "uplink 10 kbit/s, downlink 40 kbit/s, RTT 700 ms (350 ms each way)" in header
    assert "queue 50 packets" in header and "loss 0 %" in header
    assert "the uplink runs at 9.6 kbit/s" in header  # LinkUnqueue keeps steps of 100 bytes/s
    assert "disable" in header and "click /etc/mvpn-lab/impair/click.conf" in header


def test_umts():
    text = render(PROFILES["umts"])
    elements, _edges = parse(text)
    assert elements["uplink_link"] == elements["downlink_link"] == ("LinkUnqueue", ["250ms", "128kbps"])
    assert "runs at" not in text  # 128 kbit/s is a whole number of steps


def test_ports_classify_answer_nd_and_feed_the_router():
    elements, edges = parse(render(PROFILES["gprs"], impaired={**IMPAIRED, "mac": "52:54:00:AB:CD:01"}))
    for role, device, address, ether in (
        ("backbone", "eth0", "fec0:106:2500::3", "eth0:eth"),
        ("impaired", "eth1", "fec0:106:1700::1", "52:54:00:ab:cd:01"),
    ):
        assert elements[role + "_in"] == ("FromDevice", [device, "PROMISC true"])
        assert edges[(role + "_in", 0)] == [(role + "_ether_filter", 0)]
        assert elements[role + "_ether_filter"] == ("HostEtherFilter", [ether])
        patterns = ["12/86dd 20/3aff 54/87", "12/86dd 20/3aff 54/88", "12/86dd", "-"]
        assert elements[role + "_classifier"] == ("Classifier", patterns)
        advertiser = path(elements, edges, (role + "_classifier", 0))
        assert of_class(elements, advertiser, "IP6NDAdvertiser") == [
            ("IP6NDAdvertiser", [f"{address}/128 {ether}"])
        ]
        assert elements[advertiser[-1]] == ("ToDevice", [device])
        assert edges[(role + "_classifier", 1)] == [(role + "_nd_solicitor", 1)]
        assert elements[role + "_nd_solicitor"] == ("IP6NDSolicitor", [address, ether])
        ipv6 = [role + "_classifier"]
        while ipv6[-1] != "router":
            ((name, _port),) = edges[(ipv6[-1], 2 if len(ipv6) == 1 else 0)]
            ipv6.append(name)
        assert [elements[name][0] for name in ipv6[1:-1]] == ["Strip", "CheckIP6Header", "GetIP6Address"]
        assert elements[edges[(role + "_classifier", 3)][0][0]][0] == "Discard"


def test_every_route_is_in_the_routing_table():
    routes = [*ROUTES, {"dest": "default", "gateway": "fec0:106:2500::1", "device": "backbone"}]
    elements, edges = parse(render(PROFILES["gprs"], routes=routes))
    element, table = elements["router"]
    assert element == "LookupIP6Route"
    assert table == [
        "fec0:106:2500::3/128 0",
        "fec0:106:1700::1/128 0",
        "ff00::/8 3",
        "fe80::/10 3",
        "fec0:106:2500::/64 1",
        "fec0:106:1700::/64 2",
        "fec0:106:2700::/64 fec0:106:2500::1 1",
        "fec0:106:1100::/64 fec0:106:1700::2 2",
        "::/0 fec0:106:2500::1 1",
    ]
    discards = edges[("router", 0)] + edges[("router", 3)]
    assert [elements[name][0] for name, _port in discards] == ["Discard"] * 2


def test_time_exceeded_goes_back_through_the_router():
    elements, edges = parse(render(PROFILES["gprs"]))
    for direction, source in (("uplink", "fec0:106:1700::1"), ("downlink", "fec0:106:2500::3")):
        ((name, _port),) = edges[(direction + "_hlim", 1)]
        assert elements[name] == ("ICMP6Error", [source, "3", "0"])
        assert edges[(name, 0)] == [("router", 0)]


def test_graph_is_closed():
    elements, edges = parse(render({**PROFILES["gprs"], "loss_pct": 1}))
    used = {name for name, _port in edges} | {name for ends in edges.values() for name, _port in ends}
    assert used == set(elements)


def test_loss_renders_random_sample_after_the_link():
    elements, edges = parse(render({**PROFILES["umts"], "loss_pct": 1.5, "queue_packets": 20}))
    for direction in ("uplink", "downlink"):
        hops = path(elements, edges, ("router", 1 if direction == "uplink" else 2))
        assert hops[2:4] == [direction + "_link", direction + "_loss"]
        assert elements[direction + "_loss"] == ("RandomSample", ["DROP 0.015"])
        assert elements[direction + "_queue"] == ("Queue", ["20"])


def test_deterministic():
    profile = {"rtt_ms": 700, "downlink_kbit": 40, "uplink_kbit": 10, "loss_pct": 2}
    first = render(profile)
    assert render(dict(reversed(list(profile.items())))) == first
    assert render(profile, backbone=dict(reversed(list(BACKBONE.items())))) == first
    assert render(profile) == first
    assert first.endswith(";\n")


def test_fractional_figures():
    profile = {"uplink_kbit": 12.5, "downlink_kbit": 64, "rtt_ms": 125, "loss_pct": 0.1}
    elements, _edges = parse(render(profile))
    assert elements["uplink_link"] == ("LinkUnqueue", ["62.5ms", "12.5kbps"])
    assert elements["uplink_loss"] == ("RandomSample", ["DROP 0.001"])


GPRS = {"uplink_kbit": 10, "downlink_kbit": 40, "rtt_ms": 700}


def port(role, **values):
    """The changes that give port ``role`` these values."""
    return {role: {**(BACKBONE if role == "backbone" else IMPAIRED), **values}}


def route(**values):
    """The changes that give the first route these values."""
    return {"routes": [{**ROUTES[0], **values}]}


@pytest.mark.parametrize(
    ("profile", "changes", "field", "says"),
    [
        ({"uplink_kbit": 10, "downlink_kbit": 40}, {}, "profile.rtt_ms", "missing"),
        ({**GPRS, "uplink_kbit": -10}, {}, "profile.uplink_kbit", "out of range"),
        ({**GPRS, "downlink_kbit": 0}, {}, "profile.downlink_kbit", "out of range"),
        ({**GPRS, "downlink_kbit": "40"}, {}, "profile.downlink_kbit", "not a number"),
        ({**GPRS, "uplink_kbit": True}, {}, "profile.uplink_kbit", "not a number"),
        ({**GPRS, "uplink_kbit": 0.5}, {}, "profile.uplink_kbit", "too slow"),
        ({**GPRS, "rtt_ms": -1}, {}, "profile.rtt_ms", "out of range"),
        ({**GPRS, "jitter_ms": 351}, {}, "profile.jitter_ms", "out of range"),
        ({**GPRS, "jitter_ms": 20}, {}, "profile.jitter_ms", "does not emulate jitter"),
        ({**GPRS, "loss_pct": 101}, {}, "profile.loss_pct", "out of range"),
        ({**GPRS, "queue_packets": 0}, {}, "profile.queue_packets", "integer >= 1"),
        ({**GPRS, "queue_packets": 2.5}, {}, "profile.queue_packets", "integer >= 1"),
        ([10, 40, 700], {}, "profile", "not a mapping"),
        (GPRS, {"backbone": None}, "backbone", "missing"),
        (GPRS, {"impaired": {"address": "fec0:106:1700::1/64"}}, "impaired.device", "missing"),
        (GPRS, port("backbone", device="eth 0"), "backbone.device", "interface name"),
        (GPRS, port("backbone", address="fec0:106:2500::3"), "backbone.address", "address/length"),
        (GPRS, port("impaired", address="fec0:106:zz::1/64"), "impaired.address", "address/length"),
        (GPRS, port("impaired", address="10.0.0.1/24"), "impaired.address", "address/length"),
        (GPRS, port("impaired", address="ff02::1/64"), "impaired.address", "unicast"),
        (GPRS, port("impaired", address="fec0:106:1700::1/128"), "impaired.address", "prefix"),
        (GPRS, port("impaired", mac="01:00:5e:00:00:01"), "impaired.mac", "unicast MAC"),
        (GPRS, port("impaired", device="eth0"), "impaired.device", "also the backbone"),
        (GPRS, port("impaired", address="fec0:106:2500::9/64"), "impaired.address", "overlaps"),
        (GPRS, {"routes": {"dest": "::/0"}}, "routes", "not a list"),
        (GPRS, {"routes": [ROUTES[0], {**ROUTES[1], "device": "eth1"}]}, "routes[1].device", "not a port"),
        (GPRS, route(device=None), "routes[0].device", "missing"),
        (GPRS, route(dest="fec0:106:2700::1/64"), "routes[0].dest", "prefix"),
        (GPRS, route(dest="fec0:106:2700::"), "routes[0].dest", "prefix"),
        (GPRS, {"routes": [ROUTES[0], ROUTES[0]]}, "routes[1].dest", "already"),
        (GPRS, route(dest="fec0:106:2500::/64"), "routes[0].dest", "already"),
        (GPRS, route(gateway="nowhere"), "routes[0].gateway", "not an IPv6"),
        (GPRS, route(gateway=1), "routes[0].gateway", "not an IPv6"),
        (GPRS, route(gateway="fec0:106:1700::2"), "routes[0].gateway", "neighbour"),
        (GPRS, route(gateway="fec0:106:2500::3"), "routes[0].gateway", "neighbour"),
    ],
)
def test_bad_input_names_the_field(profile, changes, field, says):
    with pytest.raises(AnsibleFilterError) as raised:
        render(profile, **changes)
    message = str(raised.value)
    assert message.startswith(field + ": "), message
    assert says in message and "expected" in message and "\n" not in message


def test_optional_figures_and_link_local_gateway():
    profile = {**GPRS, "jitter_ms": 0, "loss_pct": 0, "queue_packets": 50, "description": "GPRS"}
    routes = [{"dest": "::/0", "gateway": "fe80::1", "device": "impaired"}]
    assert render(profile, routes=routes) == render(GPRS, routes=routes)
    nulls = {**GPRS, "jitter_ms": None, "loss_pct": None, "queue_packets": None}
    assert render(nulls) == render(GPRS)
    elements, _edges = parse(render(GPRS, routes=None))
    assert elements["router"][1][-1] == "fec0:106:1700::/64 2"


def test_filter_is_registered():
    assert c.FilterModule().filters() == {"click_config": c.click_config}
