"""The protocol core: the state machines of the mobile node, home agent and correspondent, free of
sockets and kernel calls. Inputs are method calls; every decision leaves as an action (actions.py).
Imports only mvpn_lab.mip6.wire."""
