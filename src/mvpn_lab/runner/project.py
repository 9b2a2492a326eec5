"""Where the checkout is: the collection whose playbooks ``mvpn-lab run`` runs.

The repository root holds ``galaxy.yml``, ``ansible.cfg`` and ``playbooks/``. It is found from the
package's own location (``src/mvpn_lab`` of a checkout, installed editable), else from the current
directory and its parents.
"""

from __future__ import annotations

from pathlib import Path

from mvpn_lab.errors import LabError

MARKERS = ("galaxy.yml", "ansible.cfg", "playbooks")


def is_root(path: Path) -> bool:
    return all((path / name).exists() for name in MARKERS)


def find_root(cwd: Path | None = None) -> Path:
    """The repository root: from the package location first, else the current directory upwards."""
    package = Path(__file__).resolve().parent  # <root>/src/mvpn_lab/runner
    candidates = [package.parents[2]]
    here = (cwd or Path.cwd()).resolve()
    candidates += [here, *here.parents]
    for candidate in candidates:
        if is_root(candidate):
            return candidate
    raise LabError(
        f"cannot find the mvpn-lab checkout (a folder with {', '.join(MARKERS)}) from {package} or {here}; "
        "run mvpn-lab from the checkout"
    )
