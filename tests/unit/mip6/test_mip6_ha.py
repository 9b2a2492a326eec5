"""Home agent: BU validation, BA status codes, binding cache and data-plane actions."""

from __future__ import annotations

import dataclasses
import json
from ipaddress import IPv6Address

import pytest

from mvpn_lab.mip6.core.actions import (
    AddHostRoute,
    DelHostRoute,
    DelProxyNdp,
    DelTunnel,
    ProxyNdp,
    SendMH,
    SetTunnel,
    StartDad,
)
from mvpn_lab.mip6.core.config import HAConfig, parse_config
from mvpn_lab.mip6.wire.messages import (
    AlternateCareOfAddress,
    BindingAcknowledgement,
    BindingAuthorizationData,
    BindingError,
    BindingRefreshAdvice,
    BindingUpdate,
    HomeTestInit,
    NonceIndices,
    decode_mh,
    encode_mh,
    find_option,
    lifetime_units,
    strip_padding,
)

from ._helpers import COA1, COA2, HA, HOA, HOA2, HOME_PREFIX, make_ha, received


def bu_packet(
    seq: int,
    lifetime: int = 400,
    *,
    hoa=HOA,
    coa=COA1,
    esp=True,
    ack=True,
    home=True,
    alt=True,
    src=None,
    link_local=False,
):
    src = coa if src is None else src
    bu = BindingUpdate(
        seq=seq,
        lifetime=lifetime_units(lifetime),
        ack=ack,
        home=home,
        link_local=link_local,
        options=(AlternateCareOfAddress(coa),) if alt else (),
    )
    return received(SendMH(src, HA, bu, hao=hoa if src != hoa else None, esp=esp))


def only_ba(bench) -> tuple[SendMH, BindingAcknowledgement]:
    sent = bench.sink.sent()
    assert len(sent) == 1, sent
    assert isinstance(sent[0].message, BindingAcknowledgement)
    # What goes on the wire decodes to the same message.
    assert strip_padding(decode_mh(sent[0].wire())) == sent[0].message
    return sent[0], sent[0].message


def snapshot(bench):
    return json.dumps(bench.node.cache.to_list(bench.clock.monotonic()))


def registered(seq: int = 10, **kw):
    ha = make_ha(**kw)
    assert ha.deliver(bu_packet(seq)) == "accepted"
    ha.sink.drain()
    return ha


def test_first_registration_accepted_with_data_plane():
    ha = make_ha()
    assert ha.deliver(bu_packet(10, 400)) == "accepted"
    actions = ha.sink.actions
    assert SetTunnel(HA, COA1) in actions
    assert AddHostRoute(HOA, COA1) in actions
    assert ProxyNdp(HOA) in actions
    send, ba = only_ba(ha)
    assert (ba.status, ba.seq, ba.lifetime) == (0, 10, 100)
    assert send.dst == COA1 and send.rh2 == HOA and send.src == HA and send.esp
    assert find_option(ba, BindingRefreshAdvice).refresh_interval == 80
    entry = ha.node.cache.get(HOA)
    assert entry.careof_address == COA1 and entry.seq == 10 and entry.lifetime == 400
    # The BA leaves first; the mobile node sets up its side while the HA sets up the data plane.
    assert actions.index(send) < actions.index(SetTunnel(HA, COA1)) < actions.index(AddHostRoute(HOA, COA1))


def test_lifetime_is_capped():
    ha = make_ha(max_binding_lifetime=600)
    ha.deliver(bu_packet(1, 100_000))
    _, ba = only_ba(ha)
    assert ba.lifetime == 150 and ha.node.cache.get(HOA).lifetime == 600


def test_no_ba_without_a_flag_but_binding_made():
    ha = make_ha()
    assert ha.deliver(bu_packet(1, ack=False)) == "accepted"
    assert ha.sink.sent() == []
    assert HOA in ha.node.cache


def test_move_re_points_tunnel():
    ha = registered(10)
    assert ha.deliver(bu_packet(11, coa=COA2)) == "accepted"
    acts = ha.sink.actions
    assert DelTunnel(HA, COA1) in acts and SetTunnel(HA, COA2) in acts and AddHostRoute(HOA, COA2) in acts
    assert not any(isinstance(a, ProxyNdp) for a in acts)  # still proxying, nothing to add
    assert ha.node.cache.get(HOA).careof_address == COA2 and ha.node.cache.get(HOA).updates == 2


