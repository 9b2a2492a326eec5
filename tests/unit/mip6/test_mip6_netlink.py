"""Netlink messages (shaped like pyroute2's) to movement inputs, and on to the mobile node."""

from __future__ import annotations

from ipaddress import IPv6Address
from typing import Any

import pytest

from mvpn_lab.mip6.daemon.netlink import (
    IFA_F_DADFAILED,
    IFA_F_DEPRECATED,
    IFA_F_OPTIMISTIC,
    IFA_F_TENTATIVE,
    IFF_RUNNING,
    IFF_UP,
    AddressEvent,
    LinkEvent,
    MovementTranslator,
    RouteEvent,
    address_state,
)

from ._helpers import COA1, HOA

IFA_F_PERMANENT = 0x80


class Msg(dict):
    """A pyroute2-like message: header fields through get(), attributes through get_attr()."""

    def __init__(self, attrs: dict[str, Any] | None = None, **fields: Any) -> None:
        super().__init__(fields)
        self.attrs = attrs or {}

    def get_attr(self, name: str) -> Any:
        return self.attrs.get(name)


def link(index: int, name: str, flags: int, event: str = "RTM_NEWLINK") -> Msg:
    return Msg({"IFLA_IFNAME": name}, event=event, index=index, flags=flags)


def addr(
    index: int, address: str, flags: int, *, prefixlen: int = 64, event: str = "RTM_NEWADDR", family=10
) -> Msg:
    return Msg({"IFA_ADDRESS": address, "IFA_FLAGS": flags}, event=event, index=index, family=family,
               prefixlen=prefixlen, flags=flags & 0xFF)  # fmt: skip


UP = IFF_UP | IFF_RUNNING | 0x10000


def test_link_transitions_only_for_watched_interfaces():
    t = MovementTranslator(("wlan0",))
    assert t.translate(link(3, "wlan0", IFF_UP)) == [LinkEvent("wlan0", False)]  # up but dormant
    assert t.translate(link(3, "wlan0", UP)) == [LinkEvent("wlan0", True)]
    assert t.translate(link(3, "wlan0", UP)) == []  # no change: nothing
    assert t.translate(link(2, "eth0", UP)) == []  # not watched
    assert t.translate(link(3, "wlan0", IFF_UP)) == [LinkEvent("wlan0", False)]  # carrier lost
    assert t.translate(link(3, "wlan0", UP)) == [LinkEvent("wlan0", True)]
    assert t.translate(link(3, "wlan0", UP, event="RTM_DELLINK")) == [LinkEvent("wlan0", False)]


def test_address_states_from_flags():
    assert address_state(IFA_F_TENTATIVE) == "tentative"
    assert address_state(IFA_F_TENTATIVE | IFA_F_OPTIMISTIC) == "optimistic"
    assert address_state(IFA_F_DADFAILED | IFA_F_TENTATIVE) == "dadfailed"
    assert address_state(IFA_F_DEPRECATED) == "deprecated"
    assert address_state(IFA_F_PERMANENT) == "preferred"
    assert address_state(0) == "preferred"


def test_address_messages_and_interface_identifier():
    t = MovementTranslator(("wlan0",))
    t.translate(link(3, "wlan0", UP))
    assert t.translate(addr(3, "fe80::100", IFA_F_PERMANENT)) == [
        AddressEvent("wlan0", IPv6Address("fe80::100"), 64, "preferred")
    ]
    assert t.iids["wlan0"] == 0x100
    assert t.translate(addr(3, str(COA1), IFA_F_TENTATIVE | IFA_F_OPTIMISTIC)) == [
        AddressEvent("wlan0", COA1, 64, "optimistic")
    ]
    assert t.translate(addr(3, str(COA1), 0, event="RTM_DELADDR")) == [
        AddressEvent("wlan0", COA1, 64, "removed")
    ]
    assert t.translate(addr(3, "192.0.2.1", 0, family=2)) == []  # IPv4
    assert t.translate(addr(7, str(COA1), 0)) == []  # unknown interface index
    # flags beyond 8 bits live only in IFA_FLAGS; without it the header field counts
    msg = Msg(
        {"IFA_ADDRESS": str(COA1)},
        event="RTM_NEWADDR",
        index=3,
        family=10,
        prefixlen=64,
        flags=IFA_F_TENTATIVE,
    )
    assert t.translate(msg)[0].state == "tentative"
    assert t.translate(Msg({"IFA_ADDRESS": "nonsense"}, event="RTM_NEWADDR", index=3, family=10)) == []


