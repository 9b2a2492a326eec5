"""Find the Debian mirror in the host's apt configuration.

The project never names a mirror host itself: the twin's image uses the
mirror the host already uses (``/etc/apt/sources.list`` and
``/etc/apt/sources.list.d/*.list|*.sources``), or the one given in
``MVPN_VLAB_MIRROR``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from mvpn_lab.errors import LabError

SUITE = "bookworm"

#: Debian's own archive keyrings (debian-archive-keyring.gpg, debian-archive-bookworm-*.gpg).
DEBIAN_KEYRING = "debian-archive"


@dataclass(frozen=True)
class AptSource:
    uri: str
    suite: str
    components: tuple[str, ...]
    #: The source's signed-by option: keyring paths or fingerprints, empty when not set.
    signed_by: str = ""

    def line(self) -> str:
        return f"deb {self.uri} {self.suite} {' '.join(self.components)}"


def _parse_list(text: str) -> list[AptSource]:
    sources = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        options: list[str] = []
        if words and words[0].startswith("["):  # options like [signed-by=...]
            while words and not words[0].endswith("]"):
                options.append(words.pop(0))
            options.append(words.pop(0) if words else "")
        signed_by = ""
        for option in " ".join(options).strip("[] ").split():
            key, _, value = option.partition("=")
            if key.lower() == "signed-by":
                signed_by = value
        if len(words) >= 3:
            sources.append(AptSource(words[0], words[1], tuple(words[2:]), signed_by))
    return sources


def _parse_deb822(text: str) -> list[AptSource]:
    sources = []
    # Stanzas are separated by empty lines, which may hold spaces or tabs.
    for stanza in re.split(r"\n[ \t]*\n", text):
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
        components = tuple(fields.get("components", "").split())
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                sources.append(AptSource(uri, suite, components, fields.get("signed-by", "")))
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
    """The ``deb`` lines the image is built from: bookworm main (+ updates, security).

    A source signed by another keyring than Debian's (a third-party repository that
    also names its suite ``bookworm``, such as apt.releases.hashicorp.com) is not used.
    """
    override = override if override is not None else os.environ.get("MVPN_VLAB_MIRROR")
    if override:
        return [f"deb {override} {SUITE} main", f"deb {override} {SUITE}-updates main"]
    wanted = {SUITE, f"{SUITE}-updates", f"{SUITE}-security", f"{SUITE}/updates"}
    lines = []
    for src in host_sources(root):
        if src.signed_by and DEBIAN_KEYRING not in src.signed_by:
            continue
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
