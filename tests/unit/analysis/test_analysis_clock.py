"""The MN-CN clock offset: its estimate, its uncertainty, and packets that must not be paired.

Forward (CN -> MN) samples are ``mn - cn = offset + forward delay``, reverse
(MN -> CN) ones ``cn - mn = -offset + reverse delay``: any forward plus any
reverse sample is a round trip, so the uncertainty (half the smallest one) can
never be negative. It was, on real captures, when a TCP segment resent by a
sender using TSO/GSO was paired with the receiver's copy of the original.
"""

from __future__ import annotations

import io
import random
import shutil
import struct
from pathlib import Path

import pytest
from analysis_builder import Scenario, config_entry, make_run, random_plan

from mvpn_lab.analysis import analyze_run
from mvpn_lab.analysis.analyze import RunAnalysis
from mvpn_lab.analysis.crosscheck import ClockOffset, estimate_offset
from mvpn_lab.analysis.diagnostics import Diagnostics
from mvpn_lab.analysis.milestones import FWD, REV, Sample
from mvpn_lab.analysis.packets import TcpHistory

TWIN = Path(__file__).parent / "data" / "twin-gso-retransmission" / "run"


def analyse(run_dir: Path) -> tuple[RunAnalysis, str]:
    err = io.StringIO()
    analysis = analyze_run(run_dir, diag=Diagnostics(stream=err))
    return analysis, err.getvalue()


# -- the estimator, on sample lists whose direction is known ----------------------------------
OFFSET = 2.5  # MN clock - CN clock
T = 1_700_000_000.0


def pairs(
    forward: list[float], reverse: list[float], *, start: int = 0
) -> tuple[dict[bytes, Sample], dict[bytes, list[float]]]:
    """Samples and CN times for packets with these one-way delays (``start`` numbers the keys)."""
    samples: dict[bytes, Sample] = {}
    times: dict[bytes, list[float]] = {}
    for i, delay in enumerate(forward + reverse, start=start):
        key = struct.pack("!I", i)
        t_mn = T + i * 0.01
        if i - start < len(forward):  # sent by the CN `delay` before the MN got it
            samples[key] = Sample(t_mn, FWD)
            times[key] = [t_mn - delay - OFFSET]
        else:  # reaches the CN `delay` after the MN sent it
            samples[key] = Sample(t_mn, REV)
            times[key] = [t_mn + delay - OFFSET]
    return samples, times


def test_two_way_estimate_from_known_directions() -> None:
    samples, times = pairs([0.004, 0.006, 0.005], [0.003, 0.009])
    clock = estimate_offset(samples, times)
    assert clock.method == "two-way"
    assert clock.offset_s == pytest.approx(OFFSET + (0.004 - 0.003) / 2, abs=1e-6)
    assert clock.uncertainty_s == pytest.approx((0.004 + 0.003) / 2, abs=1e-6)
    assert (clock.forward_samples, clock.reverse_samples) == (3, 2)
    assert clock.inconsistent_samples == 0


def test_a_pair_of_two_transmissions_is_dropped_not_turned_into_a_negative_uncertainty() -> None:
    # The last forward "delay" is -30 ms: the MN got the original, the CN's only copy is
    # the resend, 30 ms later (what the twin's captures showed).
    samples, times = pairs([0.004, 0.006, 0.005, -0.030], [0.003, 0.009])
    clock = estimate_offset(samples, times)
    assert clock.method == "two-way"
    assert clock.uncertainty_s is not None and clock.uncertainty_s >= 0
    assert clock.offset_s == pytest.approx(OFFSET + (0.004 - 0.003) / 2, abs=1e-6)
    assert clock.uncertainty_s == pytest.approx((0.004 + 0.003) / 2, abs=1e-6)
    assert clock.inconsistent_samples == 1
    assert (clock.forward_samples, clock.reverse_samples) == (3, 2)
    assert clock.as_dict()["inconsistent_samples"] == 1


