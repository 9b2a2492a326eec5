#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: sysctl
short_description: Kernel parameters of a lab host's network namespace
description:
  - Sets kernel parameters through C(/proc/sys), in the network namespace the module runs in.
    Networking parameters are per namespace, so on the virtual twin each lab host gets its own.
  - Reads each value first; only differing values are written, so a second run reports no change.
  - Does not persist values in C(/etc/sysctl.d); the lab roles apply them on every converge.
version_added: 0.1.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  settings:
    description: Parameter names (dotted, as C(sysctl) spells them) and their values.
    type: dict
    required: true
attributes:
  check_mode:
    support: full
    description: Reports what would change and changes nothing.
  diff_mode:
    support: full
    description: Shows the state before and after.
"""

EXAMPLES = r"""
- name: Turn the home agent into a router
  mvpn.lab.sysctl:
    settings:
      net.ipv6.conf.all.forwarding: 1
      net.ipv6.conf.eth0.accept_ra: 0
"""

RETURN = r"""
changed_settings:
  description: Parameters that were changed, with their old and new values.
  returned: always
  type: dict
  sample: {"net.ipv6.conf.all.forwarding": {"before": "0", "after": "1"}}
"""

import os

from ansible.module_utils.basic import AnsibleModule


def _path(name):
    # As sysctl(8): "." separates the parts and "/" stands for a "." inside one (eth0/100 is eth0.100).
    return os.path.join("/proc/sys", *[part.replace("/", ".") for part in name.split(".")])


def main():
    module = AnsibleModule(
        argument_spec=dict(settings=dict(type="dict", required=True)), supports_check_mode=True
    )
    changed = {}
    # Check every name before writing any, so a typo changes nothing.
    for name in sorted(module.params["settings"]):
        if not os.path.exists(_path(name)):
            module.fail_json(msg="settings: %s does not exist on this host (no %s)" % (name, _path(name)))
    for name, value in sorted(module.params["settings"].items()):
        path = _path(name)
        with open(path) as fh:
            current = " ".join(fh.read().split())
        wanted = " ".join(str(int(value) if isinstance(value, bool) else value).split())
        if current != wanted:
            changed[name] = dict(before=current, after=wanted)
            if not module.check_mode:
                try:
                    with open(path, "w") as fh:
                        fh.write(wanted)
                except (IOError, OSError) as exc:
                    module.fail_json(msg="settings: cannot set %s to %s: %s" % (name, wanted, exc))
    result = dict(changed=bool(changed), changed_settings=changed)
    if module._diff:
        result["diff"] = dict(
            before="".join("%s = %s\n" % (k, v["before"]) for k, v in sorted(changed.items())),
            after="".join("%s = %s\n" % (k, v["after"]) for k, v in sorted(changed.items())),
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
