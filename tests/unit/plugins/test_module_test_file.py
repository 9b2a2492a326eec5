"""mvpn.lab.test_file run in-process on tmp_path."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
from ansible_collections.mvpn.lab.plugins.modules import test_file

BLOCK = 64 * 1024
MARKER = b"\nMVPN-LAB-CLEARTEXT-MARKER\n"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
# The first 100 bytes with the default seed and marker. Clients and the web server compute this
# independently, so the content must never change by accident.
SHA256_100 = "da8a900ebb289107be5cbcf9cf769d9be103a14fbb9c0496f8a14af01629e3f4"


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_content_is_deterministic(tmp_path, run_module):
    size = 3 * BLOCK + 100
    a = run_module(test_file, {"path": str(tmp_path / "a.bin"), "size": size})
    b = run_module(test_file, {"path": str(tmp_path / "b.bin"), "size": size})
    assert a["changed"] is True and b["changed"] is True
    assert a["sha256"] == b["sha256"] == sha256(tmp_path / "a.bin") == sha256(tmp_path / "b.bin")
    assert a["size"] == size and (tmp_path / "a.bin").stat().st_size == size
    assert a["path"] == str(tmp_path / "a.bin")


def test_known_content():
    assert test_file.expected_sha256("mvpn-lab", 100, "MVPN-LAB-CLEARTEXT-MARKER") == SHA256_100


def test_marker_every_64_kib(tmp_path, run_module):
    path = tmp_path / "m.bin"
    run_module(test_file, {"path": str(path), "size": 4 * BLOCK + 100})
    data = path.read_bytes()
    for offset in range(0, len(data), BLOCK):
        assert data[offset : offset + len(MARKER)] == MARKER, offset
    assert data.count(MARKER) == 5
    assert data[len(MARKER) : BLOCK] != data[BLOCK + len(MARKER) : 2 * BLOCK], "blocks repeat"


def test_no_marker(tmp_path, run_module):
    path = tmp_path / "n.bin"
    result = run_module(test_file, {"path": str(path), "size": 2 * BLOCK, "marker": ""})
    data = path.read_bytes()
    assert b"MVPN-LAB" not in data and len(data) == 2 * BLOCK
    assert result["sha256"] != test_file.expected_sha256("mvpn-lab", 2 * BLOCK, "MVPN-LAB-CLEARTEXT-MARKER")


def test_seed_changes_content(tmp_path, run_module):
    a = run_module(test_file, {"path": str(tmp_path / "a.bin"), "size": 1000, "seed": "one"})
    b = run_module(test_file, {"path": str(tmp_path / "b.bin"), "size": 1000, "seed": "two"})
    assert a["sha256"] != b["sha256"]


def test_second_run_leaves_the_file_alone(tmp_path, run_module):
    path = tmp_path / "t.bin"
    args = {"path": str(path), "size": BLOCK + 1}
    first = run_module(test_file, args)
    inode = path.stat().st_ino
    second = run_module(test_file, args)
    assert second["changed"] is False
    assert second["sha256"] == first["sha256"]
    assert path.stat().st_ino == inode, "file was rewritten"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_wrong_content_is_rewritten(tmp_path, run_module):
    path = tmp_path / "t.bin"
    args = {"path": str(path), "size": 5000}
    want = run_module(test_file, args)["sha256"]
    data = bytearray(path.read_bytes())
    data[4000] ^= 0xFF
    path.write_bytes(bytes(data))
    result = run_module(test_file, args)
    assert result["changed"] is True
    assert sha256(path) == want


def test_size_change_is_rewritten(tmp_path, run_module):
    path = tmp_path / "t.bin"
    run_module(test_file, {"path": str(path), "size": 5000})
    result = run_module(test_file, {"path": str(path), "size": 4000})
    assert result["changed"] is True
    assert path.stat().st_size == 4000
    assert sha256(path) == result["sha256"]


def test_size_zero(tmp_path, run_module):
    path = tmp_path / "empty.bin"
    first = run_module(test_file, {"path": str(path), "size": 0})
    assert first["changed"] is True
    assert path.read_bytes() == b""
    assert first["sha256"] == EMPTY_SHA256
    assert run_module(test_file, {"path": str(path), "size": 0})["changed"] is False


def test_check_mode_writes_nothing(tmp_path, run_module):
    path = tmp_path / "t.bin"
    result = run_module(test_file, {"path": str(path), "size": 100}, check=True)
    assert result["changed"] is True
    assert result["sha256"] == SHA256_100
    assert not path.exists()
    assert os.listdir(tmp_path) == [], "temporary file left behind"


def test_check_mode_on_a_good_file_reports_no_change(tmp_path, run_module):
    path = tmp_path / "t.bin"
    run_module(test_file, {"path": str(path), "size": 100})
    result = run_module(test_file, {"path": str(path), "size": 100}, check=True)
    assert result["changed"] is False


def test_mode(tmp_path, run_module):
    path = tmp_path / "t.bin"
    run_module(test_file, {"path": str(path), "size": 100, "mode": "0600"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    result = run_module(test_file, {"path": str(path), "size": 100})
    assert result["changed"] is True, "mode change not reported"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["t.bin"]


def test_negative_size(tmp_path, run_module):
    result = run_module(test_file, {"path": str(tmp_path / "t.bin"), "size": -1})
    assert result["failed"] is True
    assert result["msg"] == "size: expected a number of bytes >= 0, got -1"
    assert os.listdir(tmp_path) == []


def test_missing_folder(tmp_path, run_module):
    result = run_module(test_file, {"path": str(tmp_path / "no" / "t.bin"), "size": 10})
    assert result["failed"] is True
    assert result["msg"] == "path: folder %s does not exist" % (tmp_path / "no")


@pytest.mark.parametrize("size", [1, BLOCK - 1, BLOCK, BLOCK + 1])
def test_block_edges(size):
    data = b"".join(test_file.blocks("s", size, "M"))
    assert len(data) == size
    assert data.startswith(b"\nM\n"[:size])
    assert hashlib.sha256(data).hexdigest() == test_file.expected_sha256("s", size, "M")
