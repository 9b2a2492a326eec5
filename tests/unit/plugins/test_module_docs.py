"""Every module of the collection has documentation that ansible-doc parses and prints: a colon
and a space in a description's plain text make it YAML that does not parse, and ansible-doc then
says "Missing documentation" (twice in issue 17's work; ansible-test sanity finds it too, but
only in the slow stage)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


def test_every_module_s_documentation_parses():
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    names = [f"mvpn.lab.{name}" for name in MODULES]
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "-t", "module", "--json", *names],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert sorted(docs) == names
    for name, doc in docs.items():
        assert doc["doc"]["short_description"] and doc["doc"]["description"], name
        assert doc["examples"] and doc["return"] is not None, name
        assert doc["doc"]["options"], name
