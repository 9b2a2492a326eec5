"""module_utils/xfrm.py: parsers of ``ip xfrm state|policy`` text (iproute2 6.1), input checks,
comparisons and command lines.

POLICIES_IPROUTE2_61 is verbatim output of iproute2 6.1 (Debian 12's ``ip``), captured in a scratch
network namespace. The host had no ESP support in its kernel, so STATES is built by hand from
iproute2 6.1's printing code (ip/ipxfrm.c: xfrm_state_info_print, xfrm_xfrma_print) and published
listings: a tab before every continuation line, trailing blanks where ip prints them, keys in
lowercase hex.
"""

from __future__ import annotations

import pytest
from ansible_collections.mvpn.lab.plugins.module_utils import xfrm

ENC = "8f3e1c0a9b2d4e6f7a8b9c0d1e2f3a4b"
AUTH = "5d41402abc4b2a76b9719d911017c592e3b0c442"
AEAD = "c0ffee00deadbeef0123456789abcdef1a2b3c4d"

STATES = (
    # MN -> HA, the paper's suite, transport mode, Mobility Header only
    "src fec0:106:1100::2 dst fec0:106:2700::1\n"
    "\tproto esp spi 0x00001001 reqid 1 mode transport\n"
    "\treplay-window 0 \n"
    f"\tauth-trunc hmac(sha1) 0x{AUTH} 96\n"
    f"\tenc cbc(aes) 0x{ENC}\n"
    "\tanti-replay context: seq 0x0, oseq 0x0, bitmap 0x00000000\n"
    "\tsel src ::/0 dst ::/0 proto mobility-header \n"
    # HA -> MN, AES-GCM, tunnel mode with a tcp selector, in use
    "src fec0:106:2700::1 dst fec0:106:1100::2\n"
    "\tproto esp spi 0x00001002 reqid 2 mode tunnel\n"
    "\treplay-window 32 flag af-unspec\n"
    "\toutput-mark 0xd0/0xffffffff\n"
    f"\taead rfc4106(gcm(aes)) 0x{AEAD} 128\n"
    "\tlastused 2026-11-27 10:15:02\n"
    "\tanti-replay context: seq 0x2a, oseq 0x0, bitmap 0xffffffff\n"
    "\tsel src fec0:106:2500::/64 dst fec0:106:1100::2/128 proto tcp sport 80 \n"
    # the mip6 daemon's route optimisation states (no SPI, no keys)
    "src :: dst ::\n"
    "\tproto hao reqid 0 mode ro\n"
    "\treplay-window 0 flag wildrecv\n"
    "\tcoa ::\n"
    "\tanti-replay context: seq 0x0, oseq 0x0, bitmap 0x00000000\n"
    "src fec0:106:2700::1 dst fec0:106:1100::2\n"
    "\tproto route2 reqid 0 mode ro\n"
    "\treplay-window 0 \n"
    "\tcoa fec0:106:1700::2\n"
    "\tanti-replay context: seq 0x0, oseq 0x0, bitmap 0x00000000\n"
    "\tsel src ::/0 dst ::/0 \n"
    # ESN: the anti-replay context spans lines; an IPv4-family zero selector
    "src fec0:106:2500::2 dst fec0:106:2500::1\n"
    "\tproto esp spi 0xc96a85da reqid 7 mode transport\n"
    "\treplay-window 0 flag af-unspec esn\n"
    f"\tauth-trunc hmac(sha256) 0x{AUTH}{AUTH[:24]} 128\n"
    f"\tenc cbc(aes) 0x{ENC}\n"
    "\tanti-replay esn context:\n"
    "\t seq-hi 0x0, seq 0x0, oseq-hi 0x0, oseq 0x0\n"
    "\t replay_window 128, bitmap-length 4\n"
    "\t 00000000 00000000 00000000 00000000 \n"
    "\tsel src 0.0.0.0/0 dst 0.0.0.0/0 \n"
)