def test_the_fewest_samples_are_dropped_whichever_direction_is_wrong() -> None:
    samples, times = pairs([0.004, 0.0045, 0.005, 0.006], [0.003, -0.020, 0.0035])
    clock = estimate_offset(samples, times)
    assert clock.inconsistent_samples == 1  # the reverse outlier, not all four forward samples
    assert clock.offset_s == pytest.approx(OFFSET + (0.004 - 0.003) / 2, abs=1e-6)
    assert clock.uncertainty_s == pytest.approx(0.0035, abs=1e-6)


def test_samples_that_never_agree_give_no_offset() -> None:
    samples, times = pairs([-0.010, -0.012], [-0.020])
    clock = estimate_offset(samples, times)
    assert clock.method == "inconsistent"
    assert clock.offset_s is None and clock.uncertainty_s is None
    assert clock.inconsistent_samples == 3
    assert clock.to_mn(T) is None


def test_resent_segments_are_not_used() -> None:
    samples, times = pairs([0.004, -0.030], [0.003])
    resent_at_cn = struct.pack("!I", 1)  # the -30 ms forward pair
    clock = estimate_offset(samples, times, resent={resent_at_cn})
    assert (clock.forward_samples, clock.resent_samples, clock.inconsistent_samples) == (1, 1, 0)
    assert clock.uncertainty_s == pytest.approx(0.0035, abs=1e-6)

    samples, times = pairs([0.004], [0.003, -0.030])
    samples[struct.pack("!I", 2)].resent = True  # the MN capture saw it as a retransmission
    clock = estimate_offset(samples, times)
    assert (clock.reverse_samples, clock.resent_samples, clock.inconsistent_samples) == (1, 1, 0)
    assert clock.uncertainty_s == pytest.approx(0.0035, abs=1e-6)


def test_one_direction_only_is_still_a_bound_without_uncertainty() -> None:
    samples, times = pairs([0.004, 0.006], [])
    clock = estimate_offset(samples, times)
    assert (clock.method, clock.uncertainty_s, clock.forward_samples) == ("forward-only", None, 2)
    assert clock.offset_s == pytest.approx(OFFSET + 0.004, abs=1e-6)


# -- spotting resent TCP data ---------------------------------------------------------------
def segment(seq: int, payload: int, flags: int = 0x18, ports: tuple[int, int] = (80, 40000)) -> bytes:
    header = struct.pack("!HHIIBBHHH", *ports, seq, 1, 5 << 4, flags, 8192, 0, 0)
    return header + b"x" * payload


def resent(history: TcpHistory, seg: bytes) -> bool:
    return history.resent(seg, 0, len(seg), len(seg))


def test_tcp_history_flags_data_that_starts_before_data_already_seen() -> None:
    h = TcpHistory()
    assert not resent(h, segment(1000, 4000))  # one GSO segment: 1000..5000
    assert not resent(h, segment(5000, 1000))  # next data
    assert resent(h, segment(4000, 1000))  # its tail again
    assert resent(h, segment(5500, 1000))  # overlaps data seen (and goes beyond)
    assert not resent(h, segment(6500, 100))  # the high mark moved to 6500
    assert not resent(h, segment(3000, 0, flags=0x10))  # a pure ACK carries no data
    assert not resent(h, segment(4000, 1000, ports=(40000, 80)))  # the other direction
    assert resent(h, segment(4000, 1000, ports=(40000, 80)))
    assert not resent(h, segment(10, 0, flags=0x02))  # SYN: a new connection on the same ports
    assert not resent(h, segment(11, 100))


def test_tcp_history_across_the_sequence_number_wrap() -> None:
    h = TcpHistory()
    assert not resent(h, segment(0xFFFFFF00, 0x200))  # wraps to 0x100
    assert not resent(h, segment(0x100, 0x100))
    assert resent(h, segment(0xFFFFFF80, 0x80))
    assert resent(h, segment(0x150, 0x10))


