#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: netem
short_description: Emulated link impairment (delay, jitter, loss, rate) on one interface's egress
description:
  - Puts a C(netem) qdisc at the root of O(device) (handle C(1:)) with the given delay, jitter,
    random loss and packet limit, and shapes the egress to O(rate_kbit) with netem's own rate
    or, with O(shaper=tbf), with a token bucket below netem (C(parent 1:1 handle 10:)).
  - Reads the kernel's qdiscs first (C(tc -j qdisc show)) and changes them only when they differ
    from the wanted ones, so a second run reports no change.
  - O(state=absent) removes a root C(netem) and with it anything below; the kernel then puts the
    interface's default qdisc back. Other root qdiscs are left alone.
  - One direction per call. To impair a link both ways, call it for the interface on each side
    (the C(impairment) role does that on the impairment node, splitting the RTT between them).
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
requirements:
  - iproute2's C(tc) and the kernel's C(sch_netem) (and C(sch_tbf) for O(shaper=tbf)).
options:
  device:
    description: Interface whose egress is impaired.
    type: str
    required: true
  state:
    description: Whether the impairment is there.
    type: str
    choices: [present, absent]
    default: present
  delay_ms:
    description: Fixed delay added to every packet, in milliseconds.
    type: float
    default: 0
  jitter_ms:
    description: Random variation of the delay (plus or minus), in milliseconds; at most O(delay_ms).
    type: float
    default: 0
  loss_pct:
    description: Random loss, in percent (0 to 100).
    type: float
    default: 0
  rate_kbit:
    description: Egress rate in kbit/s (1000 bit/s); none for no shaping.
    type: float
  limit:
    description:
      - Packets netem holds at most (those being delayed and those queued for the rate).
      - Keep it near the path's bandwidth-delay product plus a queue; the default suits Ethernet.
    type: int
    default: 1000
  shaper:
    description:
      - C(netem) shapes with netem's C(rate); C(tbf) with a token bucket below netem, which bounds
        bursts by O(tbf_burst) instead of spacing every packet.
    type: str
    choices: [netem, tbf]
    default: netem
  tbf_burst:
    description: Bucket size in bytes for O(shaper=tbf); at least one full-size packet.
    type: int
    default: 3200
  tbf_latency_ms:
    description: Longest a packet may wait in the token bucket for O(shaper=tbf), in milliseconds.
    type: float
    default: 1000
attributes:
  check_mode:
    support: full
    description: Reports what would change and changes nothing.
  diff_mode:
    support: full
    description: Shows the impairment before and after.
"""

EXAMPLES = r"""
- name: UMTS downlink toward the foreign router (half of the 500 ms RTT, 128 kbit/s)
  mvpn.lab.netem:
    device: eth1
    delay_ms: 250
    rate_kbit: 128
    limit: 60

- name: GPRS uplink toward the backbone through a token bucket
  mvpn.lab.netem:
    device: eth0
    delay_ms: 350
    rate_kbit: 10
    shaper: tbf
    tbf_burst: 3200

- name: Back to the default qdisc
  mvpn.lab.netem:
    device: eth0
    state: absent
"""

RETURN = r"""
before:
  description: The impairment found on the interface, or null when it had none of ours.
  returned: always
  type: dict
  sample: null
after:
  description: The impairment after the run (what it would be, in check mode), or null.
  returned: always
  type: dict
  sample:
    {"delay_ms": 250.0, "jitter_ms": 0.0, "loss_pct": 0.0, "rate_kbit": 128.0, "limit": 60,
     "shaper": "netem"}