def test_refresh_same_coa_has_no_data_plane_churn():
    ha = registered(10)
    ha.deliver(bu_packet(11))
    assert [type(a) for a in ha.sink.actions] == [SendMH]


def test_alt_coa_is_preferred_over_source():
    ha = make_ha()
    bu = BindingUpdate(seq=1, lifetime=10, ack=True, home=True, options=(AlternateCareOfAddress(COA2),))
    ha.deliver(received(SendMH(COA1, HA, bu, hao=HOA, esp=True)))
    assert ha.node.cache.get(HOA).careof_address == COA2
    send, _ = only_ba(ha)
    assert send.dst == COA1  # the BA goes back to where the BU came from


def test_without_alt_coa_source_is_coa():
    ha = make_ha()
    ha.deliver(bu_packet(1, alt=False, coa=COA2))
    assert ha.node.cache.get(HOA).careof_address == COA2


# ----------------------------------------------------------------- rejections


def test_unprotected_bu_dropped_and_counted():
    ha = registered(10)
    before = snapshot(ha)
    assert ha.deliver(bu_packet(11, coa=COA2, esp=False)) == "rejected:unprotected"
    assert ha.sink.actions == [] and snapshot(ha) == before
    assert ha.node.rejected["unprotected"] == 1


def test_protection_not_required_when_configured():
    ha = make_ha(require_ipsec=False)
    assert ha.deliver(bu_packet(1, esp=False)) == "accepted"
    send, _ = only_ba(ha)
    assert send.esp is False


@pytest.mark.parametrize("seq", [10, 9, 10 - 32767 & 0xFFFF, (10 + 32768) & 0xFFFF])
def test_replayed_or_old_sequence_gets_135_and_binding_untouched(seq):
    ha = registered(10)
    before = snapshot(ha)
    assert ha.deliver(bu_packet(seq, coa=COA2)) == "rejected:sequence_out_of_window"
    _, ba = only_ba(ha)
    assert ba.status == 135 and ba.seq == 10 and ba.lifetime == 0
    assert snapshot(ha) == before
    assert not any(isinstance(a, SetTunnel | DelTunnel | AddHostRoute) for a in ha.sink.actions)
    assert ha.node.rejected["sequence_out_of_window"] == 1


@pytest.mark.parametrize(("old", "new"), [(65535, 0), (65000, 100), (10, 10 + 32767)])
def test_sequence_accepted_modulo_2_16(old, new):
    ha = registered(old)
    assert ha.deliver(bu_packet(new, coa=COA2)) == "accepted"
    assert ha.node.cache.get(HOA).seq == new


def test_exact_replay_of_accepted_packet_rejected():
    ha = make_ha()
    pkt = bu_packet(5)
    assert ha.deliver(pkt) == "accepted"
    ha.sink.drain()
    assert ha.deliver(pkt) == "rejected:sequence_out_of_window"


def test_home_address_outside_prefix_gets_132():
    ha = registered(10)
    before = snapshot(ha)
    outside = IPv6Address("2001:db8:99::100")
    assert ha.deliver(bu_packet(1, hoa=outside)) == "rejected:not_home_subnet"
    _, ba = only_ba(ha)
    assert ba.status == 132
    assert snapshot(ha) == before and outside not in ha.node.cache


def test_unknown_mobile_node_gets_129():
    ha = registered(10)
    before = snapshot(ha)
    stranger = IPv6Address("2001:db8:1::bad")
    assert ha.deliver(bu_packet(50, hoa=stranger)) == "rejected:unknown_mobile_node"
    _, ba = only_ba(ha)
    assert ba.status == 129
    assert snapshot(ha) == before
    assert ha.node.rejected["unknown_mobile_node"] == 1