def test_tcp_history_ignores_headers_it_cannot_read() -> None:
    h = TcpHistory()
    seg = segment(1000, 100)
    assert not h.resent(seg, 0, len(seg), 13)  # flags not captured
    bad = bytearray(segment(1000, 0))
    bad[12] = 15 << 4  # a 60-byte header in a 20-byte segment
    assert not h.resent(bytes(bad), 0, len(bad), len(bad))


# -- synthetic captures: a sender using TSO/GSO resends a tail --------------------------------
@pytest.mark.parametrize("mip6", ["bt", "ro"])
@pytest.mark.parametrize("upload", [False, True], ids=["cn-sends", "mn-sends"])
def test_gso_resend_in_the_captures_leaves_the_offset_and_its_uncertainty_right(
    tmp_path: Path, mip6: str, upload: bool
) -> None:
    rng = random.Random(23)
    s = Scenario(mip6=mip6, offset=-1.75, delay=0.004)
    s.handover(random_plan(rng, "away"))
    s.steady(s.t + 0.5)
    s.gso_burst(s.t, upload=upload)
    s.t += 0.1
    s.finish()
    entry = config_entry(mip6, "none")
    run_dir = make_run(tmp_path, {entry["id"]: [s]}, [entry])
    analysis, stderr = analyse(run_dir)
    clock = analysis.reps[0].clock
    assert clock is not None
    assert clock.method == "two-way"
    assert clock.uncertainty_s == pytest.approx(0.004, abs=1e-4)
    assert clock.offset_s == pytest.approx(-1.75, abs=1e-5)
    assert clock.resent_samples == 1
    assert clock.inconsistent_samples == 0
    assert stderr == ""


# -- the real captures this was found on -------------------------------------------------------
@pytest.fixture
def twin_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(TWIN, run_dir)  # the analyser writes its outputs into the run folder
    return run_dir


def test_twin_captures_give_a_positive_uncertainty(twin_run: Path) -> None:
    analysis, stderr = analyse(twin_run)
    (rep,) = analysis.reps
    clock = rep.clock
    assert clock is not None
    assert clock.method == "two-way"
    # Before: offset -0.015074 s, uncertainty -0.014843 s (a resent tail paired with the original).
    assert clock.uncertainty_s is not None and 0 < clock.uncertainty_s < 0.001
    assert clock.offset_s is not None and abs(clock.offset_s) < clock.uncertainty_s
    assert clock.offset_s == pytest.approx(0.0000296, abs=2e-6)
    assert clock.uncertainty_s == pytest.approx(0.0002615, abs=2e-6)
    assert clock.resent_samples >= 1
    assert clock.inconsistent_samples == 0
    # an old-format folder (no schema_version): its note is the only warning
    assert [line for line in stderr.splitlines() if "run-folder schema" not in line] == []
    (h,) = analysis.handovers
    assert h.status == "ok"
    assert h.total_s == pytest.approx(6.963580, abs=1e-6)  # the MN's clock alone sets the phases


def test_twin_captures_without_the_resend_check_still_give_no_negative_uncertainty(
    twin_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consistency check alone (retransmissions not spotted) drops the bad pair and says so."""
    monkeypatch.setattr(TcpHistory, "resent", lambda *_args: False)
    analysis, stderr = analyse(twin_run)
    clock = analysis.reps[0].clock
    assert clock is not None
    assert clock.uncertainty_s is not None and clock.uncertainty_s >= 0
    assert clock.inconsistent_samples >= 1
    assert "negative round trip" in stderr
    assert clock.offset_s == pytest.approx(0.0000296, abs=2e-6)


def test_clock_report_lists_what_was_left_out() -> None:
    keys = set(ClockOffset(None, None, "none").as_dict())
    assert {"resent_samples", "inconsistent_samples", "uncertainty_s", "method"} <= keys
