"""mvpn-lab: a Mobile VPN (Mobile IPv6 + IPsec) lab you can rebuild, rerun and trust."""

__version__ = "0.1.0"
