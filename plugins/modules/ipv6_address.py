#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ipv6_address
short_description: Static IPv6 addresses and SLAAC tokens on a lab host's interfaces
description:
  - Brings the named interfaces up, adds the listed global IPv6 addresses and sets SLAAC
    interface tokens, reading the kernel's current state first so that a second run reports no change.
  - With O(purge=true), permanent global (and site-local) addresses on the managed interfaces that
    are not listed
    are removed. Addresses the kernel made by SLAAC are never purged.
  - Changes only the running kernel (the network namespace the module runs in).
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  addresses:
    description: Addresses to have, each an interface and an address with prefix length.
    type: list
    elements: dict
    default: []
    suboptions:
      interface:
        description: Interface name.
        type: str
        required: true
      address:
        description: IPv6 address with prefix length, for example C(fec0:106:2500::1/64).
        type: str
        required: true
  interfaces:
    description: Interfaces to bring up and manage, besides those named in O(addresses).
    type: list
    elements: str
    default: []
  tokens:
    description: SLAAC interface identifiers (C(ip token)), so autoconfigured addresses are prefix + token.
    type: list
    elements: dict
    default: []
    suboptions:
      interface:
        description: Interface name.
        type: str
        required: true
      token:
        description: Interface identifier, for example C(::20c:30ff:febb:f0b6).
        type: str
        required: true
  purge:
    description: Remove permanent global addresses on managed interfaces that are not in O(addresses).
    type: bool
    default: false
  nodad:
    description: Add addresses without duplicate address detection (the lab assigns them by plan).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports what would change and changes nothing.
  diff_mode:
    support: full
    description: Shows the state before and after.
"""

EXAMPLES = r"""
- name: Address the home agent's backbone and home links
  mvpn.lab.ipv6_address:
    addresses:
      - {interface: eth0, address: "fec0:106:2500::1/64"}
      - {interface: wlan0, address: "fec0:106:2700::1/64"}
    purge: true

- name: Let SLAAC form prefix + token on the mobile node
  mvpn.lab.ipv6_address:
    interfaces: [wlan0]
    tokens:
      - {interface: wlan0, token: "::20c:30ff:febb:f0b6"}
"""

RETURN = r"""
added:
  description: Addresses added, as C(interface address/len).
  returned: always
  type: list
  elements: str
  sample: ["eth0 fec0:106:2500::1/64"]
removed:
  description: Addresses removed by O(purge).
  returned: always
  type: list
  elements: str
  sample: []
links_up:
  description: Interfaces that were down and were brought up.
  returned: always
  type: list
  elements: str
  sample: ["wlan0"]
tokens_set:
  description: Interfaces whose SLAAC token changed.
  returned: always
  type: list
  elements: str
  sample: []
"""

import ipaddress

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mvpn.lab.plugins.module_utils.iproute import ip_json, ip_run, link_names


def _norm_interface(module, value, field):
    try:
        # Without a length ipaddress assumes /128, which would leave the link without its on-link route.
        if "/" not in "%s" % value:
            raise ValueError("no prefix length")
        iface = ipaddress.IPv6Interface("%s" % value)
    except ValueError:
        module.fail_json(
            msg="%s: %r is not an IPv6 address with prefix length (expected e.g. "
            "fec0:106:2500::1/64)" % (field, value)
        )
    return "%s/%d" % (iface.ip, iface.network.prefixlen)


def _norm_token(module, value, field):
    try:
        return str(ipaddress.IPv6Address("%s" % value))
    except ValueError:
        module.fail_json(
            msg="%s: %r is not an IPv6 interface identifier (expected e.g. ::20c:30ff:febb:f0b6)"
            % (field, value)
        )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            addresses=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    interface=dict(type="str", required=True),
                    address=dict(type="str", required=True),
                ),
            ),
            interfaces=dict(type="list", elements="str", default=[]),
            tokens=dict(
                type="list",
                elements="dict",
                default=[],
                no_log=False,
                options=dict(
                    interface=dict(type="str", required=True),
                    token=dict(type="str", required=True, no_log=False),
                ),
            ),
            purge=dict(type="bool", default=False),
            nodad=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    wanted = {}
    for i, item in enumerate(p["addresses"]):
        wanted.setdefault(item["interface"], set()).add(
            _norm_interface(module, item["address"], "addresses[%d].address" % i)
        )
    # Check every token before changing anything.
    tokens = [
        (item["interface"], _norm_token(module, item["token"], "tokens[%d].token" % i))
        for i, item in enumerate(p["tokens"])
    ]
    managed = list(
        dict.fromkeys(list(p["interfaces"]) + list(wanted) + [t["interface"] for t in p["tokens"]])
    )
    existing = set(link_names(module))
    for name in managed:
        if name not in existing:
            module.fail_json(
                msg="interfaces: %s does not exist on this host (expected one of: %s)"
                % (name, ", ".join(sorted(n for n in existing if n)))
            )

    result = dict(changed=False, added=[], removed=[], links_up=[], tokens_set=[])
    before, after = [], []
    for name in managed:
        link = ip_json(module, ["link", "show", "dev", name])[0]
        if "UP" not in link.get("flags", []):
            result["links_up"].append(name)
            if not module.check_mode:
                ip_run(module, ["link", "set", "dev", name, "up"])
        have = {}
        for entry in ip_json(module, ["-6", "addr", "show", "dev", name]):
            for info in entry.get("addr_info", []):
                # fec0::/10 (the paper's prefixes) is reported with scope "site".
                if info.get("family") == "inet6" and info.get("scope") in ("global", "site"):
                    key = "%s/%d" % (ipaddress.IPv6Address("%s" % info["local"]), info["prefixlen"])
                    have[key] = info
        want = wanted.get(name, set())
        before += ["%s %s" % (name, a) for a in sorted(have)]
        for addr in sorted(want - set(have)):
            result["added"].append("%s %s" % (name, addr))
            if not module.check_mode:
                ip_run(module, ["-6", "addr", "add", addr, "dev", name] + (["nodad"] if p["nodad"] else []))
        if p["purge"]:
            for addr, info in sorted(have.items()):
                if addr not in want and not info.get("dynamic"):
                    result["removed"].append("%s %s" % (name, addr))
                    if not module.check_mode:
                        ip_run(module, ["-6", "addr", "del", addr, "dev", name])
        kept = set(have) - {r.split(" ", 1)[1] for r in result["removed"] if r.startswith(name + " ")}
        after += ["%s %s" % (name, a) for a in sorted(kept | want)]

    for name, token in tokens:
        out = ip_run(module, ["token", "get", "dev", name])
        words = out.split()
        current = str(ipaddress.IPv6Address("%s" % words[1])) if len(words) > 1 else "::"
        if current != token:
            result["tokens_set"].append(name)
            if not module.check_mode:
                ip_run(module, ["token", "set", token, "dev", name])

    result["changed"] = bool(
        result["added"] or result["removed"] or result["links_up"] or result["tokens_set"]
    )
    if module._diff:
        result["diff"] = dict(before="\n".join(before) + "\n", after="\n".join(after) + "\n")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
