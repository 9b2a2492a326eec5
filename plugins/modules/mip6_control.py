#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mip6_control
short_description: Ask the lab's Mobile IPv6 daemon for its status, or make it reload its configuration
description:
  - Talks to the control socket of a running mvpn-lab Mobile IPv6 daemon (C(mvpn-lab mip6 run),
    deployed by the P(mvpn.lab.mip6#role) role).
  - With O(command=reload) the daemon reads its configuration file again. It refuses an invalid file
    (the module fails with the daemon's one-line reason and the running configuration stays); a valid
    one stops the daemon as C(systemctl stop) would (the mobile node de-registers when away, the
    kernel entries are removed) and starts it with the new file in the same process, under the next
    generation number. The module returns once the new generation answers on the socket.
  - A reload saves the new interpreter and its imports that a restart costs, seconds per change
    under the virtual twin's emulated CPU; the role's handler uses it when only the configuration
    file changed, and restarts the service when the daemon's bundle or unit changed.
  - With O(command=status) the module returns the daemon's status (binding cache or binding update
    list, counters) and changes nothing.
version_added: 0.2.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  socket:
    description: The daemon's control socket (C(control_socket) in its configuration file).
    type: path
    required: true
  command:
    description: What to ask.
    type: str
    choices: [status, reload]
    default: status
  timeout:
    description: Seconds to wait for the daemon's answer, and with O(command=reload) for its new generation.
    type: float
    default: 30
  start_unit:
    description:
      - With O(command=reload), the daemon's systemd unit. When no daemon answers on O(socket) (it was
        stopped, or it failed), the module starts this unit instead, which reads the new file as it
        starts, and returns RV(started=true). Without it, a daemon that does not answer fails the task.
    type: str
attributes:
  check_mode:
    support: full
    description: A reload asks the daemon for its pid only and reports a change; the status is asked as usual.
  diff_mode:
    support: none
    description: No diff is returned.
"""

EXAMPLES = r"""
- name: Apply the mobile node's new configuration file
  mvpn.lab.mip6_control:
    socket: /run/mvpn-lab/mn/mip6/mip6.sock
    command: reload

- name: Read the home agent's binding cache
  mvpn.lab.mip6_control:
    socket: /run/mvpn-lab/ha/mip6/mip6.sock
  register: ha_status
"""

RETURN = r"""
status:
  description: The daemon's status (O(command=status)).
  returned: when O(command=status)
  type: dict
  sample: {"role": "ha", "bindings": [], "daemon": {"pid": 812, "generation": 2}}
before:
  description: Process id and generation of the daemon that took the reload.
  returned: when O(command=reload) and not in check mode
  type: dict
  sample: {"pid": 812, "generation": 1}
after:
  description: Process id and generation of the daemon that answered after the reload.
  returned: when O(command=reload) and not in check mode
  type: dict
  sample: {"pid": 812, "generation": 2}
seconds:
  description: Seconds from the reload command to the new generation's first answer.
  returned: when O(command=reload) and not in check mode
  type: float
  sample: 0.84
started:
  description: True when no daemon answered and O(start_unit) was started instead of a reload.
  returned: when O(command=reload)
  type: bool
  sample: false
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mvpn.lab.plugins.module_utils.mip6control import ControlError, query, reload


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="path", required=True),
            command=dict(type="str", choices=["status", "reload"], default="status"),
            timeout=dict(type="float", default=30.0),
            start_unit=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["timeout"] > 0:
        module.fail_json(msg="timeout: expected a number of seconds > 0, got %s" % p["timeout"])
    try:
        if p["command"] == "status":
            module.exit_json(changed=False, status=query(p["socket"], "status", p["timeout"]))
        try:
            query(p["socket"], "ping", p["timeout"])
        except ControlError:
            if not p["start_unit"]:
                raise
            if not module.check_mode:  # Type=notify: systemctl returns once the socket listens
                module.run_command(["systemctl", "start", "--", p["start_unit"]], check_rc=True)
            module.exit_json(changed=True, started=True)
        if module.check_mode:
            module.exit_json(changed=True, started=False)
        module.exit_json(changed=True, started=False, **reload(p["socket"], p["timeout"]))
    except ControlError as exc:
        module.fail_json(msg="socket: %s" % exc)


if __name__ == "__main__":
    main()
