# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that shape test results for the run folder."""

from __future__ import annotations


def kv_lines(lines):
    """``["kernel=6.1.0", "radvd=2.19"]`` -> ``{"kernel": "6.1.0", "radvd": "2.19"}``."""
    result = {}
    for line in lines or []:
        key, sep, value = str(line).partition("=")
        if sep and key.strip():
            result[key.strip()] = value.strip()
    return result


class FilterModule:
    def filters(self):
        return {"kv_lines": kv_lines}