def test_any_mobile_node_when_configured():
    ha = make_ha(allowed_mobile_nodes=None)
    assert ha.deliver(bu_packet(1, hoa=IPv6Address("2001:db8:1::77"))) == "accepted"
    ha.sink.drain()
    assert ha.deliver(bu_packet(1, hoa=HA)) == "rejected:unknown_mobile_node"  # not its own address


def test_bu_without_h_flag_is_dropped():
    ha = make_ha()
    assert ha.deliver(bu_packet(1, home=False)) == "rejected:not_home_registration"
    assert ha.sink.actions == [] and len(ha.node.cache) == 0


@pytest.mark.parametrize("hoa", [IPv6Address("ff02::1"), IPv6Address("fe80::1"), IPv6Address("::")])
def test_invalid_home_address_dropped(hoa):
    ha = make_ha()
    assert ha.deliver(bu_packet(1, hoa=hoa)) == "rejected:invalid_home_address"
    assert ha.sink.actions == []


@pytest.mark.parametrize(
    "coa", [IPv6Address("2001:db8:1::55"), IPv6Address("fe80::2"), IPv6Address("ff05::2")]
)
def test_invalid_careof_address_refused(coa):
    ha = registered(10)
    before = snapshot(ha)
    assert ha.deliver(bu_packet(11, coa=coa, src=COA1)) == "rejected:invalid_careof_address"
    _, ba = only_ba(ha)
    assert ba.status == 128
    assert snapshot(ha) == before


@pytest.mark.parametrize(
    "mh",
    [
        b"",
        b"\x3b",
        b"\x3b\x05\x05\x00\x00\x00" + bytes(10),
        encode_mh(BindingUpdate(seq=1))[:10],
        bytes([59, 1, 5, 0, 0, 0, 0, 11, 0xC0, 0, 0, 100, 3, 9, 0, 0]),  # AltCoA option overruns
    ],
)
def test_garbage_is_counted_and_binding_untouched(mh):
    ha = registered(10)
    before = snapshot(ha)
    pkt = received(SendMH(COA2, HA, BindingUpdate(seq=11), hao=HOA, esp=True), mh=mh)
    assert ha.deliver(pkt) == "rejected:malformed"
    assert ha.sink.actions == [] and snapshot(ha) == before
    assert ha.node.rejected["malformed"] == 1


def test_bad_checksum_counted():
    ha = registered(10)
    pkt = bu_packet(11, coa=COA2)
    mh = bytearray(pkt.mh)
    mh[4] ^= 0xFF
    from dataclasses import replace

    assert ha.deliver(replace(pkt, mh=bytes(mh))) == "rejected:bad_checksum"
    assert ha.node.cache.get(HOA).careof_address == COA1
    # the adapter may say the kernel verified it already
    assert ha.deliver(replace(pkt, mh=bytes(mh), checksum_verified=True)) == "accepted"


def test_unknown_mh_type_answered_with_binding_error_status_2():
    ha = make_ha()
    raw = bytes([59, 1, 99, 0, 0, 0]) + bytes(10)
    pkt = received(SendMH(COA1, HA, BindingUpdate()), mh=raw, checksum_verified=True)
    assert ha.deliver(pkt) == "rejected:unexpected_message"
    (send,) = ha.sink.sent()
    assert isinstance(send.message, BindingError) and send.message.status == 2 and send.dst == COA1
    # rate limited: a second one within a second gets no answer
    ha.sink.drain()
    ha.deliver(pkt)
    assert ha.sink.sent() == [] and ha.node.rejected["rate_limited"] == 1


def test_other_messages_are_unexpected():
    ha = make_ha()
    assert ha.deliver(received(SendMH(HOA, HA, HomeTestInit()))) == "rejected:unexpected_message"


# ----------------------------------------------------------------- deregistration and expiry


def test_deregistration_from_care_of_address():
    ha = registered(10)
    assert ha.deliver(bu_packet(11, lifetime=0)) == "accepted"
    acts = ha.sink.actions
    assert DelHostRoute(HOA) in acts and DelProxyNdp(HOA) in acts and DelTunnel(HA, COA1) in acts
    send, ba = only_ba(ha)
    assert ba.status == 0 and ba.lifetime == 0 and send.rh2 == HOA
    assert HOA not in ha.node.cache
    assert ha.node.next_deadline() is None  # expiry timer cancelled


