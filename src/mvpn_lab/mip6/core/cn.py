"""Correspondent node state machine: return routability and route-optimised bindings.

HoTI/CoTI are answered statelessly from the secret ``Kcn`` and the current nonce
(:class:`~mvpn_lab.mip6.core.rr.NonceTable`). A Binding Update (RFC 6275 9.5.1) is checked in order:

1. decodes, checksum (in :class:`~mvpn_lab.mip6.core.node.Node`)                  -> drop, count
2. home address (Home Address option, else source) unicast routable          -> drop
3. care-of address is not a home address bound here                          -> drop
   H flag clear (no home agent service here)                                 -> BA 131
4. Nonce Indices and Binding Authorization Data present, BAD last            -> drop
5. nonce indices still valid (care-of index ignored when deregistering)      -> BA 136/137/138
6. authenticator verified with Kbm                                           -> drop, ``bad_authenticator``
7. sequence number newer than the cached one, or than the last one of a
   binding removed while its nonces may still be valid                      -> BA 135 (authenticated)

A rejected BU never changes the binding cache. Accepted bindings get a lifetime capped at
``max_binding_lifetime`` (at most MAX_RR_BINDING_LIFETIME) and install the type 2 routing header
(out) and Home Address option (in) states; a BA is sent when the A flag is set.
A message other than a BU carrying a Home Address option for which there is no binding draws a
Binding Error, status 1.
"""

from __future__ import annotations

from ipaddress import IPv6Address
from typing import Any

from mvpn_lab.mip6.core import counters as reasons
from mvpn_lab.mip6.core.actions import InstallHao, InstallRoute2, ReceivedPacket, RemoveHao, RemoveRoute2
from mvpn_lab.mip6.core.binding import BindingCache, BindingCacheEntry, seq_gt
from mvpn_lab.mip6.core.config import CNConfig
from mvpn_lab.mip6.core.node import ACCEPTED, IGNORED, Node, is_unicast_routable
from mvpn_lab.mip6.core.rr import (
    KCN_LENGTH,
    NonceTable,
    authenticated_mh_data,
    binding_management_key,
    careof_keygen_token,
    home_keygen_token,
    sign,
    verify,
)
from mvpn_lab.mip6.wire.constants import LIFETIME_UNIT, BAStatus, BEStatus
from mvpn_lab.mip6.wire.messages import (
    AlternateCareOfAddress,
    BindingAcknowledgement,
    BindingAuthorizationData,
    BindingUpdate,
    CareOfTest,
    CareOfTestInit,
    HomeTest,
    HomeTestInit,
    Message,
    NonceIndices,
    find_option,
    lifetime_units,
)


