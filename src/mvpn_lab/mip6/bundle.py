"""A self-contained zip application of the daemon, for lab hosts.

The lab hosts run the daemon with nothing but Debian's ``python3`` and ``python3-yaml``: the
``mip6`` role copies one file, ``mvpn-lab-mip6.pyz``, built here from the installed package.
The archive holds ``mvpn_lab/__init__.py``, ``errors.py``, ``cli.py``, ``collection.py``,
``vocabulary.py`` and ``mip6/`` with its sub-packages, and the collection's ``module_utils``
files the daemon shares with the modules (:data:`MODULE_UTILS`) as
``ansible_collections.mvpn.lab.plugins.module_utils``, with the ``__init__.py`` files zipimport
needs; its
``__main__`` is the ``mvpn-lab`` command line (sub-commands whose modules are absent are left
out). The bytes depend only on the sources: entries are sorted and carry a fixed timestamp, so
copying the bundle again is a no-op for Ansible.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from mvpn_lab.collection import module_utils

_EPOCH = (2020, 1, 1, 0, 0, 0)
_MAIN = b"import sys\nfrom mvpn_lab.cli import main\nsys.exit(main())\n"


#: the collection's plugins/module_utils files the daemon imports
MODULE_UTILS = ("ipbatch", "mip6control", "suites", "xfrm")
_COLLECTION = "ansible_collections/mvpn/lab"


def _sources() -> list[tuple[str, bytes]]:
    package = Path(__file__).resolve().parent.parent
    top = ("__init__.py", "errors.py", "cli.py", "collection.py", "vocabulary.py")
    files = [package / name for name in top]
    files += sorted((package / "mip6").rglob("*.py"))  # with its sub-packages
    out = [(f"mvpn_lab/{p.relative_to(package).as_posix()}", p.read_bytes()) for p in files]
    utils = Path(module_utils(MODULE_UTILS[0]).__file__ or "").parent
    parts = [*_COLLECTION.split("/"), "plugins", "module_utils"]
    out += [("/".join(parts[:n]) + "/__init__.py", b"") for n in range(1, len(parts) + 1)]
    out += [(f"{'/'.join(parts)}/{name}.py", (utils / f"{name}.py").read_bytes()) for name in MODULE_UTILS]
    return sorted(out)


def bundle_bytes() -> bytes:
    """The zip application as bytes (deterministic)."""
    buf = io.BytesIO()
    buf.write(b"#!/usr/bin/python3\n")
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in [("__main__.py", _MAIN), *_sources()]:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def write_bundle(path: str | Path) -> str:
    """Write the bundle to ``path`` (only if its bytes differ); return its sha256."""
    data = bundle_bytes()
    target = Path(path)
    if not target.exists() or target.read_bytes() != data:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        tmp.chmod(0o755)
        tmp.replace(target)
    return hashlib.sha256(data).hexdigest()
