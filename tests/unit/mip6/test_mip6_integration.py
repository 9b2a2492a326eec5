"""MN, HA and CN state machines talking through a fake network (real encoded bytes, fake clock)."""

from __future__ import annotations

import json

from mvpn_lab.mip6.core.actions import (
    AddHostRoute,
    DelHostRoute,
    InstallRoute2,
    ProxyNdp,
    RemoveHao,
    RemoveRoute2,
    SendMH,
    SetTunnel,
)
from mvpn_lab.mip6.wire.messages import (
    AlternateCareOfAddress,
    BindingAcknowledgement,
    BindingUpdate,
    CareOfTestInit,
    HomeTestInit,
    decode_mh,
)

from ._helpers import ATTACKER, CN, COA1, COA2, HA, HOA, received
from ._helpers import network as make_network

RO = {"mode": "ro", "correspondents": (CN,)}


def test_bidirectional_tunnel_registration():
    net = make_network(with_cn=False)
    net.mn.node.move_to(COA1)
    net.run(1)
    assert net.mn.node.home.state == "registered"
    entry = net.ha.node.cache.get(HOA)
    assert entry.careof_address == COA1 and entry.seq == net.mn.node.home.seq
    assert SetTunnel(HA, COA1) in net.actions["ha"] and ProxyNdp(HOA) in net.actions["ha"]
    assert SetTunnel(COA1, HA) in net.actions["mn"]
    assert [(n, s.message.NAME, r) for n, s, r in net.delivered] == [
        ("ha", "BU", "accepted"),
        ("mn", "BA", "accepted"),
    ]


def test_lost_bus_are_retransmitted_until_registered():
    lost = {"n": 0}

    def drop(send: SendMH) -> bool:
        if isinstance(send.message, BindingUpdate) and lost["n"] < 3:
            lost["n"] += 1
            return True
        return False

    net = make_network(with_cn=False)
    net.drop = drop
    start = net.clock.monotonic()
    net.mn.node.move_to(COA1)
    net.run(20)
    assert net.mn.node.home.state == "registered"
    # sent at 0, 1.5, 4.5, 10.5 s; the fourth got through
    assert net.mn.node.home.accepted - start == 10.5
    assert net.mn.node.home.transmissions == 4
    assert net.ha.node.stats["registrations"] == 1


def test_long_run_refreshes_keep_bindings_alive():
    net = make_network(mn={**RO, "home_lifetime": 600})
    net.mn.node.move_to(COA1)
    net.run(3 * 3600)
    mn, ha, cn = net.mn.node, net.ha.node, net.cn.node
    assert mn.home.state == "registered" and HOA in ha.cache and HOA in cn.cache
    assert ha.stats["expired"] == 0 and cn.stats["expired"] == 0
    # home: refresh every 480 s; CN: every 336 s with a fresh return routability test
    assert mn.stats["home_refreshes"] == 3 * 3600 // 480
    assert mn.stats["cn_refreshes"] == 3 * 3600 // 336
    assert cn.stats["rx_HoTI"] == 1 + mn.stats["cn_refreshes"]
    for node in (mn, ha, cn):
        assert node.rejected.as_dict() == {}


def test_route_optimisation_and_handover_reuses_home_token():
    net = make_network(mn={**RO, "cn_ack": True})
    mn, cn = net.mn.node, net.cn.node
    mn.move_to(COA1)
    net.run(2)
    assert mn.cns[CN].state == "bound" and cn.cache.get(HOA).careof_address == COA1
    assert InstallRoute2(HOA, COA1, None, "out") in net.actions["cn"]
    net.run(30)
    mn.move_to(COA2)
    net.run(2)
    assert mn.cns[CN].state == "bound" and cn.cache.get(HOA).careof_address == COA2
    assert net.ha.node.cache.get(HOA).careof_address == COA2
    # one HoTI (the home token was still fresh after 32 s), two CoTIs
    assert len(net.sent_by("mn", HomeTestInit)) == 1
    assert len(net.sent_by("mn", CareOfTestInit)) == 2
    # The HoTI went through the tunnel, i.e. the CN saw the home address as its source.
    (hoti,) = net.sent_by("mn", HomeTestInit)
    assert hoti.via_tunnel and hoti.src == HOA
    # After MAX_TOKEN_LIFETIME the home test is repeated on the next move.
    net.run(300)
    mn.move_to(COA1)
    net.run(2)
    assert len(net.sent_by("mn", HomeTestInit)) >= 2 and mn.cns[CN].state == "bound"


def test_return_home_removes_all_bindings():
    net = make_network(mn=RO)
    mn = net.mn.node
    mn.move_to(COA1)
    net.run(2)
    assert HOA in net.cn.node.cache
    net.actions["mn"].clear()
    mn.return_home()
    net.run(2)
    assert mn.home.state == "home" and mn.location == "home"
    assert HOA not in net.ha.node.cache and HOA not in net.cn.node.cache
    assert DelHostRoute(HOA) in net.actions["ha"]
    assert RemoveHao(HOA, CN, "out") in net.actions["mn"] and RemoveRoute2(HOA, CN, "in") in net.actions["mn"]
    (hoti,) = net.sent_by("mn", HomeTestInit)
    assert not hoti.via_tunnel  # at home the home test goes directly
    assert mn.cns[CN].state == "idle"
    assert all(r == "accepted" for _, _, r in net.delivered)


