"""Wire format cross-checked against scapy's independent MIPv6 layers, in both directions.

Note: scapy 2.6.1's defaults for the Nonce Indices and Binding Authorization Data option lengths
are wrong (16), so the scapy-built options below set ``olen`` explicitly.
"""

from __future__ import annotations

import pytest
from scapy.compat import raw
from scapy.layers.inet6 import (
    HAO,
    MIP6MH_BA,
    MIP6MH_BE,
    MIP6MH_BRR,
    MIP6MH_BU,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrRouting,
    MIP6MH_CoT,
    MIP6MH_CoTI,
    MIP6MH_HoT,
    MIP6MH_HoTI,
    MIP6OptAltCoA,
    MIP6OptBindingAuthData,
    MIP6OptBRAdvice,
    MIP6OptNonceIndices,
    Pad1,
    PadN,
)

from mvpn_lab.mip6.wire.ipv6 import build_ipv6_packet, mh_checksum, verify_mh_checksum
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
    NonceIndices,
    decode_mh,
    encode_mh,
    strip_padding,
)

from ._helpers import CN, COA1, HA, HOA

AUTH = bytes(range(100, 112))

# scapy BU flags field (7 bits, "PRMKLHA", first letter = least significant bit).
S_A, S_H, S_L, S_K = 0x40, 0x20, 0x10, 0x08


def _scapy_options(pkt) -> list:
    return [o for o in pkt.options if not isinstance(o, Pad1 | PadN)]


def _opts_equal(ours, theirs) -> None:
    ours = [o for o in ours]
    assert len(ours) == len(theirs)
    for mine, other in zip(ours, theirs, strict=True):
        if isinstance(mine, AlternateCareOfAddress):
            assert isinstance(other, MIP6OptAltCoA) and other.acoa == str(mine.address)
        elif isinstance(mine, NonceIndices):
            assert isinstance(other, MIP6OptNonceIndices)
            assert (other.olen, other.hni, other.coni) == (4, mine.home_nonce_index, mine.careof_nonce_index)
        elif isinstance(mine, BindingAuthorizationData):
            assert isinstance(other, MIP6OptBindingAuthData) and other.olen == 12
            assert other.authenticator.to_bytes(12, "big") == mine.authenticator
        elif isinstance(mine, BindingRefreshAdvice):
            assert isinstance(other, MIP6OptBRAdvice) and other.rinter == mine.refresh_interval
        else:  # pragma: no cover
            raise AssertionError(mine)


# ----------------------------------------------------------------- ours -> scapy


def test_ours_to_scapy_brr():
    s = MIP6MH_BRR(encode_mh(BindingRefreshRequest()))
    assert (s.nh, s.mhtype, s.len) == (59, 0, 0)


@pytest.mark.parametrize(
    ("cls", "scls", "mhtype"), [(HomeTestInit, MIP6MH_HoTI, 1), (CareOfTestInit, MIP6MH_CoTI, 2)]
)
def test_ours_to_scapy_test_init(cls, scls, mhtype):
    s = scls(encode_mh(cls(cookie=b"\x01\x02\x03\x04\x05\x06\x07\x08")))
    assert s.mhtype == mhtype and s.len == 1
    assert s.cookie == b"\x01\x02\x03\x04\x05\x06\x07\x08"


@pytest.mark.parametrize(("cls", "scls", "mhtype"), [(HomeTest, MIP6MH_HoT, 3), (CareOfTest, MIP6MH_CoT, 4)])
def test_ours_to_scapy_test(cls, scls, mhtype):
    s = scls(encode_mh(cls(nonce_index=0x4321, cookie=b"c" * 8, token=b"t" * 8)))
    assert (s.mhtype, s.len, s.index, s.cookie, s.token) == (mhtype, 2, 0x4321, b"c" * 8, b"t" * 8)


@pytest.mark.parametrize(
    "bu",
    [
        BindingUpdate(seq=0xBEEF, lifetime=900, ack=True, home=True, options=(AlternateCareOfAddress(COA1),)),
        BindingUpdate(seq=2, lifetime=105, options=(NonceIndices(7, 9), BindingAuthorizationData(AUTH))),
        BindingUpdate(seq=3, lifetime=0, link_local=True, key_mgmt=True),
    ],
)
def test_ours_to_scapy_bu(bu):
    s = MIP6MH_BU(encode_mh(bu))
    assert (s.mhtype, s.seq, s.mhtime) == (5, bu.seq, bu.lifetime)
    flags = int(s.flags)
    assert bool(flags & S_A) == bu.ack and bool(flags & S_H) == bu.home
    assert bool(flags & S_L) == bu.link_local and bool(flags & S_K) == bu.key_mgmt
    _opts_equal(bu.options, _scapy_options(s))


def test_ours_to_scapy_ba():
    ba = BindingAcknowledgement(
        status=135,
        seq=0x0102,
        lifetime=77,
        key_mgmt=True,
        options=(BindingRefreshAdvice(60), BindingAuthorizationData(AUTH)),
    )
    s = MIP6MH_BA(encode_mh(ba))
    assert (s.mhtype, s.status, s.seq, s.mhtime) == (6, 135, 0x0102, 77)
    assert int(s.flags) & 0x4  # K is the most significant of scapy's 3 flag bits
    _opts_equal(ba.options, _scapy_options(s))