# ip -6 xfrm policy list, iproute2 6.1 (verbatim)
POLICIES_IPROUTE2_61 = (
    "src fec0::1/128 dst fec0::2/128 proto mobility-header type 6 \n"
    "\tdir in priority 0 ptype main \n"
    "\ttmpl src :: dst fec0::2\n"
    "\t\tproto esp reqid 0 mode transport\n"
    "src fec0::1/128 dst fec0::2/128 proto ospf \n"
    "\tdir in priority 0 ptype main \n"
    "src fec0::1/128 dst fec0::2/128 proto udp sport 500 dport 500 \n"
    "\tdir in priority 0 ptype main \n"
    "src fec0::1/128 dst fec0::2/128 proto mobility-header \n"
    "\tdir in priority 0 ptype main \n"
    "src fec0::1/128 dst fec0::2/128 proto ipv6-icmp type 135 code 0 \n"
    "\tdir out priority 0 ptype main \n"
    "src fec0:1::/64 dst fec0:2::/64 \n"
    "\tdir in priority 7 ptype sub \n"
    "\ttmpl src fec0::a dst fec0::b\n"
    "\t\tproto esp spi 0x00001001 reqid 3 mode tunnel\n"
    "\ttmpl src :: dst ::\n"
    "\t\tproto esp reqid 4 mode transport\n"
    "\t\tlevel use \n"
    "src fec0:1::/64 dst fec0:2::/64 \n"
    "\tdir fwd action block priority 5 ptype main \n"
)

# the mip6 daemon's sub policies (same format, hand-built from kernel.py's command lines)
POLICIES_MIP6 = (
    "src ::/0 dst ::/0 proto mobility-header type 3 \n"
    "\tdir out priority 10 ptype sub \n"
    "src fec0:106:1100::2/128 dst fec0:106:2500::2/128 \n"
    "\tdir out priority 40 ptype sub \n"
    "\ttmpl src :: dst ::\n"
    "\t\tproto hao reqid 0 mode ro\n"
    "\t\tlevel use \n"
    "src ::/0 dst ::/0 \n"
    "\tsocket in priority 0 ptype main \n"
)


# ---------------------------------------------------------------------------- state parser


def test_parse_states_reads_every_entry_and_its_fields():
    states = xfrm.parse_states(STATES)
    assert [(s["proto"], s["spi"]) for s in states] == [
        ("esp", 0x1001),
        ("esp", 0x1002),
        ("hao", None),
        ("route2", None),
        ("esp", 0xC96A85DA),
    ]
    cbc = states[0]
    assert cbc["src"] == "fec0:106:1100::2" and cbc["dst"] == "fec0:106:2700::1"
    assert (cbc["reqid"], cbc["mode"], cbc["replay_window"]) == (1, "transport", 0)
    assert cbc["algos"] == {
        "auth-trunc": {"name": "hmac(sha1)", "key": AUTH, "bits": 96},
        "enc": {"name": "cbc(aes)", "key": ENC, "bits": None},
    }
    assert xfrm.selector_key(cbc["sel"]) == ("::/0", "::/0", 135, 0, 0, None, None, None)


def test_parse_states_aead_tunnel_with_selector():
    gcm = xfrm.parse_states(STATES)[1]
    assert (gcm["mode"], gcm["reqid"], gcm["replay_window"], gcm["flags"]) == ("tunnel", 2, 32, ["af-unspec"])
    assert gcm["algos"] == {"aead": {"name": "rfc4106(gcm(aes))", "key": AEAD, "bits": 128}}
    assert xfrm.suite_of(gcm["algos"]) == "aes-gcm"
    assert gcm["sel"]["src"] == "fec0:106:2500::/64" and gcm["sel"]["dst"] == "fec0:106:1100::2/128"
    assert (gcm["sel"]["proto"], gcm["sel"]["sport"]) == (6, 80)


def test_parse_states_copes_with_mip6_states_and_esn():
    states = xfrm.parse_states(STATES)
    hao, route2, esn = states[2], states[3], states[4]
    assert (hao["src"], hao["dst"], hao["mode"], hao["flags"], hao["coa"]) == (
        "::",
        "::",
        "ro",
        ["wildrecv"],
        "::",
    )
    assert hao["algos"] == {} and xfrm.suite_of(hao["algos"]) is None
    assert route2["coa"] == "fec0:106:1700::2"
    assert esn["flags"] == ["af-unspec", "esn"]
    assert esn["sel"]["src"] == esn["sel"]["dst"] == "::/0"  # a zero selector of either family is "any"
    assert xfrm.describe_algos(esn["algos"]) == "auth-trunc hmac(sha256) 128, enc cbc(aes)"


def test_parse_states_hidden_keys_and_monitor_prefix():
    text = (
        "Updated src fec0::1 dst fec0::2\n"
        "\tproto esp spi 0x00000100 reqid 0 mode transport\n"
        "\treplay-window 0 \n"
        "\taead rfc4106(gcm(aes)) <<Keys hidden>> 128\n"
    )
    (state,) = xfrm.parse_states(text)
    assert state["spi"] == 256
    assert state["algos"] == {"aead": {"name": "rfc4106(gcm(aes))", "key": None, "bits": 128}}
    assert state["sel"] == xfrm.any_selector()  # no sel line: the zero selector


