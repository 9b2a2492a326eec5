"""module_utils/runfolder.py: the run folder's schema (building, checking, reading old files)."""

from __future__ import annotations

import json

import pytest
from ansible_collections.mvpn.lab.plugins.module_utils import runfolder as schema

HOSTS = ["mn", "ha", "fn", "cn", "impair"]


def away(**extra):
    """What mvpn.lab.handover registers when the station moved to the visited network."""
    result = {
        "changed": True,
        "handover_at": 1764183901.1,
        "associated_at": 1764183901.9,
        "from_ssid": "LOCAL",
        "to_ssid": "VISITME",
        "duration": 0.8,
    }
    result.update(extra)
    return result


def test_an_events_record_from_the_tasks_results():
    record = schema.events_record(
        "c",
        3,
        hosts=HOSTS,
        took_part=["mn", "ha", "fn", "cn"],
        hosts_down=["cn"],
        errors=["", "cn: Start the captures: no\ndevice"],
        handovers={"away": away(), "home": {"failed": True, "msg": "association timed out"}},
        transfer={"changed": True, "bytes": "8", "sha256_ok": True, "status": "completed", "pid": 4},
        captures={"mn": {"packets_captured": 10, "packets_dropped": 0, "dest": "/x/mn.pcap"}, "cn": {}},
        scan_first="True",
    )
    assert record["schema_version"] == schema.SCHEMA_VERSION
    assert record["hosts_absent"] == ["impair"] and record["hosts_down"] == ["cn"]
    assert record["errors"] == ["cn: Start the captures: no device"]
    first, second = record["handovers"]
    assert first["direction"] == "away" and first["ok"] is True and first["error"] is None
    assert first["scan_first"] is True and first["handover_at"] == 1764183901.1
    assert second["direction"] == "home" and second["ok"] is False
    assert second["error"] == "association timed out" and second["to_ssid"] is None
    assert record["captures"] == {"cn": {}, "mn": {"packets_captured": 10, "packets_dropped": 0}}
    assert record["transfer"]["bytes"] == 8 and record["transfer"]["sha256_ok"] is True
    assert "pid" not in record["transfer"]
    assert schema.check_events(json.loads(json.dumps(record))) is not None


def test_a_handover_that_did_not_move_or_did_not_run():
    stayed = schema.handover_record("away", away(changed=False), False)
    assert stayed["ok"] is False and stayed["error"] == "no handover: the station was on VISITME already"
    absent = schema.handover_record("home", None, True)
    assert absent["ok"] is False and absent["error"] == schema.NOT_RUN
    unreachable = schema.handover_record("home", {"unreachable": True, "msg": "ssh: timeout"}, True)
    assert unreachable["ok"] is False and unreachable["error"] == "ssh: timeout"
    with pytest.raises(schema.SchemaError, match="direction"):
        schema.handover_record("sideways", away(), True)


def test_without_the_mobile_node_the_transfer_is_unknown():
    record = schema.events_record("c", 1, hosts=HOSTS, took_part=["cn"])
    assert record["transfer"]["status"] == "unknown" and record["transfer"]["sha256_ok"] is False
    assert [h["error"] for h in record["handovers"]] == [schema.NOT_RUN, schema.NOT_RUN]
    assert schema.outcome_entry(record, "c", 1)["reason"].startswith("hosts mn, ha, fn, impair took no part")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("hosts_down"), "events.json: hosts_down: missing"),
        (lambda d: d["handovers"][1].update(ok="False"), "events.json: handovers[1]: ok: expected a boolean"),
        (lambda d: d["handovers"][0].update(direction="up"), "handovers[0].direction: expected away or home"),
        (lambda d: d["transfer"].update(sha256_ok=None), "transfer: sha256_ok: expected a boolean"),
        (lambda d: d["captures"].update(mn={"packets_captured": "10"}), "captures.mn.packets_captured"),
        (lambda d: d.update(schema_version=99), "schema_version: 99 is newer"),
        (lambda d: d["errors"].append(3), "events.json: errors[0]: expected a string"),
    ],
)
def test_a_bad_events_record_is_one_line_naming_the_field(change, message):
    record = schema.events_record("c", 1, hosts=HOSTS, took_part=HOSTS, handovers={"away": away()})
    change(record)
    with pytest.raises(schema.SchemaError) as raised:
        schema.check_events(record)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_an_old_events_file_is_upgraded_with_notes():
    old = {
        "configuration": "c",
        "repetition": "1",
        "handovers": [
            {"to_ssid": "VISITME", "ok": "True", "scan_first": "False"},
            {"to_ssid": "LOCAL", "ok": "False"},
        ],
        "transfer": {"sha256_ok": "true", "status": "completed"},
    }
    data, notes = schema.upgrade_events(old)
    assert data["schema_version"] == 0
    assert [(h["direction"], h["ok"]) for h in data["handovers"]] == [("away", True), ("home", False)]
    assert data["handovers"][0]["scan_first"] is False and data["transfer"]["sha256_ok"] is True
    assert data["hosts_down"] == [] and data["captures"] == {}
    assert "no schema_version" in notes[0] and "LOCAL" in notes[1]
    data, notes = schema.upgrade_events(old, {"ssids": {"home": "VISITME"}})
    assert [h["direction"] for h in data["handovers"]] == ["home", "away"] and len(notes) == 1


def test_the_layout():
    assert schema.rep_name("c", 3) == "c/rep-03"
    assert schema.parse_rep_name("c/rep-03") == ("c", 3)
    assert schema.parse_rep_name("c/rep-03.interrupted-X") is None


def test_handovers_json_is_checked():
    good = {
        "schema_version": 1,
        "test": "t",
        "run": "r",
        "analyser": {"version": "1"},
        "reps": [{"config": "c", "rep": 1, "handovers": [{"direction": "home"}]}],
        "warnings": [],
    }
    assert schema.check_handovers(good) is good
    good["reps"][0]["handovers"][0]["direction"] = "LOCAL"
    with pytest.raises(schema.SchemaError, match=r"reps\[0\].handovers\[0\].direction"):
        schema.check_handovers(good)