def test_deregistration_from_home():
    ha = registered(10)
    pkt = received(SendMH(HOA, HA, BindingUpdate(seq=11, lifetime=0, ack=True, home=True), esp=True))
    assert ha.deliver(pkt) == "accepted"
    send, ba = only_ba(ha)
    assert send.dst == HOA and send.rh2 is None and ba.status == 0
    assert HOA not in ha.node.cache
    # the host route goes before the BA (it must reach the home link, not the tunnel); the proxy
    # entry and the tunnel after it, off its path
    kinds = [type(a).__name__ for a in ha.sink.actions]
    assert kinds == ["DelHostRoute", "SendMH", "DelProxyNdp", "DelTunnel"], kinds


def test_deregistration_without_binding_gets_133():
    ha = make_ha()
    assert ha.deliver(bu_packet(1, lifetime=0)) == "rejected:no_binding_to_delete"
    _, ba = only_ba(ha)
    assert ba.status == 133


def test_a_bu_replayed_after_deregistration_meets_135_and_claims_nothing():
    """Issue 14, item 1: the BU that registered COA1 (seq 10), captured and replayed after the MN
    came home and de-registered (seq 11), must not claim the home address again."""
    ha = make_ha()
    captured = bu_packet(10)
    assert ha.deliver(captured) == "accepted"
    ha.sink.drain()
    ha.clock.advance(30)
    assert ha.deliver(bu_packet(11, lifetime=0)) == "accepted"
    ha.sink.drain()
    ha.clock.advance(20)
    assert ha.deliver(captured) == "rejected:sequence_out_of_window"
    _, ba = only_ba(ha)
    assert ba.status == 135 and ba.seq == 11  # the MN's next BU must exceed the de-registration
    assert HOA not in ha.node.cache  # no binding, and no tunnel or route to the old care-of address
    assert [type(a) for a in ha.sink.actions] == [SendMH]
    assert ha.node.rejected["sequence_out_of_window"] == 1
    # the MN itself moves on with a newer number
    assert ha.deliver(bu_packet(12, coa=COA2)) == "accepted"
    assert ha.node.cache.get(HOA).careof_address == COA2


def test_the_last_sequence_number_is_kept_for_the_maximum_binding_lifetime_after_expiry():
    ha = make_ha(max_binding_lifetime=400)
    captured = bu_packet(10)
    assert ha.deliver(captured) == "accepted"
    ha.clock.advance(400)
    ha.node.tick()
    assert HOA not in ha.node.cache
    ha.sink.drain()
    assert ha.node.status()["sequence_numbers_kept"] == [
        {"home_address": str(HOA), "seq": 10, "remaining": 400.0}
    ]
    ha.clock.advance(399)
    assert ha.deliver(captured) == "rejected:sequence_out_of_window"
    ha.sink.drain()
    ha.clock.advance(1)  # the maximum binding lifetime after the expiry: forgotten
    assert ha.deliver(captured) == "accepted"
    assert ha.node.status()["sequence_numbers_kept"] == []


def test_binding_expires_and_is_removed():
    ha = registered(10)
    ha.clock.advance(399)
    ha.node.tick()
    assert HOA in ha.node.cache
    assert ha.node.status()["binding_cache"][0]["remaining"] == pytest.approx(1.0)
    ha.clock.advance(1)
    ha.node.tick()
    assert HOA not in ha.node.cache
    assert DelHostRoute(HOA) in ha.sink.actions and DelTunnel(HA, COA1) in ha.sink.actions
    assert ha.node.stats["expired"] == 1


def test_refresh_extends_binding():
    ha = registered(10)
    ha.clock.advance(300)
    ha.deliver(bu_packet(11))
    ha.clock.advance(300)
    ha.node.tick()
    assert HOA in ha.node.cache
    ha.clock.advance(100)
    ha.node.tick()
    assert HOA not in ha.node.cache


def test_two_mobile_nodes_are_independent():
    ha = registered(10)
    assert ha.deliver(bu_packet(10, hoa=HOA2, coa=COA2)) == "accepted"
    assert len(ha.node.cache) == 2
    ha.sink.drain()
    ha.deliver(bu_packet(11, lifetime=0))
    assert HOA not in ha.node.cache and HOA2 in ha.node.cache