class CorrespondentNode(Node):
    role = "cn"

    def __init__(self, config: CNConfig, **kwargs: Any) -> None:
        kwargs.setdefault("name", config.name)
        super().__init__(**kwargs)
        self.config = config
        self._kcn = self.random(KCN_LENGTH)
        self.nonces = NonceTable(self.random, rotation_interval=config.nonce_rotation)
        self.cache = BindingCache()

    # ------------------------------------------------------------------ dispatch

    def dispatch(self, pkt: ReceivedPacket, msg: Message) -> str:
        # RFC 6275 9.3.1: a Home Address option needs an existing binding, except in a BU.
        # (HoTI/CoTI with the option are rejected by their own handlers.)
        if (
            pkt.hao is not None
            and pkt.hao not in self.cache
            and not isinstance(msg, BindingUpdate | HomeTestInit | CareOfTestInit)
        ):
            self.hao_without_binding(pkt.src, pkt.hao, pkt.rh2 if pkt.rh2 is not None else pkt.dst)
            return self._reject(reasons.HAO_WITHOUT_BINDING)
        return super().dispatch(pkt, msg)

    def on_data_with_hao(self, src: IPv6Address, home_address: IPv6Address, local: IPv6Address) -> str:
        """The kernel dropped a data packet (not a Mobility Header message) from ``src`` to ``local``
        whose Home Address option names ``home_address``, for want of a binding (the adapter
        reads the kernel's xfrm report): counted, and a Binding Error, status 1 (9.3.1)."""
        if home_address in self.cache:  # bound since the kernel's report: nothing to say
            return IGNORED
        self.stats.inc("data_with_hao_without_binding")
        self.hao_without_binding(src, home_address, local)
        return self._reject(reasons.HAO_WITHOUT_BINDING)

    def hao_without_binding(self, src: IPv6Address, home_address: IPv6Address, local: IPv6Address) -> None:
        """A packet (any protocol; the adapter reports data packets here) came from ``src`` with a
        Home Address option for which no binding exists: Binding Error, status 1."""
        if not self.config.send_binding_errors:
            return
        self.send_binding_error(local, src, BEStatus.UNKNOWN_BINDING_FOR_HAO, home_address)

    def on_unknown_type(self, pkt: ReceivedPacket, msg: Any) -> str:
        if self.config.send_binding_errors:
            return super().on_unknown_type(pkt, msg)
        return self._reject(reasons.UNEXPECTED_MESSAGE)

    # ------------------------------------------------------------------ return routability

    def on_hoti(self, pkt: ReceivedPacket, msg: HomeTestInit) -> str:
        if pkt.hao is not None:
            return self._reject(reasons.HAO_NOT_ALLOWED)
        if not is_unicast_routable(pkt.src):
            return self._reject(reasons.INVALID_HOME_ADDRESS)
        nonce = self.nonces.current(self.now())
        token = home_keygen_token(self._kcn, pkt.src, nonce.value)
        self.send(pkt.dst, pkt.src, HomeTest(nonce_index=nonce.index, cookie=msg.cookie, token=token))
        return ACCEPTED

    def on_coti(self, pkt: ReceivedPacket, msg: CareOfTestInit) -> str:
        if pkt.hao is not None:
            return self._reject(reasons.HAO_NOT_ALLOWED)
        if not is_unicast_routable(pkt.src):
            return self._reject(reasons.INVALID_CAREOF_ADDRESS)
        nonce = self.nonces.current(self.now())
        token = careof_keygen_token(self._kcn, pkt.src, nonce.value)
        self.send(pkt.dst, pkt.src, CareOfTest(nonce_index=nonce.index, cookie=msg.cookie, token=token))
        return ACCEPTED

    # ------------------------------------------------------------------ binding updates

    def on_bu(self, pkt: ReceivedPacket, bu: BindingUpdate) -> str:
        now = self.now()
        hoa = pkt.hao if pkt.hao is not None else pkt.src
        if not is_unicast_routable(hoa):
            return self._reject(reasons.INVALID_HOME_ADDRESS)
        alt = find_option(bu, AlternateCareOfAddress)
        coa = alt.address if alt is not None else pkt.src
        local = pkt.rh2 if pkt.rh2 is not None else pkt.dst
        if coa != hoa and coa in self.cache:
            # a care-of address that is another node's home address with a binding here: the
            # traffic for that node would loop or be hijacked (as UMIP refuses it)
            return self._reject(reasons.INVALID_CAREOF_ADDRESS)
        if bu.home:
            self._send_ba(pkt, bu, hoa, BAStatus.HOME_REGISTRATION_NOT_SUPPORTED, 0, None, coa, force=True)
            return self._reject(reasons.HOME_REGISTRATION_NOT_SUPPORTED)
        indices = find_option(bu, NonceIndices)
        bad = find_option(bu, BindingAuthorizationData)
        if indices is None or bad is None or authenticated_mh_data(pkt.mh) is None:
            return self._reject(reasons.MISSING_RR_OPTIONS)
        dereg = bu.lifetime == 0 or coa == hoa
        home_nonce = self.nonces.lookup(indices.home_nonce_index, now)
        careof_nonce = None if dereg else self.nonces.lookup(indices.careof_nonce_index, now)
        if home_nonce is None or (careof_nonce is None and not dereg):
            if home_nonce is None and careof_nonce is None and not dereg:
                status = BAStatus.EXPIRED_NONCES
            elif home_nonce is None:
                status = BAStatus.EXPIRED_HOME_NONCE_INDEX
            else:
                status = BAStatus.EXPIRED_COA_NONCE_INDEX
            self._send_ba(pkt, bu, hoa, status, 0, None, coa, force=True)
            return self._reject(reasons.EXPIRED_NONCE)
        home_token = home_keygen_token(self._kcn, hoa, home_nonce.value)
        careof_token = None if dereg else careof_keygen_token(self._kcn, coa, careof_nonce.value)  # type: ignore[union-attr]
        kbm = binding_management_key(home_token, careof_token)
        auth_coa = hoa if dereg else coa
        if not verify(pkt.mh, kbm, auth_coa, local):
            return self._reject(reasons.BAD_AUTHENTICATOR)
        entry = self.cache.get(hoa)
        last = self.cache.last_seq(hoa, now)
        if last is not None and not seq_gt(bu.seq, last):
            self._send_ba(
                pkt, bu, hoa, BAStatus.SEQUENCE_OUT_OF_WINDOW, 0, kbm, auth_coa, seq=last, force=True
            )
            return self._reject(reasons.SEQUENCE_OUT_OF_WINDOW)
        if dereg:
            if entry is not None:
                self._remove(entry, bu.seq)
            self.stats.inc("deregistrations")
            self._send_ba(pkt, bu, hoa, BAStatus.ACCEPTED, 0, kbm, auth_coa)
            return ACCEPTED
        if not is_unicast_routable(coa):
            return self._reject(reasons.INVALID_CAREOF_ADDRESS)
        granted_units = min(bu.lifetime, lifetime_units(self.config.max_binding_lifetime))
        granted = granted_units * LIFETIME_UNIT
        self.cache.put(
            BindingCacheEntry(
                home_address=hoa,
                careof_address=coa,
                seq=bu.seq,
                lifetime=granted,
                registered=now,
                home_registration=False,
                updates=(entry.updates + 1) if entry is not None else 1,
            )
        )
        if entry is None or entry.careof_address != coa:
            self.emit(InstallRoute2(hoa, coa, None, "out"))
            self.emit(InstallHao(hoa, coa, None, "in"))
        self.set_timer(("expire", hoa), granted, lambda: self._expire(hoa))
        self.stats.inc("registrations")
        self._send_ba(pkt, bu, hoa, BAStatus.ACCEPTED, granted_units, kbm, coa)
        return ACCEPTED

    def _remove(self, entry: BindingCacheEntry, last_seq: int | None = None) -> None:
        """Drop the binding; its last sequence number (``last_seq``, a de-registration's, else the
        binding's) is kept while the nonces that could authenticate an older BU are valid
        (RFC 6275 5.2.8), so such a BU replayed after the binding is gone meets status 135."""
        self.cache.remove(entry.home_address, last_seq=last_seq, keep_until=self.now() + self.nonces.lifetime)
        self.cancel_timer(("expire", entry.home_address))
        self.emit(RemoveRoute2(entry.home_address, None, "out"))
        self.emit(RemoveHao(entry.home_address, None, "in"))

    def _expire(self, hoa: IPv6Address) -> None:
        entry = self.cache.get(hoa)
        if entry is not None and entry.expires <= self.now():
            self.stats.inc("expired")
            self._remove(entry)

    def _send_ba(
        self,
        pkt: ReceivedPacket,
        bu: BindingUpdate,
        hoa: IPv6Address,
        status: int,
        units: int,
        kbm: bytes | None,
        auth_coa: IPv6Address,
        *,
        seq: int | None = None,
        force: bool = False,
    ) -> None:
        """BA to the BU's source; type 2 routing header when that is not the home address; BAD
        option when Kbm is known (RFC 6275 9.5.4)."""
        if not (bu.ack or force):
            return
        local = pkt.rh2 if pkt.rh2 is not None else pkt.dst
        ba = BindingAcknowledgement(status=status, seq=bu.seq if seq is None else seq, lifetime=units)
        if kbm is not None:
            ba = sign(ba, kbm, auth_coa, local)
        self.send(local, pkt.src, ba, rh2=None if pkt.src == hoa else hoa)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        out = super().status()
        out["address"] = str(self.config.address)
        out["binding_cache"] = self.cache.to_list(self.now())
        out["sequence_numbers_kept"] = self.cache.remembered(self.now())
        out["nonces"] = len(self.nonces)
        return out
