# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared code of the xfrm_state and xfrm_policy modules: input checks, parsers for the text
``ip xfrm state`` and ``ip xfrm policy`` print (iproute2 6.1, no ``-s``), comparisons and command
lines.

Parsers return plain dicts. Keys read from the kernel stay in those dicts (lowercase hex without
``0x``) so the modules can compare them; :func:`state_view` is the only thing that leaves a module,
and it has none.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re
import socket

from ansible_collections.mvpn.lab.plugins.module_utils import suites
from ansible_collections.mvpn.lab.plugins.module_utils.ipbatch import run_batch

HIDDEN = "<hidden>"
#: the kernel's anti-replay bitmap without ESN holds 32 sequence numbers (xfrm_replay_state)
MAX_REPLAY_WINDOW = 32
ANY = "::/0"

#: The two cipher suites of the lab, as iproute2 algorithms, and their key lengths: the one
#: table in module_utils/suites.py (shared with the lab model and ``mvpn-lab keys``).
SUITES = suites.ALGORITHMS
KEY_OPTIONS = suites.KEY_OPTIONS
ALGO_TYPES = ("auth", "auth-trunc", "aead", "enc", "comp")

#: Upper-layer protocols by the names iproute2 prints (from /etc/protocols) and a few aliases.
PROTOCOLS = {
    "icmp": 1,
    "tcp": 6,
    "udp": 17,
    "dccp": 33,
    "ipv6": 41,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "ipv6-icmp": 58,
    "icmpv6": 58,
    "ospf": 89,
    "sctp": 132,
    "mobility-header": 135,
    "ipv6-mh": 135,
    "mh": 135,
}
PROTOCOL_NAMES = {6: "tcp", 17: "udp", 58: "ipv6-icmp", 135: "mobility-header"}
PORT_PROTOCOLS = (6, 17)
MH = 135
PROTO_EXPECTED = "tcp, udp, ipv6-icmp, 135 (mobility-header) or a number 1-255"


# ---------------------------------------------------------------------------- input checks


def ipv6_address(value):
    """``value`` as a compressed IPv6 address; ValueError if it is not one."""
    return str(ipaddress.IPv6Address("%s" % (value,)))


def ipv6_prefix(value):
    """``value`` as ``addr/len`` (a plain address is a /128); ValueError if host bits are set."""
    text = "%s" % (value,)
    if "/" not in text:
        text += "/128"
    return str(ipaddress.IPv6Network(text))


def protocol(value):
    """An upper-layer protocol given by name or number, as its number (1-255); ValueError if not."""
    text = ("%s" % (value,)).strip().lower()
    if text.isdigit():
        number = int(text)
        if 1 <= number <= 255:
            return number
        raise ValueError(text)
    if text in PROTOCOLS:
        return PROTOCOLS[text]
    raise ValueError(text)


def protocol_name(number):
    return PROTOCOL_NAMES.get(number, "%s" % number) if number else None


def parse_spi(value):
    """An SPI given as an int or a decimal or ``0x`` hex string; ValueError outside 256..0xffffffff."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        spi = value
    else:
        text = ("%s" % (value,)).strip().lower()
        spi = int(text, 16) if text.startswith("0x") else int(text, 10)
    if not 256 <= spi <= 0xFFFFFFFF:
        raise ValueError(value)
    return spi


def spi_hex(spi):
    return "0x%08x" % spi if spi else None


def hex_key(value):
    """Key material as lowercase hex without ``0x``; ValueError (without the value) if not hex."""
    text = ("%s" % (value,)).strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    if not text or len(text) % 2 or not re.match(r"^[0-9a-f]+$", text):
        raise ValueError("not an even number of hex digits")
    return text


def key_lengths_text(lengths):
    """(16, 24, 32) -> '16, 24 or 32 bytes (32, 48 or 64 hex digits)'."""

    def join(items):
        items = ["%d" % i for i in items]
        return items[0] if len(items) == 1 else "%s or %s" % (", ".join(items[:-1]), items[-1])

    return "%s bytes (%s hex digits)" % (join(lengths), join([2 * n for n in lengths]))


def wanted_algos(suite, keys):
    """The algorithms of ``suite`` with ``keys`` ({option: hex}), shaped like :func:`parse_states`'."""
    algos = {}
    for kind, name, option, bits in SUITES[suite]["algos"]:
        algos[kind] = {"name": name, "key": keys[option], "bits": bits}
    return algos


