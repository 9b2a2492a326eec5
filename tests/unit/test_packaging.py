"""The collection and the package as users install them, and the lists that say what they need.

* requirements.txt pins the controller's Python dependencies once (pyproject.toml reads it), and
  each of them is imported by the package or the collection's plugins;
* bindep.txt names the host packages once, by profile: the roles' apt installs, docs/hardware.md's
  base packages and the twin image's tools read the same lists, and scripts/host-packages.sh (what
  scripts/setup.sh installs) agrees with bindep itself;
* meta/execution-environment.yml is what ansible-builder accepts and reads;
* the wheel carries every file the package reads, and computes the twin image's key as the
  checkout does; the collection artifact carries the collection and nothing of the checkout's own.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "mvpn_lab"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
BIN = Path(sys.executable).parent
#: Sources for the image key: any fixed list will do, the key must only be the same on both sides.
SOURCES = ["deb http://deb.debian.example/debian bookworm main"]


def _requirements(name: str) -> list[Requirement]:
    lines = (ROOT / name).read_text().splitlines()
    return [Requirement(line.split("#", 1)[0]) for line in lines if line.split("#", 1)[0].strip()]


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for req in _requirements(name):
        (spec,) = req.specifier  # exactly one specifier: ==VERSION
        assert spec.operator == "==", f"{name}: {req} is not pinned with =="
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def _imported_distributions(*folders: str) -> dict[str, set[str]]:
    """Distributions whose top-level modules the Python files in folders import: {dist: {file}}."""
    owners = importlib.metadata.packages_distributions()
    # the folders' own modules, imported by file name (conftest, the tests' helpers, ...)
    local = {p.stem for folder in folders for p in (ROOT / folder).rglob("*.py")}
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in local | {"mvpn_lab", "ansible_collections"}:
                        continue
                    for dist in owners.get(top, [f"<nothing installed provides {top}>"]):
                        found.setdefault(canonicalize_name(dist), set()).add(str(path.relative_to(ROOT)))
    return found


# --- Python dependencies -----------------------------------------------------------------------


def test_pyproject_reads_its_dependencies_from_the_requirement_files():
    project = PYPROJECT["project"]
    assert "dependencies" not in project and "optional-dependencies" not in project
    assert set(project["dynamic"]) >= {"dependencies", "optional-dependencies"}
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]
    assert dynamic["dependencies"] == {"file": ["requirements.txt"]}
    assert dynamic["optional-dependencies"] == {"dev": {"file": ["requirements-dev.txt"]}}


def test_every_pin_is_exact_and_named_once():
    runtime, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")
    assert runtime and dev
    assert not set(runtime) & set(dev), "a package pinned in both requirement files"


def test_the_runtime_dependencies_are_exactly_what_src_and_plugins_import():
    imported, pinned = _imported_distributions("src", "plugins"), _pins("requirements.txt")
    assert set(imported) == set(pinned), {
        "imported, not pinned": {d: sorted(f) for d, f in imported.items() if d not in pinned},
        "pinned, never imported": sorted(set(pinned) - set(imported)),
    }


def test_what_tests_and_benchmarks_import_is_pinned():
    pinned = set(_pins("requirements.txt")) | set(_pins("requirements-dev.txt"))
    imported = _imported_distributions("tests", "benchmarks")
    assert not {d: sorted(f) for d, f in imported.items() if d not in pinned}


def test_the_dev_setuptools_pin_meets_the_build_floor():
    floor = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    (setuptools,) = (r for r in floor if r.name == "setuptools")
    assert _pins("requirements-dev.txt")["setuptools"] in setuptools.specifier


def test_the_collection_requires_the_pinned_ansible_core():
    runtime = yaml.safe_load((ROOT / "meta/runtime.yml").read_text())
    assert _pins("requirements.txt")["ansible-core"] in SpecifierSet(runtime["requires_ansible"])


# --- host packages (bindep.txt) ----------------------------------------------------------------


def _bindep(*profiles: str, platform: str = "platform:dpkg") -> list[str]:
    depends = _need_module("bindep.depends", "bindep comes with ansible-builder (requirements-dev.txt)")
    rules = depends.Depends((ROOT / "bindep.txt").read_text()).active_rules([*profiles, platform])
    return [rule[0] for rule in rules]


def _host_packages(*profiles: str) -> list[str]:
    script = ROOT / "scripts/host-packages.sh"
    return subprocess.run([script, *profiles], check=True, capture_output=True, text=True).stdout.split()


def _apt_names(tasks: object) -> set[str]:
    names: set[str] = set()
    if isinstance(tasks, list):
        for task in tasks:
            names |= _apt_names(task)
    elif isinstance(tasks, dict):
        for key in ("block", "rescue", "always"):
            names |= _apt_names(tasks.get(key))
        for module in ("ansible.builtin.apt", "apt", "ansible.builtin.package", "package"):
            if module in tasks:
                name = tasks[module].get("name", [])
                names |= {name} if isinstance(name, str) else set(name)
    return names


def test_the_lab_profile_is_what_the_roles_install():
    installed: dict[str, str] = {}
    for path in sorted(ROOT.glob("roles/*/tasks/*.yml")):
        for name in _apt_names(yaml.safe_load(path.read_text())):
            assert "{{" not in name, f"{path}: a templated package name, not listed in bindep.txt"
            installed[name] = str(path.relative_to(ROOT))
    assert installed, "no apt task found: the parser or the roles changed"
    assert sorted(_bindep("lab")) == sorted(installed)


def test_the_twin_image_carries_every_package_the_roles_install():
    from mvpn_lab.vlab import image

    assert set(_bindep("lab")) <= set(image.PACKAGES)


def test_the_lab_base_profile_is_the_hardware_guide_s_list():
    text = (ROOT / "docs/hardware.md").read_text()
    block = re.search(r"\*\*Base packages\.\*\*.*?```sh\n(.*?)```", text, re.S)
    assert block, "docs/hardware.md: no 'Base packages' command block"
    words = block.group(1).replace("\\\n", " ").split()
    assert words[:2] == ["apt-get", "install"]
    assert sorted(_bindep("lab-base")) == sorted(words[2:])


def test_the_twin_profile_has_the_tools_the_image_build_asks_for():
    from mvpn_lab.vlab import image

    asked = {hint.split()[-1] for hint in image.REQUIRED_TOOLS.values()}
    assert asked <= set(_bindep("twin"))


@pytest.mark.parametrize(
    "profiles",
    [("controller", "twin", "test"), ("default",), ("twin",), ("test",), ("lab",), ("lab-base",)],
)
def test_host_packages_sh_reads_bindep_txt_as_bindep_does(profiles):
    assert _host_packages(*profiles) == _bindep(*profiles)


def test_setup_sh_installs_the_controller_twin_and_test_profiles():
    setup = (ROOT / "scripts/setup.sh").read_text()
    assert re.search(r'scripts/host-packages\.sh" controller twin test\)', setup)
    assert "packages=(" not in setup, "a second package list in setup.sh"


def test_the_default_profile_gives_an_execution_environment_its_ssh_client():
    # ansible-builder's images are RPM based; a Debian controller reads the same profile
    assert "openssh-clients" in _bindep("default", platform="platform:rpm")
    assert "openssh-client" in _bindep("default")


def test_bindep_txt_keeps_to_the_syntax_host_packages_sh_reads():
    for line in (ROOT / "bindep.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9.+_-]+ \[[a-z0-9:. -]+\]", line), line
            assert sum(s.startswith("platform:") for s in line[line.index("[") + 1 : -1].split()) <= 1


# --- execution environment ---------------------------------------------------------------------


def test_the_execution_environment_file_is_valid_and_names_the_pins():
    schema = _need_module("ansible_builder.ee_schema", "ansible-builder (requirements-dev.txt)")
    ee = yaml.safe_load((ROOT / "meta/execution-environment.yml").read_text())
    schema.validate_schema(ee)
    deps = ee["dependencies"]
    assert (deps["python"], deps["system"]) == ("requirements.txt", "bindep.txt")
    pins = _pins("requirements.txt")
    for key, dist in (("ansible_core", "ansible-core"), ("ansible_runner", "ansible-runner")):
        assert deps[key]["package_pip"] == f"{dist}=={pins[dist]}"


def _need_module(name: str, what: str):
    """The module, or a failure naming what to install: the dev environment declares it, so a
    missing one is a broken setup, never a reason to skip."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.fail(f"{what} is not installed ({exc}): run scripts/setup.sh")