def test_interface_names_from_the_fallback_lookup():
    t = MovementTranslator(("wlan0",), ifname={3: "wlan0"}.get)
    assert t.translate(addr(3, str(COA1), 0))[0].iface == "wlan0"


def test_default_route_events():
    t = MovementTranslator(("wlan0",))
    t.translate(link(3, "wlan0", UP))
    msg = Msg(
        {"RTA_OIF": 3, "RTA_GATEWAY": "fe80::1", "RTA_TABLE": 254}, event="RTM_NEWROUTE", family=10, dst_len=0
    )
    assert t.translate(msg) == [RouteEvent("wlan0", True, IPv6Address("fe80::1"))]
    other_table = Msg({"RTA_OIF": 3, "RTA_TABLE": 100}, event="RTM_DELROUTE", family=10, dst_len=0)
    assert t.translate(other_table) == []
    prefix_route = Msg({"RTA_OIF": 3}, event="RTM_NEWROUTE", family=10, dst_len=64)
    assert t.translate(prefix_route) == []


def test_garbage_messages_are_ignored():
    t = MovementTranslator(("wlan0",))
    for msg in (
        Msg(),
        Msg(event="RTM_NEWNEIGH"),
        Msg(event="RTM_NEWLINK"),
        {"event": "RTM_NEWADDR"},
        None,
        42,
    ):
        assert t.translate(msg) == []


def test_hoa_on_a_watched_interface_reaches_the_detector_which_ignores_it():
    t = MovementTranslator(("wlan0",))
    t.translate(link(3, "wlan0", UP))
    assert t.translate(addr(3, str(HOA), 0))[0].address == HOA


# rtnetlink datagrams captured from a real kernel (6.x) in a fresh network namespace:
# `ip -6 addr add 2001:db8:2::100/64 dev lo` (tentative, then preferred), the local route it
# made, and `ip -6 addr del ...`.
CAPTURED = [
    bytes.fromhex(
        "480000001400000000000000000000000a40c000010000001400010020010db8000200000000000000000100"
        "14000600ffffffffffffffff7a5207007a52070008000800c0000000"
    ),
    bytes.fromhex(
        "480000001400000000000000000000000a408000010000001400010020010db8000200000000000000000100"
        "14000600ffffffffffffffff7a5207007a5207000800080080000000"
    ),
    bytes.fromhex(
        "740000001800000600000000000000000a800000ff0200020000000008000f00ff0000001400010020010db8"
        "0002000000000000000001000800060000000000080004000100000024000c00000000000000000000000000"
        "00000000000000000000000000000000000000000500140000000000"
    ),
    bytes.fromhex(
        "480000001500000000000000000000000a408000010000001400010020010db8000200000000000000000100"
        "14000600ffffffffffffffff7a5207007a5207000800080080000000"
    ),
]


class _NetlinkSocket:
    def __init__(self, items: list) -> None:
        self.items = list(items)

    def recv(self, size: int) -> bytes:
        if not self.items:
            raise BlockingIOError
        item = self.items.pop(0)
        if isinstance(item, OSError):
            raise item
        return item

    def fileno(self) -> int:
        return 5

    def close(self) -> None:
        pass


def test_netlink_source_drains_the_socket_and_counts_overruns():
    import errno

    from pyroute2.netlink.rtnl.marshal import MarshalRtnl

    from mvpn_lab.mip6.daemon.netlink import NetlinkSource

    items = [CAPTURED[0], OSError(errno.ENOBUFS, "No buffer space available"), *CAPTURED[1:]]
    source = NetlinkSource(_NetlinkSocket(items), MarshalRtnl())
    messages = source.read()
    assert source.overruns == 1 and len(messages) == 4 and source.read() == []
    t = MovementTranslator(("lo",), ifname={1: "lo"}.get)
    events = [e for m in messages for e in t.translate(m)]
    address = IPv6Address("2001:db8:2::100")
    assert events == [
        AddressEvent("lo", address, 64, "tentative"),
        AddressEvent("lo", address, 64, "preferred"),
        AddressEvent("lo", address, 64, "removed"),
    ]


