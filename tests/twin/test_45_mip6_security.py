"""The Mobile IPv6 daemons on the twin: bindings after a move and after returning home (route
optimisation, so both the home agent and the correspondent hold one), and forged or malformed
signalling sent with scapy from another namespace, rejected and counted without touching them.

The lab is as site.yml provisions it: MN-HA signalling under ESP (RFC 6275). An unprotected BU
for the MN's home address is dropped by the home agent's kernel (its xfrm input policy requires
ESP; /proc/net/xfrm_stat counts it); one for any other home address reaches the daemon, which
rejects it as unprotected.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest
from conftest import cli

HOA = "fec0:106:2700:0:20c:30ff:febb:f0b6"
HA = "fec0:106:2700::1"
CN = "fec0:106:2500::2"
FOREIGN = IPv6Network("fec0:106:1100::/64")
SPOOFED_COA = "fec0:106:1700::99"  # on the impaired link, where the attacker (impair) sits
BUNDLE = "/usr/local/lib/mvpn-lab/mn/mvpn-lab-mip6.pyz"
WPA = "/run/mvpn-lab/mn/wpa_supplicant"


def sh(host: str | None, command: str, timeout: float = 120) -> str:
    args = ["vlab", "ssh", *(["--host", host] if host else []), "--", command]
    proc = cli(*args, timeout=timeout)
    assert proc.returncode == 0, f"{command}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def _status_command(host: str) -> str:
    return f"python3 {BUNDLE} mip6 status --socket /run/mvpn-lab/{host}/mip6/mip6.sock"


def status(host: str) -> dict[str, Any]:
    return json.loads(sh(host, _status_command(host)))


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(2)


def binding(host: str) -> dict[str, Any] | None:
    return next((b for b in status(host)["binding_cache"] if b["home_address"] == HOA), None)


def attack(kind: str, *args: str) -> dict[str, Any]:
    out = sh("impair", f"python3 {BUNDLE} mip6 attack {kind} {' '.join(args)}")
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def route_optimised_mn(twin):
    """The MN's daemon in route optimisation with the CN, at home; restored afterwards.

    Both changes go through ``systemctl reload`` (the unit's ExecReload, ``mvpn-lab mip6 reload``),
    which returns once the daemon answers again: the same process, the next generation, the new
    file; the attacks below then meet a daemon that set up the kernel again after a reload."""
    conf = "/etc/mvpn-lab/mn/mip6.yml"
    before = status("mn")["daemon"]
    # a file the daemon cannot use: the reload fails in one line and the running daemon stays
    refused = sh(None, f"cp {conf} {conf}.orig && sed -i 's/^mode: bt$/mode: sideways/' {conf} && "
                 f"(systemctl reload mvpn-mip6@mn; echo reload-exit=$?); cp {conf}.orig {conf} && "
                 "journalctl -u mvpn-mip6@mn -n 5 --no-pager -o cat")  # fmt: skip
    # (systemctl reload runs mvpn-lab mip6 reload --config, which reads the file first and names
    # the field; a file it can read but the daemon cannot use is refused by the daemon itself)
    assert "reload-exit=1" in refused and "config field 'mode'" in refused, refused
    assert status("mn")["daemon"]["generation"] == before["generation"] and _mode("mn") == "bt"
    sh(None, f"cp {conf} {conf}.orig && sed -i 's/^mode: bt$/mode: ro/' {conf} && "
       f"printf 'correspondents: [\"{CN}\"]\\n' >> {conf} && systemctl reload mvpn-mip6@mn")  # fmt: skip
    sh("mn", f"wpa_cli -p {WPA} select_network 0")
    try:
        wait_for("the MN's daemon in ro", lambda: _mode("mn") == "ro")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{sh(None, 'journalctl -u mvpn-mip6@mn -n 40 --no-pager')}") from None
    after = status("mn")["daemon"]
    assert (after["pid"], after["generation"]) == (before["pid"], before["generation"] + 1), (before, after)
    wait_for("no binding at the home agent", lambda: binding("ha") is None)
    yield
    sh("mn", f"wpa_cli -p {WPA} select_network 0")
    sh(None, f"mv {conf}.orig {conf} && systemctl reload mvpn-mip6@mn")
    wait_for("the MN's daemon back in bt", lambda: _mode("mn") == "bt")
    assert status("mn")["daemon"]["pid"] == before["pid"]


def _mode(host: str) -> str | None:
    """The daemon's mode, or None while it does not answer on its control socket."""
    proc = cli("vlab", "ssh", "--host", host, "--", _status_command(host))
    return json.loads(proc.stdout).get("mode") if proc.returncode == 0 else None


def xfrm_stats(host: str) -> dict[str, int]:
    """The host kernel's xfrm counters (/proc/net/xfrm_stat)."""
    lines = sh(host, "cat /proc/net/xfrm_stat").splitlines()
    return {name: int(value) for name, value in (line.split() for line in lines if line.strip())}


def xfrm_drops(host: str) -> int:
    """Packets the host's kernel dropped for want of the ESP its input policies require."""
    stats = xfrm_stats(host)
    return sum(stats.get(k, 0) for k in ("XfrmInTmplMismatch", "XfrmInNoStates", "XfrmInPolBlock"))


# The first BU from the foreign network as each node's backbone interface receives it: at the HA
# behind a Destination Options header (the HAO) the ESP header (next header 50), at the CN the
# Mobility Header (135). tcpdump stops after one packet; the files stay for captured_bu().
BU_FILTERS = {"ha": f"dst host {HA} and ip6[6] == 60 and ip6[40] == 50",
              "cn": f"dst host {CN} and ip6[6] == 60 and ip6[40] == 135 and ip6[66] == 5"}  # fmt: skip


def start_bu_captures() -> None:
    # `vlab ssh --host H` runs one command in the namespace, without a shell: the shell's own
    # syntax (; & redirections) needs `ip netns exec H sh -c` from the VM
    for host, bpf in BU_FILTERS.items():
        pcap = f"/tmp/replay-{host}.pcap"
        capture = f"timeout 120 tcpdump -i eth0 -c 1 -U -w {pcap} 'src net {FOREIGN} and {bpf}'"
        sh(None, f"rm -f {pcap}; ip netns exec {host} sh -c {shlex.quote(f'({capture} >/dev/null 2>&1 &)')}")


def captured_bu(host: str) -> str:
    """The captured packet's IPv6 bytes as hex (an Ethernet capture: 24-byte file header, 16-byte
    record header, 14-byte Ethernet header); the namespaces share the VM's /tmp."""
    read = (
        "python3 -c \"import sys; d=open(sys.argv[1],'rb').read(); "
        "n=int.from_bytes(d[32:36],'little'); print(d[40+14:40+n].hex())\" "
        f"/tmp/replay-{host}.pcap"
    )

    def packet() -> str:
        proc = cli("vlab", "ssh", "--", read)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    return wait_for(f"the BU captured at the {host}", packet, timeout=60)


def test_bindings_follow_the_mn_and_forged_signalling_is_rejected(route_optimised_mn):
    assert "require_ipsec: true" in sh(None, "cat /etc/mvpn-lab/ha/mip6.yml"), (
        "site.yml provisions ESP signalling"
    )
    start_bu_captures()
    sh("mn", f"wpa_cli -p {WPA} select_network 1")

    def away() -> dict[str, Any] | None:
        b = binding("ha")
        return b if b and IPv6Address(b["careof_address"]) in FOREIGN else None

    ha_entry = wait_for("the home agent's binding", away)
    # the BU that made it, as the air carried it (ESP) at the HA, and the BU to the CN: replayed
    # below once the MN is home again
    captured = {"ha": captured_bu("ha"), "cn": captured_bu("cn")}
    cn_entry = wait_for("the correspondent's binding", lambda: (b := binding("cn")) and b)
    assert cn_entry["careof_address"] == ha_entry["careof_address"]
    assert ha_entry["home_registration"] and not cn_entry["home_registration"]

    ha_before, cn_before = status("ha")["rejected"], status("cn")["rejected"]
    drops_before = xfrm_drops("ha")
    sent = [
        attack("old-seq", "--dst", HA, "--coa", SPOOFED_COA, "--home-address", HOA,
               "--seq", str((ha_entry["seq"] - 5) % 65536)),
        attack("foreign-home", "--dst", HA, "--coa", SPOOFED_COA, "--home-address", "fec0:106:9999::1"),
        attack("unknown-mn", "--dst", HA, "--coa", SPOOFED_COA, "--home-address", "fec0:106:2700::99"),
        attack("truncated", "--dst", HA, "--coa", SPOOFED_COA),
        attack("garbage", "--dst", HA, "--coa", SPOOFED_COA),
        attack("bad-auth", "--dst", CN, "--coa", SPOOFED_COA, "--home-address", HOA),
        # a data packet (UDP) with a Home Address option the CN has no binding for: only the
        # kernel sees it, and reports it; the daemon answers with a Binding Error, status 1
        attack("hao-data", "--dst", CN, "--coa", SPOOFED_COA, "--home-address", "fec0:106:2700::99"),
    ]  # fmt: skip
    assert all(s["sent"] and (s["checksum_ok"] or s["kind"] == "hao-data") for s in sent), sent

    def grew(before: dict[str, int], now: dict[str, int], reasons: list[str]) -> int:
        return sum(now.get(r, 0) - before.get(r, 0) for r in reasons)

    def counted() -> bool:
        ha_now, cn_now = status("ha")["rejected"], status("cn")["rejected"]
        return (
            xfrm_drops("ha") - drops_before >= 1  # old-seq: the MN's home address, without ESP
            and grew(ha_before, ha_now, ["unprotected"]) >= 2  # foreign-home, unknown-mn
            and grew(ha_before, ha_now, ["malformed"]) >= 2
            and grew(cn_before, cn_now, ["expired_nonce_index", "bad_authenticator"]) >= 1
            and grew(cn_before, cn_now, ["hao_without_binding"]) >= 1  # hao-data, by the kernel's report
        )

    wait_for("the rejections to be counted", counted, timeout=30)
    # the bindings are untouched, the daemons alive
    after = binding("ha")
    assert after is not None and after["careof_address"] == ha_entry["careof_address"]
    assert after["seq"] == ha_entry["seq"] or after["updates"] > ha_entry["updates"]  # a refresh may come
    assert binding("cn")["careof_address"] == cn_entry["careof_address"]
    for host in ("mn", "ha", "cn"):
        assert sh(None, f"systemctl is-active mvpn-mip6@{host}").strip() == "active"

    # returning home removes both bindings
    sh("mn", f"wpa_cli -p {WPA} select_network 0")
    wait_for("no binding at the home agent", lambda: binding("ha") is None)
    wait_for("no binding at the correspondent", lambda: binding("cn") is None)
    assert status("mn")["location"] == "home"

    # Issue 14, items 1 and 2: the captured BUs replayed after the MN came home and de-registered.
    # At the HA the SA's anti-replay window drops the ESP packet in the kernel; at the CN the daemon
    # kept the de-registration's sequence number, so the BU meets 135. Neither binds anything.
    seq_errors, cn_before = xfrm_stats("ha").get("XfrmInStateSeqError", 0), status("cn")["rejected"]
    ha_rejected = status("ha")["rejected"]
    replayed = [attack("replay-after-dereg", "--packet-hex", captured[host]) for host in ("ha", "cn")]
    assert replayed[0]["expected"][0] == "kernel:XfrmInStateSeqError", replayed[0]
    assert replayed[1]["expected"] == ["sequence_out_of_window"] and replayed[1]["seq"] is not None, replayed[
        1
    ]

    def replays_counted() -> bool:
        return (
            xfrm_stats("ha").get("XfrmInStateSeqError", 0) > seq_errors
            and grew(cn_before, status("cn")["rejected"], ["sequence_out_of_window"]) >= 1
        )

    wait_for("the replays to be counted", replays_counted, timeout=30)
    time.sleep(2)
    assert binding("ha") is None and binding("cn") is None
    assert status("ha")["rejected"] == ha_rejected  # the kernel dropped it: the daemon saw nothing
    kept = {e["home_address"]: e["seq"] for e in status("ha")["sequence_numbers_kept"]}
    assert HOA in kept  # and had it come through (window 0), the HA would answer 135
