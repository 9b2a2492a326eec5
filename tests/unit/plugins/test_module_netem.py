"""mvpn.lab.netem run in-process against a fake tc (see _faketc.FakeTc)."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible_collections.mvpn.lab.plugins.module_utils import tc
from ansible_collections.mvpn.lab.plugins.modules import netem

from ._faketc import FakeTc

UMTS_DOWN = {"device": "eth1", "delay_ms": 250, "rate_kbit": 128, "limit": 60}
GPRS_UP = {"device": "eth0", "delay_ms": 350, "jitter_ms": 20, "loss_pct": 1.5, "rate_kbit": 10, "limit": 30}


@pytest.fixture
def fake_tc(monkeypatch):
    fake = FakeTc()
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, args, **kw: fake(args, **kw))
    return fake


def test_umts_downlink_on_a_fresh_interface(fake_tc, run_module):
    result = run_module(netem, UMTS_DOWN)
    assert fake_tc.changing() == [
        "tc qdisc replace dev eth1 root handle 1: netem limit 60 delay 250.000ms rate 128kbit"
    ]
    assert result["changed"] is True and result["before"] is None
    assert result["after"] == {
        "delay_ms": 250.0,
        "jitter_ms": 0.0,
        "loss_pct": 0.0,
        "rate_kbit": 128.0,
        "limit": 60,
        "shaper": "netem",
    }


def test_second_run_reads_the_kernel_and_changes_nothing(fake_tc, run_module):
    run_module(netem, GPRS_UP)
    fake_tc.commands.clear()
    result = run_module(netem, GPRS_UP)
    assert fake_tc.changing() == [] and result["changed"] is False
    assert result["before"] == result["after"]
    assert result["before"]["rate_kbit"] == pytest.approx(10) and result["before"][
        "loss_pct"
    ] == pytest.approx(1.5)


def test_the_kernels_microsecond_rounding_is_no_change():
    """The UMTS profile's delay on the twin: tc -j printed 0.242624 s for 242.625 ms and 0.001499 s
    for a 1.5 ms jitter (the kernel keeps times in whole ticks and tc rounds them down), which must
    not count as a difference (the molecule idempotence check failed on it)."""
    recorded = (
        '[{"kind":"netem","handle":"1:","root":true,"refcnt":2,"options":{"limit":89,"delay":{"delay":0.242624,'
        '"jitter":0.001499,"correlation":0},"rate":{"rate":16000,"packetoverhead":0,"cellsize":0,'
        '"celloverhead":0},"ecn":false,"gap":0}}]'
    )
    found = tc.current(tc.parse_qdiscs(recorded))
    wanted = tc.Impairment(delay_ms=242.625, jitter_ms=1.5, rate_kbit=128, limit=89)
    assert wanted.same_as(found)
    # a real difference of 10 microseconds still counts
    assert not tc.Impairment(delay_ms=242.635, jitter_ms=1.5, rate_kbit=128, limit=89).same_as(found)


def test_recorded_twin_output_is_read_back_exactly():
    """What `tc -j qdisc show` printed on the twin (iproute2 6.1) after the GPRS uplink and a tbf."""
    recorded = (
        '[{"kind":"netem","handle":"1:","root":true,"refcnt":2,"options":{"limit":30,"delay":{"delay":0.35,'
        '"jitter":0.02,"correlation":0},"loss-random":{"loss":0.015,"correlation":0},"rate":{"rate":1250,'
        '"packetoverhead":0,"cellsize":0,"celloverhead":0},"ecn":false,"gap":0}},{"kind":"tbf","handle":"10:",'
        '"parent":"1:1","options":{"rate":5000,"burst":3200,"lat":1000000}}]'
    )
    found = tc.current(tc.parse_qdiscs(recorded))
    assert found.as_dict() == {
        "delay_ms": 350.0,
        "jitter_ms": 20.0,
        "loss_pct": 1.5,
        "rate_kbit": 40.0,
        "limit": 30,
        "shaper": "tbf",
        "tbf_burst": 3200,
        "tbf_latency_ms": 1000.0,
    }
    assert (
        tc.current(tc.parse_qdiscs('[{"kind":"noqueue","handle":"0:","root":true,"refcnt":2,"options":{}}]'))
        is None
    )
    assert tc.current(tc.parse_qdiscs("[]")) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"delay_ms": 350}, "delay 350.000ms"),
        ({"rate_kbit": 40}, "rate 40kbit"),
        ({"limit": 100}, "limit 100"),
        ({"jitter_ms": 5}, "delay 250.000ms 5.000ms"),
        ({"loss_pct": 2}, "loss random 2%"),
    ],
)
def test_a_real_difference_replaces_the_qdisc(fake_tc, run_module, change, expected):
    run_module(netem, UMTS_DOWN)
    fake_tc.commands.clear()
    result = run_module(netem, dict(UMTS_DOWN, **change))
    assert result["changed"] is True
    (command,) = fake_tc.changing()
    assert command.startswith("tc qdisc replace dev eth1 root handle 1: netem") and expected in command


def test_tbf_shaper_puts_a_token_bucket_below_netem(fake_tc, run_module):
    args = dict(UMTS_DOWN, shaper="tbf", tbf_burst=3200, tbf_latency_ms=800)
    result = run_module(netem, args)
    assert fake_tc.changing() == [
        "tc qdisc replace dev eth1 root handle 1: netem limit 60 delay 250.000ms",
        "tc qdisc replace dev eth1 parent 1:1 handle 10: tbf rate 128kbit burst 3200 latency 800.000ms",
    ]
    assert result["after"]["shaper"] == "tbf"
    fake_tc.commands.clear()
    assert run_module(netem, args)["changed"] is False and fake_tc.changing() == []


def test_switching_shaper_starts_from_the_default_qdisc(fake_tc, run_module):
    run_module(netem, dict(UMTS_DOWN, shaper="tbf"))
    fake_tc.commands.clear()
    run_module(netem, UMTS_DOWN)
    assert fake_tc.changing() == [
        "tc qdisc del dev eth1 root",
        "tc qdisc replace dev eth1 root handle 1: netem limit 60 delay 250.000ms rate 128kbit",
    ]
    assert [q["kind"] for q in fake_tc.qdiscs["eth1"]] == ["netem"]


def test_dropping_the_rate_starts_from_the_default_qdisc(fake_tc, run_module):
    """The kernel keeps a netem's rate when tc changes it without one: the qdisc is made anew."""
    run_module(netem, UMTS_DOWN)
    unshaped = {k: v for k, v in UMTS_DOWN.items() if k != "rate_kbit"}
    fake_tc.commands.clear()
    result = run_module(netem, unshaped)
    assert fake_tc.changing() == [
        "tc qdisc del dev eth1 root",
        "tc qdisc replace dev eth1 root handle 1: netem limit 60 delay 250.000ms",
    ]
    assert result["changed"] is True and result["after"]["rate_kbit"] is None
    assert "rate" not in fake_tc.qdiscs["eth1"][0]["options"]
    fake_tc.commands.clear()
    assert run_module(netem, unshaped)["changed"] is False and fake_tc.changing() == []


