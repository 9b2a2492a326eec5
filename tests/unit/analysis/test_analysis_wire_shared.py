"""The analyser and the daemon read one capture with the same wire code and agree on every message.

The capture holds each Mobility Header message type as the daemon encodes it, with the Home
Address option, a type 2 routing header or inside an IPv6-in-IPv6 tunnel, plus messages only a
broken or foreign stack would send. ``mvpn-lab mip6 decode`` (the daemon's view) and the
analyser's reader, header walk and ``parse_mh`` must find the same messages, fields and addresses,
and a change to the shared message table must show in both.
"""

from __future__ import annotations

import ipaddress
import struct
from ipaddress import IPv6Address
from pathlib import Path

import pytest
from analysis_builder import CN, COA, HA, HOA

from mvpn_lab.analysis.packets import MH_PROTOS, Unreadable, parse_chain, parse_mh
from mvpn_lab.analysis.pcapstream import CaptureReader
from mvpn_lab.mip6.cli import decode_capture
from mvpn_lab.mip6.wire import messages
from mvpn_lab.mip6.wire.constants import MHType
from mvpn_lab.mip6.wire.ipv6 import build_ipv6_packet
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
    encode_mh,
)
from mvpn_lab.mip6.wire.pcap import ethernet_frame, write_pcap


def _tunnel(src: str, dst: str, inner: bytes) -> bytes:
    head = struct.pack("!IHBB", 6 << 28, len(inner), 41, 64)
    return head + IPv6Address(src).packed + IPv6Address(dst).packed + inner


def _packets() -> list[bytes]:
    """IPv6 packets as the daemon builds them (checksums fixed for their addresses)."""
    bu_ha = BindingUpdate(
        seq=4242, lifetime=25, ack=True, home=True, options=(AlternateCareOfAddress(IPv6Address(COA)),)
    )
    bu_cn = BindingUpdate(
        seq=7,
        lifetime=10,
        options=(NonceIndices(3, 4), BindingAuthorizationData(b"a" * 12)),
        other_flags=0x0400,
    )
    ba = BindingAcknowledgement(
        status=0, seq=4242, lifetime=25, key_mgmt=True, options=(BindingRefreshAdvice(5),)
    )
    return [
        build_ipv6_packet(COA, HA, encode_mh(bu_ha), hao=HOA),
        build_ipv6_packet(HA, COA, encode_mh(ba), rh2=HOA),
        _tunnel(COA, HA, build_ipv6_packet(HOA, CN, encode_mh(HomeTestInit(cookie=b"hometest")))),
        build_ipv6_packet(COA, CN, encode_mh(CareOfTestInit(cookie=b"careofti"))),
        _tunnel(HA, COA, build_ipv6_packet(CN, HOA, encode_mh(HomeTest(1, b"hometest", b"k" * 8)))),
        build_ipv6_packet(CN, COA, encode_mh(CareOfTest(2, b"careofti", b"t" * 8))),
        build_ipv6_packet(COA, CN, encode_mh(bu_cn), hao=HOA),
        build_ipv6_packet(CN, COA, encode_mh(BindingAcknowledgement(status=135, seq=7)), rh2=HOA),
        build_ipv6_packet(HA, COA, encode_mh(BindingRefreshRequest()), rh2=HOA),
        build_ipv6_packet(CN, COA, encode_mh(BindingError(status=2, home_address=IPv6Address(HOA)))),
    ]


def _analyser(path: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    with CaptureReader(path) as reader:
        for ts, buf, l3, end, _missing, frame in reader.packets():
            try:
                chain = parse_chain(buf, l3, end)
                if chain.nh not in MH_PROTOS:
                    continue
                msg = parse_mh(buf, chain.p, chain.ip_end, end)
            except Unreadable as exc:
                out.append({"frame": frame, "error": exc.kind})
                continue
            out.append(
                {
                    "frame": frame,
                    "time": round(ts, 6),
                    "src": str(ipaddress.IPv6Address(chain.src)),
                    "dst": str(ipaddress.IPv6Address(chain.dst)),
                    "hao": None if chain.hao is None else str(ipaddress.IPv6Address(chain.hao)),
                    "rh2": None if chain.rh2 is None else str(ipaddress.IPv6Address(chain.rh2)),
                    "tunnel": [
                        {"src": str(ipaddress.IPv6Address(s)), "dst": str(ipaddress.IPv6Address(d))}
                        for s, d in chain.outer
                    ],
                    "mh_type": msg.mh_type,
                    "seq": msg.seq,
                    "status": msg.status,
                    "lifetime": msg.lifetime,
                    "cookie": msg.cookie,
                    "flags": msg.flags,
                    "options": msg.options,
                }
            )
    return out


def _daemon(path: Path) -> list[dict[str, object]]:
    records, warnings = decode_capture(path.read_bytes(), name="x")
    assert warnings == []
    out: list[dict[str, object]] = []
    for r in records:
        flags = 0
        if r["type"] == "BU":
            flags = BindingUpdate(
                ack="A" in r["flags"],
                home="H" in r["flags"],
                link_local="L" in r["flags"],
                key_mgmt="K" in r["flags"],
                other_flags=r["other_flags"],
            ).flag_bits
        elif r["type"] == "BA":
            flags = BindingAcknowledgement(key_mgmt=r["key_mgmt"], other_flags=r["other_flags"]).flag_bits
        out.append(
            {
                "frame": r["frame"],
                "time": r["time"],
                "src": r["src"],
                "dst": r["dst"],
                "hao": r["hao"],
                "rh2": r["rh2"],
                "tunnel": r.get("tunnel", []),
                "mh_type": r["mh_type"],
                "seq": r.get("seq"),
                "status": r.get("status"),
                "lifetime": r.get("lifetime"),
                "cookie": bytes.fromhex(r["cookie"]) if "cookie" in r else None,
                "flags": flags,
                "options": [o["option_type"] for o in r["options"] if o["type"] != "Pad1"],
            }
        )
    return out


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "mh.pcap"
    arp = b"\x02" * 12 + b"\x08\x06" + bytes(28)  # not IPv6: skipped, but it keeps its frame number
    write_pcap(path, [arp, *(ethernet_frame(p) for p in _packets())], start=1_700_000_000.0)
    return path


def test_the_analyser_and_the_daemon_decode_the_same_messages(capture: Path) -> None:
    ours, theirs = _analyser(capture), _daemon(capture)
    assert ours == theirs
    assert [m["mh_type"] for m in ours] == [5, 6, 1, 2, 3, 4, 5, 6, 0, 7]
    assert [m["frame"] for m in ours] == list(range(2, 12))
    assert ours[0]["hao"] == str(IPv6Address(HOA)) and ours[0]["options"] == [1, 3]  # PadN aligns the ACoA
    assert ours[2]["tunnel"] == [{"src": str(IPv6Address(COA)), "dst": str(IPv6Address(HA))}]
    assert ours[6]["flags"] == 0x0400 and ours[6]["options"] == [4, 5]


def test_a_type_left_out_of_the_shared_table_is_unknown_to_both(
    capture: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One table: without Binding Error in it, neither side decodes the BE any more."""
    monkeypatch.delitem(messages.MESSAGE_CLASSES, MHType.BE)
    ours = _analyser(capture)
    assert ours[-1] == {"frame": 11, "error": "unknown-mh-type"}
    records, _ = decode_capture(capture.read_bytes(), name="x")
    assert records[-1]["type"] == "Unknown" and records[-1]["mh_type"] == 7