@pytest.mark.parametrize("text", ["", "\n\n", "garbage\n\tmore garbage\n", "\tindented before any entry\n"])
def test_parse_states_of_nothing(text):
    assert xfrm.parse_states(text) == []


# ---------------------------------------------------------------------------- policy parser


def test_parse_policies_real_iproute2_output():
    policies = xfrm.parse_policies(POLICIES_IPROUTE2_61)
    assert [(xfrm.selector_key(p["sel"])[2:6], p["dir"], p["ptype"]) for p in policies] == [
        ((135, 0, 0, 6), "in", "main"),
        ((89, 0, 0, None), "in", "main"),
        ((17, 500, 500, None), "in", "main"),
        ((135, 0, 0, None), "in", "main"),
        ((58, 0, 0, 135), "out", "main"),
        ((0, 0, 0, None), "in", "sub"),
        ((0, 0, 0, None), "fwd", "main"),
    ]
    mh = policies[0]
    assert mh["sel"]["src"] == "fec0::1/128" and mh["sel"]["dst"] == "fec0::2/128"
    assert (mh["action"], mh["priority"]) == ("allow", 0)
    assert mh["templates"] == [
        {
            "src": "::",
            "dst": "fec0::2",
            "proto": "esp",
            "spi": 0,
            "reqid": 0,
            "mode": "transport",
            "level": "required",
        }
    ]
    assert policies[4]["sel"]["code"] == 0
    tunnel = policies[5]
    assert tunnel["priority"] == 7
    assert [xfrm.template_key(t) for t in tunnel["templates"]] == [
        ("fec0::a", "fec0::b", "esp", 0x1001, 3, "tunnel", "required"),
        ("::", "::", "esp", 0, 4, "transport", "use"),
    ]
    block = policies[6]
    assert (block["action"], block["priority"], block["templates"]) == ("block", 5, [])


def test_parse_policies_mip6_sub_policies_and_socket_policies():
    policies = xfrm.parse_policies(POLICIES_MIP6)
    assert [(p["ptype"], p["priority"], p["socket"]) for p in policies] == [
        ("sub", 10, False),
        ("sub", 40, False),
        ("main", 0, True),
    ]
    assert policies[0]["sel"]["type"] == 3
    assert xfrm.template_key(policies[1]["templates"][0]) == ("::", "::", "hao", 0, 0, "ro", "use")


def test_state_listing_has_no_policy_directions():
    # a state listing has no "dir" line; its entries parse as policies without direction
    assert all(p["dir"] is None for p in xfrm.parse_policies(STATES))


def test_state_index_by_destination_protocol_and_spi():
    index = xfrm.state_index(xfrm.parse_states(STATES))
    assert sorted(k for k in index if k[1] == "esp") == [
        ("fec0:106:1100::2", "esp", 0x1002),
        ("fec0:106:2500::1", "esp", 0xC96A85DA),
        ("fec0:106:2700::1", "esp", 0x1001),
    ]
    assert index[("fec0:106:2700::1", "esp", 0x1001)]["src"] == "fec0:106:1100::2"
    # the first of a kind wins (the kernel has one; a listing repeated by mistake changes nothing)
    again = xfrm.parse_states(STATES.replace("reqid 1 mode", "reqid 9 mode"))
    assert (
        xfrm.state_index(xfrm.parse_states(STATES) + again)[("fec0:106:2700::1", "esp", 0x1001)]["reqid"] == 1
    )


def _wanted_selector(src, dst, proto=0, sport=0, dport=0, mh_type=None):
    """A selector as xfrm_policy builds it from its options."""
    sel = dict(xfrm.any_selector(), src=xfrm.ipv6_prefix(src), dst=xfrm.ipv6_prefix(dst), proto=proto)
    return dict(sel, sport=sport, dport=dport, type=mh_type)