def test_link_local_flag_proxies_link_local_address():
    ha = make_ha()
    ha.deliver(bu_packet(1, link_local=True))
    assert ProxyNdp(IPv6Address("fe80::100")) in ha.sink.actions
    ha.sink.drain()
    ha.deliver(bu_packet(2, lifetime=0, link_local=True))
    assert DelProxyNdp(IPv6Address("fe80::100")) in ha.sink.actions


# ----------------------------------------------------------------- DAD


def test_dad_success_then_accept():
    ha = make_ha(perform_dad=True)
    assert ha.deliver(bu_packet(1)) == "accepted"
    assert ha.sink.drain() == [StartDad(HOA)]
    assert ha.deliver(bu_packet(2)) == "ignored"  # retransmission while DAD runs
    assert ha.sink.drain() == []
    ha.node.on_dad_result(HOA, True)
    _, ba = only_ba(ha)
    assert ba.status == 0 and ba.seq == 2
    assert ha.node.cache.get(HOA).seq == 2
    ha.sink.drain()
    ha.deliver(bu_packet(3, coa=COA2))  # later registrations do not repeat DAD
    assert not ha.sink.of(StartDad)


def test_dad_is_on_by_default_and_probes_the_link_local_address_with_the_l_flag():
    """Issue 14, item 4 (RFC 6275 10.3.1): a first registration waits for DAD of the home address
    and, with L=1, of its link-local address; a duplicate of either gets BA 134."""
    assert HAConfig(address=HA, home_prefix=HOME_PREFIX, allowed_mobile_nodes=None).perform_dad
    fields = {
        "role": "ha",
        "address": str(HA),
        "home_prefix": str(HOME_PREFIX),
        "allowed_mobile_nodes": "any",
    }
    assert parse_config(fields).perform_dad
    ha = make_ha(perform_dad=True)
    assert ha.deliver(bu_packet(1, link_local=True)) == "accepted"
    lla = IPv6Address("fe80::100")  # fe80:: and the home address's interface identifier
    assert sorted(a.address for a in ha.sink.drain()) == sorted([HOA, lla])
    ha.node.on_dad_result(HOA, True)
    assert ha.sink.sent() == [] and HOA not in ha.node.cache  # the link-local probe still runs
    ha.node.on_dad_result(lla, True)
    _, ba = only_ba(ha)
    assert ba.status == 0 and ha.node.cache.get(HOA).link_local
    # a duplicate link-local address fails the registration
    other = make_ha(perform_dad=True)
    other.deliver(bu_packet(1, link_local=True))
    other.sink.drain()
    other.node.on_dad_result(lla, False)
    _, ba = only_ba(other)
    assert ba.status == 134 and HOA not in other.node.cache
    other.sink.drain()
    other.node.on_dad_result(HOA, True)  # the other probe's late report changes nothing
    assert other.sink.actions == [] and HOA not in other.node.cache


def test_dad_failure_gets_134():
    ha = make_ha(perform_dad=True)
    ha.deliver(bu_packet(1))
    ha.sink.drain()
    ha.node.on_dad_result(HOA, False)
    _, ba = only_ba(ha)
    assert ba.status == 134
    assert HOA not in ha.node.cache and ha.node.rejected["dad_failed"] == 1
    ha.sink.drain()
    ha.node.on_dad_result(HOA, True)  # stale report: nothing happens
    assert ha.sink.actions == []


# ----------------------------------------------------------------- status and log


def test_status_is_json_and_counts_reasons():
    ha = registered(10)
    ha.deliver(bu_packet(10))
    ha.deliver(bu_packet(11, esp=False))
    ha.deliver(received(SendMH(COA1, HA, BindingUpdate()), mh=b"junk"))
    ha.clock.advance(100)
    status = json.loads(json.dumps(ha.node.status()))
    assert status["role"] == "ha"
    assert status["rejected"] == {"malformed": 1, "sequence_out_of_window": 1, "unprotected": 1}
    (entry,) = status["binding_cache"]
    assert entry["home_address"] == str(HOA) and entry["remaining"] == pytest.approx(300.0)


