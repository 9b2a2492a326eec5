"""Movement detection decisions (modes ra and l2, optimistic DAD, prefix cache) and their effect on the MN."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from mvpn_lab.mip6.core.actions import (
    ConfigureAddress,
    RemoveAddress,
    SendRouterSolicitation,
    UseCachedRouter,
)
from mvpn_lab.mip6.core.movement import (
    AtHome,
    CareOfAddressLost,
    CareOfAddressReady,
    MovementDetector,
    address_from,
)
from mvpn_lab.mip6.wire.messages import BindingUpdate

from ._helpers import COA1, COA2, FOREIGN1, FOREIGN2, HA, HOME_PREFIX, IID, make_mn


def detector(mode="ra", **kw):
    return MovementDetector(mode=mode, home_prefix=HOME_PREFIX, **kw)


def test_address_from_prefix_and_iid():
    assert address_from(FOREIGN1, IID) == COA1
    assert address_from(FOREIGN2, IID) == COA2


def test_ra_mode_waits_for_ra_and_dad():
    d = detector("ra")
    assert d.on_link_up("wlan0", network="VISITME") == []
    # an address the kernel made before any RA told us the prefix is not used yet
    assert d.on_address("wlan0", COA1, "tentative") == []
    assert d.on_router_advertisement("wlan0", [FOREIGN1]) == []
    assert d.on_address("wlan0", COA1, "optimistic") == []  # optimistic DAD off
    assert d.on_address("wlan0", COA1, "preferred") == [CareOfAddressReady("wlan0", COA1)]
    assert d.on_address("wlan0", COA1, "preferred") == []  # no repeat


def test_ra_mode_with_optimistic_dad():
    d = detector("ra", optimistic_dad=True)
    d.on_router_advertisement("wlan0", [FOREIGN1])
    assert d.on_address("wlan0", COA1, "optimistic") == [CareOfAddressReady("wlan0", COA1)]


def test_address_ready_before_ra_is_picked_up_by_the_ra():
    d = detector("ra")
    assert d.on_address("wlan0", COA1, "preferred") == []
    assert d.on_router_advertisement("wlan0", [FOREIGN1]) == [CareOfAddressReady("wlan0", COA1)]


def test_new_prefix_means_old_coa_lost():
    d = detector("ra")
    d.on_router_advertisement("wlan0", [FOREIGN1])
    d.on_address("wlan0", COA1, "preferred")
    out = d.on_router_advertisement("wlan0", [FOREIGN2])
    assert out == [CareOfAddressLost("wlan0", COA1)]
    assert d.on_address("wlan0", COA2, "preferred") == [CareOfAddressReady("wlan0", COA2)]


def test_home_prefix_means_at_home():
    d = detector("ra")
    d.on_router_advertisement("wlan0", [FOREIGN1])
    d.on_address("wlan0", COA1, "preferred")
    assert d.on_router_advertisement("wlan0", [HOME_PREFIX]) == [
        CareOfAddressLost("wlan0", COA1),
        AtHome("wlan0"),
    ]
    assert d.on_router_advertisement("wlan0", [HOME_PREFIX]) == []  # once
    assert d.on_address("wlan0", IPv6Address("2001:db8:1::100"), "preferred") == []


def test_l2_mode_solicits_on_link_up():
    d = detector("l2", optimistic_dad=True)
    assert d.on_link_up("wlan0", network="VISITME", iid=IID) == [SendRouterSolicitation("wlan0")]


def test_l2_prefix_cache_configures_address_before_ra():
    d = detector("l2", optimistic_dad=True, prefix_cache=True)
    d.on_link_up("wlan0", network="VISITME", iid=IID)
    d.on_router_advertisement("wlan0", [FOREIGN1])  # learn
    d.on_link_up("wlan0", network="LOCAL", iid=IID)
    d.on_router_advertisement("wlan0", [HOME_PREFIX])  # learn home network too
    out = d.on_link_up("wlan0", network="VISITME")
    assert out == [ConfigureAddress("wlan0", COA1, 64, True), SendRouterSolicitation("wlan0")]
    # the kernel reports the optimistic address: ready at once, no RA needed
    assert d.on_address("wlan0", COA1, "optimistic") == [CareOfAddressReady("wlan0", COA1)]
    assert d.on_router_advertisement("wlan0", [FOREIGN1]) == []  # prediction confirmed
    # back home, the deregistration comes before the clean-up and the RS
    assert d.on_link_up("wlan0", network="LOCAL") == [
        CareOfAddressLost("wlan0", COA1),
        AtHome("wlan0"),
        RemoveAddress("wlan0", COA1),  # the configured (permanent) address leaves with its network
        SendRouterSolicitation("wlan0"),
    ]
    assert d.status()["prefix_cache"] == {"LOCAL": str(HOME_PREFIX), "VISITME": str(FOREIGN1)}


ROUTER = IPv6Address("fe80::2")


def test_l2_prefix_cache_remembers_the_router_for_a_default_route_before_the_ra():
    d = detector("l2", optimistic_dad=True, prefix_cache=True)
    d.on_link_up("wlan0", network="VISITME", iid=IID)
    d.on_router_advertisement("wlan0", [FOREIGN1], router=ROUTER)
    d.on_link_up("wlan0", network="LOCAL", iid=IID)
    out = d.on_link_up("wlan0", network="VISITME")
    # the route comes before the address, whose optimistic state sends the Binding Update
    assert out == [
        UseCachedRouter("wlan0", ROUTER),
        ConfigureAddress("wlan0", COA1, 64, True),
        SendRouterSolicitation("wlan0"),
    ]
    assert d.status()["router_cache"] == {"VISITME": str(ROUTER)}


def test_prefix_cache_survives_export_and_import_and_skips_bad_entries():
    d = detector("l2", optimistic_dad=True, prefix_cache=True)
    d.on_link_up("wlan0", network="VISITME", iid=IID)
    d.on_router_advertisement("wlan0", [FOREIGN1], router=ROUTER)
    saved = d.export_cache()
    assert saved == {"VISITME": {"prefix": str(FOREIGN1), "router": str(ROUTER)}}
    fresh = detector("l2", optimistic_dad=True, prefix_cache=True)
    bad = {
        "A": {"prefix": "not a prefix"},
        "B": {"prefix": "2001:db8::/48"},  # not a /64
        "C": {"prefix": str(FOREIGN2), "router": "2001:db8::1"},  # router not link-local
        "D": "garbage",
    }
    assert fresh.import_cache({**saved, **bad}) == 1
    assert fresh.import_cache(["not", "a", "dict"]) == 0
    assert fresh.export_cache() == saved
    fresh.on_link_up("wlan0", network="LOCAL", iid=IID)
    assert UseCachedRouter("wlan0", ROUTER) in fresh.on_link_up("wlan0", network="VISITME")


def test_l2_wrong_prediction_is_withdrawn():
    d = detector("l2", optimistic_dad=True, prefix_cache=True)
    d.on_link_up("wlan0", network="VISITME", iid=IID)
    d.on_router_advertisement("wlan0", [FOREIGN1])
    d.on_link_up("wlan0", network="VISITME")
    d.on_address("wlan0", COA1, "optimistic")
    out = d.on_router_advertisement("wlan0", [FOREIGN2])  # the network was renumbered
    assert out == [RemoveAddress("wlan0", COA1), CareOfAddressLost("wlan0", COA1)]
    assert d.on_address("wlan0", COA2, "optimistic") == [CareOfAddressReady("wlan0", COA2)]


def test_prefix_cache_is_refused_in_ra_mode():
    # the rule lives in the config model (config.prefix_cache_applies), which refuses such a
    # configuration in one line; the detector refuses it too rather than ignore it
    with pytest.raises(ValueError, match="needs movement detection l2, not ra"):
        detector("ra", prefix_cache=True)
    assert detector("l2", prefix_cache=True).prefix_cache


def test_dad_failure_and_link_down_lose_the_coa():
    d = detector("ra")
    d.on_router_advertisement("wlan0", [FOREIGN1])
    d.on_address("wlan0", COA1, "preferred")
    assert d.on_address("wlan0", COA1, "dadfailed") == [CareOfAddressLost("wlan0", COA1)]
    d.on_address("wlan0", COA1, "preferred")
    assert d.on_link_down("wlan0") == [CareOfAddressLost("wlan0", COA1)]
    assert d.on_address("wlan0", COA1, "preferred") == []  # link is down
    with pytest.raises(ValueError):
        d.on_address("wlan0", COA1, "weird")
    with pytest.raises(ValueError):
        MovementDetector(mode="gps", home_prefix=HOME_PREFIX)


# ----------------------------------------------------------------- wired into the mobile node


def test_mn_l2_handover_sends_bu_on_optimistic_address():
    mn = make_mn(movement_detection="l2", optimistic_dad=True, prefix_cache=True)
    node = mn.node
    node.on_link_up("wlan0", network="VISITME", iid=IID)
    node.on_router_advertisement("wlan0", [FOREIGN1])
    node.on_address("wlan0", COA1, "optimistic")
    assert node.location == "away" and node.coa == COA1
    bus = [s for s in mn.sink.sent() if isinstance(s.message, BindingUpdate)]
    assert len(bus) == 1 and bus[0].src == COA1 and bus[0].dst == HA
    mn.sink.drain()
    # next time on this network: RS + address at link-up; BU as soon as the kernel has the address
    node.on_link_down("wlan0")
    node.on_link_up("wlan0", network="OTHER")
    node.on_link_up("wlan0", network="VISITME")
    assert ConfigureAddress("wlan0", COA1, 64, True) in mn.sink.actions
    assert SendRouterSolicitation("wlan0") in mn.sink.actions
    node.on_address("wlan0", COA1, "optimistic")
    assert [s.src for s in mn.sink.sent()] == [COA1]


def test_mn_ra_mode_returns_home():
    mn = make_mn()
    node = mn.node
    node.on_router_advertisement("eth0", [FOREIGN1])
    node.on_address("eth0", COA1, "preferred")
    assert node.location == "away"
    node.on_router_advertisement("eth0", [HOME_PREFIX])
    assert node.location == "home" and node.home.state == "deregistering"
    assert node.coa is None


def test_the_predicted_address_is_removed_after_link_down_only_on_another_network():
    # a forced handover drops the carrier first: up VISITME, down, up LOCAL
    d = detector("l2", optimistic_dad=True, prefix_cache=True)
    d.on_link_up("wlan0", network="VISITME", iid=IID)
    d.on_router_advertisement("wlan0", [FOREIGN1], router=ROUTER)
    d.on_link_down("wlan0")
    d.on_link_up("wlan0", network="LOCAL")
    d.on_router_advertisement("wlan0", [HOME_PREFIX])
    d.on_link_down("wlan0")
    out = d.on_link_up("wlan0", network="VISITME")  # predicts COA1 again
    assert ConfigureAddress("wlan0", COA1, 64, True) in out
    d.on_link_down("wlan0")
    assert RemoveAddress("wlan0", COA1) in d.on_link_up("wlan0", network="LOCAL")
    # back on the same network after a carrier loss: the address stays (and is predicted again)
    d.on_link_down("wlan0")
    d.on_link_up("wlan0", network="VISITME")
    d.on_link_down("wlan0")
    out = d.on_link_up("wlan0", network="VISITME")
    assert RemoveAddress("wlan0", COA1) not in out and ConfigureAddress("wlan0", COA1, 64, True) in out
