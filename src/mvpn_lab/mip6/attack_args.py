"""The command line of ``mvpn-lab mip6 attack``: its kinds, options and help.

Apart from :mod:`mvpn_lab.mip6.attacks` (the packets, scapy and the wire code) so that building
the CLI's parser imports none of that: every ``mvpn-lab mip6`` command (``check-config`` in the
role's template validation, ``reload`` in the unit's ExecReload) starts that much sooner, about
0.6 s under the twin's emulated CPU.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

KINDS = (
    "bad-auth",
    "old-seq",
    "foreign-home",
    "unknown-mn",
    "truncated",
    "garbage",
    "replay",
    "replay-after-dereg",
    "hao-data",
)

EPILOG = """\
kinds (expected daemon counter):
  bad-auth      BU to a CN, Nonce Indices + random authenticator
                (expired_nonce_index; bad_authenticator with the CN's current indices)
  old-seq       BU to the HA with a sequence number not newer than the cached one
                (sequence_out_of_window, BA 135)
  foreign-home  BU to the HA for a home address outside its prefix (not_home_subnet, BA 132)
  unknown-mn    BU to the HA for a home address that is not an allowed mobile node
                (unknown_mobile_node, BA 129)
  truncated     BU cut inside its Alternate CoA option (malformed); --variant short|hdrlen:
                6 octets / Header Len past the end, dropped by a Mobile IPv6 kernel
  garbage       64 random octets, first option overruns the message (malformed)
  replay        --packet-hex sent verbatim (sequence_out_of_window)

examples:
  mvpn-lab mip6 attack old-seq --dst 2001:db8:1::1 --coa 2001:db8:2::100 \\
      --home-address 2001:db8:1::100 --seq 7 --dry-run
  mvpn-lab mip6 attack bad-auth --dst 2001:db8:3::10 --coa 2001:db8:2::100 \\
      --home-address 2001:db8:1::100 --home-nonce-index 12 --careof-nonce-index 12
  mvpn-lab mip6 attack garbage --dst 2001:db8:1::1 --coa 2001:db8:66::6 --count 5
  mvpn-lab mip6 attack replay --packet-hex 6000000000383c40... --count 1
"""

# Options of each kind beyond the common ones (--dst, --count, --iface, --dry-run, --seed).
KIND_OPTIONS: dict[str, dict[str, bool]] = {  # option -> required
    "bad-auth": {
        "coa": True,
        "home_address": True,
        "seq": False,
        "lifetime": False,
        "home_nonce_index": False,
        "careof_nonce_index": False,
    },
    "old-seq": {"coa": True, "home_address": True, "seq": True, "lifetime": False},
    "foreign-home": {"coa": True, "home_address": True, "seq": False, "lifetime": False},
    "unknown-mn": {"coa": True, "home_address": True, "seq": False, "lifetime": False},
    "truncated": {"coa": True, "home_address": False, "seq": False, "lifetime": False, "variant": False},
    "garbage": {"coa": True, "home_address": False, "mh_type": False},
    "hao-data": {"coa": True, "home_address": True},
    "replay": {"packet_hex": True},
    "replay-after-dereg": {"packet_hex": True},
}
ALL_KIND_OPTIONS = sorted({name for opts in KIND_OPTIONS.values() for name in opts})


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``mvpn-lab mip6 attack``. Values are checked by :func:`cmd_attack` so that every
    mistake is one line naming the option (argparse's own errors are made one line too)."""

    def one_line_error(message: str) -> NoReturn:
        print(f"mvpn-lab: error: {message}", file=sys.stderr)
        sys.exit(2)

    parser.error = one_line_error  # type: ignore[method-assign]
    parser.add_argument("kind", metavar="KIND", help="one of: " + ", ".join(KINDS))
    parser.add_argument("--dst", metavar="ADDR", help="destination (HA or CN); required except for replay")
    parser.add_argument(
        "--coa", "--src", dest="coa", metavar="ADDR", help="source address, the (forged) care-of address"
    )
    parser.add_argument("--home-address", metavar="ADDR", help="home address (Home Address option)")
    parser.add_argument("--seq", metavar="N", help="BU sequence number 0..65535 (default random)")
    parser.add_argument("--lifetime", metavar="UNITS", help="BU lifetime in units of 4 s (0..65535)")
    parser.add_argument("--home-nonce-index", metavar="N", help="bad-auth: home nonce index (default 0)")
    parser.add_argument("--careof-nonce-index", metavar="N", help="bad-auth: care-of nonce index (default 0)")
    parser.add_argument("--variant", metavar="V", help="truncated: option (default), short or hdrlen")
    parser.add_argument("--mh-type", metavar="N", help="garbage: MH type 0..255 (default random 0..7)")
    parser.add_argument("--packet-hex", metavar="HEX", help="replay: the IPv6 packet as hex")
    parser.add_argument("--count", metavar="N", default="1", help="copies to send (default 1)")
    parser.add_argument("--iface", metavar="IF", help="send with sendp() on this Ethernet interface")
    parser.add_argument("--seed", metavar="N", help="seed the random parts (reproducible packets)")
    parser.add_argument("--dry-run", action="store_true", help="build and print the packet, send nothing")
