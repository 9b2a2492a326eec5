#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: xfrm_policy
short_description: IPv6 IPsec security policies (xfrm policies)
description:
  - Installs or removes one security policy, or with O(policies) a list of them, in the kernel's SPD with
    iproute2 (C(ip -6 xfrm policy)).
  - A policy is identified by its selector (O(src), O(dst), O(proto), O(sport), O(dport), O(mh_type)),
    O(dir) and O(ptype). The module reads it with C(ip -6 xfrm policy get) and compares O(action),
    O(priority) and O(templates); only a real difference is written, with C(ip -6 xfrm policy update).
  - Policies with another selector, direction or type are left alone, among them the C(ptype sub)
    route optimisation policies of the mip6 daemon when O(ptype=main).
  - With O(policies) every entry is checked first (a bad entry fails the task before the kernel is asked
    anything), the kernel's policies are read with one C(ip -6 xfrm policy list) and all changes
    (C(update) or C(delete)) are made in entry order in one C(ip -6 -batch -) run.
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  src:
    description:
      - Source prefix of the selector; a plain address is a /128.
      - Required unless O(policies) is given.
    type: str
  dst:
    description:
      - Destination prefix of the selector; a plain address is a /128.
      - Required unless O(policies) is given.
    type: str
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
    description:
      - Direction.
      - Required unless O(policies) is given.
    type: str
    choices: [in, out, fwd]
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
  policies:
    description:
      - Policies to manage in one run, each with the options of a single policy (O(src), O(dst), O(dir),
        ...).
      - Mutually exclusive with those options.
      - Errors name the entry, e.g. C(policies[2].mh_type). Two entries with the same selector,
        O(policies[].dir) and O(policies[].ptype) are an error.
    type: list
    elements: dict
    suboptions:
      src:
        description:
          - Source prefix of the selector; a plain address is a /128.
          - Required.
        type: str
      dst:
        description:
          - Destination prefix of the selector; a plain address is a /128.
          - Required.
        type: str
      proto:
        description:
          - Upper-layer protocol of the selector, C(tcp), C(udp), C(ipv6-icmp), C(135) (C(mobility-header))
            or a number 1-255; any when omitted.
        type: raw
      mh_type:
        description:
          - Mobility Header type (C(type N) of the selector), e.g. 5 for Binding Updates, 6 for Binding
            Acknowledgements. Only with O(policies[].proto=135).
        type: int
      sport:
        description: Source port; only with O(policies[].proto) C(tcp) or C(udp).
        type: int
      dport:
        description: Destination port; only with O(policies[].proto) C(tcp) or C(udp).
        type: int
      dir:
        description:
          - Direction.
          - Required.
        type: str
        choices: [in, out, fwd]
      ptype:
        description: Policy type; the mip6 daemon uses C(sub) for route optimisation.
        type: str
        choices: [main, sub]
        default: main
      priority:
        description:
          - Priority (lower wins). When omitted the existing policy's priority is kept and a new policy
            gets 0.
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
              - SA source address; required with O(policies[].templates[].mode=tunnel), any (C(::))
                when omitted.
            type: str
          dst:
            description:
              - SA destination address; required with O(policies[].templates[].mode=tunnel), any (C(::))
                when omitted.
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
    description:
      - Shows the policy before and after.
      - With O(policies), the lists of them under C(policies), one item per entry.
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

- name: Several policies in one run (one listing of the kernel's policies, one ip -batch for all changes)
  mvpn.lab.xfrm_policy:
    policies:
      - src: "fec0:106:1100::2"
        dst: "::/0"
        dir: out
        state: absent
      - src: "fec0:106:1100::2"
        dst: "fec0:106:2700::1"
        proto: 135
        mh_type: 5
        dir: out
        templates:
          - {proto: esp, mode: transport, reqid: 1}
      - src: "fec0:106:2700::1"
        dst: "fec0:106:1100::2"
        proto: 135
        mh_type: 6
        dir: in
        templates:
          - {proto: esp, mode: transport, reqid: 1}
"""

RETURN = r"""
operation:
  description: What was done (or would be, in check mode).
  returned: without O(policies)
  type: str
  choices: [none, added, updated, deleted]
  sample: added
differences:
  description: Fields in which the kernel's policy differed (C(action), C(priority), C(templates)).
  returned: without O(policies)
  type: list
  elements: str
  sample: [templates]
policy:
  description:
    - The policy as wanted (after the task), empty when absent. Protocol numbers; C(mh_type), C(sport),
      C(dport) null when not part of the selector; template SPIs in hex or null.
  returned: without O(policies)
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
results:
  description:
    - With O(policies), one item per entry, in the same order, with the fields the single form returns.
  returned: with O(policies)
  type: list
  elements: dict
  contains:
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
    - operation: added
      differences: []
      policy:
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
    ip_batch,
    ipv6_address,
    ipv6_prefix,
    parse_policies,
    parse_spi,
    policy_differences,
    policy_id,
    policy_index,
    policy_view,
    protocol,
    protocol_name,
    selector_args,
    template_args,
)

