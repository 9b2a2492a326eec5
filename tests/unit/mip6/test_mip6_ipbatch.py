"""The ``ip -batch`` co-process runner, against the real ``ip`` in a throw-away namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

import pytest

from mvpn_lab.mip6.daemon.kernel.base import CommandResult, IpBatchRunner, batch_line


def _netns_works() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    done = subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False)
    return done.returncode == 0


needs_netns = pytest.mark.skipif(not _netns_works(), reason="needs root and unshare --net")


class RecordingFallback:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.calls.append(list(argv))
        return CommandResult(0, "fallback", "")


def test_batch_line_takes_mutations_and_leaves_listings_to_the_fallback() -> None:
    assert batch_line(["ip", "-6", "route", "replace", "default", "dev", "ip6tnl1"]) == (
        ("-6",),
        "route replace default dev ip6tnl1",
    )
    assert batch_line(["ip", "link", "set", "dev", "x", "up"]) == ((), "link set dev x up")
    assert batch_line(["ip", "-6", "-j", "route", "show"]) is None
    assert batch_line(["ip", "-6", "xfrm", "policy", "list", "dir", "out"]) is None
    assert batch_line(["iw", "dev", "wlan0", "link"]) is None
    assert batch_line(["ip", "-6", "addr", "add", "a b", "dev", "lo"]) is None
    assert batch_line(["ip", "-s", "link", "set", "dev", "x", "up"]) is None
    assert batch_line(["ip", "-4", "route", "del", "192.0.2.0/24"]) is None  # the sentinel is IPv6


def test_commands_the_batch_cannot_take_go_to_the_fallback() -> None:
    fallback = RecordingFallback()
    runner = IpBatchRunner(fallback)
    result = runner(["ip", "-6", "-j", "route", "show"])
    assert result.stdout == "fallback" and fallback.calls == [["ip", "-6", "-j", "route", "show"]]
    assert runner.batched == 0


@needs_netns
def test_results_per_command_from_one_co_process() -> None:
    fallback = RecordingFallback()
    # one namespace for the whole test: a single option set, so a single co-process
    runner = IpBatchRunner(fallback, ip=("unshare", "--net", "ip"))
    try:
        assert runner(["ip", "-6", "link", "set", "dev", "lo", "up"]).ok
        assert runner(["ip", "-6", "route", "add", "2001:db8:1::/64", "dev", "lo"]).ok
        again = runner(["ip", "-6", "route", "add", "2001:db8:1::/64", "dev", "lo"])
        assert not again.ok and "exists" in again.message.lower()
        missing = runner(["ip", "-6", "route", "del", "2001:db8:2::/64", "dev", "lo"])
        assert not missing.ok and "FIB table" not in missing.stderr
        # the co-process survived the failures and still works
        assert runner(["ip", "-6", "route", "del", "2001:db8:1::/64", "dev", "lo"]).ok
        assert runner.batched == 5 and runner.restarts == 0 and fallback.calls == []
    finally:
        runner.close()


@needs_netns
def test_an_argument_error_that_kills_ip_fails_one_command_and_the_next_restarts_it() -> None:
    runner = IpBatchRunner(RecordingFallback(), ip=("unshare", "--net", "ip"))
    try:
        bad = runner(["ip", "-6", "route", "add", "not-a-prefix", "dev", "lo"])
        assert not bad.ok and "prefix" in bad.message
        assert runner(["ip", "-6", "link", "set", "dev", "lo", "up"]).ok
        assert runner.restarts == 1
    finally:
        runner.close()


@pytest.fixture
def named_netns():
    name = f"mvpn-batch-{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", name], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"ip netns add: {done.stderr.decode().strip()}")
    yield name
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@needs_netns
def test_a_re_created_device_is_not_resolved_to_its_stale_index(named_netns):
    # ip caches interface name -> index; after "link del" and "link add" of the same name the
    # cached index is stale ("No such device") unless the co-process is started afresh
    runner = IpBatchRunner(RecordingFallback(), ip=("ip", "-n", named_netns))
    try:
        for _ in range(2):
            assert runner(["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"]).ok
            assert runner(["ip", "link", "set", "dev", "v0", "up"]).ok
            assert runner(["ip", "-6", "route", "replace", "2001:db8::/64", "dev", "v0"]).ok
            assert runner(["ip", "link", "del", "v0"]).ok
        assert runner.recycled == 4
        # the next co-process is already running: the next command does not wait for it
        (proc,) = runner._procs.values()
        assert proc.alive()
    finally:
        runner.close()


@needs_netns
def test_the_co_process_outlives_a_sigterm_to_the_unit():
    # systemd sends SIGTERM to every process of the unit at stop; teardown still needs ip
    import signal

    runner = IpBatchRunner(RecordingFallback(), ip=("unshare", "--net", "ip"))
    try:
        assert runner(["ip", "-6", "link", "set", "dev", "lo", "up"]).ok
        (proc,) = runner._procs.values()
        os.kill(proc.proc.pid, signal.SIGTERM)
        assert runner(["ip", "-6", "route", "add", "2001:db8:1::/64", "dev", "lo"]).ok
        assert runner.restarts == 0
    finally:
        runner.close()
