"""mvpn.lab.ipv6_route run in-process against a fake iproute2 (see _fakeip.FakeIp)."""

from __future__ import annotations

import json

import pytest
from ansible_collections.mvpn.lab.plugins.modules import ipv6_route

from ._fakeip import route

# The correspondent node of Fig. 5 (eth0 on the backbone).
CN = {
    "routes": [
        {"dest": "fec0:106:2700::/64", "gateway": "fec0:106:2500::1", "interface": "eth0"},
        {"dest": "fec0:106:1100::/64", "gateway": "fec0:106:2500::3", "interface": "eth0"},
    ]
}
# The foreign router of Fig. 5: default route via the impairment node on the impaired link (eth0).
FN = {"routes": [{"dest": "default", "gateway": "fec0:106:1700::1", "interface": "eth0"}]}


def test_fresh_correspondent_node(fake_ip, run_module):
    result = run_module(ipv6_route, CN)
    assert fake_ip.changing() == [
        "ip -6 route replace fec0:106:1100::/64 via fec0:106:2500::3 dev eth0",
        "ip -6 route replace fec0:106:2700::/64 via fec0:106:2500::1 dev eth0",
    ]
    assert result["changed"] is True
    assert result["added"] == [
        "fec0:106:1100::/64 via fec0:106:2500::3 dev eth0",
        "fec0:106:2700::/64 via fec0:106:2500::1 dev eth0",
    ]
    assert result["removed"] == []


def test_second_run_changes_nothing(fake_ip, run_module):
    run_module(ipv6_route, dict(CN, purge=True))
    fake_ip.commands.clear()
    result = run_module(ipv6_route, dict(CN, purge=True))
    assert fake_ip.changing() == []
    assert result["changed"] is False and result["added"] == result["removed"] == []


def test_foreign_router_default_route(fake_ip, run_module):
    result = run_module(ipv6_route, FN)
    assert fake_ip.changing() == ["ip -6 route replace ::/0 via fec0:106:1700::1 dev eth0"]
    assert result["added"] == ["::/0 via fec0:106:1700::1 dev eth0"]


def test_routes_as_ip_prints_them_are_recognised(fake_ip, run_module):
    """Canned ``ip -j -6 route`` of a configured foreign router: "default", non-canonical spellings."""
    fake_ip.canned["ip -j -6 route show table main"] = (
        0,
        json.dumps(
            [
                {
                    "dst": "fec0:106:1100::/64",
                    "dev": "wlan0",
                    "protocol": "kernel",
                    "metric": 256,
                    "flags": [],
                    "pref": "medium",
                },
                {
                    "dst": "fec0:106:1700::/64",
                    "dev": "eth0",
                    "protocol": "kernel",
                    "metric": 256,
                    "flags": [],
                    "pref": "medium",
                },
                {
                    "dst": "fe80::/64",
                    "dev": "eth0",
                    "protocol": "kernel",
                    "metric": 256,
                    "flags": [],
                    "pref": "medium",
                },
                {
                    "dst": "default",
                    "gateway": "fec0:106:1700::1",
                    "dev": "eth0",
                    "protocol": "boot",
                    "metric": 1024,
                    "flags": [],
                    "pref": "medium",
                },
            ]
        ),
        "",
    )
    result = run_module(
        ipv6_route,
        {
            "routes": [{"dest": "::/0", "gateway": "FEC0:106:1700:0::1", "interface": "eth0"}],
            "interfaces": ["wlan0"],
            "purge": True,
        },
    )
    assert fake_ip.changing() == []
    assert result["changed"] is False


def test_purge_removes_static_routes_but_never_ra_or_kernel_routes(fake_ip, run_module):
    fake_ip.routes = [
        route("fec0:106:1700::/64", None, "eth0", protocol="kernel", metric=256),  # on-link prefix
        route("default", "fe80::1", "wlan0", protocol="ra", expires=1799),  # learned from an RA
        route("fec0:106:1100::/64", "fe80::1", "wlan0", protocol="ra", expires=1799),
        route("fec0:106:2700::/64", "fec0:106:2500::1", "eth0", protocol="boot"),  # stale static
        route("fec0:106:9900::/64", "fec0:106:2500::9", "eth0", protocol="static"),  # stale static
        route("fec0:106:2700::/64", "fec0:106:2500::1", "eth1", protocol="boot"),  # unmanaged interface
        route("default", "fec0:106:1700::1", "eth0", protocol="boot"),  # wanted
    ]
    fake_ip.routes[0].pop("gateway")
    result = run_module(ipv6_route, dict(FN, interfaces=["wlan0"], purge=True))
    assert fake_ip.changing() == [
        "ip -6 route del fec0:106:2700::/64 via fec0:106:2500::1 dev eth0 metric 1024",
        "ip -6 route del fec0:106:9900::/64 via fec0:106:2500::9 dev eth0 metric 1024",
    ]
    assert result["removed"] == [
        "fec0:106:2700::/64 via fec0:106:2500::1 dev eth0",
        "fec0:106:9900::/64 via fec0:106:2500::9 dev eth0",
    ]
    assert result["added"] == [] and result["changed"] is True
    assert [r["protocol"] for r in fake_ip.routes] == ["kernel", "ra", "ra", "boot", "boot"]