def test_ours_to_scapy_be():
    s = MIP6MH_BE(encode_mh(BindingError(status=2, home_address=HOA)))
    assert (s.mhtype, s.status, s.ha, s.len) == (7, 2, str(HOA), 2)


# ----------------------------------------------------------------- scapy -> ours


def test_scapy_to_ours_all_types():
    cases = [
        (MIP6MH_BRR(cksum=0), BindingRefreshRequest()),
        (MIP6MH_HoTI(cksum=0, cookie=b"ABCDEFGH"), HomeTestInit(cookie=b"ABCDEFGH")),
        (MIP6MH_CoTI(cksum=0, cookie=b"abcdefgh"), CareOfTestInit(cookie=b"abcdefgh")),
        (MIP6MH_HoT(cksum=0, index=9, cookie=b"c" * 8, token=b"T" * 8), HomeTest(9, b"c" * 8, b"T" * 8)),
        (MIP6MH_CoT(cksum=0, index=10, cookie=b"d" * 8, token=b"U" * 8), CareOfTest(10, b"d" * 8, b"U" * 8)),
        (
            MIP6MH_BU(cksum=0, seq=77, flags=S_A | S_H, mhtime=450, options=[MIP6OptAltCoA(acoa=str(COA1))]),
            BindingUpdate(seq=77, lifetime=450, ack=True, home=True, options=(AlternateCareOfAddress(COA1),)),
        ),
        (
            MIP6MH_BU(
                cksum=0,
                seq=65535,
                flags=S_A,
                mhtime=105,
                options=[
                    MIP6OptNonceIndices(olen=4, hni=300, coni=301),
                    MIP6OptBindingAuthData(olen=12, authenticator=int.from_bytes(AUTH, "big")),
                ],
            ),
            BindingUpdate(
                seq=65535,
                lifetime=105,
                ack=True,
                options=(NonceIndices(300, 301), BindingAuthorizationData(AUTH)),
            ),
        ),
        (
            MIP6MH_BA(
                cksum=0, status=0, flags=0, res2=0, seq=77, mhtime=450, options=[MIP6OptBRAdvice(rinter=300)]
            ),
            BindingAcknowledgement(status=0, seq=77, lifetime=450, options=(BindingRefreshAdvice(300),)),
        ),
        (
            MIP6MH_BA(cksum=0, status=133, flags=0x4, res2=0, seq=1, mhtime=0),
            BindingAcknowledgement(status=133, seq=1, lifetime=0, key_mgmt=True),
        ),
        (MIP6MH_BE(cksum=0, status=1, ha=str(HOA)), BindingError(status=1, home_address=HOA)),
    ]
    for spkt, expected in cases:
        data = raw(spkt)
        got = decode_mh(data)
        assert strip_padding(got) == expected, spkt.summary()
        # and our encoder agrees with scapy byte for byte (same alignment padding)
        assert encode_mh(expected) == data, spkt.summary()


# ----------------------------------------------------------------- checksum with HAO and RH2


def test_checksum_and_packet_match_scapy_with_home_address_option():
    bu = BindingUpdate(seq=4, lifetime=10, ack=True, home=True, options=(AlternateCareOfAddress(COA1),))
    spkt = (
        IPv6(src=str(COA1), dst=str(HA), hlim=64)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=str(HOA))])
        / MIP6MH_BU(seq=4, flags=S_A | S_H, mhtime=10, options=[MIP6OptAltCoA(acoa=str(COA1))])
    )
    sbytes = raw(spkt)
    ours = build_ipv6_packet(COA1, HA, encode_mh(bu), hao=HOA)
    assert ours == sbytes
    mh = ours[40 + 24 :]
    # The pseudo-header uses the home address, not the care-of address in the IPv6 header.
    assert verify_mh_checksum(HOA, HA, mh)
    assert not verify_mh_checksum(COA1, HA, mh)
    assert mh_checksum(HOA, HA, mh) == int.from_bytes(mh[4:6], "big")


def test_checksum_and_packet_match_scapy_with_type2_routing_header():
    ba = BindingAcknowledgement(status=0, seq=4, lifetime=10)
    spkt = (
        IPv6(src=str(HA), dst=str(COA1), hlim=64)
        / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[str(HOA)])
        / MIP6MH_BA(status=0, flags=0, res2=0, seq=4, mhtime=10)
    )
    sbytes = raw(spkt)
    ours = build_ipv6_packet(HA, COA1, encode_mh(ba), rh2=HOA)
    assert ours == sbytes
    mh = ours[40 + 24 :]
    assert verify_mh_checksum(HA, HOA, mh)  # final destination is the home address
    assert not verify_mh_checksum(HA, COA1, mh)


def test_plain_checksum_matches_scapy():
    spkt = IPv6(src=str(COA1), dst=str(CN)) / MIP6MH_CoTI(cookie=b"12345678")
    sbytes = raw(spkt)
    assert encode_mh(CareOfTestInit(cookie=b"12345678"), src=COA1, dst=CN) == sbytes[40:]
