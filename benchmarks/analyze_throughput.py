#!/usr/bin/env python3
"""Throughput of the handover analyser against tshark on the same capture.

Builds a run folder with one repetition whose MN capture holds a long TCP
download (CN -> MN data, MN -> CN ACKs) through several handovers under route
optimisation: plain IPv6 at home, IPv6-in-IPv6 through the home agent right
after each move, type 2 routing header / Home Address option once the CN is
bound. Records are written directly with ``struct`` from prebuilt templates.

Then it times, each in a fresh process (so peak RSS is the analyser's own):

* the analyser's pass over mn.pcap (the milestone scanner);
* the whole ``analyze_run`` (MN pass, CN pass, clock offset, CSV and JSON);
* ``tshark -r mn.pcap -Y 'mipv6 || icmpv6.type == 134 || tcp.len > 0' -T fields -e frame.time_epoch``.

Usage::

    .venv/bin/python benchmarks/analyze_throughput.py                 # 1.2 M packets, temp dir
    .venv/bin/python benchmarks/analyze_throughput.py --packets 1000000 --payload 1400 --dir /tmp/bench
    .venv/bin/python benchmarks/analyze_throughput.py --dir /tmp/bench --reuse   # skip building

It prints figures; it is not a test. Wall-clock throughput is the figure to compare; the CPU
seconds beside it help when other work shares the machine (see docs/analysis.md, Performance).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOA = bytes.fromhex("fec0010627000000020c30fffebbf0b6")
COA = bytes.fromhex("fec0010611000000020c30fffebbf0b6")
HA = bytes.fromhex("fec00106250000000000000000000001")
CN = bytes.fromhex("fec00106250000000000000000000002")
FR_LL = bytes.fromhex("fe800000000000000000000000000002")
HR_LL = bytes.fromhex("fe800000000000000000000000000001")
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
ETH = bytes.fromhex("000c29bbf0b6020000000001") + b"\x86\xdd"
T_BASE = 1_700_000_000.0
CONFIG_ID = "mip6-ro_ipsec-none_md-ra"
# Not 80: tshark would hand the header-less synthetic body to its HTTP dissector and
# reassemble it forever (quadratic), which says nothing about real captures.
SERVER_PORT = 45000
# Phase durations of every handover in the synthetic capture (seconds).
PLAN = {"ra": 0.8, "bu_ha": 0.01, "ba_ha": 0.12, "coti": 0.06, "cot": 0.09, "bu_cn": 0.02, "next_tcp": 0.2}


def ipv6(src: bytes, dst: bytes, nh: int, payload_len: int) -> bytes:
    return struct.pack("!IHBB", 0x60000000, payload_len, nh, 64) + src + dst


def mh(mh_type: int, body: bytes) -> bytes:
    """A Mobility Header (payload proto 59) padded to a multiple of 8 bytes."""
    raw = struct.pack("!BBBBH", 59, 0, mh_type, 0, 0) + body
    raw += b"\0" * ((-len(raw)) % 8)
    return raw[:1] + bytes([len(raw) // 8 - 1]) + raw[2:]


def hao_dstopt(nh: int) -> bytes:
    # next header, length 2 (24 bytes): PadN(4 bytes), HAO (201, 16)
    return struct.pack("!BB", nh, 2) + b"\x01\x02\x00\x00" + b"\xc9\x10" + HOA


def rh2(nh: int) -> bytes:
    return struct.pack("!BBBBI", nh, 2, 2, 1, 0) + HOA


class Writer:
    """Writes pcap records from prebuilt templates, buffered."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.parts: list[bytes] = []
        self.count = 0
        self.rec = struct.Struct("<IIII").pack

    def add(self, ts: float, frame: bytes) -> None:
        us = round(ts * 1e6)
        self.parts.append(self.rec(us // 1_000_000, us % 1_000_000, len(frame), len(frame)))
        self.parts.append(frame)
        self.count += 1
        if len(self.parts) >= 20000:
            self.f.write(b"".join(self.parts))
            self.parts.clear()

    def close(self) -> None:
        self.f.write(b"".join(self.parts))
        self.f.close()


def build(run_dir: Path, packets: int, payload: int, handovers: int) -> dict[str, object]:
    """Write manifest.json and rep-01 with mn.pcap, cn.pcap and events.json."""
    rep = run_dir / CONFIG_ID / "rep-01"
    rep.mkdir(parents=True, exist_ok=True)
    data = b"D" * payload
    tcp_hdr = struct.Struct("!HHIIBBHHH")

    def tcp(seq: int, ack: int, body: bytes) -> bytes:
        return (
            tcp_hdr.pack(
                SERVER_PORT if body else 40000,
                40000 if body else SERVER_PORT,
                seq,
                ack,
                0x50,
                0x18,
                8192,
                0,
                0,
            )
            + body
        )

    # Frames around a TCP segment, per path; (MN view, CN view).
    def down(seg: bytes, path: str) -> tuple[bytes, bytes]:
        if path == "home":
            f = ipv6(CN, HOA, 6, len(seg)) + seg
            return ETH + f, ETH + f
        if path == "ro":
            f = ipv6(CN, COA, 43, 24 + len(seg)) + rh2(6) + seg
            return ETH + f, ETH + f
        inner = ipv6(CN, HOA, 6, len(seg)) + seg
        return ETH + ipv6(HA, COA, 41, len(inner)) + inner, ETH + inner

    def up(seg: bytes, path: str) -> tuple[bytes, bytes]:
        if path == "home":
            f = ipv6(HOA, CN, 6, len(seg)) + seg
            return ETH + f, ETH + f
        if path == "ro":
            f = ipv6(COA, CN, 60, 24 + len(seg)) + hao_dstopt(6) + seg
            return ETH + f, ETH + f
        inner = ipv6(HOA, CN, 6, len(seg)) + seg
        return ETH + ipv6(COA, HA, 41, len(inner)) + inner, ETH + inner

    mn = Writer(rep / "mn.pcap")
    cn = Writer(rep / "cn.pcap")
    delay = 0.002
    interval = 0.0005  # one data packet and one ACK per 0.5 ms
    pairs = packets // 2
    per_handover = pairs // (handovers + 1)
    events = []
    seq, ack = 1, 1
    t = T_BASE
    path = "home"
    away = False
    bu_seq = 100
    expected = []
    for i in range(pairs):
        if i and i % per_handover == 0 and len(events) < handovers:
            # A handover: outage, signalling, then data on the new path.
            t0 = t
            away = not away
            prefix = (COA if away else HOA)[:8] + b"\0" * 8
            router = FR_LL if away else HR_LL
            ts = t0 + PLAN["ra"]
            ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
            ra += struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + prefix
            mn.add(ts, ETH + ipv6(router, ALL_NODES, 58, len(ra)) + ra)
            ts += PLAN["bu_ha"]
            bu_seq += 1
            bu = mh(5, struct.pack("!HHH", bu_seq, 0xC000, 0 if not away else 100))
            if away:
                mn.add(ts, ETH + ipv6(COA, HA, 60, 24 + len(bu)) + hao_dstopt(135) + bu)
            else:
                mn.add(ts, ETH + ipv6(HOA, HA, 135, len(bu)) + bu)
            ts += PLAN["ba_ha"]
            ba = mh(6, struct.pack("!BBHH", 0, 0, bu_seq, 100))
            if away:
                mn.add(ts, ETH + ipv6(HA, COA, 43, 24 + len(ba)) + rh2(135) + ba)
            else:
                mn.add(ts, ETH + ipv6(HA, HOA, 135, len(ba)) + ba)
            if away:
                ts += PLAN["coti"]
                coti = mh(2, b"\0\0" + b"c" * 8)
                f = ETH + ipv6(COA, CN, 135, len(coti)) + coti
                mn.add(ts, f)
                cn.add(ts + delay, f)
                ts += PLAN["cot"]
                cot = mh(4, struct.pack("!H", 1) + b"c" * 8 + b"k" * 8)
                f = ETH + ipv6(CN, COA, 135, len(cot)) + cot
                mn.add(ts, f)
                cn.add(ts - delay, f)
            ts += PLAN["bu_cn"]
            bu_cn = mh(5, struct.pack("!HHH", bu_seq, 0, 0 if not away else 100))
            if away:
                f = ETH + ipv6(COA, CN, 60, 24 + len(bu_cn)) + hao_dstopt(135) + bu_cn
            else:
                f = ETH + ipv6(HOA, CN, 135, len(bu_cn)) + bu_cn
            mn.add(ts, f)
            cn.add(ts + delay, f)
            ts += PLAN["next_tcp"]
            expected.append(ts - t0)
            events.append(
                {
                    "handover_at": t0,
                    "from_ssid": "VISITME" if not away else "LOCAL",
                    "to_ssid": "VISITME" if away else "LOCAL",
                    "associated_at": t0 + 0.2,
                }
            )
            t = ts
            path = "ro" if away else "home"
        d_mn, d_cn = down(tcp(seq, ack, data), path)
        mn.add(t, d_mn)
        cn.add(t - delay, d_cn)
        seq = (seq + payload) & 0xFFFFFFFF
        a_mn, a_cn = up(tcp(ack, seq, b""), path)
        mn.add(t + 0.0001, a_mn)
        cn.add(t + 0.0001 + delay, a_cn)
        t += interval
    mn.close()
    cn.close()
    (rep / "events.json").write_text(
        json.dumps({"handovers": events, "transfer": {"bytes": seq, "sha256_ok": True}})
    )
    manifest = {
        "test": "test2_wlan_horizontal",
        "run": run_dir.name,
        "configurations": [
            {"id": CONFIG_ID, "mip6": "ro", "ipsec": "none", "movement_detection": "ra", "profile": "wlan"}
        ],
        "addresses": {
            "home_address": "fec0:106:2700::20c:30ff:febb:f0b6",
            "home_agent": "fec0:106:2500::1",
            "correspondent": "fec0:106:2500::2",
            "home_prefix": "fec0:106:2700::/64",
            "foreign_prefix": "fec0:106:1100::/64",
        },
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return {"mn_packets": mn.count, "cn_packets": cn.count, "expected_totals_s": expected}


# -- measurements, each in its own process ------------------------------------------------------
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure_pass(run_dir: Path) -> dict[str, object]:
    from mvpn_lab.analysis.diagnostics import Diagnostics
    from mvpn_lab.analysis.milestones import MobileNodePass, make_windows
    from mvpn_lab.analysis.pcapstream import CaptureReader
    from mvpn_lab.analysis.rundir import load_events, load_run

    diag = Diagnostics()
    folder = load_run(run_dir, diag)
    rep = folder.reps[CONFIG_ID][0]
    events = load_events(rep.path / "events.json", diag)
    assert not isinstance(events, str)
    windows = make_windows(events.handovers, folder.addresses)
    rss_before = _peak_rss_mb()
    start = time.perf_counter()
    cpu = time.process_time()
    with CaptureReader(rep.capture("mn")) as reader:
        scanner = MobileNodePass(rep.config, folder.addresses, windows, reader.problems)
        scanner.run(reader.packets())
    elapsed = time.perf_counter() - start
    return {
        "seconds": elapsed,
        "cpu_seconds": time.process_time() - cpu,
        "packets": reader.records,
        "signals": sum(len(w.signals) for w in windows),
        "rss_before_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
    }


def measure_full(run_dir: Path) -> dict[str, object]:
    from mvpn_lab.analysis import analyze_run, write_analysis
    from mvpn_lab.analysis.diagnostics import Diagnostics

    start = time.perf_counter()
    cpu = time.process_time()
    analysis = analyze_run(run_dir, diag=Diagnostics(quiet=True))
    write_analysis(analysis)
    elapsed = time.perf_counter() - start
    return {
        "seconds": elapsed,
        "cpu_seconds": time.process_time() - cpu,
        "totals_s": [h.total_s for h in analysis.handovers],
        "status": [h.status for h in analysis.handovers],
        "peak_rss_mb": _peak_rss_mb(),
    }


def child(kind: str, run_dir: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, f"--child-{kind}", str(run_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"{kind} measurement failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_tshark(path: Path) -> tuple[float, int] | None:
    exe = shutil.which("tshark")
    if exe is None:
        return None
    cmd = [
        exe,
        "-r",
        str(path),
        "-Y",
        "mipv6 || icmpv6.type == 134 || tcp.len > 0",
        "-T",
        "fields",
        "-e",
        "frame.time_epoch",
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lines = 0
    assert proc.stdout is not None
    for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):
        lines += chunk.count(b"\n")
    proc.wait()
    return time.perf_counter() - start, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_200_000, help="packets in mn.pcap (default 1.2 M)")
    parser.add_argument("--payload", type=int, default=1200, help="TCP payload bytes per data packet")
    parser.add_argument("--handovers", type=int, default=4)
    parser.add_argument(
        "--dir", type=Path, help="where to build the run folder (default: a temp dir, removed)"
    )
    parser.add_argument("--reuse", action="store_true", help="use the run folder already in --dir")
    parser.add_argument("--no-tshark", action="store_true")
    parser.add_argument("--child-pass", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-full", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_pass:
        print(json.dumps(measure_pass(args.child_pass)))
        return 0
    if args.child_full:
        print(json.dumps(measure_full(args.child_full)))
        return 0

    tmp = None
    if args.dir is None:
        tmp = tempfile.mkdtemp(prefix="mvpn-bench-")
        base = Path(tmp)
    else:
        base = args.dir
    run_dir = base / "test2_wlan_horizontal" / "20250101T000000Z"
    try:
        if not args.reuse:
            if run_dir.exists():
                shutil.rmtree(run_dir)
            start = time.perf_counter()
            info = build(run_dir, args.packets, args.payload, args.handovers)
            print(
                f"built {info['mn_packets']:,} + {info['cn_packets']:,} packets in "
                f"{time.perf_counter() - start:.1f} s -> {run_dir}"
            )
            expected = info["expected_totals_s"]
        else:
            expected = None
        mn = run_dir / CONFIG_ID / "rep-01" / "mn.pcap"
        cn = run_dir / CONFIG_ID / "rep-01" / "cn.pcap"
        size = mn.stat().st_size
        print(f"mn.pcap: {size / 1e9:.2f} GB; cn.pcap: {cn.stat().st_size / 1e9:.2f} GB")
        # Warm the page cache so every reader starts equal.
        for path in (mn, cn):
            with open(path, "rb") as f:
                while f.read(1 << 24):
                    pass
        one = child("pass", run_dir)
        pps = one["packets"] / one["seconds"]
        print(
            f"analyser pass (mn.pcap): {one['packets']:,} packets in {one['seconds']:.2f} s = "
            f"{pps:,.0f} packets/s, {size / one['seconds'] / 1e6:,.0f} MB/s "
            f"(CPU {one['cpu_seconds']:.2f} s); peak RSS {one['peak_rss_mb']:.0f} MB "
            f"(interpreter + imports before the pass: {one['rss_before_mb']:.0f} MB)"
        )
        full = child("full", run_dir)
        total_packets = one["packets"] * 2
        print(
            f"full analyze_run (mn.pcap + cn.pcap, outputs): {full['seconds']:.2f} s = "
            f"{total_packets / full['seconds']:,.0f} packets/s (CPU {full['cpu_seconds']:.2f} s); "
            f"peak RSS {full['peak_rss_mb']:.0f} MB"
        )
        print(
            f"  handover totals found: {[round(t, 6) if t else t for t in full['totals_s']]} "
            f"({set(full['status'])})"
        )
        if expected is not None:
            ok = all(
                t is not None and abs(t - e) < 1e-3 for t, e in zip(full["totals_s"], expected, strict=False)
            ) and len(full["totals_s"]) == len(expected)
            print(f"  expected: {[round(e, 6) for e in expected]} -> {'match' if ok else 'MISMATCH'}")
        if not args.no_tshark:
            result = run_tshark(mn)
            if result is None:
                print("tshark not found; skipped")
            else:
                seconds, lines = result
                tpps = one["packets"] / seconds
                print(
                    f"tshark -Y 'mipv6 || icmpv6.type == 134 || tcp.len > 0': {seconds:.2f} s = "
                    f"{tpps:,.0f} packets/s "
                    f"({lines:,} lines)"
                )
                print(f"analyser pass / tshark: {pps / tpps:.1f}x")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
