"""Node configuration files and the ``mvpn-lab mip6`` commands."""

from __future__ import annotations

import json
from ipaddress import IPv6Address, IPv6Network

import pytest
import yaml

from mvpn_lab import mip6
from mvpn_lab.cli import main
from mvpn_lab.errors import LabError
from mvpn_lab.mip6.core.clock import FakeClock
from mvpn_lab.mip6.core.cn import CorrespondentNode
from mvpn_lab.mip6.core.config import CNConfig, ConfigError, HAConfig, MNConfig, load_config, parse_config
from mvpn_lab.mip6.core.ha import HomeAgent
from mvpn_lab.mip6.core.mn import MobileNode
from mvpn_lab.mip6.wire.ipv6 import build_ipv6_packet
from mvpn_lab.mip6.wire.messages import BindingUpdate, HomeTestInit, encode_mh
from mvpn_lab.mip6.wire.pcap import LINKTYPE_IPV6, ethernet_frame, write_pcap

from ._helpers import CN, COA1, HA, HOA

MN_YAML = {
    "role": "mn",
    "name": "mn1",
    "home_address": "2001:db8:1::100",
    "home_agent": "2001:db8:1::1",
    "mode": "ro",
    "correspondents": ["2001:db8:3::10"],
    "movement_detection": "l2",
    "prefix_cache": True,
    "interfaces": ["wlan0"],
}
HA_YAML = {
    "role": "ha",
    "address": "2001:db8:1::1",
    "home_prefix": "2001:db8:1::/64",
    "allowed_mobile_nodes": ["2001:db8:1::100"],
    "max_binding_lifetime": 600,
}
CN_YAML = {"role": "cn", "address": "2001:db8:3::10", "nonce_rotation": 20}


def write(tmp_path, data, name="node.yml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_parse_valid_configs():
    mn = parse_config(MN_YAML)
    assert isinstance(mn, MNConfig) and mn.role == "mn" and mn.name == "mn1"
    assert mn.home_address == HOA and mn.correspondents == (CN,)
    assert mn.home_prefix == IPv6Network("2001:db8:1::/64")
    assert mn.optimistic_dad is True  # default follows movement_detection l2
    assert mn.require_ipsec is True and mn.cn_lifetime == 420
    ha = parse_config(HA_YAML)
    assert isinstance(ha, HAConfig) and ha.allows(HOA) and not ha.allows(IPv6Address("2001:db8:1::5"))
    assert parse_config({**HA_YAML, "allowed_mobile_nodes": "any"}).allowed_mobile_nodes is None
    cn = parse_config(CN_YAML)
    assert isinstance(cn, CNConfig) and cn.nonce_rotation == 20.0 and cn.name == "cn"


def test_make_node_builds_each_role():
    clock = FakeClock()
    sink = []
    assert isinstance(mip6.make_node(parse_config(MN_YAML), clock=clock, sink=sink.append), MobileNode)
    assert isinstance(mip6.make_node(parse_config(HA_YAML), clock=clock, sink=sink.append), HomeAgent)
    assert isinstance(mip6.make_node(parse_config(CN_YAML), clock=clock, sink=sink.append), CorrespondentNode)
    with pytest.raises(TypeError):
        mip6.make_node(object(), clock=clock, sink=sink.append)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "config: expected a mapping"),
        ({"role": "router"}, "config field 'role': expected one of mn, ha, cn, got 'router'"),
        ({**MN_YAML, "home_agnet": "x"}, "config field 'home_agnet': unknown field for role mn"),
        (
            {k: v for k, v in MN_YAML.items() if k != "home_agent"},
            "config field 'home_agent': required for role mn",
        ),
        (
            {**MN_YAML, "home_agent": "2001:db8::zz"},
            "config field 'home_agent': not an IPv6 address: '2001:db8::zz'",
        ),
        ({**MN_YAML, "home_agent": 5}, "config field 'home_agent': expected an IPv6 address, got int"),
        (
            {**MN_YAML, "home_agent": "2001:db8:9::1"},
            "config field 'home_agent': 2001:db8:9::1 is not in the home prefix",
        ),
        (
            {**MN_YAML, "home_address": "ff02::1"},
            "config field 'home_address': ff02::1 is not a global unicast",
        ),
        ({**MN_YAML, "mode": "fast"}, "config field 'mode': expected one of bt, ro"),
        ({**MN_YAML, "mode": "bt"}, "config field 'correspondents': route optimisation peers need mode: ro"),
        (
            {**MN_YAML, "correspondents": ["2001:db8:3::10", "bad"]},
            "config field 'correspondents[1]': not an IPv6",
        ),
        ({**MN_YAML, "correspondents": "2001:db8:3::10"}, "config field 'correspondents': expected a list"),
        ({**MN_YAML, "home_lifetime": 999999}, "config field 'home_lifetime': 999999 is outside 4..262140"),
        ({**MN_YAML, "cn_lifetime": 421}, "config field 'cn_lifetime': 421 is outside 4..420"),
        (
            {**MN_YAML, "optimistic_dad": "yes"},
            "config field 'optimistic_dad': expected true or false, got 'yes'",
        ),
        (
            {**MN_YAML, "movement_detection": "ra"},
            "config field 'prefix_cache': needs movement_detection: l2",
        ),
        ({**MN_YAML, "home_lifetime": True}, "config field 'home_lifetime': expected an integer, got True"),
        ({**MN_YAML, "refresh_fraction": 2}, "config field 'refresh_fraction': 2 is outside 0.1..0.95"),
        ({**HA_YAML, "home_prefix": "2001:db8:1::1/64"}, "config field 'home_prefix': not an IPv6 prefix"),
        (
            {**HA_YAML, "address": "2001:db8:2::1"},
            "config field 'address': 2001:db8:2::1 is not in home_prefix",
        ),
        (
            {**HA_YAML, "allowed_mobile_nodes": None},
            "config field 'allowed_mobile_nodes': required for role ha",
        ),
        ({**HA_YAML, "allowed_mobile_nodes": "all"}, "config field 'allowed_mobile_nodes': expected a list"),
        (
            {**HA_YAML, "allowed_mobile_nodes": ["2001:db8:5::1"]},
            "config field 'allowed_mobile_nodes[0]': 2001:db8:5::1 is not in",
        ),
        (
            {**HA_YAML, "allowed_mobile_nodes": ["2001:db8:1::1"]},
            "config field 'allowed_mobile_nodes[0]': is the home agent",
        ),
        ({**HA_YAML, "allowed_mobile_nodes": ["2001:db8:1::9", "2001:db8:1::9"]}, "lists an address twice"),
        ({**HA_YAML, "mode": "ro"}, "config field 'mode': unknown field for role ha"),
        (
            {**CN_YAML, "max_binding_lifetime": 1000},
            "config field 'max_binding_lifetime': 1000 is outside 4..420",
        ),
        ({**CN_YAML, "name": ""}, "config field 'name': expected a non-empty string"),
    ],
)
def test_config_errors_are_one_line_naming_the_field(data, message):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert isinstance(info.value, LabError) and info.value.exit_code == 2


