"""mvpn.lab.sysctl run in-process on a fake /proc/sys in a temporary folder."""

from __future__ import annotations

import os

import pytest
from ansible_collections.mvpn.lab.plugins.modules import sysctl

PARAMS = {
    "net.ipv6.conf.all.forwarding": "0\n",
    "net.ipv6.conf.eth0.accept_ra": "1\n",
    "net.ipv6.conf.eth0.autoconf": "1\n",
    "net.ipv6.conf.eth0/100.accept_ra": "1\n",
    "net.ipv4.tcp_rmem": "4096\t131072\t6291456\n",
}


@pytest.fixture
def proc(tmp_path, monkeypatch):
    """A /proc/sys under tmp_path with PARAMS; the module's own name-to-path rule is kept."""
    real_path = sysctl._path
    monkeypatch.setattr(sysctl, "_path", lambda name: str(tmp_path) + real_path(name)[len("/proc/sys") :])
    for name, value in PARAMS.items():
        path = sysctl._path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(value)

    def read(name):
        with open(sysctl._path(name)) as fh:
            return fh.read()

    return read


def test_name_to_path_follows_sysctl():
    assert sysctl._path("net.ipv6.conf.all.forwarding") == "/proc/sys/net/ipv6/conf/all/forwarding"
    assert sysctl._path("net.ipv6.conf.eth0/100.accept_ra") == "/proc/sys/net/ipv6/conf/eth0.100/accept_ra"


def test_sets_differing_values_only(proc, run_module):
    result = run_module(
        sysctl,
        {
            "settings": {
                "net.ipv6.conf.all.forwarding": 1,
                "net.ipv6.conf.eth0.accept_ra": 0,
                "net.ipv6.conf.eth0.autoconf": 1,
            }
        },
    )
    assert result["changed"] is True
    assert result["changed_settings"] == {
        "net.ipv6.conf.all.forwarding": {"before": "0", "after": "1"},
        "net.ipv6.conf.eth0.accept_ra": {"before": "1", "after": "0"},
    }
    assert proc("net.ipv6.conf.all.forwarding") == "1"
    assert proc("net.ipv6.conf.eth0.accept_ra") == "0"
    assert proc("net.ipv6.conf.eth0.autoconf") == "1\n", "an equal value was rewritten"


def test_second_run_changes_nothing(proc, run_module):
    args = {"settings": {"net.ipv6.conf.all.forwarding": 1, "net.ipv6.conf.eth0/100.accept_ra": 0}}
    assert run_module(sysctl, args)["changed"] is True
    assert proc("net.ipv6.conf.eth0/100.accept_ra") == "0"
    result = run_module(sysctl, args)
    assert result["changed"] is False
    assert result["changed_settings"] == {}


def test_values_compare_as_sysctl_prints_them(proc, run_module):
    """Booleans are 0/1, strings and numbers compare equal, whitespace between words is normalised."""
    result = run_module(
        sysctl,
        {
            "settings": {
                "net.ipv6.conf.all.forwarding": False,
                "net.ipv6.conf.eth0.accept_ra": "1",
                "net.ipv4.tcp_rmem": "4096 131072  6291456",
            }
        },
    )
    assert result["changed"] is False
    assert proc("net.ipv4.tcp_rmem") == "4096\t131072\t6291456\n"


def test_bool_true_is_written_as_1(proc, run_module):
    run_module(sysctl, {"settings": {"net.ipv6.conf.all.forwarding": True}})
    assert proc("net.ipv6.conf.all.forwarding") == "1"


def test_check_mode_writes_nothing(proc, run_module):
    result = run_module(sysctl, {"settings": {"net.ipv6.conf.all.forwarding": 1}}, check=True)
    assert result["changed"] is True
    assert result["changed_settings"] == {"net.ipv6.conf.all.forwarding": {"before": "0", "after": "1"}}
    assert proc("net.ipv6.conf.all.forwarding") == "0\n"


def test_diff(proc, run_module):
    result = run_module(
        sysctl, {"settings": {"net.ipv6.conf.all.forwarding": 1, "net.ipv6.conf.eth0.autoconf": 1}}, diff=True
    )
    assert result["diff"] == {
        "before": "net.ipv6.conf.all.forwarding = 0\n",
        "after": "net.ipv6.conf.all.forwarding = 1\n",
    }


def test_unknown_parameter_fails_before_writing(proc, run_module):
    result = run_module(
        sysctl, {"settings": {"net.ipv6.conf.wlp2s0.accept_ra": 0, "net.ipv6.conf.all.forwarding": 1}}
    )
    assert result["failed"] is True
    assert result["msg"].startswith(
        "settings: net.ipv6.conf.wlp2s0.accept_ra does not exist on this host (no "
    )
    assert result["msg"].endswith("/net/ipv6/conf/wlp2s0/accept_ra)")
    assert proc("net.ipv6.conf.all.forwarding") == "0\n"


def test_unwritable_parameter_is_reported(proc, run_module, monkeypatch):
    real_open = open

    def refuse_writes(path, mode="r", *args, **kwargs):
        if "w" in mode:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refuse_writes)
    result = run_module(sysctl, {"settings": {"net.ipv6.conf.all.forwarding": 1}})
    assert result["failed"] is True
    assert result["msg"].startswith("settings: cannot set net.ipv6.conf.all.forwarding to 1: ")
    assert "Permission denied" in result["msg"]


def test_settings_are_required(run_module):
    result = run_module(sysctl, {})
    assert result["failed"] is True
    assert "settings" in result["msg"]
