"""mvpn.lab.xfrm_state run in-process against a fake SAD driven through ``ip`` command lines.

``FakeSad`` keeps SAs the way the kernel does (one per destination, protocol and SPI; ``delete``
ignores the source address), prints them as iproute2 6.1 does and records every command: lines
given to ``ip -6 -batch -`` on stdin are recorded as ``ip -6 LINE``.
"""

from __future__ import annotations

import json
import shlex

import pytest
from ansible.module_utils import basic
from ansible_collections.mvpn.lab.plugins.modules import xfrm_state

MN = "fec0:106:1100::2"
HA = "fec0:106:2700::1"
ENC = "8f3e1c0a9b2d4e6f7a8b9c0d1e2f3a4b"
ENC2 = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
ENC256 = "7b0c" * 16
AUTH = "5d41402abc4b2a76b9719d911017c592e3b0c442"
AEAD = "c0ffee00deadbeef0123456789abcdef1a2b3c4d"
SECRETS = (ENC, ENC2, ENC256, AUTH, AEAD)
NAMES = {6: "tcp", 17: "udp", 58: "ipv6-icmp", 135: "mobility-header"}

READ = f"ip -6 xfrm state list dst {HA} proto esp spi 0x00001001"

CBC = {
    "src": MN,
    "dst": HA,
    "spi": "0x1001",
    "reqid": 1,
    "algorithm": "aes-cbc-hmac-sha1",
    "enc_key": ENC,
    "auth_key": AUTH,
}
GCM = {"src": MN, "dst": HA, "spi": 4097, "reqid": 1, "algorithm": "aes-gcm", "aead_key": AEAD}
ADD_CBC = (
    f"ip -6 xfrm state add src {MN} dst {HA} proto esp spi 0x00001001 reqid 1 mode transport "
    "replay-window 32 "
    f"auth-trunc hmac(sha1) 0x{AUTH} 96 enc cbc(aes) 0x{ENC}"
)
DELETE = f"ip -6 xfrm state delete src {MN} dst {HA} proto esp spi 0x00001001"


def sa(
    src,
    dst,
    proto="esp",
    spi=0x1001,
    reqid=1,
    mode="transport",
    algos=None,
    sel=None,
    coa=None,
    flags="",
    replay_window=None,
):
    """One SA of the fake SAD; ``algos`` as iproute2 prints them, ``sel`` the words after ``sel``;
    an ESP SA has the module's default replay window (32) unless told."""
    if algos is None and proto == "esp":
        algos = [f"auth-trunc hmac(sha1) 0x{AUTH} 96", f"enc cbc(aes) 0x{ENC}"]
    return {
        "src": src,
        "dst": dst,
        "proto": proto,
        "spi": spi if proto == "esp" else 0,
        "reqid": reqid,
        "mode": mode,
        "algos": algos or [],
        "sel": sel,
        "coa": coa,
        "flags": flags,
        "replay_window": (32 if proto == "esp" else 0) if replay_window is None else replay_window,
    }


def render(s):
    spi = f"spi 0x{s['spi']:08x} " if s["proto"] == "esp" else ""
    out = f"src {s['src']} dst {s['dst']}\n\tproto {s['proto']} {spi}reqid {s['reqid']} mode {s['mode']}\n"
    out += f"\treplay-window {s['replay_window']} {'flag ' + s['flags'] if s['flags'] else ''}\n"
    out += "".join(f"\t{a}\n" for a in s["algos"])
    if s["coa"]:
        out += f"\tcoa {s['coa']}\n"
    out += "\tanti-replay context: seq 0x0, oseq 0x0, bitmap 0x00000000\n"
    out += f"\tsel {s['sel'] or 'src ::/0 dst ::/0'} \n"
    return out


