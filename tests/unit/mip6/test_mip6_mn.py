"""Mobile node alone: home registration, retransmission back-off, BA handling, RR checks."""

from __future__ import annotations

import itertools
import json

import pytest

from mvpn_lab.mip6.core.actions import (
    DelRouteViaTunnel,
    DelTunnel,
    InstallHao,
    InstallRoute2,
    RemoveHao,
    RemoveRoute2,
    RouteViaTunnel,
    SendMH,
    SetHomeAddress,
    SettleHomeAddress,
    SetTunnel,
)
from mvpn_lab.mip6.core.rr import binding_management_key, sign, verify
from mvpn_lab.mip6.wire.constants import MAX_BINDACK_TIMEOUT
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
    find_option,
)

from ._helpers import ATTACKER, CN, COA1, COA2, HA, HOA, make_mn, received


def home_bus(mn) -> list[SendMH]:
    return [s for s in mn.sink.sent() if isinstance(s.message, BindingUpdate) and s.dst == HA]


def ba_from_ha(bu: BindingUpdate, *, status=0, lifetime=None, seq=None, esp=True, options=(), dst=COA1):
    ba = BindingAcknowledgement(
        status=status,
        seq=bu.seq if seq is None else seq,
        lifetime=bu.lifetime if lifetime is None else lifetime,
        options=options,
    )
    return received(SendMH(HA, dst, ba, rh2=HOA if dst != HOA else None, esp=esp))


def registered_mn(**kw):
    mn = make_mn(**kw)
    mn.node.move_to(COA1)
    (bu,) = home_bus(mn)
    assert mn.deliver(ba_from_ha(bu.message)) == "accepted"
    mn.sink.drain()
    return mn


def run_until(mn, t_end):
    """Advance the fake clock timer by timer up to t_end (absolute)."""
    while True:
        nxt = mn.node.next_deadline()
        if nxt is None or nxt > t_end:
            break
        mn.clock.advance(nxt - mn.clock.monotonic())
        mn.node.tick()
    mn.clock.advance(max(0.0, t_end - mn.clock.monotonic()))


def test_move_sends_home_bu_with_hao_and_alt_coa():
    mn = make_mn()
    mn.node.move_to(COA1)
    acts = mn.sink.actions
    assert acts[:3] == [
        SetHomeAddress(HOA, 64, away=True),
        InstallHao(HOA, COA1, HA, "out"),
        InstallRoute2(HOA, COA1, HA, "in"),
    ]
    (send,) = home_bus(mn)
    # the kernel work the BU does not need comes right after it
    assert acts[3:5] == [send, SettleHomeAddress(HOA, 64, away=True)]
    bu = send.message
    assert send.src == COA1 and send.hao == HOA and send.esp
    assert bu.ack and bu.home and not bu.link_local and bu.lifetime == 900
    assert find_option(bu, AlternateCareOfAddress).address == COA1
    assert mn.node.home.state == "registering"


def test_retransmission_back_off_with_new_sequence_numbers():
    mn = make_mn()
    t0 = mn.clock.monotonic()
    mn.node.move_to(COA1)
    times, seqs = [], []
    for _ in range(9):
        nxt = mn.node.next_deadline()
        mn.clock.advance(nxt - mn.clock.monotonic())
        mn.node.tick()
    for send in home_bus(mn):
        seqs.append(send.message.seq)
    # Collect send times from the log (wall clock offset is constant).
    lines = [json.loads(line) for line in mn.log.getvalue().splitlines() if '"tx"' in line]
    times = [round(r["epoch"] - (1_700_000_000.0 - 1000.0) - t0, 3) for r in lines]
    # first registration: InitialBindackTimeoutFirstReg 1.5 s, doubling up to 32 s
    assert times == [0, 1.5, 4.5, 10.5, 22.5, 46.5, 78.5, 110.5, 142.5, 174.5]
    assert [(b - a) % 65536 for a, b in itertools.pairwise(seqs)] == [1] * 9
    assert mn.node.stats["home_bu_retransmissions"] == 9
    assert mn.node.home.retransmit_timeout == MAX_BINDACK_TIMEOUT


