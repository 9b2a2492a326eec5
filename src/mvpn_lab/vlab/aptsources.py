"""Find the Debian mirror in the host's apt configuration.

The project never names a mirror host itself: the twin's image uses the
mirror the host already uses (``/etc/apt/sources.list`` and
``/etc/apt/sources.list.d/*.list|*.sources``), or the one given in
``MVPN_VLAB_MIRROR``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mvpn_lab.errors import LabError

SUITE = "bookworm"


@dataclass(frozen=True)
class AptSource:
    uri: str
    suite: str
    components: tuple[str, ...]

    def line(self) -> str:
        return f"deb {self.uri} {self.suite} {' '.join(self.components)}"


def _parse_list(text: str) -> list[AptSource]:
    sources = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        words = line.split()[1:]
        if words and words[0].startswith("["):  # options like [signed-by=...]
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = words[1:]
        if len(words) >= 3:
            sources.append(AptSource(words[0], words[1], tuple(words[2:])))
    return sources


def _parse_deb822(text: str) -> list[AptSource]:
    sources = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0] in " \t" and key:
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                sources.append(AptSource(uri, suite, tuple(fields.get("components", "").split())))
    return sources


def host_sources(root: Path = Path("/")) -> list[AptSource]:
    apt = root / "etc/apt"
    found: list[AptSource] = []
    main_list = apt / "sources.list"
    if main_list.is_file():
        found += _parse_list(main_list.read_text(errors="replace"))
    parts = apt / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                found += _parse_list(path.read_text(errors="replace"))
            elif path.suffix == ".sources":
                found += _parse_deb822(path.read_text(errors="replace"))
    return found


def debian_sources(root: Path = Path("/"), override: str | None = None) -> list[str]:
    """The ``deb`` lines the image is built from: bookworm main (+ updates, security)."""
    override = override if override is not None else os.environ.get("MVPN_VLAB_MIRROR")
    if override:
        return [f"deb {override} {SUITE} main", f"deb {override} {SUITE}-updates main"]
    wanted = {SUITE, f"{SUITE}-updates", f"{SUITE}-security", f"{SUITE}/updates"}
    lines = []
    for src in host_sources(root):
        if src.suite in wanted and "main" in src.components:
            line = AptSource(src.uri, src.suite, ("main",)).line()
            if line not in lines:
                lines.append(line)
    if not any(line.split()[2] == SUITE for line in lines):
        raise LabError(
            f"no Debian {SUITE} 'main' source found in the host's apt configuration (/etc/apt); "
            "set MVPN_VLAB_MIRROR to a Debian mirror URI"
        )
    return lines
