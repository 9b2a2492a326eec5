"""The project's Mobile IPv6 daemon (RFC 6275): a protocol core free of sockets and kernel calls,
and the daemon around it.

Modules:

* :mod:`.wire.messages` - Mobility Header wire format (all message types and mobility options);
* :mod:`.wire.ipv6` - checksum, Home Address option, type 2 routing header, IPv6 header chain walk;
* :mod:`.wire.pcap` - defensive capture reader and a writer;
* :mod:`.rr` - return routability cryptography and the correspondent's nonce table;
* :mod:`.binding` - binding cache, binding update list, sequence arithmetic;
* :mod:`.node`, :mod:`.mn`, :mod:`.ha`, :mod:`.cn` - state machines;
* :mod:`.movement` - movement detection decisions of the mobile node;
* :mod:`.actions` - what the state machines ask the kernel adapter to do;
* :mod:`.clock`, :mod:`.counters`, :mod:`.log`, :mod:`.config`, :mod:`.cli`;
* the daemon around the core (``mvpn-lab mip6 run``): :mod:`.daemon`, :mod:`.kernel`,
  :mod:`.mhsocket`, :mod:`.ndisc`, :mod:`.netlink`, :mod:`.tcprecovery`, :mod:`.control`,
  :mod:`.events`.

See docs/mip6.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mvpn_lab.mip6.wire.messages import MHDecodeError, decode_mh, encode_mh

if TYPE_CHECKING:
    from mvpn_lab.mip6.config import NodeConfig
    from mvpn_lab.mip6.node import Node

__all__ = ["MHDecodeError", "decode_mh", "encode_mh", "make_node"]


def make_node(config: NodeConfig, **kwargs: Any) -> Node:
    """The state machine for a loaded config (``MNConfig``, ``HAConfig`` or ``CNConfig``).

    ``kwargs`` are those of :class:`~mvpn_lab.mip6.node.Node`: ``clock``, ``sink``, ``logger``,
    ``random``, ``name``.
    """
    from mvpn_lab.mip6.cn import CorrespondentNode
    from mvpn_lab.mip6.config import CNConfig, HAConfig, MNConfig
    from mvpn_lab.mip6.ha import HomeAgent
    from mvpn_lab.mip6.mn import MobileNode

    if isinstance(config, MNConfig):
        return MobileNode(config, **kwargs)
    if isinstance(config, HAConfig):
        return HomeAgent(config, **kwargs)
    if isinstance(config, CNConfig):
        return CorrespondentNode(config, **kwargs)
    raise TypeError(f"not a node config: {type(config).__name__}")