def test_policy_index_finds_wanted_policies_in_a_real_listing():
    index = xfrm.policy_index(xfrm.parse_policies(POLICIES_IPROUTE2_61 + POLICIES_MIP6))
    found = {
        "mh 6 in": xfrm.policy_id(_wanted_selector("fec0::1", "fec0::2", 135, mh_type=6), "in", "main"),
        "udp 500": xfrm.policy_id(_wanted_selector("fec0::1", "fec0::2", 17, 500, 500), "in", "main"),
        "ospf": xfrm.policy_id(_wanted_selector("fec0::1", "fec0::2", 89), "in", "main"),
        "sub": xfrm.policy_id(_wanted_selector("fec0:1::/64", "fec0:2::/64"), "in", "sub"),
        "block": xfrm.policy_id(_wanted_selector("fec0:1::/64", "fec0:2::/64"), "fwd", "main"),
        "mip6 sub": xfrm.policy_id(_wanted_selector("::/0", "::/0", 135, mh_type=3), "out", "sub"),
    }
    assert {name: index[key]["priority"] for name, key in found.items()} == {
        "mh 6 in": 0,
        "udp 500": 0,
        "ospf": 0,
        "sub": 7,
        "block": 5,
        "mip6 sub": 10,
    }
    missing = {
        "other direction": xfrm.policy_id(
            _wanted_selector("fec0::1", "fec0::2", 135, mh_type=6), "out", "main"
        ),
        "other type": xfrm.policy_id(_wanted_selector("fec0:1::/64", "fec0:2::/64"), "in", "main"),
        "other mh type": xfrm.policy_id(_wanted_selector("fec0::1", "fec0::2", 135, mh_type=5), "in", "main"),
        "no ports": xfrm.policy_id(_wanted_selector("fec0::1", "fec0::2", 17), "in", "main"),
        # the ICMPv6 policy has "code 0", which xfrm_policy cannot ask for
        "icmp type": xfrm.policy_id(_wanted_selector("fec0::1", "fec0::2", 58, mh_type=135), "out", "main"),
        "socket policy": xfrm.policy_id(_wanted_selector("::/0", "::/0"), "in", "main"),
    }
    assert [name for name, key in missing.items() if key in index] == []
    assert len(index) == 9  # every policy but the socket one


# ---------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    "value, spi",
    [
        (4097, 4097),
        ("4097", 4097),
        ("0x1001", 4097),
        ("0X00001001", 4097),
        (256, 256),
        ("0xffffffff", 2**32 - 1),
    ],
)
def test_parse_spi(value, spi):
    assert xfrm.parse_spi(value) == spi


@pytest.mark.parametrize("value", [0, 255, 2**32, -1, "0x", "1001h", "", "0xfg", True, None, 1.5])
def test_parse_spi_rejects(value):
    with pytest.raises((ValueError, TypeError)):
        xfrm.parse_spi(value)


def test_spi_hex():
    assert xfrm.spi_hex(0x1001) == "0x00001001"
    assert xfrm.spi_hex(0) is None


@pytest.mark.parametrize("value", [ENC, "0x" + ENC, ENC.upper(), "0X" + ENC.upper(), f"  {ENC} "])
def test_hex_key_normalises(value):
    assert xfrm.hex_key(value) == ENC


@pytest.mark.parametrize("value", ["", "0x", "abc", "zz" * 16, ENC + "g0", "12 34"])
def test_hex_key_rejects_without_echoing_the_value(value):
    with pytest.raises(ValueError) as err:
        xfrm.hex_key(value)
    assert str(err.value) == "not an even number of hex digits"


def test_ipv6_prefix_and_address():
    assert xfrm.ipv6_prefix("FEC0:106:1100:0::2") == "fec0:106:1100::2/128"
    assert xfrm.ipv6_prefix("fec0:106:1100::/64") == "fec0:106:1100::/64"
    assert xfrm.ipv6_prefix("::/0") == "::/0"
    assert xfrm.ipv6_address("FEC0:106:2700:0:0::1") == "fec0:106:2700::1"
    for bad in ("fec0:106:1100::1/64", "192.0.2.0/24", "nowhere"):
        with pytest.raises(ValueError):
            xfrm.ipv6_prefix(bad)
    for bad in ("fec0::1/128", "192.0.2.1", ""):
        with pytest.raises(ValueError):
            xfrm.ipv6_address(bad)


@pytest.mark.parametrize(
    "value, number",
    [
        ("tcp", 6),
        ("UDP", 17),
        ("ipv6-icmp", 58),
        ("icmpv6", 58),
        ("135", 135),
        (135, 135),
        ("mobility-header", 135),
    ],
)
def test_protocol(value, number):
    assert xfrm.protocol(value) == number


@pytest.mark.parametrize("value", ["0", "256", "any", "tcpp", ""])
def test_protocol_rejects(value):
    with pytest.raises(ValueError):
        xfrm.protocol(value)


