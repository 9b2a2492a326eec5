"""Reading a run folder: manifest.json, configurations, repetitions and events.json.

Layout (written by ``mvpn.lab.run_folder``)::

    results/<test>/<UTC-timestamp>/
      manifest.json
      <config-id>/rep-<NN>/mn.pcap      MN WLAN interface
      <config-id>/rep-<NN>/cn.pcap      CN backbone interface
      <config-id>/rep-<NN>/events.json  handovers (times in the MN's clock, direction) and transfer result

The files' schema is the collection's ``plugins/module_utils/runfolder.py`` (imported by name,
:func:`mvpn_lab.collection.module_utils`): manifest.json and events.json are read through it. A
folder written before the schema (no ``schema_version``) is read with a note; its handovers have no
``direction``, which then comes from the SSID they went to (the manifest's home SSID, else the
schema's rule for such folders).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from mvpn_lab.analysis.diagnostics import Diagnostics
from mvpn_lab.collection import module_utils
from mvpn_lab.errors import LabError
from mvpn_lab.vocabulary import DIRECTIONS, IPSEC_MODES, MIP6_MODES, Direction, IpsecMode, Mip6Mode, choose

CAPTURE_NAMES = {
    "mn": ("mn.pcap", "mn.pcapng", "mn.pcap.gz"),
    "cn": ("cn.pcap", "cn.pcapng", "cn.pcap.gz"),
}
_REP = re.compile(r"^rep-(\d+)$")


@dataclass(frozen=True)
class Configuration:
    id: str
    mip6: Mip6Mode
    ipsec: IpsecMode
    movement_detection: str  # "ra" | "l2" as recorded (an old folder may say otherwise)
    profile: str  # "wlan" | "gprs" | "umts"
    esp_spis: frozenset[int] | None = None  # None: not recorded
    # SPIs of the ESP SAs that carry the MN's Binding Updates to the HA and the HA's
    # Binding Acknowledgements (signalling protection): such a packet is that message.
    bu_spi: int | None = None
    ba_spi: int | None = None

    @property
    def route_optimisation(self) -> bool:
        return self.mip6 == "ro"


@dataclass(frozen=True)
class Addresses:
    home_address: bytes | None
    home_agent: bytes | None
    correspondent: bytes | None
    home_prefix: ipaddress.IPv6Network | None
    foreign_prefix: ipaddress.IPv6Network | None


@dataclass
class HandoverEvent:
    index: int
    t0: float
    from_ssid: str
    to_ssid: str
    associated_at: float | None
    direction: Direction


@dataclass
class Events:
    handovers: list[HandoverEvent] = field(default_factory=list)
    transfer: dict[str, Any] = field(default_factory=dict)
    #: tcpdump's counts per capture ("mn", "cn"): packets_captured, packets_received, packets_dropped
    capture_stats: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class Rep:
    config: Configuration
    number: int
    path: Path

    def capture(self, which: str) -> Path:
        """Path of the MN or CN capture (first existing of the accepted names)."""
        for name in CAPTURE_NAMES[which]:
            candidate = self.path / name
            if candidate.exists():
                return candidate
        return self.path / CAPTURE_NAMES[which][0]


@dataclass
class RunFolder:
    path: Path
    manifest: dict[str, Any]
    test: str
    run: str
    addresses: Addresses
    configurations: list[Configuration]
    reps: dict[str, list[Rep]]
    checksums: dict[str, str]
    #: the home network's SSID: how a handover without a recorded direction is told (old folders)
    home_ssid: str | None = None


def schema() -> ModuleType:
    """The run folder's schema (the collection's ``plugins/module_utils/runfolder.py``)."""
    return module_utils("runfolder")


def parse_config_id(config_id: str) -> dict[str, str]:
    """``mip6-ro_ipsec-none_md-l2`` -> {"mip6": "ro", "ipsec": "none", "md": "l2"}."""
    parts: dict[str, str] = {}
    for item in config_id.split("_"):
        key, sep, value = item.partition("-")
        if sep:
            parts[key] = value
    return parts


def _spi(raw: object) -> int | None:
    """An SPI as the manifest records it (a number, or a string in decimal or 0x hex), else None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        try:
            return int(raw, 16) if raw.lower().startswith("0x") else int(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, int) else None


