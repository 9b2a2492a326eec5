#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: xfrm_policy
short_description: One IPv6 IPsec security policy (xfrm policy)
description:
  - Installs or removes one security policy in the kernel's SPD with iproute2 (C(ip -6 xfrm policy)).
  - A policy is identified by its selector (O(src), O(dst), O(proto), O(sport), O(dport), O(mh_type)),
    O(dir) and O(ptype). The module reads it with C(ip -6 xfrm policy get) and compares O(action),
    O(priority) and O(templates); only a real difference is written, with C(ip -6 xfrm policy update).
  - Policies with another selector, direction or type are left alone, among them the C(ptype sub)
    route optimisation policies of the mip6 daemon when O(ptype=main).
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  src:
    description: Source prefix of the selector; a plain address is a /128.
    type: str
    required: true
  dst:
    description: Destination prefix of the selector; a plain address is a /128.
    type: str
    required: true
  proto:
    description:
      - Upper-layer protocol of the selector, C(tcp), C(udp), C(ipv6-icmp), C(135) (C(mobility-header))
        or a number 1-255; any when omitted.
    type: raw
  mh_type:
    description:
      - Mobility Header type (C(type N) of the selector), e.g. 5 for Binding Updates, 6 for Binding
        Acknowledgements. Only with O(proto=135).
    type: int
  sport:
    description: Source port; only with O(proto) C(tcp) or C(udp).
    type: int
  dport:
    description: Destination port; only with O(proto) C(tcp) or C(udp).
    type: int
  dir:
    description: Direction.
    type: str
    choices: [in, out, fwd]
    required: true
  ptype:
    description: Policy type; the mip6 daemon uses C(sub) for route optimisation.
    type: str
    choices: [main, sub]
    default: main
  priority:
    description:
      - Priority (lower wins). When omitted the existing policy's priority is kept and a new policy gets 0.
    type: int
  action:
    description: Allow (apply the templates) or block the matching traffic.
    type: str
    choices: [allow, block]
    default: allow
  templates:
    description:
      - Transformations required for the matching traffic, in order. None (the default) lets the traffic
        pass without IPsec.
    type: list
    elements: dict
    default: []
    suboptions:
      src:
        description:
          - SA source address; required with O(templates[].mode=tunnel), any (C(::)) when omitted.
        type: str
      dst:
        description:
          - SA destination address; required with O(templates[].mode=tunnel), any (C(::)) when omitted.
        type: str
      proto:
        description: Transform protocol.
        type: str
        choices: [esp]
        default: esp
      mode:
        description: Mode of the SA.
        type: str
        choices: [transport, tunnel]
        default: transport
      reqid:
        description: Request id; 0 matches SAs of any reqid.
        type: int
        default: 0
      level:
        description: V(required) drops traffic without a matching SA, V(use) applies one if there is one.
        type: str
        choices: [required, use]
        default: required
      spi:
        description: SPI the SA must have (int, or hex string like C("0x1001")); any when omitted.
        type: raw
  state:
    description: Whether the policy exists.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    description: Reports what would change and changes nothing.
  diff_mode:
    support: full
    description: Shows the policy before and after.
"""

EXAMPLES = r"""
- name: Binding Updates from the mobile node to the home agent need ESP (RFC 3776)
  mvpn.lab.xfrm_policy:
    src: "fec0:106:1100::2"
    dst: "fec0:106:2700::1"
    proto: 135
    mh_type: 5
    dir: out
    templates:
      - {proto: esp, mode: transport, reqid: 1}

- name: Tunnel the mobile node's traffic to the home agent
  mvpn.lab.xfrm_policy:
    src: "fec0:106:1100::2"
    dst: "::/0"
    dir: out
    priority: 100
    templates:
      - {src: "fec0:106:1700::2", dst: "fec0:106:2700::1", mode: tunnel, reqid: 2}

- name: Remove it
  mvpn.lab.xfrm_policy:
    src: "fec0:106:1100::2"
    dst: "::/0"
    dir: out
    state: absent
"""

RETURN = r"""
operation:
  description: What was done (or would be, in check mode).
  returned: always
  type: str
  choices: [none, added, updated, deleted]
  sample: added
differences:
  description: Fields in which the kernel's policy differed (C(action), C(priority), C(templates)).
  returned: always
  type: list
  elements: str
  sample: [templates]
policy:
  description:
    - The policy as wanted (after the task), empty when absent. Protocol numbers; C(mh_type), C(sport),
      C(dport) null when not part of the selector; template SPIs in hex or null.
  returned: always
  type: dict
  sample:
    src: "fec0:106:1100::2/128"
    dst: "fec0:106:2700::1/128"
    proto: 135
    mh_type: 5
    sport: null
    dport: null
    dir: out
    ptype: main
    action: allow
    priority: 0
    templates:
      - {src: "::", dst: "::", proto: esp, spi: null, reqid: 1, mode: transport, level: required}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mvpn.lab.plugins.module_utils.iproute import ip_run
from ansible_collections.mvpn.lab.plugins.module_utils.xfrm import (
    MH,
    PORT_PROTOCOLS,
    PROTO_EXPECTED,
    ipv6_address,
    ipv6_prefix,
    parse_policies,
    parse_spi,
    policy_differences,
    policy_view,
    protocol,
    protocol_name,
    selector_args,
    template_args,
)

U32 = 0xFFFFFFFF


def _fail(module, msg):
    module.fail_json(msg=msg)


