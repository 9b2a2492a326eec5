"""The analyser's view of the capture reader it shares with the daemon.

The reader itself is :mod:`mvpn_lab.mip6.wire.pcap` (one pcap/pcapng reader for ``mip6 decode`` and
the analyser, issue 15); this module only names what the analyser uses, so the analyser imports
the wire code in one place.
"""

from __future__ import annotations

from mvpn_lab.mip6.wire.pcap import (
    LINKTYPE_NAMES,
    CaptureError,
    CaptureReader,
    Packet,
    read_all,
)

__all__ = ["LINKTYPE_NAMES", "CaptureError", "CaptureReader", "Packet", "read_all"]
