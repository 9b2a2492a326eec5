"""Bytes on the wire: Mobility Header messages and options, IPv6 headers, captures (no state, no I/O beyond files)."""