U32 = 0xFFFFFFFF

#: The options of one policy, which O(policies) excludes.
POLICY_FIELDS = (
    "src",
    "dst",
    "proto",
    "mh_type",
    "sport",
    "dport",
    "dir",
    "ptype",
    "priority",
    "action",
    "templates",
    "state",
)


def _policy_options():
    """The options of one policy: the module's own and, the same, those of each O(policies) entry."""
    return dict(
        src=dict(type="str"),
        dst=dict(type="str"),
        proto=dict(type="raw"),
        mh_type=dict(type="int"),
        sport=dict(type="int"),
        dport=dict(type="int"),
        dir=dict(type="str", choices=["in", "out", "fwd"]),
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
    )


def _fail(module, msg):
    module.fail_json(msg=msg)


def _selector(module, p, at):
    sel = {"proto": 0, "sport": 0, "dport": 0, "type": None, "code": None, "dev": None}
    for field in ("src", "dst"):
        try:
            sel[field] = ipv6_prefix(p[field])
        except ValueError:
            _fail(
                module,
                "%s%s: %r is not an IPv6 prefix (expected e.g. fec0:106:1100::/64, or an address for /128)"
                % (at, field, p[field]),
            )
    if p["proto"] not in (None, ""):
        try:
            sel["proto"] = protocol(p["proto"])
        except ValueError:
            _fail(module, "%sproto: %r is not a protocol (expected %s)" % (at, p["proto"], PROTO_EXPECTED))
    given = "proto is %s" % protocol_name(sel["proto"]) if sel["proto"] else "no proto given"
    for field in ("sport", "dport"):
        if p[field] is None:
            continue
        if sel["proto"] not in PORT_PROTOCOLS:
            _fail(module, "%s%s: only with proto tcp or udp (%s)" % (at, field, given))
        if not 1 <= p[field] <= 65535:
            _fail(module, "%s%s: %d is not a port (expected 1 to 65535)" % (at, field, p[field]))
        sel[field] = p[field]
    if p["mh_type"] is not None:
        if sel["proto"] != MH:
            _fail(module, "%smh_type: only with proto 135 (mobility-header) (%s)" % (at, given))
        if not 0 <= p["mh_type"] <= 255:
            _fail(
                module,
                "%smh_type: %d is not a Mobility Header type (expected 0 to 255)" % (at, p["mh_type"]),
            )
        sel["type"] = p["mh_type"]
    return sel


def _template(module, index, t, at):
    name = "%stemplates[%d]" % (at, index)
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


def _missing(p, at=""):
    """The message for missing required options of one policy, or None (an option set to null is missing)."""
    missing = [field for field in ("src", "dst", "dir") if p[field] is None]
    if not missing:
        return None
    if at:
        return "%s%s: required" % (at, missing[0])
    return "missing required arguments: %s" % ", ".join(sorted(missing))


def _wanted(module, p, at=""):
    """One policy's options checked and normalised (``at`` prefixes the messages, e.g. ``policies[2].``)."""
    sel = _selector(module, p, at)
    if p["priority"] is not None and not 0 <= p["priority"] <= U32:
        _fail(module, "%spriority: %d is out of range (expected 0 to 4294967295)" % (at, p["priority"]))
    return {
        "sel": sel,
        "dir": p["dir"],
        "ptype": p["ptype"],
        "action": p["action"],
        "priority": p["priority"],
        "templates": [_template(module, i, t, at) for i, t in enumerate(p["templates"] or [])],
        "present": p["state"] == "present",
    }


