"""Protocol numbers, message types, status codes and timers of Mobile IPv6 (RFC 6275)."""

from __future__ import annotations

from enum import IntEnum

# IPv6 next-header values the daemon cares about.
IPPROTO_HOPOPTS = 0
IPPROTO_IPV6 = 41
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_ESP = 50
IPPROTO_AH = 51
IPPROTO_ICMPV6 = 58
IPPROTO_NONE = 59
IPPROTO_DSTOPTS = 60
IPPROTO_MH = 135

# Destination option type of the Home Address option (RFC 6275 6.3).
OPT_HOME_ADDRESS = 0xC9
# Routing header type 2 (RFC 6275 6.4).
ROUTING_TYPE_2 = 2


class MHType(IntEnum):
    """Mobility Header message types (RFC 6275 6.1)."""

    BRR = 0
    HOTI = 1
    COTI = 2
    HOT = 3
    COT = 4
    BU = 5
    BA = 6
    BE = 7


class OptionType(IntEnum):
    """Mobility options (RFC 6275 6.2)."""

    PAD1 = 0
    PADN = 1
    BINDING_REFRESH_ADVICE = 2
    ALTERNATE_COA = 3
    NONCE_INDICES = 4
    BINDING_AUTH_DATA = 5


class BAStatus(IntEnum):
    """Binding Acknowledgement status codes (RFC 6275 6.1.8). Values below 128 mean accepted."""

    ACCEPTED = 0
    REASON_UNSPECIFIED = 128
    ADMINISTRATIVELY_PROHIBITED = 129
    INSUFFICIENT_RESOURCES = 130
    HOME_REGISTRATION_NOT_SUPPORTED = 131
    NOT_HOME_SUBNET = 132
    NOT_HOME_AGENT_FOR_THIS_MN = 133
    DAD_FAILED = 134
    SEQUENCE_OUT_OF_WINDOW = 135
    EXPIRED_HOME_NONCE_INDEX = 136
    EXPIRED_COA_NONCE_INDEX = 137
    EXPIRED_NONCES = 138
    REGISTRATION_TYPE_CHANGE_DISALLOWED = 139


class BEStatus(IntEnum):
    """Binding Error status codes (RFC 6275 6.1.9)."""

    UNKNOWN_BINDING_FOR_HAO = 1
    UNRECOGNIZED_MH_TYPE = 2


def ba_status_name(status: int) -> str:
    try:
        return BAStatus(status).name.lower()
    except ValueError:
        return "accepted_other" if status < 128 else f"status_{status}"


# Lifetimes in BU, BA and the Binding Refresh Advice option count units of 4 seconds.
LIFETIME_UNIT = 4
MAX_LIFETIME_UNITS = 0xFFFF
MAX_LIFETIME_SECONDS = MAX_LIFETIME_UNITS * LIFETIME_UNIT

# Protocol constants (RFC 6275 12).
INITIAL_BINDACK_TIMEOUT = 1.0
MAX_BINDACK_TIMEOUT = 32.0
MAX_NONCE_LIFETIME = 240.0
MAX_TOKEN_LIFETIME = 210.0
MAX_RR_BINDING_LIFETIME = 420
MAX_UPDATE_RATE = 3  # per second
# Configuration variable default (RFC 6275 13).
INITIAL_BINDACK_TIMEOUT_FIRST_REG = 1.5

# Sequence numbers are 16 bit and compared modulo 2**16 (RFC 6275 9.5.1, RFC 1982 style).
SEQ_MODULUS = 1 << 16
SEQ_HALF = 1 << 15
