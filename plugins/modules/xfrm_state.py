#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: xfrm_state
short_description: One manually keyed IPv6 ESP security association (xfrm state)
description:
  - Installs or removes one ESP SA in the kernel's SAD with iproute2 (C(ip -6 xfrm state)), keyed by
    hand as in the lab's paper.
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
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  src:
    description: Source address of the SA (outer source in tunnel mode).
    type: str
    required: true
  dst:
    description: Destination address of the SA (outer destination in tunnel mode).
    type: str
    required: true
  proto:
    description: Transform protocol.
    type: str
    choices: [esp]
    default: esp
  spi:
    description:
      - Security Parameter Index, an int or a string (decimal, or hex with C(0x), e.g. C("0x1001")).
      - 256 to 0xffffffff (0 to 255 are reserved).
    type: raw
    required: true
  mode:
    description: Transport or tunnel mode.
    type: str
    choices: [transport, tunnel]
    default: transport
  reqid:
    description: Request id linking the SA to policy templates with the same reqid (0 for none).
    type: int
    default: 0
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
attributes:
  check_mode:
    support: full
    description: Reports what would change and changes nothing.
  diff_mode:
    support: full
    description: Shows the SA's non-secret fields before and after; keys are shown as C(<hidden>).
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
"""

RETURN = r"""
operation:
  description: What was done (or would be, in check mode).
  returned: always
  type: str
  choices: [none, added, replaced, deleted]
  sample: added
differences:
  description:
    - Fields in which the kernel's SA differed (C(mode), C(reqid), C(algorithm), C(keys), C(selector)).
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
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mvpn.lab.plugins.module_utils.xfrm import (
    ANY,
    HIDDEN,
    KEY_OPTIONS,
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
    state_view,
    wanted_algos,
)


def _fail(module, msg):
    module.fail_json(msg=msg)