def test_load_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yml")
    with pytest.raises(ConfigError, match=r"invalid YAML at line 2"):
        load_config(write(tmp_path, "role: mn\n  bad: [indent\n"))
    assert load_config(write(tmp_path, HA_YAML)).max_binding_lifetime == 600


def test_check_config_command(tmp_path, capsys):
    assert main(["mip6", "check-config", str(write(tmp_path, MN_YAML))]) == 0
    assert capsys.readouterr().out.strip().endswith("role mn, name mn1")
    assert main(["mip6", "check-config", "--json", str(write(tmp_path, HA_YAML))]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["allowed_mobile_nodes"] == ["2001:db8:1::100"] and cfg["home_prefix"] == "2001:db8:1::/64"
    assert main(["mip6", "check-config", str(write(tmp_path, {**CN_YAML, "adress": "x"}))]) == 2
    err = capsys.readouterr().err
    assert err == "mvpn-lab: error: config field 'adress': unknown field for role cn\n"


def test_decode_command_prints_json_lines(tmp_path, capsys):
    bu = encode_mh(BindingUpdate(seq=9, lifetime=2, ack=True, home=True))
    frames = [
        ethernet_frame(build_ipv6_packet(COA1, HA, bu, hao=HOA)),
        ethernet_frame(build_ipv6_packet(HOA, CN, encode_mh(HomeTestInit(cookie=b"z" * 8)))),
        ethernet_frame(build_ipv6_packet(HOA, CN, encode_mh(HomeTestInit()), fix_checksum=False)),
        ethernet_frame(build_ipv6_packet(COA1, HA, bu[:10])),  # truncated MH
        b"\x00" * 14,  # not IPv6: silently skipped
    ]
    path = tmp_path / "c.pcap"
    write_pcap(path, frames)
    assert main(["mip6", "decode", str(path)]) == 1
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["type"] for r in records] == ["BU", "HoTI", "HoTI"]
    first = records[0]
    assert first["frame"] == 1 and first["hao"] == str(HOA) and first["src"] == str(COA1)
    assert first["seq"] == 9 and first["flags"] == "AH" and first["checksum_ok"] is True
    assert records[1]["cookie"] == "7a" * 8 and records[2]["checksum_ok"] is False
    assert err.splitlines() == [
        f"mvpn-lab: warning: {path}: frame 4: mobility header: header length says 16 bytes, only 10 available"
    ]


def test_decode_command_clean_capture_exits_zero(tmp_path, capsys):
    path = tmp_path / "ok.pcap"
    write_pcap(path, [build_ipv6_packet(HOA, CN, encode_mh(HomeTestInit()))], linktype=LINKTYPE_IPV6)
    assert main(["mip6", "decode", str(path)]) == 0
    assert capsys.readouterr().err == ""


def test_decode_command_user_errors(tmp_path, capsys):
    assert main(["mip6", "decode", str(tmp_path / "nope.pcap")]) == 2
    assert "no such file" in capsys.readouterr().err
    junk = write(tmp_path, "not a capture", "junk.pcap")
    assert main(["mip6", "decode", str(junk)]) == 2
    assert "not a pcap or pcapng file" in capsys.readouterr().err
    assert main(["mip6"]) == 2  # no action: help
