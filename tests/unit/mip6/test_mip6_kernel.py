"""Kernel adapter: exact iproute2 command lines per action, idempotency, errors, xfrm send logic."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

import pytest

from mvpn_lab.collection import module_utils
from mvpn_lab.mip6.core.actions import (
    AddHostRoute,
    ConfigureAddress,
    DelHostRoute,
    DelProxyNdp,
    DelRouteViaTunnel,
    DelTunnel,
    InstallHao,
    InstallRoute2,
    ProxyNdp,
    RemoveAddress,
    RemoveHao,
    RemoveRoute2,
    RouteViaTunnel,
    SendMH,
    SetHomeAddress,
    SettleHomeAddress,
    SetTunnel,
    StartDad,
)
from mvpn_lab.mip6.daemon.kernel.base import (
    CommandResult,
    EspNeed,
    KernelError,
    SubprocessRunner,
    describe,
    esp_policy_covers,
    sysctl_key,
    tunnel_name_for,
)
from mvpn_lab.mip6.wire.messages import BindingAcknowledgement, BindingUpdate, HomeTest, HomeTestInit

from ._daemon_fakes import Runner, adapter, cn_config, ha_config, lines, mn_config
from ._helpers import CN, COA1, COA2, HA, HOA, HOA2, HOME_PREFIX

T1 = tunnel_name_for("mip6ha", COA1)
T2 = tunnel_name_for("mip6ha", COA2)
TH = tunnel_name_for("mip6ha", HOA)  # the HA's device prepared at start for an allowed node


def test_tunnel_names_are_stable_and_short():
    assert tunnel_name_for("mip6ha", COA1) == T1 and T1 != T2
    assert T1.startswith("mip6ha") and len(T1) == 12 and int(T1[6:], 16) >= 0
    assert len(tunnel_name_for("abcdefghi", COA1)) == 15  # the longest prefix the config allows


def test_sysctl_key_uses_slashes_for_vlan_names():
    assert sysctl_key("eth1", "proxy_ndp") == "net.ipv6.conf.eth1.proxy_ndp"
    assert sysctl_key("eth1.10", "proxy_ndp") == "net/ipv6/conf/eth1.10/proxy_ndp"


def test_ha_registration_commands():
    kernel, runner, _ = adapter(ha_config())
    for action in (SetTunnel(HA, COA1), AddHostRoute(HOA, COA1), ProxyNdp(HOA), ProxyNdp(HOA2)):
        assert kernel.execute(action)
    assert runner.take() == [
        f"ip -6 tunnel add {T1} mode ip6ip6 local {HA} remote {COA1} encaplimit none",
        f"ip link set dev {T1} up",
        f"ip -6 route replace {HOA}/128 dev {T1}",
        "sysctl -q -w net.ipv6.conf.eth1.proxy_ndp=1",
        f"ip -6 neigh add proxy {HOA} dev eth1",
        f"ip -6 neigh add proxy {HOA2} dev eth1",  # the sysctl only once
    ]


def test_ha_move_and_deregistration_commands():
    kernel, runner, _ = adapter(ha_config())
    kernel.execute(SetTunnel(HA, COA1))
    kernel.execute(AddHostRoute(HOA, COA1))
    runner.take()
    for action in (DelTunnel(HA, COA1), SetTunnel(HA, COA2), AddHostRoute(HOA, COA2)):
        assert kernel.execute(action)
    assert runner.take() == [
        # the old device is parked, then re-pointed: no device is deleted or created
        f"ip link set dev {T1} down",
        f"ip -6 tunnel change {T1} mode ip6ip6 local {HA} remote {COA2} encaplimit none",
        f"ip link set dev {T1} up",
        f"ip -6 route replace {HOA}/128 dev {T1}",
    ]
    for action in (DelHostRoute(HOA), DelProxyNdp(HOA), DelTunnel(HA, COA2)):
        assert kernel.execute(action)
    assert runner.take() == [
        f"ip -6 route del {HOA}/128",
        f"ip -6 neigh del proxy {HOA} dev eth1",
        f"ip link set dev {T1} down",  # parked for the next binding
    ]
    assert kernel.tunnels == {} and kernel.host_routes == {} and kernel.parked == {T1}


def test_existing_tunnel_from_an_earlier_run_is_repointed():
    runner = Runner(fail={"ip -6 tunnel add": (1, f'add tunnel "{T1}" failed: File exists')})
    kernel, runner, stream = adapter(ha_config(), runner)
    assert kernel.execute(SetTunnel(HA, COA1))
    assert runner.take() == [
        f"ip -6 tunnel add {T1} mode ip6ip6 local {HA} remote {COA1} encaplimit none",
        f"ip -6 tunnel change {T1} mode ip6ip6 local {HA} remote {COA1} encaplimit none",
        f"ip link set dev {T1} up",
    ]
    assert lines(stream) == []
    # the same tunnel again: nothing to do
    assert kernel.execute(SetTunnel(HA, COA1)) and runner.take() == []


def test_deleting_what_is_already_gone_is_fine():
    runner = Runner(
        fail={
            "ip -6 tunnel del": (1, 'delete tunnel "x" failed: No such device'),
            "ip -6 route del": (2, "RTNETLINK answers: No such process"),
            "ip -6 neigh del": (2, "RTNETLINK answers: No such file or directory"),
            "ip -6 xfrm state delete": (2, "RTNETLINK answers: No such process"),
        }
    )
    kernel, runner, stream = adapter(ha_config(), runner)
    for action in (DelTunnel(HA, COA1), DelHostRoute(HOA), DelProxyNdp(HOA)):
        assert kernel.execute(action)
    kernel2, _, stream2 = adapter(cn_config(), runner)
    assert kernel2.execute(RemoveRoute2(HOA, None, "out"))
    assert lines(stream) == [] and lines(stream2) == []


def test_a_failing_step_is_one_error_line_naming_the_action():
    runner = Runner(fail={"ip -6 route replace": (2, "Error: Nexthop device is not up.\nmore text")})
    kernel, runner, stream = adapter(ha_config(), runner)
    assert kernel.execute(SetTunnel(HA, COA1))
    assert kernel.execute(AddHostRoute(HOA, COA1)) is False
    (record,) = lines(stream)
    assert record["level"] == "error" and record["event"] == "kernel_error"
    assert record["message"] == (
        f"add_host_route(home_address={HOA}, careof_address={COA1}): "
        f"'ip -6 route replace {HOA}/128 dev {T1}' failed: Error: Nexthop device is not up."
    )
    assert "\n" not in record["message"]
    assert kernel.failures.as_dict() == {"add_host_route": 1}
    assert HOA not in kernel.host_routes
    # the next action still runs
    assert kernel.execute(ProxyNdp(HOA))


def test_an_exists_answer_is_an_error_where_it_means_a_conflict():
    runner = Runner(fail={"ip -6 addr replace": (2, "RTNETLINK answers: File exists")})
    kernel, runner, stream = adapter(mn_config(), runner)
    assert kernel.execute(ConfigureAddress("wlan0", COA1, 64, True)) is False
    assert "configure_address(iface=wlan0" in lines(stream)[0]["message"]


def test_action_without_mapping_is_reported():
    kernel, _, stream = adapter(ha_config())
    assert kernel.execute(StartDad(HOA)) is False  # the daemon handles DAD, not the adapter
    assert lines(stream)[0]["message"] == f"start_dad(address={HOA}): no kernel mapping for this action"


def test_mn_first_departure_registration_and_return_home():
    kernel, runner, _ = adapter(mn_config())
    kernel.execute(SetHomeAddress(HOA, 64, away=True))
    kernel.execute(InstallHao(HOA, COA1, HA, "out"))
    kernel.execute(InstallRoute2(HOA, COA1, HA, "in"))
    assert runner.take() == []  # queued (DEFERRABLE): the BU's send runs them together
    kernel.flush()
    # what the BU needs: the home flag (the BA's routing header names the address), no
    # home prefix on-link, the two states
    assert runner.take() == [
        f"ip -6 addr replace {HOA}/64 dev wlan0 nodad home",
        f"ip -6 route del {HOME_PREFIX} dev wlan0",
        f"ip -6 xfrm state add src {HOA} dst {HA} proto hao mode ro coa {COA1}",
        f"ip -6 xfrm state add src {HA} dst {HOA} proto route2 mode ro coa {COA1}",
    ]
    assert not kernel.rule_installed
    kernel.execute(SettleHomeAddress(HOA, 64, away=True))  # after the BU
    assert runner.take() == [
        f"ip -6 tunnel add mip6tnl mode ip6ip6 remote {HA} encaplimit none",
        "ip link set dev mip6tnl up",
        f"ip -6 addr replace {HOA}/128 dev mip6tnl home",
        f"ip -6 addr del {HOA}/64 dev wlan0",
    ]
    kernel.execute(SetTunnel(COA1, HA))
    kernel.execute(RouteViaTunnel(HOA, HA))
    assert runner.take() == [
        f"ip -6 tunnel change mip6tnl mode ip6ip6 local {COA1} remote {HA} encaplimit none",
        "ip -6 route replace default dev mip6tnl table 100",
        f"ip -6 rule add from {HOA}/128 table 100 priority 1000",
    ]
    # move: the states follow, the tunnel is re-pointed
    kernel.execute(InstallHao(HOA, COA2, HA, "out"))
    kernel.execute(InstallRoute2(HOA, COA2, HA, "in"))
    kernel.execute(SetTunnel(COA2, HA))
    assert runner.take() == [
        f"ip -6 xfrm state update src {HOA} dst {HA} proto hao mode ro coa {COA2}",
        f"ip -6 xfrm state update src {HA} dst {HOA} proto route2 mode ro coa {COA2}",
        f"ip -6 tunnel change mip6tnl mode ip6ip6 local {COA2} remote {HA} encaplimit none",
    ]
    # home: the rule goes (the deregistration must not enter the tunnel) and the address comes
    # back, a copy deleted blindly; queued until the deregistration's send
    kernel.execute(SetHomeAddress(HOA, 64, away=False))
    assert runner.take() == []
    kernel.flush()
    assert runner.take() == [
        f"ip -6 rule del from {HOA}/128 table 100 priority 1000",
        f"ip -6 addr del {HOA}/64 dev wlan0",
        f"ip -6 addr add {HOA}/64 dev wlan0 nodad",
    ]
    kernel.execute(SettleHomeAddress(HOA, 64, away=False))  # after the deregistration BU
    assert runner.take() == [f"ip -6 addr del {HOA}/128 dev mip6tnl"]
    for action in (
        DelRouteViaTunnel(HOA),
        DelTunnel(COA2, HA),
        RemoveHao(HOA, HA, "out"),
        RemoveRoute2(HOA, HA, "in"),
    ):
        assert kernel.execute(action)
    kernel.flush()
    assert runner.take() == [
        "ip -6 route del default dev mip6tnl table 100",
        "ip link set dev mip6tnl down",  # parked: the next departure re-points it
        f"ip -6 xfrm state delete src {HOA} dst {HA} proto hao",
        f"ip -6 xfrm state delete src {HA} dst {HOA} proto route2",
    ]


def test_mn_rule_comes_back_when_leaving_home_again_before_the_dereg_ba():
    kernel, runner, _ = adapter(mn_config(table=7, rule_priority=50, tunnel_name="mt0"))
    kernel.execute(SetHomeAddress(HOA, 64, away=True))
    kernel.execute(SettleHomeAddress(HOA, 64, away=True))
    kernel.execute(RouteViaTunnel(HOA, HA))
    kernel.execute(SetHomeAddress(HOA, 64, away=False))
    runner.take()
    kernel.execute(SetHomeAddress(HOA, 64, away=True))
    assert not [c for c in runner.take() if " rule " in c]  # not before the BU: it would enter the tunnel
    kernel.execute(SettleHomeAddress(HOA, 64, away=True))
    assert f"ip -6 rule add from {HOA}/128 table 7 priority 50" in runner.take()


def test_mn_route_optimisation_states_and_policies():
    kernel, runner, _ = adapter(mn_config(mode="ro", correspondents=(CN,)))
    kernel.execute(InstallHao(HOA, COA1, CN, "out"))
    kernel.execute(InstallRoute2(HOA, COA1, CN, "in"))
    kernel.flush()
    assert runner.take() == [
        f"ip -6 xfrm state add src {HOA} dst {CN} proto hao mode ro coa {COA1}",
        f"ip -6 xfrm policy update src {HOA}/128 dst {CN}/128 dir out ptype sub priority 40 "
        f"tmpl src {HOA} dst {CN} proto hao mode ro level use",
        f"ip -6 xfrm state add src {CN} dst {HOA} proto route2 mode ro coa {COA1}",
        f"ip -6 xfrm policy update src {CN}/128 dst {HOA}/128 dir in ptype sub priority 40 "
        f"tmpl src {CN} dst {HOA} proto route2 mode ro level use",
    ]
    kernel.execute(RemoveHao(HOA, CN, "out"))
    kernel.execute(RemoveRoute2(HOA, CN, "in"))
    kernel.flush()
    assert runner.take() == [
        f"ip -6 xfrm state delete src {HOA} dst {CN} proto hao",
        f"ip -6 xfrm policy delete src {HOA}/128 dst {CN}/128 dir out ptype sub",
        f"ip -6 xfrm state delete src {CN} dst {HOA} proto route2",
        f"ip -6 xfrm policy delete src {CN}/128 dst {HOA}/128 dir in ptype sub",
    ]


def test_cn_binding_states_and_policies():
    kernel, runner, _ = adapter(cn_config())
    kernel.execute(InstallRoute2(HOA, COA1, None, "out"))
    kernel.execute(InstallHao(HOA, COA1, None, "in"))
    kernel.flush()
    assert runner.take() == [
        f"ip -6 xfrm state add src {CN} dst {HOA} proto route2 mode ro coa {COA1}",
        f"ip -6 xfrm policy update src {CN}/128 dst {HOA}/128 dir out ptype sub priority 40 "
        f"tmpl src {CN} dst {HOA} proto route2 mode ro level use",
        f"ip -6 xfrm state add src {HOA} dst {CN} proto hao mode ro coa {COA1}",
        f"ip -6 xfrm policy update src {HOA}/128 dst {CN}/128 dir in ptype sub priority 40 "
        f"tmpl src {HOA} dst {CN} proto hao mode ro level use",
    ]
    kernel.execute(InstallRoute2(HOA, COA2, None, "out"))
    kernel.execute(InstallHao(HOA, COA2, None, "in"))
    kernel.flush()
    assert runner.take() == [  # a new care-of address: the states change, the policies stay
        f"ip -6 xfrm state update src {CN} dst {HOA} proto route2 mode ro coa {COA2}",
        f"ip -6 xfrm state update src {HOA} dst {CN} proto hao mode ro coa {COA2}",
    ]


def test_state_left_by_the_kernel_or_an_earlier_run_is_taken_over():
    runner = Runner(fail={"ip -6 xfrm state add": (2, "RTNETLINK answers: File exists")})
    kernel, runner, stream = adapter(cn_config(), runner)
    assert kernel.execute(InstallRoute2(HOA, COA1, None, "out"))
    kernel.flush()
    # the update answers the add's "exists"; queued, the add's batch (with the policy) ran first
    assert runner.take() == [
        f"ip -6 xfrm state add src {CN} dst {HOA} proto route2 mode ro coa {COA1}",
        f"ip -6 xfrm policy update src {CN}/128 dst {HOA}/128 dir out ptype sub priority 40 "
        f"tmpl src {CN} dst {HOA} proto route2 mode ro level use",
        f"ip -6 xfrm state update src {CN} dst {HOA} proto route2 mode ro coa {COA1}",
    ]
    assert lines(stream) == [] and kernel.states[(CN, HOA, "route2")].coa == COA1
    # not queued (a setup, a teardown): the update follows the add at once, as before
    kernel.drop_state((CN, HOA, "route2"))
    runner.take()
    kernel.put_state((CN, HOA, "route2"), COA2, "data")
    assert runner.take() == [
        f"ip -6 xfrm state add src {CN} dst {HOA} proto route2 mode ro coa {COA2}",
        f"ip -6 xfrm state update src {CN} dst {HOA} proto route2 mode ro coa {COA2}",
    ]


def test_setup_commands_per_role():
    kernel, runner, _ = adapter(mn_config(movement_detection="l2", optimistic_dad=True, tcp_recovery=True))
    kernel.setup()
    assert runner.take() == [
        f"ip -6 xfrm policy update src {HOA}/128 dst ::/0 proto 135 type 1 dir out ptype sub priority 10",
        f"ip -6 xfrm policy update src {HOA}/128 dst {HA}/128 proto 135 dir out ptype sub priority 20 "
        f"tmpl src {HOA} dst {HA} proto hao mode ro level use",
        f"ip -6 xfrm policy update src {HA}/128 dst {HOA}/128 proto 135 dir in ptype sub priority 20 "
        f"tmpl src {HA} dst {HOA} proto route2 mode ro level use",
        "sysctl -q -w net.ipv6.conf.wlan0.optimistic_dad=1",
        "sysctl -q -w net.ipv6.conf.wlan0.use_optimistic=1",
        "sysctl -q -w net.ipv4.tcp_invalid_ratelimit=0",
        # the tunnel, made now and parked until the first departure
        f"ip -6 tunnel add mip6tnl mode ip6ip6 remote {HA} encaplimit none",
        "ip link set dev mip6tnl down",
    ]
    assert kernel.parked == {"mip6tnl"}
    kernel, runner, _ = adapter(ha_config(allowed_mobile_nodes=(HOA,)))
    kernel.setup()
    assert runner.take()[-2:] == [
        f"ip -6 tunnel add {TH} mode ip6ip6 local {HA} remote {HOA} encaplimit none",
        f"ip link set dev {TH} down",
    ]
    # a kernel without ip6_tnl: a warning, and the first binding tries again
    runner = Runner(fail={"ip -6 tunnel add": (1, 'add tunnel "ip6tnl0" failed: No such device')})
    kernel, _, stream = adapter(mn_config(), runner)
    kernel.setup()
    assert kernel.parked == set() and [r["event"] for r in lines(stream)] == ["tunnel_not_prepared"]
    kernel, runner, stream = adapter(ha_config(allowed_mobile_nodes=None))
    kernel.setup()
    assert runner.take() == [
        "ip -6 xfrm state add src :: dst :: proto hao mode ro coa :: flag wildrecv",
        "ip -6 xfrm policy update src ::/0 dst ::/0 proto 135 dir in ptype sub priority 30 "
        "tmpl proto hao mode ro level use",
        "sysctl -n net.ipv6.conf.eth1.forwarding",
        f"ip -6 xfrm policy update src {HA}/128 dst {HOME_PREFIX} proto 135 dir out ptype sub priority 20 "
        "tmpl proto route2 mode ro level use",
    ]
    # the fake runner answers "" for the forwarding sysctl: a warning, not a failure
    assert [(r["event"], r["level"]) for r in lines(stream)] == [("forwarding_off", "warning")]
    kernel, runner, _ = adapter(cn_config())
    kernel.setup()
    assert runner.take() == [
        "ip -6 xfrm state add src :: dst :: proto hao mode ro coa :: flag wildrecv",
        "ip -6 xfrm policy update src ::/0 dst ::/0 proto 135 dir in ptype sub priority 30 "
        "tmpl proto hao mode ro level use",
        "ip -6 xfrm policy update src ::/0 dst ::/0 proto 135 type 3 dir out ptype sub priority 10",
    ]


def test_setup_fails_with_one_line_when_the_kernel_lacks_mobile_ipv6():
    runner = Runner(fail={"ip -6 xfrm state add": (2, "Error: Requested type not found.")})
    kernel, _, _ = adapter(cn_config(), runner)
    with pytest.raises(KernelError, match=r"^'ip -6 xfrm state add src :: .*' failed: Error: Requested type"):
        kernel.setup()


def policy(src: str, dst: str, mh_type: int | None, direction: str, *, extra: str = "") -> str:
    """One main-type policy as ``ip -6 xfrm policy list`` prints those of the ipsec role."""
    selector = f"src {src} dst {dst} proto mobility-header" + (f" type {mh_type}" if mh_type else "")
    tmpl_src, tmpl_dst = src.split("/")[0], dst.split("/")[0]
    return (
        f"{selector} \n\tdir {direction} priority 0 ptype main {extra}\n"
        f"\ttmpl src {tmpl_src} dst {tmpl_dst}\n\t\tproto esp reqid 3 mode transport\n"
    )


# what the ipsec role installs (signalling, reqid 3), on the HA and on the MN; one listing serves
# both in these tests
HA_POLICIES = policy(f"{HOA}/128", f"{HA}/128", 5, "in") + policy(f"{HA}/128", f"{HOA}/128", 6, "out")
MN_POLICIES = policy(f"{HOA}/128", f"{HA}/128", 5, "out") + policy(f"{HA}/128", f"{HOA}/128", 6, "in")
ESP_LISTING = HA_POLICIES + MN_POLICIES


def needs(kernel_cfg) -> list[EspNeed]:
    kernel, _, _ = adapter(kernel_cfg)
    return kernel.esp_needs()


def covered(listing: str, need: EspNeed) -> bool:
    return esp_policy_covers(module_utils("xfrm").parse_policies(listing), need)


def test_esp_needs_name_both_directions_per_home_address():
    bu_in, ba_out = needs(ha_config(require_ipsec=True))[:2]
    assert (bu_in.direction, bu_in.mh_type, bu_in.src, bu_in.dst) == (
        "in",
        5,
        IPv6Network(f"{HOA}/128"),
        IPv6Network(f"{HA}/128"),
    )
    assert (ba_out.direction, ba_out.mh_type) == ("out", 6)
    assert len(needs(ha_config(require_ipsec=True))) == 4  # HOA and HOA2
    (any_in, _) = needs(ha_config(require_ipsec=True, allowed_mobile_nodes=None))
    assert any_in.src == HOME_PREFIX  # with any: the whole prefix
    assert [(n.direction, n.mh_type) for n in needs(mn_config(require_ipsec=True))] == [("out", 5), ("in", 6)]


def test_esp_policy_listing_is_understood():
    bu_in, ba_out, bu2_in, _ = needs(ha_config(require_ipsec=True))
    assert covered(ESP_LISTING, bu_in) and covered(ESP_LISTING, ba_out)
    assert not covered(ESP_LISTING, bu2_in)  # nothing for HOA2
    assert not covered(HA_POLICIES.replace("dir in", "dir out"), bu_in)  # the wrong direction
    assert not covered(HA_POLICIES.replace("type 5", "type 6"), bu_in)  # a BA policy is no BU policy
    assert covered(HA_POLICIES.replace(" type 5", ""), bu_in)  # any MH type covers the BU
    optional = ESP_LISTING.replace("mode transport\n", "mode transport\n\t\tlevel use\n")
    assert not covered(optional, bu_in)
    assert not covered(ESP_LISTING.replace("mobility-header", "tcp"), bu_in)
    assert not covered("", bu_in)
    by_number = ESP_LISTING.replace("proto mobility-header", "proto 135")
    assert covered(by_number, bu_in)  # ip prints the number without /etc/protocols
    assert not covered(ESP_LISTING.replace("ptype main ", "action block ptype main "), bu_in)
    ipv4 = "src 10.0.0.0/8 dst 10.0.0.1/32\n\tdir in priority 5 ptype main\n\ttmpl src 0.0.0.0 dst 0.0.0.0\n"
    assert not covered(ipv4 + "\t\tproto esp reqid 0 mode transport\n", bu_in)
    # with any mobile node, a policy for one home address does not cover the prefix
    any_in, _ = needs(ha_config(require_ipsec=True, allowed_mobile_nodes=None))
    assert not covered(ESP_LISTING, any_in)
    assert covered(policy(str(HOME_PREFIX), f"{HA}/128", 5, "in"), any_in)


def test_setup_checks_the_declared_esp_policy():
    """Issue 14, item 3: the daemon starts only when main policies require ESP for every direction
    of the signalling, per allowed home address; one line names each direction missing."""
    listing = "ip -6 xfrm policy list ptype main"
    cfg = mn_config(require_ipsec=True, esp_policy_installed=True)
    kernel, runner, _ = adapter(cfg, Runner(stdout={listing: MN_POLICIES}))
    kernel.setup()
    assert runner.take()[-1] == listing
    # a BU policy in the wrong direction (the check of old accepted any BU/BA policy going in)
    kernel, _, _ = adapter(cfg, Runner(stdout={listing: MN_POLICIES.replace("dir out", "dir in")}))
    with pytest.raises(KernelError) as failed:
        kernel.setup()
    assert str(failed.value) == (
        "config field 'esp_policy_installed': no main xfrm policy requires ESP for BU (MH type 5) out "
        f"from {HOA}/128 to {HA}/128 (see docs/mip6.md, IPsec)"
    )
    ha = ha_config(require_ipsec=True, esp_policy_installed=True)
    kernel, _, _ = adapter(ha, Runner(stdout={listing: HA_POLICIES}))
    with pytest.raises(
        KernelError, match=f"BU \\(MH type 5\\) in from {HOA2}/128 to {HA}/128; BA \\(MH type 6\\) out"
    ):
        kernel.setup()  # HOA2 is allowed too, and has no policy
    kernel, _, _ = adapter(
        ha_config(require_ipsec=True, esp_policy_installed=True, allowed_mobile_nodes=(HOA,)),
        Runner(stdout={listing: HA_POLICIES}),
    )
    kernel.setup()
    anyone = ha_config(require_ipsec=True, esp_policy_installed=True, allowed_mobile_nodes=None)
    kernel, _, _ = adapter(anyone, Runner(stdout={listing: HA_POLICIES}))
    with pytest.raises(KernelError, match=f"in from {HOME_PREFIX} to"):
        kernel.setup()


def _send(msg, src, dst, **kw):
    return SendMH(src, dst, msg, **kw)


def test_prepare_send_hao_and_rh2_give_socket_addresses_and_states():
    kernel, runner, _ = adapter(ha_config())
    ba = BindingAcknowledgement(status=0, seq=1, lifetime=10)
    src, dst = kernel.prepare_send(_send(ba, HA, COA1, rh2=HOA))
    assert (src, dst) == (HA, HOA)  # the route2 state rewrites the destination to the CoA
    # no static policy covers the pair (setup() did not run): a signalling policy is added
    assert runner.take() == [
        f"ip -6 xfrm state add src {HA} dst {HOA} proto route2 mode ro coa {COA1}",
        f"ip -6 xfrm policy update src {HA}/128 dst {HOA}/128 proto 135 dir out ptype sub priority 20 "
        f"tmpl src {HA} dst {HOA} proto route2 mode ro level use",
    ]
    kernel2, runner2, _ = adapter(mn_config())
    bu = BindingUpdate(seq=1, lifetime=10, ack=True, home=True)
    assert kernel2.prepare_send(_send(bu, COA1, HA, hao=HOA)) == (HOA, HA)
    assert runner2.take() == [
        f"ip -6 xfrm state add src {HOA} dst {HA} proto hao mode ro coa {COA1}",
        f"ip -6 xfrm policy update src {HOA}/128 dst {HA}/128 proto 135 dir out ptype sub priority 20 "
        f"tmpl src {HOA} dst {HA} proto hao mode ro level use",
    ]
    # a second BU from the same CoA: nothing to do
    assert kernel2.prepare_send(_send(bu, COA1, HA, hao=HOA)) == (HOA, HA) and runner2.take() == []


def test_prepare_send_reuses_static_policies():
    kernel, runner, _ = adapter(ha_config())
    kernel.setup()
    runner.take()
    ba = BindingAcknowledgement(status=0, seq=1, lifetime=10)
    kernel.prepare_send(_send(ba, HA, COA1, rh2=HOA))
    kernel.prepare_send(_send(ba, HA, COA2, rh2=HOA))
    assert runner.take() == [
        f"ip -6 xfrm state add src {HA} dst {HOA} proto route2 mode ro coa {COA1}",
        f"ip -6 xfrm state update src {HA} dst {HOA} proto route2 mode ro coa {COA2}",
    ]
    # the MN came home: the BA goes straight to the home address, without the routing header
    kernel.prepare_send(_send(ba, HA, HOA))
    assert runner.take() == [f"ip -6 xfrm state delete src {HA} dst {HOA} proto route2"]


def test_deregistration_from_home_drops_the_hao_state_but_hoti_keeps_it():
    kernel, runner, stream = adapter(mn_config(mode="ro", correspondents=(CN,)))
    kernel.execute(InstallHao(HOA, COA1, CN, "out"))
    kernel.flush()
    runner.take()
    kernel.prepare_send(_send(HomeTestInit(cookie=bytes(8)), HOA, CN, via_tunnel=True))
    assert runner.take() == []  # the static bypass policy keeps the option off the HoTI
    kernel.prepare_send(_send(BindingUpdate(seq=2, lifetime=0), HOA, CN))
    assert runner.take() == [f"ip -6 xfrm state delete src {HOA} dst {CN} proto hao"]
    assert lines(stream)[0]["event"] == "xfrm_state_dropped_for_send"


def test_a_binding_routing_header_is_never_repointed_by_one_message():
    kernel, runner, stream = adapter(cn_config())
    kernel.execute(InstallRoute2(HOA, COA1, None, "out"))
    kernel.flush()
    runner.take()
    ba = BindingAcknowledgement(status=136, seq=1, lifetime=0)
    assert kernel.prepare_send(_send(ba, CN, COA2, rh2=HOA)) == (CN, HOA)
    assert runner.take() == []
    assert kernel.states[(CN, HOA, "route2")].coa == COA1
    assert lines(stream)[0]["event"] == "rh2_follows_binding"
    # HoT to the home address keeps the binding's state (the bypass policy keeps RH2 off it)
    kernel.prepare_send(_send(HomeTest(nonce_index=1, cookie=bytes(8), token=bytes(8)), CN, HOA))
    assert runner.take() == []


def test_teardown_removes_everything_installed():
    kernel, runner, _ = adapter(ha_config())
    kernel.setup()
    kernel.execute(SetTunnel(HA, COA1))
    kernel.execute(AddHostRoute(HOA, COA1))
    kernel.execute(ProxyNdp(HOA))
    runner.take()
    kernel.teardown()
    assert runner.take() == [
        f"ip -6 route del {HOA}/128",
        f"ip -6 neigh del proxy {HOA} dev eth1",
        # the device in use (a prepared one, re-pointed) and the one still parked
        *[f"ip -6 tunnel del {name}" for name in sorted({TH, tunnel_name_for("mip6ha", HOA2)})],
        "ip -6 xfrm policy delete src ::/0 dst ::/0 proto 135 dir in ptype sub",
        f"ip -6 xfrm policy delete src {HA}/128 dst {HOA}/128 proto 135 dir out ptype sub",
        f"ip -6 xfrm policy delete src {HA}/128 dst {HOA2}/128 proto 135 dir out ptype sub",
        "ip -6 xfrm state delete src :: dst :: proto hao",
    ]
    assert kernel.status()["tunnels"] == {} and kernel.status()["parked_tunnels"] == []


def test_teardown_logs_failures_and_goes_on():
    kernel, runner, stream = adapter(mn_config())
    kernel.execute(SettleHomeAddress(HOA, 64, away=True))
    kernel.execute(RouteViaTunnel(HOA, HA))
    runner.fail["ip -6 rule del"] = (2, "RTNETLINK answers: Operation not permitted")
    runner.take()
    kernel.teardown()
    assert runner.take() == [
        f"ip -6 rule del from {HOA}/128 table 100 priority 1000",
        "ip -6 tunnel del mip6tnl",
    ]
    assert [r["event"] for r in lines(stream)] == ["teardown_error"]


def test_address_actions():
    kernel, runner, _ = adapter(mn_config(movement_detection="l2"))
    kernel.execute(ConfigureAddress("wlan0", COA1, 64, True))
    kernel.execute(RemoveAddress("wlan0", COA1))
    kernel.execute(RemoveAddress("wlan0", IPv6Address("2001:db8:9::1")))
    assert runner.take() == [
        f"ip -6 addr replace {COA1}/64 dev wlan0 optimistic",
        f"ip -6 addr del {COA1}/64 dev wlan0",
        "ip -6 addr del 2001:db8:9::1/64 dev wlan0",
    ]


def test_describe_and_debug_command_log():
    assert describe(SetTunnel(HA, COA1)) == f"set_tunnel(local={HA}, remote={COA1})"
    kernel, _, stream = adapter(ha_config(), debug=True)
    kernel.execute(ProxyNdp(HOA))
    assert [r["event"] for r in lines(stream)] == ["kernel_command", "kernel_command"]
    assert lines(stream)[1]["argv"] == ["ip", "-6", "neigh", "add", "proxy", str(HOA), "dev", "eth1"]


def test_subprocess_runner_reports_missing_programs_and_output():
    runner = SubprocessRunner(timeout=5)
    assert runner(["/nonexistent/ip", "x"]).returncode == 127
    result = runner(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result == CommandResult(3, "out\n", "err\n") and result.message == "err"
    assert CommandResult(1).message == "exit status 1"


def test_parked_tunnels_are_reused_instead_of_created():
    kernel, runner, _ = adapter(mn_config())
    kernel.execute(SettleHomeAddress(HOA, 64, away=True))
    kernel.execute(DelTunnel(COA1, HA))  # back home: parked
    assert kernel.parked == {"mip6tnl"} and kernel.status()["parked_tunnels"] == ["mip6tnl"]
    kernel.execute(SetHomeAddress(HOA, 64, away=False))
    kernel.flush()
    runner.take()
    kernel.execute(SettleHomeAddress(HOA, 64, away=True))  # the next departure
    commands = runner.take()
    assert not [c for c in commands if c.startswith("ip -6 tunnel add")]
    assert commands[:2] == [
        f"ip -6 tunnel change mip6tnl mode ip6ip6 remote {HA} encaplimit none",
        "ip link set dev mip6tnl up",
    ]
    assert kernel.parked == set()
    # the home agent: a new binding after a deregistration takes the parked device
    ha, ha_runner, _ = adapter(ha_config())
    ha.execute(SetTunnel(HA, COA1))
    ha.execute(DelTunnel(HA, COA1))
    ha_runner.take()
    ha.execute(SetTunnel(HA, COA2))
    ha.execute(AddHostRoute(HOA, COA2))
    assert ha_runner.take() == [
        f"ip -6 tunnel change {T1} mode ip6ip6 local {HA} remote {COA2} encaplimit none",
        f"ip link set dev {T1} up",
        f"ip -6 route replace {HOA}/128 dev {T1}",
    ]
    # teardown deletes parked devices too
    ha.execute(DelTunnel(HA, COA2))
    ha_runner.take()
    ha.teardown()
    assert f"ip -6 tunnel del {T1}" in ha_runner.take()


def _addr_json(**flags: bool) -> str:
    info = {"family": "inet6", "local": str(HOA), "prefixlen": 64, "scope": "global", **flags}
    return '[{"ifname": "wlan0", "addr_info": [' + __import__("json").dumps(info) + "]}]"


def test_home_address_at_home_replaces_only_a_copy_that_is_not_ours():
    add = f"ip -6 addr add {HOA}/64 dev wlan0 nodad"
    # absent: one add
    kernel, runner, _ = adapter(mn_config())
    kernel.home_address_at_home(64)
    assert runner.take() == [add]
    # SLAAC's copy in DAD (dynamic, tentative): it is replaced
    runner = Runner(
        fail={add: (2, "RTNETLINK answers: File exists")},
        stdout={"ip -6 -j addr show dev wlan0": _addr_json(dynamic=True, tentative=True, optimistic=True)},
    )
    kernel, _, _ = adapter(mn_config(), runner)
    kernel.home_address_at_home(64)
    assert runner.take() == [add, "ip -6 -j addr show dev wlan0", f"ip -6 addr del {HOA}/64 dev wlan0", add]
    # ours already (permanent, out of DAD): left alone, so a re-check cannot loop
    runner = Runner(
        fail={add: (2, "RTNETLINK answers: File exists")},
        stdout={"ip -6 -j addr show dev wlan0": _addr_json()},
    )
    kernel, _, _ = adapter(mn_config(), runner)
    kernel.home_address_at_home(64)
    assert runner.take() == [add, "ip -6 -j addr show dev wlan0"]


def test_home_address_at_home_asks_the_kernel_in_process_and_falls_back_to_a_listing():
    add = f"ip -6 addr add {HOA}/64 dev wlan0 nodad"
    exists = {add: (2, "RTNETLINK answers: File exists")}
    asked: list[tuple[str, IPv6Address]] = []

    def info_of(flags: dict[str, bool] | None):
        def query(iface: str, address: IPv6Address) -> dict[str, bool] | None:
            asked.append((iface, address))
            return flags

        return query

    # SLAAC's copy (not added by hand): replaced, no ip listing
    runner = Runner(fail=dict(exists))
    kernel, _, _ = adapter(mn_config(), runner)
    kernel.address_info = info_of({"dynamic": True, "tentative": True, "dadfailed": False})
    kernel.home_address_at_home(64)
    assert runner.take() == [add, f"ip -6 addr del {HOA}/64 dev wlan0", add]
    assert asked == [("wlan0", HOA)]
    # ours already: left alone
    runner = Runner(fail=dict(exists))
    kernel, _, _ = adapter(mn_config(), runner)
    kernel.address_info = info_of({"dynamic": False, "tentative": False, "dadfailed": False})
    kernel.home_address_at_home(64)
    assert runner.take() == [add]

    # the query fails: a warning, and the listing decides as before
    def broken(iface: str, address: IPv6Address) -> None:
        raise OSError("netlink socket closed")

    runner = Runner(fail=dict(exists), stdout={"ip -6 -j addr show dev wlan0": _addr_json()})
    kernel, _, stream = adapter(mn_config(), runner)
    kernel.address_info = broken
    kernel.home_address_at_home(64)
    assert runner.take() == [add, "ip -6 -j addr show dev wlan0"]
    assert [r["event"] for r in lines(stream)] == ["netlink_query_failed"]


def test_coming_home_after_leaving_replaces_a_copy_without_asking_the_kernel():
    # the daemon took the home address off the link when it left: a copy on the link now is
    # SLAAC's (from the home RA, in DAD against the home agent's proxy), never ours
    add = f"ip -6 addr add {HOA}/64 dev wlan0 nodad"
    asked: list[tuple[str, IPv6Address]] = []

    def ours(iface: str, address: IPv6Address) -> dict[str, bool]:
        asked.append((iface, address))
        return {"dynamic": False, "tentative": False, "dadfailed": False}

    runner = Runner(fail={add: (2, "RTNETLINK answers: File exists")})
    kernel, _, _ = adapter(mn_config(), runner)
    kernel.address_info = ours
    kernel.execute(SetHomeAddress(HOA, 64, away=True))
    kernel.execute(SettleHomeAddress(HOA, 64, away=True))
    runner.take()
    kernel.execute(SetHomeAddress(HOA, 64, away=False))
    kernel.flush()  # the deregistration's send runs the queue: the delete goes first, unasked
    assert runner.take()[-2:] == [f"ip -6 addr del {HOA}/64 dev wlan0", add]
    assert asked == []
    assert kernel.failures.total == 0
    # back home and on the link: a later re-check (dadfailed) asks again, and leaves ours alone
    kernel.home_address_at_home(64)
    assert runner.take() == [add]
    assert asked == [("wlan0", HOA)]


def test_coming_home_without_a_copy_the_blind_delete_is_harmless_and_the_add_is_checked():
    delete, add = f"ip -6 addr del {HOA}/64 dev wlan0", f"ip -6 addr add {HOA}/64 dev wlan0 nodad"
    runner = Runner(fail={delete: (2, "RTNETLINK answers: Cannot assign requested address")})
    kernel, _, stream = adapter(mn_config(), runner)
    kernel.execute(SettleHomeAddress(HOA, 64, away=True))
    runner.take()
    assert kernel.execute(SetHomeAddress(HOA, 64, away=False))
    kernel.flush()
    assert runner.take() == [delete, add]
    assert kernel.failures.total == 0
    # the add itself failing is this action's error, named and counted
    runner = Runner(fail={add: (2, "RTNETLINK answers: No buffer space available")})
    kernel, _, stream = adapter(mn_config(), runner)
    kernel.execute(SettleHomeAddress(HOA, 64, away=True))
    assert kernel.execute(SetHomeAddress(HOA, 64, away=False))
    kernel.flush()
    errors = [r for r in lines(stream) if r["event"] == "kernel_error"]
    assert len(errors) == 1 and errors[0]["action"] == "set_home_address" and add in errors[0]["message"]
    assert kernel.failures["set_home_address"] == 1


def test_ha_parking_with_several_bindings_never_shares_a_device():
    x, y, c = IPv6Address("2001:db8:5::1"), IPv6Address("2001:db8:6::1"), IPv6Address("2001:db8:7::1")
    kernel, runner, _ = adapter(ha_config(allowed_mobile_nodes=None))
    kernel.execute(SetTunnel(HA, x))  # MN1 at X
    kernel.execute(SetTunnel(HA, y))  # MN2 at Y
    kernel.execute(DelTunnel(HA, y))  # MN2 deregisters: its device is parked
    kernel.execute(DelTunnel(HA, x))  # MN1 moves to C
    kernel.execute(SetTunnel(HA, c))
    kernel.execute(SetTunnel(HA, y))  # MN2 comes back from Y
    remotes = {remote: name for name, (_, remote) in kernel.tunnels.items()}
    assert set(remotes) == {c, y} and remotes[c] != remotes[y]
    kernel.execute(AddHostRoute(HOA, c))
    kernel.execute(AddHostRoute(HOA2, y))
    assert kernel.host_routes == {HOA: remotes[c], HOA2: remotes[y]}
    # MN2 leaves again: MN1's device is left alone
    runner.take()
    kernel.execute(DelTunnel(HA, y))
    assert runner.take() == [f"ip link set dev {remotes[y]} down"]
    assert kernel.tunnels == {remotes[c]: (HA, c)} and kernel.host_routes == {HOA: remotes[c]}
    # a DelTunnel for a remote no device points at touches nothing
    kernel.execute(DelTunnel(HA, IPv6Address("2001:db8:8::1")))
    assert runner.take() == []


def test_ha_fresh_device_name_skips_a_reused_device_named_after_the_same_remote():
    x, c = IPv6Address("2001:db8:5::1"), IPv6Address("2001:db8:7::1")
    kernel, _, _ = adapter(ha_config(allowed_mobile_nodes=None))
    kernel.execute(SetTunnel(HA, x))
    named_x = kernel.tunnel_name(x)
    kernel.execute(DelTunnel(HA, x))
    kernel.execute(SetTunnel(HA, c))  # takes the parked device named after X
    assert kernel.tunnels == {named_x: (HA, c)}
    kernel.execute(SetTunnel(HA, x))  # another node at X: a new device, under another name
    assert len(kernel.tunnels) == 2 and kernel.tunnel_name(x) != named_x


def test_a_parked_device_deleted_behind_our_back_is_made_again():
    runner = Runner(fail={"ip -6 tunnel change mip6tnl": (1, "ioctl: No such device")})
    kernel, _, _ = adapter(mn_config(), runner)
    kernel.setup()
    runner.take()
    assert kernel.execute(SettleHomeAddress(HOA, 64, away=True))
    commands = runner.take()
    assert commands[:3] == [
        f"ip -6 tunnel change mip6tnl mode ip6ip6 remote {HA} encaplimit none",
        f"ip -6 tunnel add mip6tnl mode ip6ip6 remote {HA} encaplimit none",
        "ip link set dev mip6tnl up",
    ]


def _batching(runner: Runner) -> list[list[str]]:
    """Give ``runner`` the ``run_many`` of the daemon's IpBatchRunner; returns the batches it got."""
    batches: list[list[str]] = []

    def run_many(argvs):
        batches.append([" ".join(a) for a in argvs])
        return [runner(a) for a in argvs]

    runner.run_many = run_many  # type: ignore[attr-defined]
    return batches


