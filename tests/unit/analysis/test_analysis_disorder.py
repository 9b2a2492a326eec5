"""A capture whose records are out of time order: each handover's packets are taken in time order,
with one warning per capture (issue 14).

Real captures get there when the capturing host's clock steps back or when several CPUs hand
packets to tcpdump: a record is written after others that are later in time. The captures here
are the builder's, rewritten in a disturbed file order; the ground truth stays the builder's plan.
"""

from __future__ import annotations

import io
import itertools
import random
from pathlib import Path

import pytest
from analysis_builder import Scenario, Truth, config_entry, make_run, random_plan, round_us, write_capture
from test_analysis_handovers import assert_matches

from mvpn_lab.analysis import analyze_run
from mvpn_lab.analysis.diagnostics import Diagnostics


def _index(records: list[tuple[float, bytes]], t: float) -> int:
    return next(i for i, (ts, _) in enumerate(records) if ts == round_us(t))


def _disturbed(records: list[tuple[float, bytes]], truths: list[Truth]) -> list[tuple[float, bytes]]:
    """The records in time order, then: each handover's RA, BA and next_tcp packet written after the
    record that follows it, and the second handover's first record written before the first
    handover's next_tcp packet (a record of one window amid the one before)."""
    ordered = sorted(records, key=lambda r: r[0])
    place = [float(i) for i in range(len(ordered))]  # file position of each record
    for truth in truths:
        for name in ("ra", "ba_ha", "next_tcp"):
            t = truth.milestones[name]
            assert t is not None
            place[_index(ordered, t)] += 1.5
    first_next = truths[0].milestones["next_tcp"]
    assert first_next is not None
    second = next(i for i, (ts, _) in enumerate(ordered) if ts >= truths[1].t0)
    place[second] = _index(ordered, first_next) - 0.5
    return [record for _, record in sorted(zip(place, ordered, strict=True), key=lambda pr: pr[0])]


@pytest.mark.parametrize(("mip6", "fmt"), [("bt", "pcap"), ("ro", "pcapng")])
def test_records_out_of_time_order_are_taken_in_time_order(tmp_path: Path, mip6: str, fmt: str) -> None:
    rng = random.Random(23)
    s = Scenario(mip6=mip6)
    truths = [
        s.handover(random_plan(rng, "away", old_path_data=2, lost_at_cn=0)),
        s.handover(random_plan(rng, "home", gap=0.3)),
    ]
    s.finish()
    entry = config_entry(mip6, "none")
    run_dir = make_run(tmp_path, {entry["id"]: [s]}, [entry])
    rep = run_dir / entry["id"] / "rep-01"
    (rep / "mn.pcap").unlink()
    name = "mn.pcapng" if fmt == "pcapng" else "mn.pcap"
    disturbed = _disturbed(s.mn, truths)
    backwards = sum(1 for a, b in itertools.pairwise(disturbed) if b[0] < a[0])
    write_capture(rep / name, disturbed, fmt=fmt, keep_order=True)
    err = io.StringIO()
    analysis = analyze_run(run_dir, diag=Diagnostics(stream=err))
    for handover, truth in zip(analysis.handovers, truths, strict=True):
        assert handover.status == "ok", handover.reasons
        assert_matches(handover, truth)
    lines = err.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert name in lines[0] and "out of time order" in lines[0] and "taken in time order" in lines[0]
    assert backwards >= 4
    assert analysis.reps[0].captures["mn"]["out_of_order_records"] == backwards


def test_a_capture_in_time_order_gives_no_warning(tmp_path: Path) -> None:
    rng = random.Random(23)
    s = Scenario(mip6="bt")
    truths = [s.handover(random_plan(rng, "away")), s.handover(random_plan(rng, "home", gap=0.3))]
    s.finish()
    entry = config_entry("bt", "none")
    err = io.StringIO()
    analysis = analyze_run(make_run(tmp_path, {entry["id"]: [s]}, [entry]), diag=Diagnostics(stream=err))
    assert err.getvalue() == ""
    assert "out_of_order_records" not in analysis.reps[0].captures["mn"]
    for handover, truth in zip(analysis.handovers, truths, strict=True):
        assert_matches(handover, truth)
