"""The mvpn.lab.capture action plugin: fetching never overwrites, and the copy's sha256 is checked."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from types import SimpleNamespace

import pytest
from ansible_collections.mvpn.lab.plugins.action import capture
from ansible_collections.mvpn.lab.plugins.action.capture import PlaceError, place_capture

DATA = b"\xd4\xc3\xb2\xa1 a capture"
SHA = hashlib.sha256(DATA).hexdigest()


class Fetch:
    """fetch(local) writing data, counting calls; ``before`` runs first (to simulate a race)."""

    def __init__(self, data=DATA, before=None):
        self.data, self.before, self.calls = data, before, []

    def __call__(self, local):
        self.calls.append(local)
        if self.before:
            self.before()
        with open(local, "wb") as fh:
            fh.write(self.data)


def leftovers(folder):
    return [n for n in os.listdir(folder) if n.endswith(".part")]


def test_fresh_destination_with_new_folders(tmp_path):
    dest = tmp_path / "run" / "captures" / "mn.pcap"
    fetch = Fetch()
    assert place_capture(str(dest), SHA, fetch) == {"changed": True, "fetched": True, "dest": str(dest)}
    assert dest.read_bytes() == DATA
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert len(fetch.calls) == 1 and os.path.dirname(fetch.calls[0]) == str(dest.parent)
    assert leftovers(dest.parent) == []


def test_same_capture_there_already_is_not_fetched_again(tmp_path):
    dest = tmp_path / "mn.pcap"
    dest.write_bytes(DATA)
    inode = dest.stat().st_ino
    fetch = Fetch()
    assert place_capture(str(dest), SHA, fetch) == {"changed": False, "fetched": False, "dest": str(dest)}
    assert fetch.calls == []
    assert dest.stat().st_ino == inode


def test_other_content_is_never_overwritten(tmp_path):
    dest = tmp_path / "mn.pcap"
    dest.write_bytes(b"another run's capture")
    fetch = Fetch()
    with pytest.raises(PlaceError) as err:
        place_capture(str(dest), SHA, fetch)
    assert str(err.value) == f"fetch_to: {dest} exists with other content; captures are never overwritten"
    assert dest.read_bytes() == b"another run's capture"
    assert fetch.calls == []


def test_a_folder_in_the_way_is_other_content(tmp_path):
    (tmp_path / "mn.pcap").mkdir()
    with pytest.raises(PlaceError, match="exists with other content"):
        place_capture(str(tmp_path / "mn.pcap"), SHA, Fetch())


def test_corrupt_copy_is_rejected(tmp_path):
    dest = tmp_path / "mn.pcap"
    with pytest.raises(PlaceError) as err:
        place_capture(str(dest), SHA, Fetch(data=DATA[:-1]))
    bad = hashlib.sha256(DATA[:-1]).hexdigest()
    assert (
        str(err.value) == f"fetch_to: the copy fetched for {dest} has sha256 {bad}, the host reported {SHA}"
    )
    assert not dest.exists()
    assert leftovers(tmp_path) == []


def test_destination_appearing_during_the_fetch(tmp_path):
    dest = tmp_path / "mn.pcap"
    fetch = Fetch(before=lambda: dest.write_bytes(b"written meanwhile"))
    with pytest.raises(PlaceError, match="exists with other content"):
        place_capture(str(dest), SHA, fetch)
    assert dest.read_bytes() == b"written meanwhile"
    assert leftovers(tmp_path) == []
    dest.unlink()
    same = Fetch(before=lambda: dest.write_bytes(DATA))
    assert place_capture(str(dest), SHA, same)["changed"] is False


def test_failing_fetch_leaves_nothing(tmp_path):
    def fetch(local):
        raise OSError("connection lost")

    with pytest.raises(OSError, match="connection lost"):
        place_capture(str(tmp_path / "mn.pcap"), SHA, fetch)
    assert os.listdir(tmp_path) == []


def test_without_hard_links(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(capture.os, "link", no_link)
    dest = tmp_path / "mn.pcap"
    assert place_capture(str(dest), SHA, Fetch())["fetched"] is True
    assert dest.read_bytes() == DATA
    assert leftovers(tmp_path) == []


def test_no_sha256_from_the_module(tmp_path):
    with pytest.raises(PlaceError, match="no sha256"):
        place_capture(str(tmp_path / "mn.pcap"), None, Fetch())
    assert os.listdir(tmp_path) == []


# ---- ActionModule.run with stand-ins for the task, connection and loader


def action(tmp_path, args, module_result, check=False, become=False):
    plugin = capture.ActionModule.__new__(capture.ActionModule)
    remote = tmp_path / "remote.pcap"
    remote.write_bytes(DATA)
    calls = []

    def execute_module(module_name=None, module_args=None, task_vars=None, **kw):
        calls.append((module_name, dict(module_args)))
        if module_name == "ansible.legacy.slurp":
            return {"content": base64.b64encode(remote.read_bytes()).decode(), "encoding": "base64"}
        return dict(module_result, path=str(remote))

    def fetch_file(src, dst):
        calls.append(("fetch_file", src))
        with open(src, "rb") as a, open(dst, "wb") as b:
            b.write(a.read())

    plugin._task = SimpleNamespace(args=args, async_val=0, check_mode=check, action="mvpn.lab.capture")
    plugin._connection = SimpleNamespace(
        _shell=SimpleNamespace(tmpdir="/tmp/x"), become=object() if become else None, fetch_file=fetch_file
    )
    plugin._loader = SimpleNamespace(path_dwim=lambda p: p if os.path.isabs(p) else str(tmp_path / p))
    plugin._execute_module = execute_module
    plugin._remove_tmp_path = lambda path: None
    return plugin, calls


STOPPED = {"changed": True, "sha256": SHA, "size": len(DATA), "status": "stopped"}


def test_run_strips_fetch_to_and_fetches(tmp_path):
    plugin, calls = action(
        tmp_path, {"state": "stopped", "path": "/x.pcap", "fetch_to": "out/mn.pcap"}, STOPPED
    )
    result = plugin.run(task_vars={})
    assert calls[0] == ("mvpn.lab.capture", {"state": "stopped", "path": "/x.pcap"})
    assert calls[1] == ("fetch_file", str(tmp_path / "remote.pcap"))
    assert result["dest"] == str(tmp_path / "out/mn.pcap") and result["fetched"] is True
    assert (tmp_path / "out/mn.pcap").read_bytes() == DATA
    # second run: the module reports no change, the copy is there: no change at all
    plugin, calls = action(
        tmp_path,
        {"state": "stopped", "path": "/x.pcap", "fetch_to": "out/mn.pcap"},
        dict(STOPPED, changed=False),
    )
    result = plugin.run(task_vars={})
    assert result["changed"] is False and result["fetched"] is False
    assert [c[0] for c in calls] == ["mvpn.lab.capture"]


def test_run_with_become_uses_slurp(tmp_path):
    plugin, calls = action(
        tmp_path, {"state": "stopped", "path": "/x.pcap", "fetch_to": "mn.pcap"}, STOPPED, become=True
    )
    result = plugin.run(task_vars={})
    assert [c[0] for c in calls] == ["mvpn.lab.capture", "ansible.legacy.slurp"]
    assert result["fetched"] is True and (tmp_path / "mn.pcap").read_bytes() == DATA


def test_run_reports_overwrite_refusal(tmp_path):
    (tmp_path / "mn.pcap").write_bytes(b"other")
    plugin = action(tmp_path, {"state": "stopped", "path": "/x.pcap", "fetch_to": "mn.pcap"}, STOPPED)[0]
    result = plugin.run(task_vars={})
    assert result["failed"] is True and result["fetched"] is False
    assert (
        result["msg"]
        == f"fetch_to: {tmp_path / 'mn.pcap'} exists with other content; captures are never overwritten"
    )
    assert result["sha256"] == SHA, "the module's result is kept"


def test_run_fetch_to_only_when_stopping(tmp_path):
    plugin, calls = action(
        tmp_path, {"state": "started", "path": "/x.pcap", "interface": "wlan0", "fetch_to": "a"}, {}
    )
    result = plugin.run(task_vars={})
    assert result["msg"] == "fetch_to: only valid with state=stopped"
    assert calls == []


def test_run_does_not_fetch_after_module_failure_or_in_check_mode(tmp_path):
    plugin, calls = action(
        tmp_path,
        {"state": "stopped", "path": "/x.pcap", "fetch_to": "mn.pcap"},
        {"failed": True, "msg": "boom"},
    )
    assert plugin.run(task_vars={})["msg"] == "boom"
    assert len(calls) == 1
    plugin, calls = action(
        tmp_path, {"state": "stopped", "path": "/x.pcap", "fetch_to": "mn.pcap"}, STOPPED, check=True
    )
    result = plugin.run(task_vars={})
    assert result["fetched"] is False and not (tmp_path / "mn.pcap").exists()
    assert len(calls) == 1