class FakeSad:
    def __init__(self, states=()):
        self.states = list(states)
        self.argv: list[str] = []  # every command line as run (the batch one without its stdin)
        self.commands: list[str] = []  # the same with batch lines expanded
        self.batches: list[list[str]] = []
        self.canned: dict[str, tuple[int, str, str]] = {}
        self.fail: dict[str, tuple[int, str, str]] = {}

    def changing(self):
        return [c for c in self.commands if not c.startswith("ip -6 xfrm state list")]

    def _find(self, dst, proto, spi):
        for s in self.states:
            if (s["dst"], s["proto"], s["spi"]) == (dst, proto, spi):
                return s
        return None

    def __call__(self, args, data=None, **kwargs):
        assert isinstance(args, list), args
        line = " ".join(args)
        self.argv.append(line)
        if args == ["ip", "-6", "-batch", "-"]:
            batch = ["ip -6 " + row for row in (data or "").splitlines() if row.strip()]
            self.batches.append(batch)
            for cmd in batch:
                rc, out, err = self._one(cmd)
                if rc:
                    return rc, out, err
            return 0, "", ""
        return self._one(line)

    def _one(self, line):
        self.commands.append(line)
        if line in self.canned:
            return self.canned[line]
        for prefix, answer in self.fail.items():
            if line.startswith(prefix):
                return answer
        words = shlex.split(line)
        assert words[:4] == ["ip", "-6", "xfrm", "state"], line
        op, rest = words[4], words[5:]
        # ID, reqid and mode come first (an add goes on with algorithms and "sel src .. dst ..")
        opts = dict(zip(rest[:12:2], rest[1:12:2], strict=False))
        if op == "list":
            shown = [
                s
                for s in self.states
                if s["dst"] == opts.get("dst", s["dst"])
                and s["proto"] == opts.get("proto", s["proto"])
                and ("spi" not in opts or s["spi"] == int(opts["spi"], 16))
            ]
            return 0, "".join(render(s) for s in shown), ""
        spi = int(opts["spi"], 16)
        if op == "delete":
            found = self._find(opts["dst"], opts["proto"], spi)  # the kernel ignores src for ESP
            if found is None:
                return 2, "", "RTNETLINK answers: No such process\n"
            self.states.remove(found)
            return 0, "", ""
        if op == "add":
            if self._find(opts["dst"], opts["proto"], spi):
                return 2, "", "RTNETLINK answers: File exists\n"
            algos = []
            for kind in ("auth-trunc", "aead", "enc"):
                if kind in rest:
                    i = rest.index(kind)
                    n = 4 if kind != "enc" else 3
                    algos.append(" ".join(rest[i : i + n]).lower())
            sel = None
            if "sel" in rest:
                words = rest[rest.index("sel") + 1 :]
                if "proto" in words:
                    i = words.index("proto") + 1
                    words[i] = NAMES.get(int(words[i]), words[i])  # ip prints /etc/protocols names
                sel = " ".join(words)
            window = int(rest[rest.index("replay-window") + 1]) if "replay-window" in rest else 0
            self.states.append(
                sa(
                    opts["src"],
                    opts["dst"],
                    spi=spi,
                    reqid=int(opts["reqid"]),
                    mode=opts["mode"],
                    replay_window=window,
                )
            )
            self.states[-1].update(algos=algos, sel=sel)
            return 0, "", ""
        raise AssertionError(f"unexpected command: {line}")


@pytest.fixture
def sad(monkeypatch):
    fake = FakeSad()
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, args, **kw: fake(args, **kw))
    return fake


def assert_no_secret(result, fake=None):
    """No key, in any spelling, anywhere in the result nor on any command line (stdin aside)."""
    text = json.dumps(result).lower()
    for secret in SECRETS:
        assert secret not in text
    if fake is not None:
        for line in fake.argv:
            for secret in SECRETS:
                assert secret not in line.lower()


# ---------------------------------------------------------------------------- create, no-op, replace


def test_create_aes_cbc_hmac_sha1(sad, run_module):
    result = run_module(xfrm_state, CBC)
    assert sad.commands == [READ, ADD_CBC]
    assert sad.argv == [READ, "ip -6 -batch -"]
    assert result["changed"] is True
    assert result["operation"] == "added"
    assert {k: result[k] for k in ("spi", "src", "dst", "proto", "mode", "reqid", "algorithm", "state")} == {
        "spi": "0x00001001",
        "src": MN,
        "dst": HA,
        "proto": "esp",
        "mode": "transport",
        "reqid": 1,
        "algorithm": "aes-cbc-hmac-sha1",
        "state": "present",
    }
    assert result["selector"] == {"src": "::/0", "dst": "::/0", "proto": None}
    assert_no_secret(result, sad)


def test_second_run_changes_nothing(sad, run_module):
    run_module(xfrm_state, CBC)
    sad.commands.clear()
    result = run_module(xfrm_state, CBC)
    assert sad.commands == [READ]
    assert result["changed"] is False and result["operation"] == "none" and result["differences"] == []


def test_spellings_of_spi_and_keys_are_the_same_sa(sad, run_module):
    run_module(xfrm_state, CBC)
    sad.commands.clear()
    same = dict(CBC, spi=4097, enc_key="0x" + ENC.upper(), auth_key="0X" + AUTH)
    result = run_module(xfrm_state, same)
    assert sad.changing() == []
    assert result["changed"] is False
    assert_no_secret(result, sad)


def test_key_change_replaces_the_sa_in_one_batch(sad, run_module):
    run_module(xfrm_state, CBC)
    sad.commands.clear()
    sad.batches.clear()
    result = run_module(xfrm_state, dict(CBC, enc_key=ENC2))
    assert sad.batches == [[DELETE, ADD_CBC.replace(ENC, ENC2)]]
    assert result["changed"] is True
    assert result["operation"] == "replaced" and result["differences"] == ["keys"]
    assert [s["algos"][1] for s in sad.states] == [f"enc cbc(aes) 0x{ENC2}"]
    assert_no_secret(result, sad)


def test_auth_key_change_replaces_too(sad, run_module):
    sad.states = [sa(MN, HA, algos=[f"auth-trunc hmac(sha1) 0x{AUTH[::-1]} 96", f"enc cbc(aes) 0x{ENC}"])]
    result = run_module(xfrm_state, CBC)
    assert sad.changing() == [DELETE, ADD_CBC]
    assert result["differences"] == ["keys"]


