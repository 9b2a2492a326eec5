"""The attack generator (``mvpn-lab mip6 attack``): what each kind puts on the wire, that its
Mobility Header checksum is right (else the kernel would drop it and a test would prove nothing),
and that the real state machines reject and count it without touching the binding cache."""

from __future__ import annotations

import json
import subprocess
import sys
from ipaddress import IPv6Address

import pytest

from mvpn_lab.cli import main
from mvpn_lab.errors import LabError
from mvpn_lab.mip6 import attacks
from mvpn_lab.mip6.core.actions import ReceivedPacket, SendMH
from mvpn_lab.mip6.core.rr import authenticated_mh_data
from mvpn_lab.mip6.wire.constants import MHType
from mvpn_lab.mip6.wire.ipv6 import build_ipv6_packet, mh_checksum, parse_ipv6, verify_mh_checksum
from mvpn_lab.mip6.wire.messages import (
    AlternateCareOfAddress,
    BindingAcknowledgement,
    BindingAuthorizationData,
    BindingUpdate,
    HomeTest,
    HomeTestInit,
    MHDecodeError,
    NonceIndices,
    UnknownMessage,
    decode_mh,
    lifetime_units,
    strip_padding,
)

from ._helpers import ATTACKER, CN, COA1, COA2, HA, HOA, make_cn, make_ha, received
from ._helpers import network as make_network

FOREIGN_HOA = IPv6Address("fec0:106:9999::1")
UNKNOWN_HOA = IPv6Address("2001:db8:1::555")


def det(seed: int):
    import random

    return random.Random(seed).randbytes


def build(kind: str, seed: int = 1, **kw) -> attacks.Attack:
    """Each kind with the addresses an integration test would use."""
    kw.setdefault("random", det(seed))
    if kind == "bad-auth":
        return attacks.bad_auth(**{"coa": COA2, "dst": CN, "home_address": HOA, **kw})
    if kind == "old-seq":
        return attacks.old_seq(**{"coa": COA2, "dst": HA, "home_address": HOA, "seq": 10, **kw})
    if kind == "foreign-home":
        return attacks.foreign_home(**{"coa": COA2, "dst": HA, "home_address": FOREIGN_HOA, **kw})
    if kind == "unknown-mn":
        return attacks.unknown_mn(**{"coa": COA2, "dst": HA, "home_address": UNKNOWN_HOA, **kw})
    if kind == "truncated":
        return attacks.truncated(**{"coa": ATTACKER, "dst": HA, **kw})
    if kind == "garbage":
        return attacks.garbage(**{"coa": ATTACKER, "dst": HA, **kw})
    if kind == "hao-data":
        return attacks.hao_data(**{"coa": COA2, "dst": CN, "home_address": HOA, **kw})
    assert kind in ("replay", "replay-after-dereg")
    bu = BindingUpdate(seq=10, lifetime=25, ack=True, home=True, options=(AlternateCareOfAddress(COA1),))
    return attacks.replay(build_ipv6_packet(COA1, HA, SendMH(COA1, HA, bu, hao=HOA).wire(), hao=HOA), kind)


def as_received(attack: attacks.Attack, **overrides) -> ReceivedPacket:
    """What the daemon's socket would report (the kernel has not checked the checksum here: the
    node checks it again, so a wrong one would show up as bad_checksum)."""
    parsed = parse_ipv6(attack.packet)
    assert parsed.mh is not None
    kw = {"src": parsed.src, "dst": parsed.dst, "mh": parsed.mh, "hao": parsed.hao, "rh2": parsed.rh2}
    kw.update(overrides)
    return ReceivedPacket(**kw)


def kernel_mh_filter_passes(mh: bytes) -> bool:
    """What Linux's mip6_mh_filter lets through to raw sockets (our own restatement)."""
    minimum = {0: 0, 1: 1, 2: 1, 5: 1, 6: 1, 3: 2, 4: 2, 7: 2}
    if len(mh) < 8 or (mh[1] + 1) * 8 > len(mh):
        return False
    return mh[1] >= minimum.get(mh[2], 0) and mh[0] == 59