def _keys(module, p):
    """The suite's keys as lowercase hex; fails on a missing, foreign, non-hex or wrong-length key."""
    suite = p["algorithm"]
    spec = SUITES[suite]["keys"]
    for option in KEY_OPTIONS:
        if option not in spec and p[option] is not None:
            _fail(
                module,
                "%s: not used with algorithm %s (it takes %s)" % (option, suite, " and ".join(sorted(spec))),
            )
    keys = {}
    for option in sorted(spec):
        lengths = spec[option]
        if p[option] is None:
            _fail(module, "%s: required with algorithm %s (%s)" % (option, suite, key_lengths_text(lengths)))
        try:
            key = hex_key(p[option])
        except ValueError:
            _fail(
                module,
                "%s: not a hex string (expected %s, optionally prefixed with 0x)"
                % (option, key_lengths_text(lengths)),
            )
        if len(key) // 2 not in lengths:
            _fail(
                module,
                "%s: %d bytes given; algorithm %s takes %s"
                % (option, len(key) // 2, suite, key_lengths_text(lengths)),
            )
        # from here on the normalised key is masked in anything the module prints, like the raw value
        module.no_log_values.add(key)
        keys[option] = key
    return keys


def _selector(module, value):
    sel = any_selector()
    for field in ("src", "dst"):
        text = value.get(field) or ANY
        try:
            sel[field] = ipv6_prefix(text)
        except ValueError:
            _fail(
                module,
                "selector.%s: %r is not an IPv6 prefix (expected e.g. fec0:106:1100::/64, "
                "or an address for /128)" % (field, text),
            )
    if value.get("proto") not in (None, ""):
        try:
            sel["proto"] = protocol(value["proto"])
        except ValueError:
            _fail(
                module,
                "selector.proto: %r is not a protocol (expected %s)" % (value["proto"], PROTO_EXPECTED),
            )
    return sel


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="str", required=True),
            dst=dict(type="str", required=True),
            proto=dict(type="str", choices=["esp"], default="esp"),
            spi=dict(type="raw", required=True),
            mode=dict(type="str", choices=["transport", "tunnel"], default="transport"),
            reqid=dict(type="int", default=0),
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
        ),
        required_if=[("state", "present", ["algorithm"])],
        supports_check_mode=True,
    )
    p = module.params

    # ---- check everything before asking the kernel anything
    want = {"proto": p["proto"], "mode": p["mode"], "reqid": p["reqid"]}
    for field in ("src", "dst"):
        try:
            want[field] = ipv6_address(p[field])
        except ValueError:
            _fail(
                module, "%s: %r is not an IPv6 address (expected e.g. fec0:106:2700::1)" % (field, p[field])
            )
    try:
        want["spi"] = parse_spi(p["spi"])
    except ValueError:
        _fail(
            module,
            "spi: %r is not an SPI (expected an int or a hex string like 0x1001, 256 to 0xffffffff)"
            % (p["spi"],),
        )
    if not 0 <= p["reqid"] <= 0xFFFFFFFF:
        _fail(module, "reqid: %d is out of range (expected 0 to 4294967295)" % p["reqid"])
    present = p["state"] == "present"
    secrets = []
    if present:
        keys = _keys(module, p)
        secrets = sorted(keys.values())
        want["algorithm"] = p["algorithm"]
        want["algos"] = wanted_algos(p["algorithm"], keys)
        want["selector_given"] = p["selector"] is not None
        want["sel"] = _selector(module, p["selector"]) if p["selector"] is not None else any_selector()

    # ---- the kernel's SA with this (dst, proto, spi), whatever its src
    listing = ["-6", "xfrm", "state", "list", "dst", want["dst"], "proto", want["proto"]]
    listing += ["spi", spi_hex(want["spi"])]
    rc, out, err = module.run_command(["ip"] + listing)
    if rc != 0:
        error = " ".join((err or out).split())
        _fail(module, redact("ip %s failed: %s" % (" ".join(listing), error), secrets))
    have = None
    for state in parse_states(out):
        if (state["dst"], state["proto"], state["spi"]) == (want["dst"], want["proto"], want["spi"]):
            have = state
            break
    clash = have is not None and have["src"] != want["src"]
    if clash and present:
        _fail(
            module,
            "spi: %s towards %s (proto %s) is already used by the SA from %s; the kernel allows one SA per "
            "destination, protocol and SPI" % (spi_hex(want["spi"]), want["dst"], want["proto"], have["src"]),
        )
    if clash:
        module.warn(
            "spi %s towards %s is used by the SA from %s, which is not the one to remove; left alone"
            % (spi_hex(want["spi"]), want["dst"], have["src"])
        )
        have = None

    # ---- what to do
    ident = state_id_args(want["src"], want["dst"], want["proto"], want["spi"])
    lines = []
    differences = []
    if present:
        if have is None:
            operation = "added"
            lines = [state_add_args(want)]
        else:
            differences = state_differences(have, want)
            operation = "replaced" if differences else "none"
            if differences:
                lines = [["xfrm", "state", "delete"] + ident, state_add_args(want)]
    else:
        operation = "deleted" if have is not None else "none"
        if have is not None:
            lines = [["xfrm", "state", "delete"] + ident]

    if lines and not module.check_mode:
        ip_batch(module, lines, secrets)

    after = want if present else None
    result = dict(
        changed=operation != "none",
        operation=operation,
        differences=differences,
        state=p["state"],
        spi=spi_hex(want["spi"]),
        src=want["src"],
        dst=want["dst"],
        proto=want["proto"],
        mode=None,
        reqid=None,
        algorithm=None,
        selector=None,
    )
    shown = state_view(after if present else None)
    for field in ("mode", "reqid", "algorithm", "selector"):
        result[field] = shown.get(field)
    if module._diff:
        before_view = state_view(have)
        after_view = state_view(after, keys=HIDDEN + " (changed)" if "keys" in differences else HIDDEN)
        result["diff"] = dict(before=before_view, after=after_view)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
