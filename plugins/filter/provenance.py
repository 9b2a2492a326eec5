# Copyright: mvpn-lab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that say where a run comes from: the code's version and the controller's paths."""

from __future__ import annotations

import json
import os
import subprocess

import yaml
from ansible.errors import AnsibleFilterError


def _collection_root(start):
    """The collection folder at or above ``start``: an installed one has MANIFEST.json, a checkout
    galaxy.yml (both beside ``playbooks/``)."""
    here = os.path.abspath(start)
    while True:
        if os.path.isdir(os.path.join(here, "playbooks")) and (
            os.path.isfile(os.path.join(here, "MANIFEST.json"))
            or os.path.isfile(os.path.join(here, "galaxy.yml"))
        ):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _collection_version(root):
    try:
        if os.path.isfile(os.path.join(root, "MANIFEST.json")):  # what ansible-galaxy installed
            with open(os.path.join(root, "MANIFEST.json"), encoding="utf-8") as handle:
                return str(json.load(handle)["collection_info"]["version"])
        with open(os.path.join(root, "galaxy.yml"), encoding="utf-8") as handle:  # a checkout
            return str(yaml.safe_load(handle)["version"])
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise AnsibleFilterError(
            "code_version: cannot read the collection's version in %s: %s" % (root, exc)
        ) from None


def _package_version():
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python < 3.8 controllers are not supported anyway
        return None
    try:
        return version("mvpn-lab")
    except PackageNotFoundError:
        return None


def _git(root, *args):
    # git itself, not a library: the commit and the dirty flag are exactly what `git` says
    try:
        proc = subprocess.run(
            ["git", "-C", root, *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def code_version(path):
    """The code a run uses, from a folder of the collection (normally ``playbook_dir``): the
    collection's version (``MANIFEST.json`` when installed, ``galaxy.yml`` in a checkout), the
    ``mvpn-lab`` Python package's version, and in a git checkout the commit and whether the working
    tree differs from it (``dirty``)."""
    if not isinstance(path, str) or not path:
        raise AnsibleFilterError(
            "code_version: expected a folder of the collection (playbook_dir), got %r" % (path,)
        )
    root = _collection_root(path)
    if root is None:
        raise AnsibleFilterError(
            "code_version: %s is not inside the mvpn.lab collection "
            "(no MANIFEST.json or galaxy.yml beside playbooks/)" % path
        )
    result = {
        "collection": _collection_version(root),
        "package": _package_version(),
        "installed": os.path.isfile(os.path.join(root, "MANIFEST.json")),
        "commit": None,
        "dirty": None,
    }
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is not None and os.path.realpath(top.strip()) == os.path.realpath(root):
        commit = _git(root, "rev-parse", "HEAD")
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
        result["commit"] = commit.strip() if commit else None
        result["dirty"] = bool(status.strip()) if status is not None else None
    return result


def controller_path(path):
    """``path`` made absolute against the controller's working directory (where ansible-playbook
    runs), with ``~`` expanded."""
    if not isinstance(path, str) or not path.strip():
        raise AnsibleFilterError("controller_path: expected a path, got %r" % (path,))
    return os.path.abspath(os.path.expanduser(path))


class FilterModule:
    def filters(self):
        return {
            "code_version": code_version,
            "controller_path": controller_path,
        }
