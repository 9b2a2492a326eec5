"""Per-node YAML configuration of the Mobile IPv6 daemon.

One file per node; ``role`` picks the schema (``mn``, ``ha`` or ``cn``). Every problem is
reported as one :class:`ConfigError` line that names the field, e.g.
``config field 'home_agent': not an IPv6 address: 'x'``. Unknown fields are errors (a typo must
not silently fall back to a default). See docs/mip6.md for the full reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mvpn_lab.errors import LabError
from mvpn_lab.mip6.wire.constants import (
    INITIAL_BINDACK_TIMEOUT_FIRST_REG,
    MAX_BINDACK_TIMEOUT,
    MAX_LIFETIME_SECONDS,
    MAX_NONCE_LIFETIME,
    MAX_RR_BINDING_LIFETIME,
)
from mvpn_lab.vocabulary import MIP6_MODES, MOVEMENT_DETECTIONS, Mip6Mode, MovementDetection, choose


def prefix_cache_applies(movement_detection: str) -> bool:
    """The rule, written once: the prefix cache works with link-layer movement detection only
    (``l2``: the cached prefix is used at link-up, before any RA; ``ra`` waits for the RA anyway)."""
    return movement_detection == "l2"


ROLES = ("mn", "ha", "cn")
DEFAULT_RUN_DIR = "/run/mvpn-lab"
HA_TUNNEL_SUFFIX = 6  # hex digits the home agent appends to tunnel_name per care-of address

_Word = TypeVar("_Word", bound=str)


class ConfigError(LabError):
    """An invalid configuration file; the message is one line naming the field."""


def _fail(name: str, problem: str) -> ConfigError:
    return ConfigError(f"config field '{name}': {problem}")


@dataclass(frozen=True)
class MNConfig:
    home_address: IPv6Address
    home_agent: IPv6Address
    name: str = "mn"
    home_prefix_len: int = 64
    mode: Mip6Mode = "bt"  # "bt": bidirectional tunnelling; "ro": route optimisation with correspondents
    correspondents: tuple[IPv6Address, ...] = ()
    home_lifetime: int = 3600  # seconds requested from the home agent
    cn_lifetime: int = MAX_RR_BINDING_LIFETIME  # seconds requested from correspondents
    refresh_fraction: float = 0.8  # re-register after this share of the granted lifetime
    movement_detection: MovementDetection = "ra"  # "ra": wait for an unsolicited RA; "l2": act on link-up
    optimistic_dad: bool = False
    prefix_cache: bool = False  # remember the prefix of each network (needs movement_detection l2)
    prefix_cache_file: str | None = None  # JSON file keeping that cache across daemon restarts
    interfaces: tuple[str, ...] = ()
    use_alt_coa: bool = True  # put the care-of address in an Alternate CoA option of home BUs
    cn_ack: bool = False  # ask correspondents for a Binding Acknowledgement
    require_ipsec: bool = True  # accept only ESP-protected BAs from the home agent
    initial_bindack_timeout_first_reg: float = INITIAL_BINDACK_TIMEOUT_FIRST_REG
    link_local_compat: bool = False  # L flag in home registrations
    cn_max_attempts: int = 5  # RR/BU transmissions to a correspondent before falling back to the tunnel
    log_file: str | None = None
    # ---- daemon (``mvpn-lab mip6 run``), see docs/mip6.md
    tunnel_name: str = "mip6tnl"  # the ip6ip6 tunnel to the home agent
    table: int = 100  # routing table of the reverse tunnel (policy rule "from HOA")
    rule_priority: int = 1000  # priority of that rule
    tcp_recovery: bool = False  # elicit duplicate ACKs towards correspondents after a handover
    esp_policy_installed: bool = False  # main-type xfrm policies require ESP for MN-HA signalling
    deregister_on_exit: bool = True  # SIGTERM while away: lifetime-0 BU to the home agent first
    cleanup_on_exit: bool = True  # remove the tunnel, routes and xfrm entries the daemon made
    control_socket: str | None = None  # default /run/mvpn-lab/mip6-NAME.sock
    daemon_log: str | None = None  # daemon events and errors (JSON lines); default stderr
    role: str = field(default="mn", init=False)

    @property
    def home_prefix(self) -> IPv6Network:
        return IPv6Network((self.home_address, self.home_prefix_len), strict=False)


@dataclass(frozen=True)
class HAConfig:
    address: IPv6Address
    home_prefix: IPv6Network
    allowed_mobile_nodes: tuple[IPv6Address, ...] | None  # None: any home address in the prefix
    name: str = "ha"
    max_binding_lifetime: int = 3600
    require_ipsec: bool = True  # count and drop BUs that did not arrive ESP-protected
    perform_dad: bool = True  # DAD for the home address before accepting a first registration
    binding_refresh_advice: bool = True  # Binding Refresh Advice option in accepting BAs
    interface: str | None = None  # the home link
    log_file: str | None = None
    # ---- daemon (``mvpn-lab mip6 run``), see docs/mip6.md
    tunnel_name: str = "mip6ha"  # prefix of the per-care-of-address tunnels (+ 6 hex digits)
    esp_policy_installed: bool = False  # main-type xfrm policies require ESP for MN-HA signalling
    # Hold packets for a mobile node from the moment it leaves the home link's access point until
    # its Binding Update arrives (docs/mip6.md, "Handover buffer")
    handover_buffer: bool = False
    hostapd_control: str | None = None  # hostapd's control socket of the home link's access point
    buffer_packets: int = 32  # packets held per mobile node at most
    buffer_hold: float = 3.0  # seconds a hold lasts at most without a Binding Update
    buffer_device: str = "mip6buf"  # the TUN device the held packets are routed to
    cleanup_on_exit: bool = True
    control_socket: str | None = None
    daemon_log: str | None = None
    role: str = field(default="ha", init=False)

    def allows(self, home_address: IPv6Address) -> bool:
        return self.allowed_mobile_nodes is None or home_address in self.allowed_mobile_nodes


@dataclass(frozen=True)
class CNConfig:
    address: IPv6Address
    name: str = "cn"
    nonce_rotation: float = 30.0  # seconds between new nonces
    max_binding_lifetime: int = MAX_RR_BINDING_LIFETIME
    send_binding_errors: bool = True
    log_file: str | None = None
    # ---- daemon (``mvpn-lab mip6 run``), see docs/mip6.md
    cleanup_on_exit: bool = True
    control_socket: str | None = None
    daemon_log: str | None = None
    role: str = field(default="cn", init=False)


NodeConfig = MNConfig | HAConfig | CNConfig


# --------------------------------------------------------------------------- field parsers


def _ipv6(name: str, value: Any) -> IPv6Address:
    if not isinstance(value, str):
        raise _fail(name, f"expected an IPv6 address, got {type(value).__name__}")
    try:
        return IPv6Address(value.strip())
    except ValueError:
        raise _fail(name, f"not an IPv6 address: {value!r}") from None


def _unicast(name: str, value: Any) -> IPv6Address:
    addr = _ipv6(name, value)
    if addr.is_multicast or addr.is_unspecified or addr.is_loopback or addr.is_link_local:
        raise _fail(name, f"{addr} is not a global unicast address")
    return addr


def _network(name: str, value: Any) -> IPv6Network:
    if not isinstance(value, str):
        raise _fail(name, f"expected an IPv6 prefix like 2001:db8:1::/64, got {type(value).__name__}")
    try:
        return IPv6Network(value.strip(), strict=True)
    except ValueError as exc:
        raise _fail(name, f"not an IPv6 prefix: {value!r} ({exc})") from None


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(name, f"expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise _fail(name, f"{value} is outside {lo}..{hi}")
    return value


def _float(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, f"expected a number, got {value!r}")
    if not lo <= value <= hi:
        raise _fail(name, f"{value} is outside {lo}..{hi}")
    return float(value)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(name, f"expected true or false, got {value!r}")
    return value


def _choice(name: str, value: Any, choices: tuple[_Word, ...]) -> _Word:
    chosen = choose(value, choices)
    if chosen is None:
        raise _fail(name, f"expected one of {', '.join(choices)}, got {value!r}")
    return chosen


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(name, f"expected a non-empty string, got {value!r}")
    return value


def _list(name: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(name, f"expected a list, got {type(value).__name__}")
    return value


def _ifname(name: str, value: Any, max_len: int = 15) -> str:
    text = _str(name, value)
    if len(text) > max_len or not re.fullmatch(r"[A-Za-z0-9_.-]+", text) or text in (".", ".."):
        raise _fail(name, f"not an interface name of at most {max_len} characters: {value!r}")
    return text


def _path(name: str, value: Any) -> str:
    text = _str(name, value)
    if not text.startswith("/") or "\0" in text:
        raise _fail(name, f"expected an absolute path, got {value!r}")
    return text


def _address_list(name: str, value: Any) -> tuple[IPv6Address, ...]:
    items = _list(name, value)
    out = tuple(_unicast(f"{name}[{i}]", item) for i, item in enumerate(items))
    if len(set(out)) != len(out):
        raise _fail(name, "lists an address twice")
    return out


# --------------------------------------------------------------------------- schemas

_COMMON = {"role", "name", "log_file", "control_socket", "daemon_log", "cleanup_on_exit"}
_MN_FIELDS = _COMMON | {
    "home_address",
    "home_agent",
    "home_prefix_len",
    "mode",
    "correspondents",
    "home_lifetime",
    "cn_lifetime",
    "refresh_fraction",
    "movement_detection",
    "optimistic_dad",
    "prefix_cache",
    "prefix_cache_file",
    "interfaces",
    "use_alt_coa",
    "cn_ack",
    "require_ipsec",
    "initial_bindack_timeout_first_reg",
    "link_local_compat",
    "cn_max_attempts",
    "tunnel_name",
    "table",
    "rule_priority",
    "tcp_recovery",
    "esp_policy_installed",
    "deregister_on_exit",
}
_HA_FIELDS = _COMMON | {
    "address",
    "home_prefix",
    "allowed_mobile_nodes",
    "max_binding_lifetime",
    "require_ipsec",
    "perform_dad",
    "binding_refresh_advice",
    "interface",
    "tunnel_name",
    "esp_policy_installed",
    "handover_buffer",
    "hostapd_control",
    "buffer_packets",
    "buffer_hold",
    "buffer_device",
}
_CN_FIELDS = _COMMON | {"address", "nonce_rotation", "max_binding_lifetime", "send_binding_errors"}
_SCHEMAS = {"mn": _MN_FIELDS, "ha": _HA_FIELDS, "cn": _CN_FIELDS}
_REQUIRED = {
    "mn": ("home_address", "home_agent"),
    "ha": ("address", "home_prefix", "allowed_mobile_nodes"),
    "cn": ("address",),
}


def _common(data: dict[str, Any], role: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": _str("name", data.get("name", role))}
    if data.get("log_file") is not None:
        out["log_file"] = _str("log_file", data["log_file"])
    if data.get("daemon_log") is not None:
        out["daemon_log"] = _str("daemon_log", data["daemon_log"])
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", out["name"]):
        # the name is part of the default control socket path
        raise _fail("name", f"use letters, digits, '.', '_' or '-' only, got {out['name']!r}")
    socket_path = data.get("control_socket")
    if socket_path is None:
        socket_path = f"{DEFAULT_RUN_DIR}/mip6-{out['name']}.sock"
    out["control_socket"] = _path("control_socket", socket_path)
    if "cleanup_on_exit" in data:
        out["cleanup_on_exit"] = _bool("cleanup_on_exit", data["cleanup_on_exit"])
    return out


def _parse_mn(data: dict[str, Any]) -> MNConfig:
    kw = _common(data, "mn")
    kw["home_address"] = _unicast("home_address", data["home_address"])
    kw["home_agent"] = _unicast("home_agent", data["home_agent"])
    plen = kw["home_prefix_len"] = _int("home_prefix_len", data.get("home_prefix_len", 64), 1, 127)
    prefix = IPv6Network((kw["home_address"], plen), strict=False)
    if kw["home_agent"] not in prefix:
        raise _fail("home_agent", f"{kw['home_agent']} is not in the home prefix {prefix}")
    if kw["home_agent"] == kw["home_address"]:
        raise _fail("home_agent", "equals the home address")
    kw["mode"] = _choice("mode", data.get("mode", "bt"), MIP6_MODES)
    kw["correspondents"] = _address_list("correspondents", data.get("correspondents", []))
    if kw["correspondents"] and kw["mode"] != "ro":
        raise _fail("correspondents", "route optimisation peers need mode: ro")
    for i, cn in enumerate(kw["correspondents"]):
        if cn in (kw["home_address"], kw["home_agent"]):
            raise _fail(f"correspondents[{i}]", f"{cn} is this node or its home agent")
    kw["home_lifetime"] = _int("home_lifetime", data.get("home_lifetime", 3600), 4, MAX_LIFETIME_SECONDS)
    kw["cn_lifetime"] = _int(
        "cn_lifetime", data.get("cn_lifetime", MAX_RR_BINDING_LIFETIME), 4, MAX_RR_BINDING_LIFETIME
    )
    kw["refresh_fraction"] = _float("refresh_fraction", data.get("refresh_fraction", 0.8), 0.1, 0.95)
    md = kw["movement_detection"] = _choice(
        "movement_detection", data.get("movement_detection", "ra"), MOVEMENT_DETECTIONS
    )
    kw["optimistic_dad"] = _bool("optimistic_dad", data.get("optimistic_dad", md == "l2"))
    kw["prefix_cache"] = _bool("prefix_cache", data.get("prefix_cache", False))
    if kw["prefix_cache"] and not prefix_cache_applies(md):
        raise _fail("prefix_cache", "needs movement_detection: l2")
    if data.get("prefix_cache_file") is not None:
        kw["prefix_cache_file"] = _path("prefix_cache_file", data["prefix_cache_file"])
    ifaces = _list("interfaces", data.get("interfaces", []))
    kw["interfaces"] = tuple(_ifname(f"interfaces[{i}]", v) for i, v in enumerate(ifaces))
    for key in ("use_alt_coa", "cn_ack", "require_ipsec", "link_local_compat"):
        if key in data:
            kw[key] = _bool(key, data[key])
    kw["initial_bindack_timeout_first_reg"] = _float(
        "initial_bindack_timeout_first_reg",
        data.get("initial_bindack_timeout_first_reg", INITIAL_BINDACK_TIMEOUT_FIRST_REG),
        0.1,
        MAX_BINDACK_TIMEOUT,
    )
    kw["cn_max_attempts"] = _int("cn_max_attempts", data.get("cn_max_attempts", 5), 1, 100)
    if "tunnel_name" in data:
        kw["tunnel_name"] = _ifname("tunnel_name", data["tunnel_name"])
    if "table" in data:
        kw["table"] = _int("table", data["table"], 1, 2**32 - 1)
        if kw["table"] in (253, 254, 255):
            raise _fail("table", f"{kw['table']} is a reserved table (default, main, local)")
    if "rule_priority" in data:
        kw["rule_priority"] = _int("rule_priority", data["rule_priority"], 1, 32765)
    for key in ("tcp_recovery", "esp_policy_installed", "deregister_on_exit"):
        if key in data:
            kw[key] = _bool(key, data[key])
    return MNConfig(**kw)


def _parse_ha(data: dict[str, Any]) -> HAConfig:
    kw = _common(data, "ha")
    kw["home_prefix"] = prefix = _network("home_prefix", data["home_prefix"])
    if prefix.prefixlen >= 128:
        raise _fail("home_prefix", "must be shorter than /128")
    kw["address"] = _unicast("address", data["address"])
    if kw["address"] not in prefix:
        raise _fail("address", f"{kw['address']} is not in home_prefix {prefix}")
    allowed = data["allowed_mobile_nodes"]
    if allowed == "any":
        kw["allowed_mobile_nodes"] = None
    else:
        if isinstance(allowed, str):
            raise _fail("allowed_mobile_nodes", "expected a list of home addresses or the word any")
        nodes = _address_list("allowed_mobile_nodes", allowed)
        for i, hoa in enumerate(nodes):
            if hoa not in prefix:
                raise _fail(f"allowed_mobile_nodes[{i}]", f"{hoa} is not in home_prefix {prefix}")
            if hoa == kw["address"]:
                raise _fail(f"allowed_mobile_nodes[{i}]", "is the home agent's own address")
        kw["allowed_mobile_nodes"] = nodes
    kw["max_binding_lifetime"] = _int(
        "max_binding_lifetime", data.get("max_binding_lifetime", 3600), 4, MAX_LIFETIME_SECONDS
    )
    for key in ("require_ipsec", "perform_dad", "binding_refresh_advice"):
        if key in data:
            kw[key] = _bool(key, data[key])
    if data.get("interface") is not None:
        kw["interface"] = _ifname("interface", data["interface"])
    if "tunnel_name" in data:
        kw["tunnel_name"] = _ifname("tunnel_name", data["tunnel_name"], max_len=15 - HA_TUNNEL_SUFFIX)
    if "esp_policy_installed" in data:
        kw["esp_policy_installed"] = _bool("esp_policy_installed", data["esp_policy_installed"])
    if "handover_buffer" in data:
        kw["handover_buffer"] = _bool("handover_buffer", data["handover_buffer"])
    if data.get("hostapd_control") is not None:
        kw["hostapd_control"] = _path("hostapd_control", data["hostapd_control"])
    kw["buffer_packets"] = _int("buffer_packets", data.get("buffer_packets", 32), 1, 4096)
    kw["buffer_hold"] = _float("buffer_hold", data.get("buffer_hold", 3.0), 0.1, 60.0)
    if "buffer_device" in data:
        kw["buffer_device"] = _ifname("buffer_device", data["buffer_device"])
        if kw["buffer_device"] == kw.get("interface"):
            raise _fail("buffer_device", f"{kw['buffer_device']} is the home link")
    return HAConfig(**kw)


def _parse_cn(data: dict[str, Any]) -> CNConfig:
    kw = _common(data, "cn")
    kw["address"] = _unicast("address", data["address"])
    kw["nonce_rotation"] = _float("nonce_rotation", data.get("nonce_rotation", 30.0), 1.0, MAX_NONCE_LIFETIME)
    kw["max_binding_lifetime"] = _int(
        "max_binding_lifetime",
        data.get("max_binding_lifetime", MAX_RR_BINDING_LIFETIME),
        4,
        MAX_RR_BINDING_LIFETIME,
    )
    if "send_binding_errors" in data:
        kw["send_binding_errors"] = _bool("send_binding_errors", data["send_binding_errors"])
    return CNConfig(**kw)


def parse_config(data: Any) -> NodeConfig:
    """Validate a mapping (already loaded from YAML) into the role's config dataclass."""
    if not isinstance(data, dict):
        raise ConfigError("config: expected a mapping of fields at the top level")
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"config: field names must be strings, got {key!r}")
    role = _choice("role", data.get("role"), ROLES)
    unknown = sorted(set(data) - _SCHEMAS[role])
    if unknown:
        raise _fail(unknown[0], f"unknown field for role {role}")
    for key in _REQUIRED[role]:
        if data.get(key) is None:
            raise _fail(key, f"required for role {role}")
    if role == "mn":
        return _parse_mn(data)
    if role == "ha":
        return _parse_ha(data)
    return _parse_cn(data)


