"""Bad input to the xfrm modules on the twin's kernel: a clear one-line error naming the parameter,
and the host's SAs and policies exactly as before (compared by a digest taken on the host, so no key
leaves it).

The digest covers the ESP SAs and the main-type policies, which the modules and the ipsec role own.
The MN's Mobile IPv6 daemon keeps adding, updating and dropping its own ``hao``/``route2`` states
and ``ptype sub`` policies while it runs (binding refreshes, a state dropped for a send), and an
updated policy moves in the kernel's list: a digest over those failed CI once with nothing wrong
in the module."""

from __future__ import annotations

import json
import os

import pytest
from conftest import BIN, ROOT, cli

MN = "fec0:106:2700:0:20c:30ff:febb:f0b6"
HA = "fec0:106:2700::1"
DIGEST = "sh -c 'ip -6 xfrm state list proto esp; ip -6 xfrm policy list ptype main' | sha256sum"


def _digest() -> str:
    proc = cli("vlab", "ssh", "--host", "mn", "--", DIGEST)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()[0]


def _sa_count() -> int:
    count = "ip -6 xfrm state list proto esp | grep -c '^src' || true"
    proc = cli("vlab", "ssh", "--host", "mn", "--", count)
    return int(proc.stdout.strip() or 0)


def _module(module: str, args: dict[str, object]) -> tuple[int, bool, dict[str, object]]:
    import subprocess

    proc = subprocess.run(
        [str(BIN / "ansible"), "mn", "-m", f"mvpn.lab.{module}", "-a", json.dumps(args)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
             "ANSIBLE_CALLBACK_RESULT_FORMAT": "json", "ANSIBLE_DEPRECATION_WARNINGS": "0"},
    )  # fmt: skip
    # minimal callback: "mn | FAILED! => {...}" (after ansible-core's own error lines, if any)
    head, sep, body = proc.stdout[proc.stdout.rfind("mn | ") :].partition(" => ")
    assert sep and head.startswith("mn | "), proc.stdout + proc.stderr
    return proc.returncode, "FAILED" in head, json.loads(body)


# An SA the lab never uses, towards the MN's home address; the clash is with the lab's ha_to_mn
# SA (SPI 0x1006 from the HA to the home address), which site.yml installs for signalling.
BASE = {"src": HA, "dst": MN, "proto": "esp", "spi": "0x00002001", "mode": "transport", "state": "present"}
CBC = {"algorithm": "aes-cbc-hmac-sha1", "auth_key": "11" * 20}
CN = "fec0:106:2500::2"
CASES = {
    "enc_key": ({**BASE, **CBC, "enc_key": "00" * 15}, "enc_key"),
    "aead_key": ({**BASE, "algorithm": "aes-gcm", "aead_key": "22" * 19}, "aead_key"),
    "algorithm": ({**BASE, "algorithm": "des-md5", "enc_key": "00" * 16, "auth_key": "11" * 20}, "algorithm"),
    "spi clash": (
        {**BASE, "src": CN, "spi": "0x00001006", "algorithm": "aes-gcm", "aead_key": "33" * 20},
        "spi",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_in_one_line_and_leaves_the_sas(twin, case):
    args, field = CASES[case]
    before, count = _digest(), _sa_count()
    assert count >= 2, "the lab's SAs are expected on the MN (site.yml installs the signalling SAs)"
    code, failed, result = _module("xfrm_state", args)
    if not failed and args["spi"] == BASE["spi"]:  # never leave a stray SA behind (the kernel
        # deletes by dst and SPI, so only the SPI no lab SA uses is cleaned up this way)
        stray = f"dst {MN} proto esp spi {BASE['spi']}"
        cli("vlab", "ssh", "--host", "mn", "--", f"ip -6 xfrm state delete {stray}")
    assert code != 0 and failed, result
    msg = str(result["msg"])
    assert "\n" not in msg and field in msg.split(":")[0], msg
    for value in ("00" * 15, "22" * 19, "33" * 20, "11" * 20):
        assert value not in json.dumps(result), "a key shows in the result"
    assert _digest() == before and _sa_count() == count
