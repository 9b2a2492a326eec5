"""mvpn.lab.xfrm_policy run in-process against a fake SPD driven through ``ip`` command lines.

``FakeSpd`` keys policies as the kernel does (selector, direction, type), answers ``get`` in
iproute2 6.1's format (checked against real output in test_xfrm_utils) and records every command.
"""

from __future__ import annotations

import pytest
from ansible.module_utils import basic
from ansible_collections.mvpn.lab.plugins.modules import xfrm_policy

MN = "fec0:106:1100::2"
HA = "fec0:106:2700::1"
COA = "fec0:106:1700::2"
NAMES = {"6": "tcp", "17": "udp", "58": "ipv6-icmp", "135": "mobility-header", "89": "ospf"}
ENOENT = (2, "", "RTNETLINK answers: No such file or directory\n")

BU = {
    "src": MN,
    "dst": HA,
    "proto": 135,
    "mh_type": 5,
    "dir": "out",
    "templates": [{"proto": "esp", "mode": "transport", "reqid": 1}],
}
BU_ID = f"src {MN}/128 dst {HA}/128 proto 135 type 5 dir out ptype main"
BU_GET = "ip -6 xfrm policy get " + BU_ID
BU_UPDATE = (
    f"ip -6 xfrm policy update {BU_ID} action allow priority 0 "
    "tmpl proto esp reqid 1 mode transport level required"
)


class FakeSpd:
    def __init__(self):
        self.policies: dict[tuple, dict] = {}  # (selector words, dir, ptype) -> policy
        self.argv: list[str] = []  # every command line as run (the batch one without its stdin)
        self.commands: list[str] = []  # the same with batch lines expanded
        self.batches: list[list[str]] = []
        self.extra = ""  # printed after the policies by list (e.g. socket policies)
        self.fail: dict[str, tuple[int, str, str]] = {}

    def changing(self):
        return [
            c for c in self.commands if not c.startswith(("ip -6 xfrm policy get ", "ip -6 xfrm policy list"))
        ]

    @staticmethod
    def _split(words):
        """Selector words, dir, ptype and the rest of an update/get/delete command."""
        sel = []
        i = 0
        while words[i] != "dir":
            sel.append(words[i])
            i += 1
        direction = words[i + 1]
        rest = words[i + 2 :]
        ptype = "main"
        if rest[:1] == ["ptype"]:
            ptype, rest = rest[1], rest[2:]
        return tuple(sel), direction, ptype, rest

    def __call__(self, args, data=None, **kwargs):
        assert isinstance(args, list), args
        line = " ".join(args)
        self.argv.append(line)
        if args == ["ip", "-6", "-batch", "-"]:
            batch = ["ip -6 " + row for row in (data or "").splitlines() if row.strip()]
            self.batches.append(batch)
            for cmd in batch:
                rc, out, err = self._one(cmd.split())
                if rc:
                    return rc, out, err
            return 0, "", ""
        return self._one(args)

    def _one(self, args):
        line = " ".join(args)
        self.commands.append(line)
        for prefix, answer in self.fail.items():
            if line.startswith(prefix):
                return answer
        assert args[:4] == ["ip", "-6", "xfrm", "policy"], line
        op = args[4]
        if op == "list":
            assert args[5:] == [], line
            return 0, "".join(self.render(key) for key in self.policies) + self.extra, ""
        sel, direction, ptype, rest = self._split(args[5:])
        key = (sel, direction, ptype)
        if op == "get":
            return (0, self.render(key), "") if key in self.policies else ENOENT
        if op == "delete":
            return (0, "", "") if self.policies.pop(key, None) else ENOENT
        if op == "update":
            policy = {"action": "allow", "priority": 0, "templates": []}
            i = 0
            while i < len(rest):
                if rest[i] in ("action", "priority"):
                    policy[rest[i]] = rest[i + 1]
                    i += 2
                elif rest[i] == "tmpl":
                    policy["templates"].append({"src": "::", "dst": "::", "spi": None, "level": "required"})
                    i += 1
                else:
                    policy["templates"][-1][rest[i]] = rest[i + 1]
                    i += 2
            self.policies[key] = policy
            return 0, "", ""
        raise AssertionError(f"unexpected command: {line}")

    def add(self, sel, direction="out", ptype="main", action="allow", priority=0, templates=()):
        self.policies[(tuple(sel.split()), direction, ptype)] = {
            "action": action,
            "priority": str(priority),
            "templates": [
                dict({"src": "::", "dst": "::", "spi": None, "level": "required"}, **t) for t in templates
            ],
        }

    def render(self, key):
        sel, direction, ptype = key
        words = list(sel)
        if "proto" in words:
            i = words.index("proto") + 1
            words[i] = NAMES.get(words[i], words[i])  # ip prints /etc/protocols names
        policy = self.policies[key]
        action = "action block " if policy["action"] == "block" else ""
        out = f"{' '.join(words)} \n\tdir {direction} {action}priority {policy['priority']} ptype {ptype} \n"
        for t in policy["templates"]:
            spi = f"spi 0x{int(t['spi'], 16):08x} " if t["spi"] else ""
            out += f"\ttmpl src {t['src']} dst {t['dst']}\n"
            out += f"\t\tproto {t['proto']} {spi}reqid {t['reqid']} mode {t['mode']}\n"
            if t["level"] == "use":
                out += "\t\tlevel use \n"
        return out


