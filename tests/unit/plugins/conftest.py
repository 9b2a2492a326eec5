"""Fixtures for the collection's plugin tests.

The checkout is the collection; ``collections/ansible_collections/mvpn/lab`` links back to
it, so putting ``collections`` on sys.path makes ``ansible_collections.mvpn.lab`` importable.

``fake_ip`` stands in for iproute2 (see ``_fakeip.FakeIp``) as ``AnsibleModule.run_command``.
``run_module`` runs a module's ``main()`` in-process with ansible-core's
``patch_module_args`` and returns the JSON result the module printed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

COLLECTIONS = Path(__file__).resolve().parents[3] / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible.module_utils import basic  # noqa: E402
from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ._fakeip import FakeIp  # noqa: E402


@pytest.fixture
def fake_ip(monkeypatch):
    fake = FakeIp()
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, args, **kw: fake(args, **kw))
    return fake


@pytest.fixture
def run_module(capsys):
    """``run_module(module, args, check=False, diff=False)`` -> the module's result dict."""

    def run(module, args, check=False, diff=False):
        args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
        with patch_module_args(args), pytest.raises(SystemExit) as exited:
            module.main()
        result = json.loads(capsys.readouterr().out)
        assert exited.value.code == (1 if result.get("failed") else 0), result
        return result

    return run


@pytest.fixture
def wpa_dirs(monkeypatch):
    """Short folders for wpa_supplicant control sockets and for the clients' sockets.

    UNIX socket paths are limited to 107 bytes, so the folders are made directly in /tmp rather
    than under pytest's longer tmp_path. ``tempfile.gettempdir()`` points at the clients' folder,
    so a test can check that no client socket file is left behind.
    """
    import shutil
    import tempfile

    ctrl = Path(tempfile.mkdtemp(prefix="mvpn-wpa-"))
    clients = Path(tempfile.mkdtemp(prefix="mvpn-wpc-"))
    monkeypatch.setattr(tempfile, "tempdir", str(clients))
    yield ctrl, clients
    shutil.rmtree(ctrl, ignore_errors=True)
    shutil.rmtree(clients, ignore_errors=True)


@pytest.fixture
def fake_wpa(wpa_dirs):
    """``fake_wpa(interface="wlan0", **options)`` starts a FakeWpa in the control folder."""
    from ._fakewpa import FakeWpa

    started = []

    def start(interface="wlan0", **options):
        fake = FakeWpa(wpa_dirs[0], interface, **options)
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()
