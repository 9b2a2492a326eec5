"""Movement detection on the mobile node, as pure decision logic.

The adapter reports link, Router Advertisement and address events; the detector answers with
actions for the adapter (:class:`SendRouterSolicitation`, :class:`ConfigureAddress`,
:class:`RemoveAddress`) and with decisions for the mobile node state machine
(:class:`CareOfAddressReady`, :class:`CareOfAddressLost`, :class:`AtHome`).

Modes:

* ``ra``: the classic behaviour. Link-up changes nothing; the node waits for an unsolicited RA,
  the kernel configures the address, and the care-of address is used once DAD is over (or at
  once when ``optimistic_dad`` is on and the kernel reports it optimistic).
* ``l2``: link-up triggers a Router Solicitation at once. With ``prefix_cache``, the prefix
  advertised earlier on the same network (``network`` is the SSID/BSSID or any stable name the
  adapter chooses) is used to configure the care-of address right away, optimistically, so the
  Binding Update can leave before the first RA arrives. The router that sent that RA is
  remembered too (:class:`UseCachedRouter`), so the update has a default route at once. An RA
  that does not list the predicted prefix withdraws the prediction. The cache can be saved and
  loaded (:meth:`MovementDetector.export_cache`, :meth:`MovementDetector.import_cache`) so it
  outlives a daemon restart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from mvpn_lab.mip6.core.actions import (
    Action,
    ConfigureAddress,
    RemoveAddress,
    SendRouterSolicitation,
    UseCachedRouter,
)
from mvpn_lab.mip6.core.config import prefix_cache_applies
from mvpn_lab.vocabulary import MOVEMENT_DETECTIONS, MovementDetection

ADDRESS_STATES = ("tentative", "optimistic", "preferred", "deprecated", "dadfailed", "removed")


@dataclass(frozen=True)
class CareOfAddressReady:
    iface: str
    address: IPv6Address


@dataclass(frozen=True)
class CareOfAddressLost:
    iface: str
    address: IPv6Address


@dataclass(frozen=True)
class AtHome:
    iface: str


Decision = CareOfAddressReady | CareOfAddressLost | AtHome
Output = Action | Decision


@dataclass(frozen=True)
class CachedNetwork:
    """What an earlier RA of one network said: its /64 prefix and the router's link-local address."""

    prefix: IPv6Network
    router: IPv6Address | None = None


def address_from(prefix: IPv6Network, iid: int) -> IPv6Address:
    """Prefix (up to /64) plus a 64-bit interface identifier."""
    return IPv6Address(int(prefix.network_address) | (iid & ((1 << 64) - 1)))


@dataclass
class LinkState:
    up: bool = False
    network: str | None = None
    iid: int | None = None
    prefixes: set[IPv6Network] = field(default_factory=set)
    addresses: dict[IPv6Address, str] = field(default_factory=dict)
    predicted: IPv6Address | None = None
    ready: IPv6Address | None = None
    home: bool = False


