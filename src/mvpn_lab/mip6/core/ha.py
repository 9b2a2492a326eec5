"""Home agent state machine (RFC 6275 10.3): home registrations, binding cache, data-plane actions.

Checks on a received Binding Update, in order (the first failure decides):

1. decodes, checksum (in :class:`~mvpn_lab.mip6.core.node.Node`)                -> drop, count
2. arrived ESP-protected, when ``require_ipsec``                           -> drop, ``unprotected``
3. home address (Home Address option, else source) is unicast routable     -> drop
4. H flag set (this node offers no correspondent-node bindings)            -> drop; BA 139 when
   the home address has a (home) binding: the registration type may not change
   no Nonce Indices or Binding Authorization Data in a home registration   -> drop
5. home address inside ``home_prefix``                                     -> BA 132
6. home address in ``allowed_mobile_nodes``                                -> BA 129
7. sequence number newer than the cached one, or than the last one of a
   binding removed within ``max_binding_lifetime``                          -> BA 135
8. deregistration (lifetime 0 or CoA = HoA) without a binding              -> BA 133
9. care-of address unicast routable and not inside the home prefix         -> BA 128
10. first registration with ``perform_dad`` (on by default): wait for DAD of the home address
    (and its link-local address with the L flag)                          -> BA 134 if it fails

A rejected BU never changes the binding cache. Accepted registrations get a lifetime capped at
``max_binding_lifetime`` and at the home prefix's remaining valid lifetime, and the tunnel, host
route and proxy-ND actions; deregistrations and expiries remove them.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv6Address
from typing import Any

from mvpn_lab.mip6.core import counters as reasons
from mvpn_lab.mip6.core.actions import (
    AddHostRoute,
    AnnounceAddress,
    DelHostRoute,
    DelProxyNdp,
    DelTunnel,
    ProxyNdp,
    ReceivedPacket,
    SetTunnel,
    StartDad,
)
from mvpn_lab.mip6.core.binding import BindingCache, BindingCacheEntry, seq_gt
from mvpn_lab.mip6.core.config import HAConfig
from mvpn_lab.mip6.core.node import ACCEPTED, IGNORED, Node, is_unicast_routable
from mvpn_lab.mip6.wire.constants import LIFETIME_UNIT, BAStatus
from mvpn_lab.mip6.wire.messages import (
    AlternateCareOfAddress,
    BindingAcknowledgement,
    BindingAuthorizationData,
    BindingRefreshAdvice,
    BindingUpdate,
    NonceIndices,
    find_option,
    lifetime_units,
)


def link_local_of(home_address: IPv6Address) -> IPv6Address:
    """fe80:: plus the interface identifier of the home address (for the L flag)."""
    return IPv6Address((0xFE80 << 112) | (int(home_address) & ((1 << 64) - 1)))


class HomeAgent(Node):
    role = "ha"

    def __init__(self, config: HAConfig, **kwargs: Any) -> None:
        kwargs.setdefault("name", config.name)
        super().__init__(**kwargs)
        self.config = config
        self.cache = BindingCache()
        # BUs parked while DAD runs for a first registration: home address -> (packet, BU, CoA)
        self._pending_dad: dict[IPv6Address, tuple[ReceivedPacket, BindingUpdate, IPv6Address]] = {}
        self._dad_waiting: dict[IPv6Address, set[IPv6Address]] = {}  # home address -> probes running
        self.prefix_valid_until: float | None = None  # monotonic; None: the home prefix never expires

    # ------------------------------------------------------------------ BU processing

    def on_bu(self, pkt: ReceivedPacket, bu: BindingUpdate) -> str:
        cfg = self.config
        if cfg.require_ipsec and not pkt.esp:
            return self._reject(reasons.UNPROTECTED)
        hoa = pkt.hao if pkt.hao is not None else pkt.src
        if not is_unicast_routable(hoa):
            return self._reject(reasons.INVALID_HOME_ADDRESS)
        alt = find_option(bu, AlternateCareOfAddress)
        coa = alt.address if alt is not None else pkt.src
        if not bu.home:
            if hoa in self.cache:  # a home registration exists: the type may not change (9.5.1)
                return self._refuse(
                    pkt,
                    bu,
                    hoa,
                    coa,
                    BAStatus.REGISTRATION_TYPE_CHANGE_DISALLOWED,
                    reasons.REGISTRATION_TYPE_CHANGE,
                )
            return self._reject(reasons.NOT_HOME_REGISTRATION)
        if find_option(bu, NonceIndices) is not None or find_option(bu, BindingAuthorizationData) is not None:
            return self._reject(reasons.RR_OPTIONS_IN_HOME_REGISTRATION)  # RFC 6275 6.1.7, as UMIP
        if hoa not in cfg.home_prefix:
            return self._refuse(pkt, bu, hoa, coa, BAStatus.NOT_HOME_SUBNET, reasons.NOT_HOME_SUBNET)
        if not cfg.allows(hoa) or hoa == cfg.address:
            return self._refuse(
                pkt, bu, hoa, coa, BAStatus.ADMINISTRATIVELY_PROHIBITED, reasons.UNKNOWN_MOBILE_NODE
            )
        entry = self.cache.get(hoa)
        last = self.cache.last_seq(hoa, self.now())
        if last is not None and not seq_gt(bu.seq, last):
            return self._refuse(
                pkt,
                bu,
                hoa,
                coa,
                BAStatus.SEQUENCE_OUT_OF_WINDOW,
                reasons.SEQUENCE_OUT_OF_WINDOW,
                seq=last,
            )
        if bu.lifetime == 0 or coa == hoa:
            if entry is None:
                return self._refuse(
                    pkt, bu, hoa, coa, BAStatus.NOT_HOME_AGENT_FOR_THIS_MN, reasons.NO_BINDING_TO_DELETE
                )
            self._deregister(entry, pkt, bu, coa)
            return ACCEPTED
        if not is_unicast_routable(coa) or coa in cfg.home_prefix:
            return self._refuse(
                pkt, bu, hoa, coa, BAStatus.REASON_UNSPECIFIED, reasons.INVALID_CAREOF_ADDRESS
            )
        if entry is None and cfg.perform_dad:
            if hoa in self._pending_dad:
                # A retransmission while DAD runs: remember the newest BU, answer once DAD ends.
                self._pending_dad[hoa] = (pkt, bu, coa)
                return IGNORED
            self._pending_dad[hoa] = (pkt, bu, coa)
            # the home address, and with the L flag its link-local address too (10.3.1)
            probes = {hoa, link_local_of(hoa)} if bu.link_local else {hoa}
            self._dad_waiting[hoa] = set(probes)
            for address in sorted(probes):
                self.emit(StartDad(address))
            return ACCEPTED
        self._register(entry, pkt, bu, hoa, coa)
        return ACCEPTED

    def on_home_prefix_lifetime(self, valid_seconds: float | None) -> None:
        """The adapter reports the home prefix's remaining valid lifetime (None: forever). Granted
        lifetimes never outlast it (RFC 6275 10.3.1)."""
        self.prefix_valid_until = None if valid_seconds is None else self.now() + max(0.0, valid_seconds)

    def on_dad_result(self, address: IPv6Address, ok: bool) -> None:
        """The adapter reports the outcome of a :class:`StartDad` action for ``address`` (a home
        address, or the link-local address probed with it); the registration goes on once every
        probe of it succeeded, and fails with the first that did not."""
        home_address = next((h for h, left in self._dad_waiting.items() if address in left), None)
        if home_address is None:
            return
        self._dad_waiting[home_address].discard(address)
        if ok and self._dad_waiting[home_address]:
            return  # the other probe is still running
        del self._dad_waiting[home_address]
        pending = self._pending_dad.pop(home_address, None)
        if pending is None:
            return
        pkt, bu, coa = pending
        if not ok:
            self.rejected.inc(reasons.DAD_FAILED)
            self._send_ba(pkt, bu, home_address, coa, BAStatus.DAD_FAILED, 0, force=True)
            return
        last = self.cache.last_seq(home_address, self.now())
        if last is not None and not seq_gt(bu.seq, last):
            return
        self._register(self.cache.get(home_address), pkt, bu, home_address, coa)

    def _register(
        self,
        entry: BindingCacheEntry | None,
        pkt: ReceivedPacket,
        bu: BindingUpdate,
        hoa: IPv6Address,
        coa: IPv6Address,
    ) -> None:
        cfg = self.config
        now = self.now()
        granted_units = min(bu.lifetime, lifetime_units(cfg.max_binding_lifetime))
        if self.prefix_valid_until is not None:  # never beyond the home prefix's valid lifetime
            granted_units = min(granted_units, int(max(0.0, self.prefix_valid_until - now) // LIFETIME_UNIT))
        granted = granted_units * LIFETIME_UNIT
        old_coa = entry.careof_address if entry is not None else None
        new = BindingCacheEntry(
            home_address=hoa,
            careof_address=coa,
            seq=bu.seq,
            lifetime=granted,
            registered=now,
            home_registration=True,
            link_local=bu.link_local,
            updates=(entry.updates + 1) if entry is not None else 1,
        )
        self.cache.put(new)
        options: tuple[Any, ...] = ()
        if cfg.binding_refresh_advice and granted_units >= 2:
            options = (BindingRefreshAdvice(max(1, granted_units * 4 // 5)),)
        # The BA leaves before the tunnel, host route and proxy are set up: the mobile node sets
        # up its own side meanwhile instead of waiting for ours (the binding is already cached).
        self._send_ba(pkt, bu, hoa, coa, BAStatus.ACCEPTED, granted_units, options=options)
        if old_coa != coa:
            if old_coa is not None:
                self.emit(DelTunnel(cfg.address, old_coa))
            self.emit(SetTunnel(cfg.address, coa))
            self.emit(AddHostRoute(hoa, coa))
        if entry is None:
            self._proxy(hoa)
            if bu.link_local:
                self._proxy(link_local_of(hoa))
        elif bu.link_local and not entry.link_local:
            self._proxy(link_local_of(hoa))
        elif entry.link_local and not bu.link_local:
            self.emit(DelProxyNdp(link_local_of(hoa)))
        self.stats.inc("registrations")
        self.set_timer(("expire", hoa), granted, lambda: self._expire(hoa))

    def _proxy(self, address: IPv6Address) -> None:
        """Defend ``address`` on the home link, and tell the neighbours at once (when the home link
        is known) so they stop sending to the mobile node's old link-layer address."""
        self.emit(ProxyNdp(address))
        if self.config.interface:
            self.emit(AnnounceAddress(address, self.config.interface, self.config.address, ProxyNdp.kind))

    def _deregister(
        self, entry: BindingCacheEntry, pkt: ReceivedPacket, bu: BindingUpdate, coa: IPv6Address
    ) -> None:
        """The host route goes before the BA, which must reach the home address on the home link,
        not in the tunnel; the proxy entries and the tunnel after it, off the BA's path (the node
        is back on the home link and answers for its own address, RFC 6275 11.5.5)."""
        hoa = entry.home_address
        self._remove(
            entry, bu.seq, before_reply=lambda: self._send_ba(pkt, bu, hoa, coa, BAStatus.ACCEPTED, 0)
        )
        self.stats.inc("deregistrations")

    def _remove(
        self,
        entry: BindingCacheEntry,
        last_seq: int | None = None,
        before_reply: Callable[[], None] | None = None,
    ) -> None:
        """Drop the binding and its data plane; its last accepted sequence number (``last_seq``, a
        de-registration's, else the binding's) is kept for ``max_binding_lifetime``, so a BU
        replayed after the binding is gone meets status 135 (RFC 6275 10.3.1, 9.5.1).
        ``before_reply`` (a deregistration's BA) goes right after the host route's removal."""
        hoa = entry.home_address
        self.cache.remove(hoa, last_seq=last_seq, keep_until=self.now() + self.config.max_binding_lifetime)
        self.cancel_timer(("expire", hoa))
        self.emit(DelHostRoute(hoa))
        if before_reply is not None:
            before_reply()
        self.emit(DelProxyNdp(hoa))
        if entry.link_local:
            self.emit(DelProxyNdp(link_local_of(hoa)))
        self.emit(DelTunnel(self.config.address, entry.careof_address))

    def _expire(self, hoa: IPv6Address) -> None:
        entry = self.cache.get(hoa)
        if entry is None:
            return
        if entry.expires > self.now():  # refreshed meanwhile; timer re-armed by _register
            return
        self.stats.inc("expired")
        self._remove(entry)

    # ------------------------------------------------------------------ replies

    def _refuse(
        self,
        pkt: ReceivedPacket,
        bu: BindingUpdate,
        hoa: IPv6Address,
        coa: IPv6Address,
        status: int,
        reason: str,
        *,
        seq: int | None = None,
    ) -> str:
        self._send_ba(pkt, bu, hoa, coa, status, 0, seq=seq, force=True)
        return self._reject(reason)

    def _send_ba(
        self,
        pkt: ReceivedPacket,
        bu: BindingUpdate,
        hoa: IPv6Address,
        coa: IPv6Address,
        status: int,
        lifetime_units_: int,
        *,
        seq: int | None = None,
        options: tuple[Any, ...] = (),
        force: bool = False,
    ) -> None:
        """BA to the mobile node: to the care-of address with a type 2 routing header, or straight
        to the home address when the node is at home. Accepting BAs need the A flag (RFC 6275
        10.3.1); rejections are always sent."""
        if not (bu.ack or force or status >= 128):
            return
        ba = BindingAcknowledgement(
            status=status, seq=bu.seq if seq is None else seq, lifetime=lifetime_units_, options=options
        )
        local = pkt.rh2 if pkt.rh2 is not None else pkt.dst
        if pkt.src == hoa:
            self.send(local, hoa, ba, esp=self.config.require_ipsec)
        else:
            self.send(local, pkt.src, ba, rh2=hoa, esp=self.config.require_ipsec)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        out = super().status()
        out["address"] = str(self.config.address)
        out["home_prefix"] = str(self.config.home_prefix)
        out["binding_cache"] = self.cache.to_list(self.now())
        out["sequence_numbers_kept"] = self.cache.remembered(self.now())
        out["pending_dad"] = sorted(str(a) for a in self._pending_dad)
        return out