@pytest.mark.parametrize(
    "change, differences",
    [
        ({"reqid": 2}, ["reqid"]),
        ({"mode": "tunnel"}, ["mode"]),
        ({"selector": {"proto": "135"}}, ["selector"]),
        ({"algorithm": "aes-gcm", "enc_key": None, "auth_key": None, "aead_key": AEAD}, ["algorithm"]),
    ],
)
def test_other_differences_replace_the_sa(sad, run_module, change, differences):
    run_module(xfrm_state, CBC)
    sad.commands.clear()
    args = {k: v for k, v in dict(CBC, **change).items() if v is not None}
    result = run_module(xfrm_state, args)
    assert sad.changing()[0] == DELETE
    assert sad.changing()[1].startswith("ip -6 xfrm state add src")
    assert result["operation"] == "replaced" and result["differences"] == differences
    sad.commands.clear()
    assert run_module(xfrm_state, args)["changed"] is False
    assert sad.changing() == []


def test_aes_gcm(sad, run_module):
    result = run_module(xfrm_state, GCM)
    assert sad.changing() == [
        f"ip -6 xfrm state add src {MN} dst {HA} proto esp spi 0x00001001 reqid 1 mode transport "
        "replay-window 32 "
        f"aead rfc4106(gcm(aes)) 0x{AEAD} 128"
    ]
    assert result["algorithm"] == "aes-gcm"
    assert_no_secret(result, sad)
    sad.commands.clear()
    assert run_module(xfrm_state, GCM)["changed"] is False


def test_aes_256_cbc(sad, run_module):
    run_module(xfrm_state, dict(CBC, enc_key=ENC256))
    assert sad.changing() == [ADD_CBC.replace(ENC, ENC256)]


def test_tunnel_mode_with_selector(sad, run_module):
    args = dict(
        GCM,
        src=HA,
        dst=MN,
        mode="tunnel",
        reqid=2,
        selector={"src": "FEC0:106:2500::/64", "dst": MN, "proto": "tcp"},
    )
    result = run_module(xfrm_state, args)
    assert sad.changing() == [
        f"ip -6 xfrm state add src {HA} dst {MN} proto esp spi 0x00001001 reqid 2 mode tunnel "
        "replay-window 32 "
        f"aead rfc4106(gcm(aes)) 0x{AEAD} 128 sel src fec0:106:2500::/64 dst {MN}/128 proto 6"
    ]
    assert result["mode"] == "tunnel"
    assert result["selector"] == {"src": "fec0:106:2500::/64", "dst": MN + "/128", "proto": "tcp"}
    assert sad.states[0]["sel"] == f"src fec0:106:2500::/64 dst {MN}/128 proto tcp"
    sad.commands.clear()
    second = run_module(xfrm_state, args)
    assert sad.changing() == []
    assert second["changed"] is False


def test_mobility_header_selector_by_name_or_number(sad, run_module):
    run_module(xfrm_state, dict(CBC, selector={"proto": 135}))
    assert sad.changing() == [ADD_CBC + " sel src ::/0 dst ::/0 proto 135"]
    sad.commands.clear()
    assert run_module(xfrm_state, dict(CBC, selector={"proto": "mobility-header"}))["changed"] is False


def test_other_sas_and_mip6_states_are_left_alone(sad, run_module):
    """The listing may hold anything (here the whole SAD, as if ip ignored the filter)."""
    others = [
        sa("::", "::", proto="hao", mode="ro", coa="::", flags="wildrecv"),
        sa(HA, MN, proto="route2", mode="ro", coa="fec0:106:1700::2"),
        sa(MN, HA, spi=0x1002, reqid=2),  # same pair, other SPI
        sa(HA, MN, spi=0x1001),  # same SPI, other destination
        sa(MN, HA),  # the one, matching
    ]
    sad.canned[READ] = (0, "".join(render(s) for s in others), "")
    result = run_module(xfrm_state, CBC)
    assert sad.changing() == []
    assert result["changed"] is False


# ---------------------------------------------------------------------------- absent


def test_absent_deletes(sad, run_module):
    sad.states = [sa(MN, HA), sa(HA, MN, proto="route2", mode="ro", coa="fec0:106:1700::2")]
    result = run_module(xfrm_state, {"src": MN, "dst": HA, "spi": "0x1001", "state": "absent"})
    assert sad.changing() == [DELETE]
    assert result["changed"] is True and result["operation"] == "deleted"
    assert [s["proto"] for s in sad.states] == ["route2"]
    assert result["mode"] is None and result["algorithm"] is None
    sad.commands.clear()
    again = run_module(xfrm_state, {"src": MN, "dst": HA, "spi": "0x1001", "state": "absent"})
    assert sad.commands == [READ]
    assert again["changed"] is False


def test_absent_ignores_keys_it_is_given(sad, run_module):
    sad.states = [sa(MN, HA)]
    result = run_module(xfrm_state, dict(CBC, state="absent", enc_key="not even hex"))
    assert sad.changing() == [DELETE]
    assert_no_secret(result, sad)


def test_absent_never_deletes_another_source_sa(sad, run_module, monkeypatch):
    """``ip xfrm state delete`` would remove the SA with that dst and SPI whatever its src."""
    warnings = []  # (module warnings go to the controller's display once a test imported the controller)
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    sad.states = [sa("fec0:106:1100::99", HA)]
    result = run_module(xfrm_state, {"src": MN, "dst": HA, "spi": "0x1001", "state": "absent"})
    assert sad.changing() == []
    assert result["changed"] is False
    assert warnings == [
        f"spi 0x00001001 towards {HA} is used by the SA from fec0:106:1100::99, "
        "which is not the one to remove; left alone"
    ]
    assert len(sad.states) == 1


