"""A fake tcpdump for the capture tests, installed as ``tcpdump`` first on PATH (see ``install``).

It is a real program: it parses ``-i``, ``-w`` and ``-s``, records its arguments (JSON, one line
per run, in ``$FAKE_TCPDUMP_ARGS``), writes a valid pcap with one small Ethernet frame every
20 ms, prints ``tcpdump: listening on IFACE, link-type EN10MB ...`` on stderr when it is ready and,
on SIGINT, the counts (``N packets captured`` / ``received by filter`` / ``dropped by kernel``)
before it exits, as tcpdump does. ``$FAKE_TCPDUMP_MODE`` changes its behaviour:

* ``mute``: never says it is listening;
* ``deaf``: ignores SIGINT (only SIGKILL ends it);
* ``short``: exits on its own 0.2 s after it is ready;
* interface ``nosuch``: fails at once like tcpdump on a missing interface.
"""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPT = r"""
import json, os, signal, struct, sys, time

args = sys.argv[1:]
if os.environ.get("FAKE_TCPDUMP_ARGS"):
    with open(os.environ["FAKE_TCPDUMP_ARGS"], "a") as fh:
        fh.write(json.dumps(args) + "\n")
iface = args[args.index("-i") + 1]
path = args[args.index("-w") + 1]
snaplen = int(args[args.index("-s") + 1]) or 262144
mode = os.environ.get("FAKE_TCPDUMP_MODE", "")
if iface == "nosuch":
    sys.stderr.write("tcpdump: nosuch: No such device exists\n(SIOCGIFHWADDR: No such device)\n")
    sys.exit(1)

out = open(path, "wb")
out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))
out.flush()
count = 0


def counts(signum, frame):
    sys.stderr.write("%d packets captured\n%d packets received by filter\n0 packets dropped by kernel\n"
                     % (count, count + 1))
    sys.stderr.flush()
    out.close()
    sys.exit(0)


signal.signal(signal.SIGINT, signal.SIG_IGN if mode == "deaf" else counts)
if mode != "mute":
    sys.stderr.write("tcpdump: listening on %s, link-type EN10MB (Ethernet), snapshot length %d bytes\n"
                     % (iface, snaplen))
    sys.stderr.flush()
start = time.time()
while True:
    frame = bytes.fromhex("333300000001" "020000000200" "86dd") + bytes(46)
    now = time.time()
    out.write(struct.pack("<IIII", int(now), int((now % 1) * 1e6), len(frame), len(frame)) + frame)
    out.flush()
    count += 1
    if mode == "short" and now - start > 0.2:
        out.close()
        sys.exit(0)
    time.sleep(0.02)
"""


def install(folder: Path) -> Path:
    """Write the fake as ``folder/tcpdump`` (executable) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tcpdump"
    path.write_text(f"#!{sys.executable}\n" + SCRIPT)
    path.chmod(0o755)
    return path
