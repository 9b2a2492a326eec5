"""The daemon around the core: event loop, sockets, netlink, control socket, event log, and one
role driver and one kernel adapter per role. May import mvpn_lab.mip6.core and mvpn_lab.mip6.wire."""
