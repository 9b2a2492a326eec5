"""The package imports the collection's module_utils by name, never by file path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_module_utils_imports_from_the_checkout_in_a_fresh_interpreter():
    # a fresh interpreter: nothing has put the collection on sys.path yet
    code = (
        "from mvpn_lab.collection import module_utils; "
        "m = module_utils('repetition'); print(m.__name__); print(m.__file__)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    name, path = out.split()
    assert name == "ansible_collections.mvpn.lab.plugins.module_utils.repetition"
    assert Path(path).resolve() == (ROOT / "plugins" / "module_utils" / "repetition.py").resolve()


def test_an_unknown_module_utils_name_is_an_import_error():
    from mvpn_lab.collection import module_utils

    try:
        module_utils("no_such_contract")
    except ModuleNotFoundError as exc:
        assert "no_such_contract" in str(exc)
    else:  # pragma: no cover - the assertion is the point
        raise AssertionError("an unknown name imported")
