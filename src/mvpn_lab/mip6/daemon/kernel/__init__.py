"""Kernel adapters: the core's data-plane actions as iproute2 commands, one adapter per role over
shared tunnel and xfrm helpers."""