# ---------------------------------------------------------------------------- check mode, diff


def test_check_mode_changes_nothing(sad, run_module):
    result = run_module(xfrm_state, CBC, check=True)
    assert sad.changing() == [] and sad.states == []
    assert result["changed"] is True and result["operation"] == "added"
    sad.states = [sa(MN, HA)]
    result = run_module(xfrm_state, dict(CBC, enc_key=ENC2), check=True)
    assert sad.changing() == []
    assert result["operation"] == "replaced"
    assert sad.states[0]["algos"][1] == f"enc cbc(aes) 0x{ENC}"
    result = run_module(xfrm_state, dict(CBC, state="absent"), check=True)
    assert sad.changing() == [] and len(sad.states) == 1
    assert result["operation"] == "deleted"


def test_diff_shows_fields_but_no_keys(sad, run_module):
    sad.states = [sa(MN, HA, reqid=7)]
    result = run_module(xfrm_state, dict(CBC, enc_key=ENC2), diff=True)
    before = {
        "src": MN,
        "dst": HA,
        "proto": "esp",
        "spi": "0x00001001",
        "mode": "transport",
        "reqid": 7,
        "replay_window": 32,
        "algorithm": "aes-cbc-hmac-sha1",
        "selector": {"src": "::/0", "dst": "::/0", "proto": None},
        "keys": "<hidden>",
    }
    assert result["diff"] == {"before": before, "after": dict(before, reqid=1, keys="<hidden> (changed)")}
    assert result["differences"] == ["reqid", "keys"]
    assert_no_secret(result, sad)


def test_diff_marks_a_key_only_change(sad, run_module):
    sad.states = [sa(MN, HA)]
    result = run_module(xfrm_state, dict(CBC, enc_key=ENC2), diff=True)
    assert result["diff"]["before"]["keys"] == "<hidden>"
    assert result["diff"]["after"]["keys"] == "<hidden> (changed)"
    assert {k: v for k, v in result["diff"]["before"].items() if k != "keys"} == {
        k: v for k, v in result["diff"]["after"].items() if k != "keys"
    }
    assert_no_secret(result, sad)


def test_diff_of_create_and_delete(sad, run_module):
    created = run_module(xfrm_state, GCM, diff=True)
    assert created["diff"]["before"] == {}
    assert created["diff"]["after"]["algorithm"] == "aes-gcm"
    deleted = run_module(xfrm_state, dict(GCM, state="absent"), diff=True)
    assert deleted["diff"]["after"] == {}
    assert deleted["diff"]["before"]["keys"] == "<hidden>"
    assert_no_secret(created, sad)
    assert_no_secret(deleted, sad)


# ---------------------------------------------------------------------------- errors


def test_spi_clash(sad, run_module):
    sad.states = [sa("fec0:106:1100::99", HA)]
    result = run_module(xfrm_state, CBC)
    assert result["failed"] is True
    assert result["msg"] == (
        f"spi: 0x00001001 towards {HA} (proto esp) is already used by the SA from fec0:106:1100::99; "
        "the kernel allows one SA per destination, protocol and SPI"
    )
    assert sad.changing() == []
    assert_no_secret(result, sad)


@pytest.mark.parametrize(
    "change, msg",
    [
        (
            {"enc_key": ENC[:30]},
            "enc_key: 15 bytes given; algorithm aes-cbc-hmac-sha1 takes 16, 24 or 32 bytes "
            "(32, 48 or 64 hex digits)",
        ),
        (
            {"auth_key": AUTH[:32]},
            "auth_key: 16 bytes given; algorithm aes-cbc-hmac-sha1 takes 20 bytes (40 hex digits)",
        ),
        (
            {"algorithm": "aes-gcm", "enc_key": None, "auth_key": None, "aead_key": ENC},
            "aead_key: 16 bytes given; algorithm aes-gcm takes 20, 28 or 36 bytes (40, 56 or 72 hex digits)",
        ),
        (
            {"auth_key": None},
            "auth_key: required with algorithm aes-cbc-hmac-sha1 (20 bytes (40 hex digits))",
        ),
        (
            {"aead_key": AEAD},
            "aead_key: not used with algorithm aes-cbc-hmac-sha1 (it takes auth_key and enc_key)",
        ),
        (
            {"algorithm": "aes-gcm", "auth_key": None, "aead_key": AEAD},
            "enc_key: not used with algorithm aes-gcm (it takes aead_key)",
        ),
        (
            {"enc_key": "zz" + ENC[2:]},
            "enc_key: not a hex string (expected 16, 24 or 32 bytes (32, 48 or 64 hex digits), "
            "optionally prefixed with 0x)",
        ),
        (
            {"algorithm": "3des-md5"},
            "value of algorithm must be one of: aes-cbc-hmac-sha1, aes-gcm, got: 3des-md5",
        ),
        ({"algorithm": None}, "state is present but all of the following are missing: algorithm"),
        (
            {"spi": 255},
            "spi: 255 is not an SPI (expected an int or a hex string like 0x1001, 256 to 0xffffffff)",
        ),
        (
            {"spi": "0x1g"},
            "spi: '0x1g' is not an SPI (expected an int or a hex string like 0x1001, 256 to 0xffffffff)",
        ),
        (
            {"src": "fec0:106:1100::2/64"},
            "src: 'fec0:106:1100::2/64' is not an IPv6 address (expected e.g. fec0:106:2700::1)",
        ),
        ({"dst": "192.0.2.1"}, "dst: '192.0.2.1' is not an IPv6 address (expected e.g. fec0:106:2700::1)"),
        ({"reqid": -1}, "reqid: -1 is out of range (expected 0 to 4294967295)"),
        (
            {"selector": {"src": "fec0:106:2500::1/64"}},
            "selector.src: 'fec0:106:2500::1/64' is not an IPv6 prefix (expected e.g. fec0:106:1100::/64, "
            "or an address for /128)",
        ),
        (
            {"selector": {"proto": "ospf6"}},
            "selector.proto: 'ospf6' is not a protocol (expected tcp, udp, ipv6-icmp, 135 (mobility-header) "
            "or a number 1-255)",
        ),
        ({"mode": "beet"}, "value of mode must be one of: transport, tunnel, got: beet"),
        ({"proto": "ah"}, "value of proto must be one of: esp, got: ah"),
    ],
)
def test_bad_input_fails_before_touching_the_kernel(sad, run_module, change, msg):
    args = {k: v for k, v in dict(CBC, **change).items() if v is not None}
    result = run_module(xfrm_state, args)
    assert result["failed"] is True
    assert result["msg"] == msg
    assert "\n" not in result["msg"]
    assert sad.commands == []
    assert_no_secret(result, sad)


