"""Bytes on the wire: Mobility Header messages and options, constants, IPv6 headers, captures.

No state and no I/O beyond reading files; imports nothing else of mvpn_lab.mip6."""