ALL = [*attacks.KINDS]


# ----------------------------------------------------------------- module and wire format


def test_module_and_cli_import_without_scapy():
    code = (
        "import sys; sys.modules['scapy'] = None\n"
        "import mvpn_lab.mip6.attacks\n"
        "from mvpn_lab.cli import main\n"
        "sys.exit(main(['mip6', 'attack', 'garbage', '--dst', '2001:db8:1::1', '--coa', "
        "'2001:db8:2::1', '--dry-run']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "mvpn-lab: error: scapy is needed to build and send attack packets "
        "(Debian: apt install python3-scapy)"
    ]


@pytest.mark.parametrize("kind", [k for k in ALL if k != "hao-data"])  # hao-data carries no MH
def test_checksum_verifies_with_the_kernel_rule(kind):
    attack = build(kind)
    parsed = parse_ipv6(attack.packet)
    assert verify_mh_checksum(parsed.pseudo_src, parsed.pseudo_dst, parsed.mh)
    assert attack.checksum_ok is True
    if parsed.hao is not None:  # the care-of address would be wrong (tcpdump's mistake)
        assert not verify_mh_checksum(parsed.src, parsed.pseudo_dst, parsed.mh)


@pytest.mark.parametrize("kind", ["bad-auth", "old-seq", "foreign-home", "unknown-mn"])
def test_scapy_checksum_with_hao_is_the_home_address_one(kind):
    """scapy computes these checksums itself: it must use the home address like the kernel."""
    parsed = parse_ipv6(build(kind).packet)
    assert parsed.hao is not None
    assert int.from_bytes(parsed.mh[4:6], "big") == mh_checksum(parsed.hao, parsed.dst, parsed.mh)


@pytest.mark.parametrize("kind", ALL)
def test_scapy_sends_the_bytes_unchanged(kind):
    attack = build(kind)
    assert bytes(attacks.scapy_packet(attack.packet)) == attack.packet


def test_bad_auth_packet():
    attack = build("bad-auth", seq=321, home_nonce_index=7, careof_nonce_index=9)
    parsed = parse_ipv6(attack.packet)
    assert (parsed.src, parsed.dst, parsed.hao, parsed.rh2) == (COA2, CN, HOA, None)
    bu = strip_padding(decode_mh(parsed.mh))
    assert isinstance(bu, BindingUpdate)
    assert (bu.seq, bu.lifetime, bu.ack, bu.home) == (321, 4, True, False)
    indices, bad = bu.options
    assert indices == NonceIndices(7, 9)
    assert isinstance(bad, BindingAuthorizationData) and len(bad.authenticator) == 12
    assert authenticated_mh_data(parsed.mh) is not None  # BAD last, no padding after it
    assert (attack.seq, attack.lifetime, attack.home_address) == (321, 4, HOA)
    # random sequence number and authenticator by default
    assert build("bad-auth", seed=2).packet != build("bad-auth", seed=3).packet


@pytest.mark.parametrize(
    ("kind", "hoa"), [("old-seq", HOA), ("foreign-home", FOREIGN_HOA), ("unknown-mn", UNKNOWN_HOA)]
)
def test_home_registration_packets(kind, hoa):
    attack = build(kind, seq=10)
    parsed = parse_ipv6(attack.packet)
    assert (parsed.src, parsed.dst, parsed.hao) == (COA2, HA, hoa)
    bu = strip_padding(decode_mh(parsed.mh))
    assert bu == BindingUpdate(
        seq=10, lifetime=100, ack=True, home=True, options=(AlternateCareOfAddress(COA2),)
    )