def test_ip_error_is_reported_without_keys(sad, run_module):
    sad.fail["ip -6 xfrm state add"] = (2, "", "Error: Requested AEAD algorithm not found.\n")
    result = run_module(xfrm_state, GCM)
    assert result["failed"] is True
    assert result["msg"] == (
        f"ip -6 xfrm state add src {MN} dst {HA} proto esp spi 0x00001001 reqid 1 mode transport "
        "replay-window 32 "
        "aead rfc4106(gcm(aes)) <hidden> 128 failed: Error: Requested AEAD algorithm not found."
    )
    assert_no_secret(result, sad)


def test_failed_replace_reports_both_lines_without_keys(sad, run_module):
    sad.states = [sa(MN, HA)]
    sad.fail["ip -6 xfrm state add"] = (2, "", "RTNETLINK answers: No buffer space available\n")
    result = run_module(xfrm_state, dict(CBC, enc_key=ENC2.upper()))
    assert result["failed"] is True
    assert result["msg"].startswith(f"{DELETE}; ip -6 xfrm state add src {MN}")
    assert result["msg"].endswith("<hidden> failed: RTNETLINK answers: No buffer space available")
    assert_no_secret(result, sad)


def test_listing_error_is_reported(sad, run_module):
    sad.fail[READ] = (1, "", "RTNETLINK answers: Protocol not supported\n")
    result = run_module(xfrm_state, CBC)
    assert result["failed"] is True
    assert result["msg"] == f"{READ} failed: RTNETLINK answers: Protocol not supported"


# ---------------------------------------------------------------------------- keys never leave


SCENARIOS = {
    "create": ([], CBC, {}),
    "no-op": ([sa(MN, HA)], CBC, {}),
    "replace": ([sa(MN, HA)], dict(CBC, enc_key=ENC2), {}),
    "gcm": ([], GCM, {}),
    "absent": ([sa(MN, HA)], dict(CBC, state="absent"), {}),
    "clash": ([sa("fec0::99", HA)], CBC, {}),
    "bad length": ([], dict(CBC, auth_key=ENC256), {}),
    "check+diff": ([sa(MN, HA)], dict(CBC, enc_key=ENC2), {"check": True, "diff": True}),
    "diff": ([sa(MN, HA, reqid=5)], dict(CBC, enc_key=ENC256.upper()), {"diff": True}),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_result_never_contains_a_key(sad, run_module, name):
    states, args, mode = SCENARIOS[name]
    sad.states = [dict(s) for s in states]
    result = run_module(xfrm_state, args, **mode)
    assert_no_secret(result, sad)
    assert "invocation" not in result or "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in json.dumps(
        result["invocation"]
    )


# ---------------------------------------------------------------------------- the list form (states)

LIST = "ip -6 xfrm state list proto esp"
CN = "fec0:106:2500::2"
# three SAs of three kinds: MN -> HA (paper's suite), HA -> MN (GCM, tunnel), CN -> MN (AES-256, tcp only)
MN_HA = CBC
HA_MN = dict(GCM, src=HA, dst=MN, spi="0x1002", mode="tunnel", reqid=2)
CN_MN = dict(CBC, src=CN, dst=MN, spi=0x1003, enc_key=ENC256, selector={"proto": "tcp"})
ADD_HA_MN = (
    f"ip -6 xfrm state add src {HA} dst {MN} proto esp spi 0x00001002 reqid 2 mode tunnel "
    "replay-window 32 "
    f"aead rfc4106(gcm(aes)) 0x{AEAD} 128"
)
ADD_CN_MN = (
    f"ip -6 xfrm state add src {CN} dst {MN} proto esp spi 0x00001003 reqid 1 mode transport "
    "replay-window 32 "
    f"auth-trunc hmac(sha1) 0x{AUTH} 96 enc cbc(aes) 0x{ENC256} sel src ::/0 dst ::/0 proto 6"
)
TRIO = [MN_HA, HA_MN, CN_MN]