def test_interface_identifier_follows_slaac_not_the_link_local_address():
    # with "ip token" SLAAC uses the token, not the link-local address's IID
    t = MovementTranslator(("wlan0",))
    t.translate(link(3, "wlan0", UP))
    t.translate(addr(3, "fe80::ff:fe00:200", IFA_F_PERMANENT))
    assert t.iids["wlan0"] == 0xFF_FE00_0200
    t.translate(addr(3, "fec0:106:1100:0:20c:30ff:febb:f0b6", 0))  # autoconfigured (not permanent)
    assert t.iids["wlan0"] == 0x020C_30FF_FEBB_F0B6
    t.translate(addr(3, "fe80::ff:fe00:200", IFA_F_PERMANENT))  # seen again: the SLAAC IID stays
    t.translate(addr(3, "fec0:106:2700::5", IFA_F_PERMANENT))  # added by hand: not SLAAC's
    t.translate(addr(3, "fec0:106:1100::9", IFA_F_TENTATIVE | IFA_F_DADFAILED))
    assert t.iids["wlan0"] == 0x020C_30FF_FEBB_F0B6


def _in_network_namespace(script: str) -> str:
    """Run a Python ``script`` in a new network namespace (the real kernel); its output."""
    import shutil
    import subprocess
    import sys

    if not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs unshare and iproute2")
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", script], capture_output=True, text=True)
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip("needs root for a network namespace")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kernel_queries_read_ra_default_routes_from_the_real_kernel():
    script = (
        "import subprocess as s\n"
        "from mvpn_lab.mip6.daemon.netlink import KernelQueries\n"
        "for c in ('ip link add v0 type veth peer name v1', 'ip link set v0 up', 'ip link set v1 up',\n"
        "          'ip -6 route add default via fe80::1 dev v0 proto ra metric 1024',\n"
        "          'ip -6 route add default via fe80::2 dev v0 proto ra metric 1023',\n"
        "          'ip -6 route add default via fe80::3 dev v1 proto ra metric 1000',\n"
        "          'ip -6 route add default via fe80::4 dev v0 proto static metric 5'):\n"
        "    s.run(c.split(), check=True)\n"
        "q = KernelQueries()\n"
        "print(sorted(q.ra_default_gateways('v0')))\n"
        "q.close()\n"
    )
    assert _in_network_namespace(script).strip() == "['fe80::1', 'fe80::2']"


def test_kernel_queries_read_an_address_flags_as_ip_shows_them_from_the_real_kernel():
    script = (
        "import subprocess as s\n"
        "from ipaddress import IPv6Address as A\n"
        "from mvpn_lab.mip6.daemon.netlink import KernelQueries\n"
        "for c in ('ip link add v0 type veth peer name v1', 'ip link set v0 up', 'ip link set v1 up',\n"
        "          'ip -6 addr add 2001:db8::1/64 dev v0 nodad',\n"  # by hand: permanent
        "          'ip -6 addr add 2001:db8::2/64 dev v0 nodad valid_lft 100 preferred_lft 100',\n"
        "          'ip -6 addr add 2001:db8::3/64 dev v0'):\n"  # in DAD for a second
        "    s.run(c.split(), check=True)\n"
        "q = KernelQueries()\n"
        "for a in ('2001:db8::1', '2001:db8::2', '2001:db8::3', '2001:db8::4'):\n"
        "    print(q.address_info('v0', A(a)))\n"
        "q.close()\n"
    )
    assert _in_network_namespace(script).splitlines() == [
        "{'dynamic': False, 'tentative': False, 'dadfailed': False}",
        "{'dynamic': True, 'tentative': False, 'dadfailed': False}",
        "{'dynamic': False, 'tentative': True, 'dadfailed': False}",
        "None",
    ]


def test_a_deletion_after_failed_dad_is_dadfailed_and_a_removal_by_hand_is_removed():
    t = MovementTranslator(("wlan0",))
    t.translate(link(3, "wlan0", UP))
    dad = IFA_F_DADFAILED | IFA_F_TENTATIVE | IFA_F_OPTIMISTIC
    assert t.translate(addr(3, str(COA1), dad, event="RTM_DELADDR")) == [
        AddressEvent("wlan0", COA1, 64, "dadfailed")
    ]
    assert t.translate(addr(3, str(COA1), 0, event="RTM_DELADDR")) == [
        AddressEvent("wlan0", COA1, 64, "removed")
    ]
