"""The state machine of each role, picked once by the config's ``role``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mvpn_lab.mip6.core.cn import CorrespondentNode
from mvpn_lab.mip6.core.config import NodeConfig
from mvpn_lab.mip6.core.ha import HomeAgent
from mvpn_lab.mip6.core.mn import MobileNode
from mvpn_lab.mip6.core.node import Node

#: role -> state machine class
NODE_CLASSES: dict[str, Callable[..., Node]] = {"mn": MobileNode, "ha": HomeAgent, "cn": CorrespondentNode}


def make_node(config: NodeConfig, **kwargs: Any) -> Node:
    """The state machine for a loaded config (``MNConfig``, ``HAConfig`` or ``CNConfig``).

    ``kwargs`` are those of :class:`~mvpn_lab.mip6.core.node.Node`: ``clock``, ``sink``, ``logger``,
    ``random``, ``name``.
    """
    cls = NODE_CLASSES.get(getattr(config, "role", None) or "")
    if cls is None:
        raise TypeError(f"not a node config: {type(config).__name__}")
    return cls(config, **kwargs)