def test_the_commands_before_a_bu_go_to_the_kernel_together_when_it_is_sent():
    runner = Runner()
    batches = _batching(runner)
    kernel, runner, stream = adapter(mn_config(), runner)
    assert kernel.execute(SetHomeAddress(HOA, 64, away=True))
    assert kernel.execute(InstallHao(HOA, COA1, HA, "out"))
    assert kernel.execute(InstallRoute2(HOA, COA1, HA, "in"))
    assert runner.lines == [] and kernel.commands == 0
    bu = BindingUpdate(seq=1, lifetime=60)
    assert kernel.prepare_send(_send(bu, COA1, HA, hao=HOA)) == (HOA, HA)
    assert batches == [
        [
            f"ip -6 addr replace {HOA}/64 dev wlan0 nodad home",
            f"ip -6 route del {HOME_PREFIX} dev wlan0",
            f"ip -6 xfrm state add src {HOA} dst {HA} proto hao mode ro coa {COA1}",
            f"ip -6 xfrm state add src {HA} dst {HOA} proto route2 mode ro coa {COA1}",
        ]
    ]
    assert kernel.commands == 4 and lines(stream) == []
    # an action whose result is read (or that must be in place when it returns) runs at once,
    # after what was queued before it
    assert kernel.execute(InstallHao(HOA, COA2, HA, "out"))
    assert kernel.execute(SettleHomeAddress(HOA, 64, away=True))
    assert runner.take()[4:6] == [
        f"ip -6 xfrm state update src {HOA} dst {HA} proto hao mode ro coa {COA2}",
        f"ip -6 tunnel add mip6tnl mode ip6ip6 remote {HA} encaplimit none",
    ]


