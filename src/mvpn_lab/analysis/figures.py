"""Figures (matplotlib, Agg backend): phase-share pies, stacked phase bars, distributions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mvpn_lab.analysis.phases import MILESTONES

PHASE_LABELS = {
    "ra": "1 RA",
    "bu_ha": "2 BU (MN→HA)",
    "ba_ha": "3 BA (HA→MN)",
    "coti": "4 CoTI",
    "cot": "5 CoT",
    "bu_cn": "6 BU (MN→CN)",
    "next_tcp": "7 next TCP",
}
COLOURS = dict(
    zip(
        MILESTONES, ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1"), strict=True
    )
)
DPI = 90


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _shares(shares: dict[str, Any] | None) -> list[tuple[str, float]]:
    if not shares:
        return []
    return [(name, float(shares[name])) for name in MILESTONES if isinstance(shares.get(name), int | float)]


def _pie(ax: Any, shares: list[tuple[str, float]], title: str) -> None:
    values = [max(v, 0.0) for _, v in shares]
    if not shares or sum(values) <= 0:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title(title, fontsize=9)
        return
    ax.pie(
        values,
        colors=[COLOURS[name] for name, _ in shares],
        autopct=lambda pct: f"{pct:.0f}%" if pct >= 3 else "",
        startangle=90,
        counterclock=False,
        textprops={"fontsize": 8},
        wedgeprops={"linewidth": 0.5, "edgecolor": "white"},
    )
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")


def _legend(fig: Any) -> None:
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[m]) for m in MILESTONES]
    fig.legend(
        handles, [PHASE_LABELS[m] for m in MILESTONES], loc="lower center", ncol=4, fontsize=8, frameon=False
    )


def pie_figure(config: dict[str, Any], path: Path) -> Path:
    """Phase shares of the mean handover, ours beside the paper's (like the paper's Figs. 2-11)."""
    paper = config.get("paper") or {}
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.8))
    n = config.get("n", 0)
    _pie(axes[0], _shares(config.get("phase_share_pct")), f"this run (n={n})")
    paper_shares = _shares(paper.get("phase_share_pct"))
    _pie(axes[1], paper_shares, "paper" if paper_shares else "paper: no pie for this configuration")
    fig.suptitle(f"{config['id']}: share of each phase in the mean handover", fontsize=10)
    _legend(fig)
    fig.subplots_adjust(bottom=0.22, top=0.85)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def stacked_bars(series: Sequence[tuple[str, dict[str, Any] | None]], path: Path, title: str) -> Path:
    """One stacked bar of phase shares (%) per series (e.g. ours and the paper's per configuration)."""
    height = max(2.6, 0.42 * len(series) + 1.6)
    fig, ax = plt.subplots(figsize=(8.0, height))
    labels = [label for label, _ in series]
    for row, (_label, shares) in enumerate(series):
        left = 0.0
        for name, value in _shares(shares):
            ax.barh(row, value, left=left, color=COLOURS[name], edgecolor="white", linewidth=0.5)
            if value >= 6:
                ax.text(left + value / 2, row, f"{value:.0f}", ha="center", va="center", fontsize=7)
            left += value
        if not _shares(shares):
            ax.text(1, row, "no phase data", va="center", fontsize=7, color="grey")
    ax.set_yticks(range(len(series)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the mean handover time (%)")
    ax.set_title(title, fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[m]) for m in MILESTONES]
    ax.legend(handles, [PHASE_LABELS[m] for m in MILESTONES], fontsize=7, ncol=4, loc="upper center",
              bbox_to_anchor=(0.5, -0.35 if len(series) < 6 else -0.12), frameon=False)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def distribution(
    groups: Sequence[tuple[str, list[float], dict[str, Any] | None]], path: Path, title: str
) -> Path:
    """Total handover times per group (box and points), with the paper's min/avg/max beside."""
    width = max(5.0, 0.9 * len(groups) + 2.0)
    fig, ax = plt.subplots(figsize=(width, 4.2))
    positions = list(range(1, len(groups) + 1))
    data = [values if values else [float("nan")] for _, values, _ in groups]
    ax.boxplot(data, positions=positions, widths=0.5, showfliers=False)
    for pos, (_, values, _) in zip(positions, groups, strict=True):
        if values:
            jitter = [pos - 0.12 + 0.24 * (i % 7) / 6 for i in range(len(values))]
            ax.scatter(jitter, values, s=10, color="#4e79a7", alpha=0.7, zorder=3)
    shown = False
    for pos, (_, _, paper) in zip(positions, groups, strict=True):
        if paper and isinstance(paper.get("avg"), int | float):
            lo, hi = paper.get("min"), paper.get("max")
            if isinstance(lo, int | float) and isinstance(hi, int | float):
                ax.vlines(pos + 0.35, lo, hi, color="#e15759", linewidth=1.5)
            ax.scatter([pos + 0.35], [paper["avg"]], marker="D", color="#e15759", s=18, zorder=4,
                       label=None if shown else "paper: min-max, avg")  # fmt: skip
            shown = True
    ax.set_xticks(positions, [label for label, _, _ in groups], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("total handover time (s)")
    ax.set_title(title, fontsize=10)
    ax.set_ylim(bottom=0)
    if shown:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def mean_bars(
    rows: Sequence[str],
    series: Sequence[str],
    means: dict[tuple[str, str], tuple[float | None, list[float] | None]],
    paper: dict[str, float | None],
    path: Path,
    title: str,
) -> Path:
    """Grouped bars: mean total per configuration family (row) and series (run, detection); CI error bars."""
    width = max(6.0, 0.6 * len(rows) * max(1, len(series)) + 2.5)
    fig, ax = plt.subplots(figsize=(min(width, 16.0), 4.4))
    step = 0.8 / max(1, len(series))
    cmap = plt.get_cmap("tab10")
    for j, name in enumerate(series):
        xs: list[float] = []
        ys: list[float] = []
        errs: tuple[list[float], list[float]] = ([], [])  # below and above the mean
        for i, row in enumerate(rows):
            mean, ci = means.get((row, name), (None, None))
            if mean is None:
                continue
            xs.append(i - 0.4 + step * (j + 0.5))
            ys.append(mean)
            lo, hi = ci if ci else (mean, mean)
            errs[0].append(mean - lo)
            errs[1].append(hi - mean)
        ax.bar(xs, ys, width=step * 0.9, color=cmap(j % 10), label=name, yerr=errs, capsize=2)
    paper_points = [(i, avg) for i, row in enumerate(rows) if (avg := paper.get(row)) is not None]
    if paper_points:
        paper_x, paper_y = zip(*paper_points, strict=True)
        ax.scatter(paper_x, paper_y, marker="D", color="black", s=20, zorder=4, label="paper avg")
    ax.set_xticks(range(len(rows)), rows, rotation=25, ha="right", fontsize=7)
    ax.set_ylabel("mean total handover time (s)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def figure_name(*parts: str) -> str:
    return "_".join(_slug(p) for p in parts) + ".png"
