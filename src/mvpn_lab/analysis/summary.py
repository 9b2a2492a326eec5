"""Statistics per configuration, beside the seed paper's figures (summary.json)."""

from __future__ import annotations

import json
import math
import statistics
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mvpn_lab.analysis.analyze import HandoverResult, RunAnalysis, finite
from mvpn_lab.analysis.phases import MILESTONES, RO_ONLY
from mvpn_lab.analysis.rundir import Configuration
from mvpn_lab.vocabulary import DIRECTIONS

PAPER_TESTS = ("test2_wlan_horizontal", "test3_wlan_gprs_vertical", "test4_wlan_umts_vertical")
_PROFILE_TEST = {"wlan": PAPER_TESTS[0], "gprs": PAPER_TESTS[1], "umts": PAPER_TESTS[2]}

# Two-sided 95% quantiles of Student's t distribution, by degrees of freedom.
_T975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
    11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
    20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
    29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980,
}  # fmt: skip


def t975(df: int) -> float:
    """95% two-sided Student t quantile (table; linear in 1/df between entries)."""
    if df in _T975:
        return _T975[df]
    if df > 120:
        return 1.960 + (1.980 - 1.960) * 120 / df
    lower = max(k for k in _T975 if k < df)
    upper = min(k for k in _T975 if k > df)
    w = (1 / df - 1 / upper) / (1 / lower - 1 / upper)
    return _T975[upper] + w * (_T975[lower] - _T975[upper])


#: the fewest values a 95% confidence interval of the mean is given for: with two, Student's t of
#: one degree of freedom (12.7) makes an interval wider than anything it could tell
CI_MIN_N = 3


def describe(values: list[float]) -> dict[str, Any]:
    """min, max, mean, median, sample stdev (from two values) and the 95% confidence interval of
    the mean (from :data:`CI_MIN_N` values; null below: the reports print ``-``)."""
    if not values:
        return {"min": None, "max": None, "mean": None, "median": None, "stdev": None, "ci95": None}
    mean = statistics.fmean(values)
    out: dict[str, Any] = {
        "min": min(values),
        "max": max(values),
        "mean": mean,
        "median": statistics.median(values),
        "stdev": None,
        "ci95": None,
    }
    if len(values) >= 2:
        out["stdev"] = statistics.stdev(values)
    if len(values) >= CI_MIN_N:
        half = t975(len(values) - 1) * out["stdev"] / math.sqrt(len(values))
        out["ci95"] = [mean - half, mean + half]
    return out


@cache
def load_paper() -> dict[str, Any]:
    """The seed paper's results (package data: mvpn_lab/data/paper_results.yaml)."""
    text = resources.files("mvpn_lab").joinpath("data/paper_results.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return data if isinstance(data, dict) else {}


def paper_test(test: str, profile: str) -> str | None:
    """Which of the paper's tests a run corresponds to (by test name, then by profile)."""
    name = test.lower()
    if "test1" in name or "validation" in name:
        return None
    for key, words in (
        (PAPER_TESTS[0], ("test2", "horizontal")),
        (PAPER_TESTS[1], ("test3", "gprs")),
        (PAPER_TESTS[2], ("test4", "umts")),
    ):
        if any(word in name for word in words):
            return key
    return _PROFILE_TEST.get(profile)


def paper_row(test: str, config: Configuration, paper: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The paper's result row for this test and configuration; ``mip6: any`` rows match both modes."""
    paper = load_paper() if paper is None else paper
    key = paper_test(test, config.profile)
    if key is None or not isinstance(paper.get(key), dict):
        return None
    rows = [
        r for r in paper[key].get("results", []) if isinstance(r, dict) and r.get("ipsec") == config.ipsec
    ]
    exact = [r for r in rows if r.get("mip6") == config.mip6]
    wildcard = [r for r in rows if r.get("mip6") == "any"]
    candidates = exact or wildcard
    if not candidates:
        return None
    return {"test": key, **candidates[0]}


def _phase_means(handovers: list[HandoverResult], ro: bool) -> dict[str, float | None]:
    means: dict[str, float | None] = {}
    for name in MILESTONES:
        if not ro and name in RO_ONLY:
            means[name] = None
            continue
        values = [h.phases.get(name) for h in handovers]
        numbers = [v if isinstance(v, float | int) else 0.0 for v in values]
        means[name] = statistics.fmean(numbers) if numbers else None
    return means


def _shares(means: dict[str, float | None], mean_total: float | None) -> dict[str, float | None]:
    if not mean_total:
        return dict.fromkeys(means)
    return {name: (None if v is None else 100.0 * v / mean_total) for name, v in means.items()}


def _group(handovers: list[HandoverResult], ro: bool) -> dict[str, Any]:
    totals = [h.total_s for h in handovers if h.total_s is not None]
    stats = describe(totals)
    means = _phase_means(handovers, ro)
    return {
        "n": len(totals),
        "total_s": stats,
        "phase_mean_s": means,
        "phase_share_pct": _shares(means, stats["mean"]),
    }


def configuration_summary(analysis: RunAnalysis, config: Configuration) -> dict[str, Any]:
    mine = [h for h in analysis.handovers if h.config.id == config.id]
    complete = [h for h in mine if h.complete and h.total_s is not None]
    ro = config.mip6 == "ro"
    group = _group(complete, ro)
    resumed = [h.data_resumed_s for h in complete if h.data_resumed_s is not None]
    return {
        "id": config.id,
        "mip6": config.mip6,
        "ipsec": config.ipsec,
        "movement_detection": config.movement_detection,
        "profile": config.profile,
        "n": group["n"],
        "total_s": group["total_s"],
        "phase_mean_s": group["phase_mean_s"],
        "phase_share_pct": group["phase_share_pct"],
        "paper": paper_row(analysis.folder.test, config),
        # Additions beyond the paper's figures:
        "n_incomplete": len(mine) - len(complete),
        "data_resumed_s": describe(resumed),
        "by_direction": {
            direction: _group([h for h in complete if h.direction == direction], ro)
            for direction in DIRECTIONS
            if any(h.direction == direction for h in complete)
        },
    }


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def summarize(analysis: RunAnalysis) -> dict[str, Any]:
    return _round(
        {
            "test": analysis.folder.test,
            "run": analysis.folder.run,
            "configurations": [configuration_summary(analysis, c) for c in analysis.folder.configurations],
        }
    )


def write_summary(analysis: RunAnalysis, path: Path) -> dict[str, Any]:
    summary = summarize(analysis)
    # valid JSON whatever the numbers: no NaN or Infinity (analyze.finite)
    path.write_text(json.dumps(finite(summary), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return summary
