"""Broken inputs: each gives a one-line warning naming the file, an incomplete status for the
affected handover, and intact results for everything else. Never a traceback."""

from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from analysis_builder import COA, HA, HOA, Scenario, config_entry, make_run, random_plan, write_capture
from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrDestOpt
from scapy.packet import Raw
from test_analysis_handovers import assert_matches

from mvpn_lab.analysis import analyze_run
from mvpn_lab.analysis.analyze import RunAnalysis
from mvpn_lab.analysis.cli import main as cli_main
from mvpn_lab.analysis.diagnostics import Diagnostics

DATA = Path(__file__).parent.parent / "data" / "malformed-mobility"


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two repetitions of one RO configuration, each away and back home."""
    rng = random.Random(21)
    root = tmp_path_factory.mktemp("base")
    entry = config_entry("ro", "none")
    scenarios = []
    for _ in range(2):
        s = Scenario(mip6="ro")
        s.handover(random_plan(rng, "away"))
        s.handover(random_plan(rng, "home"))
        s.finish()
        scenarios.append(s)
    run_dir = make_run(root, {entry["id"]: scenarios}, [entry])
    return {"run": run_dir, "scenarios": scenarios, "config": entry["id"]}


def copy_run(base: dict[str, Any], tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(base["run"], target)
    return target


def analyse(run_dir: Path) -> tuple[RunAnalysis, list[str]]:
    err = io.StringIO()
    analysis = analyze_run(run_dir, diag=Diagnostics(stream=err))
    return analysis, err.getvalue().splitlines()


def rep_dir(run_dir: Path, config: str, n: int = 1) -> Path:
    return run_dir / config / f"rep-{n:02d}"


def assert_rep_intact(analysis: RunAnalysis, base: dict[str, Any], n: int) -> None:
    rep = analysis.reps[n - 1]
    for h, truth in zip(rep.handovers, base["scenarios"][n - 1].truths, strict=True):
        assert h.status == "ok"
        assert_matches(h, truth)


def test_truncated_mn_capture_cut_inside_the_last_record(base_run: dict[str, Any], tmp_path: Path) -> None:
    run_dir = copy_run(base_run, tmp_path)
    mn = rep_dir(run_dir, base_run["config"]) / "mn.pcap"
    mn.write_bytes(mn.read_bytes()[:-25])
    analysis, lines = analyse(run_dir)
    assert len([line for line in lines if "mn.pcap" in line and "cut short" in line]) == 1
    away, home = analysis.reps[0].handovers
    assert away.status == "ok"
    assert_matches(away, base_run["scenarios"][0].truths[0])
    assert home.status == "incomplete:mn.pcap-truncated"  # the cut is in its window...
    assert_matches(home, base_run["scenarios"][0].truths[1])  # ...but what was found is kept
    assert_rep_intact(analysis, base_run, 2)
    assert analysis.exit_code == 1


def test_truncated_in_the_first_handover(base_run: dict[str, Any], tmp_path: Path) -> None:
    run_dir = copy_run(base_run, tmp_path)
    truth = base_run["scenarios"][0].truths[0]
    mn = rep_dir(run_dir, base_run["config"]) / "mn.pcap"
    records = [(t, p) for t, p in base_run["scenarios"][0].mn if t < truth.milestones["ba_ha"]]
    write_capture(mn, records)
    mn.write_bytes(mn.read_bytes() + b"\x01\x02\x03\x04\x05\x06\x07\x08\x09")  # a partial record header
    analysis, lines = analyse(run_dir)
    away, home = analysis.reps[0].handovers
    assert away.status.startswith("incomplete:mn.pcap-truncated")
    assert away.phases["ra"] == pytest.approx(truth.phases["ra"], abs=1e-3)
    assert away.phases["bu_ha"] == pytest.approx(truth.phases["bu_ha"], abs=1e-3)
    assert away.phases["ba_ha"] is None
    assert "mn.pcap-truncated" in home.status
    assert any("mn.pcap" in line for line in lines)


def test_pcapng_mn_capture(base_run: dict[str, Any], tmp_path: Path) -> None:
    run_dir = copy_run(base_run, tmp_path)
    rep = rep_dir(run_dir, base_run["config"])
    (rep / "mn.pcap").unlink()
    write_capture(rep / "mn.pcapng", base_run["scenarios"][0].mn, fmt="pcapng")
    analysis, lines = analyse(run_dir)
    assert lines == []
    assert analysis.exit_code == 0
    assert_rep_intact(analysis, base_run, 1)


@pytest.mark.parametrize(
    ("content", "reason", "words"),
    [
        (b"", "mn.pcap-empty", "empty"),
        (b"GET / HTTP/1.1\r\n\r\n" * 4, "mn.pcap-not-a-capture", "not a pcap"),
        (None, "mn.pcap-missing", "not found"),
    ],
)
def test_unusable_mn_capture(
    base_run: dict[str, Any], tmp_path: Path, content: bytes | None, reason: str, words: str
) -> None:
    run_dir = copy_run(base_run, tmp_path)
    mn = rep_dir(run_dir, base_run["config"]) / "mn.pcap"
    if content is None:
        mn.unlink()
    else:
        mn.write_bytes(content)
    analysis, lines = analyse(run_dir)
    assert len(lines) == 1
    assert "mn.pcap" in lines[0] and words in lines[0]
    assert [h.status for h in analysis.reps[0].handovers] == [f"incomplete:{reason}"] * 2
    assert all(h.total_s is None for h in analysis.reps[0].handovers)
    assert_rep_intact(analysis, base_run, 2)


def test_missing_cn_capture_keeps_the_mn_timings(base_run: dict[str, Any], tmp_path: Path) -> None:
    run_dir = copy_run(base_run, tmp_path)
    (rep_dir(run_dir, base_run["config"]) / "cn.pcap").unlink()
    analysis, lines = analyse(run_dir)
    assert len(lines) == 1 and "cn.pcap" in lines[0]
    for h, truth in zip(analysis.reps[0].handovers, base_run["scenarios"][0].truths, strict=True):
        assert h.status == "incomplete:cn.pcap-missing"
        assert_matches(h, truth)
        assert h.cn == {"available": False}
    assert_rep_intact(analysis, base_run, 2)


def test_snaplen_that_keeps_the_headers_changes_nothing(base_run: dict[str, Any], tmp_path: Path) -> None:
    run_dir = copy_run(base_run, tmp_path)
    rep = rep_dir(run_dir, base_run["config"])
    write_capture(rep / "mn.pcap", base_run["scenarios"][0].mn, snaplen=140)
    analysis, lines = analyse(run_dir)
    assert lines == []
    assert_rep_intact(analysis, base_run, 1)


def test_snaplen_that_cuts_headers(base_run: dict[str, Any], tmp_path: Path) -> None:
    run_dir = copy_run(base_run, tmp_path)
    rep = rep_dir(run_dir, base_run["config"])
    write_capture(rep / "mn.pcap", base_run["scenarios"][0].mn, snaplen=90)
    analysis, lines = analyse(run_dir)
    mn_lines = [line for line in lines if "mn.pcap" in line]
    assert len(mn_lines) == 1 and "snapshot length" in mn_lines[0]
    assert all("mn.pcap-snaplen" in h.status for h in analysis.reps[0].handovers)
    assert_rep_intact(analysis, base_run, 2)


def _inject(run_dir: Path, base: dict[str, Any], packet: bytes, when: float) -> None:
    rep = rep_dir(run_dir, base["config"])
    write_capture(rep / "mn.pcap", [*base["scenarios"][0].mn, (when, packet)])


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [(41, 60, "mn.pcap-malformed"), (42, 99, "mn.pcap-unknown-mh-type"), (64 + 12, 9, "mn.pcap-malformed")],
)
def test_bad_mobility_header_in_one_window(
    base_run: dict[str, Any], tmp_path: Path, offset: int, value: int, reason: str
) -> None:
    """A BU with a bad length, of unknown type, or with a broken option, inside the first handover."""
    run_dir = copy_run(base_run, tmp_path)
    truth = base_run["scenarios"][0].truths[0]
    # A 16-byte Binding Update (seq 999, A and H flags) ending in a 4-byte PadN option.
    mh_bytes = bytes([59, 1, 5, 0, 0, 0]) + struct.pack("!HHH", 999, 0xC000, 25) + bytes([1, 2, 0, 0])
    bu = bytearray(
        bytes(IPv6(src=COA, dst=HA) / IPv6ExtHdrDestOpt(nh=135, options=[HAO(hoa=HOA)]) / Raw(mh_bytes))
    )
    mh = 40 + 24
    if offset == 41:
        bu[mh + 1] = value
    elif offset == 42:
        bu[mh + 2] = value
    else:
        bu[offset + 1] = value  # PadN option claiming 9 bytes in a 4-byte space
    _inject(run_dir, base_run, bytes(bu), truth.t0 + truth.phases["ra"] / 2)
    analysis, lines = analyse(run_dir)
    assert len([line for line in lines if "mn.pcap" in line]) == 1
    away, home = analysis.reps[0].handovers
    assert away.status == f"incomplete:{reason}"
    assert_matches(away, truth)
    assert home.status == "ok"
    assert_rep_intact(analysis, base_run, 2)


def test_events_json_missing_or_broken(base_run: dict[str, Any], tmp_path: Path) -> None:
    run_dir = copy_run(base_run, tmp_path)
    (rep_dir(run_dir, base_run["config"], 1) / "events.json").unlink()
    (rep_dir(run_dir, base_run["config"], 2) / "events.json").write_text("{not json")
    analysis, lines = analyse(run_dir)
    assert [h.status for h in analysis.handovers] == [
        "incomplete:events.json-missing",
        "incomplete:events.json-unreadable",
    ]
    assert len(lines) == 2 and all("events.json" in line for line in lines)


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.pcap")))
def test_tcpdump_malformed_mobility_captures_through_the_cli(
    base_run: dict[str, Any], tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = copy_run(base_run, tmp_path)
    rep = rep_dir(run_dir, base_run["config"])
    shutil.copy(DATA / name, rep / "mn.pcap")
    events = json.loads((rep / "events.json").read_text())
    events["handovers"][0]["handover_at"] = 0.0  # their timestamps are arbitrary: cover them all
    (rep / "events.json").write_text(json.dumps(events))
    code = cli_main(["analyze", str(run_dir)])
    out = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out.err
    warnings = [line for line in out.err.splitlines() if "mn.pcap" in line]
    assert warnings and all(line.startswith("mvpn-lab: warning: ") for line in warnings)
    rows = (run_dir / "handover.csv").read_text().splitlines()
    assert len(rows) == 1 + 4
    assert rows[1].split(",")[-1].startswith("incomplete:")
    assert all(row.endswith(",ok") for row in rows[3:])  # rep-02 is untouched


def test_manifest_checksums_are_verified_while_reading(base_run: dict[str, Any], tmp_path: Path) -> None:
    run_dir = copy_run(base_run, tmp_path)
    rep = f"{base_run['config']}/rep-01"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["sha256"] = {
        f"{rep}/mn.pcap": hashlib.sha256((run_dir / rep / "mn.pcap").read_bytes()).hexdigest(),
        f"{rep}/cn.pcap": "0" * 64,
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    analysis, lines = analyse(run_dir)
    assert len(lines) == 1 and "cn.pcap" in lines[0] and "sha256" in lines[0]
    assert analysis.reps[0].captures["cn"]["sha256_mismatch"] is True
    assert "sha256_mismatch" not in analysis.reps[0].captures["mn"]


def test_keys_file_inside_the_run_folder_is_flagged(base_run: dict[str, Any], tmp_path: Path) -> None:
    run_dir = copy_run(base_run, tmp_path)
    (run_dir / "esp-keys.yaml").write_text("{}")
    err = io.StringIO()
    analyze_run(run_dir, keys={1: object()}, diag=Diagnostics(stream=err))  # type: ignore[dict-item]
    assert "esp-keys.yaml" in err.getvalue() and "must not be stored" in err.getvalue()