def suite_of(algos):
    """The suite name the (parsed) algorithms are, ignoring keys; None for anything else."""
    for suite, spec in SUITES.items():
        shape = dict((kind, (name, bits)) for kind, name, _option, bits in spec["algos"])
        if dict((k, (v["name"], v.get("bits"))) for k, v in algos.items()) == shape:
            return suite
    return None


def describe_algos(algos):
    """Algorithms without keys: the suite name, or e.g. ``enc cbc(des3_ede), auth-trunc hmac(md5) 96``."""
    suite = suite_of(algos)
    if suite or not algos:
        return suite
    parts = []
    for kind in ALGO_TYPES:
        if kind in algos:
            bits = algos[kind].get("bits")
            parts.append("%s %s%s" % (kind, algos[kind]["name"], "" if bits is None else " %d" % bits))
    return ", ".join(parts)


# ---------------------------------------------------------------------------- selectors


def any_selector():
    return {
        "src": ANY,
        "dst": ANY,
        "proto": 0,
        "sport": 0,
        "dport": 0,
        "type": None,
        "code": None,
        "dev": None,
    }


def _prefix_from_output(text):
    net = ipaddress.ip_network("%s" % text, strict=False)
    if net.prefixlen == 0:
        return ANY  # a zero selector may carry either family
    return str(net)


def _parse_selector(tokens):
    """Selector tokens as xfrm_selector_print() writes them: ``src P dst P [proto X] [sport N]...``."""
    sel = any_selector()
    i = 0
    while i + 1 < len(tokens):
        word, value = tokens[i], tokens[i + 1]
        if word in ("src", "dst"):
            sel[word] = _prefix_from_output(value)
        elif word == "proto":
            try:
                sel["proto"] = protocol(value)
            except ValueError:
                sel["proto"] = _protocol_by_name(value)
        elif word in ("sport", "dport", "type", "code"):
            sel[word] = int(value)
        elif word == "dev":
            sel["dev"] = value
        elif word == "key":  # GRE key
            sel["key"] = value
        else:
            i += 1
            continue
        i += 2
    return sel


def _protocol_by_name(name):
    try:
        return socket.getprotobyname(name)
    except (OSError, socket.error):
        return name


def selector_args(sel):
    """``src P dst P [proto N [sport N] [dport N] [type N]]`` for a normalised selector."""
    args = ["src", sel["src"], "dst", sel["dst"]]
    if sel.get("proto"):
        args += ["proto", "%d" % sel["proto"]]
        for word in ("sport", "dport"):
            if sel.get(word):
                args += [word, "%d" % sel[word]]
        if sel.get("type") is not None:
            args += ["type", "%d" % sel["type"]]
    return args


def selector_key(sel):
    """What identifies a selector (its non-default fields compare; addresses are normalised)."""
    return (
        sel.get("src", ANY),
        sel.get("dst", ANY),
        sel.get("proto") or 0,
        sel.get("sport") or 0,
        sel.get("dport") or 0,
        sel.get("type"),
        sel.get("code"),
        sel.get("dev"),
    )


def selector_view(sel):
    view = {"src": sel["src"], "dst": sel["dst"], "proto": protocol_name(sel.get("proto"))}
    for word in ("sport", "dport"):
        if sel.get(word):
            view[word] = sel[word]
    if sel.get("type") is not None:
        view["type"] = sel["type"]
    return view


# ---------------------------------------------------------------------------- parsers


def _entries(text):
    """Split ip's listing into entries: a line at column 0 starts one, indented lines continue it."""
    entries = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            entries.append([line])
        elif entries:
            entries[-1].append(line)
    return entries


def _head(line):
    tokens = line.split()
    while tokens and tokens[0] in ("Deleted", "Updated", "Expired", "Polexpire"):
        tokens = tokens[1:]  # ip xfrm monitor prefixes
    return tokens


