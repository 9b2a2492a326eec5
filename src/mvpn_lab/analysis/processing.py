"""The Mobile IPv6 daemons' own processing time beside each handover's phases.

The daemon logs an ``answer`` line for every Mobility Header message it sends (docs/mip6.md,
"Processing times"); the handover tests fetch the logs into ``<run>/daemon/`` and
:func:`~ansible_collections.mvpn.lab.plugins.module_utils.runfolder.read_answers` reads them.
Here each handover gets, from its own time window (its ``t0`` to the next handover's, or
:data:`LAST_WINDOW_S` after the last), the first BU the mobile node sent and the first BA the
home agent sent:

* ``processing_ms``, ``kernel_ms``, ``kernel_commands``, ``trigger``: as the daemon logged them;
* for the MN's BU, ``since_link_up_ms`` when the daemon logged it (the first BU to the home agent
  after a link-up: the time from the wake-up that read the link-up; with ``l2`` detection the
  handover's whole work in the daemon, where ``processing_ms`` counts from the last wake-up only);
* ``sent_s``: when the daemon logged the send, in seconds after ``t0``;
* for the MN's BU, ``capture_s``: when the MN's capture saw the first BU to the home agent (the
  ``bu_ha`` milestone), so a reader sees whether log and capture tell the same story.

Times on one host's clock: the MN's daemon and the MN's capture share it everywhere; the home
agent's ``sent_s`` compares with the MN's clock only on the twin (one kernel) or with the lab's
clocks synchronised (chrony, docs/hardware.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from statistics import median
from typing import Any

#: seconds after the last handover's t0 in which its answers are looked for
LAST_WINDOW_S = 60.0

#: (key in a handover's "daemon" view, role of the node, message it sent)
ANSWERS = (("mn_bu", "mn", "BU"), ("ha_ba", "ha", "BA"))


def _first(
    answers: Sequence[dict[str, Any]], role: str, message: str, start: float, end: float, dst: str | None
) -> dict[str, Any] | None:
    for answer in answers:
        if answer["role"] != role or answer["message"] != message or not start <= answer["epoch"] < end:
            continue
        if dst is None or _same_address(answer["dst"], dst):
            return answer
    return None


def _same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.IPv6Address(a) == ipaddress.IPv6Address(b)
    except ValueError:
        return a == b


def daemon_views(
    t0s: Sequence[float | None],
    answers: Sequence[dict[str, Any]],
    bu_capture_s: Sequence[float | None],
    home_agent: str | None = None,
) -> list[dict[str, Any]]:
    """One view per handover (``t0s`` in order, None for a handover without a start time): the MN's
    first BU to ``home_agent`` (any BU when None) and the HA's first BA in its window, as the
    module's doc says; ``{}`` when the daemons logged none (a run folder from before the daemon
    timed its answers)."""
    views: list[dict[str, Any]] = []
    for i, t0 in enumerate(t0s):
        view: dict[str, Any] = {}
        if t0 is not None:
            later = [t for t in t0s[i + 1 :] if t is not None]
            end = later[0] if later else t0 + LAST_WINDOW_S
            for key, role, message in ANSWERS:
                answer = _first(answers, role, message, t0, end, home_agent if role == "mn" else None)
                if answer is None:
                    continue
                entry = {
                    "processing_ms": answer["processing_ms"],
                    "kernel_ms": answer["kernel_ms"],
                    "kernel_commands": answer["kernel_commands"],
                    "trigger": answer["trigger"],
                    "sent_s": answer["epoch"] - t0,
                }
                if role == "mn":
                    entry["capture_s"] = bu_capture_s[i]
                    if "since_link_up_ms" in answer:  # (read_answers kept it only as a number)
                        entry["since_link_up_ms"] = answer["since_link_up_ms"]
                view[key] = entry
        views.append(view)
    return views


def medians(views: Iterable[dict[str, Any]], field: str = "processing_ms") -> dict[str, float | None]:
    """Median ``field`` (``processing_ms``, ``kernel_ms``, ``since_link_up_ms``...) of each kind of
    answer over ``views`` (None: none logged it)."""
    found: dict[str, list[float]] = {key: [] for key, _, _ in ANSWERS}
    for view in views:
        for key in found:
            if field in view.get(key, {}):
                found[key].append(float(view[key][field]))
    return {key: (median(values) if values else None) for key, values in found.items()}
