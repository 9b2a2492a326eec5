"""Mobility Header encode/decode: round trips, exact layouts, option alignment, decode errors."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

import pytest

from mvpn_lab.mip6.wire.constants import IPPROTO_NONE, MHType
from mvpn_lab.mip6.wire.messages import (
    AlternateCareOfAddress,
    BindingAcknowledgement,
    BindingAuthorizationData,
    BindingError,
    BindingRefreshAdvice,
    BindingRefreshRequest,
    BindingUpdate,
    CareOfTest,
    CareOfTestInit,
    HomeTest,
    HomeTestInit,
    MHDecodeError,
    MHEncodeError,
    NonceIndices,
    Pad1,
    PadN,
    UnknownMessage,
    UnknownOption,
    decode_mh,
    decode_options,
    encode_mh,
    find_option,
    lifetime_units,
    message_to_dict,
    strip_padding,
)

from ._helpers import COA1, HOA

ALL_MESSAGES = [
    BindingRefreshRequest(),
    HomeTestInit(cookie=bytes.fromhex("0102030405060708")),
    CareOfTestInit(cookie=bytes.fromhex("1112131415161718")),
    HomeTest(nonce_index=0x1234, cookie=b"\xaa" * 8, token=bytes(range(8))),
    CareOfTest(nonce_index=0xFFFF, cookie=b"\xbb" * 8, token=bytes(range(8, 16))),
    BindingUpdate(seq=0xBEEF, lifetime=900, ack=True, home=True, options=(AlternateCareOfAddress(COA1),)),
    BindingUpdate(
        seq=7,
        lifetime=105,
        ack=True,
        options=(NonceIndices(5, 6), BindingAuthorizationData(bytes(range(12)))),
    ),
    BindingUpdate(seq=1, lifetime=0, link_local=True, key_mgmt=True),
    BindingAcknowledgement(status=0, seq=0xBEEF, lifetime=900, options=(BindingRefreshAdvice(720),)),
    BindingAcknowledgement(status=135, seq=3, lifetime=0, key_mgmt=True),
    BindingError(status=1, home_address=HOA),
    BindingRefreshRequest(options=(UnknownOption(42, b"xyz"),)),
]


@pytest.mark.parametrize("msg", ALL_MESSAGES, ids=lambda m: m.NAME)
def test_round_trip_every_message(msg):
    raw = encode_mh(msg)
    assert len(raw) % 8 == 0
    assert raw[1] == len(raw) // 8 - 1  # Header Len excludes the first 8 octets
    assert raw[0] == IPPROTO_NONE
    assert raw[2] == msg.MH_TYPE
    decoded = decode_mh(raw)
    assert type(decoded) is type(msg)
    assert strip_padding(decoded) == msg
    assert encode_mh(decoded) == raw  # byte-exact, padding included


def test_binding_update_exact_layout():
    raw = encode_mh(BindingUpdate(seq=0x0102, lifetime=0x0304, ack=True, home=True))
    # proto, len=1, type 5, reserved, checksum 0, seq, flags A|H, lifetime, then PadN of 2 data octets
    assert raw == bytes([59, 1, 5, 0, 0, 0, 0x01, 0x02, 0xC0, 0x00, 0x03, 0x04, 1, 2, 0, 0])


def test_binding_ack_and_error_exact_layout():
    ba = encode_mh(BindingAcknowledgement(status=132, seq=0x0A0B, lifetime=2, key_mgmt=True))
    assert ba[6:12] == bytes([132, 0x80, 0x0A, 0x0B, 0, 2])
    be = encode_mh(BindingError(status=2, home_address=IPv6Address("2001:db8::1")))
    assert len(be) == 24 and be[6:8] == b"\x02\x00"
    assert be[8:24] == IPv6Address("2001:db8::1").packed


def test_hot_layout():
    raw = encode_mh(HomeTest(nonce_index=0x0102, cookie=b"C" * 8, token=b"T" * 8))
    assert raw[1] == 2 and len(raw) == 24
    assert raw[6:8] == b"\x01\x02" and raw[8:16] == b"C" * 8 and raw[16:24] == b"T" * 8


@pytest.mark.parametrize(
    ("option", "mult", "rem"),
    [
        (AlternateCareOfAddress(COA1), 8, 6),
        (BindingAuthorizationData(bytes(12)), 8, 2),
        (NonceIndices(1, 2), 2, 0),
        (BindingRefreshAdvice(3), 2, 0),
    ],
)
@pytest.mark.parametrize(
    "lead", [(), (BindingRefreshAdvice(1),), (NonceIndices(1, 1), BindingRefreshAdvice(1))]
)
def test_options_are_aligned(option, mult, rem, lead):
    msg = BindingUpdate(seq=1, lifetime=1, options=(*lead, option))
    raw = encode_mh(msg)
    # Walk the options and find where ours starts.
    pos, end = 12, len(raw)
    starts = {}
    while pos < end:
        if raw[pos] == 0:
            pos += 1
            continue
        starts.setdefault(raw[pos], pos)
        pos += 2 + raw[pos + 1]
    assert pos == end
    assert starts[option.TYPE] % mult == rem
    assert strip_padding(decode_mh(raw)) == msg


def test_explicit_padding_is_written_verbatim():
    msg = BindingRefreshRequest(options=(Pad1(), PadN(3)))
    raw = encode_mh(msg)
    assert raw[8:14] == bytes([0, 1, 3, 0, 0, 0])
    assert decode_mh(raw).options[:2] == (Pad1(), PadN(3))


def test_bu_keeps_unnamed_flags():
    raw = bytearray(encode_mh(BindingUpdate(seq=1, lifetime=1, ack=True)))
    raw[8] |= 0x04  # P flag of RFC 5213
    bu = decode_mh(bytes(raw))
    assert bu.ack and bu.other_flags == 0x0400
    assert encode_mh(bu) == bytes(raw)


def test_unknown_type_decodes_as_unknown_message():
    raw = bytes([59, 1, 42, 0, 0x12, 0x34]) + b"abcdefghij"
    msg = decode_mh(raw)
    assert isinstance(msg, UnknownMessage)
    assert msg.mh_type == 42 and msg.data == b"abcdefghij" and msg.checksum == 0x1234
    assert encode_mh(msg, checksum=0x1234) == raw


def test_unknown_option_is_kept_and_skipped():
    raw = encode_mh(
        BindingUpdate(seq=9, lifetime=9, options=(UnknownOption(200, b"\x01\x02\x03"), NonceIndices(1, 2)))
    )
    bu = decode_mh(raw)
    assert find_option(bu, UnknownOption) == UnknownOption(200, b"\x01\x02\x03")
    assert find_option(bu, NonceIndices) == NonceIndices(1, 2)


def test_trailing_bytes_after_header_length_are_ignored():
    raw = encode_mh(HomeTestInit(cookie=b"k" * 8))
    assert decode_mh(raw + b"\xff" * 9) == decode_mh(raw)


def test_payload_proto_and_checksum_are_reported_but_not_compared():
    raw = bytearray(encode_mh(BindingRefreshRequest(), checksum=0xABCD))
    raw[0] = 6
    msg = decode_mh(bytes(raw))
    assert msg.payload_proto == 6 and msg.checksum == 0xABCD
    assert msg == BindingRefreshRequest()


def _bu_with_options(opt_bytes: bytes) -> bytes:
    body = struct.pack("!HHH", 1, 0, 1) + opt_bytes
    total = 6 + len(body)
    assert total % 8 == 0
    return bytes([59, total // 8 - 1, 5, 0, 0, 0]) + body


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "truncated"),
        (b"\x3b\x00\x05", "truncated"),
        (bytes([59, 3, 5, 0, 0, 0]) + bytes(10), "header length says 32 bytes, only 16"),
        (bytes([59, 0, 5, 0, 0, 0, 0, 0]), "too short for BU"),
        (bytes([59, 0, 3, 0, 0, 0, 0, 0]), "too short for HoT"),
        (bytes([59, 1, 7, 0, 0, 0]) + bytes(10), "too short for BE"),
        (_bu_with_options(b"\x02\x07\x00\x00"), "overruns"),
        (_bu_with_options(b"\x00\x00\x00\x05"), "truncated before its length"),
        (_bu_with_options(b"\x02\x01\x00\x00"), "binding_refresh_advice at offset 12: length 1, expected 2"),
        (_bu_with_options(b"\x04\x02\x00\x00"), "nonce_indices at offset 12: length 2, expected 4"),
        (_bu_with_options(b"\x03\x02\x00\x00"), "alternate_coa at offset 12: length 2, expected 16"),
    ],
)
def test_decode_errors_have_reasons(raw, fragment):
    with pytest.raises(MHDecodeError) as info:
        decode_mh(raw)
    assert fragment in info.value.reason


def test_decode_options_error_offsets_are_from_mh_start():
    with pytest.raises(MHDecodeError, match="offset 14"):
        decode_options(b"\x00" * 14 + b"\x05\x09", 14, 16)


@pytest.mark.parametrize(
    "msg",
    [
        HomeTestInit(cookie=b"short"),
        HomeTest(nonce_index=70000),
        BindingUpdate(seq=-1),
        BindingUpdate(seq=1, other_flags=0x8000),
        BindingAcknowledgement(status=256),
        BindingRefreshRequest(options=(UnknownOption(7, b"x" * 300),)),
        BindingRefreshRequest(options=tuple(UnknownOption(7, b"x" * 200) for _ in range(11))),
        UnknownMessage(mh_type=99, data=b"abc"),
    ],
)
def test_encode_rejects_out_of_range_fields(msg):
    with pytest.raises(MHEncodeError):
        encode_mh(msg)


def test_lifetime_units():
    assert lifetime_units(0) == 0
    assert lifetime_units(3) == 0
    assert lifetime_units(7) == 1
    assert lifetime_units(420) == 105
    assert lifetime_units(10**9) == 0xFFFF
    bu = BindingUpdate(seq=1, lifetime=lifetime_units(420))
    assert bu.lifetime_seconds == 420


def test_message_to_dict_is_jsonable_and_informative():
    import json

    d = message_to_dict(
        BindingUpdate(seq=5, lifetime=2, ack=True, home=True, options=(AlternateCareOfAddress(COA1),))
    )
    assert d["type"] == "BU" and d["mh_type"] == MHType.BU and d["flags"] == "AH"
    assert d["lifetime_seconds"] == 8
    assert d["options"] == [{"type": "AlternateCareOfAddress", "option_type": 3, "address": str(COA1)}]
    ba = message_to_dict(BindingAcknowledgement(status=132, seq=1))
    assert ba["status_name"] == "not_home_subnet"
    json.dumps(d)
    json.dumps(message_to_dict(BindingError(status=1, home_address=HOA)))
