"""A self-contained zip application of the daemon, for lab hosts.

The lab hosts run the daemon with nothing but Debian's ``python3`` and ``python3-yaml``: the
``mip6`` role copies one file, ``mvpn-lab-mip6.pyz``, built here from the installed package.
The archive holds ``mvpn_lab/__init__.py``, ``errors.py``, ``cli.py``, ``collection.py``,
``vocabulary.py`` and ``mip6/`` with its sub-packages, and the collection's ``module_utils``
files the daemon shares with the modules (:data:`MODULE_UTILS`) as
``ansible_collections.mvpn.lab.plugins.module_utils``, with the ``__init__.py`` files zipimport
needs; its
``__main__`` is the ``mvpn-lab`` command line (sub-commands whose modules are absent are left
out). The bytes depend only on the sources and the building Python: entries are sorted and carry a
fixed timestamp, so copying the bundle again is a no-op for Ansible.

Beside each ``.py`` the archive holds its bytecode, compiled by the Python that builds the bundle
(the controller's), as a PEP 552 pyc checked against its source's hash: ``zipimport`` cannot write
bytecode, so without it every start of the daemon (and every ``check-config`` process) compiled
all of its modules again: under the twin's emulated CPU its imports took 3.7-3.9 s without the
bytecode and 2.1-2.3 s with it (measured 2026-12-07). A lab host whose Python has another bytecode
version (its ``MAGIC_NUMBER`` differs: another minor release than the controller's) finds a bad
magic number, and ``zipimport`` compiles the source beside it, as before.
"""

from __future__ import annotations

import hashlib
import io
import py_compile
import tempfile
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


def _with_bytecode(sources: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """``sources`` and, for each, ``NAME.pyc`` where zipimport looks for it: compiled by this Python,
    checked against the source's hash (no timestamp, so the bytes depend on the source only)."""
    out = list(sources)
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in sources:
            src, pyc = Path(tmp, "source.py"), Path(tmp, "source.pyc")
            src.write_bytes(data)
            py_compile.compile(
                str(src),
                cfile=str(pyc),
                dfile=name,  # the name tracebacks show: the file's path inside the bundle
                doraise=True,
                optimize=0,
                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
            )
            out.append((name[: -len(".py")] + ".pyc", pyc.read_bytes()))
    return sorted(out)


def bundle_bytes() -> bytes:
    """The zip application as bytes (deterministic for one Python version)."""
    buf = io.BytesIO()
    buf.write(b"#!/usr/bin/python3\n")
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in _with_bytecode([("__main__.py", _MAIN), *_sources()]):
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