class MovementDetector:
    def __init__(
        self,
        *,
        mode: MovementDetection,
        home_prefix: IPv6Network,
        optimistic_dad: bool = False,
        prefix_cache: bool = False,
    ) -> None:
        if mode not in MOVEMENT_DETECTIONS:  # callers outside the type checker
            raise ValueError(f"movement detection mode must be one of {', '.join(MOVEMENT_DETECTIONS)}")
        self.mode: MovementDetection = mode
        self.home_prefix = home_prefix
        self.optimistic_dad = optimistic_dad
        if prefix_cache and not prefix_cache_applies(mode):
            raise ValueError(f"the prefix cache needs movement detection l2, not {mode}")
        self.prefix_cache = prefix_cache
        self.links: dict[str, LinkState] = {}
        self.cache: dict[str, CachedNetwork] = {}

    def _link(self, iface: str) -> LinkState:
        return self.links.setdefault(iface, LinkState())

    # ------------------------------------------------------------------ events

    def on_link_up(self, iface: str, *, network: str | None = None, iid: int | None = None) -> list[Output]:
        old = self.links.get(iface)
        out: list[Output] = []
        if old is not None and old.ready is not None:
            out.append(CareOfAddressLost(iface, old.ready))
        # what the next Binding Update needs comes first (back home: the deregistration itself;
        # on a known network: its router and predicted address), then the clean-up and the RS
        later: list[Output] = []
        if old is not None and old.predicted is not None and old.network != network:
            # the address this detector configured (permanent, unlike SLAAC's) goes with its network
            later.append(RemoveAddress(iface, old.predicted))
        link = self.links[iface] = LinkState(
            up=True, network=network, iid=iid if iid is not None else (old.iid if old is not None else None)
        )
        if self.mode == "ra":
            return out + later
        later.append(SendRouterSolicitation(iface))
        if self.prefix_cache and network is not None and network in self.cache and link.iid is not None:
            cached = self.cache[network]
            prefix = cached.prefix
            if self.home_network(network):
                link.home = True
                out.append(AtHome(iface))
                return out + later
            predicted = address_from(prefix, link.iid)
            link.prefixes.add(prefix)
            link.predicted = predicted
            if cached.router is not None:
                out.append(UseCachedRouter(iface, cached.router))
            out.append(ConfigureAddress(iface, predicted, prefix.prefixlen, self.optimistic_dad))
        return out + later

    def home_network(self, network: str | None) -> bool:
        """The prefix cache knows ``network`` (an SSID) as the home network."""
        cached = self.cache.get(network) if self.prefix_cache and network is not None else None
        return cached is not None and cached.prefix == self.home_prefix

    def home_router(self, network: str | None) -> IPv6Address | None:
        """The router the prefix cache remembers for ``network`` when that is the home network."""
        return self.cache[network].router if network is not None and self.home_network(network) else None

    def on_link_down(self, iface: str) -> list[Output]:
        link = self._link(iface)
        out: list[Output] = []
        if link.ready is not None:
            out.append(CareOfAddressLost(iface, link.ready))
        # the network and its predicted address are kept: the next link-up removes the address
        # if the link comes up on another network
        self.links[iface] = LinkState(up=False, iid=link.iid, network=link.network, predicted=link.predicted)
        return out

    def on_router_advertisement(
        self,
        iface: str,
        prefixes: Iterable[IPv6Network | str],
        *,
        network: str | None = None,
        iid: int | None = None,
        router: IPv6Address | None = None,
    ) -> list[Output]:
        """An RA listing on-link autoconfiguration ``prefixes`` arrived on ``iface`` (from ``router``)."""
        link = self._link(iface)
        link.up = True
        if iid is not None:
            link.iid = iid
        if network is not None:
            link.network = network
        advertised = {p if isinstance(p, IPv6Network) else IPv6Network(p) for p in prefixes}
        advertised = {p for p in advertised if not p.is_link_local}
        out: list[Output] = []
        if self.prefix_cache and link.network is not None:
            candidates = sorted((p for p in advertised if p.prefixlen == 64), key=str)
            if candidates:
                home = self.home_prefix in candidates
                prefix = self.home_prefix if home else candidates[0]
                self.cache[link.network] = CachedNetwork(
                    prefix, None if router is None else IPv6Address(router)
                )
        if self.home_prefix in advertised:
            if link.ready is not None:
                out.append(CareOfAddressLost(iface, link.ready))
                link.ready = None
            if not link.home:
                link.home = True
                out.append(AtHome(iface))
            link.prefixes = advertised
            return out
        link.home = False
        if link.predicted is not None and not any(link.predicted in p for p in advertised):
            out.append(RemoveAddress(iface, link.predicted))
            link.addresses.pop(link.predicted, None)
            link.predicted = None
        link.prefixes = advertised
        if link.ready is not None and not any(link.ready in p for p in advertised):
            out.append(CareOfAddressLost(iface, link.ready))
            link.ready = None
        out.extend(self._choose(iface, link))
        return out

    def on_address(self, iface: str, address: IPv6Address | str, state: str) -> list[Output]:
        """The kernel reports ``address`` on ``iface`` in ``state`` (see ADDRESS_STATES)."""
        if state not in ADDRESS_STATES:
            raise ValueError(f"unknown address state {state!r}")
        address = IPv6Address(address)
        if address.is_link_local or address in self.home_prefix:
            return []
        link = self._link(iface)
        out: list[Output] = []
        if state in ("dadfailed", "removed"):
            link.addresses.pop(address, None)
            if link.predicted == address:
                link.predicted = None
            if link.ready == address:
                link.ready = None
                out.append(CareOfAddressLost(iface, address))
                out.extend(self._choose(iface, link))
            return out
        link.addresses[address] = state
        if link.ready == address and not self._usable(state):
            link.ready = None
            out.append(CareOfAddressLost(iface, address))
        out.extend(self._choose(iface, link))
        return out

    # ------------------------------------------------------------------ helpers

    def _usable(self, state: str) -> bool:
        return state == "preferred" or (state == "optimistic" and self.optimistic_dad)

    def _choose(self, iface: str, link: LinkState) -> list[Output]:
        if not link.up or link.home or link.ready is not None:
            return []
        for address, state in sorted(link.addresses.items(), key=lambda item: str(item[0])):
            if self._usable(state) and any(address in p for p in link.prefixes):
                link.ready = address
                return [CareOfAddressReady(iface, address)]
        return []

    def status(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "optimistic_dad": self.optimistic_dad,
            "prefix_cache": {k: str(v.prefix) for k, v in sorted(self.cache.items())},
            "router_cache": {k: str(v.router) for k, v in sorted(self.cache.items()) if v.router is not None},
            "links": {
                name: {
                    "up": link.up,
                    "network": link.network,
                    "home": link.home,
                    "prefixes": sorted(str(p) for p in link.prefixes),
                    "care_of_address": None if link.ready is None else str(link.ready),
                    "predicted": None if link.predicted is None else str(link.predicted),
                }
                for name, link in sorted(self.links.items())
            },
        }

    # ------------------------------------------------------------------ persistence

    def export_cache(self) -> dict[str, dict[str, str | None]]:
        """The prefix cache as JSON-ready data (see :meth:`import_cache`)."""
        return {
            name: {"prefix": str(entry.prefix), "router": None if entry.router is None else str(entry.router)}
            for name, entry in sorted(self.cache.items())
        }

    def import_cache(self, data: object) -> int:
        """Load entries saved by :meth:`export_cache`; malformed entries are skipped. Returns how
        many were loaded."""
        if not isinstance(data, dict):
            return 0
        loaded = 0
        for name, entry in data.items():
            if not isinstance(name, str) or not isinstance(entry, dict):
                continue
            try:
                prefix = IPv6Network(entry["prefix"])
                router = None if entry.get("router") is None else IPv6Address(entry["router"])
            except (KeyError, TypeError, ValueError):
                continue
            if prefix.prefixlen != 64 or (router is not None and not router.is_link_local):
                continue
            self.cache[name] = CachedNetwork(prefix, router)
            loaded += 1
        return loaded