@pytest.fixture
def spd(monkeypatch):
    fake = FakeSpd()
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, args, **kw: fake(args, **kw))
    return fake


# ---------------------------------------------------------------------------- create, no-op, update


def test_create_binding_update_policy(spd, run_module):
    result = run_module(xfrm_policy, BU)
    assert spd.commands == [BU_GET, BU_UPDATE]
    assert result["changed"] is True and result["operation"] == "added"
    assert result["policy"] == {
        "src": f"{MN}/128",
        "dst": f"{HA}/128",
        "proto": 135,
        "mh_type": 5,
        "sport": None,
        "dport": None,
        "dir": "out",
        "ptype": "main",
        "action": "allow",
        "priority": 0,
        "templates": [
            {
                "src": "::",
                "dst": "::",
                "proto": "esp",
                "spi": None,
                "reqid": 1,
                "mode": "transport",
                "level": "required",
            }
        ],
    }


def test_second_run_changes_nothing(spd, run_module):
    run_module(xfrm_policy, BU)
    spd.commands.clear()
    result = run_module(xfrm_policy, BU)
    assert spd.commands == [BU_GET]
    assert result["changed"] is False and result["operation"] == "none" and result["differences"] == []


def test_proto_spellings_are_the_same_policy(spd, run_module):
    run_module(xfrm_policy, BU)
    spd.commands.clear()
    for proto in ("135", "mobility-header", "MH"):
        assert run_module(xfrm_policy, dict(BU, proto=proto, src=MN.upper()))["changed"] is False
    assert spd.changing() == []


@pytest.mark.parametrize(
    "change, differences",
    [
        ({"priority": 50}, ["priority"]),
        ({"action": "block", "templates": []}, ["action", "templates"]),
        ({"templates": [{"mode": "transport", "reqid": 2}]}, ["templates"]),
        ({"templates": [{"mode": "transport", "reqid": 1, "level": "use"}]}, ["templates"]),
        ({"templates": [{"mode": "transport", "reqid": 1, "spi": "0x1001"}]}, ["templates"]),
        ({"templates": [{"mode": "transport", "reqid": 1, "dst": HA}]}, ["templates"]),
        ({"templates": []}, ["templates"]),
    ],
)
def test_differences_update_the_policy(spd, run_module, change, differences):
    run_module(xfrm_policy, BU)
    spd.commands.clear()
    args = dict(BU, **change)
    result = run_module(xfrm_policy, args)
    assert len(spd.changing()) == 1 and spd.changing()[0].startswith(f"ip -6 xfrm policy update {BU_ID} ")
    assert result["operation"] == "updated" and result["differences"] == differences
    spd.commands.clear()
    assert run_module(xfrm_policy, args)["changed"] is False
    assert spd.changing() == []


def test_update_command_line(spd, run_module):
    spd.add(
        f"src {MN}/128 dst {HA}/128 proto 135 type 5",
        templates=[{"proto": "esp", "reqid": "1", "mode": "tunnel"}],
    )
    run_module(xfrm_policy, dict(BU, priority=7, templates=[{"reqid": 1, "level": "use", "spi": 4097}]))
    assert spd.changing() == [
        f"ip -6 xfrm policy update {BU_ID} action allow priority 7 "
        "tmpl proto esp spi 0x00001001 reqid 1 mode transport level use"
    ]