def _id_info(state, tokens):
    """``proto esp spi 0x00001001 reqid 1 mode transport`` (xfrm_id_info_print)."""
    for i in range(0, len(tokens) - 1):
        word, value = tokens[i], tokens[i + 1]
        if word == "proto" and state.get("proto") is None:
            state["proto"] = value
        elif word == "spi":
            state["spi"] = int(value.split("(")[0], 16)
        elif word == "reqid":
            state["reqid"] = int(value.split("(")[0])
        elif word == "mode":
            state["mode"] = value


def _algo(tokens):
    """``enc NAME 0xKEY`` / ``auth-trunc NAME 0xKEY BITS`` / ``aead NAME 0xKEY BITS`` / ``comp NAME``."""
    algo = {"name": tokens[1] if len(tokens) > 1 else None, "key": None, "bits": None}
    rest = tokens[2:]
    if rest and rest[0].startswith("0x"):
        algo["key"] = rest[0][2:].lower()
    if tokens[0] in ("auth-trunc", "aead") and rest and rest[-1].isdigit():
        algo["bits"] = int(rest[-1])
    return algo


def parse_states(text):
    """SAs printed by ``ip xfrm state list|get``: a list of dicts with ``src``, ``dst``, ``proto``
    (esp, ah, comp, route2, hao, ...), ``spi`` (int, None when not printed), ``reqid``, ``mode``,
    ``replay_window``, ``flags``, ``algos`` ({type: {name, key, bits}}), ``sel`` and ``coa``."""
    states = []
    for lines in _entries(text):
        head = _head(lines[0])
        if len(head) < 4 or head[0] != "src" or head[2] != "dst":
            continue
        state = {
            "src": ipv6_or_text(head[1]),
            "dst": ipv6_or_text(head[3]),
            "proto": None,
            "spi": None,
            "reqid": 0,
            "mode": None,
            "replay_window": 0,
            "flags": [],
            "algos": {},
            "sel": any_selector(),
            "coa": None,
        }
        for line in lines[1:]:
            tokens = line.split()
            if not tokens:
                continue
            word = tokens[0]
            if word == "proto" and state["proto"] is None:
                _id_info(state, tokens)
            elif word == "replay-window" and len(tokens) > 1:
                state["replay_window"] = int(tokens[1])
                if "flag" in tokens:
                    state["flags"] = tokens[tokens.index("flag") + 1 :]
            elif word in ALGO_TYPES:
                state["algos"][word] = _algo(tokens)
            elif word == "sel":
                state["sel"] = _parse_selector(tokens[1:])
            elif word == "coa" and len(tokens) > 1:
                state["coa"] = ipv6_or_text(tokens[1])
            # anything else (anti-replay context, lastused, mark, if_id, encap, offload, ...) is not ours
        states.append(state)
    return states


def parse_policies(text):
    """SPs printed by ``ip xfrm policy list|get``: a list of dicts with ``sel``, ``dir`` (None for a
    socket policy), ``action``, ``priority``, ``ptype`` and ``templates`` (each with ``src``, ``dst``,
    ``proto``, ``spi`` (0 when not printed), ``reqid``, ``mode`` and ``level``)."""
    policies = []
    for lines in _entries(text):
        head = _head(lines[0])
        if len(head) < 4 or head[0] != "src" or head[2] != "dst":
            continue
        policy = {
            "sel": _parse_selector(head),
            "dir": None,
            "socket": False,
            "action": "allow",
            "priority": 0,
            "ptype": "main",
            "templates": [],
        }
        tmpl = None
        for line in lines[1:]:
            tokens = line.split()
            if not tokens:
                continue
            word = tokens[0]
            if word in ("dir", "socket") and len(tokens) > 1 and policy["dir"] is None and tmpl is None:
                policy["socket"] = word == "socket"
                policy["dir"] = tokens[1]
                for i in range(2, len(tokens) - 1):
                    if tokens[i] == "action":
                        policy["action"] = tokens[i + 1]
                    elif tokens[i] == "priority":
                        policy["priority"] = int(tokens[i + 1])
                    elif tokens[i] == "ptype":
                        policy["ptype"] = tokens[i + 1]
            elif word == "tmpl":
                tmpl = {
                    "src": "::",
                    "dst": "::",
                    "proto": None,
                    "spi": 0,
                    "reqid": 0,
                    "mode": None,
                    "level": "required",
                }
                for i in range(1, len(tokens) - 1):
                    if tokens[i] in ("src", "dst"):
                        tmpl[tokens[i]] = ipv6_or_text(tokens[i + 1])
                policy["templates"].append(tmpl)
            elif word == "proto" and tmpl is not None and tmpl["proto"] is None:
                _id_info(tmpl, tokens)
                tmpl["spi"] = tmpl["spi"] or 0
            elif word == "level" and tmpl is not None and len(tokens) > 1:
                tmpl["level"] = {"0": "required", "1": "use"}.get(tokens[1], tokens[1])
            # mark, if_id, security context, lifetimes, masks: not ours
        policies.append(policy)
    return policies


