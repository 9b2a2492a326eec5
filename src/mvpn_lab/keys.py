"""``mvpn-lab keys ...``: the lab's manual IPsec keys, as one vault-ready YAML file.

* ``keys generate FILE [--force] [--suite paper|aead|both]`` writes fresh random keys (Python's
  :mod:`secrets`) for the six security associations of the testbed into FILE (mode 0600, written
  atomically, never over an existing file without ``--force``). Then encrypt it:
  ``ansible-vault encrypt FILE``. The file must stay out of the repository.
* ``keys check FILE`` validates a decrypted key file (``-`` reads stdin, e.g.
  ``ansible-vault view FILE | mvpn-lab keys check -``): every SA present, SPIs distinct, every
  key hex and of the right length for its suite. Errors are one line naming the field.

The file holds one variable, ``mvpn_ipsec_keys``, read by the ``mvpn.lab.ipsec`` role::

    mvpn_ipsec_keys:
      cn_to_mn:                  # ESP transport, CN -> MN home address
        spi: "0x00001001"        # not secret; distinct per SA
        enc_key: "<32 hex>"      # suite paper: cbc(aes), 128 bits
        auth_key: "<40 hex>"     # suite paper: hmac(sha1), 160 bits
        aead_key: "<40 hex>"     # suite aead: rfc4106(gcm(aes)), 128-bit key + 32-bit salt
      ...

Nothing here ever prints key material: messages name fields and lengths, never values.
See docs/ipsec.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import re
import secrets
import shlex
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mvpn_lab import collection
from mvpn_lab.errors import LabError

VARIABLE = "mvpn_ipsec_keys"

# The testbed's SAs (paper: Mobile VPN = MIPv6 + manually keyed ESP), in file order, with what
# each protects. The role installs them by these names.
SA_DESCRIPTIONS: dict[str, str] = {
    "cn_to_mn": "ESP transport mode, CN backbone address -> MN home address (TCP)",
    "mn_to_cn": "ESP transport mode, MN home address -> CN backbone address (TCP)",
    "cn_to_mn_tunnel": "ESP tunnel mode, CN -> MN home address (inner: olympus0 -> nemo0 prefix)",
    "mn_to_cn_tunnel": "ESP tunnel mode, MN home address -> CN (inner: nemo0 -> olympus0 prefix)",
    "mn_to_ha": "ESP transport mode, MN home address -> HA: Binding Updates (RFC 3776/4877)",
    "ha_to_mn": "ESP transport mode, HA -> MN home address: Binding Acknowledgements",
}
# The SA names, their SPI numbering and the suites' key lengths have one owner, the collection's
# plugins/module_utils/suites.py, which the xfrm_state module and the lab model read too.
_SUITES_TABLE = collection.module_utils("suites")
SA_NAMES: tuple[str, ...] = tuple(_SUITES_TABLE.SA_NAMES)
# SPIs are not secret. Fixed and documented, so the role can remove SAs without the key file.
SPIS: dict[str, int] = dict(_SUITES_TABLE.DEFAULT_SPIS)

# Key fields of each suite and their length in bytes: paper = cbc(aes) 128 + hmac(sha1) 160
# (the paper's suite), aead = rfc4106(gcm(aes)) 16-byte key + 4-byte salt.
SUITES: dict[str, dict[str, int]] = {
    suite: _SUITES_TABLE.key_bytes(suite) for suite in _SUITES_TABLE.LAB_SUITES
}
SUITE_CHOICES = ("paper", "aead", "both")
KEY_COMMENTS = {
    "enc_key": "cbc(aes), 128 bits",
    "auth_key": "hmac(sha1), 160 bits",
    "aead_key": "rfc4106(gcm(aes)): 128-bit key + 32-bit salt",
}
FIELDS: tuple[str, ...] = ("spi", *(f for suite in SUITES.values() for f in suite))
SPI_MIN = 0x100  # 0 is not an SPI, 1-255 are reserved by IANA (RFC 4303 2.1)
SPI_MAX = 0xFFFFFFFF
MODE = 0o600

_HEX = re.compile(r"[0-9a-fA-F]*")
_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{12,}")


# --------------------------------------------------------------------------- generate


def suites_of(choice: str) -> tuple[str, ...]:
    if choice not in SUITE_CHOICES:
        raise LabError(f"--suite: expected one of {', '.join(SUITE_CHOICES)}, got {choice!r}")
    return tuple(SUITES) if choice == "both" else (choice,)


def generate_keys(
    suite: str = "both", *, token_hex: Callable[[int], str] | None = None
) -> dict[str, dict[str, str]]:
    """Fresh key material for every SA: {sa: {spi: "0x...", <key field>: hex}}.

    ``token_hex(nbytes)`` defaults to :func:`secrets.token_hex` (a CSPRNG).
    """
    wanted = suites_of(suite)
    token_hex = token_hex or secrets.token_hex
    keys: dict[str, dict[str, str]] = {}
    for name in SA_NAMES:
        entry = {"spi": f"0x{SPIS[name]:08x}"}
        for suite_name in wanted:
            for field, size in SUITES[suite_name].items():
                entry[field] = token_hex(size)
        keys[name] = entry
    return keys


def _shown_path(path: Path) -> str:
    text = str(path)
    if not text.isprintable():
        return "FILE"
    return shlex.quote(text)


def render_key_file(keys: dict[str, dict[str, str]], suite: str, path: Path) -> str:
    """The file's text: the comment header, then ``mvpn_ipsec_keys`` (every value double-quoted)."""
    shown = _shown_path(path)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        f"# Manual IPsec keys of the mvpn-lab testbed (mvpn-lab keys generate, suite {suite}, {stamp}).",
        "# SECRET. Encrypt this file now, and keep it out of the repository (never commit it,",
        "# not even encrypted; keep it e.g. in ~/.config/mvpn-lab/):",
        f"#   ansible-vault encrypt {shown}",
        "# Use it with the mvpn.lab.ipsec role:",
        f"#   ansible-playbook ... -e @{shown} --ask-vault-pass   (or --vault-id lab@prompt)",
        f"# Check it: ansible-vault view {shown} | mvpn-lab keys check -",
        "# SPIs are not secret; every key is fresh random data from Python's secrets module.",
        "---",
        f"{VARIABLE}:",
    ]
    for name, entry in keys.items():
        lines.append(f"  # {SA_DESCRIPTIONS[name]}")
        lines.append(f"  {name}:")
        for field, value in entry.items():
            comment = f"  # {KEY_COMMENTS[field]}" if field in KEY_COMMENTS else ""
            lines.append(f'    {field}: "{value}"{comment}')
    return "\n".join(lines) + "\n"