def test_re_registration_uses_initial_bindack_timeout():
    mn = registered_mn()
    mn.node.move_to(COA2)
    t0 = mn.clock.monotonic()
    assert mn.node.next_deadline() - t0 == pytest.approx(1.0)


def test_ba_accepted_sets_up_tunnel_and_refresh():
    mn = make_mn()
    mn.node.move_to(COA1)
    (send,) = home_bus(mn)
    mn.sink.drain()
    mn.clock.advance(0.2)
    assert mn.deliver(ba_from_ha(send.message, lifetime=100)) == "accepted"
    assert mn.sink.actions == [SetTunnel(COA1, HA), RouteViaTunnel(HOA, HA)]
    assert mn.node.home.state == "registered"
    entry = mn.node.status()["binding_update_list"][0]
    assert entry["granted_lifetime"] == 400 and entry["remaining"] == pytest.approx(399.8)
    # refresh at 80 % of the granted lifetime, counted from when the BU was sent
    assert mn.node.timer_deadline("home_refresh") == pytest.approx(mn.node.home.sent + 320)
    run_until(mn, mn.node.home.sent + 320)
    (refresh,) = home_bus(mn)
    assert refresh.message.seq == (send.message.seq + 1) % 65536 and refresh.src == COA1


def test_binding_refresh_advice_brings_refresh_forward():
    mn = make_mn()
    mn.node.move_to(COA1)
    (send,) = home_bus(mn)
    mn.deliver(ba_from_ha(send.message, lifetime=100, options=(BindingRefreshAdvice(10),)))
    assert mn.node.timer_deadline("home_refresh") == pytest.approx(mn.node.home.sent + 40)


def test_granted_lifetime_shorter_than_requested_is_used():
    mn = make_mn()
    mn.node.move_to(COA1)
    (send,) = home_bus(mn)
    mn.deliver(ba_from_ha(send.message, lifetime=25))
    assert mn.node.home.granted_lifetime == 100


def test_ba_checks():
    mn = make_mn()
    mn.node.move_to(COA1)
    (send,) = home_bus(mn)
    bu = send.message
    assert mn.deliver(ba_from_ha(bu, seq=(bu.seq + 1) % 65536)) == "rejected:unexpected_sequence"
    assert mn.deliver(ba_from_ha(bu, esp=False)) == "rejected:unprotected"
    spoofed = received(SendMH(ATTACKER, COA1, BindingAcknowledgement(seq=bu.seq), rh2=HOA))
    assert mn.deliver(spoofed) == "rejected:unexpected_source"
    assert mn.node.home.state == "registering"
    assert mn.deliver(ba_from_ha(bu)) == "accepted"
    assert mn.deliver(ba_from_ha(bu)) == "rejected:unsolicited"  # duplicate BA
    assert mn.node.rejected.as_dict() == {
        "unexpected_sequence": 1,
        "unprotected": 1,
        "unexpected_source": 1,
        "unsolicited": 1,
    }


def _retransmit_home_bu(mn) -> None:
    mn.clock.advance(mn.node.next_deadline() - mn.clock.monotonic())
    mn.node.tick()


def test_ba_for_an_earlier_transmission_of_the_same_bu_registers():
    """RFC 6275 11.7.3: the BA's Sequence Number must match "an outstanding Binding Update", any
    transmission of it. Found on the twin (Test 4, UMTS): the home agent's DAD (1 s) and the RTT
    (0.5 s) made the BA of the first BU arrive after its retransmission (InitialBindackTimeoutFirstReg,
    1.5 s); taking only the newest number, the MN ignored it and the next one too, and registered
    8.7 s after the move instead of 2.0 s."""
    mn = make_mn()
    mn.node.move_to(COA1)
    (first,) = home_bus(mn)
    first_sent = mn.node.home.sent
    _retransmit_home_bu(mn)
    _retransmit_home_bu(mn)
    sends = home_bus(mn)
    assert [s.message.seq for s in sends[1:]] == [(first.message.seq + i) % 65536 for i in (1, 2)]
    assert all(s.message.lifetime == first.message.lifetime and s.src == COA1 for s in sends)
    assert mn.deliver(ba_from_ha(first.message)) == "accepted"
    assert mn.node.home.state == "registered"
    assert mn.node.stats["home_ba_for_earlier_transmission"] == 1
    assert mn.node.home.accepted == first_sent  # the lifetime counts from the BU it acknowledged
    assert mn.node.timer_deadline("home_bu") is None
    assert SetTunnel(COA1, HA) in mn.sink.actions
    # the later transmissions' BAs are now duplicates
    assert mn.deliver(ba_from_ha(sends[2].message)) == "rejected:unsolicited"