@pytest.mark.parametrize("variant", attacks.TRUNCATED_VARIANTS)
@pytest.mark.parametrize("hoa", [None, HOA])
def test_truncated_is_malformed(variant, hoa):
    attack = build("truncated", variant=variant, home_address=hoa)
    parsed = parse_ipv6(attack.packet)
    assert parsed.hao == hoa and parsed.src == ATTACKER
    with pytest.raises(MHDecodeError) as exc:
        decode_mh(parsed.mh)
    if variant == "option":
        assert len(parsed.mh) == 16 and parsed.mh[1] == 1
        assert "overruns" in exc.value.reason
        assert kernel_mh_filter_passes(parsed.mh)
        assert attack.expected == ("malformed",)
    else:
        assert len(parsed.mh) == (6 if variant == "short" else 32)
        assert not kernel_mh_filter_passes(parsed.mh)  # dropped before the daemon's socket
        assert attack.expected == () and "mip6_mh_filter" in attack.note


@pytest.mark.parametrize("seed", range(40))
def test_garbage_is_malformed_and_passes_the_kernel_filter(seed):
    attack = build("garbage", seed=seed)
    parsed = parse_ipv6(attack.packet)
    assert len(parsed.mh) == 64 and parsed.mh[0] == 59 and parsed.mh[2] in set(MHType)
    assert kernel_mh_filter_passes(parsed.mh)
    with pytest.raises(MHDecodeError):
        decode_mh(parsed.mh)
    assert attack.expected == ("malformed",)


@pytest.mark.parametrize("mh_type", range(8))
def test_garbage_of_each_type(mh_type):
    parsed = parse_ipv6(build("garbage", mh_type=mh_type, home_address=HOA).packet)
    assert parsed.mh[2] == mh_type and parsed.hao == HOA
    with pytest.raises(MHDecodeError):
        decode_mh(parsed.mh)


def test_garbage_of_an_unknown_type_is_not_malformed():
    attack = build("garbage", mh_type=200)
    assert isinstance(decode_mh(parse_ipv6(attack.packet).mh), UnknownMessage)
    assert attack.expected == ("unexpected_message",)


def test_replay_is_verbatim_and_reports_the_bu():
    bu = BindingUpdate(seq=77, lifetime=25, ack=True, home=True)
    packet = build_ipv6_packet(COA1, HA, SendMH(COA1, HA, bu, hao=HOA).wire(), hao=HOA)
    attack = attacks.replay(packet)
    assert attack.packet == packet
    assert (attack.src, attack.dst, attack.home_address, attack.seq, attack.lifetime) == (
        COA1,
        HA,
        HOA,
        77,
        25,
    )
    # anything IPv6 is replayed, e.g. an ESP-protected BU whose content nobody can read
    esp = bytes.fromhex("6000000000103240") + COA1.packed + HA.packed + bytes(16)
    opaque = attacks.replay(esp)
    assert opaque.seq is None and opaque.checksum_ok is None and opaque.packet == esp


def test_replay_after_dereg_expects_the_kernel_to_drop_an_esp_bu_first():
    esp = bytes.fromhex("6000000000103240") + COA1.packed + HA.packed + bytes(16)
    attack = attacks.replay(esp, "replay-after-dereg")
    assert attack.kind == "replay-after-dereg"
    assert attack.expected == (attacks.KERNEL_REPLAY_COUNTER, "sequence_out_of_window")
    clear = build("replay-after-dereg")  # a BU to the CN is not under ESP: the daemon's check
    assert clear.expected == ("sequence_out_of_window",) and clear.seq == 10


# ----------------------------------------------------------------- against the state machines


def cn_nonce_index(cn) -> int:
    """The CN's current nonce index, as anyone can learn it from a HoT (here: ask for one)."""
    assert cn.deliver(received(SendMH(ATTACKER, CN, HomeTestInit(cookie=b"x" * 8)))) == "accepted"
    (hot,) = [a.message for a in cn.sink.drain() if isinstance(a, SendMH)]
    assert isinstance(hot, HomeTest)
    return hot.nonce_index


