"""The correspondent node's kernel adapter: no tunnels; Binding Updates with a Home Address option
from anyone, and HoT never with a type 2 routing header. Route optimisation states come from base."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address

from mvpn_lab.mip6.core.config import CNConfig
from mvpn_lab.mip6.daemon.kernel.base import (
    ANY_NET,
    PRIO_BYPASS,
    KernelAdapter,
    PolicyKey,
    accept_binding_updates,
)
from mvpn_lab.mip6.wire.constants import MHType


@dataclass
class CNKernel(KernelAdapter):
    cfg: CNConfig

    @property
    def address(self) -> IPv6Address:
        return self.cfg.address

    def setup_role(self) -> None:
        accept_binding_updates(self)
        # HoT goes to the home address through the home agent, never with a routing header.
        self.put_policy(PolicyKey(ANY_NET, ANY_NET, "out", 135, int(MHType.HOT)), PRIO_BYPASS, (), "static")
