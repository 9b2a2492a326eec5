"""The mvpn.lab collection's shared Python, imported by the package.

Some contracts have their one owner in the collection's ``plugins/module_utils/`` because the
modules that run on lab hosts (or on the controller, delegated) need them too: the run folder's
schema, the repetition's pass rule, the cipher suites' key lengths. The package imports those
files as ``ansible_collections.mvpn.lab.plugins.module_utils.NAME``, never by file path. Filter
plugins that compute what the package shows too (the lab model) are imported the same way, as
``ansible_collections.mvpn.lab.plugins.filter.NAME`` (:func:`filter_plugin`).

Where the collection is found, first hit wins:
1. already importable (ansible-core's collection loader is active, or a path is set up);
2. the checkout this package runs from (``collections/ansible_collections/mvpn/lab`` links back to
   the repository root);
3. the collection paths ansible-core is configured with (``ANSIBLE_COLLECTIONS_PATH``,
   ``ansible.cfg``, ``~/.ansible/collections``, ``/usr/share/ansible/collections``) and
   ``site-packages``, where ``ansible-galaxy collection install`` puts it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from mvpn_lab.errors import LabError

NAMESPACE = "ansible_collections.mvpn.lab"


def collection_bases() -> list[Path]:
    """The folders that may hold ``ansible_collections/mvpn/lab``, in the order they are tried."""
    return _candidates()


def _candidates() -> list[Path]:
    package = Path(__file__).resolve().parent  # <root>/src/mvpn_lab in a checkout
    found = [package.parents[1] / "collections"]
    try:  # ansible-core's own idea of where collections live
        from ansible import constants as C

        found += [Path(p).expanduser() for p in (C.COLLECTIONS_PATHS or [])]
    except Exception:  # a broken ansible.cfg must not hide the other places
        pass
    found += [Path(p) for p in sys.path if p and p.endswith(("site-packages", "dist-packages"))]
    return found


def _make_importable() -> None:
    for base in _candidates():
        if (base / "ansible_collections" / "mvpn" / "lab" / "plugins" / "module_utils").is_dir():
            if str(base) not in sys.path:
                sys.path.append(str(base))
            importlib.invalidate_caches()
            return
    raise LabError(
        "the mvpn.lab collection is not installed where this package can find it "
        "(run from the checkout, or: ansible-galaxy collection install mvpn-lab-*.tar.gz)"
    )


def module_utils(name: str) -> ModuleType:
    """``plugins/module_utils/NAME.py`` of the collection, as a module."""
    return _plugin_module("module_utils", name)


def filter_plugin(name: str) -> ModuleType:
    """``plugins/filter/NAME.py`` of the collection, as a module (it imports ansible-core)."""
    return _plugin_module("filter", name)


def _plugin_module(kind: str, name: str) -> ModuleType:
    qualified = f"{NAMESPACE}.plugins.{kind}.{name}"
    try:
        return importlib.import_module(qualified)
    except ModuleNotFoundError as exc:
        if exc.name is None or not qualified.startswith(exc.name):
            raise
    _make_importable()
    return importlib.import_module(qualified)