def absent(entry):
    return {"src": entry["src"], "dst": entry["dst"], "spi": entry["spi"], "state": "absent"}


def test_list_installs_every_sa_with_one_listing_and_one_batch(sad, run_module):
    result = run_module(xfrm_state, {"states": TRIO})
    assert sad.argv == [LIST, "ip -6 -batch -"]
    assert sad.batches == [[ADD_CBC, ADD_HA_MN, ADD_CN_MN]]
    assert result["changed"] is True
    assert [r["operation"] for r in result["results"]] == ["added", "added", "added"]
    assert result["results"][1] == {
        "operation": "added",
        "differences": [],
        "state": "present",
        "spi": "0x00001002",
        "src": HA,
        "dst": MN,
        "proto": "esp",
        "mode": "tunnel",
        "reqid": 2,
        "replay_window": 32,
        "algorithm": "aes-gcm",
        "selector": {"src": "::/0", "dst": "::/0", "proto": None},
    }
    assert result["results"][2]["selector"] == {"src": "::/0", "dst": "::/0", "proto": "tcp"}
    assert len(sad.states) == 3
    # the keys went to ip on stdin, and nowhere else
    stdin = "\n".join(sad.batches[0])
    assert all(key in stdin for key in (ENC, AUTH, AEAD, ENC256))
    assert_no_secret(result, sad)


def test_list_second_run_only_lists(sad, run_module):
    run_module(xfrm_state, {"states": TRIO})
    sad.argv.clear()
    sad.batches.clear()
    result = run_module(xfrm_state, {"states": TRIO})
    assert sad.argv == [LIST]
    assert sad.batches == []
    assert result["changed"] is False
    assert [(r["operation"], r["differences"]) for r in result["results"]] == [("none", [])] * 3


def test_list_mixed_present_and_absent_in_entry_order(sad, run_module):
    sad.states = [sa(CN, MN, spi=0x1003), sa(MN, HA), sa(HA, MN, proto="route2", mode="ro", coa=CN)]
    states = [absent(CN_MN), dict(MN_HA, state="present"), absent(dict(HA_MN, spi="0x1004")), HA_MN]
    result = run_module(xfrm_state, {"states": states})
    assert sad.argv[-2:] == [LIST, "ip -6 -batch -"]
    assert sad.batches == [[f"ip -6 xfrm state delete src {CN} dst {MN} proto esp spi 0x00001003", ADD_HA_MN]]
    assert [r["operation"] for r in result["results"]] == ["deleted", "none", "none", "added"]
    assert [r["state"] for r in result["results"]] == ["absent", "present", "absent", "present"]
    assert result["results"][0]["mode"] is None and result["results"][0]["algorithm"] is None
    assert sorted((s["proto"], s["spi"]) for s in sad.states) == [
        ("esp", 0x1001),
        ("esp", 0x1002),
        ("route2", 0),
    ]
    assert_no_secret(result, sad)


def test_list_replaces_on_a_key_change_delete_then_add(sad, run_module):
    run_module(xfrm_state, {"states": TRIO})
    sad.argv.clear()
    sad.batches.clear()
    result = run_module(xfrm_state, {"states": [HA_MN, dict(MN_HA, enc_key=ENC2), CN_MN]})
    assert sad.argv == [LIST, "ip -6 -batch -"]
    assert sad.batches == [[DELETE, ADD_CBC.replace(ENC, ENC2)]]
    assert [(r["operation"], r["differences"]) for r in result["results"]] == [
        ("none", []),
        ("replaced", ["keys"]),
        ("none", []),
    ]
    assert_no_secret(result, sad)


def test_list_check_mode_lists_and_changes_nothing(sad, run_module):
    sad.states = [sa(MN, HA, reqid=9), sa(CN, MN, spi=0x1003)]
    result = run_module(xfrm_state, {"states": [MN_HA, HA_MN, absent(CN_MN)]}, check=True)
    assert sad.argv == [LIST]
    assert sad.batches == []
    assert result["changed"] is True
    assert [r["operation"] for r in result["results"]] == ["replaced", "added", "deleted"]
    assert [(s["src"], s["reqid"]) for s in sad.states] == [(MN, 9), (CN, 1)]


def test_list_of_nothing_asks_the_kernel_nothing(sad, run_module):
    result = run_module(xfrm_state, {"states": []})
    assert sad.argv == []
    assert result["changed"] is False and result["results"] == []


def test_list_diff_has_every_entry_and_no_key(sad, run_module):
    sad.states = [sa(MN, HA), sa(CN, MN, spi=0x1003)]
    states = [dict(MN_HA, enc_key=ENC2), absent(CN_MN), HA_MN]
    result = run_module(xfrm_state, {"states": states}, diff=True)
    before, after = result["diff"]["before"]["states"], result["diff"]["after"]["states"]
    assert len(before) == len(after) == 3
    assert before[0]["keys"] == "<hidden>" and after[0]["keys"] == "<hidden> (changed)"
    assert before[1]["spi"] == "0x00001003" and after[1] == {}
    assert before[2] == {} and after[2]["algorithm"] == "aes-gcm" and after[2]["keys"] == "<hidden>"
    assert_no_secret(result, sad)


