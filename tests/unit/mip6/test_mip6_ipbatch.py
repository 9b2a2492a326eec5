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


@needs_netns
def test_many_commands_in_one_write_get_their_own_results() -> None:
    # what the daemon's flush sends before a BU: several lines, one failing in the middle
    fallback = RecordingFallback()
    runner = IpBatchRunner(fallback, ip=("unshare", "--net", "ip"))
    try:
        lo_up = ["ip", "-6", "link", "set", "dev", "lo", "up"]
        add = ["ip", "-6", "route", "add", "2001:db8:1::/64", "dev", "lo"]
        listing = ["ip", "-6", "-j", "route", "show"]  # not for the batch: the fallback, in its place
        results = runner.run_many([lo_up, add, add, listing, ["ip", "-6", "route", "del", "2001:db8:1::/64"]])
        assert [r.ok for r in results] == [True, True, False, True, True]
        assert "exists" in results[2].message.lower() and "FIB table" not in results[2].stderr
        assert results[3].stdout == "fallback" and fallback.calls == [listing]
        # two writes (the listing splits the group), one co-process, its line count kept in step
        assert runner.batched == 4 and runner.restarts == 0
        again = runner.run_many([add, add])
        assert [r.ok for r in again] == [True, False]
    finally:
        runner.close()


@needs_netns
def test_a_line_that_makes_ip_exit_fails_alone_and_the_lines_after_it_still_run(named_netns) -> None:
    # ip exits on any failed ip xfrm request (and on some argument errors) without a numbered
    # report: the lines before it worked or were reported, the lines after it never ran, so a
    # new co-process runs them (in the same namespace), and each line gets exactly its own result
    fallback = RecordingFallback()
    runner = IpBatchRunner(fallback, ip=("ip", "-n", named_netns))
    try:
        lo_up = ["ip", "-6", "link", "set", "dev", "lo", "up"]
        missing = ["ip", "-6", "route", "del", "2001:db8:2::/64", "dev", "lo"]
        no_state = ["ip", "-6", "xfrm", "state", "delete", "src", "2001:db8::1", "dst", "2001:db8::2",
                    "proto", "esp", "spi", "0x100"]  # fmt: skip
        add = ["ip", "-6", "route", "add", "2001:db8:1::/64", "dev", "lo"]
        results = runner.run_many([missing, lo_up, no_state, add, add])
        assert [r.ok for r in results] == [False, True, False, True, False]
        assert "FIB table" not in results[0].stderr and "No such process" in results[2].message
        assert "exists" in results[4].message.lower()
        assert runner.restarts == 1 and fallback.calls == []
        bad = ["ip", "-6", "route", "add", "not-a-prefix", "dev", "lo"]
        results = runner.run_many([bad, lo_up])
        assert not results[0].ok and "prefix" in results[0].message and results[1].ok
        assert runner.restarts == 2
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
        # in one run_many a device's creation ends the write: the commands after it go to a new ip
        results = runner.run_many(
            [
                ["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                ["ip", "link", "set", "dev", "v0", "up"],
                ["ip", "link", "del", "v0"],
                ["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                ["ip", "link", "set", "dev", "v0", "up"],
                ["ip", "-6", "route", "replace", "2001:db8::/64", "dev", "v0"],
            ]
        )
        assert [r.message for r in results if not r.ok] == [] and runner.recycled == 7
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