def _git_work_tree(path: Path) -> Path | None:
    """The enclosing git work tree of ``path`` (looked up on disk, without running git)."""
    for folder in path.resolve().parents:
        if (folder / ".git").exists():
            return folder
    return None


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _exists_error(path: Path) -> LabError:
    return LabError(f"{path} exists; not overwriting a key file (use --force to replace it)")


def _publish(tmp: str, path: Path, force: bool) -> None:
    """Move the finished temporary file to ``path`` in one step."""
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path exists: no window in which another file is replaced
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:  # a file system without hard links
        if os.path.lexists(path):
            raise _exists_error(path) from None
        os.replace(tmp, path)
    else:
        os.unlink(tmp)


def write_key_file(path: Path | str, suite: str = "both", *, force: bool = False) -> tuple[str, ...]:
    """Write a fresh key file atomically with mode 0600; return the SA names written.

    Without ``force`` an existing file is never replaced. On any failure no file is left at
    ``path`` (nor a temporary file beside it) and an existing file is unchanged.
    """
    path = Path(path)
    keys = generate_keys(suite)
    if path.is_dir():
        raise LabError(f"{path} is a directory; give the key file's name")
    if not force and os.path.lexists(path):
        raise _exists_error(path)
    text = render_key_file(keys, suite, path)
    folder = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise LabError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), MODE)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path, force)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise LabError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    _fsync_dir(folder)
    return tuple(keys)


# --------------------------------------------------------------------------- check


@dataclass(frozen=True)
class KeyFileSummary:
    """What a valid key file holds (never the keys)."""

    sas: tuple[str, ...]
    spis: tuple[int, ...]
    suites: tuple[str, ...]


