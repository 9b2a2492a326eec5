#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ipv6_route
short_description: Static IPv6 routes of a lab host
description:
  - Installs the listed IPv6 routes in the main table, comparing with the kernel's routes first so a
    second run reports no change.
  - With O(purge=true), static routes (protocol C(boot) or C(static)) on the managed interfaces that
    are not listed are removed. Routes learned from Router Advertisements are never touched.
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  routes:
    description: Routes to have.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Destination prefix, or C(default) (same as C(::/0)).
        type: str
        required: true
      gateway:
        description: Next-hop address.
        type: str
        required: true
      interface:
        description: Outgoing interface.
        type: str
        required: true
      metric:
        description: Route metric; the kernel's default when omitted.
        type: int
  interfaces:
    description: Interfaces whose static routes O(purge) manages, besides those named in O(routes).
    type: list
    elements: str
    default: []
  purge:
    description: Remove static routes on managed interfaces that are not in O(routes).
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
- name: Route the foreign network through the impairment node (Fig. 5)
  mvpn.lab.ipv6_route:
    routes:
      - {dest: "fec0:106:1100::/64", gateway: "fec0:106:2500::3", interface: eth0}
    purge: true
"""

RETURN = r"""
added:
  description: Routes added or replaced, as C(dest via gateway dev interface).
  returned: always
  type: list
  elements: str
  sample: ["fec0:106:1100::/64 via fec0:106:2500::3 dev eth0"]
removed:
  description: Static routes removed by O(purge).
  returned: always
  type: list
  elements: str
  sample: []
"""

import ipaddress

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mvpn.lab.plugins.module_utils.iproute import ip_json, ip_run, link_names

STATIC_PROTOCOLS = ("boot", "static")


def _dest(module, value, field):
    if value in ("default", "::/0"):
        return "::/0"
    try:
        return str(ipaddress.IPv6Network("%s" % value))
    except ValueError:
        module.fail_json(
            msg="%s: %r is not an IPv6 prefix (expected e.g. fec0:106:1100::/64 or default)" % (field, value)
        )


def _addr(module, value, field):
    try:
        return str(ipaddress.IPv6Address("%s" % value))
    except ValueError:
        module.fail_json(
            msg="%s: %r is not an IPv6 address (expected e.g. fec0:106:2500::3)" % (field, value)
        )


def _text(route):
    return "%s via %s dev %s" % (route[0], route[1], route[2])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            routes=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    dest=dict(type="str", required=True),
                    gateway=dict(type="str", required=True),
                    interface=dict(type="str", required=True),
                    metric=dict(type="int"),
                ),
            ),
            interfaces=dict(type="list", elements="str", default=[]),
            purge=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    wanted = {}
    for i, r in enumerate(p["routes"]):
        key = (
            _dest(module, r["dest"], "routes[%d].dest" % i),
            _addr(module, r["gateway"], "routes[%d].gateway" % i),
            r["interface"],
        )
        wanted[key] = r.get("metric")
    managed = set(p["interfaces"]) | {k[2] for k in wanted}
    existing = set(link_names(module))
    for name in sorted(managed):
        if name not in existing:
            module.fail_json(msg="interfaces: %s does not exist on this host" % name)

    have = {}
    for r in ip_json(module, ["-6", "route", "show", "table", "main"]):
        if not r.get("gateway") or r.get("dev") not in managed:
            continue
        dst = (
            "::/0" if r.get("dst") == "default" else str(ipaddress.IPv6Network("%s" % r["dst"], strict=False))
        )
        # IPv6 routes differing only in metric coexist (replace with a new metric adds one), so keep all.
        have.setdefault((dst, str(ipaddress.IPv6Address("%s" % r["gateway"])), r["dev"]), []).append(r)
    result = dict(changed=False, added=[], removed=[])
    for key, metric in sorted(wanted.items()):
        if any(metric is None or current.get("metric") == metric for current in have.get(key, [])):
            continue
        result["added"].append(_text(key))
        if not module.check_mode:
            cmd = ["-6", "route", "replace", key[0], "via", key[1], "dev", key[2]]
            if metric is not None:
                cmd += ["metric", str(metric)]
            ip_run(module, cmd)
    if p["purge"]:
        for key, routes in sorted(have.items()):
            for r in routes:
                if r.get("protocol") not in STATIC_PROTOCOLS:
                    continue
                if key in wanted and wanted[key] in (None, r.get("metric")):
                    continue
                result["removed"].append(_text(key))
                if not module.check_mode:
                    metric = ["metric", str(r["metric"])] if r.get("metric") is not None else []
                    ip_run(module, ["-6", "route", "del", key[0], "via", key[1], "dev", key[2]] + metric)
    result["changed"] = bool(result["added"] or result["removed"])
    if module._diff:
        before = sorted(_text(k) for k in have)
        after = sorted(set(before) - set(result["removed"]) | {_text(k) for k in wanted})
        result["diff"] = dict(before="\n".join(before) + "\n", after="\n".join(after) + "\n")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