commands:
  description: The tc commands run (or that would run, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["tc qdisc replace dev eth1 root handle 1: netem limit 60 delay 250.000ms rate 128kbit"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mvpn.lab.plugins.module_utils.tc import (
    Impairment,
    TcError,
    commands,
    current,
    parse_qdiscs,
)


def _check(module):
    p = module.params
    for name in ("delay_ms", "jitter_ms"):
        if p[name] < 0:
            module.fail_json(msg="%s: expected a delay of 0 ms or more, got %g" % (name, p[name]))
    if p["jitter_ms"] > p["delay_ms"]:
        module.fail_json(
            msg="jitter_ms: expected at most delay_ms (%g), got %g" % (p["delay_ms"], p["jitter_ms"])
        )
    if not 0 <= p["loss_pct"] <= 100:
        module.fail_json(msg="loss_pct: expected a percentage from 0 to 100, got %g" % p["loss_pct"])
    if p["rate_kbit"] is not None and p["rate_kbit"] <= 0:
        module.fail_json(
            msg="rate_kbit: expected a rate above 0 kbit/s (or none for no shaping), got %g" % p["rate_kbit"]
        )
    if p["limit"] < 1:
        module.fail_json(msg="limit: expected at least 1 packet, got %d" % p["limit"])
    if p["shaper"] == "tbf":
        if p["rate_kbit"] is None:
            module.fail_json(msg="rate_kbit: shaper tbf needs a rate")
        if p["tbf_burst"] < 1600:
            module.fail_json(
                msg="tbf_burst: expected at least 1600 bytes (one full-size packet), got %d" % p["tbf_burst"]
            )
        if p["tbf_latency_ms"] <= 0:
            module.fail_json(msg="tbf_latency_ms: expected more than 0 ms, got %g" % p["tbf_latency_ms"])
    if not p["device"] or "/" in p["device"] or len(p["device"]) > 15:
        module.fail_json(msg="device: expected an interface name (1 to 15 characters), got %r" % p["device"])


def _run(module, args):
    rc, out, err = module.run_command(args)
    if rc != 0:
        module.fail_json(
            msg="%s failed: %s" % (" ".join(args), (err or out).strip()), commands=[" ".join(args)]
        )
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            device=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            delay_ms=dict(type="float", default=0),
            jitter_ms=dict(type="float", default=0),
            loss_pct=dict(type="float", default=0),
            rate_kbit=dict(type="float"),
            limit=dict(type="int", default=1000),
            shaper=dict(type="str", choices=["netem", "tbf"], default="netem"),
            tbf_burst=dict(type="int", default=3200),
            tbf_latency_ms=dict(type="float", default=1000),
        ),
        supports_check_mode=True,
    )
    _check(module)
    p = module.params
    device = p["device"]
    rc, out, err = module.run_command(["tc", "-j", "qdisc", "show", "dev", device])
    if rc != 0:
        module.fail_json(msg="device: %s: %s" % (device, (err or out).strip() or "tc cannot show its qdiscs"))
    try:
        existing = current(parse_qdiscs(out))
    except TcError as exc:
        module.fail_json(msg="%s: %s" % (device, exc))

    if p["state"] == "absent":
        wanted = None
        todo = [["tc", "qdisc", "del", "dev", device, "root"]] if existing is not None else []
    else:
        wanted = Impairment(
            delay_ms=p["delay_ms"],
            jitter_ms=p["jitter_ms"],
            loss_pct=p["loss_pct"],
            rate_kbit=p["rate_kbit"],
            limit=p["limit"],
            shaper=p["shaper"],
            tbf_burst=p["tbf_burst"] if p["shaper"] == "tbf" else None,
            tbf_latency_ms=p["tbf_latency_ms"] if p["shaper"] == "tbf" else None,
        )
        todo = [] if wanted.same_as(existing) else commands(device, wanted, existing)

    if todo and not module.check_mode:
        for args in todo:
            _run(module, args)
    result = dict(
        changed=bool(todo),
        before=existing.as_dict() if existing is not None else None,
        after=(wanted.as_dict() if wanted is not None else None)
        if todo
        else (existing.as_dict() if existing is not None else None),
        commands=[" ".join(args) for args in todo],
    )
    if module._diff:
        result["diff"] = dict(
            before="%s: %s\n" % (device, existing.describe() if existing is not None else "no impairment"),
            after="%s: %s\n" % (device, wanted.describe() if wanted is not None else "no impairment"),
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
