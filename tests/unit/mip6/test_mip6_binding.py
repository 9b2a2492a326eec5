"""Sequence arithmetic, binding cache, clock, counters, logger, timers."""

from __future__ import annotations

import io
import json

import pytest

from mvpn_lab.mip6.core.binding import BindingCache, BindingCacheEntry, seq_add, seq_gt, seq_lt
from mvpn_lab.mip6.core.clock import FakeClock, SystemClock, iso_timestamp
from mvpn_lab.mip6.core.counters import Counters
from mvpn_lab.mip6.core.log import MHLogger
from mvpn_lab.mip6.core.node import Node
from mvpn_lab.mip6.wire.messages import HomeTestInit

from ._helpers import COA1, HOA, HOA2


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (1, 2, True),
        (2, 1, False),
        (5, 5, False),
        (65535, 0, True),  # wraps
        (0, 65535, False),
        (100, 100 + 32767, True),  # last number still "after"
        (100, 100 + 32768, False),  # exactly half way: not ordered either way
        (100 + 32768, 100, False),
        (40000, 7000, True),  # 7000 - 40000 mod 2**16 = 32536
    ],
)
def test_seq_lt_modulo(a, b, expected):
    assert seq_lt(a, b) is expected
    assert seq_gt(b, a) is expected


def test_seq_add_wraps():
    assert seq_add(65535) == 0 and seq_add(10, 5) == 15


def test_binding_cache_expiry_and_listing():
    cache = BindingCache()
    cache.put(BindingCacheEntry(HOA2, COA1, seq=1, lifetime=10, registered=100, home_registration=True))
    cache.put(BindingCacheEntry(HOA, COA1, seq=1, lifetime=50, registered=100, home_registration=False))
    assert [e.home_address for e in cache.expired(110)] == [HOA2]
    listing = cache.to_list(105)
    assert [e["home_address"] for e in listing] == [str(HOA), str(HOA2)]  # sorted
    assert listing[1]["remaining"] == 5
    assert cache.remove(HOA2) is not None and cache.remove(HOA2) is None
    assert len(cache) == 1 and HOA in cache


def test_clocks():
    clock = FakeClock(start=5, wall_start=1_000_000)
    clock.advance(2.5)
    assert clock.monotonic() == 7.5 and clock.wall() == 1_000_002.5
    with pytest.raises(ValueError):
        clock.advance(-1)
    system = SystemClock()
    assert system.monotonic() <= system.monotonic()
    assert iso_timestamp(0) == "1970-01-01T00:00:00.000000Z"


def test_counters():
    c = Counters()
    c.inc("b")
    c.inc("a", 3)
    assert c.as_dict() == {"a": 3, "b": 1} and c.total == 4 and c["zzz"] == 0


def test_logger_writes_one_json_line_per_message():
    clock = FakeClock(start=0, wall_start=1_700_000_000.25)
    out = io.StringIO()
    log = MHLogger(out, clock, node="n1", role="mn")
    log.log("tx", src=COA1, dst=HOA, msg=HomeTestInit(cookie=b"a" * 8), via_tunnel=True, peer=HOA)
    (line,) = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["ts"] == "2023-11-14T22:13:20.250000Z" and record["epoch"] == 1_700_000_000.25
    assert record["node"] == "n1" and record["dir"] == "tx" and record["msg"]["cookie"] == "61" * 8
    assert record["peer"] == str(HOA) and record["hao"] is None
    MHLogger(None, clock, node="x", role="y").log("rx", src=COA1, dst=HOA, msg=None)  # no stream: no-op


def test_timers_fire_in_order_and_can_be_cancelled():
    clock = FakeClock()
    node = Node(clock=clock, sink=lambda a: None)
    fired = []
    node.set_timer("b", 2, lambda: fired.append("b"))
    node.set_timer("a", 1, lambda: fired.append("a"))
    node.set_timer("c", 3, lambda: fired.append("c"))
    node.cancel_timer("c")
    assert node.next_deadline() == clock.monotonic() + 1
    clock.advance(5)
    node.tick()
    assert fired == ["a", "b"] and node.next_deadline() is None

    def rearm():
        fired.append("r")
        node.set_timer("r", 0, rearm)

    node.set_timer("r", 0, rearm)
    node.tick()  # a timer re-arming itself with no delay cannot hang the loop
    assert fired.count("r") == 10_000


def test_open_logger_appends_to_file(tmp_path):
    from mvpn_lab.mip6.core.log import open_logger

    clock = FakeClock()
    path = tmp_path / "mip6.jsonl"
    for _ in range(2):
        log = open_logger(str(path), clock, node="ha", role="ha")
        log.log("rx", src=COA1, dst=HOA, msg=HomeTestInit())
        log.stream.close()
    assert [json.loads(x)["dir"] for x in path.read_text().splitlines()] == ["rx", "rx"]
    assert open_logger(None, clock, node="ha", role="ha").stream is None