def cn_snapshot(cn) -> str:
    return json.dumps(cn.node.cache.to_list(cn.clock.monotonic()))


def bound_cn():
    """A CN with a route-optimised binding for HOA at COA1 made by a real mobile node."""
    net = make_network(mn={"mode": "ro", "correspondents": (CN,)})
    net.mn.node.move_to(COA1)
    net.run(5)
    assert HOA in net.cn.node.cache
    net.cn.sink.drain()
    return net.cn


@pytest.mark.parametrize("with_binding", [False, True])
def test_bad_auth_with_unknown_indices_counts_expired_nonce_index(with_binding):
    cn = bound_cn() if with_binding else make_cn()
    current = cn_nonce_index(cn)
    before = cn_snapshot(cn)
    unknown = (current + 1000) & 0xFFFF
    attack = build("bad-auth", home_nonce_index=unknown, careof_nonce_index=unknown)
    assert cn.deliver(as_received(attack)) == "rejected:expired_nonce_index"
    assert cn.node.rejected.as_dict() == {"expired_nonce_index": 1}
    (ba_send,) = cn.sink.sent()
    assert isinstance(ba_send.message, BindingAcknowledgement) and ba_send.message.status == 138
    assert ba_send.dst == COA2 and ba_send.rh2 == HOA  # no Kbm: unsigned, to the forged CoA
    assert cn_snapshot(cn) == before
    assert not any(not isinstance(a, SendMH) for a in cn.sink.actions)


def test_bad_auth_default_indices_on_a_fresh_cn():
    cn = make_cn()  # no nonce handed out yet: every index is unknown
    assert cn.deliver(as_received(build("bad-auth"))) == "rejected:expired_nonce_index"
    assert len(cn.node.cache) == 0


@pytest.mark.parametrize("with_binding", [False, True])
def test_bad_auth_with_current_indices_counts_bad_authenticator(with_binding):
    cn = bound_cn() if with_binding else make_cn()
    index = cn_nonce_index(cn)
    before = cn_snapshot(cn)
    attack = build("bad-auth", home_nonce_index=index, careof_nonce_index=index)
    assert cn.deliver(as_received(attack)) == "rejected:bad_authenticator"
    assert cn.node.rejected.as_dict() == {"bad_authenticator": 1}
    assert cn.sink.actions == [] and cn_snapshot(cn) == before


def ha_snapshot(ha) -> str:
    return json.dumps(ha.node.cache.to_list(ha.clock.monotonic()))


def registered_ha(seq: int = 10, **kw):
    ha = make_ha(require_ipsec=False, **kw)
    bu = BindingUpdate(seq=seq, lifetime=lifetime_units(400), ack=True, home=True)
    assert ha.deliver(received(SendMH(COA1, HA, bu, hao=HOA))) == "accepted"
    ha.sink.drain()
    return ha


def only_ba(bench) -> BindingAcknowledgement:
    (send,) = bench.sink.sent()
    assert isinstance(send.message, BindingAcknowledgement)
    assert bench.sink.actions == [send]  # nothing but the BA: no data-plane change
    return send.message


@pytest.mark.parametrize("seq", [10, 9, 10 - 0x7FFF & 0xFFFF])
def test_old_seq_counts_sequence_out_of_window(seq):
    ha = registered_ha(10)
    before = ha_snapshot(ha)
    assert ha.deliver(as_received(build("old-seq", seq=seq))) == "rejected:sequence_out_of_window"
    ba = only_ba(ha)
    assert (ba.status, ba.seq) == (135, 10)
    assert ha.node.rejected.as_dict() == {"sequence_out_of_window": 1}
    assert ha_snapshot(ha) == before and ha.node.cache.get(HOA).careof_address == COA1


