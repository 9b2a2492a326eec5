"""Fuzzing without hypothesis: tcpdump's crash captures and seeded random inputs.

Only MHDecodeError may escape the decoders; the state machines must never raise on input.
"""

from __future__ import annotations

import contextlib
import json
import random
import struct

import pytest

from mvpn_lab.cli import main
from mvpn_lab.mip6.core.actions import ReceivedPacket
from mvpn_lab.mip6.wire.ipv6 import build_ipv6_packet, parse_ipv6
from mvpn_lab.mip6.wire.messages import (
    AlternateCareOfAddress,
    BindingAcknowledgement,
    BindingAuthorizationData,
    BindingError,
    BindingRefreshAdvice,
    BindingRefreshRequest,
    BindingUpdate,
    CareOfTest,
    HomeTest,
    HomeTestInit,
    MHDecodeError,
    NonceIndices,
    decode_mh,
    encode_mh,
    strip_padding,
)
from mvpn_lab.mip6.wire.pcap import ethernet_frame, read_capture

from ._helpers import CN, COA1, DATA, HA, HOA, make_cn, make_ha, make_mn

SEED = 20240611
FUZZ_FILES = sorted(DATA.glob("*.pcap"))

SEEDS = [
    encode_mh(BindingRefreshRequest()),
    encode_mh(HomeTestInit(cookie=b"12345678")),
    encode_mh(HomeTest(nonce_index=3, cookie=b"c" * 8, token=b"t" * 8)),
    encode_mh(CareOfTest(nonce_index=4, cookie=b"d" * 8, token=b"u" * 8)),
    encode_mh(BindingUpdate(seq=1, lifetime=9, ack=True, home=True, options=(AlternateCareOfAddress(COA1),))),
    encode_mh(
        BindingUpdate(seq=2, lifetime=9, options=(NonceIndices(1, 2), BindingAuthorizationData(bytes(12))))
    ),
    encode_mh(BindingAcknowledgement(status=0, seq=1, lifetime=9, options=(BindingRefreshAdvice(3),))),
    encode_mh(BindingError(status=1, home_address=HOA)),
]


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and buf:  # flip bits
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:  # set a byte to an interesting value
            buf[rng.randrange(len(buf))] = rng.choice([0, 1, 2, 3, 4, 5, 0x7F, 0x80, 0xFF, 8, 16, 12])
        elif op == 2:  # truncate
            del buf[rng.randrange(len(buf) + 1) :]
        elif op == 3:  # extend
            buf += rng.randbytes(rng.randint(1, 24))
        elif op == 4 and len(buf) > 2:  # fiddle with the header length
            buf[1] = rng.randrange(256)
    return bytes(buf)


def inputs(count: int):
    rng = random.Random(SEED)
    for _ in range(count):
        if rng.random() < 0.3:
            yield rng.randbytes(rng.randint(0, 80))
        else:
            yield mutate(rng, rng.choice(SEEDS))


@pytest.mark.parametrize("path", FUZZ_FILES, ids=lambda p: p.name)
def test_tcpdump_crash_captures_are_handled(path, capsys):
    rc = main(["mip6", "decode", str(path)])
    out, err = capsys.readouterr()
    assert rc in (0, 1)
    for line in out.splitlines():
        json.loads(line)
    warnings = err.splitlines()
    assert all(line.startswith("mvpn-lab: warning: ") and str(path) in line for line in warnings)
    assert "Traceback" not in err
    assert rc == (1 if warnings else 0)
    if path.name != "icmp6_mobileprefix_asan.pcap":  # that one holds no Mobility Header
        assert warnings, "a crash capture should produce at least one warning"


def test_crash_captures_say_what_was_not_read(capsys):
    main(["mip6", "decode", str(DATA / "mobility_opt_asan.pcap")])
    err = capsys.readouterr().err
    assert "frame 1: mobility header: header length says 160 bytes, only 46 available" in err
    assert "(packet captured 86 of 32882 bytes)" in err  # the IPv6 packet: the frame less 14 bytes


def test_random_mobility_headers_only_raise_decode_error():
    decoded = failed = 0
    for data in inputs(4000):
        try:
            msg = decode_mh(data)
        except MHDecodeError as exc:
            assert exc.reason and "\n" not in exc.reason
            failed += 1
            continue
        decoded += 1
        # whatever decodes re-encodes, and decodes again to the same message (the encoder may
        # add alignment padding where the input had its options misaligned)
        again = decode_mh(encode_mh(msg))
        assert strip_padding(again) == strip_padding(msg)
        assert type(again) is type(msg)
    assert decoded > 500 and failed > 500  # the corpus exercises both paths


def test_random_ipv6_packets_only_raise_decode_error():
    rng = random.Random(SEED + 1)
    base = [
        build_ipv6_packet(COA1, HA, SEEDS[4], hao=HOA),
        build_ipv6_packet(HA, COA1, SEEDS[6], rh2=HOA),
        build_ipv6_packet(COA1, CN, SEEDS[5], hao=HOA, rh2=CN),
    ]
    reached = 0
    for _ in range(2000):
        data = mutate(rng, rng.choice(base))
        try:
            parsed = parse_ipv6(data)
        except MHDecodeError:
            continue
        if parsed.mh is not None:
            reached += 1
            with contextlib.suppress(MHDecodeError):
                decode_mh(parsed.mh)
    assert reached > 100


def test_random_captures_only_raise_decode_error():
    rng = random.Random(SEED + 2)
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    frame = ethernet_frame(build_ipv6_packet(COA1, HA, SEEDS[4], hao=HOA))
    good = header + struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame
    for _ in range(1000):
        data = mutate(rng, good)
        with contextlib.suppress(MHDecodeError):
            read_capture(data)


@pytest.mark.parametrize("factory", [make_ha, make_cn, make_mn], ids=["ha", "cn", "mn"])
def test_state_machines_never_raise_on_random_input(factory):
    bench = factory()
    rng = random.Random(SEED + 3)
    results: set[str] = set()
    for i, data in enumerate(inputs(1500)):
        pkt = ReceivedPacket(
            src=rng.choice([COA1, HOA, HA, CN]),
            dst=rng.choice([HA, CN, COA1, HOA]),
            mh=data,
            hao=rng.choice([None, HOA]),
            rh2=rng.choice([None, None, HOA]),
            esp=rng.random() < 0.5,
            via_tunnel=rng.random() < 0.5,
            checksum_verified=True,  # get past the checksum to exercise the handlers
        )
        results.add(bench.node.receive(pkt).split(":")[0])
        if i % 100 == 0:
            bench.clock.advance(7)
            bench.node.tick()
    assert "rejected" in results
    status = bench.node.status()
    json.dumps(status)
    assert status["rejected"]["malformed"] > 0