def test_omitted_priority_keeps_the_kernels(spd, run_module):
    spd.add(
        f"src {MN}/128 dst {HA}/128 proto 135 type 5",
        priority=30,
        templates=[{"proto": "esp", "reqid": "1", "mode": "transport"}],
    )
    result = run_module(xfrm_policy, BU)
    assert spd.changing() == []
    assert result["changed"] is False and result["policy"]["priority"] == 30
    run_module(xfrm_policy, dict(BU, templates=[{"reqid": 2}]))
    assert spd.changing() == [
        f"ip -6 xfrm policy update {BU_ID} action allow priority 30 "
        "tmpl proto esp reqid 2 mode transport level required"
    ]


def test_tunnel_templates_and_prefixes(spd, run_module):
    args = {
        "src": MN,
        "dst": "::/0",
        "dir": "out",
        "priority": 100,
        "templates": [
            {"src": COA, "dst": HA, "mode": "tunnel", "reqid": 2, "spi": "0x2001"},
            {"mode": "transport", "reqid": 3, "level": "use"},
        ],
    }
    result = run_module(xfrm_policy, args)
    assert spd.changing() == [
        f"ip -6 xfrm policy update src {MN}/128 dst ::/0 dir out ptype main action allow priority 100 "
        f"tmpl src {COA} dst {HA} proto esp spi 0x00002001 reqid 2 mode tunnel level required "
        "tmpl proto esp reqid 3 mode transport level use"
    ]
    assert [t["spi"] for t in result["policy"]["templates"]] == ["0x00002001", None]
    spd.commands.clear()
    assert run_module(xfrm_policy, args)["changed"] is False


def test_tcp_ports_and_block(spd, run_module):
    args = {
        "src": "fec0:106:2500::/64",
        "dst": MN,
        "proto": "tcp",
        "dport": 80,
        "dir": "fwd",
        "action": "block",
    }
    result = run_module(xfrm_policy, args)
    assert spd.changing() == [
        f"ip -6 xfrm policy update src fec0:106:2500::/64 dst {MN}/128 proto 6 dport 80 dir fwd ptype main "
        "action block priority 0"
    ]
    assert (result["policy"]["proto"], result["policy"]["dport"], result["policy"]["sport"]) == (6, 80, None)
    spd.commands.clear()
    assert run_module(xfrm_policy, args)["changed"] is False


def test_sub_policies_of_the_mip6_daemon_are_other_policies(spd, run_module):
    """Same selector and direction, ptype sub (the daemon's): ptype main is a separate policy."""
    spd.add(f"src {MN}/128 dst {HA}/128 proto 135 type 5", ptype="sub", priority=20)
    result = run_module(xfrm_policy, BU)
    assert spd.changing() == [BU_UPDATE]
    assert result["operation"] == "added"
    assert len(spd.policies) == 2
    run_module(xfrm_policy, dict(BU, state="absent"))
    assert [k[2] for k in spd.policies] == ["sub"]


def test_sub_policy(spd, run_module):
    args = dict(BU, ptype="sub", priority=20, templates=[])
    run_module(xfrm_policy, args)
    assert spd.changing() == [
        f"ip -6 xfrm policy update src {MN}/128 dst {HA}/128 proto 135 type 5 dir out ptype sub "
        "action allow priority 20"
    ]


# ---------------------------------------------------------------------------- absent


def test_absent(spd, run_module):
    run_module(xfrm_policy, BU)
    spd.commands.clear()
    result = run_module(xfrm_policy, dict(BU, state="absent"))
    assert spd.commands == [BU_GET, f"ip -6 xfrm policy delete {BU_ID}"]
    assert result["changed"] is True and result["operation"] == "deleted" and result["policy"] == {}
    assert spd.policies == {}
    spd.commands.clear()
    again = run_module(xfrm_policy, dict(BU, state="absent"))
    assert spd.commands == [BU_GET]
    assert again["changed"] is False


# ---------------------------------------------------------------------------- check mode, diff