def test_old_seq_without_a_binding_is_not_rejected():
    """Only meaningful against a binding: on an empty cache it is an ordinary registration."""
    ha = make_ha(require_ipsec=False)
    assert ha.deliver(as_received(build("old-seq", seq=1))) == "accepted"


@pytest.mark.parametrize(
    ("kind", "status", "counter"),
    [("foreign-home", 132, "not_home_subnet"), ("unknown-mn", 129, "unknown_mobile_node")],
)
def test_foreign_and_unknown_home_addresses(kind, status, counter):
    ha = registered_ha(10)
    before = ha_snapshot(ha)
    assert ha.deliver(as_received(build(kind))) == f"rejected:{counter}"
    assert only_ba(ha).status == status
    assert ha.node.rejected.as_dict() == {counter: 1}
    assert ha_snapshot(ha) == before


def test_unknown_mn_with_any_allowed_needs_the_ha_address():
    ha = registered_ha(10, allowed_mobile_nodes=None)
    attack = attacks.unknown_mn(coa=COA2, dst=HA, home_address=HA)
    assert ha.deliver(as_received(attack)) == "rejected:unknown_mobile_node"


@pytest.mark.parametrize("kind", ["old-seq", "foreign-home", "unknown-mn"])
def test_ha_requiring_ipsec_counts_unprotected_first(kind):
    """With require_ipsec the forged BUs are not ESP: check 2 decides (or the kernel's policy)."""
    ha = make_ha(require_ipsec=True)
    assert ha.deliver(as_received(build(kind), esp=False)) == "rejected:unprotected"
    assert ha.sink.actions == []


@pytest.mark.parametrize("kind", ["truncated", "garbage"])
@pytest.mark.parametrize("target", ["ha", "cn"])
@pytest.mark.parametrize("hoa", [None, HOA])
def test_malformed_kinds_are_counted_malformed(kind, target, hoa):
    if target == "ha":
        bench, dst, before_of = registered_ha(10), HA, ha_snapshot
    else:
        bench, dst, before_of = bound_cn(), CN, cn_snapshot
    before = before_of(bench)
    attack = build(kind, dst=dst, home_address=hoa)
    assert bench.deliver(as_received(attack)) == "rejected:malformed"
    assert bench.node.rejected.as_dict() == {"malformed": 1}
    assert bench.sink.actions == [] and before_of(bench) == before


@pytest.mark.parametrize("variant", ["short", "hdrlen"])
def test_truncated_variants_the_kernel_drops_would_be_malformed_too(variant):
    ha = registered_ha(10)
    assert ha.deliver(as_received(build("truncated", variant=variant))) == "rejected:malformed"
    assert ha.sink.actions == []


def test_garbage_of_an_unknown_type_draws_a_binding_error():
    ha = registered_ha(10)
    before = ha_snapshot(ha)
    assert ha.deliver(as_received(build("garbage", mh_type=200))) == "rejected:unexpected_message"
    (send,) = ha.sink.sent()
    assert send.message.NAME == "BE" and send.message.status == 2 and send.dst == ATTACKER
    assert ha_snapshot(ha) == before


def test_replay_of_the_mobile_nodes_bu_counts_sequence_out_of_window():
    net = make_network(with_cn=False)  # the HA requires IPsec, the MN's BUs are ESP-marked
    net.mn.node.move_to(COA1)
    net.run(1)
    (bu_send,) = net.sent_by("mn", BindingUpdate)
    captured = build_ipv6_packet(bu_send.src, bu_send.dst, bu_send.wire(), hao=bu_send.hao)
    attack = attacks.replay(captured)
    assert attack.seq == bu_send.message.seq and attack.home_address == HOA
    ha = net.ha
    before = ha_snapshot(ha)
    ha.clock.advance(30)
    # a verbatim ESP replay decrypts again unless the SA has a replay window: the daemon marks
    # it protected, and the sequence number is what stops it
    assert ha.deliver(as_received(attack, esp=True)) == "rejected:sequence_out_of_window"
    ba = only_ba(ha)
    assert (ba.status, ba.seq) == (135, bu_send.message.seq)
    assert ha.node.rejected.as_dict() == {"sequence_out_of_window": 1}
    assert json.loads(ha_snapshot(ha))[0]["remaining"] == json.loads(before)[0]["remaining"] - 30