def check_daemon_config(cfg: NodeConfig) -> None:
    """What ``mip6 run`` needs beyond a valid file; raises one :class:`ConfigError` line."""
    if isinstance(cfg, MNConfig):
        if not cfg.interfaces:
            raise _fail("interfaces", "the daemon needs at least one interface to watch")
        if cfg.tunnel_name in cfg.interfaces:
            raise _fail("tunnel_name", f"{cfg.tunnel_name} is also listed in interfaces")
    if isinstance(cfg, HAConfig) and cfg.interface is None:
        raise _fail("interface", "the daemon needs the home link (for proxy neighbour discovery)")
    if isinstance(cfg, HAConfig) and cfg.handover_buffer and cfg.hostapd_control is None:
        raise _fail(
            "hostapd_control",
            "handover_buffer needs the control socket of the home link's hostapd "
            "(it tells when a mobile node leaves)",
        )
    if isinstance(cfg, MNConfig | HAConfig) and cfg.require_ipsec and not cfg.esp_policy_installed:
        raise _fail(
            "esp_policy_installed",
            "require_ipsec is true but the ESP policy for Mobility Header signalling is not declared "
            "installed (install it and set esp_policy_installed: true, or set require_ipsec: false)",
        )


def control_socket_path(cfg: NodeConfig) -> str:
    return cfg.control_socket or f"{DEFAULT_RUN_DIR}/mip6-{cfg.name}.sock"


def load_config(path: str | Path) -> NodeConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path}: invalid YAML{where}") from None
    return parse_config(data)


def config_to_dict(cfg: NodeConfig) -> dict[str, Any]:
    """JSON-able view (addresses as text) for ``check-config``."""
    out: dict[str, Any] = {}
    for key, value in cfg.__dict__.items():
        if isinstance(value, IPv6Address | IPv6Network):
            value = str(value)
        elif isinstance(value, tuple):
            value = [str(v) for v in value]
        out[key] = value
    if isinstance(cfg, HAConfig) and cfg.allowed_mobile_nodes is None:
        out["allowed_mobile_nodes"] = "any"
    return out