def test_a_queued_command_that_fails_names_its_action_and_its_record_is_undone():
    invalid = (2, "RTNETLINK answers: Invalid argument")
    runner = Runner(fail={f"ip -6 xfrm state add src {HA} dst {HOA}": invalid})
    _batching(runner)
    kernel, runner, stream = adapter(mn_config(), runner)
    kernel.execute(InstallHao(HOA, COA1, HA, "out"))
    assert kernel.execute(InstallRoute2(HOA, COA1, HA, "in"))  # queued: nothing failed yet
    assert (HA, HOA, "route2") in kernel.states
    kernel.prepare_send(_send(BindingUpdate(seq=1, lifetime=60), COA1, HA, hao=HOA))  # the BU still goes
    (error,) = lines(stream)
    assert error["event"] == "kernel_error" and error["action"] == "install_route2"
    assert error["message"].startswith(f"install_route2(home_address={HOA}")
    assert "'ip -6 xfrm state add src" in error["message"] and "Invalid argument" in error["message"]
    assert kernel.failures.as_dict() == {"install_route2": 1}
    # the record no longer claims the state, so the next attempt adds it again
    assert (HA, HOA, "route2") not in kernel.states and (HOA, HA, "hao") in kernel.states
    runner.fail.clear()
    runner.take()
    kernel.execute(InstallRoute2(HOA, COA1, HA, "in"))
    kernel.flush()
    assert runner.take() == [f"ip -6 xfrm state add src {HA} dst {HOA} proto route2 mode ro coa {COA1}"]