def _selector(module, p):
    sel = {"proto": 0, "sport": 0, "dport": 0, "type": None, "code": None, "dev": None}
    for field in ("src", "dst"):
        try:
            sel[field] = ipv6_prefix(p[field])
        except ValueError:
            _fail(
                module,
                "%s: %r is not an IPv6 prefix (expected e.g. fec0:106:1100::/64, or an address for /128)"
                % (field, p[field]),
            )
    if p["proto"] not in (None, ""):
        try:
            sel["proto"] = protocol(p["proto"])
        except ValueError:
            _fail(module, "proto: %r is not a protocol (expected %s)" % (p["proto"], PROTO_EXPECTED))
    given = "proto is %s" % protocol_name(sel["proto"]) if sel["proto"] else "no proto given"
    for field in ("sport", "dport"):
        if p[field] is None:
            continue
        if sel["proto"] not in PORT_PROTOCOLS:
            _fail(module, "%s: only with proto tcp or udp (%s)" % (field, given))
        if not 1 <= p[field] <= 65535:
            _fail(module, "%s: %d is not a port (expected 1 to 65535)" % (field, p[field]))
        sel[field] = p[field]
    if p["mh_type"] is not None:
        if sel["proto"] != MH:
            _fail(module, "mh_type: only with proto 135 (mobility-header) (%s)" % given)
        if not 0 <= p["mh_type"] <= 255:
            _fail(module, "mh_type: %d is not a Mobility Header type (expected 0 to 255)" % p["mh_type"])
        sel["type"] = p["mh_type"]
    return sel


def _template(module, index, t):
    name = "templates[%d]" % index
    tmpl = {"proto": t["proto"], "mode": t["mode"], "level": t["level"], "reqid": t["reqid"], "spi": 0}
    for field in ("src", "dst"):
        if t[field] in (None, ""):
            if t["mode"] == "tunnel":
                _fail(
                    module, "%s.%s: required with mode tunnel (the outer %s address)" % (name, field, field)
                )
            tmpl[field] = "::"
            continue
        try:
            tmpl[field] = ipv6_address(t[field])
        except ValueError:
            _fail(
                module,
                "%s.%s: %r is not an IPv6 address (expected e.g. fec0:106:2700::1)" % (name, field, t[field]),
            )
    if not 0 <= t["reqid"] <= U32:
        _fail(module, "%s.reqid: %d is out of range (expected 0 to 4294967295)" % (name, t["reqid"]))
    if t["spi"] not in (None, ""):
        try:
            tmpl["spi"] = parse_spi(t["spi"])
        except ValueError:
            _fail(
                module,
                "%s.spi: %r is not an SPI (expected an int or a hex string like 0x1001, 256 to 0xffffffff)"
                % (name, t["spi"]),
            )
    return tmpl


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="str", required=True),
            dst=dict(type="str", required=True),
            proto=dict(type="raw"),
            mh_type=dict(type="int"),
            sport=dict(type="int"),
            dport=dict(type="int"),
            dir=dict(type="str", choices=["in", "out", "fwd"], required=True),
            ptype=dict(type="str", choices=["main", "sub"], default="main"),
            priority=dict(type="int"),
            action=dict(type="str", choices=["allow", "block"], default="allow"),
            templates=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    src=dict(type="str"),
                    dst=dict(type="str"),
                    proto=dict(type="str", choices=["esp"], default="esp"),
                    mode=dict(type="str", choices=["transport", "tunnel"], default="transport"),
                    reqid=dict(type="int", default=0),
                    level=dict(type="str", choices=["required", "use"], default="required"),
                    spi=dict(type="raw"),
                ),
            ),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    p = module.params

    # ---- check everything before asking the kernel anything
    sel = _selector(module, p)
    if p["priority"] is not None and not 0 <= p["priority"] <= U32:
        _fail(module, "priority: %d is out of range (expected 0 to 4294967295)" % p["priority"])
    want = {
        "sel": sel,
        "dir": p["dir"],
        "ptype": p["ptype"],
        "action": p["action"],
        "priority": p["priority"],
        "templates": [_template(module, i, t) for i, t in enumerate(p["templates"])],
    }
    ident = selector_args(sel) + ["dir", p["dir"], "ptype", p["ptype"]]

    # ---- the kernel's policy with this selector, direction and type
    query = ["-6", "xfrm", "policy", "get"] + ident
    rc, out, err = module.run_command(["ip"] + query)
    have = None
    if rc == 0:
        # the kernel matched the selector exactly; its spelling of it (protocol names) may differ
        for policy in parse_policies(out):
            if (policy["dir"], policy["ptype"], policy["socket"]) == (p["dir"], p["ptype"], False):
                have = policy
                break
    elif "no such file or directory" not in (err or out or "").lower():
        _fail(module, "ip %s failed: %s" % (" ".join(query), " ".join((err or out).split())))

    differences = []
    if p["state"] == "present":
        if want["priority"] is None:
            want["priority"] = have["priority"] if have is not None else 0
        if have is None:
            operation = "added"
        else:
            differences = policy_differences(have, want)
            operation = "updated" if differences else "none"
        if operation != "none" and not module.check_mode:
            cmd = ["-6", "xfrm", "policy", "update"] + ident
            cmd += ["action", want["action"], "priority", "%d" % want["priority"]]
            for tmpl in want["templates"]:
                cmd += template_args(tmpl)
            ip_run(module, cmd)
        after = want
    else:
        operation = "deleted" if have is not None else "none"
        if have is not None and not module.check_mode:
            ip_run(module, ["-6", "xfrm", "policy", "delete"] + ident)
        after = None

    result = dict(changed=operation != "none", operation=operation, differences=differences)
    result["policy"] = policy_view(after)
    if module._diff:
        result["diff"] = dict(before=policy_view(have), after=policy_view(after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
