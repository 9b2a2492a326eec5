"""Decisions the daemon used to take itself and the core now emits as actions: the mobile node's
deregistration at exit and its BA check, the Neighbour Advertisements of the home agent and of
the mobile node back home, and the TCP resume after a handover."""

from __future__ import annotations

from mvpn_lab.mip6.core.actions import (
    AnnounceAddress,
    DelRouteViaTunnel,
    ExitDeregistered,
    ProxyNdp,
    ResumeTcp,
    SendMH,
)
from mvpn_lab.mip6.core.mn import MobileNode
from mvpn_lab.mip6.wire.messages import BindingUpdate

from ._helpers import COA1, COA2, HA, HOA, make_ha, make_mn
from .test_mip6_ha import bu_packet
from .test_mip6_mn import ba_from_ha, home_bus, registered_mn


def exit_bu(mn) -> SendMH:
    (send,) = [s for s in mn.sink.sent() if isinstance(s.message, BindingUpdate)]
    return send


def test_exit_deregistration_is_sent_from_the_care_of_address_and_its_ba_ends_the_wait():
    mn = registered_mn(deregister_on_exit=True)
    seq = mn.node.home.seq
    assert mn.node.begin_exit() is True
    send = exit_bu(mn)
    assert send.message.lifetime == 0 and send.message.home and send.message.ack
    assert send.message.seq == (seq + 1) % 65536 and mn.node.exit_seq == send.message.seq
    assert (send.src, send.dst, send.hao) == (COA1, HA, HOA)
    mn.sink.drain()
    # another BA (wrong sequence number) does not end the wait
    mn.deliver(ba_from_ha(send.message, seq=seq, lifetime=0))
    assert not mn.node.exit_acked
    assert ExitDeregistered(HA, send.message.seq) not in mn.sink.actions
    assert mn.deliver(ba_from_ha(send.message, lifetime=0)) == "accepted"
    assert mn.node.exit_acked and ExitDeregistered(HA, send.message.seq) in mn.sink.actions
    assert "accepted:exit_deregistration" in mn.log.getvalue().splitlines()[-1]


def test_no_exit_deregistration_at_home_or_when_not_configured():
    assert registered_mn(deregister_on_exit=False).node.begin_exit() is False
    mn = make_mn(deregister_on_exit=True)  # never left home
    assert mn.node.begin_exit() is False and mn.sink.sent() == [] and mn.node.exit_seq is None


def test_ha_announces_each_address_it_starts_proxying_right_after_the_proxy_entry():
    ha = make_ha(interface="eth1")
    assert ha.deliver(bu_packet(10, 400)) == "accepted"
    acts = ha.sink.actions
    announce = AnnounceAddress(HOA, "eth1", HA, ProxyNdp.kind)
    assert acts.index(announce) == acts.index(ProxyNdp(HOA)) + 1
    ha.sink.drain()
    assert ha.deliver(bu_packet(11, 400)) == "accepted"  # a refresh: already proxied, no announcement
    assert not any(isinstance(a, AnnounceAddress) for a in ha.sink.actions)


def test_ha_without_a_home_link_proxies_but_does_not_announce():
    ha = make_ha()
    assert ha.deliver(bu_packet(10, 400)) == "accepted"
    assert ProxyNdp(HOA) in ha.sink.actions
    assert not any(isinstance(a, AnnounceAddress) for a in ha.sink.actions)


def test_mn_back_home_announces_its_home_address_after_deregistering():
    mn = registered_mn(interfaces=("wlan0",))
    mn.node.return_home()
    (send,) = home_bus(mn)
    mn.sink.drain()
    assert mn.deliver(ba_from_ha(send.message, lifetime=0, dst=HOA)) == "accepted"
    acts = mn.sink.actions
    announce = AnnounceAddress(HOA, "wlan0", HOA, DelRouteViaTunnel.kind)
    assert acts.index(announce) == acts.index(DelRouteViaTunnel(HOA)) + 1


def test_resume_tcp_once_per_completed_handover_only_with_tcp_recovery():
    mn = make_mn(tcp_recovery=True)
    node: MobileNode = mn.node
    node.move_to(COA1)
    (bu,) = home_bus(mn)
    mn.sink.drain()
    assert mn.deliver(ba_from_ha(bu.message)) == "accepted"
    assert [a for a in mn.sink.actions if isinstance(a, ResumeTcp)] == [ResumeTcp(HOA, None, ())]
    mn.sink.drain()
    node.tick()  # nothing new: no second resume
    assert not any(isinstance(a, ResumeTcp) for a in mn.sink.actions)
    node.move_to(COA2)
    (bu,) = home_bus(mn)
    mn.sink.drain()
    assert mn.deliver(ba_from_ha(bu.message, dst=COA2)) == "accepted"
    assert [a for a in mn.sink.actions if isinstance(a, ResumeTcp)] == [ResumeTcp(HOA, None, ())]
    plain = make_mn()
    plain.node.move_to(COA1)
    (bu,) = home_bus(plain)
    assert plain.deliver(ba_from_ha(bu.message)) == "accepted"
    assert not any(isinstance(a, ResumeTcp) for a in plain.sink.actions)