def test_without_purge_stale_routes_stay(fake_ip, run_module):
    fake_ip.routes = [route("fec0:106:9900::/64", "fec0:106:2500::9", "eth0")]
    result = run_module(ipv6_route, CN)
    assert not any(c.startswith("ip -6 route del") for c in fake_ip.changing())
    assert result["removed"] == []


def test_metric(fake_ip, run_module):
    args = {"routes": [dict(FN["routes"][0], metric=100)], "purge": True}
    fake_ip.routes = [route("default", "fec0:106:1700::1", "eth0", metric=1024)]
    first = run_module(ipv6_route, args)
    assert fake_ip.changing() == [
        "ip -6 route replace ::/0 via fec0:106:1700::1 dev eth0 metric 100",
        "ip -6 route del ::/0 via fec0:106:1700::1 dev eth0 metric 1024",
    ]
    assert first["changed"] is True
    assert [r["metric"] for r in fake_ip.routes] == [100]
    fake_ip.commands.clear()
    second = run_module(ipv6_route, args)
    assert fake_ip.changing() == []
    assert second["changed"] is False


def test_metric_is_idempotent_while_another_metric_coexists(fake_ip, run_module):
    """IPv6 keeps a route per metric; "replace" with a new metric adds one beside the old one."""
    args = {"routes": [dict(FN["routes"][0], metric=100)]}
    fake_ip.routes = [route("default", "fec0:106:1700::1", "eth0", metric=1024)]
    run_module(ipv6_route, args)
    assert sorted(r["metric"] for r in fake_ip.routes) == [100, 1024]
    fake_ip.routes.sort(key=lambda r: r["metric"])  # ip lists the lower metric first
    fake_ip.commands.clear()
    second = run_module(ipv6_route, args)
    assert fake_ip.changing() == []
    assert second["changed"] is False


def test_route_without_metric_accepts_any_metric(fake_ip, run_module):
    fake_ip.routes = [route("default", "fec0:106:1700::1", "eth0", metric=512)]
    result = run_module(ipv6_route, dict(FN, purge=True))
    assert fake_ip.changing() == []
    assert result["changed"] is False


def test_check_mode_reports_but_changes_nothing(fake_ip, run_module):
    fake_ip.routes = [route("fec0:106:9900::/64", "fec0:106:2500::9", "eth0")]
    before = json.dumps(fake_ip.routes)
    result = run_module(ipv6_route, dict(CN, purge=True), check=True)
    assert fake_ip.changing() == []
    assert json.dumps(fake_ip.routes) == before
    assert result["changed"] is True
    assert len(result["added"]) == 2
    assert result["removed"] == ["fec0:106:9900::/64 via fec0:106:2500::9 dev eth0"]


def test_diff(fake_ip, run_module):
    fake_ip.routes = [route("fec0:106:9900::/64", "fec0:106:2500::9", "eth0")]
    result = run_module(ipv6_route, dict(FN, purge=True), diff=True)
    assert result["diff"] == {
        "before": "fec0:106:9900::/64 via fec0:106:2500::9 dev eth0\n",
        "after": "::/0 via fec0:106:1700::1 dev eth0\n",
    }


# ---- bad input: the module fails before changing anything


@pytest.mark.parametrize("dest", ["fec0:106:1100::1/64", "fec0:106:1100::/129", "192.0.2.0/24", "anywhere"])
def test_bad_destination(fake_ip, run_module, dest):
    result = run_module(ipv6_route, {"routes": [CN["routes"][0], dict(CN["routes"][1], dest=dest)]})
    assert result["failed"] is True
    assert result["msg"] == (
        f"routes[1].dest: {dest!r} is not an IPv6 prefix (expected e.g. fec0:106:1100::/64 or default)"
    )
    assert fake_ip.commands == []


@pytest.mark.parametrize("gateway", ["fec0:106:2500::3/64", "192.0.2.1", "", "::3::"])
def test_bad_gateway(fake_ip, run_module, gateway):
    result = run_module(ipv6_route, {"routes": [dict(FN["routes"][0], gateway=gateway)]})
    assert result["failed"] is True
    assert result["msg"].startswith(f"routes[0].gateway: {gateway!r} is not an IPv6 address")
    assert fake_ip.commands == []


def test_unknown_interface(fake_ip, run_module):
    result = run_module(ipv6_route, {"routes": [dict(FN["routes"][0], interface="enp1s0")]})
    assert result["failed"] is True
    assert result["msg"] == "interfaces: enp1s0 does not exist on this host"
    assert fake_ip.changing() == []


def test_ip_error_is_reported(fake_ip, run_module):
    fake_ip.fail["ip -6 route replace"] = (2, "", "Error: Nexthop has invalid gateway.\n")
    result = run_module(ipv6_route, FN)
    assert result["failed"] is True
    assert result["msg"] == (
        "ip -6 route replace ::/0 via fec0:106:1700::1 dev eth0 failed: Error: Nexthop has invalid gateway."
    )
