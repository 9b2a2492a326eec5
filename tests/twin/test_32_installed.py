"""The collection as users install it (issue 17): the tarball that ``ansible-galaxy collection build``
makes and the wheel of the Python package, installed into a fresh virtual environment with only the
declared requirements (``requirements.txt``), used from a folder outside the checkout:
``ansible-doc`` on every module and filter, then Test 1 (two configurations) on the twin, with its
run folder under ``./results`` of that folder and the installed collection's version in its manifest,
and ``mvpn-lab run`` of one Test 2 configuration, which finds the installed collection itself.

Nothing of the checkout is on the paths of what runs there: not its ``ansible.cfg``, not its
``collections/`` link, not its ``src/``. The twin's inventory is the installed collection's copy.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import BIN, ROOT, run_logged, tail

from mvpn_lab.vlab import paths

TEST2_CONFIGURATION = "mip6-bt_ipsec-none_md-l2"
TEST1_CONFIGURATIONS = [
    "addr-static_ipsec-transport_suite-paper_loc-home",
    "addr-radvd_ipsec-none_suite-aead_loc-foreign",
]


def _names(kind: str) -> list[str]:
    """Every module (``plugins/modules/*.py``) or filter (the keys of each FilterModule) of the checkout."""
    if kind == "module":
        return sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    names = []
    for path in (ROOT / "plugins" / "filter").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):  # return {"name": function, ...} in FilterModule.filters
            if isinstance(node, ast.FunctionDef) and node.name == "filters":
                for ret in ast.walk(node):
                    if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Dict):
                        names += [k.value for k in ret.value.keys if isinstance(k, ast.Constant)]
    return sorted(names)


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 1800) -> str:
    proc = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    said = tail(proc.stdout + proc.stderr, 40)
    assert proc.returncode == 0, f"{' '.join(argv)}: exit {proc.returncode}\n{said}"
    return proc.stdout


def test_the_installed_collection_documents_itself_and_runs_test1(twin, tmp_path):
    dist = tmp_path / "dist"
    # the artifacts, built from the checkout as a release would be
    here = dict(os.environ)
    _run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(dist)], ROOT, here)
    pip = [str(BIN / "python"), "-m", "pip"]
    _run([*pip, "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)], ROOT, here)
    (tarball,) = dist.glob("mvpn-lab-*.tar.gz")
    (wheel,) = dist.glob("mvpn_lab-*.whl")

    # a user's machine: a fresh venv with the declared requirements, the wheel, the collection
    venv, collections, work, home = (tmp_path / n for n in ("venv", "collections", "work", "home"))
    work.mkdir()
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "VIRTUAL_ENV", "PYTHON"))}
    clean["PATH"] = f"{venv / 'bin'}{os.pathsep}{clean.get('PATH', os.defpath)}"
    # a user's own HOME: nothing in ~/.ansible (molecule, earlier in the suite, installs mvpn.lab
    # into the real one, and ansible-galaxy would then call the tarball installed already); the
    # twin's state folder and pip's cache are this machine's
    clean["HOME"] = str(home)
    clean["MVPN_VLAB_DIR"] = str(paths.state_dir())
    clean["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    _run([sys.executable, "-m", "venv", str(venv)], work, clean)
    code, out = run_logged(
        "installed-pip",
        [str(venv / "bin" / "pip"), "install", "-q", "-r", str(ROOT / "requirements.txt"), str(wheel)],
        timeout=1800,
        env=clean,
    )
    assert code == 0, tail(out)
    galaxy = str(venv / "bin" / "ansible-galaxy")
    _run([galaxy, "collection", "install", "-p", str(collections), str(tarball)], work, clean)
    installed = collections / "ansible_collections" / "mvpn" / "lab"
    assert (installed / "MANIFEST.json").is_file(), f"ansible-galaxy installed nothing into {collections}"
    assert not (installed / "ansible.cfg").exists()
    env = {
        **clean,
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        # what the README tells users of the installed collection: Mitogen's strategy, from the collection
        "ANSIBLE_STRATEGY": "mvpn.lab.mitogen_linear",
        "ANSIBLE_GATHERING": "explicit",
    }
    where = _run([str(venv / "bin" / "python"), "-c", "import mvpn_lab; print(mvpn_lab.__file__)"], work, env)
    assert where.startswith(str(venv)), where  # the wheel's package, not the checkout's src/
    # the mip6 role's first task, as it runs on the controller: the daemon bundle, from the wheel's
    # package, is the daemon the checkout deploys (the bundle is built reproducibly)
    bundle = [str(venv / "bin" / "python"), "-m", "mvpn_lab.cli", "mip6", "bundle", str(work / "mip6.pyz")]
    ours = [str(BIN / "python"), "-m", "mvpn_lab.cli", "mip6", "bundle", str(tmp_path / "mip6.pyz")]
    assert json.loads(_run(bundle, work, env))["sha256"] == json.loads(_run(ours, ROOT, here))["sha256"]

    # ansible-doc on every module and filter of the installed collection
    for kind in ("module", "filter"):
        names = [f"mvpn.lab.{n}" for n in _names(kind)]
        docs = json.loads(_run([str(venv / "bin" / "ansible-doc"), "-t", kind, "--json", *names], work, env))
        assert sorted(docs) == sorted(names), sorted(set(names) ^ set(docs))
        for name, doc in docs.items():
            assert doc["doc"].get("short_description") and doc["examples"], f"{kind} {name}: no documentation"

    # Test 1 from the installed collection, two configurations, results under ./results of the cwd
    only = ["^" + c + "$" for c in TEST1_CONFIGURATIONS]
    code, out = run_logged(
        "installed-test1",
        [str(venv / "bin" / "ansible-playbook"), "mvpn.lab.test1_validation",
         "-i", str(installed / "inventories" / "virtual"), "-e", json.dumps({"mvpn_test1_only": only})],
        timeout=3600,
        env={**env, "PWD": str(work)},
        cwd=work,
    )  # fmt: skip
    assert code == 0, f"Test 1 from the installed collection failed:\n{tail(out, 80)}"
    (run,) = sorted((work / "results" / "test1_validation").iterdir())
    manifest = json.loads((run / "manifest.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert [c["id"] for c in summary["configurations"]] == TEST1_CONFIGURATIONS
    assert all(c["passed"] for c in summary["configurations"]), summary
    version = json.loads((installed / "MANIFEST.json").read_text())["collection_info"]["version"]
    assert manifest["code"]["installed"] is True and manifest["code"]["collection"] == version
    assert manifest["code"]["commit"] is None  # the installed collection is no checkout
    for config in TEST1_CONFIGURATIONS:
        assert (run / config / "lab" / "mn" / "ip-addr.txt").is_file()

    # the experiment runner the same way: it finds the installed collection (no checkout here)
    # and runs its Test 2 playbook through ansible-runner, the run folder again under ./results
    code, out = run_logged(
        "installed-run-test2",
        [str(venv / "bin" / "mvpn-lab"), "run", "test2", "--quick", "--no-provision",
         "--configs", TEST2_CONFIGURATION, "-i", str(installed / "inventories" / "virtual")],
        timeout=3600,
        env=env,
        cwd=work,
    )  # fmt: skip
    assert code == 0, f"mvpn-lab run from the installed collection failed:\n{tail(out, 60)}"
    (run2,) = sorted((work / "results" / "test2_wlan").iterdir())
    outcome = json.loads((run2 / "outcome.json").read_text())
    assert [r["name"] for r in outcome["repetitions"]] == [f"{TEST2_CONFIGURATION}/rep-01"]
    assert all(r["passed"] for r in outcome["repetitions"]), outcome
    assert json.loads((run2 / "manifest.json").read_text())["code"]["installed"] is True
    assert (run2 / "report.html").is_file()
    assert not (installed / "results").exists()
