"""The daemon's three layers, read from the sources with ``ast``: no import cycle between the files
of ``mvpn_lab.mip6`` and no import against the layering (wire <- core <- daemon)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mvpn_lab.mip6

PACKAGE = "mvpn_lab.mip6"
ROOT = Path(mvpn_lab.mip6.__file__).resolve().parent
#: layer -> the layers its files may import from (beside itself)
ALLOWED = {"wire": set(), "core": {"wire"}, "daemon": {"wire", "core"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The mvpn_lab.mip6 modules one file imports (anywhere in it, also inside functions and
    ``TYPE_CHECKING``); ``from P import x`` counts as importing ``P.x`` when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[2] if len(parts) > 3 and parts[2] in ALLOWED else None


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_three_layers_exist():
    names = set(modules())
    assert {f"{PACKAGE}.wire.messages", f"{PACKAGE}.wire.pcap", f"{PACKAGE}.wire.ipv6"} <= names
    assert {f"{PACKAGE}.core.{m}" for m in ("mn", "ha", "cn", "movement", "actions")} <= names
    assert {
        f"{PACKAGE}.daemon.{m}"
        for m in ("loop", "kernel.mn", "kernel.ha", "kernel.cn", "roles.mn", "roles.ha")
    } <= names
    assert not (ROOT / "daemon.py").exists() and not (ROOT / "kernel.py").exists()


def test_no_import_cycle_between_files():
    assert find_cycle(graph()) is None


def test_no_layer_violation():
    bad = []
    for name, targets in graph().items():
        own = layer(name)
        for target in targets:
            other = layer(target)
            if own is None or other == own:
                continue  # cli, attacks, bundle and the package itself sit above the layers
            if other is None or other not in ALLOWED[own]:
                bad.append(f"{name} -> {target}")
    assert bad == []


def test_the_loop_and_the_kernel_adapters_do_not_switch_on_the_role():
    """The role picks its driver and kernel adapter once (a mapping); nothing else asks for it."""
    shared = [ROOT / "daemon" / "loop.py", ROOT / "daemon" / "kernel" / "base.py"]
    shared += sorted((ROOT / "daemon" / "kernel").glob("[mhc][an].py")) + sorted(
        (ROOT / "daemon" / "roles").glob("*.py")
    )
    for path in shared:
        text = path.read_text()
        for needle in ("MNConfig)", "HAConfig)", "CNConfig)", ".role ==", "type: ignore", "node: Any"):
            assert needle not in text, f"{path.name}: {needle}"


def test_the_checker_finds_cycles_and_violations():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer(f"{PACKAGE}.wire.messages") == "wire" and layer(f"{PACKAGE}.cli") is None


@pytest.mark.parametrize("source", ["from mvpn_lab.mip6.core import mn\n", "from ..core.mn import MN\n"])
def test_imports_are_resolved(tmp_path, source):
    path = tmp_path / "x.py"
    path.write_text(source)
    known = {f"{PACKAGE}.core.mn", f"{PACKAGE}.core", f"{PACKAGE}.wire.x"}
    assert imports_of(f"{PACKAGE}.wire.x", path, known) == {f"{PACKAGE}.core.mn"}