def test_key_lengths_text():
    assert xfrm.key_lengths_text((16, 24, 32)) == "16, 24 or 32 bytes (32, 48 or 64 hex digits)"
    assert xfrm.key_lengths_text((20,)) == "20 bytes (40 hex digits)"


# ---------------------------------------------------------------------------- comparisons, commands


def _want(**extra):
    want = {
        "src": "fec0:106:1100::2",
        "dst": "fec0:106:2700::1",
        "proto": "esp",
        "spi": 0x1001,
        "reqid": 1,
        "mode": "transport",
        "algorithm": "aes-cbc-hmac-sha1",
        "algos": xfrm.wanted_algos("aes-cbc-hmac-sha1", {"enc_key": ENC, "auth_key": AUTH}),
        "sel": dict(xfrm.any_selector(), proto=135),
        "selector_given": True,
    }
    want.update(extra)
    return want


def test_state_add_args_and_matching_kernel_state():
    want = _want()
    assert " ".join(xfrm.state_add_args(want)) == (
        "xfrm state add src fec0:106:1100::2 dst fec0:106:2700::1 proto esp spi 0x00001001 reqid 1 "
        f"mode transport auth-trunc hmac(sha1) 0x{AUTH} 96 enc cbc(aes) 0x{ENC} "
        "sel src ::/0 dst ::/0 proto 135"
    )
    have = xfrm.parse_states(STATES)[0]
    assert xfrm.state_differences(have, want) == []


def test_state_differences():
    have = xfrm.parse_states(STATES)[0]
    other_key = xfrm.wanted_algos("aes-cbc-hmac-sha1", {"enc_key": ENC[::-1], "auth_key": AUTH})
    assert xfrm.state_differences(have, _want(algos=other_key)) == ["keys"]
    gcm = xfrm.wanted_algos("aes-gcm", {"aead_key": AEAD})
    assert xfrm.state_differences(have, _want(algorithm="aes-gcm", algos=gcm)) == ["algorithm"]
    assert xfrm.state_differences(have, _want(mode="tunnel", reqid=2, sel=xfrm.any_selector())) == [
        "mode",
        "reqid",
        "selector",
    ]


def test_state_view_has_no_keys():
    view = xfrm.state_view(xfrm.parse_states(STATES)[1])
    assert view == {
        "src": "fec0:106:2700::1",
        "dst": "fec0:106:1100::2",
        "proto": "esp",
        "spi": "0x00001002",
        "mode": "tunnel",
        "reqid": 2,
        "replay_window": 32,
        "algorithm": "aes-gcm",
        "selector": {"src": "fec0:106:2500::/64", "dst": "fec0:106:1100::2/128", "proto": "tcp", "sport": 80},
        "keys": "<hidden>",
    }
    assert AEAD not in repr(view)
    assert xfrm.state_view(None) == {}


def test_redact():
    line = f"ip -6 xfrm state add ... enc cbc(aes) 0x{ENC} auth-trunc hmac(sha1) 0X{AUTH.upper()} 96"
    assert xfrm.redact(line, [ENC, AUTH]) == (
        "ip -6 xfrm state add ... enc cbc(aes) <hidden> auth-trunc hmac(sha1) <hidden> 96"
    )


def test_template_args():
    transport = {"src": "::", "dst": "::", "proto": "esp", "spi": 0, "reqid": 1, "mode": "transport"}
    assert " ".join(xfrm.template_args(dict(transport, level="required"))) == (
        "tmpl proto esp reqid 1 mode transport level required"
    )
    tunnel = {"src": "fec0::a", "dst": "fec0::b", "proto": "esp", "spi": 0x1001, "reqid": 2, "mode": "tunnel"}
    assert " ".join(xfrm.template_args(dict(tunnel, level="use"))) == (
        "tmpl src fec0::a dst fec0::b proto esp spi 0x00001001 reqid 2 mode tunnel level use"
    )


def test_selector_args():
    sel = dict(xfrm.any_selector(), src="fec0::1/128", proto=6, dport=80)
    assert xfrm.selector_args(sel) == ["src", "fec0::1/128", "dst", "::/0", "proto", "6", "dport", "80"]
    sel = dict(xfrm.any_selector(), proto=135, type=5)
    assert xfrm.selector_args(sel) == ["src", "::/0", "dst", "::/0", "proto", "135", "type", "5"]
    assert xfrm.selector_args(xfrm.any_selector()) == ["src", "::/0", "dst", "::/0"]