# --- the wheel ---------------------------------------------------------------------------------


def _check_build_floor() -> None:
    for text in PYPROJECT["build-system"]["requires"]:
        req = Requirement(text)
        try:
            have = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            have = None
        if have is None or have not in req.specifier:
            pytest.fail(
                f"the wheel is built offline with this environment's {req.name} ({have}), which "
                f"must satisfy {text}: scripts/setup.sh installs requirements-dev.txt's pin"
            )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The package's wheel, built offline from a copy of what the build reads."""
    _check_build_floor()
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md", "LICENSE", "requirements.txt", "requirements-dev.txt"):
        shutil.copy2(ROOT / name, tree / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "src", tree / "src", ignore=skip)
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    done = subprocess.run([*cmd, "-w", str(out), str(tree)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("mvpn_lab-*.whl")
    return built


def test_the_wheel_holds_every_file_of_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    files = {
        "mvpn_lab/" + p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    # the files the package reads besides its modules, so that the check cannot pass empty
    assert {"mvpn_lab/data/paper_results.yaml", "mvpn_lab/vlab/data/customize-hook.sh"} <= files
    assert {"mvpn_lab/vlab/data/essential-hook.sh", "mvpn_lab/vlab/data/cabling.sh"} <= files
    assert sorted(files - names) == []
    assert sorted(n for n in names if n.startswith("mvpn_lab/")) == sorted(files)
    # the licence text travels with the package (setuptools' default license-files)
    licence = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert len(licence) == 1, sorted(names)
    assert zipfile.ZipFile(wheel).read(licence[0]) == (ROOT / "LICENSE").read_bytes()


def test_the_installed_wheel_reads_its_data_and_keys_the_twin_image_as_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site)]
    done = subprocess.run([*cmd, str(wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    code = (
        "import mvpn_lab\n"
        "from mvpn_lab.vlab import image, machine\n"
        "from mvpn_lab.analysis import summary\n"
        "print(mvpn_lab.__file__)\n"
        f"print(image.cache_key({SOURCES!r}))\n"
        "assert machine.cabling_script().startswith('#!')\n"
        "assert summary.load_paper()\n"
    )

    def run(path: Path) -> list[str]:
        env = {**os.environ, "PYTHONPATH": str(path)}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    installed_file, installed_key = run(site)
    checkout_file, checkout_key = run(ROOT / "src")
    assert Path(installed_file).is_relative_to(site)
    assert Path(checkout_file).is_relative_to(ROOT / "src")
    assert re.fullmatch(r"[0-9a-f]{16}", installed_key)
    assert installed_key == checkout_key
    assert (site / "bin" / "mvpn-lab").is_file()


# --- the collection artifact -------------------------------------------------------------------


#: The checkout's own: tests, their tools and configuration, the package's source, caches.
UNSHIPPED = {
    "tests",
    "molecule",
    "scripts",
    "benchmarks",
    ".ci",
    "ansible.cfg",
    ".ansible-lint",
    ".gitignore",
    "collections",
    "results",
    "src",
    "pyproject.toml",
    "requirements-dev.txt",
    ".venv",
    ".cache",
    ".ansible",
    ".pytest_cache",
    ".ruff_cache",
}
#: The collection, its documentation and what installs the controller's side of it.
SHIPPED = {
    "plugins",
    "roles",
    "playbooks",
    "docs",
    "inventories",
    "README.md",
    "LICENSE",
    "requirements.txt",
    "bindep.txt",
    "meta/runtime.yml",
    "meta/execution-environment.yml",
    "plugins/modules",
    "plugins/strategy",
    "playbooks/site.yml",
    "changelogs/changelog.yaml",
}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("galaxy")
    galaxy = shutil.which("ansible-galaxy", path=str(BIN)) or "ansible-galaxy"
    done = subprocess.run(
        [galaxy, "collection", "build", str(ROOT), "--output-path", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("mvpn-lab-*.tar.gz")
    return built


def test_the_artifact_ships_the_collection_and_nothing_of_the_checkout_s_own(artifact):
    with tarfile.open(artifact) as tar:
        names = tar.getnames()
    tops = {n.split("/")[0] for n in names}
    assert not tops & UNSHIPPED
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".egg-info"))]
    assert not [n for n in names if n.startswith("changelogs/fragments")]
    assert sorted(SHIPPED - tops - set(names)) == []
    roles = {n.split("/")[1] for n in names if n.startswith("roles/") and n.count("/") >= 2}
    assert roles == {p.name for p in (ROOT / "roles").iterdir() if p.is_dir()}


def test_ansible_builder_reads_the_installed_collection_s_dependencies(artifact, tmp_path):
    builder = shutil.which("ansible-builder", path=str(BIN))
    if builder is None:
        pytest.fail("ansible-builder (requirements-dev.txt) is not installed: run scripts/setup.sh")
    dest = tmp_path / "ansible_collections" / "mvpn" / "lab"
    dest.mkdir(parents=True)
    with tarfile.open(artifact) as tar:
        tar.extractall(dest, filter="data")
    done = subprocess.run([builder, "introspect", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    found = yaml.safe_load(done.stdout.split("\n---\n", 1)[1])
    suffix = "# from collection mvpn.lab"
    assert all(line.endswith(suffix) for kind in ("python", "system") for line in found[kind])
    read = {kind: [line.removesuffix(suffix).strip() for line in found[kind]] for kind in found}

    def lines(name: str) -> list[str]:
        stripped = (line.split("#", 1)[0].strip() for line in (ROOT / name).read_text().splitlines())
        return [line for line in stripped if line]

    assert read["system"] == lines("bindep.txt")
    # ansible-builder leaves out of a collection's Python requirements what an execution
    # environment has anyway: ansible-core (its definition's ansible_core) and PyYAML
    left_out = [line for line in lines("requirements.txt") if line not in read["python"]]
    assert read["python"] == [line for line in lines("requirements.txt") if line not in left_out]
    assert sorted(Requirement(line).name for line in left_out) == ["PyYAML", "ansible-core"]


def test_host_packages_names_an_unknown_profile_in_one_line():
    script = ROOT / "scripts/host-packages.sh"
    proc = subprocess.run([script, "twin", "twinn"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"PROFILE: twinn is not a profile of {ROOT / 'bindep.txt'}\n"
