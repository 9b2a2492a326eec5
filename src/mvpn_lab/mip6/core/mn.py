"""Mobile node state machine (RFC 6275 11): home registration and, in mode ``ro``, route
optimisation with the configured correspondents.

Home registration (binding update list entry for the home agent), ``state``:

* ``home``: at home, no binding; ``registering``: BU sent, waiting for the BA;
  ``registered``: BA accepted, refresh timer armed; ``deregistering``: lifetime-0 BU sent from
  home; ``failed``: the home agent refused for good (status 129, 131-134, 139);
  ``detached``: no usable care-of address right now.

BUs to the home agent carry A and H, the Home Address option (``hao``), an Alternate Care-of
Address option (``use_alt_coa``) and a fresh sequence number on every transmission. They are
retransmitted after InitialBindackTimeoutFirstReg (first registration) or INITIAL_BINDACK_TIMEOUT,
doubling up to MAX_BINDACK_TIMEOUT and then continuing at that rate (RFC 6275 11.8). Refresh is
sent after ``refresh_fraction`` of the granted lifetime, or earlier if the BA's Binding Refresh
Advice says so.

Route optimisation (per correspondent, ``state``): ``idle`` -> ``rr`` (HoTI through the tunnel,
CoTI direct; HoT/CoT cookies must match) -> ``bu_sent`` (only with ``cn_ack``) -> ``bound``.
``failed`` or ``unsupported`` fall back to the tunnel. After a move only the care-of test is
repeated while the home keygen token is younger than MAX_TOKEN_LIFETIME.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from mvpn_lab.mip6.core import counters as reasons
from mvpn_lab.mip6.core.actions import (
    AnnounceAddress,
    DelRouteViaTunnel,
    DelTunnel,
    ExitDeregistered,
    InstallHao,
    InstallRoute2,
    ReceivedPacket,
    RemoveHao,
    RemoveRoute2,
    ResumeTcp,
    RouteViaTunnel,
    SetHomeAddress,
    SettleHomeAddress,
    SetTunnel,
)
from mvpn_lab.mip6.core.binding import (
    BindingUpdateListEntry,
    RegistrationState,
    RouteOptimisationState,
    seq_add,
)
from mvpn_lab.mip6.core.config import MNConfig
from mvpn_lab.mip6.core.movement import (
    AtHome,
    CareOfAddressLost,
    CareOfAddressReady,
    MovementDetector,
    Output,
)
from mvpn_lab.mip6.core.node import ACCEPTED, IGNORED, Node
from mvpn_lab.mip6.core.rr import binding_management_key, new_cookie, sign, verify
from mvpn_lab.mip6.wire.constants import (
    INITIAL_BINDACK_TIMEOUT,
    LIFETIME_UNIT,
    MAX_BINDACK_TIMEOUT,
    MAX_RR_BINDING_LIFETIME,
    MAX_TOKEN_LIFETIME,
    MAX_UPDATE_RATE,
    BAStatus,
    BEStatus,
)
from mvpn_lab.mip6.wire.messages import (
    AlternateCareOfAddress,
    BindingAcknowledgement,
    BindingError,
    BindingRefreshAdvice,
    BindingRefreshRequest,
    BindingUpdate,
    CareOfTest,
    CareOfTestInit,
    HomeTest,
    HomeTestInit,
    MHDecodeError,
    NonceIndices,
    decode_mh,
    find_option,
    lifetime_units,
)

# Home agent answers after which the mobile node stops trying until it moves again.
_FINAL_REFUSALS = {129, 131, 132, 133, 134, 139}
_MAX_SEQ_RESYNCS = 3


class Location(StrEnum):
    """Where the mobile node is, as its movement detection last decided."""

    UNKNOWN = "unknown"  # no decision yet (daemon start)
    HOME = "home"  # on the home link
    AWAY = "away"  # on a foreign link with a usable care-of address
    DETACHED = "detached"  # was away and lost its care-of address


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else round(now - then, 3)


@dataclass
class CNSession:
    """Route optimisation state towards one correspondent node."""

    peer: IPv6Address
    bul: BindingUpdateListEntry
    state: RouteOptimisationState = RouteOptimisationState.IDLE
    home_cookie: bytes | None = None
    careof_cookie: bytes | None = None
    home_token: bytes | None = None
    home_index: int = 0
    home_token_time: float | None = None
    careof_token: bytes | None = None
    careof_index: int = 0
    careof_token_time: float | None = None
    careof_token_coa: IPv6Address | None = None
    hoti_timeout: float = INITIAL_BINDACK_TIMEOUT
    coti_timeout: float = INITIAL_BINDACK_TIMEOUT
    hoti_tx: int = 0
    coti_tx: int = 0
    bu_tx: int = 0
    kbm: bytes | None = None
    auth_coa: IPv6Address | None = None
    installed_coa: IPv6Address | None = None
    dereg: bool = False
    resyncs: int = 0

    def home_token_fresh(self, now: float) -> bool:
        return (
            self.home_token is not None
            and self.home_token_time is not None
            and (now - self.home_token_time < MAX_TOKEN_LIFETIME)
        )

    def careof_token_fresh(self, now: float, coa: IPv6Address | None) -> bool:
        return (
            self.careof_token is not None
            and self.careof_token_time is not None
            and self.careof_token_coa == coa
            and now - self.careof_token_time < MAX_TOKEN_LIFETIME
        )

    def to_dict(self, now: float) -> dict[str, Any]:
        out = self.bul.to_dict(now)
        out["state"] = self.state.value
        out["rr"] = {
            "home_token_age": _age(now, self.home_token_time),
            "careof_token_age": _age(now, self.careof_token_time),
            "home_nonce_index": self.home_index if self.home_token else None,
            "careof_nonce_index": self.careof_index if self.careof_token else None,
            "hoti_transmissions": self.hoti_tx,
            "coti_transmissions": self.coti_tx,
        }
        return out


@dataclass
class _HomeTx:
    timeout: float = INITIAL_BINDACK_TIMEOUT
    outstanding: bool = False
    resyncs: int = 0
    recent: list[float] = field(default_factory=list)  # send times, for MAX_UPDATE_RATE


class MobileNode(Node):
    role = "mn"

    def __init__(self, config: MNConfig, **kwargs: Any) -> None:
        kwargs.setdefault("name", config.name)
        super().__init__(**kwargs)
        self.config = config
        self.hoa = config.home_address
        self.ha = config.home_agent
        self.home_prefix: IPv6Network = config.home_prefix
        self.detector = MovementDetector(
            mode=config.movement_detection,
            home_prefix=self.home_prefix,
            optimistic_dad=config.optimistic_dad,
            prefix_cache=config.prefix_cache,
        )
        self.location = Location.UNKNOWN
        self.coa: IPv6Address | None = None
        self._tunnel_coa: IPv6Address | None = None
        self._hao_coa: IPv6Address | None = None
        self.home = BindingUpdateListEntry(
            peer=self.ha,
            home_address=self.hoa,
            careof_address=self.hoa,
            home_registration=True,
            seq=self._random_seq(),
            state=RegistrationState.HOME,
        )
        self._htx = _HomeTx()
        self.cns: dict[IPv6Address, CNSession] = {}
        self.exit_seq: int | None = None  # the deregistration sent at exit, until its BA
        self.exit_acked = False
        self._resumed_home_coa: IPv6Address | None = None
        self._resumed_cn: dict[IPv6Address, IPv6Address] = {}
        if config.mode == "ro":
            for peer in config.correspondents:
                self.cns[peer] = CNSession(
                    peer=peer,
                    bul=BindingUpdateListEntry(
                        peer=peer,
                        home_address=self.hoa,
                        careof_address=self.hoa,
                        home_registration=False,
                        seq=self._random_seq(),
                    ),
                )

    def _random_seq(self) -> int:
        return struct.unpack("!H", self.random(2))[0]

    # ================================================================== movement events

    def on_link_up(self, iface: str, *, network: str | None = None, iid: int | None = None) -> None:
        self._apply(self.detector.on_link_up(iface, network=network, iid=iid))
        self._resume_tcp()

    def on_link_down(self, iface: str) -> None:
        self._apply(self.detector.on_link_down(iface))
        self._resume_tcp()

    def on_router_advertisement(
        self,
        iface: str,
        prefixes: list[Any],
        *,
        network: str | None = None,
        iid: int | None = None,
        router: IPv6Address | None = None,
    ) -> None:
        self._apply(
            self.detector.on_router_advertisement(iface, prefixes, network=network, iid=iid, router=router)
        )
        self._resume_tcp()

    def on_address(self, iface: str, address: IPv6Address | str, state: str) -> None:
        self._apply(self.detector.on_address(iface, address, state))
        self._resume_tcp()

    def _apply(self, outputs: list[Output]) -> None:
        for item in outputs:
            if isinstance(item, CareOfAddressReady):
                self.move_to(item.address)
            elif isinstance(item, CareOfAddressLost):
                if item.address == self.coa:
                    self.coa_lost()
            elif isinstance(item, AtHome):
                self.return_home()
            else:
                self.emit(item)

    # ================================================================== home registration

    def move_to(self, coa: IPv6Address) -> None:
        """A usable care-of address away from home: register it with the home agent."""
        coa = IPv6Address(coa)
        if coa in self.home_prefix:
            self.return_home()
            return
        if (
            coa == self.coa
            and self.location == Location.AWAY
            and self.home.state in (RegistrationState.REGISTERING, RegistrationState.REGISTERED)
        ):
            return
        was_away = self.location in (Location.AWAY, Location.DETACHED)
        self.coa = coa
        self.location = Location.AWAY
        self.stats.inc("movements")
        if not was_away:
            self.emit(SetHomeAddress(self.hoa, self.config.home_prefix_len, away=True))
        if self._hao_coa != coa:
            self.emit(InstallHao(self.hoa, coa, self.ha, "out"))
            self.emit(InstallRoute2(self.hoa, coa, self.ha, "in"))
            self._hao_coa = coa
        for session in self.cns.values():
            # A bound correspondent keeps its (now stale) binding until the new BU; everything in
            # flight restarts after the home agent's BA. A "failed" correspondent gets a new try.
            self._cancel_cn_timers(session)
            session.dereg = False
            session.bu_tx = 0
            session.home_cookie = session.careof_cookie = None
            if session.state in (
                RouteOptimisationState.RR,
                RouteOptimisationState.BU_SENT,
                RouteOptimisationState.FAILED,
            ):
                session.state = RouteOptimisationState.IDLE
        first = self.home.state not in (RegistrationState.REGISTERED,)
        self.home.state = RegistrationState.REGISTERING
        self.home.careof_address = coa
        self._start_home_tx(self.config.home_lifetime, first=first)
        if not was_away:  # the kernel work the BU does not need comes after it
            self.emit(SettleHomeAddress(self.hoa, self.config.home_prefix_len, away=True))

    def coa_lost(self) -> None:
        """The care-of address went away (link down, DAD failed): stop sending until a new one."""
        self.coa = None
        if self.location == Location.AWAY:
            self.location = Location.DETACHED
        self.cancel_timer("home_bu")
        self._htx.outstanding = False
        for session in self.cns.values():
            self._cancel_cn_timers(session)
        if self.home.state == RegistrationState.REGISTERING:
            self.home.state = RegistrationState.DETACHED

    def return_home(self) -> None:
        """Back on the home link: deregister with the home agent and the correspondents."""
        if self.location == Location.HOME and self.home.state in (
            RegistrationState.HOME,
            RegistrationState.DEREGISTERING,
        ):
            return
        was_away = self.location in (Location.AWAY, Location.DETACHED)
        self.location = Location.HOME
        self.coa = None
        self.cancel_timer("home_refresh")
        self.cancel_timer("home_expire")
        self.stats.inc("returns_home")
        if was_away:
            self.emit(SetHomeAddress(self.hoa, self.config.home_prefix_len, away=False))
        self.home.careof_address = self.hoa
        self.home.state = RegistrationState.DEREGISTERING
        self._start_home_tx(0, first=False)
        if was_away:
            self.emit(SettleHomeAddress(self.hoa, self.config.home_prefix_len, away=False))
        for session in self.cns.values():
            self._cancel_cn_timers(session)
            if session.state in (RouteOptimisationState.UNSUPPORTED,):
                continue
            if session.installed_coa is not None or session.state in (
                RouteOptimisationState.BOUND,
                RouteOptimisationState.BU_SENT,
                RouteOptimisationState.RR,
            ):
                session.dereg = True
                session.bu_tx = 0
                session.careof_token = None
                self._start_rr(session, home=True, careof=False)
            else:
                session.state = RouteOptimisationState.IDLE

    def _start_home_tx(self, lifetime: int, *, first: bool) -> None:
        cfg = self.config
        self._htx.timeout = cfg.initial_bindack_timeout_first_reg if first else INITIAL_BINDACK_TIMEOUT
        self._htx.resyncs = 0
        self.home.requested_lifetime = lifetime
        self.home.transmissions = 0
        self._send_home_bu()

    def _send_home_bu(self) -> None:
        now = self.now()
        recent = [t for t in self._htx.recent if now - t < 1.0]
        self._htx.recent = recent
        if len(recent) >= MAX_UPDATE_RATE:  # RFC 6275 11.8: at most MAX_UPDATE_RATE BUs per second
            self.set_timer("home_bu", 1.0 - (now - recent[0]), self._send_home_bu)
            return
        recent.append(now)
        dereg = self.home.state == RegistrationState.DEREGISTERING
        content = (dereg, None if dereg else self.coa, self.home.requested_lifetime)
        self.home.record_sent(seq_add(self.home.seq), now, content)
        self.home.transmissions += 1
        self.home.retransmit_timeout = self._htx.timeout
        self._htx.outstanding = True
        options: tuple[Any, ...] = ()
        if self.config.use_alt_coa and not dereg and self.coa is not None:
            options = (AlternateCareOfAddress(self.coa),)
        bu = BindingUpdate(
            seq=self.home.seq,
            lifetime=0 if dereg else lifetime_units(self.home.requested_lifetime),
            ack=True,
            home=True,
            link_local=self.config.link_local_compat,
            options=options,
        )
        if dereg:
            self.send(self.hoa, self.ha, bu, esp=self.config.require_ipsec)
        else:
            assert self.coa is not None
            self.send(self.coa, self.ha, bu, hao=self.hoa, esp=self.config.require_ipsec)
        self.set_timer("home_bu", self._htx.timeout, self._home_retransmit)

    def _home_retransmit(self) -> None:
        if not self._htx.outstanding:
            return
        if self.location == Location.DETACHED or (
            self.home.state != RegistrationState.DEREGISTERING and self.coa is None
        ):
            return
        self.stats.inc("home_bu_retransmissions")
        self._htx.timeout = min(self._htx.timeout * 2, MAX_BINDACK_TIMEOUT)
        self._send_home_bu()

    def _home_refresh(self) -> None:
        if self.location != Location.AWAY or self.coa is None:
            return
        self.stats.inc("home_refreshes")
        self._start_home_tx(self.config.home_lifetime, first=False)

    def _home_expired(self) -> None:
        if self.home.state == RegistrationState.REGISTERED:
            self.stats.inc("home_binding_expired")
            self.home.state = RegistrationState.REGISTERING

    # ================================================================== after each input

    def receive(self, pkt: ReceivedPacket) -> str:
        if self.exit_seq is not None and self._is_exit_ack(pkt):
            return ACCEPTED
        result = super().receive(pkt)
        self._resume_tcp()
        return result

    def tick(self) -> None:
        super().tick()
        self._resume_tcp()

    def _resume_tcp(self) -> None:
        """With ``tcp_recovery``: :class:`ResumeTcp` once per completed handover (not on refreshes):
        towards every peer when the home agent has the new care-of address (except correspondents
        with route optimisation under way: they get theirs when bound), towards one correspondent
        when its binding has it."""
        if not self.config.tcp_recovery or self.location != Location.AWAY or self.coa is None:
            return
        if self.home.state == RegistrationState.REGISTERED and self._resumed_home_coa != self.coa:
            self._resumed_home_coa = self.coa
            exclude = tuple(
                p
                for p, s in self.cns.items()
                if s.state
                not in (
                    RouteOptimisationState.FAILED,
                    RouteOptimisationState.UNSUPPORTED,
                    RouteOptimisationState.IDLE,
                )
            )
            self.emit(ResumeTcp(self.hoa, None, exclude))
        for peer, session in self.cns.items():
            if (
                session.state == RouteOptimisationState.BOUND
                and session.bul.careof_address == self.coa
                and self._resumed_cn.get(peer) != self.coa
            ):
                self._resumed_cn[peer] = self.coa
                self.emit(ResumeTcp(self.hoa, peer))

    # ================================================================== exit

    def begin_exit(self) -> bool:
        """The daemon stops. Away and registered (or registering), with ``deregister_on_exit``:
        send the home agent a deregistration (lifetime 0) and return True; its BA then comes out
        as :class:`ExitDeregistered`. Otherwise nothing to wait for: False."""
        cfg = self.config
        if not (
            cfg.deregister_on_exit
            and self.location == Location.AWAY
            and self.coa is not None
            and self.home.state in (RegistrationState.REGISTERED, RegistrationState.REGISTERING)
        ):
            return False
        seq = seq_add(self.home.seq)
        bu = BindingUpdate(seq=seq, lifetime=0, ack=True, home=True, link_local=cfg.link_local_compat)
        self.send(self.coa, self.ha, bu, hao=self.hoa, esp=cfg.require_ipsec)
        self.exit_seq = seq
        return True

    def _is_exit_ack(self, pkt: ReceivedPacket) -> bool:
        if pkt.src != self.ha:
            return False
        try:
            msg = decode_mh(pkt.mh)
        except MHDecodeError:
            return False
        if not isinstance(msg, BindingAcknowledgement) or msg.seq != self.exit_seq:
            return False
        self.exit_acked = True
        self.logger.log(
            "rx",
            src=pkt.src,
            dst=pkt.dst,
            msg=msg,
            hao=pkt.hao,
            rh2=pkt.rh2,
            result="accepted:exit_deregistration",
        )
        self.emit(ExitDeregistered(self.ha, msg.seq))
        return True

    # ================================================================== received messages

    def on_ba(self, pkt: ReceivedPacket, ba: BindingAcknowledgement) -> str:
        if pkt.src == self.ha:
            return self._home_ba(pkt, ba)
        session = self.cns.get(pkt.src)
        if session is None:
            return self._reject(reasons.UNEXPECTED_SOURCE)
        return self._cn_ba(pkt, session, ba)

    def _home_ba(self, pkt: ReceivedPacket, ba: BindingAcknowledgement) -> str:
        if self.config.require_ipsec and not pkt.esp:
            return self._reject(reasons.UNPROTECTED)
        if not self._htx.outstanding:
            return self._reject(reasons.UNSOLICITED)
        if ba.status == BAStatus.SEQUENCE_OUT_OF_WINDOW:
            if self._htx.resyncs >= _MAX_SEQ_RESYNCS:
                return self._reject(reasons.SEQUENCE_OUT_OF_WINDOW)
            self._htx.resyncs += 1
            self.stats.inc("home_seq_resyncs")
            self.home.seq = ba.seq  # the next BU uses ba.seq + 1
            self.cancel_timer("home_bu")
            self._send_home_bu()
            return ACCEPTED
        sent = self.home.outstanding_sent(ba.seq)
        if sent is None:
            return self._reject(reasons.UNEXPECTED_SEQUENCE)
        if ba.seq != self.home.seq:
            self.stats.inc("home_ba_for_earlier_transmission")
        self.home.acknowledged()
        self._htx.outstanding = False
        self.cancel_timer("home_bu")
        self.home.last_status = ba.status
        dereg = self.home.state == RegistrationState.DEREGISTERING
        if dereg and (ba.accepted or ba.status == BAStatus.NOT_HOME_AGENT_FOR_THIS_MN):
            self._home_deregistered()
            return ACCEPTED
        if not ba.accepted:
            self.stats.inc(f"home_refused_{ba.status}")
            if ba.status in _FINAL_REFUSALS:
                self.home.state = RegistrationState.FAILED
            else:  # 128, 130 and unknown codes: try again later
                self._htx.outstanding = True
                self._htx.timeout = MAX_BINDACK_TIMEOUT
                self.set_timer("home_bu", MAX_BINDACK_TIMEOUT, self._home_retransmit)
            return ACCEPTED
        granted = ba.lifetime * LIFETIME_UNIT
        if granted == 0:
            self.stats.inc("home_zero_lifetime")
            self._htx.outstanding = True
            self.set_timer("home_bu", MAX_BINDACK_TIMEOUT, self._home_retransmit)
            return ACCEPTED
        self._home_registered(ba, granted, sent)
        return ACCEPTED

    def _home_registered(self, ba: BindingAcknowledgement, granted: float, sent: float) -> None:
        assert self.coa is not None
        self.home.state = RegistrationState.REGISTERED
        self.home.granted_lifetime = granted
        self.home.accepted = sent
        interval = granted * self.config.refresh_fraction
        bra = find_option(ba, BindingRefreshAdvice)
        if bra is not None and 0 < bra.refresh_seconds < interval:
            interval = bra.refresh_seconds
        elapsed = self.now() - sent
        self.set_timer("home_refresh", max(0.0, interval - elapsed), self._home_refresh)
        self.set_timer("home_expire", max(0.0, granted - elapsed), self._home_expired)
        if self._tunnel_coa != self.coa:
            if self._tunnel_coa is None:
                self.emit(SetTunnel(self.coa, self.ha))
                self.emit(RouteViaTunnel(self.hoa, self.ha))
            else:
                self.emit(SetTunnel(self.coa, self.ha))
            self._tunnel_coa = self.coa
        for session in self.cns.values():
            if session.state in (RouteOptimisationState.UNSUPPORTED, RouteOptimisationState.FAILED):
                continue
            if session.state == RouteOptimisationState.BOUND and session.bul.careof_address == self.coa:
                continue
            if (
                session.state in (RouteOptimisationState.RR, RouteOptimisationState.BU_SENT)
                and session.bul.careof_address == self.coa
            ):
                continue
            self._start_rr(
                session,
                home=not session.home_token_fresh(self.now()),
                careof=not session.careof_token_fresh(self.now(), self.coa),
            )

    def _home_deregistered(self) -> None:
        self.home.state = RegistrationState.HOME
        self.home.granted_lifetime = None
        self.home.accepted = None
        self.cancel_timer("home_refresh")
        self.cancel_timer("home_expire")
        if self._tunnel_coa is not None:
            self.emit(DelRouteViaTunnel(self.hoa))
            if self.location == Location.HOME and self.config.interfaces:
                # back home and deregistered: neighbours must forget the home agent's proxy entry
                self.emit(
                    AnnounceAddress(self.hoa, self.config.interfaces[0], self.hoa, DelRouteViaTunnel.kind)
                )
            self.emit(DelTunnel(self._tunnel_coa, self.ha))
            self._tunnel_coa = None
        if self._hao_coa is not None:
            self.emit(RemoveHao(self.hoa, self.ha, "out"))
            self.emit(RemoveRoute2(self.hoa, self.ha, "in"))
            self._hao_coa = None

    def on_brr(self, pkt: ReceivedPacket, msg: BindingRefreshRequest) -> str:
        if pkt.src == self.ha:
            if self.home.state != RegistrationState.REGISTERED or self.location != Location.AWAY:
                return self._reject(reasons.UNSOLICITED)
            self._home_refresh()
            return ACCEPTED
        session = self.cns.get(pkt.src)
        if session is None:
            return self._reject(reasons.UNEXPECTED_SOURCE)
        if session.state != RouteOptimisationState.BOUND or self.location != Location.AWAY:
            return self._reject(reasons.UNSOLICITED)
        self._start_rr(session, home=True, careof=True)
        return ACCEPTED

    def on_be(self, pkt: ReceivedPacket, msg: BindingError) -> str:
        session = self.cns.get(pkt.src)
        if session is None:
            return self._reject(reasons.UNEXPECTED_SOURCE)
        if msg.status == BEStatus.UNRECOGNIZED_MH_TYPE:
            self.stats.inc("cn_unsupported")
            self._cancel_cn_timers(session)
            self._uninstall_ro(session)
            session.state = RouteOptimisationState.UNSUPPORTED
            return ACCEPTED
        if msg.status == BEStatus.UNKNOWN_BINDING_FOR_HAO and msg.home_address == self.hoa:
            if (
                self.location == Location.AWAY
                and self.home.state == RegistrationState.REGISTERED
                and session.state == RouteOptimisationState.BOUND
            ):
                self.stats.inc("cn_binding_lost")
                self._start_rr(session, home=True, careof=True)
                return ACCEPTED
            return IGNORED
        return IGNORED

    # ================================================================== return routability

    def _cancel_cn_timers(self, session: CNSession) -> None:
        for key in ("hoti", "coti", "cn_bu", "cn_refresh"):
            self.cancel_timer((key, session.peer))

    def _start_rr(self, session: CNSession, *, home: bool, careof: bool) -> None:
        session.state = RouteOptimisationState.RR
        if not session.dereg:
            session.bul.careof_address = self.coa or self.hoa
        if home:
            session.home_token = None
            session.home_cookie = new_cookie(self.random)
            session.hoti_timeout = INITIAL_BINDACK_TIMEOUT
            session.hoti_tx = 0
            self._send_hoti(session)
        if careof and not session.dereg:
            session.careof_token = None
            session.careof_cookie = new_cookie(self.random)
            session.coti_timeout = INITIAL_BINDACK_TIMEOUT
            session.coti_tx = 0
            self._send_coti(session)
        if not home and not careof:
            self._maybe_send_cn_bu(session)

    def _give_up(self, session: CNSession, transmissions: int) -> bool:
        """After ``cn_max_attempts`` transmissions of one message, fall back to the tunnel."""
        if transmissions < self.config.cn_max_attempts:
            return False
        self.stats.inc("cn_gave_up")
        self._cancel_cn_timers(session)
        session.state = RouteOptimisationState.FAILED
        session.home_cookie = session.careof_cookie = None
        session.dereg = False
        self._uninstall_ro(session)  # traffic to this correspondent goes through the tunnel again
        return True

    def _send_hoti(self, session: CNSession) -> None:
        if session.home_cookie is None or self._give_up(session, session.hoti_tx):
            return
        session.hoti_tx += 1
        hoti = HomeTestInit(cookie=session.home_cookie)
        self.send(self.hoa, session.peer, hoti, via_tunnel=self.location == Location.AWAY)
        self.set_timer(("hoti", session.peer), session.hoti_timeout, lambda: self._retx_hoti(session))

    def _retx_hoti(self, session: CNSession) -> None:
        session.hoti_timeout = min(session.hoti_timeout * 2, MAX_BINDACK_TIMEOUT)
        self._send_hoti(session)

    def _send_coti(self, session: CNSession) -> None:
        if session.careof_cookie is None or self.coa is None or self._give_up(session, session.coti_tx):
            return
        session.coti_tx += 1
        self.send(self.coa, session.peer, CareOfTestInit(cookie=session.careof_cookie))
        self.set_timer(("coti", session.peer), session.coti_timeout, lambda: self._retx_coti(session))

    def _retx_coti(self, session: CNSession) -> None:
        session.coti_timeout = min(session.coti_timeout * 2, MAX_BINDACK_TIMEOUT)
        self._send_coti(session)

    def on_hot(self, pkt: ReceivedPacket, msg: HomeTest) -> str:
        session = self.cns.get(pkt.src)
        if session is None:
            return self._reject(reasons.UNEXPECTED_SOURCE)
        if pkt.dst != self.hoa:
            return self._reject(reasons.WRONG_DESTINATION)
        if self.location == Location.AWAY and not pkt.via_tunnel:
            return self._reject(reasons.NOT_VIA_TUNNEL)
        if session.home_cookie is None or msg.cookie != session.home_cookie:
            return self._reject(reasons.UNMATCHED_COOKIE)
        session.home_cookie = None
        session.home_token = msg.token
        session.home_index = msg.nonce_index
        session.home_token_time = self.now()
        self.cancel_timer(("hoti", session.peer))
        self._maybe_send_cn_bu(session)
        return ACCEPTED

    def on_cot(self, pkt: ReceivedPacket, msg: CareOfTest) -> str:
        session = self.cns.get(pkt.src)
        if session is None:
            return self._reject(reasons.UNEXPECTED_SOURCE)
        if self.coa is None or pkt.dst != self.coa:
            return self._reject(reasons.WRONG_DESTINATION)
        if session.careof_cookie is None or msg.cookie != session.careof_cookie:
            return self._reject(reasons.UNMATCHED_COOKIE)
        session.careof_cookie = None
        session.careof_token = msg.token
        session.careof_index = msg.nonce_index
        session.careof_token_time = self.now()
        session.careof_token_coa = self.coa
        self.cancel_timer(("coti", session.peer))
        self._maybe_send_cn_bu(session)
        return ACCEPTED

    def _maybe_send_cn_bu(self, session: CNSession) -> None:
        now = self.now()
        if not session.home_token_fresh(now):
            return
        if session.dereg:
            self._send_cn_bu(session)
            return
        if (
            self.location != Location.AWAY
            or self.coa is None
            or not session.careof_token_fresh(now, self.coa)
        ):
            return
        self._send_cn_bu(session)

    def _send_cn_bu(self, session: CNSession) -> None:
        assert session.home_token is not None
        now = self.now()
        dereg = session.dereg
        seq = seq_add(session.bul.seq)
        session.bul.transmissions += 1
        session.bu_tx += 1
        lifetime = 0 if dereg else min(self.config.cn_lifetime, MAX_RR_BINDING_LIFETIME)
        session.bul.requested_lifetime = lifetime
        if dereg:
            kbm = binding_management_key(session.home_token)
            coa = self.hoa
            indices = NonceIndices(session.home_index, 0)
        else:
            assert session.careof_token is not None and self.coa is not None
            kbm = binding_management_key(session.home_token, session.careof_token)
            coa = self.coa
            indices = NonceIndices(session.home_index, session.careof_index)
        session.kbm = kbm
        session.auth_coa = coa
        session.bul.careof_address = coa
        session.bul.record_sent(seq, now, (dereg, coa, lifetime, kbm))
        bu = BindingUpdate(
            seq=session.bul.seq, lifetime=lifetime_units(lifetime), ack=self.config.cn_ack, options=(indices,)
        )
        bu = sign(bu, kbm, coa, session.peer)
        if dereg:
            self.send(self.hoa, session.peer, bu)
            self._uninstall_ro(session)
        else:
            if session.installed_coa != coa:
                self.emit(InstallHao(self.hoa, coa, session.peer, "out"))
                self.emit(InstallRoute2(self.hoa, coa, session.peer, "in"))
                session.installed_coa = coa
            self.send(coa, session.peer, bu, hao=self.hoa)
        if self.config.cn_ack:
            session.state = RouteOptimisationState.BU_SENT
            timeout = session.bul.retransmit_timeout = (
                INITIAL_BINDACK_TIMEOUT
                if session.bu_tx <= 1
                else min(session.bul.retransmit_timeout * 2, MAX_BINDACK_TIMEOUT)
            )
            self.set_timer(("cn_bu", session.peer), timeout, lambda: self._retx_cn_bu(session))
        else:
            self._cn_bound(session, lifetime, now)

    def _retx_cn_bu(self, session: CNSession) -> None:
        if self._give_up(session, session.bu_tx):
            return
        now = self.now()
        if session.home_token_fresh(now) and (session.dereg or session.careof_token_fresh(now, self.coa)):
            self._send_cn_bu(session)
        else:
            self._start_rr(
                session,
                home=not session.home_token_fresh(now),
                careof=not session.careof_token_fresh(now, self.coa),
            )

    def _cn_bound(self, session: CNSession, granted: float, sent: float) -> None:
        session.bul.retransmit_timeout = 0.0
        session.bu_tx = 0
        session.resyncs = 0
        if session.dereg:
            session.dereg = False
            session.state = RouteOptimisationState.IDLE
            session.bul.granted_lifetime = None
            session.bul.accepted = None
            return
        session.state = RouteOptimisationState.BOUND
        session.bul.granted_lifetime = granted
        session.bul.accepted = sent
        elapsed = self.now() - sent
        refresh = max(0.0, granted * self.config.refresh_fraction - elapsed)
        self.set_timer(("cn_refresh", session.peer), refresh, lambda: self._cn_refresh(session))

    def _cn_refresh(self, session: CNSession) -> None:
        if self.location != Location.AWAY or session.state != RouteOptimisationState.BOUND:
            return
        self.stats.inc("cn_refreshes")
        now = self.now()
        self._start_rr(
            session,
            home=not session.home_token_fresh(now),
            careof=not session.careof_token_fresh(now, self.coa),
        )

    def _uninstall_ro(self, session: CNSession) -> None:
        if session.installed_coa is not None:
            self.emit(RemoveHao(self.hoa, session.peer, "out"))
            self.emit(RemoveRoute2(self.hoa, session.peer, "in"))
            session.installed_coa = None

    def _cn_ba(self, pkt: ReceivedPacket, session: CNSession, ba: BindingAcknowledgement) -> str:
        if session.kbm is None or session.auth_coa is None:
            return self._reject(reasons.UNSOLICITED)
        # Without cn_ack the session counts as bound once the BU left; the CN still answers a
        # refused BU (RFC 6275 9.5.4), and a BA 135 (it kept a newer number, 5.2.8) must make the
        # MN resend with the CN's number + 1 instead of believing it is bound. (With cn_ack the
        # MN waits for the answer in BU_SENT; a 135 while bound answers someone's replay.)
        bound_refused = (
            not self.config.cn_ack
            and session.state == RouteOptimisationState.BOUND
            and ba.status == BAStatus.SEQUENCE_OUT_OF_WINDOW
        )
        if session.state != RouteOptimisationState.BU_SENT and not bound_refused:
            return self._reject(reasons.UNSOLICITED)
        if ba.status in (
            BAStatus.EXPIRED_HOME_NONCE_INDEX,
            BAStatus.EXPIRED_COA_NONCE_INDEX,
            BAStatus.EXPIRED_NONCES,
        ):
            # Sent without an authenticator (the CN has no Kbm); only a hint to redo the test(s).
            if ba.seq != session.bul.seq:
                return self._reject(reasons.UNEXPECTED_SEQUENCE)
            self.cancel_timer(("cn_bu", session.peer))
            self.stats.inc(f"cn_refused_{ba.status}")
            self._start_rr(
                session,
                home=ba.status != BAStatus.EXPIRED_COA_NONCE_INDEX,
                careof=ba.status != BAStatus.EXPIRED_HOME_NONCE_INDEX,
            )
            return ACCEPTED
        if not verify(pkt.mh, session.kbm, session.auth_coa, session.peer):
            return self._reject(reasons.BAD_AUTHENTICATOR)
        if ba.status == BAStatus.SEQUENCE_OUT_OF_WINDOW:
            if session.resyncs >= _MAX_SEQ_RESYNCS:
                return self._reject(reasons.SEQUENCE_OUT_OF_WINDOW)
            session.resyncs += 1
            session.bul.seq = ba.seq
            self.cancel_timer(("cn_bu", session.peer))
            self._send_cn_bu(session)
            return ACCEPTED
        sent = session.bul.outstanding_sent(ba.seq)
        if sent is None:
            return self._reject(reasons.UNEXPECTED_SEQUENCE)
        if ba.seq != session.bul.seq:
            self.stats.inc("cn_ba_for_earlier_transmission")
        session.bul.acknowledged()
        self.cancel_timer(("cn_bu", session.peer))
        session.bul.last_status = ba.status
        if not ba.accepted:
            self.stats.inc(f"cn_refused_{ba.status}")
            session.state = RouteOptimisationState.FAILED
            self._uninstall_ro(session)
            return ACCEPTED
        self._cn_bound(session, ba.lifetime * LIFETIME_UNIT, sent)
        return ACCEPTED

    # ================================================================== status

    def status(self) -> dict[str, Any]:
        out = super().status()
        now = self.now()
        out.update(
            {
                "home_address": str(self.hoa),
                "home_agent": str(self.ha),
                "mode": self.config.mode,
                "location": self.location.value,
                "care_of_address": None if self.coa is None else str(self.coa),
                "binding_update_list": [self.home.to_dict(now)] + [s.to_dict(now) for s in self.cns.values()],
                "movement": self.detector.status(),
            }
        )
        return out