# ----------------------------------------------------------------- command line

BASE = ["mip6", "attack"]


def run_cli(capsys, *argv):
    try:
        code = main([*BASE, *argv])
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_dry_run_prints_one_json_line(capsys):
    code, out, err = run_cli(
        capsys,
        "old-seq",
        "--dst",
        str(HA),
        "--coa",
        str(COA2),
        "--home-address",
        str(HOA),
        "--seq",
        "10",
        "--dry-run",
    )
    assert code == 0 and err == ""
    (line,) = out.splitlines()
    record = json.loads(line)
    assert record["hex"] == build("old-seq").packet.hex()
    assert {k: v for k, v in record.items() if k != "hex"} == {
        "kind": "old-seq",
        "src": str(COA2),
        "dst": str(HA),
        "home_address": str(HOA),
        "seq": 10,
        "lifetime": 100,
        "count": 1,
        "iface": None,
        "sent": False,
        "length": 96,
        "checksum_ok": True,
        "expected": ["sequence_out_of_window"],
    }


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("bad-auth", ["--home-address", str(HOA), "--home-nonce-index", "5", "--seq", "3"]),
        ("foreign-home", ["--home-address", str(FOREIGN_HOA), "--lifetime", "0x10"]),
        ("unknown-mn", ["--home-address", str(UNKNOWN_HOA)]),
        ("truncated", ["--variant", "hdrlen"]),
        ("garbage", ["--mh-type", "3", "--home-address", str(HOA)]),
    ],
)
def test_cli_every_kind_dry_run(capsys, kind, extra):
    code, out, _ = run_cli(
        capsys, kind, "--dst", str(HA), "--src", str(COA2), "--seed", "5", *extra, "--dry-run"
    )
    assert code == 0
    record = json.loads(out)
    assert record["kind"] == kind and record["checksum_ok"] is True and record["sent"] is False
    # --seed makes the random parts reproducible
    again = json.loads(run_cli(capsys, kind, "--dst", str(HA), "--src", str(COA2), "--seed", "5", *extra)[1])
    assert again["hex"] == record["hex"]


def test_cli_replay_dry_run(capsys):
    packet = build("replay").packet
    code, out, _ = run_cli(capsys, "replay", "--packet-hex", packet.hex(" ", 4), "--count", "3", "--dry-run")
    record = json.loads(out)
    assert code == 0 and record["hex"] == packet.hex() and record["count"] == 3 and record["seq"] == 10
    code, _, err = run_cli(capsys, "replay", "--packet-hex", packet.hex(), "--dst", str(CN), "--dry-run")
    assert code == 2 and err == f"mvpn-lab: error: --dst: the packet is addressed to {HA}, not {CN}\n"


