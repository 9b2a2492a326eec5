"""Modules and module_utils run on the lab hosts, whose Python may be as old as 3.8."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HOST_SIDE = sorted((ROOT / "plugins/modules").glob("*.py")) + sorted(
    (ROOT / "plugins/module_utils").glob("*.py")
)
NEWER_APIS = (
    ".removeprefix(",
    ".removesuffix(",
    "functools.cache(",
    "@cache\n",
    "zoneinfo",
    "graphlib",
    "math.lcm(",
    "str | None",
    "list[str]",
    "dict[str",
)


def test_there_are_host_side_files():
    names = {p.name for p in HOST_SIDE}
    assert {"ipv6_address.py", "ipv6_route.py", "sysctl.py", "test_file.py", "iproute.py"} <= names


@pytest.mark.parametrize("path", HOST_SIDE, ids=lambda p: p.name)
def test_python38_syntax(path):
    source = path.read_text()
    ast.parse(source, filename=str(path), feature_version=(3, 8))
    for api in NEWER_APIS:
        assert api not in source, f"{path.name} uses {api!r} (Python 3.9+)"
