"""The project's Mobile IPv6 daemon (RFC 6275), in three layers (see docs/mip6.md, Layers):

* :mod:`.wire` - bytes on the wire: Mobility Header messages and options, constants, IPv6
  headers (checksum, Home Address option, type 2 routing header, header chain), captures;
* :mod:`.core` - the protocol core, free of sockets and kernel calls: the state machines of the
  mobile node, home agent and correspondent, movement detection, bindings, return routability,
  the config model, and the actions they emit; imports only :mod:`.wire`;
* :mod:`.daemon` - ``mvpn-lab mip6 run`` around the core: the event loop, sockets, netlink,
  control socket, event log, handover buffer, one role driver and one kernel adapter per role.

Beside them: :mod:`.cli` (``mvpn-lab mip6``), :mod:`.attacks` (crafted packets for the security
tests, wire + counters) and :mod:`.bundle` (the zip application for lab hosts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mvpn_lab.mip6.wire.messages import MHDecodeError, decode_mh, encode_mh

if TYPE_CHECKING:
    from mvpn_lab.mip6.core.config import NodeConfig
    from mvpn_lab.mip6.core.node import Node

__all__ = ["MHDecodeError", "decode_mh", "encode_mh", "make_node"]


def make_node(config: NodeConfig, **kwargs: Any) -> Node:
    """The state machine for a loaded config; see :func:`mvpn_lab.mip6.core.nodes.make_node`."""
    from mvpn_lab.mip6.core.nodes import make_node as make

    return make(config, **kwargs)
