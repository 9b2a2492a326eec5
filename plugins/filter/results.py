# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that shape test results for the run folder."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def kv_lines(lines):
    """``["kernel=6.1.0", "radvd=2.19"]`` -> ``{"kernel": "6.1.0", "radvd": "2.19"}``."""
    result = {}
    for line in lines or []:
        key, sep, value = str(line).partition("=")
        if sep and key.strip():
            result[key.strip()] = value.strip()
    return result


# The SAs that carry a configuration's data, by IPsec mode (names as in mvpn_ipsec_keys).
DATA_SAS = {
    "transport": ("cn_to_mn", "mn_to_cn"),
    "tunnel": ("cn_to_mn_tunnel", "mn_to_cn_tunnel"),
}


def _spi_of(keys, name, config):
    entry = (keys or {}).get(name) if isinstance(keys, dict) else None
    spi = entry.get("spi") if isinstance(entry, dict) else None
    if spi is None:
        raise AnsibleFilterError(
            "mvpn_ipsec_keys.%s.spi: missing (configuration %s uses it)" % (name, config.get("id"))
        )
    try:
        value = int(spi, 16) if isinstance(spi, str) else int(spi)
    except (TypeError, ValueError):
        raise AnsibleFilterError(
            "mvpn_ipsec_keys.%s.spi: expected an integer or a 0x... hex string" % name
        ) from None
    return "0x%08x" % value


def with_esp_spis(configurations, keys):
    """Each configuration with ``esp_spis`` (hex strings) when its ``ipsec`` mode has data SAs, and
    ``signalling_spis`` (``bu``, ``ba``) when its ``signalling`` is on (the SAs of the MN's Binding
    Updates to the HA and of the HA's Binding Acknowledgements).

    Only the SPIs are read from ``keys`` (mvpn_ipsec_keys); they are not secret, the keys are and
    never leave this filter.
    """
    out = []
    for config in configurations or []:
        config = dict(config)
        names = DATA_SAS.get(str(config.get("ipsec", "none")))
        if names:
            config["esp_spis"] = [_spi_of(keys, name, config) for name in names]
        if config.get("signalling") in (True, "true", "True", "yes"):
            config["signalling_spis"] = {
                "bu": _spi_of(keys, "mn_to_ha", config),
                "ba": _spi_of(keys, "ha_to_mn", config),
            }
        out.append(config)
    return out


class FilterModule:
    def filters(self):
        return {"kv_lines": kv_lines, "with_esp_spis": with_esp_spis}