def test_check_mode_changes_nothing(spd, run_module):
    result = run_module(xfrm_policy, BU, check=True)
    assert spd.changing() == [] and spd.policies == {}
    assert result["changed"] is True and result["operation"] == "added"
    spd.add(
        f"src {MN}/128 dst {HA}/128 proto 135 type 5",
        templates=[{"proto": "esp", "reqid": "9", "mode": "transport"}],
    )
    result = run_module(xfrm_policy, BU, check=True)
    assert spd.changing() == [] and result["operation"] == "updated"
    result = run_module(xfrm_policy, dict(BU, state="absent"), check=True)
    assert spd.changing() == [] and len(spd.policies) == 1 and result["operation"] == "deleted"


def test_diff(spd, run_module):
    spd.add(
        f"src {MN}/128 dst {HA}/128 proto 135 type 5",
        priority=3,
        templates=[{"proto": "esp", "reqid": "9", "mode": "transport"}],
    )
    result = run_module(xfrm_policy, BU, diff=True)
    before = {
        "src": f"{MN}/128",
        "dst": f"{HA}/128",
        "proto": 135,
        "mh_type": 5,
        "sport": None,
        "dport": None,
        "dir": "out",
        "ptype": "main",
        "action": "allow",
        "priority": 3,
        "templates": [
            {
                "src": "::",
                "dst": "::",
                "proto": "esp",
                "spi": None,
                "reqid": 9,
                "mode": "transport",
                "level": "required",
            }
        ],
    }
    after = dict(before, templates=[dict(before["templates"][0], reqid=1)])
    assert result["diff"] == {"before": before, "after": after}
    absent = run_module(xfrm_policy, dict(BU, state="absent"), diff=True)
    assert absent["diff"] == {"before": after, "after": {}}


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "change, msg",
    [
        (
            {"proto": "tcp", "mh_type": None, "sport": 70000},
            "sport: 70000 is not a port (expected 1 to 65535)",
        ),
        ({"sport": 500}, "sport: only with proto tcp or udp (proto is mobility-header)"),
        ({"proto": None, "mh_type": None, "dport": 80}, "dport: only with proto tcp or udp (no proto given)"),
        ({"proto": "udp"}, "mh_type: only with proto 135 (mobility-header) (proto is udp)"),
        ({"proto": None}, "mh_type: only with proto 135 (mobility-header) (no proto given)"),
        ({"mh_type": 256}, "mh_type: 256 is not a Mobility Header type (expected 0 to 255)"),
        (
            {"proto": "ipv7"},
            "proto: 'ipv7' is not a protocol "
            "(expected tcp, udp, ipv6-icmp, 135 (mobility-header) or a number 1-255)",
        ),
        (
            {"src": "fec0:106:1100::2/64"},
            "src: 'fec0:106:1100::2/64' is not an IPv6 prefix "
            "(expected e.g. fec0:106:1100::/64, or an address for /128)",
        ),
        (
            {"templates": [{"mode": "tunnel", "dst": HA}]},
            "templates[0].src: required with mode tunnel (the outer src address)",
        ),
        (
            {"templates": [{"reqid": 1}, {"mode": "tunnel", "src": COA}]},
            "templates[1].dst: required with mode tunnel (the outer dst address)",
        ),
        (
            {"templates": [{"src": "fec0::1/64"}]},
            "templates[0].src: 'fec0::1/64' is not an IPv6 address (expected e.g. fec0:106:2700::1)",
        ),
        (
            {"templates": [{"spi": 17}]},
            "templates[0].spi: 17 is not an SPI "
            "(expected an int or a hex string like 0x1001, 256 to 0xffffffff)",
        ),
        ({"templates": [{"reqid": -2}]}, "templates[0].reqid: -2 is out of range (expected 0 to 4294967295)"),
        ({"priority": -1}, "priority: -1 is out of range (expected 0 to 4294967295)"),
        ({"dir": "both"}, "value of dir must be one of: in, out, fwd, got: both"),
        ({"templates": [{"proto": "ah"}]}, "value of proto must be one of: esp, got: ah found in templates"),
    ],
)
def test_bad_input_fails_before_touching_the_kernel(spd, run_module, change, msg):
    args = {k: v for k, v in dict(BU, **change).items() if v is not None}
    result = run_module(xfrm_policy, args)
    assert result["failed"] is True
    assert result["msg"] == msg
    assert spd.commands == []


