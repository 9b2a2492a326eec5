"""The correspondent node's driver: nothing beyond the shared loop (no tunnels, no ESP with the
mobile node, no Neighbour Discovery of its own)."""

from __future__ import annotations

from typing import Any

from mvpn_lab.mip6.core.cn import CorrespondentNode
from mvpn_lab.mip6.core.config import CNConfig
from mvpn_lab.mip6.daemon.kernel.cn import CNKernel
from mvpn_lab.mip6.daemon.roles.base import NodeArgs, RoleDriver, Services


class CorrespondentDriver(RoleDriver):
    node: CorrespondentNode
    kernel: CNKernel

    def __init__(self, cfg: CNConfig, loop: Services, args: NodeArgs) -> None:
        self.cfg = cfg
        self.node = CorrespondentNode(
            cfg, clock=args.clock, sink=args.sink, logger=args.logger, random=args.random
        )
        self.kernel = CNKernel(cfg, loop.io.runner, loop.events)

    @staticmethod
    def open_io(cfg: CNConfig, opened: list[Any]) -> dict[str, Any]:
        return {}