def test_cli_sends_count_copies(capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(attacks, "send_packet", lambda packet, **kw: calls.append((packet, kw)))
    code, out, _ = run_cli(
        capsys,
        "unknown-mn",
        "--dst",
        str(HA),
        "--coa",
        str(COA2),
        "--home-address",
        str(UNKNOWN_HOA),
        "--count",
        "4",
    )
    record = json.loads(out)
    assert code == 0 and record["sent"] is True and record["count"] == 4
    assert calls == [(bytes.fromhex(record["hex"]), {"count": 4, "iface": None})]


def test_send_packet_hands_scapy_the_exact_bytes(monkeypatch):
    import scapy.sendrecv

    sent = []
    monkeypatch.setattr(scapy.sendrecv, "send", lambda pkt, **kw: sent.append((bytes(pkt), kw)))
    attack = build("garbage")
    attacks.send_packet(attack.packet, count=2)
    assert sent == [(attack.packet, {"count": 2, "verbose": False})]


def test_send_packet_iface_errors():
    packet = build("garbage").packet
    with pytest.raises(LabError, match=r"^--iface: no such interface: 'nosuch0'$"):
        attacks.send_packet(packet, iface="nosuch0")
    with pytest.raises(LabError, match=r"^--iface: lo is not an Ethernet interface"):
        attacks.send_packet(packet, iface="lo")


HA_ARGS = ["--dst", str(HA), "--coa", str(COA2)]
OLD = ["old-seq", *HA_ARGS, "--home-address", str(HOA), "--seq", "1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["old-seq", *HA_ARGS, "--home-address", "x", "--seq", "1"],
            "--home-address: not an IPv6 address: 'x'",
        ),
        ([*OLD[:1], *OLD[3:], "--dst", "2001:db8::zz"], "--dst: not an IPv6 address: '2001:db8::zz'"),
        (["garbage", "--dst", str(HA), "--coa", "10.0.0.1"], "--coa: not an IPv6 address: '10.0.0.1'"),
        ([*OLD[:-1], "70000"], "--seq: not an integer 0..65535: '70000'"),
        ([*OLD[:-1], "ten"], "--seq: not an integer 0..65535: 'ten'"),
        ([*OLD, "--count", "0"], "--count: not an integer 1..1000000: '0'"),
        ([*OLD, "--lifetime", "-1"], "--lifetime: not an integer 0..65535: '-1'"),
        (
            ["bad-auth", *HA_ARGS, "--home-address", str(HOA), "--home-nonce-index", "65536"],
            "--home-nonce-index: not an integer 0..65535: '65536'",
        ),
        (["truncated", *HA_ARGS, "--variant", "long"], "--variant: not one of option, short, hdrlen: 'long'"),
        (["garbage", *HA_ARGS, "--mh-type", "256"], "--mh-type: not an integer 0..255: '256'"),
        (["old-seq", *HA_ARGS, "--home-address", str(HOA)], "--seq: required by old-seq"),
        (["unknown-mn", *HA_ARGS], "--home-address: required by unknown-mn"),
        (["garbage", *HA_ARGS, "--seq", "1"], "--seq: not used by garbage"),
        ([*OLD, "--packet-hex", "00"], "--packet-hex: not used by old-seq"),
        (["replay", "--packet-hex", "6g"], "--packet-hex: not hexadecimal"),
        (["replay", "--packet-hex", "60000000"], "--packet-hex: not an IPv6 packet: IPv6 header truncated"),
        (["replay", "--packet-hex", "00", "--coa", str(COA2)], "--coa: not used by replay"),
        (["spoof", *HA_ARGS], "KIND: unknown attack 'spoof' (one of bad-auth, old-seq, foreign-home, "),
    ],
)
def test_cli_bad_values_one_line_exit_2(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv, "--dry-run")
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mvpn-lab: error: {message}"), err


def test_cli_missing_option_argument_is_one_line(capsys):
    code, _, err = run_cli(capsys, "old-seq", "--seq")
    assert code == 2 and err == "mvpn-lab: error: argument --seq: expected one argument\n"
    code, _, err = run_cli(capsys, "garbage", "--coa", str(COA2), "--dry-run")
    assert code == 2 and err == "mvpn-lab: error: --dst: required by garbage\n"


def test_hao_data_is_a_udp_datagram_with_a_home_address_option():
    """A data packet, so only the kernel's xfrm report can tell the CN about it (issue 14 item 5)."""
    attack = build("hao-data")
    parsed = parse_ipv6(attack.packet)
    assert (parsed.src, parsed.dst, parsed.hao, parsed.mh) == (COA2, CN, HOA, None)
    assert parsed.note == "upper layer 17" and attack.checksum_ok is None
    assert attack.expected == ("hao_without_binding",)
