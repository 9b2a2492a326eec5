"""The run-folder filters: kv_lines and with_esp_spis (SPIs only, never keys)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.mvpn.lab.plugins.filter import results as r

KEYS = {
    "cn_to_mn": {"spi": "0x00001001", "aead_key": "aa" * 20},
    "mn_to_cn": {"spi": 4098, "aead_key": "bb" * 20},
    "cn_to_mn_tunnel": {"spi": "0x1003", "aead_key": "cc" * 20},
    "mn_to_cn_tunnel": {"spi": "0x1004", "aead_key": "dd" * 20},
    "mn_to_ha": {"spi": "0x1005", "aead_key": "ee" * 20},
    "ha_to_mn": {"spi": "0x1006", "aead_key": "ff" * 20},
}


def test_kv_lines():
    assert r.kv_lines(["kernel=6.1.0", "bad", " radvd = 2.19 "]) == {"kernel": "6.1.0", "radvd": "2.19"}


def test_esp_spis_per_mode_and_no_key_material():
    confs = [{"id": "a", "ipsec": "none"}, {"id": "b", "ipsec": "transport"}, {"id": "c", "ipsec": "tunnel"}]
    out = r.with_esp_spis(confs, KEYS)
    assert "esp_spis" not in out[0]
    assert out[1]["esp_spis"] == ["0x00001001", "0x00001002"]
    assert out[2]["esp_spis"] == ["0x00001003", "0x00001004"]
    assert "aa" * 20 not in repr(out) and "key" not in repr(out)
    assert "esp_spis" not in confs[1]  # input untouched
    assert all("signalling_spis" not in c for c in out)


def test_signalling_spis_when_signalling_is_on():
    out = r.with_esp_spis([{"id": "a", "ipsec": "none", "signalling": True}], KEYS)
    assert out[0]["signalling_spis"] == {"bu": "0x00001005", "ba": "0x00001006"}
    assert "esp_spis" not in out[0]
    with pytest.raises(AnsibleFilterError, match=r"mvpn_ipsec_keys\.mn_to_ha\.spi: missing"):
        r.with_esp_spis([{"id": "a", "ipsec": "none", "signalling": True}], {})


def test_esp_spis_missing_spi_names_the_field():
    with pytest.raises(AnsibleFilterError, match=r"mvpn_ipsec_keys\.mn_to_cn_tunnel\.spi: missing"):
        r.with_esp_spis([{"id": "c", "ipsec": "tunnel"}], {"cn_to_mn_tunnel": {"spi": 1}})


def test_esp_spis_bad_spi():
    with pytest.raises(AnsibleFilterError, match=r"mvpn_ipsec_keys\.cn_to_mn\.spi: expected"):
        r.with_esp_spis([{"id": "b", "ipsec": "transport"}], {**KEYS, "cn_to_mn": {"spi": "zz"}})
