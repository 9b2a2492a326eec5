"""One driver per role: what the mobile node, home agent and correspondent add to the shared event
loop (their state machine, kernel adapter, sockets, inputs and the actions only they carry out)."""