def test_ba_for_a_bu_of_an_earlier_care_of_address_is_refused():
    """Only the transmissions of the BU that is outstanding count: after a move, a BA for the BU
    sent from the previous care-of address (a different binding) is not taken."""
    mn = make_mn()
    mn.node.move_to(COA1)
    (old,) = home_bus(mn)
    mn.sink.drain()
    mn.node.move_to(COA2)
    (new,) = home_bus(mn)
    assert mn.deliver(ba_from_ha(old.message, dst=COA2)) == "rejected:unexpected_sequence"
    assert mn.node.home.state == "registering"
    assert mn.deliver(ba_from_ha(new.message, dst=COA2)) == "accepted"
    assert mn.node.stats.get("home_ba_for_earlier_transmission") == 0


def test_ba_135_resynchronises_sequence():
    mn = make_mn()
    mn.node.move_to(COA1)
    (send,) = home_bus(mn)
    mn.sink.drain()
    assert mn.deliver(ba_from_ha(send.message, status=135, seq=40000)) == "accepted"
    (again,) = home_bus(mn)
    assert again.message.seq == 40001
    assert mn.deliver(ba_from_ha(again.message)) == "accepted"
    assert mn.node.home.state == "registered"


def test_ba_135_loop_is_bounded():
    mn = make_mn()
    mn.node.move_to(COA1)
    results = [mn.deliver(ba_from_ha(BindingUpdate(), status=135, seq=100 + i)) for i in range(5)]
    assert results[:3] == ["accepted"] * 3 and results[3:] == ["rejected:sequence_out_of_window"] * 2


@pytest.mark.parametrize("status", [129, 132, 133, 134])
def test_final_refusal_stops_retransmission(status):
    mn = make_mn()
    mn.node.move_to(COA1)
    (send,) = home_bus(mn)
    mn.deliver(ba_from_ha(send.message, status=status, lifetime=0))
    assert mn.node.home.state == "failed" and mn.node.next_deadline() is None
    assert mn.node.stats[f"home_refused_{status}"] == 1


def test_insufficient_resources_retried_later():
    mn = make_mn()
    mn.node.move_to(COA1)
    (send,) = home_bus(mn)
    mn.deliver(ba_from_ha(send.message, status=130, lifetime=0))
    assert mn.node.next_deadline() - mn.clock.monotonic() == pytest.approx(MAX_BINDACK_TIMEOUT)


def test_handover_re_registers_new_coa():
    mn = registered_mn()
    old_seq = mn.node.home.seq
    mn.node.move_to(COA2)
    acts = mn.sink.actions
    assert InstallHao(HOA, COA2, HA, "out") in acts
    assert not any(isinstance(a, SetHomeAddress) for a in acts)
    (send,) = home_bus(mn)
    assert send.src == COA2 and send.message.seq == (old_seq + 1) % 65536
    mn.sink.drain()
    mn.deliver(ba_from_ha(send.message, dst=COA2))
    assert mn.sink.actions == [SetTunnel(COA2, HA)]


def test_same_coa_twice_is_not_a_move():
    mn = registered_mn()
    mn.node.move_to(COA1)
    assert mn.sink.actions == []


def test_max_update_rate():
    mn = make_mn()
    for i in range(6):
        mn.node.move_to(COA1 if i % 2 == 0 else COA2)
    assert len(home_bus(mn)) == 3
    mn.clock.advance(1.0)
    mn.node.tick()
    assert len(home_bus(mn)) == 4


def test_coa_lost_pauses_and_new_coa_resumes():
    mn = make_mn()
    mn.node.move_to(COA1)
    mn.node.coa_lost()
    assert mn.node.location == "detached" and mn.node.next_deadline() is None
    mn.sink.drain()
    mn.node.move_to(COA2)
    (send,) = home_bus(mn)
    assert send.src == COA2