def test_ip_error_on_update_is_reported(spd, run_module):
    spd.fail["ip -6 xfrm policy update"] = (2, "", "RTNETLINK answers: Invalid argument\n")
    result = run_module(xfrm_policy, BU)
    assert result["failed"] is True
    assert result["msg"] == f"{BU_UPDATE} failed: RTNETLINK answers: Invalid argument"


def test_ip_error_on_get_other_than_missing_is_reported(spd, run_module):
    spd.fail[BU_GET] = (255, "", 'Object "xfrm" is unknown, try "ip help".\n')
    result = run_module(xfrm_policy, BU)
    assert result["failed"] is True
    assert result["msg"] == f'{BU_GET} failed: Object "xfrm" is unknown, try "ip help".'
    assert spd.changing() == []


# ---------------------------------------------------------------------------- the list form (policies)

LIST = "ip -6 xfrm policy list"
CN = "fec0:106:2500::2"
BA = dict(BU, src=HA, dst=MN, mh_type=6, dir="in")
BA_ID = f"src {HA}/128 dst {MN}/128 proto 135 type 6 dir in ptype main"
BA_UPDATE = (
    f"ip -6 xfrm policy update {BA_ID} action allow priority 0 "
    "tmpl proto esp reqid 1 mode transport level required"
)
TCP = {
    "src": f"{CN}/128",
    "dst": f"{MN}/128",
    "proto": "tcp",
    "dir": "out",
    "templates": [{"src": CN, "dst": MN, "mode": "transport", "reqid": 2}],
}
TCP_ID = f"src {CN}/128 dst {MN}/128 proto 6 dir out ptype main"
TCP_UPDATE = (
    f"ip -6 xfrm policy update {TCP_ID} action allow priority 0 "
    f"tmpl src {CN} dst {MN} proto esp reqid 2 mode transport level required"
)
TRIO = [BU, BA, TCP]


def absent(entry):
    return {k: v for k, v in entry.items() if k in ("src", "dst", "proto", "mh_type", "dir")} | {
        "state": "absent"
    }


def test_list_installs_every_policy_with_one_listing_and_one_batch(spd, run_module):
    result = run_module(xfrm_policy, {"policies": TRIO})
    assert spd.argv == [LIST, "ip -6 -batch -"]
    assert spd.batches == [[BU_UPDATE, BA_UPDATE, TCP_UPDATE]]
    assert result["changed"] is True
    assert [r["operation"] for r in result["results"]] == ["added"] * 3
    assert [r["differences"] for r in result["results"]] == [[]] * 3
    assert result["results"][1]["policy"] == dict(
        run_module(xfrm_policy, BA, check=True)["policy"]  # the single form's view of the same policy
    )
    assert result["results"][2]["policy"]["templates"][0]["src"] == CN
    assert len(spd.policies) == 3


def test_list_second_run_only_lists(spd, run_module):
    run_module(xfrm_policy, {"policies": TRIO})
    spd.argv.clear()
    spd.batches.clear()
    result = run_module(xfrm_policy, {"policies": TRIO})
    assert spd.argv == [LIST]
    assert result["changed"] is False
    assert [(r["operation"], r["differences"]) for r in result["results"]] == [("none", [])] * 3


def test_list_matches_the_kernels_spelling_and_ignores_other_policies(spd, run_module):
    """Protocol names, sub policies of the mip6 daemon and socket policies in the listing."""
    run_module(xfrm_policy, {"policies": TRIO})
    spd.add(f"src {MN}/128 dst {HA}/128 proto 135 type 5", ptype="sub", priority=20)
    spd.add(f"src {MN}/128 dst {HA}/128 proto 135 type 5", direction="in")
    spd.extra = "src ::/0 dst ::/0 \n\tsocket out priority 0 ptype main \n"
    spd.argv.clear()
    again = [dict(BU, proto="mobility-header", src=MN.upper()), dict(BA, proto="MH"), dict(TCP, proto=6)]
    result = run_module(xfrm_policy, {"policies": again})
    assert spd.argv == [LIST]
    assert result["changed"] is False
    assert len(spd.policies) == 5