def test_attacks_do_not_disturb_bindings():
    net = make_network(mn={**RO, "cn_ack": True})
    mn, ha, cn = net.mn.node, net.ha.node, net.cn.node
    mn.move_to(COA1)
    net.run(2)
    snapshot = json.dumps([ha.status()["binding_cache"], cn.status()["binding_cache"]])

    # 1. replay of the MN's BU to the CN (captured on the wire)
    bu_to_cn = next(s for _, s, _ in net.delivered if s.dst == CN and isinstance(s.message, BindingUpdate))
    assert cn.receive(received(bu_to_cn)) == "rejected:sequence_out_of_window"
    # 2. same BU replayed from the attacker's address (care-of address hijack)
    hijack = SendMH(ATTACKER, CN, bu_to_cn.message, hao=HOA)
    assert cn.receive(received(hijack)) == "rejected:bad_authenticator"
    # 3. a BU to the HA without ESP, and a protected but replayed one
    bu_to_ha = next(s for _, s, _ in net.delivered if s.dst == HA)
    forged = SendMH(
        ATTACKER,
        HA,
        BindingUpdate(
            seq=(bu_to_ha.message.seq + 5) % 65536,
            lifetime=100,
            ack=True,
            home=True,
            options=(AlternateCareOfAddress(ATTACKER),),
        ),
        hao=HOA,
    )
    assert ha.receive(received(forged)) == "rejected:unprotected"
    assert ha.receive(received(bu_to_ha)) == "rejected:sequence_out_of_window"
    # 4. garbage
    for junk in (b"", b"\x3b\x01", bytes(7), b"\x3b\x00\x06\x00\x00\x00\x00\x00"):
        ha.receive(received(bu_to_ha, mh=junk))
        cn.receive(received(bu_to_cn, mh=junk))
    net.pump()  # deliver the 135 BAs to the MN: authenticated, but nothing outstanding
    assert json.dumps([ha.status()["binding_cache"], cn.status()["binding_cache"]]) == snapshot
    assert mn.home.state == "registered" and mn.cns[CN].state == "bound"
    assert mn.rejected.as_dict() == {"unsolicited": 2}  # the two 135 answers change nothing on the MN
    assert ha.rejected.as_dict() == {"malformed": 4, "sequence_out_of_window": 1, "unprotected": 1}
    assert cn.rejected.as_dict() == {"bad_authenticator": 1, "malformed": 4, "sequence_out_of_window": 1}


def test_ha_reject_reaches_mn_and_stops_it():
    net = make_network(with_cn=False, ha={"allowed_mobile_nodes": ()})
    net.mn.node.move_to(COA1)
    net.run(60)
    assert net.mn.node.home.state == "failed"
    assert net.ha.node.rejected.as_dict() == {"unknown_mobile_node": 1}
    (ba,) = net.sent_by("ha", BindingAcknowledgement)
    assert decode_mh(ba.wire()).status == 129


def test_unsupported_correspondent_falls_back_to_tunnel():
    net = make_network(mn={**RO, "cn_max_attempts": 2})
    net.cn = None  # the correspondent does not run Mobile IPv6 at all: tests go unanswered
    net.mn.node.move_to(COA1)
    net.run(30)
    assert net.mn.node.cns[CN].state == "failed"
    assert net.mn.node.home.state == "registered"
    assert not [a for a in net.actions["mn"] if isinstance(a, InstallRoute2) and a.peer == CN]


def test_ha_expiry_when_mn_disappears():
    net = make_network(with_cn=False, mn={"home_lifetime": 120})
    net.mn.node.move_to(COA1)
    net.run(1)
    net.mn.node.coa_lost()
    net.run(200)
    assert HOA not in net.ha.node.cache
    assert AddHostRoute(HOA, COA1) in net.actions["ha"] and DelHostRoute(HOA) in net.actions["ha"]


def test_correspondent_that_goes_silent_is_dropped_from_route_optimisation():
    net = make_network(mn={**RO, "cn_max_attempts": 3})
    mn = net.mn.node
    mn.move_to(COA1)
    net.run(2)
    assert mn.cns[CN].state == "bound"
    net.cn = None  # the correspondent vanishes; the refresh's return routability test fails
    net.run(420)
    assert mn.cns[CN].state == "failed" and mn.stats["cn_gave_up"] == 1
    assert RemoveHao(HOA, CN, "out") in net.actions["mn"] and RemoveRoute2(HOA, CN, "in") in net.actions["mn"]
    assert mn.home.state == "registered"  # the tunnel still works
