"""Return routability crypto, checked against the `cryptography` package's HMAC/SHA-1."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, hmac

from mvpn_lab.mip6.core.rr import (
    NonceTable,
    authenticated_mh_data,
    authenticator,
    binding_management_key,
    careof_keygen_token,
    home_keygen_token,
    keygen_token,
    sign,
    verify,
)
from mvpn_lab.mip6.wire.constants import MAX_NONCE_LIFETIME, MAX_TOKEN_LIFETIME
from mvpn_lab.mip6.wire.messages import (
    BindingAcknowledgement,
    BindingAuthorizationData,
    BindingUpdate,
    NonceIndices,
    PadN,
    decode_mh,
    encode_mh,
    find_option,
)

from ._helpers import CN, COA1, HOA, DetRandom

KCN = bytes(range(20))
NONCE = b"\x10\x20\x30\x40\x50\x60\x70\x80"


def _hmac_sha1(key: bytes, data: bytes) -> bytes:
    h = hmac.HMAC(key, hashes.SHA1())
    h.update(data)
    return h.finalize()


def _sha1(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA1())
    h.update(data)
    return h.finalize()


def test_keygen_tokens_follow_rfc_formula():
    home = home_keygen_token(KCN, HOA, NONCE)
    careof = careof_keygen_token(KCN, COA1, NONCE)
    assert home == _hmac_sha1(KCN, HOA.packed + NONCE + b"\x00")[:8]
    assert careof == _hmac_sha1(KCN, COA1.packed + NONCE + b"\x01")[:8]
    # The trailing octet separates the two tokens even for the same address.
    assert keygen_token(KCN, HOA, NONCE, 0) != keygen_token(KCN, HOA, NONCE, 1)
    assert home_keygen_token(KCN, HOA, NONCE[:-1] + b"\x81") != home
    with pytest.raises(ValueError):
        keygen_token(KCN, HOA, NONCE, 2)


def test_kbm_registration_and_deregistration():
    h, c = b"H" * 8, b"C" * 8
    assert binding_management_key(h, c) == _sha1(h + c)
    assert binding_management_key(h) == _sha1(h)
    assert len(binding_management_key(h, c)) == 20


def test_sign_matches_independent_authenticator():
    kbm = binding_management_key(b"H" * 8, b"C" * 8)
    bu = sign(BindingUpdate(seq=5, lifetime=105, ack=True, options=(NonceIndices(1, 2),)), kbm, COA1, CN)
    bad = find_option(bu, BindingAuthorizationData)
    assert bu.options[-1] is bad and len(bad.authenticator) == 12
    raw = encode_mh(bu, src=HOA, dst=CN)  # with a real checksum, as sent
    assert raw[-14:-12] == b"\x05\x0c"  # BAD option is last, with no padding after it
    mh_data = raw[:4] + b"\0\0" + raw[6:-12]
    assert bad.authenticator == _hmac_sha1(kbm, COA1.packed + CN.packed + mh_data)[:12]
    assert authenticated_mh_data(raw) == mh_data
    assert verify(raw, kbm, COA1, CN)


def test_verify_rejects_any_tampering_except_checksum():
    kbm = binding_management_key(b"H" * 8, b"C" * 8)
    raw = encode_mh(
        sign(BindingUpdate(seq=5, lifetime=105, options=(NonceIndices(1, 2),)), kbm, COA1, CN),
        src=HOA,
        dst=CN,
    )
    for i in range(len(raw)):
        tampered = bytearray(raw)
        tampered[i] ^= 0x01
        expected = i in (4, 5)  # the checksum is excluded from the authenticator
        assert verify(bytes(tampered), kbm, COA1, CN) is expected, i
    assert not verify(raw, kbm, HOA, CN)  # wrong care-of address
    assert not verify(raw, kbm, COA1, HOA)  # wrong correspondent
    assert not verify(raw, binding_management_key(b"H" * 8), COA1, CN)  # wrong key


def test_verify_requires_bad_last_without_padding():
    kbm = b"k" * 20
    ok = sign(BindingAcknowledgement(status=0, seq=1, lifetime=1), kbm, COA1, CN)
    bad = find_option(ok, BindingAuthorizationData)
    moved = BindingAcknowledgement(status=0, seq=1, lifetime=1, options=(PadN(4), bad, PadN(6)))
    raw = encode_mh(moved)
    assert find_option(decode_mh(raw), BindingAuthorizationData) == bad
    assert authenticated_mh_data(raw) is None
    assert not verify(raw, kbm, COA1, CN)
    assert not verify(encode_mh(BindingAcknowledgement(status=0, seq=1)), kbm, COA1, CN)
    assert not verify(b"\x00" * 3, kbm, COA1, CN)


def test_sign_replaces_existing_authenticator():
    kbm = b"k" * 20
    first = sign(BindingUpdate(seq=1, lifetime=1), kbm, COA1, CN)
    again = sign(first, kbm, COA1, CN)
    assert again == first
    assert sum(isinstance(o, BindingAuthorizationData) for o in again.options) == 1
    assert authenticator(kbm, COA1, CN, b"x") != authenticator(kbm, COA1, CN, b"y")


def test_nonce_table_rotation_and_expiry():
    table = NonceTable(DetRandom(5), rotation_interval=30.0)
    first = table.current(0.0)
    assert table.current(29.9) == first
    second = table.current(30.0)
    assert second.index == (first.index + 1) & 0xFFFF and second.value != first.value
    # The older nonce stays usable for MAX_NONCE_LIFETIME after it was generated, not longer.
    assert table.lookup(first.index, MAX_NONCE_LIFETIME) == first
    assert table.lookup(first.index, MAX_NONCE_LIFETIME + 0.001) is None
    assert table.lookup(second.index, 100.0) == second
    assert table.lookup((second.index + 1) & 0xFFFF, 100.0) is None  # never handed out
    table.current(1000.0)
    assert len(table) == 1  # expired nonces are pruned


def test_a_nonce_is_handed_out_only_with_max_token_lifetime_left():
    """RFC 6275 5.2.7: with a long rotation interval the current nonce would still be handed out
    when it has only seconds of validity left; a token from it must stay usable for
    MAX_TOKEN_LIFETIME (210 s), so it is replaced once less than that is left."""
    table = NonceTable(DetRandom(5), rotation_interval=200.0)
    first = table.current(0.0)
    edge = MAX_NONCE_LIFETIME - MAX_TOKEN_LIFETIME  # 30 s: exactly 210 s of validity left
    assert table.current(edge) == first
    later = table.current(edge + 0.5)  # 209.5 s left: too little
    assert later != first and later.created == edge + 0.5
    for when in (edge + 0.5, edge + 10.0, edge + 30.5):  # every nonce handed out has 210 s left
        nonce = table.current(when)
        assert table.lookup(nonce.index, when + MAX_TOKEN_LIFETIME) == nonce


def test_nonce_index_wraps():
    class Fixed:
        def __call__(self, n: int) -> bytes:
            return b"\xff" * n

    table = NonceTable(Fixed(), rotation_interval=1.0)
    assert table.current(0).index == 0xFFFF
    assert table.current(1).index == 0
    with pytest.raises(ValueError):
        NonceTable(Fixed(), rotation_interval=0)