def _config(entry: dict[str, Any], diag: Diagnostics, manifest_path: Path) -> Configuration | None:
    cid = str(entry.get("id", "")).strip()
    if not cid:
        diag.warn(manifest_path, "a configuration without an id was skipped")
        return None
    parsed = parse_config_id(cid)
    mip6_word = str(entry.get("mip6", parsed.get("mip6", ""))).lower()
    ipsec_word = str(entry.get("ipsec", parsed.get("ipsec", "none"))).lower()
    md = str(entry.get("movement_detection", parsed.get("md", "ra"))).lower()
    profile = str(entry.get("profile", parsed.get("profile", "wlan"))).lower()
    mip6 = choose(mip6_word, MIP6_MODES)
    if mip6 is None:
        diag.warn(manifest_path, f"configuration {cid}: mip6 {mip6_word!r} is not ro or bt; assuming ro")
        mip6 = "ro"
    ipsec = choose(ipsec_word, IPSEC_MODES)
    if ipsec is None:
        diag.warn(manifest_path, f"configuration {cid}: unknown ipsec mode {ipsec_word!r}; treating as none")
        ipsec = "none"
    spis: frozenset[int] | None = None
    raw_spis = entry.get("esp_spis")
    if raw_spis is not None:
        values = set()
        for raw in raw_spis if isinstance(raw_spis, list) else [raw_spis]:
            spi = _spi(raw)
            if spi is None:
                diag.warn(manifest_path, f"configuration {cid}: ESP SPI {raw!r} is not a number; ignored")
            else:
                values.add(spi)
        spis = frozenset(values)
    elif ipsec != "none":
        diag.warn(
            manifest_path,
            f"configuration {cid}: no esp_spis recorded; "
            "every ESP packet from the CN counts as transfer data",
        )
    sig = entry.get("signalling_spis")
    bu_spi = ba_spi = None
    if isinstance(sig, dict):
        parsed_sig: dict[str, int] = {}
        for name in ("bu", "ba"):
            raw = sig.get(name)
            spi = _spi(raw)
            if spi is not None:
                parsed_sig[name] = spi
            else:
                diag.warn(
                    manifest_path,
                    f"configuration {cid}: signalling_spis.{name} {raw!r} is not a number; ignored",
                )
        bu_spi, ba_spi = parsed_sig.get("bu"), parsed_sig.get("ba")
    elif sig is not None:
        diag.warn(manifest_path, f"configuration {cid}: signalling_spis is not a mapping (bu, ba); ignored")
    return Configuration(cid, mip6, ipsec, md, profile, spis, bu_spi, ba_spi)


def _address(value: Any) -> bytes | None:
    if not value:
        return None
    try:
        return ipaddress.IPv6Address(str(value).split("/")[0]).packed
    except ValueError:
        return None


def _network(value: Any) -> ipaddress.IPv6Network | None:
    if not value:
        return None
    try:
        return ipaddress.IPv6Network(str(value), strict=False)
    except ValueError:
        return None


def _checksums(manifest: dict[str, Any]) -> dict[str, str]:
    """Relative path -> sha256 from whichever shape the manifest uses."""
    found: dict[str, str] = {}
    for key in ("sha256", "files", "checksums"):
        value = manifest.get(key)
        if isinstance(value, dict):
            for path, digest in value.items():
                if isinstance(digest, dict):
                    digest = digest.get("sha256")
                if isinstance(digest, str) and re.fullmatch(r"[0-9a-fA-F]{64}", digest):
                    found[str(path).lstrip("./")] = digest.lower()
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and isinstance(item.get("sha256"), str) and item.get("path"):
                    found[str(item["path"]).lstrip("./")] = item["sha256"].lower()
    return found