def test_return_home_deregisters_and_cleans_up():
    mn = registered_mn()
    mn.node.return_home()
    (send,) = home_bus(mn)
    acts = mn.sink.actions
    i = acts.index(send)
    assert acts[i - 1 : i + 2] == [
        SetHomeAddress(HOA, 64, away=False),
        send,
        SettleHomeAddress(HOA, 64, away=False),
    ]
    assert send.src == HOA and send.hao is None and send.message.lifetime == 0
    assert find_option(send.message, AlternateCareOfAddress) is None
    mn.sink.drain()
    assert mn.deliver(ba_from_ha(send.message, lifetime=0, dst=HOA)) == "accepted"
    assert mn.sink.actions == [
        DelRouteViaTunnel(HOA),
        DelTunnel(COA1, HA),
        RemoveHao(HOA, HA, "out"),
        RemoveRoute2(HOA, HA, "in"),
    ]
    assert mn.node.home.state == "home" and mn.node.next_deadline() is None


def test_return_home_when_ha_has_no_binding():
    mn = make_mn()
    mn.node.return_home()  # at start-up: clear any stale binding
    (send,) = home_bus(mn)
    assert mn.deliver(ba_from_ha(send.message, status=133, lifetime=0, dst=HOA)) == "accepted"
    assert mn.node.home.state == "home"


def test_binding_expires_without_refresh_answer():
    mn = make_mn()
    mn.node.move_to(COA1)
    (send,) = home_bus(mn)
    mn.deliver(ba_from_ha(send.message, lifetime=25))  # 100 s
    run_until(mn, mn.node.home.sent + 100)
    assert mn.node.home.state == "registering"
    assert mn.node.stats["home_binding_expired"] == 1


def test_brr_from_home_agent_triggers_refresh():
    mn = registered_mn()
    brr = received(SendMH(HA, COA1, BindingRefreshRequest(), rh2=HOA))
    assert mn.deliver(brr) == "accepted"
    assert len(home_bus(mn)) == 1
    assert (
        mn.deliver(received(SendMH(ATTACKER, COA1, BindingRefreshRequest()))) == "rejected:unexpected_source"
    )


# ----------------------------------------------------------------- route optimisation checks


def ro_mn(**kw):
    return registered_mn(mode="ro", correspondents=(CN,), **kw)


def test_rr_starts_after_home_registration():
    mn = make_mn(mode="ro", correspondents=(CN,))
    mn.node.move_to(COA1)
    assert not [s for s in mn.sink.sent() if s.dst == CN]  # nothing before the home BA
    (send,) = home_bus(mn)
    mn.sink.drain()
    mn.deliver(ba_from_ha(send.message))
    hoti = [s for s in mn.sink.sent() if isinstance(s.message, HomeTestInit)]
    coti = [s for s in mn.sink.sent() if isinstance(s.message, CareOfTestInit)]
    assert len(hoti) == 1 and hoti[0].src == HOA and hoti[0].dst == CN and hoti[0].via_tunnel
    assert len(coti) == 1 and coti[0].src == COA1 and not coti[0].via_tunnel
    assert hoti[0].message.cookie != coti[0].message.cookie


def _rr_msgs(mn):
    hoti = next(s.message for s in mn.sink.sent() if isinstance(s.message, HomeTestInit))
    coti = next(s.message for s in mn.sink.sent() if isinstance(s.message, CareOfTestInit))
    return hoti, coti


