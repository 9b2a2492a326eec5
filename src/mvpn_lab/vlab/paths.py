"""Where the twin keeps its image cache and its per-lab state.

The inventory ``inventories/virtual`` computes the same state directory
(``MVPN_VLAB_DIR`` or ``$HOME/.local/state/mvpn-lab/twin``), so Ansible finds
the lab's SSH configuration without being told.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The lab hosts of the paper's testbed, one network namespace each on the twin.
LAB_HOSTS = ("mn", "ha", "fn", "cn", "impair")

#: Host alias used in the lab's ssh_config and known_hosts.
SSH_ALIAS = "mvpn-twin"

DEFAULT_PORT = 2222


def state_dir() -> Path:
    """Per-lab state: SSH key, ssh_config, known_hosts, pid file, console log."""
    env = os.environ.get("MVPN_VLAB_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("HOME", "/root")) / ".local/state/mvpn-lab/twin"


def cache_dir() -> Path:
    """Image cache, shared by every lab of this user; entries are keyed on their inputs."""
    env = os.environ.get("MVPN_VLAB_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.environ.get("HOME", "/root"), ".cache")
    return Path(base) / "mvpn-lab" / "images"


def ssh_port() -> int:
    value = os.environ.get("MVPN_VLAB_PORT", str(DEFAULT_PORT))
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        from mvpn_lab.errors import LabError

        raise LabError(f"MVPN_VLAB_PORT: expected a TCP port number 1-65535, got {value!r}")
    return port