def load_run(run_dir: Path | str, diag: Diagnostics) -> RunFolder:
    """Read a run folder's manifest and find its repetitions.

    Raises LabError (exit code 2) when the folder is not a usable run folder.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise LabError(f"{path}: not a directory", 2)
    runfolder = schema()
    manifest_path = path / runfolder.MANIFEST
    try:
        manifest, notes = runfolder.read_manifest(path)
    except runfolder.SchemaError as exc:
        raise LabError(str(exc), 2) from None
    home_ssid = runfolder.home_ssid(manifest)
    for note in notes:
        if home_ssid is None:
            home_ssid = runfolder.LEGACY_HOME_SSID
            note += f"; a handover without a direction counts as going home when it goes to {home_ssid}"
        diag.warn(manifest_path, note)
    raw_configs = manifest.get("configurations")
    if not isinstance(raw_configs, list) or not raw_configs:
        raise LabError(f"{manifest_path}: manifest lists no configurations", 2)
    configs: list[Configuration] = []
    for entry in raw_configs:
        if isinstance(entry, dict):
            config = _config(entry, diag, manifest_path)
            if config is not None:
                configs.append(config)
        else:
            diag.warn(manifest_path, "a configuration entry is not an object; skipped")
    raw_addr = manifest.get("addresses") if isinstance(manifest.get("addresses"), dict) else {}
    addresses = Addresses(
        _address(raw_addr.get("home_address")),
        _address(raw_addr.get("home_agent")),
        _address(raw_addr.get("correspondent")),
        _network(raw_addr.get("home_prefix")),
        _network(raw_addr.get("foreign_prefix")),
    )
    for name in ("home_address", "home_agent", "correspondent", "home_prefix", "foreign_prefix"):
        if not raw_addr.get(name):
            diag.warn(manifest_path, f"addresses.{name} missing; the analysis will be less selective")
    reps: dict[str, list[Rep]] = {}
    for config in configs:
        folder = path / config.id
        found = []
        if folder.is_dir():
            for child in folder.iterdir():
                match = _REP.match(child.name)
                if match and child.is_dir():
                    found.append(Rep(config, int(match.group(1)), child))
        if not found:
            diag.warn(folder, "no rep-NN folders for this configuration")
        reps[config.id] = sorted(found, key=lambda r: r.number)
    known = {c.id for c in configs}
    for child in sorted(path.iterdir()):
        if child.is_dir() and child.name not in known and any(_REP.match(c.name) for c in child.iterdir()):
            diag.warn(child, "configuration folder not listed in manifest.json; skipped")
    if not any(reps.values()):
        raise LabError(f"{path}: no rep-NN folders for any configuration", 2)
    test = str(manifest.get("test") or path.parent.name)
    run = str(manifest.get("run") or path.name)
    return RunFolder(path, manifest, test, run, addresses, configs, reps, _checksums(manifest), home_ssid)


def load_events(path: Path, diag: Diagnostics, home_ssid: str | None = None) -> Events | str:
    """Read events.json; return the reason slug if it cannot be used.

    A handover's direction is the one events.json records; for one without (a folder written before
    the run-folder schema), it is home when it went to ``home_ssid`` (the run folder's, see
    :class:`RunFolder`), else away. A file that does not follow the schema is warned about and read
    as far as it goes.
    """
    runfolder = schema()
    if not path.exists():
        diag.warn(path, "missing; the handovers of this repetition cannot be analysed")
        return "events.json-missing"
    try:
        data = runfolder.read_json(path)
    except runfolder.HostileJSON as exc:
        # NaN, Infinity, numbers beyond 64 bits, nesting too deep: no run writes that (exit 2)
        raise LabError(str(exc), 2) from None
    except runfolder.SchemaError as exc:
        diag.warn(path, f"unreadable ({runfolder.detail(exc, path)})")
        return "events.json-unreadable"
    if not isinstance(data.get("handovers"), list):
        diag.warn(path, "has no 'handovers' list")
        return "events.json-unreadable"
    times = []
    for i, item in enumerate(data["handovers"]):
        try:
            # the schema's rule: a boolean, negative or non-finite time is an error (exit 2), not
            # a handover 1.7e9 s long; missing, null or text: that handover is skipped (below)
            where = f"{path}: handovers[{i}]"
            times.append(
                (
                    runfolder.handover_time(item, "handover_at", where),
                    runfolder.handover_time(item, "associated_at", where),
                )
            )
        except runfolder.SchemaError as exc:
            raise LabError(str(exc), 2) from None
    if runfolder.version_of(data) >= 1:
        try:
            runfolder.check_events(data, path.name)
        except runfolder.SchemaError as exc:
            diag.warn(path, f"does not follow the run-folder schema: {exc}")
    if home_ssid is None:
        home_ssid = runfolder.LEGACY_HOME_SSID
    transfer = data.get("transfer")
    events = Events(transfer=transfer if isinstance(transfer, dict) else {})
    captures = data.get("captures")
    for role, stats in captures.items() if isinstance(captures, dict) else ():
        if isinstance(stats, dict):
            counts = {k: v for k, v in stats.items() if isinstance(v, int) and not isinstance(v, bool)}
            events.capture_stats[str(role)] = counts
    raw = []
    for i, (item, (t0, assoc_f)) in enumerate(zip(data["handovers"], times, strict=True)):
        if t0 is None:
            diag.warn(path, f"handover {i + 1} has no numeric handover_at; skipped")
            continue
        to_ssid = str(item.get("to_ssid", ""))
        direction = choose(item.get("direction"), DIRECTIONS)
        if direction is None:
            direction = "home" if to_ssid == home_ssid else "away"
        raw.append((t0, str(item.get("from_ssid", "")), to_ssid, assoc_f, direction))
    raw.sort(key=lambda r: r[0])
    events.handovers = [HandoverEvent(i, *r) for i, r in enumerate(raw)]
    return events
