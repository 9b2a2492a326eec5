"""``mvpn-lab mip6 bundle``: one deterministic zip application that runs the daemon's CLI."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import zipfile

from mvpn_lab.cli import main
from mvpn_lab.mip6.bundle import bundle_bytes, write_bundle


def test_bundle_is_deterministic_and_holds_the_daemon(tmp_path):
    assert bundle_bytes() == bundle_bytes()
    path = tmp_path / "mvpn-lab-mip6.pyz"
    digest = write_bundle(path)
    mtime = path.stat().st_mtime_ns
    assert write_bundle(path) == digest and path.stat().st_mtime_ns == mtime  # unchanged bytes: not rewritten
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert {i.date_time for i in zf.infolist()} == {(2020, 1, 1, 0, 0, 0)}
    assert {"__main__.py", "mvpn_lab/cli.py", "mvpn_lab/mip6/attacks.py"} <= names
    assert {f"mvpn_lab/mip6/{m}.py" for m in ("daemon/loop", "daemon/kernel/mn", "wire/messages")} <= names
    assert not any(n.startswith(("mvpn_lab/vlab", "mvpn_lab/analysis")) for n in names)


def test_bundle_runs_check_config_without_the_package(tmp_path):
    path = tmp_path / "mvpn-lab-mip6.pyz"
    write_bundle(path)
    config = tmp_path / "cn.yml"
    config.write_text("role: cn\naddress: 'fec0:106:2500::2'\n")
    # -I: isolated, so the installed mvpn_lab package cannot be imported instead of the bundle's
    proc = subprocess.run(
        [sys.executable, "-I", str(path), "mip6", "check-config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok:") and "role cn" in proc.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("role: cn\naddress: x\n")
    proc = subprocess.run([sys.executable, "-I", str(path), "mip6", "check-config", str(bad)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 2 and "address" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_bundle_command_prints_path_and_sha256(tmp_path, capsys):
    out = tmp_path / "sub" / "x.pyz"
    assert main(["mip6", "bundle", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["path"] == str(out.resolve()) and len(printed["sha256"]) == 64


def test_bundle_carries_the_shared_module_utils_and_the_daemon_imports_them_from_it(tmp_path):
    path = tmp_path / "mvpn-lab-mip6.pyz"
    write_bundle(path)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    base = "ansible_collections/mvpn/lab/plugins/module_utils"
    assert {f"{base}/ipbatch.py", f"{base}/xfrm.py", f"{base}/__init__.py"} <= names
    assert "ansible_collections/__init__.py" in names
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import mvpn_lab.mip6.daemon.loop as loop; "
        "from mvpn_lab.mip6.daemon.kernel import base; print(base._ipbatch.__file__, base._xfrm.__file__)"
    )
    proc = subprocess.run([sys.executable, "-I", "-c", code, str(path)], capture_output=True, text=True,
                          timeout=60, check=False, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # zipimport names a module it loaded from its bytecode by the .pyc
    assert proc.stdout.split() == [f"{path}/{base}/ipbatch.pyc", f"{path}/{base}/xfrm.pyc"]


def _bundle_with(tmp_path, replace: dict[str, bytes]):
    """The bundle with the entries in ``replace`` changed (the rest as built)."""
    path = tmp_path / "changed.pyz"
    with zipfile.ZipFile(io.BytesIO(bundle_bytes())) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, replace.get(info.filename, src.read(info)))
    return path


def _imported_from(path, module: str) -> str:
    code = f"import sys; sys.path.insert(0, sys.argv[1]); import {module} as m; print(m.__file__)"
    proc = subprocess.run([sys.executable, "-I", "-c", code, str(path)], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_bundle_carries_bytecode_checked_against_each_source(tmp_path):
    with zipfile.ZipFile(io.BytesIO(bundle_bytes())) as zf:
        names = set(zf.namelist())
        pyc = zf.read("mvpn_lab/errors.pyc")
        source = zf.read("mvpn_lab/errors.py")
    sources = {n for n in names if n.endswith(".py")}
    assert {n + "c" for n in sources} == {n for n in names if n.endswith(".pyc")}  # one beside each
    # PEP 552: this Python's magic number, then flags 0b11 (hash-based, checked), the source's hash
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b11
    assert pyc[8:16] == importlib.util.source_hash(source)
    # a source that no longer matches its bytecode is what runs (the pyc is checked, not trusted)
    changed = source + b"\nSTALE_CHECK = 1\n"
    path = _bundle_with(tmp_path, {"mvpn_lab/errors.py": changed})
    code = "import sys; sys.path.insert(0, sys.argv[1]); import mvpn_lab.errors as e; print(e.STALE_CHECK)"
    proc = subprocess.run([sys.executable, "-I", "-c", code, str(path)], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "1", proc.stderr


def test_bytecode_of_another_python_version_falls_back_to_the_source(tmp_path):
    with zipfile.ZipFile(io.BytesIO(bundle_bytes())) as zf:
        pyc = zf.read("mvpn_lab/errors.pyc")
    other = bytes([pyc[0] ^ 0x01, pyc[1]]) + pyc[2:]  # another bytecode version's magic number
    path = _bundle_with(tmp_path, {"mvpn_lab/errors.pyc": other})
    assert _imported_from(path, "mvpn_lab.errors") == f"{path}/mvpn_lab/errors.py"
    assert _imported_from(tmp_path / "changed.pyz", "mvpn_lab.cli") == f"{path}/mvpn_lab/cli.pyc"