def test_list_mixed_present_and_absent_in_entry_order(spd, run_module):
    run_module(xfrm_policy, {"policies": [BU, TCP]})
    spd.argv.clear()
    spd.batches.clear()
    policies = [absent(TCP), BU, absent(dict(BU, mh_type=7)), BA]
    result = run_module(xfrm_policy, {"policies": policies})
    assert spd.argv == [LIST, "ip -6 -batch -"]
    assert spd.batches == [[f"ip -6 xfrm policy delete {TCP_ID}", BA_UPDATE]]
    assert [r["operation"] for r in result["results"]] == ["deleted", "none", "none", "added"]
    assert result["results"][0]["policy"] == {} and result["results"][2]["policy"] == {}
    assert sorted(k[1] for k in spd.policies) == ["in", "out"]


def test_list_updates_on_a_template_change_and_keeps_an_omitted_priority(spd, run_module):
    spd.add(
        f"src {MN}/128 dst {HA}/128 proto 135 type 5",
        priority=30,
        templates=[{"proto": "esp", "reqid": "9", "mode": "transport"}],
    )
    result = run_module(xfrm_policy, {"policies": [BA, BU]})
    assert spd.batches == [
        [
            BA_UPDATE,
            f"ip -6 xfrm policy update {BU_ID} action allow priority 30 "
            "tmpl proto esp reqid 1 mode transport level required",
        ]
    ]
    assert [(r["operation"], r["differences"]) for r in result["results"]] == [
        ("added", []),
        ("updated", ["templates"]),
    ]
    assert result["results"][1]["policy"]["priority"] == 30


def test_list_check_mode_lists_and_changes_nothing(spd, run_module):
    spd.add(
        f"src {MN}/128 dst {HA}/128 proto 135 type 5",
        templates=[{"proto": "esp", "reqid": "9", "mode": "transport"}],
    )
    spd.add(f"src {CN}/128 dst {MN}/128 proto 6")
    result = run_module(xfrm_policy, {"policies": [BU, BA, absent(TCP)]}, check=True)
    assert spd.argv == [LIST]
    assert spd.batches == []
    assert result["changed"] is True
    assert [r["operation"] for r in result["results"]] == ["updated", "added", "deleted"]
    assert len(spd.policies) == 2


def test_list_of_nothing_asks_the_kernel_nothing(spd, run_module):
    result = run_module(xfrm_policy, {"policies": []})
    assert spd.argv == []
    assert result["changed"] is False and result["results"] == []


def test_list_diff(spd, run_module):
    spd.add(
        f"src {MN}/128 dst {HA}/128 proto 135 type 5",
        priority=3,
        templates=[{"proto": "esp", "reqid": "9", "mode": "transport"}],
    )
    result = run_module(xfrm_policy, {"policies": [BU, absent(BA)]}, check=True, diff=True)
    single = run_module(xfrm_policy, BU, check=True, diff=True)["diff"]
    assert result["diff"] == {
        "before": {"policies": [single["before"], {}]},
        "after": {"policies": [single["after"], {}]},
    }


@pytest.mark.parametrize(
    "change, msg",
    [
        (
            {"proto": "tcp", "mh_type": None, "sport": 70000},
            "policies[2].sport: 70000 is not a port (expected 1 to 65535)",
        ),
        ({"sport": 500}, "policies[2].sport: only with proto tcp or udp (proto is mobility-header)"),
        ({"proto": None}, "policies[2].mh_type: only with proto 135 (mobility-header) (no proto given)"),
        ({"mh_type": 256}, "policies[2].mh_type: 256 is not a Mobility Header type (expected 0 to 255)"),
        (
            {"proto": "ipv7"},
            "policies[2].proto: 'ipv7' is not a protocol "
            "(expected tcp, udp, ipv6-icmp, 135 (mobility-header) or a number 1-255)",
        ),
        (
            {"dst": "fec0:106:2700::1/64"},
            "policies[2].dst: 'fec0:106:2700::1/64' is not an IPv6 prefix "
            "(expected e.g. fec0:106:1100::/64, or an address for /128)",
        ),
        (
            {"templates": [{"reqid": 1}, {"mode": "tunnel", "src": COA}]},
            "policies[2].templates[1].dst: required with mode tunnel (the outer dst address)",
        ),
        (
            {"templates": [{"src": "fec0::1/64"}]},
            "policies[2].templates[0].src: 'fec0::1/64' is not an IPv6 address "
            "(expected e.g. fec0:106:2700::1)",
        ),
        (
            {"templates": [{"spi": 17}]},
            "policies[2].templates[0].spi: 17 is not an SPI "
            "(expected an int or a hex string like 0x1001, 256 to 0xffffffff)",
        ),
        (
            {"templates": [{"reqid": -2}]},
            "policies[2].templates[0].reqid: -2 is out of range (expected 0 to 4294967295)",
        ),
        ({"priority": -1}, "policies[2].priority: -1 is out of range (expected 0 to 4294967295)"),
        ({"src": None}, "policies[2].src: required"),
        ({"dst": None}, "policies[2].dst: required"),
        ({"dir": None}, "policies[2].dir: required"),
    ],
)
def test_list_bad_entry_fails_before_touching_the_kernel(spd, run_module, change, msg):
    bad = {k: v for k, v in dict(BU, **change).items() if v is not None}
    result = run_module(xfrm_policy, {"policies": [BA, TCP, bad]})
    assert result["failed"] is True
    assert result["msg"] == msg
    assert "\n" not in result["msg"]
    assert spd.argv == []


