"""ESP keys file and decryption, checked against scapy's independent ESP implementation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from analysis_builder import CBC_AUTH, CBC_KEY, CN, GCM_KEY, HOA
from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation

from mvpn_lab.analysis.esp import EspError, decrypt, load_keys, parse_keys
from mvpn_lab.errors import LabError

SEGMENT = TCP(sport=80, dport=40000, seq=1, ack=2, flags="PA") / (b"secret payload " * 5)


def _encrypt(algo: str, tunnel: bool = False) -> bytes:
    header = IPv6(src=CN, dst=HOA) if tunnel else None
    if algo == "gcm":
        sa = SecurityAssociation(
            ESP, spi=0x2001, crypt_algo="AES-GCM", crypt_key=GCM_KEY, auth_algo="NULL", tunnel_header=header
        )
    else:
        sa = SecurityAssociation(
            ESP,
            spi=0x2001,
            crypt_algo="AES-CBC",
            crypt_key=CBC_KEY,
            auth_algo="HMAC-SHA1-96",
            auth_key=CBC_AUTH,
            tunnel_header=header,
        )
    if tunnel:
        inner = IPv6(src="fec0:0:0:1000::10", dst="fec0:0:0:2000::20") / SEGMENT
    else:
        inner = IPv6(src=CN, dst=HOA) / SEGMENT
    return bytes(sa.encrypt(inner)[ESP])


CBC_DOC = {
    "0x00002001": {
        "enc": {"algo": "cbc(aes)", "key": "0x" + CBC_KEY.hex()},
        "auth": {"algo": "hmac(sha1)", "key": "0x" + CBC_AUTH.hex()},
    }
}
GCM_DOC = {"8193": {"aead": {"algo": "rfc4106(gcm(aes))", "key": GCM_KEY.hex(), "icv_bits": 128}}}


@pytest.mark.parametrize(("algo", "doc"), [("cbc", CBC_DOC), ("gcm", GCM_DOC)])
def test_transport_mode_decrypts_to_the_tcp_segment(algo: str, doc: dict) -> None:  # type: ignore[type-arg]
    keys = parse_keys(doc)
    next_header, payload = decrypt(keys[0x2001], _encrypt(algo))
    assert next_header == 6
    assert payload == bytes(IPv6(src=CN, dst=HOA) / SEGMENT)[40:]


@pytest.mark.parametrize(("algo", "doc"), [("cbc", CBC_DOC), ("gcm", GCM_DOC)])
def test_tunnel_mode_decrypts_to_the_inner_packet(algo: str, doc: dict) -> None:  # type: ignore[type-arg]
    next_header, payload = decrypt(parse_keys(doc)[0x2001], _encrypt(algo, tunnel=True))
    assert next_header == 41
    inner = IPv6(payload)
    assert inner.src == "fec0:0:0:1000::10"
    assert bytes(inner[TCP].payload) == bytes(SEGMENT.payload)


def test_hmac_sha256_variant() -> None:
    sa = SecurityAssociation(
        ESP, spi=0x2001, crypt_algo="AES-CBC", crypt_key=CBC_KEY, auth_algo="SHA2-256-128", auth_key=CBC_AUTH
    )
    esp = bytes(sa.encrypt(IPv6(src=CN, dst=HOA) / SEGMENT)[ESP])
    doc = {
        "0x2001": {
            "enc": {"algo": "cbc(aes)", "key": CBC_KEY.hex()},
            "auth": {"algo": "hmac(sha256)", "key": CBC_AUTH.hex()},
        }
    }
    next_header, payload = decrypt(parse_keys(doc)[0x2001], esp)
    assert next_header == 6 and payload.endswith(bytes(SEGMENT.payload))


def test_wrong_key_fails_authentication() -> None:
    doc = {
        "0x2001": {
            "enc_algo": "cbc(aes)",
            "enc_key": "00" * 16,
            "auth_algo": "hmac(sha1)",
            "auth_key": "11" * 20,
        }
    }
    with pytest.raises(EspError, match="ICV"):
        decrypt(parse_keys(doc)[0x2001], _encrypt("cbc"))
    bad_gcm = parse_keys({"0x2001": {"aead": {"algo": "rfc4106(gcm(aes))", "key": "22" * 20}}})
    with pytest.raises(EspError, match="ICV"):
        decrypt(bad_gcm[0x2001], _encrypt("gcm"))
    with pytest.raises(EspError):
        decrypt(parse_keys(CBC_DOC)[0x2001], b"\0" * 20)


def test_load_keys_from_yaml_and_json_and_never_show_keys(tmp_path: Path) -> None:
    y = tmp_path / "keys.yaml"
    y.write_text(yaml.safe_dump(CBC_DOC))
    j = tmp_path / "keys.json"
    j.write_text(json.dumps(GCM_DOC))
    keys = {**load_keys(y), **{k + 1: v for k, v in load_keys(j).items()}}
    assert set(keys) == {0x2001, 0x2002}
    assert CBC_KEY.hex() not in repr(keys)


@pytest.mark.parametrize(
    "content",
    [
        "just a string",
        "{0x1: {enc: {algo: 'des', key: '00'}}}",
        "{0x1: {enc: {algo: 'cbc(aes)', key: 'zz'}, auth: {algo: 'hmac(sha1)', key: '00'}}}",
        "{0x1: {enc: {algo: 'cbc(aes)', key: '0011'}, auth: {algo: 'hmac(sha1)', key: '00'}}}",
        "{nonsense-spi: {aead: {algo: 'rfc4106(gcm(aes))', key: '00'}}}",
        "[unclosed",
    ],
)
def test_bad_keys_files_are_one_line_errors(tmp_path: Path, content: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(content)
    with pytest.raises(LabError) as err:
        load_keys(path)
    assert err.value.exit_code == 2
    assert "\n" not in str(err.value)


def test_missing_keys_file(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="cannot read keys file"):
        load_keys(tmp_path / "absent.yaml")
