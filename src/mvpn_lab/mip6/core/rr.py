"""Return routability cryptography (RFC 6275 5.2).

* keygen tokens: ``First(64, HMAC_SHA1(Kcn, address | nonce | 0))`` for the home address and
  ``... | 1)`` for the care-of address (the last item is one octet);
* ``Kbm = SHA1(home keygen token | care-of keygen token)``, or ``SHA1(home keygen token)`` when
  deregistering (care-of address equal to the home address, or lifetime zero);
* ``Authenticator = First(96, HMAC_SHA1(Kbm, care-of address | correspondent | MH Data))`` where
  MH Data is the Mobility Header with its checksum set to zero and without the authenticator
  itself. The Binding Authorization Data option must be the last option, with no padding after
  it (RFC 6275 9.5.1), so the authenticator is the last octets of the message.

The correspondent node's nonces live in :class:`NonceTable`: a fresh nonce every
``rotation_interval`` seconds, each one usable for ``MAX_NONCE_LIFETIME`` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from ipaddress import IPv6Address
from typing import TypeVar

from mvpn_lab.mip6.wire.constants import MAX_NONCE_LIFETIME, MAX_TOKEN_LIFETIME, OptionType
from mvpn_lab.mip6.wire.messages import (
    BindingAcknowledgement,
    BindingAuthorizationData,
    BindingUpdate,
    MobilityOption,
    encode_mh,
)

KCN_LENGTH = 20
NONCE_LENGTH = 8
TOKEN_LENGTH = 8
COOKIE_LENGTH = 8
AUTHENTICATOR_LENGTH = 12

HOME_TOKEN = 0
CAREOF_TOKEN = 1

RandomSource = Callable[[int], bytes]


def keygen_token(kcn: bytes, address: IPv6Address, nonce: bytes, which: int) -> bytes:
    """First 64 bits of HMAC_SHA1(Kcn, address | nonce | which), ``which`` 0 (home) or 1 (care-of)."""
    if which not in (HOME_TOKEN, CAREOF_TOKEN):
        raise ValueError("which must be 0 (home) or 1 (care-of)")
    mac = hmac.new(kcn, address.packed + nonce + bytes((which,)), hashlib.sha1).digest()
    return mac[:TOKEN_LENGTH]


def home_keygen_token(kcn: bytes, home_address: IPv6Address, nonce: bytes) -> bytes:
    return keygen_token(kcn, home_address, nonce, HOME_TOKEN)


def careof_keygen_token(kcn: bytes, careof_address: IPv6Address, nonce: bytes) -> bytes:
    return keygen_token(kcn, careof_address, nonce, CAREOF_TOKEN)


def binding_management_key(home_token: bytes, careof_token: bytes | None = None) -> bytes:
    """Kbm; pass no care-of token for a deregistration."""
    return hashlib.sha1(home_token + (careof_token or b"")).digest()


def authenticator(kbm: bytes, careof: IPv6Address, correspondent: IPv6Address, mh_data: bytes) -> bytes:
    return hmac.new(kbm, careof.packed + correspondent.packed + mh_data, hashlib.sha1).digest()[
        :AUTHENTICATOR_LENGTH
    ]


def authenticated_mh_data(raw_mh: bytes) -> bytes | None:
    """MH Data for the authenticator from a received message, or None if the layout is wrong.

    The last option must be a Binding Authorization Data option ending exactly at the end of the
    message; its authenticator octets are removed and the checksum is zeroed.
    """
    if len(raw_mh) < 8:
        return None
    total = (raw_mh[1] + 1) * 8
    if total > len(raw_mh):
        return None
    raw_mh = raw_mh[:total]
    start = total - AUTHENTICATOR_LENGTH - 2
    if start < 8:
        return None
    if raw_mh[start] != OptionType.BINDING_AUTH_DATA or raw_mh[start + 1] != AUTHENTICATOR_LENGTH:
        return None
    return raw_mh[:4] + b"\0\0" + raw_mh[6 : total - AUTHENTICATOR_LENGTH]


# the messages that carry a Binding Authorization Data option; sign() returns the type it is given
_Signed = TypeVar("_Signed", BindingUpdate, BindingAcknowledgement)


def sign(msg: _Signed, kbm: bytes, careof: IPv6Address, correspondent: IPv6Address) -> _Signed:
    """Return ``msg`` with a Binding Authorization Data option appended as the last option."""
    kept: tuple[MobilityOption, ...] = tuple(
        opt for opt in msg.options if not isinstance(opt, BindingAuthorizationData)
    )
    placeholder = replace(msg, options=(*kept, BindingAuthorizationData(bytes(AUTHENTICATOR_LENGTH))))
    data = authenticated_mh_data(encode_mh(placeholder))
    if data is None:  # only possible with hand-made padding in msg.options
        raise ValueError("cannot place the Binding Authorization Data option last")
    auth = authenticator(kbm, careof, correspondent, data)
    return replace(msg, options=(*kept, BindingAuthorizationData(auth)))


def verify(raw_mh: bytes, kbm: bytes, careof: IPv6Address, correspondent: IPv6Address) -> bool:
    """Check the authenticator at the end of a received message (constant-time compare)."""
    data = authenticated_mh_data(raw_mh)
    if data is None:
        return False
    total = (raw_mh[1] + 1) * 8
    received = bytes(raw_mh[total - AUTHENTICATOR_LENGTH : total])
    return hmac.compare_digest(received, authenticator(kbm, careof, correspondent, data))


@dataclass(frozen=True)
class Nonce:
    index: int
    value: bytes
    created: float


class NonceTable:
    """The correspondent node's nonces, indexed by a 16-bit nonce index.

    A new nonce is generated when the current one is older than ``rotation_interval``, or when it
    has less than MAX_TOKEN_LIFETIME of its validity left (RFC 6275 5.2.7: a token handed out must
    stay usable for MAX_TOKEN_LIFETIME, whatever the rotation interval); a nonce is valid for
    ``lifetime`` seconds after its creation (at most MAX_NONCE_LIFETIME).
    """

    def __init__(
        self, random: RandomSource, *, rotation_interval: float = 30.0, lifetime: float = MAX_NONCE_LIFETIME
    ) -> None:
        if rotation_interval <= 0 or lifetime <= 0:
            raise ValueError("rotation interval and lifetime must be positive")
        self._random = random
        self.rotation_interval = rotation_interval
        self.lifetime = min(lifetime, MAX_NONCE_LIFETIME)
        self._nonces: dict[int, Nonce] = {}
        self._current: Nonce | None = None
        self._next_index = struct.unpack("!H", random(2))[0]

    def current(self, now: float) -> Nonce:
        """The nonce to hand out now, rotating and pruning as needed."""
        fresh_enough = min(MAX_TOKEN_LIFETIME, self.lifetime)
        if (
            self._current is None
            or now - self._current.created >= self.rotation_interval
            or self.lifetime - (now - self._current.created) < fresh_enough
        ):
            index = self._next_index
            self._next_index = (index + 1) & 0xFFFF
            self._current = Nonce(index, self._random(NONCE_LENGTH), now)
            self._nonces[index] = self._current
        self.prune(now)
        return self._current

    def lookup(self, index: int, now: float) -> Nonce | None:
        """The nonce with ``index`` if it is still valid at ``now``."""
        nonce = self._nonces.get(index)
        if nonce is None or now - nonce.created > self.lifetime or now < nonce.created:
            return None
        return nonce

    def prune(self, now: float) -> None:
        for index in [i for i, n in self._nonces.items() if now - n.created > self.lifetime]:
            del self._nonces[index]

    def __len__(self) -> int:
        return len(self._nonces)


def new_cookie(random: RandomSource) -> bytes:
    return random(COOKIE_LENGTH)
