"""mvpn.lab.ipv6_address run in-process against a fake iproute2 (see conftest.FakeIp)."""

from __future__ import annotations

import json

import pytest
from ansible_collections.mvpn.lab.plugins.modules import ipv6_address

from ._fakeip import addr_info

HA = {
    "addresses": [
        {"interface": "eth0", "address": "fec0:106:2500::1/64"},
        {"interface": "wlan0", "address": "fec0:106:2700::1/64"},
    ],
}
TOKEN = "::20c:30ff:febb:f0b6"
SLAAC_HOME = "fec0:106:2700:0:20c:30ff:febb:f0b6/64"


def test_fresh_home_agent(fake_ip, run_module):
    result = run_module(ipv6_address, HA)
    assert fake_ip.changing() == [
        "ip link set dev eth0 up",
        "ip -6 addr add fec0:106:2500::1/64 dev eth0",
        "ip link set dev wlan0 up",
        "ip -6 addr add fec0:106:2700::1/64 dev wlan0",
    ]
    assert result["changed"] is True
    assert result["added"] == ["eth0 fec0:106:2500::1/64", "wlan0 fec0:106:2700::1/64"]
    assert result["links_up"] == ["eth0", "wlan0"]
    assert result["removed"] == [] and result["tokens_set"] == []


def test_second_run_changes_nothing(fake_ip, run_module):
    run_module(ipv6_address, dict(HA, purge=True))
    assert fake_ip.addresses("eth0") == ["fec0:106:2500::1/64"]
    fake_ip.commands.clear()
    result = run_module(ipv6_address, dict(HA, purge=True))
    assert fake_ip.changing() == []
    assert result["changed"] is False
    assert result["added"] == result["removed"] == result["links_up"] == []


