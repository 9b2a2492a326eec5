"""Correspondent node: HoT/CoT generation, BU authorisation, binding cache, errors."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from mvpn_lab.mip6.core.actions import InstallHao, InstallRoute2, RemoveHao, RemoveRoute2, SendMH
from mvpn_lab.mip6.core.rr import binding_management_key, sign, verify
from mvpn_lab.mip6.wire.constants import MAX_NONCE_LIFETIME
from mvpn_lab.mip6.wire.messages import (
    BindingAcknowledgement,
    BindingError,
    BindingRefreshRequest,
    BindingUpdate,
    CareOfTest,
    CareOfTestInit,
    HomeTest,
    HomeTestInit,
    NonceIndices,
    decode_mh,
    lifetime_units,
)

from ._helpers import ATTACKER, CN, COA1, COA2, HOA, HOA2, make_cn, received


def do_rr(cn, *, hoa=HOA, coa=COA1, home=True, careof=True):
    if home:
        assert cn.deliver(received(SendMH(hoa, CN, HomeTestInit(cookie=b"h" * 8)))) == "accepted"
    if careof:
        assert cn.deliver(received(SendMH(coa, CN, CareOfTestInit(cookie=b"c" * 8)))) == "accepted"
    out = [a for a in cn.sink.drain() if isinstance(a, SendMH)]
    return out


def tokens(cn, **kw):
    sends = do_rr(cn, **kw)
    hot = next((s.message for s in sends if isinstance(s.message, HomeTest)), None)
    cot = next((s.message for s in sends if isinstance(s.message, CareOfTest)), None)
    return hot, cot


def bu_packet(hot, cot, seq, *, lifetime=420, hoa=HOA, coa=COA1, ack=True, kbm=None, home=False):
    dereg = lifetime == 0 or coa == hoa
    if kbm is None:
        kbm = binding_management_key(hot.token, None if dereg else cot.token)
    indices = NonceIndices(hot.nonce_index, 0 if cot is None else cot.nonce_index)
    bu = BindingUpdate(seq=seq, lifetime=lifetime_units(lifetime), ack=ack, home=home, options=(indices,))
    bu = sign(bu, kbm, hoa if dereg else coa, CN)
    src = coa
    return received(SendMH(src, CN, bu, hao=None if src == hoa else hoa)), kbm


def only_ba(cn):
    sent = cn.sink.sent()
    assert len(sent) == 1 and isinstance(sent[0].message, BindingAcknowledgement), sent
    return sent[0], sent[0].message


def bound(seq=1):
    cn = make_cn()
    hot, cot = tokens(cn)
    pkt, kbm = bu_packet(hot, cot, seq)
    assert cn.deliver(pkt) == "accepted"
    cn.sink.drain()
    return cn, hot, cot, kbm


def snapshot(cn):
    return json.dumps(cn.node.cache.to_list(cn.clock.monotonic()))


def test_hot_and_cot_answer_the_right_addresses():
    cn = make_cn()
    sends = do_rr(cn)
    hot_send, cot_send = sends
    assert isinstance(hot_send.message, HomeTest) and hot_send.dst == HOA and hot_send.src == CN
    assert isinstance(cot_send.message, CareOfTest) and cot_send.dst == COA1
    assert hot_send.message.cookie == b"h" * 8 and cot_send.message.cookie == b"c" * 8
    assert hot_send.message.token != cot_send.message.token
    assert hot_send.message.nonce_index == cot_send.message.nonce_index  # same current nonce
    assert len(cn.node.cache) == 0  # return routability keeps no per-node state


def test_tokens_depend_on_address_and_secret():
    a, b = make_cn(), make_cn()
    hot_a, _ = tokens(a)
    hot_a2, _ = tokens(a, hoa=HOA2)
    assert hot_a.token != hot_a2.token
    from ._helpers import DetRandom

    b.node._kcn = DetRandom(99)(20)
    hot_b, _ = tokens(b)
    assert hot_b.token != hot_a.token


def test_test_init_with_home_address_option_rejected():
    cn = make_cn()
    pkt = received(SendMH(COA1, CN, HomeTestInit(), hao=HOA))
    assert cn.deliver(pkt) == "rejected:hao_not_allowed"
    pkt = received(SendMH(COA1, CN, CareOfTestInit(), hao=HOA))
    assert cn.deliver(pkt) == "rejected:hao_not_allowed"
    assert cn.sink.sent() == []


def test_valid_bu_creates_binding_and_authenticated_ba():
    cn = make_cn()
    hot, cot = tokens(cn)
    pkt, kbm = bu_packet(hot, cot, 7, lifetime=1000)
    assert cn.deliver(pkt) == "accepted"
    assert InstallRoute2(HOA, COA1, None, "out") in cn.sink.actions
    assert InstallHao(HOA, COA1, None, "in") in cn.sink.actions
    send, ba = only_ba(cn)
    assert ba.status == 0 and ba.seq == 7 and ba.lifetime == 105  # capped at MAX_RR_BINDING_LIFETIME
    assert send.dst == COA1 and send.rh2 == HOA
    assert verify(send.wire(), kbm, COA1, CN)
    entry = cn.node.cache.get(HOA)
    assert entry.careof_address == COA1 and entry.lifetime == 420 and not entry.home_registration


def test_no_ba_without_a_flag():
    cn = make_cn()
    hot, cot = tokens(cn)
    pkt, _ = bu_packet(hot, cot, 7, ack=False)
    assert cn.deliver(pkt) == "accepted"
    assert cn.sink.sent() == [] and HOA in cn.node.cache


def test_bad_authenticator_dropped_binding_untouched():
    cn, hot, cot, _ = bound(1)
    before = snapshot(cn)
    # attacker guesses: right indices, wrong key
    pkt, _ = bu_packet(hot, cot, 2, coa=ATTACKER, kbm=b"\x00" * 20)
    assert cn.deliver(pkt) == "rejected:bad_authenticator"
    # right key, but the care-of address was changed after signing
    pkt, _ = bu_packet(hot, cot, 3)
    hijacked = replace(pkt, src=ATTACKER, mh=SendMH(ATTACKER, CN, decode_mh(pkt.mh), hao=HOA).wire())
    assert cn.deliver(hijacked) == "rejected:bad_authenticator"
    # tokens for one home address do not authorise another
    pkt, _ = bu_packet(hot, cot, 4, hoa=HOA2)
    assert cn.deliver(pkt) == "rejected:bad_authenticator"
    assert cn.sink.actions == [] and snapshot(cn) == before
    assert cn.node.rejected["bad_authenticator"] == 3


def test_replayed_bu_gets_authenticated_135():
    cn = make_cn()
    hot, cot = tokens(cn)
    pkt, kbm = bu_packet(hot, cot, 5)
    assert cn.deliver(pkt) == "accepted"
    cn.sink.drain()
    before = snapshot(cn)
    cn.clock.advance(10)
    assert cn.deliver(pkt) == "rejected:sequence_out_of_window"
    send, ba = only_ba(cn)
    assert ba.status == 135 and ba.seq == 5
    assert verify(send.wire(), kbm, COA1, CN)
    # the cache (including the registration time) is untouched
    assert json.loads(snapshot(cn))[0]["remaining"] == json.loads(before)[0]["remaining"] - 10


def test_missing_rr_options_dropped():
    cn = make_cn()
    plain = received(SendMH(COA1, CN, BindingUpdate(seq=1, lifetime=10, ack=True), hao=HOA))
    assert cn.deliver(plain) == "rejected:missing_rr_options"
    only_indices = received(
        SendMH(COA1, CN, BindingUpdate(seq=1, lifetime=10, options=(NonceIndices(1, 1),)), hao=HOA)
    )
    assert cn.deliver(only_indices) == "rejected:missing_rr_options"
    assert cn.sink.actions == []


def test_home_registration_refused_with_131():
    cn = make_cn()
    hot, cot = tokens(cn)
    pkt, _ = bu_packet(hot, cot, 1, home=True)
    assert cn.deliver(pkt) == "rejected:home_registration_not_supported"
    _, ba = only_ba(cn)
    assert ba.status == 131
    assert len(cn.node.cache) == 0


def test_expired_nonces_138():
    cn = make_cn()
    hot, cot = tokens(cn)
    cn.clock.advance(MAX_NONCE_LIFETIME + 1)
    pkt, _ = bu_packet(hot, cot, 1, ack=False)
    assert cn.deliver(pkt) == "rejected:expired_nonce_index"
    _, ba = only_ba(cn)  # sent even without the A flag
    assert ba.status == 138 and ba.seq == 1
    assert len(cn.node.cache) == 0


def test_expired_home_nonce_136_and_careof_nonce_137():
    cn = make_cn(nonce_rotation=30)
    hot_old, cot_old = tokens(cn)
    cn.clock.advance(200)
    hot_new, cot_new = tokens(cn)
    assert hot_new.nonce_index != hot_old.nonce_index
    cn.clock.advance(45)  # old nonce now older than MAX_NONCE_LIFETIME, new one is 45 s old
    pkt, _ = bu_packet(hot_old, cot_new, 1)
    assert cn.deliver(pkt) == "rejected:expired_nonce_index"
    assert only_ba(cn)[1].status == 136
    cn.sink.drain()
    pkt, _ = bu_packet(hot_new, cot_old, 2)
    assert cn.deliver(pkt) == "rejected:expired_nonce_index"
    assert only_ba(cn)[1].status == 137


def test_tokens_from_previous_nonce_still_accepted():
    cn = make_cn(nonce_rotation=10)
    hot, _ = tokens(cn, careof=False)
    cn.clock.advance(100)
    _, cot = tokens(cn, home=False)
    assert cot.nonce_index != hot.nonce_index
    pkt, _ = bu_packet(hot, cot, 1)
    assert cn.deliver(pkt) == "accepted"


def test_deregistration_with_home_token_only():
    cn, hot, _, _ = bound(1)
    pkt, kbm = bu_packet(hot, None, 2, lifetime=0, coa=HOA)
    assert cn.deliver(pkt) == "accepted"
    assert RemoveRoute2(HOA, None, "out") in cn.sink.actions and RemoveHao(HOA, None, "in") in cn.sink.actions
    send, ba = only_ba(cn)
    assert ba.status == 0 and send.dst == HOA and send.rh2 is None
    assert verify(send.wire(), kbm, HOA, CN)
    assert HOA not in cn.node.cache


def test_deregistration_needs_the_right_key():
    cn, hot, _, kbm = bound(1)
    before = snapshot(cn)
    pkt, _ = bu_packet(hot, None, 2, lifetime=0, coa=HOA, kbm=kbm)  # registration key, not SHA1(home)
    assert cn.deliver(pkt) == "rejected:bad_authenticator"
    assert snapshot(cn) == before


def test_a_bu_replayed_after_deregistration_meets_135_and_binds_nothing():
    """Issue 14, item 2: a route-optimisation BU captured while bound and replayed 20 s after the
    MN came home (its nonces still valid) must not re-create the binding (RFC 6275 5.2.8)."""
    cn = make_cn()
    hot, cot = tokens(cn)
    captured, kbm = bu_packet(hot, cot, 1)
    assert cn.deliver(captured) == "accepted"
    cn.sink.drain()
    cn.clock.advance(10)
    home, _ = bu_packet(hot, None, 2, lifetime=0, coa=HOA)
    assert cn.deliver(home) == "accepted"
    cn.sink.drain()
    cn.clock.advance(20)
    assert cn.deliver(captured) == "rejected:sequence_out_of_window"
    send, ba = only_ba(cn)
    assert ba.status == 135 and ba.seq == 2 and verify(send.wire(), kbm, COA1, CN)
    assert HOA not in cn.node.cache
    assert not any(isinstance(a, InstallRoute2 | InstallHao) for a in cn.sink.actions)
    assert cn.node.status()["sequence_numbers_kept"][0]["seq"] == 2
    # once no nonce of that time can be valid, the number is forgotten (and the BU's nonces
    # have expired with it)
    cn.clock.advance(MAX_NONCE_LIFETIME)
    cn.sink.drain()
    assert cn.deliver(captured) == "rejected:expired_nonce_index"
    assert cn.node.status()["sequence_numbers_kept"] == []


def test_binding_expires():
    cn, *_ = bound(1)
    cn.clock.advance(419)
    cn.node.tick()
    assert HOA in cn.node.cache
    cn.clock.advance(1)
    cn.node.tick()
    assert HOA not in cn.node.cache and RemoveRoute2(HOA, None, "out") in cn.sink.actions


def test_move_updates_binding_and_data_plane():
    cn, *_ = bound(1)
    hot2, cot2 = tokens(cn, coa=COA2)
    pkt, _ = bu_packet(hot2, cot2, 2, coa=COA2)
    assert cn.deliver(pkt) == "accepted"
    assert InstallRoute2(HOA, COA2, None, "out") in cn.sink.actions
    assert cn.node.cache.get(HOA).careof_address == COA2


def test_hao_without_binding_draws_binding_error_1():
    cn = make_cn()
    pkt = received(SendMH(COA1, CN, BindingRefreshRequest(), hao=HOA))
    assert cn.deliver(pkt) == "rejected:hao_without_binding"
    (send,) = cn.sink.sent()
    assert isinstance(send.message, BindingError)
    assert send.message.status == 1 and send.message.home_address == HOA and send.dst == COA1
    # data packets: the kernel drops them and reports them; the daemon passes each report on
    cn.sink.drain()
    cn.clock.advance(2)
    assert cn.node.on_data_with_hao(COA2, HOA2, CN) == "rejected:hao_without_binding"
    (send,) = cn.sink.sent()
    assert send.message.status == 1 and send.message.home_address == HOA2 and send.dst == COA2
    assert cn.node.rejected["hao_without_binding"] == 2
    assert cn.node.stats["data_with_hao_without_binding"] == 1


def test_a_report_for_a_home_address_bound_meanwhile_is_ignored():
    cn, *_ = bound(1)
    assert cn.node.on_data_with_hao(COA1, HOA, CN) == "ignored"
    assert not cn.sink.sent()


def test_hao_with_binding_is_fine():
    cn, *_ = bound(1)
    pkt = received(SendMH(COA1, CN, BindingRefreshRequest(), hao=HOA))
    assert cn.deliver(pkt) == "rejected:unexpected_message"  # BRR is for mobile nodes, but no BE
    assert cn.sink.sent() == []


def test_binding_errors_can_be_disabled():
    cn = make_cn(send_binding_errors=False)
    cn.deliver(received(SendMH(COA1, CN, BindingRefreshRequest(), hao=HOA)))
    raw = bytes([59, 1, 77, 0, 0, 0]) + bytes(10)
    cn.deliver(received(SendMH(COA1, CN, BindingRefreshRequest()), mh=raw, checksum_verified=True))
    assert cn.sink.sent() == []


def test_unknown_type_binding_error_2():
    cn = make_cn()
    raw = bytes([59, 1, 77, 0, 0, 0]) + bytes(10)
    assert cn.deliver(
        received(SendMH(COA1, CN, BindingRefreshRequest()), mh=raw, checksum_verified=True)
    ) == ("rejected:unexpected_message")
    (send,) = cn.sink.sent()
    assert send.message.status == 2


@pytest.mark.parametrize("mh", [b"\xff" * 3, bytes([59, 9, 5, 0, 0, 0]) + bytes(20)])
def test_garbage_does_not_touch_bindings(mh):
    cn, *_ = bound(1)
    before = snapshot(cn)
    assert cn.deliver(received(SendMH(COA2, CN, BindingUpdate(), hao=HOA), mh=mh)) == "rejected:malformed"
    assert snapshot(cn) == before and cn.sink.actions == []


def test_status():
    cn, *_ = bound(1)
    cn.deliver(received(SendMH(COA2, CN, BindingUpdate()), mh=b"x"))
    status = json.loads(json.dumps(cn.node.status()))
    assert status["role"] == "cn" and status["rejected"] == {"malformed": 1}
    assert status["binding_cache"][0]["careof_address"] == str(COA1)
    assert status["stats"]["tx_HoT"] == 1 and status["nonces"] == 1


def test_a_care_of_address_that_is_a_bound_home_address_is_refused():
    """Issue 14, item 7: HOA2 may not name HOA, which has a binding here, as its care-of address."""
    cn, *_ = bound(1)
    before = snapshot(cn)
    hot, cot = tokens(cn, hoa=HOA2, coa=HOA)
    pkt, _ = bu_packet(hot, cot, 1, hoa=HOA2, coa=HOA)
    assert cn.deliver(pkt) == "rejected:invalid_careof_address"
    assert snapshot(cn) == before and not cn.sink.sent()