def test_every_message_logged_as_json_line():
    ha = make_ha()
    ha.deliver(bu_packet(1))
    ha.deliver(received(SendMH(COA1, HA, BindingUpdate()), mh=b"\x00"))
    lines = [json.loads(line) for line in ha.log.getvalue().splitlines()]
    assert [(r["dir"], r["msg"] and r["msg"]["type"]) for r in lines] == [
        ("tx", "BA"),
        ("rx", "BU"),
        ("rx", None),
    ]
    assert lines[1]["result"] == "accepted" and lines[1]["hao"] == str(HOA)
    assert lines[2]["result"] == "rejected:malformed" and "truncated" in lines[2]["error"]
    assert all(r["ts"].endswith("Z") and r["epoch"] > 1.6e9 for r in lines)


# ------------------------------------------------------------------ issue 14: stricter checks


RR_IN_HOME = "rr_options_in_home_registration"


def _bu_with(options, seq=20, *, home=True, payload_proto=59):
    bu = BindingUpdate(seq=seq, lifetime=lifetime_units(400), ack=True, home=home, options=tuple(options))
    bu = dataclasses.replace(bu, payload_proto=payload_proto)
    return received(SendMH(COA1, HA, bu, hao=HOA, esp=True))


@pytest.mark.parametrize(
    ("options", "payload_proto", "reason"),
    [
        ([AlternateCareOfAddress(COA1), AlternateCareOfAddress(COA2)], 59, "invalid_options"),
        ([BindingAuthorizationData(bytes(12)), AlternateCareOfAddress(COA1)], 59, "invalid_options"),
        ([AlternateCareOfAddress(COA1), NonceIndices(1, 2)], 59, RR_IN_HOME),
        (
            [AlternateCareOfAddress(COA1), BindingAuthorizationData(bytes(12))],
            59,
            "rr_options_in_home_registration",
        ),
        ([AlternateCareOfAddress(COA1)], 6, "bad_payload_proto"),
    ],
)
def test_structurally_wrong_bus_are_dropped_and_counted(options, payload_proto, reason):
    """Issue 14, item 7, as UMIP parses: each of these BUs is otherwise a valid first registration."""
    ha = make_ha()
    assert ha.deliver(_bu_with(options, payload_proto=payload_proto)) == f"rejected:{reason}"
    assert not ha.sink.actions and HOA not in ha.node.cache
    assert ha.node.rejected[reason] == 1
    assert ha.deliver(_bu_with([AlternateCareOfAddress(COA1)], seq=21)) == "accepted"  # the same, well formed


def test_a_registration_type_change_gets_139():
    """Issue 14, item 8: a BU without H for a home address that has a home registration."""
    ha = registered(10)
    before = snapshot(ha)
    assert ha.deliver(_bu_with([AlternateCareOfAddress(COA2)], seq=11, home=False)) == (
        "rejected:registration_type_change"
    )
    _, ba = only_ba(ha)
    assert ba.status == 139 and snapshot(ha) == before
    fresh = make_ha()  # no binding: nothing to change, silently dropped as before
    assert (
        fresh.deliver(_bu_with([AlternateCareOfAddress(COA2)], home=False))
        == "rejected:not_home_registration"
    )
    assert not fresh.sink.sent()


def test_the_granted_lifetime_never_outlasts_the_home_prefix():
    """Issue 14, item 8: RFC 6275 10.3.1, the lifetime is capped by the home prefix's valid one."""
    ha = make_ha()
    ha.node.on_home_prefix_lifetime(100.0)
    ha.clock.advance(30)  # 70 s left
    assert ha.deliver(bu_packet(10, lifetime=400)) == "accepted"
    _, ba = only_ba(ha)
    assert ba.lifetime == 70 // 4  # units of 4 s, rounded down
    ha.sink.drain()
    ha.node.on_home_prefix_lifetime(None)  # forever again
    assert ha.deliver(bu_packet(11, lifetime=400)) == "accepted"
    _, ba = only_ba(ha)
    assert ba.lifetime == lifetime_units(400)