def test_hot_checks():
    mn = make_mn(mode="ro", correspondents=(CN,))
    mn.node.move_to(COA1)
    (send,) = home_bus(mn)
    mn.deliver(ba_from_ha(send.message))
    hoti, _ = _rr_msgs(mn)
    good = HomeTest(nonce_index=1, cookie=hoti.cookie, token=b"T" * 8)
    assert mn.deliver(received(SendMH(CN, HOA, good))) == "rejected:not_via_tunnel"
    assert mn.deliver(received(SendMH(ATTACKER, HOA, good), via_tunnel=True)) == "rejected:unexpected_source"
    wrong = HomeTest(nonce_index=1, cookie=b"\x00" * 8, token=b"T" * 8)
    assert mn.deliver(received(SendMH(CN, HOA, wrong), via_tunnel=True)) == "rejected:unmatched_cookie"
    assert mn.deliver(received(SendMH(CN, COA1, good), via_tunnel=True)) == "rejected:wrong_destination"
    assert mn.deliver(received(SendMH(CN, HOA, good), via_tunnel=True)) == "accepted"
    assert (
        mn.deliver(received(SendMH(CN, HOA, good), via_tunnel=True)) == "rejected:unmatched_cookie"
    )  # used up
    cot_wrong = CareOfTest(nonce_index=2, cookie=hoti.cookie, token=b"C" * 8)
    assert mn.deliver(received(SendMH(CN, COA1, cot_wrong))) == "rejected:unmatched_cookie"


def test_bu_to_correspondent_is_authorised_correctly():
    mn = make_mn(mode="ro", correspondents=(CN,), cn_ack=True)
    mn.node.move_to(COA1)
    (send,) = home_bus(mn)
    mn.deliver(ba_from_ha(send.message))
    hoti, coti = _rr_msgs(mn)
    mn.sink.drain()
    mn.deliver(received(SendMH(CN, HOA, HomeTest(11, hoti.cookie, b"H" * 8)), via_tunnel=True))
    assert mn.sink.actions == []  # waits for the care-of test too
    mn.deliver(received(SendMH(CN, COA1, CareOfTest(12, coti.cookie, b"C" * 8))))
    acts = mn.sink.actions
    assert acts[:2] == [InstallHao(HOA, COA1, CN, "out"), InstallRoute2(HOA, COA1, CN, "in")]
    send = acts[2]
    bu = send.message
    assert send.src == COA1 and send.dst == CN and send.hao == HOA
    assert not bu.home and bu.ack and bu.lifetime == 105
    assert find_option(bu, NonceIndices) == NonceIndices(11, 12)
    assert isinstance(bu.options[-1], BindingAuthorizationData)
    kbm = binding_management_key(b"H" * 8, b"C" * 8)
    assert verify(send.wire(), kbm, COA1, CN)
    # BA from the CN must carry a valid authenticator
    forged = BindingAcknowledgement(status=0, seq=bu.seq, lifetime=105)
    assert mn.deliver(received(SendMH(CN, COA1, sign(forged, b"x" * 20, COA1, CN), rh2=HOA))) == (
        "rejected:bad_authenticator"
    )
    assert mn.node.cns[CN].state == "bu_sent"
    assert mn.deliver(received(SendMH(CN, COA1, sign(forged, kbm, COA1, CN), rh2=HOA))) == "accepted"
    assert mn.node.cns[CN].state == "bound"


def _away_with_rr_tokens(mn) -> None:
    """Away at COA1, registered with the HA, HoT (index 11, token H...) and CoT (12, C...) in."""
    mn.node.move_to(COA1)
    (send,) = home_bus(mn)
    mn.deliver(ba_from_ha(send.message))
    hoti, coti = _rr_msgs(mn)
    mn.deliver(received(SendMH(CN, HOA, HomeTest(11, hoti.cookie, b"H" * 8)), via_tunnel=True))
    mn.deliver(received(SendMH(CN, COA1, CareOfTest(12, coti.cookie, b"C" * 8))))


def test_without_cn_ack_a_ba_135_from_the_correspondent_resynchronises():
    """The CN keeps the last sequence number of a binding that is gone (issue 14): a restarted MN's
    random number can be older, and the CN refuses its BU with an authenticated BA 135 even
    without the A flag. The MN, which counted itself bound, resends with the CN's number + 1
    (found on the twin: without this the MN believed in a binding the CN never made)."""
    mn = make_mn(mode="ro", correspondents=(CN,), cn_ack=False)
    _away_with_rr_tokens(mn)
    assert mn.node.cns[CN].state == "bound"
    bu = mn.sink.sent()[-1].message
    assert not bu.ack
    mn.sink.drain()
    kbm = binding_management_key(b"H" * 8, b"C" * 8)
    kept = (bu.seq + 1000) % 65536
    refusal = sign(BindingAcknowledgement(status=135, seq=kept), kbm, COA1, CN)
    assert mn.deliver(received(SendMH(CN, COA1, refusal, rh2=HOA))) == "accepted"
    (again,) = [s.message for s in mn.sink.sent() if isinstance(s.message, BindingUpdate)]
    assert again.seq == (kept + 1) % 65536
    # an accepting BA while bound, or a forged 135, is still not taken
    forged = sign(BindingAcknowledgement(status=135, seq=kept), b"x" * 20, COA1, CN)
    assert mn.deliver(received(SendMH(CN, COA1, forged, rh2=HOA))) == "rejected:bad_authenticator"
    late = sign(BindingAcknowledgement(status=0, seq=again.seq), kbm, COA1, CN)
    assert mn.deliver(received(SendMH(CN, COA1, late, rh2=HOA))) == "rejected:unsolicited"