def ipv6_or_text(value):
    try:
        return ipv6_address(value)
    except ValueError:
        return value


# ---------------------------------------------------------------------------- states


def state_id_args(src, dst, proto, spi):
    return ["src", src, "dst", dst, "proto", proto, "spi", spi_hex(spi)]


def algo_args(algos):
    args = []
    for kind in ("auth-trunc", "enc", "aead"):
        if kind in algos:
            algo = algos[kind]
            args += [kind, algo["name"], "0x" + algo["key"]]
            if algo.get("bits") is not None:
                args.append("%d" % algo["bits"])
    return args


def state_add_args(want):
    """``xfrm state add ...`` for a wanted SA (with keys: never show these words to anyone)."""
    args = ["xfrm", "state", "add"] + state_id_args(want["src"], want["dst"], want["proto"], want["spi"])
    args += ["reqid", "%d" % want["reqid"], "mode", want["mode"]]
    if want.get("replay_window"):
        args += ["replay-window", "%d" % want["replay_window"]]
    args += algo_args(want["algos"])
    if want.get("selector_given"):
        args += ["sel"] + selector_args(want["sel"])
    return args


def state_index(states):
    """Parsed SAs by what the kernel identifies them by, (dst, proto, spi); the first of a kind wins."""
    index = {}
    for state in states:
        index.setdefault((state["dst"], state["proto"], state["spi"]), state)
    return index


def state_differences(have, want):
    """Names of the managed fields in which the kernel's SA differs from the wanted one."""
    diffs = []
    for field in ("mode", "reqid"):
        if have.get(field) != want[field]:
            diffs.append(field)
    if have.get("replay_window", 0) != want.get("replay_window", 0):
        diffs.append("replay_window")
    if suite_of(have["algos"]) != want["algorithm"]:
        diffs.append("algorithm")
    elif have["algos"] != want["algos"]:
        diffs.append("keys")
    if selector_key(have["sel"]) != selector_key(want["sel"]):
        diffs.append("selector")
    return diffs


def state_view(state, keys=HIDDEN):
    """The non-secret fields of a parsed or wanted SA, for diffs and results."""
    if not state:
        return {}
    return {
        "src": state["src"],
        "dst": state["dst"],
        "proto": state["proto"],
        "spi": spi_hex(state["spi"]),
        "mode": state["mode"],
        "reqid": state["reqid"],
        "replay_window": state.get("replay_window", 0),
        "algorithm": describe_algos(state["algos"]),
        "selector": selector_view(state["sel"]),
        "keys": keys,
    }


# ---------------------------------------------------------------------------- policies


def template_key(tmpl):
    return (
        tmpl.get("src") or "::",
        tmpl.get("dst") or "::",
        tmpl.get("proto"),
        tmpl.get("spi") or 0,
        tmpl.get("reqid") or 0,
        tmpl.get("mode"),
        tmpl.get("level") or "required",
    )


def template_args(tmpl):
    args = ["tmpl"]
    if tmpl.get("src") not in (None, "::") or tmpl.get("dst") not in (None, "::"):
        args += ["src", tmpl.get("src") or "::", "dst", tmpl.get("dst") or "::"]
    args += ["proto", tmpl["proto"]]
    if tmpl.get("spi"):
        args += ["spi", spi_hex(tmpl["spi"])]
    args += ["reqid", "%d" % (tmpl.get("reqid") or 0), "mode", tmpl["mode"], "level", tmpl["level"]]
    return args


