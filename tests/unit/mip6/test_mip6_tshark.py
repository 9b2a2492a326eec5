"""The daemon's messages, written as a pcap, dissect cleanly in tshark.

Wireshark 4.0 does not verify Mobility Header checksums (there is no ``mip6.csum.status``
field), so each checksum is recomputed with scapy's checksum routine over a pseudo-header built
from tshark's own reading of the packet: the Home Address option's address as source and the
type 2 routing header's address as destination when present (RFC 2460 8.1, RFC 6275 9.3.1).
(scapy's ``in6_chksum`` cannot be used on dissected packets: it only notices a Home Address
option that is alone in its header, without the PadN that alignment requires.) A deliberately
broken frame checks that tshark does flag problems.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from scapy.compat import raw
from scapy.layers.inet6 import PseudoIPv6
from scapy.utils import checksum

from mvpn_lab.mip6.core.actions import SendMH
from mvpn_lab.mip6.wire.ipv6 import build_ipv6_packet
from mvpn_lab.mip6.wire.messages import (
    AlternateCareOfAddress,
    BindingError,
    BindingRefreshRequest,
    BindingUpdate,
    encode_mh,
)
from mvpn_lab.mip6.wire.pcap import ethernet_frame, write_pcap

from ._helpers import CN, COA1, COA2, HA, HOA
from ._helpers import network as make_network

FIELDS = [
    "frame.number",
    "ipv6.src",
    "ipv6.dst",
    "_ws.malformed",
    "_ws.expert.severity",
    "_ws.expert.message",
    "mip6.mhtype",
    "mip6.csum",
    "ipv6.opt.mipv6.home_address",
    "ipv6.routing.mipv6.home_address",
]


def daemon_messages() -> list[SendMH]:
    net = make_network(mn={"mode": "ro", "correspondents": (CN,), "cn_ack": True})
    net.mn.node.move_to(COA1)
    net.run(3)
    net.mn.node.move_to(COA2)
    net.run(3)
    sends = [send for _, send, _ in net.delivered]
    # plus the two kinds the happy path does not produce
    sends.append(SendMH(CN, COA1, BindingError(status=1, home_address=HOA)))
    sends.append(SendMH(HA, COA1, BindingRefreshRequest(), rh2=HOA))
    return sends


def tshark(path) -> list[dict[str, str]]:
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=|", "-E", "occurrence=a"]
    for f in FIELDS:
        cmd += ["-e", f]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    return [dict(zip(FIELDS, line.split("|"), strict=True)) for line in proc.stdout.splitlines()]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_daemon_messages_dissect_cleanly_in_tshark(tmp_path):
    sends = daemon_messages()
    types = [s.message.MH_TYPE for s in sends]
    assert {0, 1, 2, 3, 4, 5, 6, 7} <= set(types)  # every message type is in the capture
    frames = [
        ethernet_frame(build_ipv6_packet(s.src, s.dst, s.wire(), hao=s.hao, rh2=s.rh2, fix_checksum=False))
        for s in sends
    ]
    # negative control: a BU whose Header Len overruns the packet
    good = encode_mh(BindingUpdate(seq=1, lifetime=1, options=(AlternateCareOfAddress(COA1),)))
    broken = bytes([good[0], 5]) + good[2:]
    frames.append(ethernet_frame(build_ipv6_packet(COA1, HA, broken)))
    path = tmp_path / "daemon.pcap"
    write_pcap(path, frames)

    rows = tshark(path)
    assert len(rows) == len(frames)
    *ours, control = rows
    assert control["_ws.malformed"] and "Malformed" in control["_ws.expert.message"]

    for send, frame, row in zip(sends, frames[:-1], ours, strict=True):
        label = f"frame {row['frame.number']} {send.message.NAME}"
        assert row["_ws.malformed"] == "", label
        assert row["_ws.expert.severity"] == "", (label, row["_ws.expert.message"])
        assert int(row["mip6.mhtype"]) == send.message.MH_TYPE, label
        wire_checksum = int.from_bytes(send.wire()[4:6], "big")
        assert int(row["mip6.csum"], 16) == wire_checksum, label
        assert row["ipv6.opt.mipv6.home_address"] == (str(send.hao) if send.hao else ""), label
        assert row["ipv6.routing.mipv6.home_address"] == (str(send.rh2) if send.rh2 else ""), label
        assert (row["ipv6.src"], row["ipv6.dst"]) == (str(send.src), str(send.dst)), label
        # independent checksum check from tshark's view of the addresses
        pseudo_src = row["ipv6.opt.mipv6.home_address"] or row["ipv6.src"]
        pseudo_dst = row["ipv6.routing.mipv6.home_address"] or row["ipv6.dst"]
        mh = send.wire()
        assert frame.endswith(mh), label
        pseudo = raw(PseudoIPv6(src=pseudo_src, dst=pseudo_dst, uplen=len(mh), nh=135))
        assert checksum(pseudo + mh[:4] + b"\0\0" + mh[6:]) == wire_checksum, label

    hao_bus = [s for s in sends if isinstance(s.message, BindingUpdate) and s.hao]
    assert len(hao_bus) >= 4  # home and correspondent registrations carry the HAO
    assert any(s.rh2 for s in sends if s.message.NAME == "BA")