def test_list_spi_clash_fails_before_any_change(sad, run_module):
    sad.states = [sa("fec0:106:1100::99", HA)]
    result = run_module(xfrm_state, {"states": [HA_MN, MN_HA]})
    assert result["failed"] is True
    assert result["msg"] == (
        f"states[1].spi: 0x00001001 towards {HA} (proto esp) is already used by the SA from "
        "fec0:106:1100::99; the kernel allows one SA per destination, protocol and SPI"
    )
    assert sad.argv == [LIST]  # HA_MN, fine on its own, was not added either
    assert len(sad.states) == 1
    assert_no_secret(result, sad)


def test_list_absent_leaves_another_source_sa_alone(sad, run_module, monkeypatch):
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    sad.states = [sa("fec0:106:1100::99", HA)]
    result = run_module(xfrm_state, {"states": [HA_MN, absent(MN_HA)]})
    assert sad.batches == [[ADD_HA_MN]]
    assert [r["operation"] for r in result["results"]] == ["added", "none"]
    assert warnings == [
        f"states[1]: spi 0x00001001 towards {HA} is used by the SA from fec0:106:1100::99, "
        "which is not the one to remove; left alone"
    ]


@pytest.mark.parametrize(
    "states, msg",
    [
        (
            [absent(MN_HA), MN_HA],
            f"states[1].spi: 0x00001001 towards {HA} (proto esp) is the SA of states[0] too; give each SA "
            "once (the kernel allows one SA per destination, protocol and SPI)",
        ),
        (
            # another source, another spelling of the SPI: still the kernel's same SA
            [MN_HA, HA_MN, dict(CN_MN, dst=HA, spi=4097)],
            f"states[2].spi: 0x00001001 towards {HA} (proto esp) is the SA of states[0] too; give each SA "
            "once (the kernel allows one SA per destination, protocol and SPI)",
        ),
    ],
)
def test_list_duplicates(sad, run_module, states, msg):
    result = run_module(xfrm_state, {"states": states})
    assert result["failed"] is True and result["msg"] == msg
    assert sad.argv == []


@pytest.mark.parametrize(
    "change, msg",
    [
        (
            {"enc_key": ENC[:30]},
            "states[2].enc_key: 15 bytes given; algorithm aes-cbc-hmac-sha1 takes 16, 24 or 32 bytes "
            "(32, 48 or 64 hex digits)",
        ),
        (
            {"auth_key": None},
            "states[2].auth_key: required with algorithm aes-cbc-hmac-sha1 (20 bytes (40 hex digits))",
        ),
        (
            {"aead_key": AEAD},
            "states[2].aead_key: not used with algorithm aes-cbc-hmac-sha1 (it takes auth_key and enc_key)",
        ),
        (
            {"auth_key": "0x" + "g" * 40},
            "states[2].auth_key: not a hex string (expected 20 bytes (40 hex digits), optionally prefixed "
            "with 0x)",
        ),
        (
            {"algorithm": "aes-gcm", "enc_key": None, "auth_key": None, "aead_key": ENC},
            "states[2].aead_key: 16 bytes given; algorithm aes-gcm takes 20, 28 or 36 bytes "
            "(40, 56 or 72 hex digits)",
        ),
        ({"algorithm": None}, "states[2].algorithm: required with state present"),
        ({"src": None}, "states[2].src: required"),
        ({"dst": None}, "states[2].dst: required"),
        ({"spi": None}, "states[2].spi: required"),
        (
            {"spi": "0x0ff"},
            "states[2].spi: '0x0ff' is not an SPI (expected an int or a hex string like 0x1001, "
            "256 to 0xffffffff)",
        ),
        (
            {"src": "fec0::2/64"},
            "states[2].src: 'fec0::2/64' is not an IPv6 address (expected e.g. fec0:106:2700::1)",
        ),
        ({"dst": "mn"}, "states[2].dst: 'mn' is not an IPv6 address (expected e.g. fec0:106:2700::1)"),
        ({"reqid": 2**32}, "states[2].reqid: 4294967296 is out of range (expected 0 to 4294967295)"),
        (
            {"selector": {"dst": "fec0::/33x"}},
            "states[2].selector.dst: 'fec0::/33x' is not an IPv6 prefix (expected e.g. fec0:106:1100::/64, "
            "or an address for /128)",
        ),
        (
            {"selector": {"proto": 256}},
            "states[2].selector.proto: 256 is not a protocol (expected tcp, udp, ipv6-icmp, "
            "135 (mobility-header) or a number 1-255)",
        ),
    ],
)
def test_list_bad_entry_fails_before_touching_the_kernel(sad, run_module, change, msg):
    bad = {k: v for k, v in dict(CN_MN, **change).items() if v is not None}
    result = run_module(xfrm_state, {"states": [MN_HA, HA_MN, bad]})
    assert result["failed"] is True
    assert result["msg"] == msg
    assert "\n" not in result["msg"]
    assert sad.argv == []
    assert_no_secret(result, sad)