@pytest.mark.parametrize(
    "policies, msg",
    [
        (
            [BU, absent(BU)],
            f"policies[1]: the same policy as policies[0] ({BU_ID}); give each policy once "
            "(the kernel allows one policy per selector, direction and type)",
        ),
        (
            # other spellings of the selector, other templates: still the same policy
            [TCP, BU, dict(BU, src=MN.upper(), dst=HA + "/128", proto="mobility-header", templates=[])],
            f"policies[2]: the same policy as policies[1] ({BU_ID}); give each policy once "
            "(the kernel allows one policy per selector, direction and type)",
        ),
    ],
)
def test_list_duplicates(spd, run_module, policies, msg):
    result = run_module(xfrm_policy, {"policies": policies})
    assert result["failed"] is True and result["msg"] == msg
    assert spd.argv == []


def test_list_other_direction_or_type_is_another_policy(spd, run_module):
    result = run_module(
        xfrm_policy, {"policies": [BU, dict(BU, dir="in"), dict(BU, ptype="sub", priority=5)]}
    )
    assert [r["operation"] for r in result["results"]] == ["added"] * 3
    assert len(spd.batches[0]) == 3


@pytest.mark.parametrize(
    "args, msg",
    [
        # checked by Ansible, which names the option and the list but not the entry
        (
            {"policies": [BU, dict(BA, dir="both")]},
            "value of dir must be one of: in, out, fwd, got: both found in policies",
        ),
        (
            {"policies": [dict(BU, templates=[{"proto": "ah"}])]},
            "value of proto must be one of: esp, got: ah found in policies -> templates",
        ),
        ({"policies": TRIO, "dir": "out"}, "parameters are mutually exclusive: policies|dir"),
        ({"policies": TRIO, "templates": []}, "parameters are mutually exclusive: policies|templates"),
    ],
)
def test_list_ansible_checks_fail_before_touching_the_kernel(spd, run_module, args, msg):
    result = run_module(xfrm_policy, args)
    assert result["failed"] is True and result["msg"] == msg
    assert spd.argv == []


@pytest.mark.parametrize(
    "args, msg",
    [
        ({"src": MN}, "missing required arguments: dir, dst"),
        ({"dir": "in", "state": "absent"}, "missing required arguments: dst, src"),
        ({}, "missing required arguments: dir, dst, src"),
    ],
)
def test_single_form_still_needs_src_dst_and_dir(spd, run_module, args, msg):
    result = run_module(xfrm_policy, args)
    assert result["failed"] is True and result["msg"] == msg
    assert spd.argv == []


def test_list_ip_errors_are_reported(spd, run_module):
    spd.fail["ip -6 xfrm policy update " + BA_ID] = (2, "", "RTNETLINK answers: Invalid argument\n")
    result = run_module(xfrm_policy, {"policies": [BU, BA]})
    assert result["failed"] is True
    assert result["msg"] == f"{BU_UPDATE}; {BA_UPDATE} failed: RTNETLINK answers: Invalid argument"


def test_list_listing_error_is_reported(spd, run_module):
    spd.fail[LIST] = (255, "", 'Object "xfrm" is unknown, try "ip help".\n')
    result = run_module(xfrm_policy, {"policies": TRIO})
    assert result["failed"] is True
    assert result["msg"] == f'{LIST} failed: Object "xfrm" is unknown, try "ip help".'
    assert spd.batches == []
