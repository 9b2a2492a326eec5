# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small helpers for modules that read and change the kernel's network state with iproute2."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json


def ip_json(module, args):
    """Run ``ip -j ARGS`` and return the decoded JSON (an empty list when ip prints nothing)."""
    rc, out, err = module.run_command(["ip", "-j"] + list(args))
    if rc != 0:
        module.fail_json(msg="ip -j %s failed: %s" % (" ".join(args), (err or out).strip()))
    out = (out or "").strip()
    if not out:
        return []
    try:
        return json.loads(out)
    except ValueError:
        module.fail_json(msg="ip -j %s printed something that is not JSON" % " ".join(args))


def ip_run(module, args):
    """Run ``ip ARGS``, failing the module with ip's own message on error."""
    rc, out, err = module.run_command(["ip"] + list(args))
    if rc != 0:
        module.fail_json(msg="ip %s failed: %s" % (" ".join(args), (err or out).strip()))
    return out


def link_names(module):
    return [link.get("ifname") for link in ip_json(module, ["link", "show"])]
