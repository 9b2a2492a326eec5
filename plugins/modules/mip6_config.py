#!/usr/bin/python
# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mip6_config
short_description: Check, write and reload the configuration of the lab's Mobile IPv6 daemon
description:
  - Writes O(content) to O(dest) when the file differs, after the daemon has checked it, and with
    O(reload=true) makes the running daemon take it, all in one module run on the host.
  - The check is the daemon's own. When a daemon answers on O(socket), it checks the new file with
    the code it reloads with (control command C(check PATH)), so no new Python process starts on the
    host. When none answers (the daemon is stopped or not installed yet), or it is an older daemon
    without that command, the module runs C(O(python) O(bundle) mip6 check-config) instead. A file
    the check refuses is never put in place; the task fails with the check's one-line reason,
    prefixed with C(content:).
  - With O(reload=true) and a changed file, a running daemon reloads it in its running process,
    as O(mvpn.lab.mip6_control#module:command=reload) of M(mvpn.lab.mip6_control) does, and the
    module returns once the new generation answers. When no daemon answers and O(start_unit) is
    given, that unit is started instead.
  - One module run replaces the template task, its check process and the reload handler's module
    run. On the virtual twin, where every remote Python start costs about half a second, that was
    measured at 1.0 to 1.3 s less per configuration change (docs/virtual-twin.md).
version_added: 0.2.0
author:
  - mvpn-lab developers (@mvpn-lab)
options:
  dest:
    description: The daemon's configuration file.
    type: path
    required: true
  content:
    description: The whole file (YAML, as the P(mvpn.lab.mip6#role) role renders it).
    type: str
    required: true
  mode:
    description:
      - Permissions of O(dest), octal (V(0644)) or symbolic (V(u=rw,go=r)), as
        M(ansible.builtin.copy) takes them.
    type: str
    default: "0644"
  socket:
    description: The daemon's control socket (C(control_socket) in its configuration file).
    type: path
    required: true
  bundle:
    description: The daemon's bundle on the host, for the check when no daemon answers on O(socket).
    type: path
    required: true
  check_with:
    description:
      - V(daemon) asks the running daemon and runs O(bundle)'s C(check-config) only when none
        answers. V(bundle) always runs O(bundle)'s C(check-config), for a new bundle that the
        running daemon does not run yet and whose rules may differ from the running daemon's.
    type: str
    choices: [daemon, bundle]
    default: daemon
  python:
    description: The interpreter that runs O(bundle).
    type: str
    default: /usr/bin/python3
  reload:
    description: Make a running daemon take a changed file (or start O(start_unit) when none answers).
    type: bool
    default: true
  start_unit:
    description:
      - With O(reload=true), the daemon's systemd unit, started when no daemon answers on O(socket).
        Without it, the new file waits for the daemon's next start.
    type: str
  timeout:
    description: Seconds to wait for the daemon's answers, and for its new generation after a reload.
    type: float
    default: 30
attributes:
  check_mode:
    support: full
    description: Compares O(dest) with O(content) and reports a change; nothing is checked, written or
      reloaded.
  diff_mode:
    support: full
    description: The file before and after.
"""

EXAMPLES = r"""
- name: The mobile node's configuration for the next test configuration, checked, in place and reloaded
  mvpn.lab.mip6_config:
    dest: /etc/mvpn-lab/mn/mip6.yml
    content: "{{ lookup('ansible.builtin.template', 'mip6.yml.j2') }}"
    socket: /run/mvpn-lab/mn/mip6/mip6.sock
    bundle: /opt/mvpn-lab/mn/mvpn-lab-mip6.pyz
    start_unit: mvpn-mip6@mn.service

- name: Only write the file (a handler reloads later)
  mvpn.lab.mip6_config:
    dest: /etc/mvpn-lab/ha/mip6.yml
    content: "{{ ha_config }}"
    socket: /run/mvpn-lab/ha/mip6/mip6.sock
    bundle: /opt/mvpn-lab/ha/mvpn-lab-mip6.pyz
    reload: false
"""

RETURN = r"""
checked_by:
  description: What checked the new file, C(daemon) (the running daemon) or C(check-config) (a new process).
  returned: when the file changed and not in check mode
  type: str
  sample: daemon
reloaded:
  description: True when a running daemon took the new file.
  returned: always
  type: bool
  sample: true
started:
  description: True when no daemon answered and O(start_unit) was started.
  returned: always
  type: bool
  sample: false
before:
  description: Process id and generation of the daemon that took the reload.
  returned: when RV(reloaded=true)
  type: dict
  sample: {"pid": 812, "generation": 1}
after:
  description: Process id and generation of the daemon that answered after the reload.
  returned: when RV(reloaded=true)
  type: dict
  sample: {"pid": 812, "generation": 2}
seconds:
  description: Seconds from the reload command to the new generation's first answer.
  returned: when RV(reloaded=true)
  type: float
  sample: 0.31
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible_collections.mvpn.lab.plugins.module_utils.mip6control import ControlError, check, query, reload


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _answering(socket_path, timeout):
    try:
        return query(socket_path, "ping", min(timeout, 5.0)).get("ok") is True
    except ControlError:
        return False


def _check(module, p, candidate, answering):
    """'daemon' or 'check-config' when the candidate file passed; fails the module otherwise."""
    if answering and p["check_with"] == "daemon":
        try:
            check(p["socket"], candidate, min(p["timeout"], 5.0))
            return "daemon"
        except ControlError as exc:
            # an older daemon answers "unknown command 'check PATH'": the process checks it then
            if "unknown command 'check" not in str(exc):
                raise ValueError("content: %s" % str(exc).split(": ", 1)[-1]) from None
    rc, out, err = module.run_command([p["python"], p["bundle"], "mip6", "check-config", candidate])
    if rc != 0:
        lines = [line for line in (err or out or "").splitlines() if line.strip()]
        raise ValueError("content: %s" % (lines[-1] if lines else "check-config exited %d" % rc))
    return "check-config"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            content=dict(type="str", required=True),
            mode=dict(type="str", default="0644"),
            socket=dict(type="path", required=True),
            bundle=dict(type="path", required=True),
            check_with=dict(type="str", choices=["daemon", "bundle"], default="daemon"),
            python=dict(type="str", default="/usr/bin/python3"),
            reload=dict(type="bool", default=True),
            start_unit=dict(type="str"),
            timeout=dict(type="float", default=30.0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = dict(changed=False, reloaded=False, started=False)
    try:
        if not p["timeout"] > 0:
            raise ValueError("timeout: expected a number of seconds > 0, got %s" % p["timeout"])
        wanted = to_bytes(p["content"], errors="surrogate_or_strict")
        old = _read(p["dest"])
        if module._diff:
            result["diff"] = dict(
                before="" if old is None else to_text(old, errors="surrogate_or_replace"),
                after=p["content"],
                before_header=p["dest"],
                after_header=p["dest"],
            )
        if old == wanted:  # ansible-core's helper: octal or symbolic modes, check mode, one-line errors
            result["changed"] = module.set_mode_if_different(p["dest"], p["mode"], False)
            module.exit_json(**result)
        result["changed"] = True
        if module.check_mode:
            module.exit_json(**result)
        folder = os.path.dirname(p["dest"]) or "."
        if not os.path.isdir(folder):
            raise ValueError("dest: the folder %s does not exist" % folder)
        answering = _answering(p["socket"], p["timeout"])
        fd, candidate = tempfile.mkstemp(prefix=".%s." % os.path.basename(p["dest"]), dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(wanted)
            module.set_mode_if_different(candidate, p["mode"], False)  # a bad mode fails before the check
            result["checked_by"] = _check(module, p, candidate, answering)
            module.atomic_move(candidate, p["dest"])
            module.set_mode_if_different(p["dest"], p["mode"], False)  # atomic_move keeps an old file's
        finally:
            if os.path.exists(candidate):
                os.unlink(candidate)
        if p["reload"]:
            if answering:
                result.update(reload(p["socket"], p["timeout"]), reloaded=True)
            elif p["start_unit"]:  # Type=notify: systemctl returns once the socket listens
                module.run_command(["systemctl", "start", "--", p["start_unit"]], check_rc=True)
                result["started"] = True
    except ValueError as exc:
        module.fail_json(msg=str(exc), **result)
    except ControlError as exc:
        module.fail_json(msg="socket: %s" % exc, **result)
    except OSError as exc:
        module.fail_json(msg="dest: %s: %s" % (p["dest"], exc.strerror or exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