@pytest.mark.parametrize("rate", [12.3, 85.65, 0.5])
def test_rates_in_fractions_of_a_byte_per_second_settle(fake_tc, run_module, rate):
    """The kernel keeps whole bytes per second (12.3 kbit reads back as 12.296): no change next time."""
    args = dict(UMTS_DOWN, rate_kbit=rate)
    run_module(netem, args)
    fake_tc.commands.clear()
    assert run_module(netem, args)["changed"] is False and fake_tc.changing() == []
    assert run_module(netem, dict(args, rate_kbit=rate + 0.016))["changed"] is True


def test_a_netem_set_up_by_hand_is_replaced(fake_tc, run_module):
    fake_tc.qdiscs["eth1"] = [
        {
            "kind": "netem",
            "handle": "8001:",
            "root": True,
            "refcnt": 2,
            "options": {"limit": 1000, "delay": {"delay": 0.25, "jitter": 0, "correlation": 0}},
        }
    ]
    result = run_module(netem, dict(UMTS_DOWN, rate_kbit=None, limit=1000))
    assert result["changed"] is True
    assert fake_tc.changing()[0] == "tc qdisc del dev eth1 root"


def test_absent_removes_only_a_netem(fake_tc, run_module):
    assert run_module(netem, {"device": "eth1", "state": "absent"})["changed"] is False
    assert fake_tc.changing() == []
    run_module(netem, UMTS_DOWN)
    fake_tc.commands.clear()
    result = run_module(netem, {"device": "eth1", "state": "absent"})
    assert result["changed"] is True and result["after"] is None
    assert fake_tc.changing() == ["tc qdisc del dev eth1 root"]
    assert fake_tc.qdiscs["eth1"][0]["kind"] == "noqueue"
    fake_tc.qdiscs["eth1"] = [{"kind": "pfifo_fast", "handle": "0:", "root": True, "options": {}}]
    assert run_module(netem, {"device": "eth1", "state": "absent"})["changed"] is False