class _NoDuplicatesLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML would keep the last)."""


def _construct_mapping(loader: _NoDuplicatesLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        with contextlib.suppress(TypeError):
            if key in seen:
                mark = key_node.start_mark
                raise LabError(
                    f"line {mark.line + 1}: {_name(key)} is given twice (YAML would keep the last one)"
                )
            seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_NoDuplicatesLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _name(value: Any) -> str:
    """A mapping key fit for a message: shown only if it cannot be key material."""
    text = str(value)
    if isinstance(value, str) and _SAFE_NAME.fullmatch(text) and not _HEX_RUN.search(text):
        return text
    return "(a key that is not a valid name)"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def parse_key_text(text: str, name: str) -> Any:
    """The YAML document of a decrypted key file; errors never quote the file's lines."""
    if text.lstrip().startswith("$ANSIBLE_VAULT;"):
        raise LabError(
            f"{name} is encrypted with ansible-vault; check the decrypted text: "
            f"ansible-vault view {name} | mvpn-lab keys check -"
        )
    try:
        return yaml.load(text, Loader=_NoDuplicatesLoader)  # a SafeLoader subclass
    except LabError as exc:
        raise LabError(f"{name}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise LabError(f"{name}: not valid YAML ({where}{exc.problem or exc.context})") from None
    except yaml.YAMLError as exc:
        raise LabError(f"{name}: not valid YAML ({type(exc).__name__})") from None


def _spi(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise LabError(
            f'{field}: expected an integer or a 0x... hex string (e.g. "0x00001001"), got {_kind(value)}'
        )
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"0[xX][0-9a-fA-F]{1,8}", text):
            raise LabError(
                f'{field}: expected an integer or a 0x... hex string of at most 8 digits (e.g. "0x00001001")'
            )
        value = int(text, 16)
    if not SPI_MIN <= value <= SPI_MAX:
        raise LabError(
            f"{field}: {value:#x} is not a usable SPI (expected 0x100 to 0xffffffff; "
            "0 is not an SPI and 1-255 are reserved)"
        )
    return value


def _key(field: str, value: Any, size: int) -> str:
    """The key's hex digits (lower case, without 0x); one-line error naming the field otherwise."""
    if not isinstance(value, str):
        raise LabError(f"{field}: expected a quoted hex string, got {_kind(value)}")
    digits = value.strip()
    if digits[:2] in ("0x", "0X"):
        digits = digits[2:]
    if not _HEX.fullmatch(digits):
        raise LabError(f"{field}: not a hex string (digits 0-9 and a-f only, optionally after 0x)")
    if len(digits) != 2 * size:
        raise LabError(f"{field}: expected {2 * size} hex digits ({size} bytes), got {len(digits)}")
    if not digits.strip("0"):
        raise LabError(f"{field}: all zeros; generate real keys with mvpn-lab keys generate")
    return digits.lower()


def _and(items: tuple[str, ...] | list[str]) -> str:
    return " and ".join(items) if items else "none"


def check_keys(data: Any) -> KeyFileSummary:
    """Validate a loaded key file; raise LabError with one line naming the first bad field."""
    if not isinstance(data, dict) or VARIABLE not in data:
        raise LabError(
            f"{VARIABLE}: missing (the file must define {VARIABLE}, a mapping of SA names to keys)"
        )
    table = data[VARIABLE]
    if not isinstance(table, dict):
        raise LabError(f"{VARIABLE}: expected a mapping of SA names to keys, got {_kind(table)}")
    for name in table:
        if name not in SA_DESCRIPTIONS:
            raise LabError(f"{VARIABLE}.{_name(name)}: unknown SA (expected {', '.join(SA_NAMES)})")
    spi_owner: dict[int, str] = {}
    key_owner: dict[str, str] = {}
    suites_by_sa: dict[str, tuple[str, ...]] = {}
    for name in SA_NAMES:
        where = f"{VARIABLE}.{name}"
        if name not in table:
            raise LabError(f"{where}: missing (every key file has {', '.join(SA_NAMES)})")
        entry = table[name]
        if not isinstance(entry, dict):
            raise LabError(f"{where}: expected a mapping with spi and keys, got {_kind(entry)}")
        for field in entry:
            if field not in FIELDS:
                raise LabError(f"{where}.{_name(field)}: unknown field (expected {', '.join(FIELDS)})")
        if "spi" not in entry:
            raise LabError(f"{where}.spi: missing")
        spi = _spi(f"{where}.spi", entry["spi"])
        if spi in spi_owner:
            raise LabError(
                f"{where}.spi: {spi:#010x} is also the SPI of {spi_owner[spi]} (SPIs must be distinct)"
            )
        spi_owner[spi] = name
        suites = tuple(s for s, fields in SUITES.items() if any(f in entry for f in fields))
        if not suites:
            raise LabError(
                f"{where}: no keys (expected enc_key and auth_key for suite paper, "
                "and/or aead_key for suite aead)"
            )
        for suite in suites:
            for field, size in SUITES[suite].items():
                if field not in entry:
                    raise LabError(
                        f"{where}.{field}: missing (suite {suite} needs {_and(list(SUITES[suite]))})"
                    )
                digits = _key(f"{where}.{field}", entry[field], size)
                if digits in key_owner:
                    raise LabError(
                        f"{where}.{field}: same key as {key_owner[digits]} (every SA needs its own keys)"
                    )
                key_owner[digits] = f"{name}.{field}"
        suites_by_sa[name] = suites
    first = suites_by_sa[SA_NAMES[0]]
    for name, suites in suites_by_sa.items():
        if suites != first:
            raise LabError(
                f"{VARIABLE}.{name}: has keys for suite {_and(suites)}, {SA_NAMES[0]} for {_and(first)} "
                "(every SA needs the same suites)"
            )
    return KeyFileSummary(SA_NAMES, tuple(spi_owner), first)


def read_key_file(path: str) -> tuple[Any, str]:
    """(loaded document, display name) of FILE, or of stdin for ``-``."""
    if path == "-":
        return parse_key_text(sys.stdin.read(), "<stdin>"), "<stdin>"
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabError(f"no such file: {file}") from None
    except UnicodeDecodeError:
        raise LabError(f"{file}: not a text file (UTF-8)") from None
    except OSError as exc:
        raise LabError(f"cannot read {file}: {exc.strerror or exc}") from None
    return parse_key_text(text, str(file)), str(file)


# --------------------------------------------------------------------------- CLI


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="manual IPsec keys of the lab (generate a vault-ready key file, check one)",
        description="Manual IPsec keys of the lab: one YAML file defining mvpn_ipsec_keys, "
        "to be encrypted with ansible-vault and kept out of the repository. See docs/ipsec.md.",
    )
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: _help(parser))

    generate = sub.add_parser(
        "generate",
        help="write fresh random keys for the lab's SAs into FILE (mode 0600)",
        description="Write fresh random keys (Python's secrets module) for the six SAs of the lab "
        "into FILE, atomically, with mode 0600. Then run: ansible-vault encrypt FILE. "
        "Keys are never printed.",
    )
    generate.add_argument("file", metavar="FILE", help="the key file to write (outside the repository)")
    generate.add_argument("--force", action="store_true", help="replace FILE if it exists")
    generate.add_argument(
        "--suite",
        choices=SUITE_CHOICES,
        default="both",
        help="paper: cbc(aes) 128 + hmac(sha1) 160; aead: rfc4106(gcm(aes)); both (default): "
        "keys for either, so the role's ipsec_suite can change without new keys",
    )
    generate.set_defaults(func=cmd_generate)

    check = sub.add_parser(
        "check",
        help="validate a decrypted key file (- reads stdin)",
        description="Validate a decrypted key file: all SAs present, SPIs distinct, keys hex and of "
        "the right length for their suite. Use - for stdin: ansible-vault view FILE | "
        "mvpn-lab keys check -",
    )
    check.add_argument("file", metavar="FILE", help="decrypted key file, or - for stdin")
    check.set_defaults(func=cmd_check)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def cmd_generate(args: argparse.Namespace) -> int:
    path = Path(args.file)
    names = write_key_file(path, args.suite, force=args.force)
    first, last = SPIS[names[0]], SPIS[names[-1]]
    print(
        f"wrote {path}: {len(names)} SAs (SPIs {first:#x}-{last:#x}), suite {args.suite}, "
        f"mode 0600; now run: ansible-vault encrypt {_shown_path(path)}"
    )
    tree = _git_work_tree(path)
    if tree is not None:
        print(
            f"mvpn-lab: warning: {path} is inside the git work tree {tree}; keep key files out of "
            "the repository",
            file=sys.stderr,
        )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    data, name = read_key_file(args.file)
    summary = check_keys(data)
    spis = ", ".join(f"{spi:#x}" for spi in summary.spis)
    print(f"ok: {name}: {len(summary.sas)} SAs, SPIs {spis} distinct, keys for suite {_and(summary.suites)}")
    if args.file != "-":
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(os.stat(args.file).st_mode)
            if mode & 0o077:
                print(
                    f"mvpn-lab: warning: {name} is readable by others (mode {mode:04o}); "
                    f"chmod 600 it, or better encrypt it: ansible-vault encrypt {_shown_path(Path(name))}",
                    file=sys.stderr,
                )
    return 0