def test_list_an_absent_entry_needs_no_algorithm_and_ignores_keys(sad, run_module):
    sad.states = [sa(MN, HA)]
    result = run_module(xfrm_state, {"states": [dict(absent(MN_HA), enc_key="not even hex")]})
    assert sad.batches == [[DELETE]]
    assert result["results"][0]["operation"] == "deleted"
    assert_no_secret(result, sad)


@pytest.mark.parametrize(
    "args, msg",
    [
        # checked by Ansible, which names the option and the list but not the entry
        (
            {"states": [MN_HA, dict(HA_MN, mode="beet")]},
            "value of mode must be one of: transport, tunnel, got: beet found in states",
        ),
        ({"states": TRIO, "src": MN}, "parameters are mutually exclusive: states|src"),
        ({"states": TRIO, "state": "absent"}, "parameters are mutually exclusive: states|state"),
    ],
)
def test_list_ansible_checks_fail_before_touching_the_kernel(sad, run_module, args, msg):
    result = run_module(xfrm_state, args)
    assert result["failed"] is True and result["msg"] == msg
    assert sad.argv == []
    assert_no_secret(result, sad)


@pytest.mark.parametrize(
    "args, msg",
    [
        ({"src": MN}, "missing required arguments: dst, spi"),
        ({"spi": 4097, "state": "absent"}, "missing required arguments: dst, src"),
        ({}, "missing required arguments: dst, spi, src"),
    ],
)
def test_single_form_still_needs_src_dst_and_spi(sad, run_module, args, msg):
    result = run_module(xfrm_state, args)
    assert result["failed"] is True and result["msg"] == msg
    assert sad.argv == []


def test_list_ip_errors_are_reported_without_keys(sad, run_module):
    sad.fail["ip -6 xfrm state add src " + HA] = (2, "", "Error: Requested AEAD algorithm not found.\n")
    result = run_module(xfrm_state, {"states": TRIO})
    assert result["failed"] is True
    assert result["msg"].startswith(
        f"{ADD_CBC.replace('0x' + AUTH, '<hidden>').replace('0x' + ENC, '<hidden>')}; "
    )
    assert result["msg"].endswith("failed: Error: Requested AEAD algorithm not found.")
    assert_no_secret(result, sad)


def test_list_listing_error_is_reported(sad, run_module):
    sad.fail[LIST] = (1, "", "RTNETLINK answers: Protocol not supported\n")
    result = run_module(xfrm_state, {"states": TRIO})
    assert result["failed"] is True
    assert result["msg"] == f"{LIST} failed: RTNETLINK answers: Protocol not supported"
    assert sad.batches == []


LIST_SCENARIOS = {
    "create": ([], TRIO, {}),
    "no-op": ([sa(MN, HA)], [MN_HA], {}),
    "replace": ([sa(MN, HA)], [dict(MN_HA, enc_key=ENC2), HA_MN], {}),
    "mixed": ([sa(MN, HA), sa(CN, MN, spi=0x1003)], [absent(MN_HA), CN_MN, HA_MN], {}),
    "clash": ([sa("fec0::99", HA)], [HA_MN, MN_HA], {}),
    "bad length": ([], [MN_HA, dict(CN_MN, auth_key=ENC256)], {}),
    "duplicate": ([], [MN_HA, dict(MN_HA, enc_key=ENC2)], {}),
    "check+diff": ([sa(MN, HA)], [dict(MN_HA, enc_key=ENC2), CN_MN], {"check": True, "diff": True}),
    "diff": ([sa(MN, HA, reqid=5)], [dict(MN_HA, enc_key=ENC256.upper()), HA_MN], {"diff": True}),
}


@pytest.mark.parametrize("name", sorted(LIST_SCENARIOS))
def test_list_result_never_contains_a_key(sad, run_module, name):
    states, entries, mode = LIST_SCENARIOS[name]
    sad.states = [dict(s) for s in states]
    result = run_module(xfrm_state, {"states": entries}, **mode)
    assert_no_secret(result, sad)
    assert "invocation" not in result or "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in json.dumps(
        result["invocation"]
    )


def test_replay_window_is_set_compared_and_zero_turns_it_off(sad, run_module):
    """Issue 14, item 1: every SA gets an anti-replay window (32 by default); an SA without one
    is replaced; 0 is possible and written as no window at all."""
    sad.states = [sa(MN, HA, replay_window=0)]  # as the lab's SAs were before
    result = run_module(xfrm_state, CBC)
    assert result["changed"] and result["differences"] == ["replay_window"]
    assert result["replay_window"] == 32
    assert sad.changing() == [DELETE, ADD_CBC] and "replay-window 32" in ADD_CBC
    assert sad.states[0]["replay_window"] == 32
    again = run_module(xfrm_state, CBC)
    assert not again["changed"]
    off = run_module(xfrm_state, dict(CBC, replay_window=0))
    assert off["differences"] == ["replay_window"] and sad.states[0]["replay_window"] == 0
    assert "replay-window" not in sad.changing()[-1]


@pytest.mark.parametrize("window", [-1, 33, 64])
def test_replay_window_out_of_range_is_one_line(sad, run_module, window):
    result = run_module(xfrm_state, {"states": [dict(CBC, replay_window=window)]})
    assert result["failed"]
    assert result["msg"] == (
        f"states[0].replay_window: {window} is out of range (expected 0, off, to 32 packets)"
    )
    assert sad.changing() == []
