"""The correspondent node's driver: beyond the shared loop, the kernel's reports of data packets
with a Home Address option and no binding (:mod:`~mvpn_lab.mip6.daemon.xfrmreport`), answered
with a Binding Error by the core. No tunnels, no ESP with the mobile node, no Neighbour Discovery
of its own."""

from __future__ import annotations

from typing import Any

from mvpn_lab.mip6.core.cn import CorrespondentNode
from mvpn_lab.mip6.core.config import CNConfig
from mvpn_lab.mip6.daemon.kernel.cn import CNKernel
from mvpn_lab.mip6.daemon.roles.base import NodeArgs, Reader, RoleDriver, Services
from mvpn_lab.mip6.daemon.xfrmreport import XfrmReports


class CorrespondentDriver(RoleDriver):
    node: CorrespondentNode
    kernel: CNKernel

    def __init__(self, cfg: CNConfig, loop: Services, args: NodeArgs) -> None:
        self.cfg = cfg
        self.loop = loop
        self.events = loop.events
        self.node = CorrespondentNode(
            cfg, clock=args.clock, sink=args.sink, logger=args.logger, random=args.random
        )
        self.kernel = CNKernel(cfg, loop.io.runner, loop.events)

    @staticmethod
    def open_io(cfg: CNConfig, opened: list[Any]) -> dict[str, Any]:
        if not cfg.send_binding_errors:
            return {}
        reports = XfrmReports.open()
        opened.append(reports)
        return {"xfrm_reports": reports}

    def readers(self) -> list[Reader]:
        return [(self.loop.io.xfrm_reports, self.on_reports_readable)]

    def on_reports_readable(self) -> None:
        try:
            reports = self.loop.io.xfrm_reports.read()
        except OSError as exc:
            self.events.error("xfrm_report_failed", f"xfrm report socket: {exc.strerror or exc}")
            return
        for report in reports:
            result = self.node.on_data_with_hao(report.src, report.home_address, report.dst)
            self.events.info("data_with_hao", src=report.src, home_address=report.home_address, result=result)
        self.loop.drain()