def test_state_as_ip_prints_it_is_recognised(fake_ip, run_module):
    """Canned ``ip -j`` output of a configured home agent: fec0 addresses have scope "site"."""
    canned = {
        "ip -j link show": [
            {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"]},
            {"ifindex": 2, "ifname": "eth0", "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]},
        ],
        "ip -j link show dev eth0": [
            {
                "ifindex": 2,
                "ifname": "eth0",
                "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
                "mtu": 1500,
            }
        ],
        "ip -j -6 addr show dev eth0": [
            {
                "ifindex": 2,
                "ifname": "eth0",
                "addr_info": [
                    {
                        "family": "inet6",
                        "local": "fec0:106:2500::1",
                        "prefixlen": 64,
                        "scope": "site",
                        "nodad": True,
                        "valid_life_time": 4294967295,
                        "preferred_life_time": 4294967295,
                    },
                    {
                        "family": "inet6",
                        "local": "fe80::5054:ff:fe12:3456",
                        "prefixlen": 64,
                        "scope": "link",
                        "valid_life_time": 4294967295,
                        "preferred_life_time": 4294967295,
                    },
                ],
            }
        ],
    }
    for line, answer in canned.items():
        fake_ip.canned[line] = (0, json.dumps(answer), "")
    result = run_module(
        ipv6_address,
        {"addresses": [{"interface": "eth0", "address": "FEC0:106:2500:0::1/64"}], "purge": True},
    )
    assert fake_ip.changing() == []
    assert result["changed"] is False


def test_nodad(fake_ip, run_module):
    run_module(
        ipv6_address, {"addresses": [{"interface": "eth0", "address": "fec0:106:2500::2/64"}], "nodad": True}
    )
    assert fake_ip.changing() == [
        "ip link set dev eth0 up",
        "ip -6 addr add fec0:106:2500::2/64 dev eth0 nodad",
    ]


def test_purge_removes_static_addresses_but_never_slaac_ones(fake_ip, run_module):
    fake_ip.links["wlan0"] += ["UP"]
    fake_ip.addrs["wlan0"] = [
        addr_info("fec0:106:2700::99/64"),  # static leftover: scope site
        addr_info("fd00:106:2700::99/64"),  # static leftover: scope global
        addr_info(
            SLAAC_HOME,
            dynamic=True,
            mngtmpaddr=True,  # made by SLAAC from the RA
            valid_life_time=86400,
            preferred_life_time=14400,
        ),
        addr_info("fec0:106:2700::1/64"),
    ]
    result = run_module(
        ipv6_address, {"addresses": [{"interface": "wlan0", "address": "fec0:106:2700::1/64"}], "purge": True}
    )
    assert fake_ip.changing() == [
        "ip -6 addr del fd00:106:2700::99/64 dev wlan0",
        "ip -6 addr del fec0:106:2700::99/64 dev wlan0",
    ]
    assert result["removed"] == ["wlan0 fd00:106:2700::99/64", "wlan0 fec0:106:2700::99/64"]
    assert result["changed"] is True
    assert fake_ip.addresses("wlan0") == [SLAAC_HOME, "fec0:106:2700::1/64"]


def test_purge_covers_listed_interfaces_without_addresses(fake_ip, run_module):
    fake_ip.links["eth1"] += ["UP"]
    fake_ip.addrs["eth1"] = [addr_info("fec0:106:1700::1/64")]
    fake_ip.addrs["eth0"] = [addr_info("fec0:106:2500::5/64")]
    result = run_module(ipv6_address, {"interfaces": ["eth1"], "purge": True})
    assert fake_ip.changing() == ["ip -6 addr del fec0:106:1700::1/64 dev eth1"]
    assert result["removed"] == ["eth1 fec0:106:1700::1/64"]
    assert fake_ip.addresses("eth0") == ["fec0:106:2500::5/64"], "unmanaged interface touched"


def test_without_purge_nothing_is_removed(fake_ip, run_module):
    fake_ip.links["eth0"] += ["UP"]
    fake_ip.addrs["eth0"] = [addr_info("fec0:106:2500::99/64"), addr_info("fec0:106:2500::1/64")]
    result = run_module(
        ipv6_address, {"addresses": [{"interface": "eth0", "address": "fec0:106:2500::1/64"}]}
    )
    assert fake_ip.changing() == []
    assert result["changed"] is False


def test_check_mode_reports_but_changes_nothing(fake_ip, run_module):
    fake_ip.addrs["eth0"] = [addr_info("fec0:106:2500::99/64")]
    args = dict(HA, purge=True, tokens=[{"interface": "wlan0", "token": TOKEN}])
    result = run_module(ipv6_address, args, check=True)
    assert fake_ip.changing() == []
    assert "ip token get dev wlan0" in fake_ip.commands
    assert result["changed"] is True
    assert result["added"] == ["eth0 fec0:106:2500::1/64", "wlan0 fec0:106:2700::1/64"]
    assert result["removed"] == ["eth0 fec0:106:2500::99/64"]
    assert result["links_up"] == ["eth0", "wlan0"]
    assert result["tokens_set"] == ["wlan0"]
    assert fake_ip.addresses("eth0") == ["fec0:106:2500::99/64"]
    assert fake_ip.tokens["wlan0"] == "::"


def test_slaac_token_is_set_once(fake_ip, run_module):
    args = {"interfaces": ["wlan0"], "tokens": [{"interface": "wlan0", "token": TOKEN}]}
    first = run_module(ipv6_address, args)
    assert fake_ip.changing() == ["ip link set dev wlan0 up", f"ip token set {TOKEN} dev wlan0"]
    assert first["tokens_set"] == ["wlan0"] and first["changed"] is True
    fake_ip.commands.clear()
    second = run_module(
        ipv6_address, dict(args, tokens=[{"interface": "wlan0", "token": "::20C:30FF:FEBB:F0B6"}])
    )
    assert fake_ip.changing() == []
    assert second["changed"] is False and second["tokens_set"] == []


def test_diff(fake_ip, run_module):
    fake_ip.links["eth0"] += ["UP"]
    fake_ip.addrs["eth0"] = [addr_info("fec0:106:2500::99/64")]
    result = run_module(
        ipv6_address,
        {"addresses": [{"interface": "eth0", "address": "fec0:106:2500::1/64"}], "purge": True},
        diff=True,
    )
    assert result["diff"] == {"before": "eth0 fec0:106:2500::99/64\n", "after": "eth0 fec0:106:2500::1/64\n"}


# ---- bad input: the module fails before changing anything


@pytest.mark.parametrize(
    "address", ["fec0:106:2500::1/129", "fec0:106:2500::g/64", "192.0.2.1/24", "fec0:106:2500::1"]
)
def test_bad_address(fake_ip, run_module, address):
    result = run_module(
        ipv6_address,
        {
            "addresses": [
                {"interface": "eth0", "address": "fec0:106:2500::1/64"},
                {"interface": "eth0", "address": address},
            ]
        },
    )
    assert result["failed"] is True
    assert result["msg"].startswith(
        f"addresses[1].address: {address!r} is not an IPv6 address with prefix length"
    )
    assert fake_ip.commands == []


def test_bad_token_fails_before_any_change(fake_ip, run_module):
    result = run_module(
        ipv6_address,
        {"interfaces": ["eth0"], "tokens": [{"interface": "wlan0", "token": "20c:30ff:febb:f0b6"}]},
    )
    assert result["failed"] is True
    assert result["msg"].startswith(
        "tokens[0].token: '20c:30ff:febb:f0b6' is not an IPv6 interface identifier"
    )
    assert fake_ip.changing() == []


def test_unknown_interface(fake_ip, run_module):
    result = run_module(
        ipv6_address, {"addresses": [{"interface": "wlp2s0", "address": "fec0:106:2700::1/64"}]}
    )
    assert result["failed"] is True
    assert (
        result["msg"]
        == "interfaces: wlp2s0 does not exist on this host (expected one of: eth0, eth1, lo, wlan0)"
    )
    assert fake_ip.changing() == []


def test_missing_required_suboption(fake_ip, run_module):
    result = run_module(ipv6_address, {"addresses": [{"interface": "eth0"}]})
    assert result["failed"] is True
    assert "address" in result["msg"] and "addresses" in result["msg"]
    assert fake_ip.commands == []


def test_ip_error_is_reported_with_its_message(fake_ip, run_module):
    fake_ip.fail["ip -6 addr add"] = (2, "", "RTNETLINK answers: Permission denied\n")
    result = run_module(
        ipv6_address, {"addresses": [{"interface": "eth0", "address": "fec0:106:2500::1/64"}]}
    )
    assert result["failed"] is True
    assert result["msg"] == (
        "ip -6 addr add fec0:106:2500::1/64 dev eth0 failed: RTNETLINK answers: Permission denied"
    )


def test_ip_printing_no_json_is_reported(fake_ip, run_module):
    fake_ip.fail["ip -j link show"] = (0, "Usage: ip link ...", "")
    result = run_module(ipv6_address, HA)
    assert result["failed"] is True
    assert result["msg"] == "ip -j link show printed something that is not JSON"
