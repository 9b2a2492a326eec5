"""Kernel adapters: the core's data-plane actions as iproute2 commands, one adapter per role over
shared tunnel and xfrm helpers."""

from __future__ import annotations

from collections.abc import Callable

from mvpn_lab.mip6.core.config import NodeConfig
from mvpn_lab.mip6.daemon.events import EventLog
from mvpn_lab.mip6.daemon.kernel.base import CommandRunner, KernelAdapter
from mvpn_lab.mip6.daemon.kernel.cn import CNKernel
from mvpn_lab.mip6.daemon.kernel.ha import HAKernel
from mvpn_lab.mip6.daemon.kernel.mn import MNKernel

#: role -> its kernel adapter
ADAPTERS: dict[str, Callable[..., KernelAdapter]] = {"mn": MNKernel, "ha": HAKernel, "cn": CNKernel}


def kernel_adapter(cfg: NodeConfig, runner: CommandRunner, events: EventLog) -> KernelAdapter:
    """The kernel adapter of ``cfg``'s role."""
    return ADAPTERS[cfg.role](cfg, runner, events)
