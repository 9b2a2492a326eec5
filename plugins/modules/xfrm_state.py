#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: xfrm_state
short_description: Manually keyed IPv6 ESP security associations (xfrm states)
description:
  - Installs or removes one ESP SA, or with O(states) a list of them, in the kernel's SAD with iproute2
    (C(ip -6 xfrm state)), keyed by hand as in the lab's paper.
  - Reads the kernel's SA for O(dst), O(proto) and O(spi) first and compares mode, reqid, algorithm,
    keys and selector; a second run reports no change. Keys are compared in memory only.
  - The kernel cannot change the keys, algorithm, mode, reqid or selector of an SA, so a differing SA
    is replaced (C(delete) then C(add), in one C(ip -batch) run).
  - Key material is passed to C(ip) on its standard input, never on a command line, and is never
    returned, logged or shown in a diff.
  - The kernel identifies an ESP SA by destination, protocol and SPI only. An SA with the same
    O(dst) and O(spi) but another O(src) is an SPI clash and fails the task; with O(state=absent) it is
    left alone (with a warning).
  - Only ESP SAs are touched; the Mobile IPv6 C(hao) and C(route2) states of the mip6 daemon are left
    alone.
  - With O(states) every entry is checked first (a bad entry fails the task before the kernel is asked
    anything), the kernel's SAs are read with one C(ip -6 xfrm state list proto esp) and all changes are
    made in entry order in one C(ip -batch) run, so the kernel is left as it was when any entry fails.
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  src:
    description:
      - Source address of the SA (outer source in tunnel mode).
      - Required unless O(states) is given.
    type: str
  dst:
    description:
      - Destination address of the SA (outer destination in tunnel mode).
      - Required unless O(states) is given.
    type: str
  proto:
    description: Transform protocol.
    type: str
    choices: [esp]
    default: esp
  spi:
    description:
      - Security Parameter Index, an int or a string (decimal, or hex with C(0x), e.g. C("0x1001")).
      - 256 to 0xffffffff (0 to 255 are reserved).
      - Required unless O(states) is given.
    type: raw
  mode:
    description: Transport or tunnel mode.
    type: str
    choices: [transport, tunnel]
    default: transport
  reqid:
    description: Request id linking the SA to policy templates with the same reqid (0 for none).
    type: int
    default: 0
  replay_window:
    description:
      - Anti-replay window in packets (C(replay-window)), 0 to 32; the receiving kernel drops an ESP
        packet whose sequence number it has seen or that is older than the window.
      - V(0) turns anti-replay off. With manual keys the sender's counter restarts at 1 whenever
        its SA is added again, so an SA must be replaced on both ends together (the O(reqid),
        O(spi) or keys change, or both hosts run the module); otherwise the receiver drops the
        sender's packets until its own SA is replaced.
    type: int
    default: 32
  algorithm:
    description:
      - Cipher suite; required with O(state=present).
      - V(aes-cbc-hmac-sha1) is C(enc cbc(aes)) with O(enc_key) and C(auth-trunc hmac(sha1)) with O(auth_key),
        truncated to 96 bits (the paper's era).
      - V(aes-gcm) is C(aead rfc4106(gcm(aes))) with O(aead_key) and a 128-bit ICV.
    type: str
    choices: [aes-cbc-hmac-sha1, aes-gcm]
  enc_key:
    description:
      - AES key of V(aes-cbc-hmac-sha1) in hex (with or without C(0x)), 16, 24 or 32 bytes.
    type: str
  auth_key:
    description:
      - HMAC-SHA1 key of V(aes-cbc-hmac-sha1) in hex (with or without C(0x)), 20 bytes.
    type: str
  aead_key:
    description:
      - Key material of V(aes-gcm) in hex (with or without C(0x)), 20, 28 or 36 bytes; the AES key
        followed by the 4-byte salt.
    type: str
  selector:
    description:
      - Traffic selector the SA is restricted to. Without it the SA has the kernel's any-selector.
    type: dict
    suboptions:
      src:
        description: Source prefix (a plain address is a /128).
        type: str
        default: "::/0"
      dst:
        description: Destination prefix (a plain address is a /128).
        type: str
        default: "::/0"
      proto:
        description:
          - Upper-layer protocol, C(tcp), C(udp), C(ipv6-icmp), C(135) (C(mobility-header)) or a
            number 1-255; any when omitted.
        type: raw
  state:
    description: Whether the SA exists.
    type: str
    choices: [present, absent]
    default: present
  states:
    description:
      - SAs to manage in one run, each with the options of a single SA (O(src), O(dst), O(spi), ...).
      - Mutually exclusive with those options.
      - Errors name the entry, e.g. C(states[2].enc_key). Two entries with the same O(states[].dst),
        O(states[].proto) and O(states[].spi) are an error.
    type: list
    elements: dict
    suboptions:
      src:
        description:
          - Source address of the SA (outer source in tunnel mode).
          - Required.
        type: str
      dst:
        description:
          - Destination address of the SA (outer destination in tunnel mode).
          - Required.
        type: str
      proto:
        description: Transform protocol.
        type: str
        choices: [esp]
        default: esp
      spi:
        description:
          - Security Parameter Index, an int or a string (decimal, or hex with C(0x), e.g. C("0x1001")).
          - 256 to 0xffffffff (0 to 255 are reserved).
          - Required.
        type: raw
      mode:
        description: Transport or tunnel mode.
        type: str
        choices: [transport, tunnel]
        default: transport
      reqid:
        description: Request id linking the SA to policy templates with the same reqid (0 for none).
        type: int
        default: 0
      replay_window:
        description: Anti-replay window in packets, 0 (off) to 32; see O(replay_window).
        type: int
        default: 32
      algorithm:
        description:
          - Cipher suite; required with O(states[].state=present).
          - V(aes-cbc-hmac-sha1) is C(enc cbc(aes)) with O(states[].enc_key) and
            C(auth-trunc hmac(sha1)) with O(states[].auth_key), truncated to 96 bits (the paper's era).
          - V(aes-gcm) is C(aead rfc4106(gcm(aes))) with O(states[].aead_key) and a 128-bit ICV.
        type: str
        choices: [aes-cbc-hmac-sha1, aes-gcm]
      enc_key:
        description:
          - AES key of V(aes-cbc-hmac-sha1) in hex (with or without C(0x)), 16, 24 or 32 bytes.
        type: str
      auth_key:
        description:
          - HMAC-SHA1 key of V(aes-cbc-hmac-sha1) in hex (with or without C(0x)), 20 bytes.
        type: str
      aead_key:
        description:
          - Key material of V(aes-gcm) in hex (with or without C(0x)), 20, 28 or 36 bytes; the AES key
            followed by the 4-byte salt.
        type: str
      selector:
        description:
          - Traffic selector the SA is restricted to. Without it the SA has the kernel's any-selector.
        type: dict
        suboptions:
          src:
            description: Source prefix (a plain address is a /128).
            type: str
            default: "::/0"
          dst:
            description: Destination prefix (a plain address is a /128).
            type: str
            default: "::/0"
          proto:
            description:
              - Upper-layer protocol, C(tcp), C(udp), C(ipv6-icmp), C(135) (C(mobility-header)) or a
                number 1-255; any when omitted.
            type: raw
      state:
        description: Whether the SA exists.
        type: str
        choices: [present, absent]
        default: present
attributes:
  check_mode:
    support: full
    description: Reports what would change and changes nothing.
  diff_mode:
    support: full
    description:
      - Shows the SA's non-secret fields before and after; keys are shown as C(<hidden>).
      - With O(states), the lists of them under C(states), one item per entry.
notes:
  - Needs the kernel's C(esp6) support and iproute2 (tested with the output format of iproute2 6.1).
"""

EXAMPLES = r"""
- name: SA from the mobile node to the home agent (transport mode, Mobility Header only)
  mvpn.lab.xfrm_state:
    src: "fec0:106:1100::2"
    dst: "fec0:106:2700::1"
    spi: "0x1001"
    reqid: 1
    algorithm: aes-cbc-hmac-sha1
    enc_key: "{{ ipsec_keys.mn_ha.enc }}"
    auth_key: "{{ ipsec_keys.mn_ha.auth }}"
    selector:
      proto: 135

- name: Tunnel-mode SA with AES-GCM
  mvpn.lab.xfrm_state:
    src: "fec0:106:2700::1"
    dst: "fec0:106:1100::2"
    spi: 4098
    mode: tunnel
    reqid: 2
    algorithm: aes-gcm
    aead_key: "{{ ipsec_keys.ha_mn.aead }}"
    selector:
      src: "fec0:106:2500::/64"
      dst: "fec0:106:1100::2"

- name: Remove it
  mvpn.lab.xfrm_state:
    src: "fec0:106:2700::1"
    dst: "fec0:106:1100::2"
    spi: 4098
    state: absent

- name: Several SAs in one run (one listing of the kernel's SAs, one ip -batch for all changes)
  mvpn.lab.xfrm_state:
    states:
      - src: "fec0:106:2700::1"
        dst: "fec0:106:1100::2"
        spi: 4098
        state: absent
      - src: "fec0:106:1100::2"
        dst: "fec0:106:2700::1"
        spi: "0x1001"
        reqid: 1
        algorithm: aes-cbc-hmac-sha1
        enc_key: "{{ ipsec_keys.mn_ha.enc }}"
        auth_key: "{{ ipsec_keys.mn_ha.auth }}"
        selector:
          proto: 135
      - src: "fec0:106:2700::1"
        dst: "fec0:106:1100::2"
        spi: "0x1002"
        reqid: 1
        algorithm: aes-cbc-hmac-sha1
        enc_key: "{{ ipsec_keys.ha_mn.enc }}"
        auth_key: "{{ ipsec_keys.ha_mn.auth }}"
        selector:
          proto: 135
  no_log: true
"""

RETURN = r"""
operation:
  description: What was done (or would be, in check mode).
  returned: without O(states)
  type: str
  choices: [none, added, replaced, deleted]
  sample: added
differences:
  description:
    - Fields in which the kernel's SA differed (C(mode), C(reqid), C(replay_window), C(algorithm), C(keys),
      C(selector)).
  returned: without O(states)
  type: list
  elements: str
  sample: [keys]
spi:
  description: The SPI in hex.
  returned: without O(states)
  type: str
  sample: "0x00001001"
src:
  description: Source address, normalised.
  returned: without O(states)
  type: str
  sample: "fec0:106:1100::2"
dst:
  description: Destination address, normalised.
  returned: without O(states)
  type: str
  sample: "fec0:106:2700::1"
proto:
  description: Transform protocol.
  returned: without O(states)
  type: str
  sample: esp
mode:
  description: Mode of the SA (null when absent).
  returned: without O(states)
  type: str
  sample: transport
reqid:
  description: Request id of the SA (null when absent).
  returned: without O(states)
  type: int
  sample: 1
replay_window:
  description: Anti-replay window of the SA in packets (null when absent).
  returned: without O(states)
  type: int
  sample: 32
algorithm:
  description: Cipher suite of the SA (null when absent).
  returned: without O(states)
  type: str
  sample: aes-cbc-hmac-sha1
selector:
  description:
    - Selector of the SA, C(src), C(dst) and C(proto) (a name or number, null for any).
    - Null when absent.
  returned: without O(states)
  type: dict
  sample: {"src": "::/0", "dst": "::/0", "proto": "mobility-header"}
state:
  description: The state asked for.
  returned: without O(states)
  type: str
  sample: present
results:
  description:
    - With O(states), one item per entry, in the same order, with the fields the single form returns.
  returned: with O(states)
  type: list
  elements: dict
  contains:
    operation:
      description: What was done (or would be, in check mode).
      returned: always
      type: str
      choices: [none, added, replaced, deleted]
      sample: added
    differences:
      description:
        - Fields in which the kernel's SA differed (C(mode), C(reqid), C(replay_window), C(algorithm),
          C(keys), C(selector)).
      returned: always
      type: list
      elements: str
      sample: [keys]
    spi:
      description: The SPI in hex.
      returned: always
      type: str
      sample: "0x00001001"
    src:
      description: Source address, normalised.
      returned: always
      type: str
      sample: "fec0:106:1100::2"
    dst:
      description: Destination address, normalised.
      returned: always
      type: str
      sample: "fec0:106:2700::1"
    proto:
      description: Transform protocol.
      returned: always
      type: str
      sample: esp
    mode:
      description: Mode of the SA (null when absent).
      returned: always
      type: str
      sample: transport
    reqid:
      description: Request id of the SA (null when absent).
      returned: always
      type: int
      sample: 1
    replay_window:
      description: Anti-replay window of the SA in packets (null when absent).
      returned: always
      type: int
      sample: 32
    algorithm:
      description: Cipher suite of the SA (null when absent).
      returned: always
      type: str
      sample: aes-cbc-hmac-sha1
    selector:
      description:
        - Selector of the SA, C(src), C(dst) and C(proto) (a name or number, null for any).
        - Null when absent.
      returned: always
      type: dict
      sample: {"src": "::/0", "dst": "::/0", "proto": "mobility-header"}
    state:
      description: The state asked for.
      returned: always
      type: str
      sample: present
  sample:
    - operation: added
      differences: []
      state: present
      spi: "0x00001001"
      src: "fec0:106:1100::2"
      dst: "fec0:106:2700::1"
      proto: esp
      mode: transport
      reqid: 1
      algorithm: aes-cbc-hmac-sha1
      selector: {"src": "::/0", "dst": "::/0", "proto": "mobility-header"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mvpn.lab.plugins.module_utils.xfrm import (
    ANY,
    HIDDEN,
    KEY_OPTIONS,
    MAX_REPLAY_WINDOW,
    PROTO_EXPECTED,
    SUITES,
    any_selector,
    hex_key,
    ip_batch,
    ipv6_address,
    ipv6_prefix,
    key_lengths_text,
    parse_spi,
    parse_states,
    protocol,
    redact,
    spi_hex,
    state_add_args,
    state_differences,
    state_id_args,
    state_index,
    state_view,
    wanted_algos,
)

#: The options of one SA, which O(states) excludes.
SA_FIELDS = (
    "src",
    "dst",
    "proto",
    "spi",
    "mode",
    "reqid",
    "replay_window",
    "algorithm",
    "enc_key",
    "auth_key",
    "aead_key",
    "selector",
    "state",
)


def _sa_options():
    """The options of one SA: the module's own and, the same, those of each O(states) entry."""
    return dict(
        src=dict(type="str"),
        dst=dict(type="str"),
        proto=dict(type="str", choices=["esp"], default="esp"),
        spi=dict(type="raw"),
        mode=dict(type="str", choices=["transport", "tunnel"], default="transport"),
        reqid=dict(type="int", default=0),
        replay_window=dict(type="int", default=32),
        algorithm=dict(type="str", choices=sorted(SUITES)),
        enc_key=dict(type="str", no_log=True),
        auth_key=dict(type="str", no_log=True),
        aead_key=dict(type="str", no_log=True),
        selector=dict(
            type="dict",
            options=dict(
                src=dict(type="str", default=ANY),
                dst=dict(type="str", default=ANY),
                proto=dict(type="raw"),
            ),
        ),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )


def _fail(module, msg):
    module.fail_json(msg=msg)


def _keys(module, p, at):
    """The suite's keys as lowercase hex; fails on a missing, foreign, non-hex or wrong-length key."""
    suite = p["algorithm"]
    spec = SUITES[suite]["keys"]
    for option in KEY_OPTIONS:
        if option not in spec and p[option] is not None:
            _fail(
                module,
                "%s%s: not used with algorithm %s (it takes %s)"
                % (at, option, suite, " and ".join(sorted(spec))),
            )
    keys = {}
    for option in sorted(spec):
        lengths = spec[option]
        if p[option] is None:
            _fail(
                module,
                "%s%s: required with algorithm %s (%s)" % (at, option, suite, key_lengths_text(lengths)),
            )
        try:
            key = hex_key(p[option])
        except ValueError:
            _fail(
                module,
                "%s%s: not a hex string (expected %s, optionally prefixed with 0x)"
                % (at, option, key_lengths_text(lengths)),
            )
        if len(key) // 2 not in lengths:
            _fail(
                module,
                "%s%s: %d bytes given; algorithm %s takes %s"
                % (at, option, len(key) // 2, suite, key_lengths_text(lengths)),
            )
        # from here on the normalised key is masked in anything the module prints, like the raw value
        module.no_log_values.add(key)
        keys[option] = key
    return keys


def _selector(module, value, at):
    sel = any_selector()
    for field in ("src", "dst"):
        text = value.get(field) or ANY
        try:
            sel[field] = ipv6_prefix(text)
        except ValueError:
            _fail(
                module,
                "%sselector.%s: %r is not an IPv6 prefix (expected e.g. fec0:106:1100::/64, "
                "or an address for /128)" % (at, field, text),
            )
    if value.get("proto") not in (None, ""):
        try:
            sel["proto"] = protocol(value["proto"])
        except ValueError:
            _fail(
                module,
                "%sselector.proto: %r is not a protocol (expected %s)" % (at, value["proto"], PROTO_EXPECTED),
            )
    return sel


def _wanted(module, p, at=""):
    """One SA's options checked and normalised (``at`` prefixes the messages, e.g. ``states[2].``):
    the wanted SA (with keys when present) and its keys as a list, for redacting ip's messages."""
    want = {"proto": p["proto"], "mode": p["mode"], "reqid": p["reqid"], "present": p["state"] == "present"}
    for field in ("src", "dst"):
        try:
            want[field] = ipv6_address(p[field])
        except ValueError:
            _fail(
                module,
                "%s%s: %r is not an IPv6 address (expected e.g. fec0:106:2700::1)" % (at, field, p[field]),
            )
    try:
        want["spi"] = parse_spi(p["spi"])
    except ValueError:
        _fail(
            module,
            "%sspi: %r is not an SPI (expected an int or a hex string like 0x1001, 256 to 0xffffffff)"
            % (at, p["spi"]),
        )
    if not 0 <= p["reqid"] <= 0xFFFFFFFF:
        _fail(module, "%sreqid: %d is out of range (expected 0 to 4294967295)" % (at, p["reqid"]))
    if not 0 <= p["replay_window"] <= MAX_REPLAY_WINDOW:
        _fail(
            module,
            "%sreplay_window: %d is out of range (expected 0, off, to %d packets)"
            % (at, p["replay_window"], MAX_REPLAY_WINDOW),
        )
    secrets = []
    if want["present"]:
        keys = _keys(module, p, at)
        secrets = sorted(keys.values())
        want["replay_window"] = p["replay_window"]
        want["algorithm"] = p["algorithm"]
        want["algos"] = wanted_algos(p["algorithm"], keys)
        want["selector_given"] = p["selector"] is not None
        want["sel"] = _selector(module, p["selector"], at) if p["selector"] is not None else any_selector()
    return want, secrets


def _listing_args(protos):
    """``ip`` arguments listing the SAs of ``protos`` (all SAs of the family when several)."""
    args = ["-6", "xfrm", "state", "list"]
    if len(protos) == 1:
        args += ["proto", protos[0]]
    return args


def _list(module, args, secrets):
    rc, out, err = module.run_command(["ip"] + args)
    if rc != 0:
        error = " ".join((err or out).split())
        _fail(module, redact("ip %s failed: %s" % (" ".join(args), error), secrets))
    return parse_states(out)


def _have(module, want, index, at=""):
    """The kernel's SA for ``want`` from ``index`` (see state_index); fails on an SPI clash of a
    present SA, warns and returns None for one of an absent SA."""
    have = index.get((want["dst"], want["proto"], want["spi"]))
    if have is None or have["src"] == want["src"]:
        return have
    if want["present"]:
        _fail(
            module,
            "%sspi: %s towards %s (proto %s) is already used by the SA from %s; the kernel allows one SA "
            "per destination, protocol and SPI"
            % (at, spi_hex(want["spi"]), want["dst"], want["proto"], have["src"]),
        )
    module.warn(
        "%sspi %s towards %s is used by the SA from %s, which is not the one to remove; left alone"
        % ("%s: " % at[:-1] if at else "", spi_hex(want["spi"]), want["dst"], have["src"])
    )
    return None


def _plan(want, have):
    """(operation, differences, ip batch lines) that make the kernel's ``have`` into ``want``."""
    ident = state_id_args(want["src"], want["dst"], want["proto"], want["spi"])
    if not want["present"]:
        if have is None:
            return "none", [], []
        return "deleted", [], [["xfrm", "state", "delete"] + ident]
    if have is None:
        return "added", [], [state_add_args(want)]
    differences = state_differences(have, want)
    if not differences:
        return "none", [], []
    return "replaced", differences, [["xfrm", "state", "delete"] + ident, state_add_args(want)]


def _outcome(want, have, operation, differences):
    """One SA's result fields and its diff (before, after); no key in either."""
    after = want if want["present"] else None
    shown = state_view(after)
    result = dict(
        operation=operation,
        differences=differences,
        state="present" if want["present"] else "absent",
        spi=spi_hex(want["spi"]),
        src=want["src"],
        dst=want["dst"],
        proto=want["proto"],
        mode=shown.get("mode"),
        reqid=shown.get("reqid"),
        replay_window=shown.get("replay_window"),
        algorithm=shown.get("algorithm"),
        selector=shown.get("selector"),
    )
    before_view = state_view(have)
    after_view = state_view(after, keys=HIDDEN + " (changed)" if "keys" in differences else HIDDEN)
    return result, before_view, after_view


def _missing(p, at=""):
    """The message for missing required options of one SA, or None (an option set to null is missing)."""
    missing = [field for field in ("src", "dst", "spi") if p[field] is None]
    if missing:
        if at:
            return "%s%s: required" % (at, missing[0])
        return "missing required arguments: %s" % ", ".join(sorted(missing))
    if p["state"] == "present" and p["algorithm"] is None:
        if at:
            return "%salgorithm: required with state present" % at
        return "state is present but all of the following are missing: algorithm"
    return None


def main_one(module):
    """The single-SA form: reads the kernel's SA by its (dst, proto, spi) only."""
    p = module.params
    msg = _missing(p)
    if msg:
        _fail(module, msg)

    # ---- check everything before asking the kernel anything
    want, secrets = _wanted(module, p)

    # ---- the kernel's SA with this (dst, proto, spi), whatever its src
    listing = ["-6", "xfrm", "state", "list", "dst", want["dst"], "proto", want["proto"]]
    listing += ["spi", spi_hex(want["spi"])]
    have = _have(module, want, state_index(_list(module, listing, secrets)))

    # ---- what to do
    operation, differences, lines = _plan(want, have)
    if lines and not module.check_mode:
        ip_batch(module, lines, secrets)

    result, before_view, after_view = _outcome(want, have, operation, differences)
    result["changed"] = operation != "none"
    if module._diff:
        result["diff"] = dict(before=before_view, after=after_view)
    module.exit_json(**result)


def main_list(module):
    """The O(states) form: every entry checked first, one listing, one batch for all changes."""
    entries = module.params["states"]

    # ---- check every entry before asking the kernel anything
    wants = []
    secrets = []
    seen = {}
    for index, p in enumerate(entries):
        at = "states[%d]." % index
        msg = _missing(p, at)
        if msg:
            _fail(module, msg)
        want, keys = _wanted(module, p, at)
        ident = (want["dst"], want["proto"], want["spi"])
        if ident in seen:
            _fail(
                module,
                "%sspi: %s towards %s (proto %s) is the SA of states[%d] too; give each SA once (the kernel "
                "allows one SA per destination, protocol and SPI)"
                % (at, spi_hex(want["spi"]), want["dst"], want["proto"], seen[ident]),
            )
        seen[ident] = index
        wants.append(want)
        secrets += keys
    if not wants:
        module.exit_json(changed=False, results=[])

    # ---- one listing for all of them, then what to do, in entry order; a clash fails here, before
    # the one batch that makes all the changes
    kernel = state_index(_list(module, _listing_args(sorted(set(w["proto"] for w in wants))), secrets))
    results = []
    lines = []
    before = []
    after = []
    for index, want in enumerate(wants):
        have = _have(module, want, kernel, "states[%d]." % index)
        operation, differences, more = _plan(want, have)
        lines += more
        result, before_view, after_view = _outcome(want, have, operation, differences)
        results.append(result)
        before.append(before_view)
        after.append(after_view)
    if lines and not module.check_mode:
        ip_batch(module, lines, secrets)

    result = dict(changed=any(r["operation"] != "none" for r in results), results=results)
    if module._diff:
        result["diff"] = dict(before=dict(states=before), after=dict(states=after))
    module.exit_json(**result)


def main():
    argument_spec = _sa_options()
    argument_spec["states"] = dict(type="list", elements="dict", options=_sa_options())
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("states", field) for field in SA_FIELDS],
        supports_check_mode=True,
    )
    if module.params["states"] is None:
        main_one(module)
    else:
        main_list(module)


if __name__ == "__main__":
    main()