def test_check_mode_and_diff_change_nothing(fake_tc, run_module):
    result = run_module(netem, UMTS_DOWN, check=True, diff=True)
    assert result["changed"] is True and fake_tc.changing() == []
    assert result["commands"] == [
        "tc qdisc replace dev eth1 root handle 1: netem limit 60 delay 250.000ms rate 128kbit"
    ]
    assert result["diff"] == {
        "before": "eth1: no impairment\n",
        "after": "eth1: delay 250ms rate 128kbit (netem) limit 60\n",
    }
    assert fake_tc.qdiscs["eth1"][0]["kind"] == "noqueue"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"delay_ms": -1}, "delay_ms: expected a delay of 0 ms or more, got -1"),
        ({"jitter_ms": 300}, "jitter_ms: expected at most delay_ms (250), got 300"),
        ({"loss_pct": 101}, "loss_pct: expected a percentage from 0 to 100, got 101"),
        ({"rate_kbit": 0}, "rate_kbit: expected a rate above 0 kbit/s (or none for no shaping), got 0"),
        ({"limit": 0}, "limit: expected at least 1 packet, got 0"),
        ({"shaper": "tbf", "rate_kbit": None}, "rate_kbit: shaper tbf needs a rate"),
        (
            {"shaper": "tbf", "tbf_burst": 100},
            "tbf_burst: expected at least 1600 bytes (one full-size packet), got 100",
        ),
        ({"device": "a/b"}, "device: expected an interface name (1 to 15 characters), got 'a/b'"),
        ({"device": "nosuch0"}, 'device: nosuch0: Cannot find device "nosuch0"'),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(fake_tc, run_module, args, message):
    result = run_module(netem, dict(UMTS_DOWN, **args))
    assert result["failed"] is True and result["msg"] == message and "\n" not in result["msg"]
    assert fake_tc.changing() == []


def test_tc_failure_names_the_command(fake_tc, run_module):
    fake_tc.fail_on = "tc qdisc replace"
    result = run_module(netem, UMTS_DOWN)
    assert result["failed"] is True
    assert (
        result["msg"].startswith("tc qdisc replace dev eth1 root handle 1: netem")
        and "not permitted" in result["msg"]
    )


def test_garbage_from_tc_is_one_line(fake_tc, run_module, monkeypatch):
    monkeypatch.setattr(
        basic.AnsibleModule, "run_command", lambda self, args, **kw: (0, "qdisc noqueue 0: root", "")
    )
    result = run_module(netem, UMTS_DOWN)
    assert result["msg"] == "eth1: tc -j qdisc show printed something that is not JSON"


def test_documentation_is_yaml_with_every_option():
    import yaml

    doc = yaml.safe_load(netem.DOCUMENTATION)
    assert set(doc["options"]) == {
        "device",
        "state",
        "delay_ms",
        "jitter_ms",
        "loss_pct",
        "rate_kbit",
        "limit",
        "shaper",
        "tbf_burst",
        "tbf_latency_ms",
    }
    yaml.safe_load(netem.EXAMPLES)
    assert json.dumps(yaml.safe_load(netem.RETURN))