def test_ba_from_the_correspondent_for_an_earlier_transmission_binds():
    """The same rule for the correspondent's BA (A flag): any transmission of the outstanding BU,
    checked with the same Kbm."""
    mn = make_mn(mode="ro", correspondents=(CN,), cn_ack=True)
    _away_with_rr_tokens(mn)
    first = mn.sink.sent()[-1].message
    mn.sink.drain()
    mn.clock.advance(mn.node.timer_deadline(("cn_bu", CN)) - mn.clock.monotonic())
    mn.node.tick()
    (again,) = [s.message for s in mn.sink.sent() if isinstance(s.message, BindingUpdate)]
    assert again.seq == (first.seq + 1) % 65536
    kbm = binding_management_key(b"H" * 8, b"C" * 8)
    ba = sign(BindingAcknowledgement(status=0, seq=first.seq, lifetime=105), kbm, COA1, CN)
    assert mn.deliver(received(SendMH(CN, COA1, ba, rh2=HOA))) == "accepted"
    assert mn.node.cns[CN].state == "bound"
    assert mn.node.stats["cn_ba_for_earlier_transmission"] == 1
    stale = sign(BindingAcknowledgement(status=0, seq=(first.seq - 1) % 65536, lifetime=105), kbm, COA1, CN)
    assert mn.deliver(received(SendMH(CN, COA1, stale, rh2=HOA))) == "rejected:unsolicited"


@pytest.mark.parametrize(("status", "home", "careof"), [(136, 1, 0), (137, 0, 1), (138, 1, 1)])
def test_expired_nonce_ba_restarts_the_right_tests(status, home, careof):
    mn = make_mn(mode="ro", correspondents=(CN,), cn_ack=True)
    _away_with_rr_tokens(mn)
    bu = mn.sink.sent()[-1].message
    mn.sink.drain()
    ba = BindingAcknowledgement(status=status, seq=bu.seq)
    assert mn.deliver(received(SendMH(CN, COA1, ba, rh2=HOA))) == "accepted"
    sent = mn.sink.sent()
    assert sum(isinstance(s.message, HomeTestInit) for s in sent) == home
    assert sum(isinstance(s.message, CareOfTestInit) for s in sent) == careof


def test_binding_error_2_stops_route_optimisation():
    mn = ro_mn()
    be = received(SendMH(CN, COA1, BindingError(status=2, home_address=HOA)))
    assert mn.deliver(be) == "accepted"
    assert mn.node.cns[CN].state == "unsupported" and mn.node.stats["cn_unsupported"] == 1
    assert not [t for t in mn.node._timers if isinstance(t, tuple) and t[1] == CN]


def test_rr_gives_up_after_max_attempts():
    mn = make_mn(mode="ro", correspondents=(CN,), cn_max_attempts=3)
    mn.node.move_to(COA1)
    (send,) = home_bus(mn)
    mn.deliver(ba_from_ha(send.message, lifetime=1000))
    t0 = mn.clock.monotonic()
    run_until(mn, t0 + 60)
    hotis = [s for s in mn.sink.sent() if isinstance(s.message, HomeTestInit)]
    assert len(hotis) == 3
    assert len({s.message.cookie for s in hotis}) == 1  # retransmissions keep the cookie
    assert mn.node.cns[CN].state == "failed" and mn.node.stats["cn_gave_up"] == 1
