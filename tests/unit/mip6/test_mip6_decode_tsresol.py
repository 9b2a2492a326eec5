"""``mvpn-lab mip6 decode`` honours a pcapng interface's timestamp resolution (if_tsresol).

The captures are written with dpkt's pcapng blocks (an Interface Description Block carrying the
if_tsresol option, Enhanced Packet Blocks with raw 64-bit timestamps), not by the reader under test.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import dpkt.pcapng as pcapng
import pytest

from mvpn_lab.cli import main
from mvpn_lab.mip6.wire.ipv6 import build_ipv6_packet
from mvpn_lab.mip6.wire.messages import BindingUpdate, encode_mh
from mvpn_lab.mip6.wire.pcap import LINKTYPE_IPV6, read_capture

from ._helpers import HA, HOA

# nanoseconds since the epoch, nine significant digits after the second
NS = 1_796_490_000_123_456_789
US = NS // 1000 + 1_000_000  # interface 1 (microseconds): 1 s later, the last 789 ns cut off


def _idb(tsresol: int | None) -> pcapng.InterfaceDescriptionBlockLE:
    opts = []
    if tsresol is not None:
        opts.append(pcapng.PcapngOptionLE(code=pcapng.PCAPNG_OPT_IF_TSRESOL, data=bytes([tsresol])))
    opts.append(pcapng.PcapngOptionLE(code=pcapng.PCAPNG_OPT_ENDOFOPT))
    return pcapng.InterfaceDescriptionBlockLE(linktype=LINKTYPE_IPV6, snaplen=65535, opts=opts)


def _epb(iface: int, ticks: int, packet: bytes) -> bytes:
    block = pcapng.EnhancedPacketBlockLE(
        iface_id=iface,
        ts_high=ticks >> 32,
        ts_low=ticks & 0xFFFFFFFF,
        caplen=len(packet),
        pkt_len=len(packet),
        pkt_data=packet,
    )
    return bytes(block)


def _capture(path: Path) -> None:
    """Interface 0 in nanoseconds (if_tsresol 9), interface 1 without the option (microseconds)."""
    packet = build_ipv6_packet(HOA, HA, encode_mh(BindingUpdate(seq=7, home=True, ack=True, lifetime=100)))
    out = io.BytesIO()
    pcapng.Writer(out, shb=pcapng.SectionHeaderBlockLE(), idb=[_idb(9), _idb(None)])  # SHB + IDBs
    out.write(_epb(0, NS, packet))
    out.write(_epb(1, US, packet))
    path.write_bytes(out.getvalue())


def test_decode_prints_nanosecond_pcapng_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ns.pcapng"
    _capture(path)
    assert main(["mip6", "decode", str(path)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["type"] for r in records] == ["BU", "BU"]
    assert records[0]["time"] == pytest.approx(NS / 1e9, abs=1e-6)
    assert records[1]["time"] == pytest.approx(US / 1e6, abs=1e-6)


def test_the_shared_reader_keeps_the_nanoseconds(tmp_path: Path) -> None:
    path = tmp_path / "ns.pcapng"
    _capture(path)
    first, second = read_capture(path).frames
    assert first.timestamp == pytest.approx(NS / 1e9, abs=1e-6)
    assert round((first.timestamp % 1) * 1e9) == pytest.approx(123_456_789, abs=300)  # float precision
    assert second.timestamp == pytest.approx(US / 1e6, abs=1e-6)
    assert second.timestamp - first.timestamp == pytest.approx(1.0, abs=1e-6)