def _ident(want):
    """The words that identify the policy on ip's command line: selector, direction, type."""
    return selector_args(want["sel"]) + ["dir", want["dir"], "ptype", want["ptype"]]


def _plan(want, have):
    """(operation, differences, ip arguments after ``-6``) that make the kernel's ``have`` into
    ``want``; fills in the wanted priority when it was omitted (the kernel's, else 0)."""
    if not want["present"]:
        if have is None:
            return "none", [], []
        return "deleted", [], [["xfrm", "policy", "delete"] + _ident(want)]
    if want["priority"] is None:
        want["priority"] = have["priority"] if have is not None else 0
    differences = []
    if have is None:
        operation = "added"
    else:
        differences = policy_differences(have, want)
        operation = "updated" if differences else "none"
    if operation == "none":
        return operation, differences, []
    words = ["xfrm", "policy", "update"] + _ident(want)
    words += ["action", want["action"], "priority", "%d" % want["priority"]]
    for tmpl in want["templates"]:
        words += template_args(tmpl)
    return operation, differences, [words]


def main_one(module):
    """The single-policy form: reads the kernel's policy with ``ip -6 xfrm policy get``."""
    p = module.params
    msg = _missing(p)
    if msg:
        _fail(module, msg)

    # ---- check everything before asking the kernel anything
    want = _wanted(module, p)

    # ---- the kernel's policy with this selector, direction and type
    query = ["-6", "xfrm", "policy", "get"] + _ident(want)
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

    operation, differences, lines = _plan(want, have)
    if not module.check_mode:
        for words in lines:
            ip_run(module, ["-6"] + words)

    after = want if want["present"] else None
    result = dict(changed=operation != "none", operation=operation, differences=differences)
    result["policy"] = policy_view(after)
    if module._diff:
        result["diff"] = dict(before=policy_view(have), after=policy_view(after))
    module.exit_json(**result)


def main_list(module):
    """The O(policies) form: every entry checked first, one listing, one batch for all changes."""
    entries = module.params["policies"]

    # ---- check every entry before asking the kernel anything
    wants = []
    seen = {}
    for index, p in enumerate(entries):
        at = "policies[%d]." % index
        msg = _missing(p, at)
        if msg:
            _fail(module, msg)
        want = _wanted(module, p, at)
        ident = policy_id(want["sel"], want["dir"], want["ptype"])
        if ident in seen:
            _fail(
                module,
                "policies[%d]: the same policy as policies[%d] (%s); give each policy once (the kernel "
                "allows one policy per selector, direction and type)"
                % (index, seen[ident], " ".join(_ident(want))),
            )
        seen[ident] = index
        wants.append(want)
    if not wants:
        module.exit_json(changed=False, results=[])

    # ---- one listing for all of them
    listing = ["-6", "xfrm", "policy", "list"]
    rc, out, err = module.run_command(["ip"] + listing)
    if rc != 0:
        _fail(module, "ip %s failed: %s" % (" ".join(listing), " ".join((err or out or "").split())))
    kernel = policy_index(parse_policies(out))

    # ---- what to do, in entry order, in one batch
    results = []
    lines = []
    before = []
    after = []
    for want in wants:
        have = kernel.get(policy_id(want["sel"], want["dir"], want["ptype"]))
        operation, differences, more = _plan(want, have)
        lines += more
        wanted = want if want["present"] else None
        results.append(dict(operation=operation, differences=differences, policy=policy_view(wanted)))
        before.append(policy_view(have))
        after.append(policy_view(wanted))
    if lines and not module.check_mode:
        ip_batch(module, lines)

    result = dict(changed=any(r["operation"] != "none" for r in results), results=results)
    if module._diff:
        result["diff"] = dict(before=dict(policies=before), after=dict(policies=after))
    module.exit_json(**result)


def main():
    argument_spec = _policy_options()
    argument_spec["policies"] = dict(type="list", elements="dict", options=_policy_options())
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("policies", field) for field in POLICY_FIELDS],
        supports_check_mode=True,
    )
    if module.params["policies"] is None:
        main_one(module)
    else:
        main_list(module)


if __name__ == "__main__":
    main()
