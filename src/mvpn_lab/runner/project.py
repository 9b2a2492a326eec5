"""Where the collection is whose playbooks ``mvpn-lab run`` runs: a checkout or an installed one.

A checkout's root holds ``galaxy.yml``, ``ansible.cfg`` and ``playbooks/``; an installed collection
(``ansible-galaxy collection install``, ``ansible_collections/mvpn/lab``) holds ``MANIFEST.json`` and
``playbooks/`` and no ``ansible.cfg``. The root is found from the package's own location (``src/mvpn_lab``
of a checkout, installed editable), else from the current directory and its parents, else where
ansible-core and this package look for installed collections.
"""

from __future__ import annotations

from pathlib import Path

from mvpn_lab.errors import LabError

MARKERS = ("galaxy.yml", "ansible.cfg", "playbooks")
INSTALLED_MARKERS = ("MANIFEST.json", "playbooks")


def is_root(path: Path) -> bool:
    return all((path / name).exists() for name in MARKERS)


def is_installed(path: Path) -> bool:
    return all((path / name).exists() for name in INSTALLED_MARKERS)


def find_root(cwd: Path | None = None) -> Path:
    """The collection to run: a checkout (from the package location, else the current directory
    upwards), else the installed collection."""
    package = Path(__file__).resolve().parent  # <root>/src/mvpn_lab/runner
    candidates = [package.parents[2]]
    here = (cwd or Path.cwd()).resolve()
    candidates += [here, *here.parents]
    for candidate in candidates:
        if is_root(candidate):
            return candidate
    from mvpn_lab.collection import collection_bases

    for base in collection_bases():
        installed = base / "ansible_collections" / "mvpn" / "lab"
        if is_installed(installed):
            return installed
    raise LabError(
        f"cannot find the mvpn.lab collection: no checkout (a folder with {', '.join(MARKERS)}) from "
        f"{package} or {here}, and no installed collection in ansible-core's collection paths; "
        "run from the checkout, or: ansible-galaxy collection install mvpn-lab-*.tar.gz"
    )
