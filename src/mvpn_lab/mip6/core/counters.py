"""Counters keyed by reason (rejected messages) or by event (messages sent and received)."""

from __future__ import annotations

from collections import Counter


class Counters:
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def inc(self, key: str, n: int = 1) -> None:
        self._counts[key] += n

    def get(self, key: str) -> int:
        return self._counts.get(key, 0)

    def __getitem__(self, key: str) -> int:
        return self.get(key)

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))


# Reasons for rejecting a received message. Keys of the ``rejected`` counters in ``status()``.
MALFORMED = "malformed"  # MHDecodeError from the decoder
BAD_CHECKSUM = "bad_checksum"
UNPROTECTED = "unprotected"  # BU/BA between MN and HA without ESP while required
UNEXPECTED_MESSAGE = "unexpected_message"  # a type this role does not handle
INVALID_HOME_ADDRESS = "invalid_home_address"
INVALID_CAREOF_ADDRESS = "invalid_careof_address"
NOT_HOME_REGISTRATION = "not_home_registration"  # HA got a BU without H
HOME_REGISTRATION_NOT_SUPPORTED = "home_registration_not_supported"  # CN got a BU with H
NOT_HOME_SUBNET = "not_home_subnet"
UNKNOWN_MOBILE_NODE = "unknown_mobile_node"
SEQUENCE_OUT_OF_WINDOW = "sequence_out_of_window"
NO_BINDING_TO_DELETE = "no_binding_to_delete"
DAD_FAILED = "dad_failed"
MISSING_RR_OPTIONS = "missing_rr_options"
EXPIRED_NONCE = "expired_nonce_index"
BAD_AUTHENTICATOR = "bad_authenticator"
HAO_WITHOUT_BINDING = "hao_without_binding"
HAO_NOT_ALLOWED = "hao_not_allowed"  # HoTI/CoTI must not carry a Home Address option
WRONG_DESTINATION = "wrong_destination"
UNEXPECTED_SOURCE = "unexpected_source"
UNMATCHED_COOKIE = "unmatched_cookie"
UNEXPECTED_SEQUENCE = "unexpected_sequence"
NOT_VIA_TUNNEL = "not_via_tunnel"  # HoT that did not arrive through the home agent tunnel
UNSOLICITED = "unsolicited"  # BA/HoT/CoT/BRR with nothing outstanding
RATE_LIMITED = "rate_limited"
BAD_PAYLOAD_PROTO = "bad_payload_proto"  # Payload Proto other than 59 (RFC 6275 6.1.1)
INVALID_OPTIONS = "invalid_options"  # two Alternate CoA options, options after the authenticator
RR_OPTIONS_IN_HOME_REGISTRATION = "rr_options_in_home_registration"  # Nonce Indices/BAD to the HA
REGISTRATION_TYPE_CHANGE = "registration_type_change"  # H flag differs from the binding (BA 139)