def test_a_send_whose_own_state_fails_is_not_sent():
    runner = Runner(fail={"ip -6 xfrm state add": (2, "RTNETLINK answers: No buffer space available")})
    kernel, runner, stream = adapter(ha_config(), runner)
    assert kernel.execute(DelHostRoute(HOA))  # queued before the BA, as at a deregistration
    ba = BindingAcknowledgement(status=0, seq=1, lifetime=10)
    with pytest.raises(KernelError, match="No buffer space"):
        kernel.prepare_send(_send(ba, HA, COA1, rh2=HOA))
    assert runner.take()[:2] == [
        f"ip -6 route del {HOA}/128",
        f"ip -6 xfrm state add src {HA} dst {HOA} proto route2 mode ro coa {COA1}",
    ]
    # the caller logs mh_not_sent; the adapter does not claim the state
    assert kernel.states == {} and kernel.queued == [] and lines(stream) == []


def test_what_was_queued_still_runs_when_a_send_cannot_be_prepared(monkeypatch):
    kernel, runner, _ = adapter(mn_config())
    kernel.execute(InstallHao(HOA, COA1, HA, "out"))

    def broken(send):
        raise RuntimeError("a bug in preparing the send")

    monkeypatch.setattr(kernel, "_prepare_send", broken)
    with pytest.raises(RuntimeError):
        kernel.prepare_send(_send(BindingUpdate(seq=1, lifetime=60), COA1, HA, hao=HOA))
    assert kernel.queued == [] and kernel.deferring is None
    assert runner.take() == [f"ip -6 xfrm state add src {HOA} dst {HA} proto hao mode ro coa {COA1}"]
