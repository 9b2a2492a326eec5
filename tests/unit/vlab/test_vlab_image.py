"""The twin's image: cache key, reuse of a cached build, required tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mvpn_lab.errors import LabError
from mvpn_lab.vlab import image

SOURCES = [
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
]
MIRROR = "http://mirror.example/debian"


@pytest.fixture
def hooks(tmp_path, monkeypatch) -> dict[str, Path]:
    """Copies of the hook scripts that a test may edit; image._hook serves them."""
    folder = tmp_path / "hooks"
    folder.mkdir()
    copies = {}
    for name in ("essential-hook.sh", "customize-hook.sh"):
        copies[name] = folder / name
        shutil.copy(image._hook(name), copies[name])
    monkeypatch.setattr(image, "_hook", lambda name: copies[name])
    return copies


def _no_subprocess(monkeypatch):
    def refuse(*args, **kwargs):
        pytest.fail(f"unexpected subprocess: {args[0] if args else kwargs}")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)


# --- cache key -------------------------------------------------------------------------


def test_cache_key_is_stable(hooks):
    key = image.cache_key(SOURCES)
    assert key == image.cache_key(list(SOURCES))
    assert len(key) == 16 and int(key, 16) >= 0


def test_cache_key_changes_with_a_package(hooks, monkeypatch):
    before = image.cache_key(SOURCES)
    monkeypatch.setattr(image, "PACKAGES", (*image.PACKAGES, "strace"))
    assert image.cache_key(SOURCES) != before


def test_cache_key_ignores_package_order(hooks, monkeypatch):
    before = image.cache_key(SOURCES)
    monkeypatch.setattr(image, "PACKAGES", tuple(reversed(image.PACKAGES)))
    assert image.cache_key(SOURCES) == before


def test_cache_key_changes_with_a_source_line(hooks):
    before = image.cache_key(SOURCES)
    assert image.cache_key([SOURCES[0]]) != before
    assert image.cache_key([SOURCES[0].replace("deb.debian.org", "mirror.example"), SOURCES[1]]) != before


@pytest.mark.parametrize("hook", ["essential-hook.sh", "customize-hook.sh"])
def test_cache_key_changes_with_a_hook_script(hooks, hook):
    before = image.cache_key(SOURCES)
    hooks[hook].write_text(hooks[hook].read_text() + "\necho changed\n")
    assert image.cache_key(SOURCES) != before


def test_cache_key_changes_with_format_and_size(hooks, monkeypatch):
    before = image.cache_key(SOURCES)
    monkeypatch.setattr(image, "IMAGE_SIZE", "8G")
    after_size = image.cache_key(SOURCES)
    monkeypatch.setattr(image, "FORMAT_VERSION", image.FORMAT_VERSION + 1)
    assert len({before, after_size, image.cache_key(SOURCES)}) == 3


# --- cached build ----------------------------------------------------------------------


def _cached_image(tmp_path) -> image.Image:
    key = image.cache_key(image.aptsources.debian_sources(override=MIRROR))
    img = image.Image(tmp_path / "cache" / key)
    img.directory.mkdir(parents=True)
    for path in (img.disk, img.kernel, img.initrd):
        path.write_bytes(b"x")
    img.host_key.write_text("ssh-ed25519 AAAA root@mvpn-twin\n")
    return img


def test_build_returns_the_cached_image_without_running_anything(tmp_path, monkeypatch, capsys):
    img = _cached_image(tmp_path)
    _no_subprocess(monkeypatch)
    monkeypatch.setattr(image, "check_tools", lambda: pytest.fail("check_tools called for a cached image"))
    built = image.build(mirror=MIRROR)
    assert built == img and built.complete()
    assert f"{img.key} is cached" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [img.key]  # no work folder


def test_build_of_an_incomplete_image_checks_the_tools_first(tmp_path, monkeypatch):
    img = _cached_image(tmp_path)
    img.initrd.unlink()
    assert not img.complete()
    _no_subprocess(monkeypatch)

    def missing_tools():
        raise LabError("tools missing")

    monkeypatch.setattr(image, "check_tools", missing_tools)
    with pytest.raises(LabError, match="tools missing"):
        image.build(mirror=MIRROR)


def test_current_uses_the_cache_dir_from_the_environment(tmp_path):
    img = image.current(mirror=MIRROR)
    assert img.directory.parent == tmp_path / "cache"
    assert not img.complete()


# --- required tools --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "install"),
    [
        ("mmdebstrap", "apt-get install mmdebstrap"),
        ("mke2fs", "apt-get install e2fsprogs"),
        ("ssh-keygen", "apt-get install openssh-client"),
    ],
)
def test_check_tools_names_the_missing_tool(monkeypatch, tool, install):
    monkeypatch.setattr(shutil, "which", lambda name: None if name == tool else f"/usr/bin/{name}")
    with pytest.raises(LabError) as err:
        image.check_tools()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{tool} not found")
    assert f"'{install}'" in message


def test_check_tools_needs_root(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(image.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        image.check_tools()
    monkeypatch.setattr(image.os, "geteuid", lambda: 0)
    image.check_tools()


def test_build_without_mmdebstrap_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "mmdebstrap" else f"/usr/bin/{name}")
    _no_subprocess(monkeypatch)
    with pytest.raises(LabError, match="apt-get install mmdebstrap"):
        image.build(mirror=MIRROR)
    assert not (tmp_path / "cache").exists()


def test_metadata_of_a_missing_or_broken_file(tmp_path):
    img = image.Image(tmp_path / "nothing")
    assert image.metadata(img) == {}
    img.directory.mkdir()
    (img.directory / "image.json").write_text("{not json")
    assert image.metadata(img) == {}
    (img.directory / "image.json").write_text('{"key": "abc"}')
    assert image.metadata(img) == {"key": "abc"}
