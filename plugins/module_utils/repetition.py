# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pass rule of a handover test's repetition, from its events.json.

One rule for both readers: the ``run_folder`` module writes ``outcome.json`` with it, and the
experiment runner (``mvpn-lab run``) loads this file to judge each repetition live and when a
playbook stopped before ``outcome.json``. Plain Python, no Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def truthy(value):
    """A boolean from JSON, also when a template wrote it as a string ("True", "false")."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return bool(value)


def one_line(text):
    return " ".join(str(text).split())


def _part(events, key, kind):
    value = events.get(key)
    return value if isinstance(value, kind) else kind()


def verdict(events):
    """What events.json says of its repetition.

    A repetition passes when every lab host took part (none in ``hosts_absent``) and answered (none
    in ``hosts_down``), no task failed (``errors``), every handover happened and the transfer
    completed with the right sha256. Returns a dict: ``passed``,
    ``transfer`` (its status), ``sha256_ok``, ``handovers_ok`` and ``reason`` (None when it passed,
    else one line naming each failure, separated by "; ").
    """
    events = events if isinstance(events, dict) else {}
    transfer = _part(events, "transfer", dict)
    hosts_down = _part(events, "hosts_down", list)
    status = transfer.get("status") or "unknown"
    sha256_ok = truthy(transfer.get("sha256_ok", False))
    reasons = []
    if hosts_down:
        names = ", ".join(str(h) for h in hosts_down)
        reasons.append("host%s %s down (no answer)" % ("s" if len(hosts_down) > 1 else "", names))
    absent = _part(events, "hosts_absent", list)
    if absent:
        names = ", ".join(str(h) for h in absent)
        plural = "s" if len(absent) > 1 else ""
        reasons.append("host%s %s took no part (failed before this repetition)" % (plural, names))
    reasons.extend(one_line(error) for error in _part(events, "errors", list) if error)
    handovers_ok = True
    for number, handover in enumerate(_part(events, "handovers", list), 1):
        handover = handover if isinstance(handover, dict) else {}
        if truthy(handover.get("ok", False)):
            continue
        handovers_ok = False
        target = "to %s" % handover["to_ssid"] if handover.get("to_ssid") else "%d" % number
        error = handover.get("error")
        reasons.append("handover %s failed%s" % (target, ": %s" % one_line(error) if error else ""))
    if status != "completed":
        error = transfer.get("error")
        reasons.append("transfer %s%s" % (status, ": %s" % one_line(error) if error else ""))
    elif not sha256_ok:
        reasons.append("sha256 mismatch")
    return {
        "passed": not reasons,
        "transfer": status,
        "sha256_ok": sha256_ok,
        "handovers_ok": handovers_ok,
        "reason": "; ".join(reasons) if reasons else None,
    }