def template_view(tmpl):
    return {
        "src": tmpl.get("src") or "::",
        "dst": tmpl.get("dst") or "::",
        "proto": tmpl.get("proto"),
        "spi": spi_hex(tmpl.get("spi")),
        "reqid": tmpl.get("reqid") or 0,
        "mode": tmpl.get("mode"),
        "level": tmpl.get("level") or "required",
    }


def policy_differences(have, want):
    diffs = []
    if have["action"] != want["action"]:
        diffs.append("action")
    if want["priority"] is not None and have["priority"] != want["priority"]:
        diffs.append("priority")
    if [template_key(t) for t in have["templates"]] != [template_key(t) for t in want["templates"]]:
        diffs.append("templates")
    return diffs


def policy_id(sel, direction, ptype):
    """What identifies a policy in the kernel's SPD: its selector, direction and type."""
    return (selector_key(sel), direction, ptype)


def policy_index(policies):
    """Parsed policies by :func:`policy_id`; socket policies are left out, the first of a kind wins."""
    index = {}
    for policy in policies:
        if not policy["socket"]:
            index.setdefault(policy_id(policy["sel"], policy["dir"], policy["ptype"]), policy)
    return index


def policy_view(policy):
    if not policy:
        return {}
    sel = policy["sel"]
    return {
        "src": sel["src"],
        "dst": sel["dst"],
        "proto": sel.get("proto") or None,
        "mh_type": sel.get("type") if sel.get("proto") == MH else None,
        "sport": sel.get("sport") or None,
        "dport": sel.get("dport") or None,
        "dir": policy["dir"],
        "ptype": policy["ptype"],
        "action": policy["action"],
        "priority": policy["priority"],
        "templates": [template_view(t) for t in policy["templates"]],
    }


# ---------------------------------------------------------------------------- running ip


def redact(text, secrets):
    """``text`` with every secret (hex, with or without ``0x``, any case) replaced by <hidden>."""
    for secret in secrets:
        if secret:
            text = re.sub(r"(?i)(0x)?" + re.escape(secret), HIDDEN, text)
    return text


def ip_batch(module, lines, secrets=()):
    """Run ``ip -6 -batch -`` with ``lines`` (lists of words) on stdin, so key material never shows
    in a process list; on error fail with the lines and ip's message, secrets redacted."""
    rc, out, err = run_batch(module.run_command, lines)
    if rc != 0:
        shown = "; ".join("ip -6 " + " ".join(words) for words in lines)
        module.fail_json(msg=redact("%s failed: %s" % (shown, " ".join((err or out or "").split())), secrets))
    return out


# ---------------------------------------------------------------------------- Mobile IPv6 (mode ro)
# Command lines of the Mobile IPv6 daemon (mvpn_lab.mip6, which carries this file in its bundle):
# Home Address option and type 2 routing header states (``proto hao|route2 mode ro``) and the
# ``ptype sub`` policies that use them. Addresses and prefixes are given as text.


def ro_template_args(proto, src=None, dst=None):
    """One ``tmpl`` of a sub policy: a Mobile IPv6 transformation in ``mode ro``, ``level use``."""
    args = ["tmpl"]
    if src is not None and dst is not None:
        args += ["src", "%s" % src, "dst", "%s" % dst]
    return args + ["proto", proto, "mode", "ro", "level", "use"]


def sub_policy_args(op, selector, priority=None, templates=()):
    """``ip -6 xfrm policy OP SELECTOR ptype sub [priority N TEMPLATES]`` (``update`` or ``delete``)."""
    argv = ["ip", "-6", "xfrm", "policy", op] + list(selector) + ["ptype", "sub"]
    if op != "delete":
        argv += ["priority", "%d" % priority]
        for tmpl in templates:
            argv += list(tmpl)
    return argv


def ro_state_args(op, src, dst, proto, coa=None, wildrecv=False):
    """``ip -6 xfrm state OP src S dst D proto hao|route2 [mode ro coa C [flag wildrecv]]``."""
    argv = ["ip", "-6", "xfrm", "state", op, "src", "%s" % src, "dst", "%s" % dst, "proto", proto]
    if op in ("add", "update"):
        argv += ["mode", "ro", "coa", "%s" % (coa if coa is not None else "::")]
        if wildrecv:
            argv += ["flag", "wildrecv"]
    return argv
