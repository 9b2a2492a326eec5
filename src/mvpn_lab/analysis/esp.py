"""ESP decryption for confirming that an encrypted packet carries TCP payload.

Keys come from a file given with ``--keys`` (YAML or JSON). It maps each SPI
(``"0x1000"``, ``"4096"`` or an integer) to its algorithms and keys, written
the way ``ip xfrm state`` takes them::

    "0x00001000":                      # cbc(aes) + hmac(sha1), ICV 96 bits
      enc: {algo: "cbc(aes)", key: "0x00112233445566778899aabbccddeeff"}
      auth: {algo: "hmac(sha1)", key: "0x0123456789abcdef0123456789abcdef01234567"}
    "0x00001001":                      # AES-GCM (RFC 4106): key followed by the 4-byte salt
      aead: {algo: "rfc4106(gcm(aes))", key: "0x00112233445566778899aabbccddeeff01020304", icv_bits: 128}

A flat form is accepted too: ``{enc_algo, enc_key, auth_algo, auth_key}``.
Only ``cbc(aes)`` with ``hmac(sha1)`` (96-bit ICV) or ``hmac(sha256)`` (128-bit
ICV), and ``rfc4106(gcm(aes))`` are supported. Cryptography is done by the
``cryptography`` package. Keys stay in memory: nothing derived from them is
written anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mvpn_lab.errors import LabError

_AUTH = {
    "hmac(sha1)": (hashlib.sha1, 12),
    "hmac(sha256)": (hashlib.sha256, 16),
}
# Next-header values a decrypted ESP trailer may carry: IPv4, TCP, UDP, IPv6, ICMPv6, none, MH.
_NEXT_HEADERS = frozenset((4, 6, 17, 41, 58, 59, 135))
_ENC_CBC = {"cbc(aes)", "aes-cbc", "aes_cbc"}
_AEAD_GCM = {"rfc4106(gcm(aes))", "aes-gcm", "aes_gcm", "gcm(aes)"}


class EspError(Exception):
    """An ESP packet could not be decrypted (bad ICV, bad padding, too short)."""


@dataclass(frozen=True)
class EspKey:
    spi: int
    mode: str  # "cbc" or "gcm"
    enc_key: bytes
    auth_key: bytes = b""
    auth_algo: str = ""
    icv_len: int = 12
    salt: bytes = b""

    def __repr__(self) -> str:  # never show key material
        return f"EspKey(spi=0x{self.spi:08x}, mode={self.mode!r})"


def _hex(value: Any, what: str) -> bytes:
    if isinstance(value, int):
        raise LabError(f"keys file: {what} must be a hex string, not a number")
    text = str(value).strip().lower().replace(":", "").replace(" ", "")
    if text.startswith("0x"):
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise LabError(f"keys file: {what} is not a hex string") from None


def _spi(value: Any) -> int:
    try:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        return int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        raise LabError(f"keys file: {value!r} is not an SPI (use 0x... or a decimal number)") from None


def _part(entry: dict[str, Any], name: str) -> tuple[str, Any]:
    """(algo, key) of the 'enc', 'auth' or 'aead' part, nested or flat."""
    nested = entry.get(name)
    if isinstance(nested, dict):
        return str(nested.get("algo", nested.get("name", ""))).lower(), nested.get("key")
    if isinstance(nested, str) and f"{name}_key" in entry:
        return nested.lower(), entry.get(f"{name}_key")
    return str(entry.get(f"{name}_algo", "")).lower(), entry.get(f"{name}_key")


def parse_keys(data: Any) -> dict[int, EspKey]:
    """Build the SPI -> key table from a loaded YAML/JSON document."""
    if not isinstance(data, dict):
        raise LabError("keys file: expected a mapping of SPI to algorithms and keys")
    keys: dict[int, EspKey] = {}
    for raw_spi, entry in data.items():
        spi = _spi(raw_spi)
        name = f"SPI 0x{spi:08x}"
        if not isinstance(entry, dict):
            raise LabError(f"keys file: {name} should map to enc/auth or aead settings")
        aead_algo, aead_key = _part(entry, "aead")
        enc_algo, enc_key = _part(entry, "enc")
        if aead_algo or (enc_algo in _AEAD_GCM):
            algo = aead_algo or enc_algo
            key = _hex(aead_key if aead_algo else enc_key, f"{name} key")
            if algo not in _AEAD_GCM:
                raise LabError(f"keys file: {name}: AEAD algorithm {algo!r} is not supported")
            if len(key) not in (20, 28, 36):
                raise LabError(
                    f"keys file: {name}: rfc4106(gcm(aes)) key must be an AES key plus a 4-byte salt"
                )
            aead = entry.get("aead")
            nested = aead if isinstance(aead, dict) else entry
            icv_bits = int(nested["icv_bits"] if "icv_bits" in nested else entry.get("icv_bits", 128))
            if icv_bits not in (64, 96, 128):
                raise LabError(f"keys file: {name}: icv_bits must be 64, 96 or 128")
            keys[spi] = EspKey(spi, "gcm", key[:-4], salt=key[-4:], icv_len=icv_bits // 8)
            continue
        if enc_algo not in _ENC_CBC:
            raise LabError(f"keys file: {name}: encryption {enc_algo or '(none)'!r} is not supported")
        ekey = _hex(enc_key, f"{name} enc key")
        if len(ekey) not in (16, 24, 32):
            raise LabError(f"keys file: {name}: cbc(aes) key must be 16, 24 or 32 bytes")
        auth_algo, auth_key = _part(entry, "auth")
        if auth_algo not in _AUTH:
            raise LabError(f"keys file: {name}: authentication {auth_algo or '(none)'!r} is not supported")
        auth = entry.get("auth")
        nested_auth = auth if isinstance(auth, dict) else {}
        icv_len = _AUTH[auth_algo][1]
        if "trunc_bits" in nested_auth:
            icv_len = int(nested_auth["trunc_bits"]) // 8
        keys[spi] = EspKey(spi, "cbc", ekey, _hex(auth_key, f"{name} auth key"), auth_algo, icv_len)
    return keys


def load_keys(path: Path | str) -> dict[int, EspKey]:
    """Read a keys file; raise LabError (exit 2) with one clear line if it is unusable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabError(f"cannot read keys file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LabError(f"keys file {path} is not valid YAML/JSON: {first}") from None
    return parse_keys(data)


def decrypt(key: EspKey, esp: bytes) -> tuple[int, bytes]:
    """Authenticate and decrypt one ESP packet (from its SPI to its ICV).

    Returns ``(next header, payload)`` where payload is the protected packet
    without ESP padding: a TCP segment in transport mode, an IPv6 packet in
    tunnel mode.
    """
    if key.mode == "gcm":
        iv_len = 8
        if len(esp) < 8 + iv_len + 2 + key.icv_len:
            raise EspError("ESP packet too short")
        iv = esp[8:16]
        body = esp[16 : len(esp) - key.icv_len]
        tag = esp[len(esp) - key.icv_len :]
        gcm = Cipher(
            algorithms.AES(key.enc_key), modes.GCM(key.salt + iv, tag, min_tag_length=key.icv_len)
        ).decryptor()
        gcm.authenticate_additional_data(esp[:8])
        try:
            plain = gcm.update(body) + gcm.finalize()
        except InvalidTag:
            raise EspError("ICV check failed (wrong key?)") from None
    else:
        iv_len = 16
        if len(esp) < 8 + iv_len + 16 + key.icv_len:
            raise EspError("ESP packet too short")
        digest, _ = _AUTH[key.auth_algo]
        icv = esp[len(esp) - key.icv_len :]
        signed = esp[: len(esp) - key.icv_len]
        expect = hmac.new(key.auth_key, signed, digest).digest()[: key.icv_len]
        if not hmac.compare_digest(expect, icv):
            raise EspError("ICV check failed (wrong key?)")
        body = signed[8 + iv_len :]
        if len(body) % 16:
            raise EspError("ciphertext is not a whole number of AES blocks")
        cbc = Cipher(algorithms.AES(key.enc_key), modes.CBC(signed[8:24])).decryptor()
        plain = cbc.update(body) + cbc.finalize()
    if len(plain) < 2:
        raise EspError("decrypted payload too short")
    pad_len = plain[-2]
    next_header = plain[-1]
    if pad_len + 2 > len(plain):
        raise EspError("bad ESP padding length (wrong encryption key?)")
    # RFC 4303, 2.4: the default padding is 1, 2, 3, ...; Linux and scapy use it. A wrong
    # encryption key (with a right authentication key) shows up here.
    padding = plain[len(plain) - 2 - pad_len : len(plain) - 2]
    if padding != bytes(range(1, pad_len + 1)) or next_header not in _NEXT_HEADERS:
        raise EspError("decrypted trailer is not valid (wrong encryption key?)")
    return next_header, plain[: len(plain) - 2 - pad_len]
