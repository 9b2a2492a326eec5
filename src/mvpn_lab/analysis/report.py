"""report.md and a self-contained report.html (figures embedded), for one run or several.

Both files are rendered from the same list of blocks (headings, paragraphs,
tables, figures), so they always say the same thing.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mvpn_lab import __version__
from mvpn_lab.analysis import figures
from mvpn_lab.analysis.analyze import RunAnalysis
from mvpn_lab.analysis.phases import MILESTONES, RO_ONLY
from mvpn_lab.analysis.summary import describe, summarize
from mvpn_lab.analysis.topology_graph import draw_topology
from mvpn_lab.errors import LabError
from mvpn_lab.vocabulary import DIRECTIONS

PHASE_HEADERS = [figures.PHASE_LABELS[m] for m in MILESTONES]


# -- blocks ---------------------------------------------------------------------------------------
@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    path: Path
    caption: str


@dataclass
class Bullets:
    items: list[str]


Block = Heading | Para | Table | Figure | Bullets


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if 0 < abs(value) < 0.01 and digits < 4:
        return f"{value:.4f}"
    return f"{value:.{digits}f}"


def _na(c: dict[str, Any], phase: str, text: str) -> str:
    """'n/a' for the route-optimisation phases of a bidirectional-tunnelling configuration."""
    return "n/a" if c["mip6"] != "ro" and phase in RO_ONLY else text


def _flag(value: object, yes: str, no: str) -> str:
    """``yes`` or ``no`` for a recorded boolean, ``-`` when it was not recorded."""
    labels: dict[object, str] = {True: yes, False: no}
    return labels.get(value, "-")


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.0f}"


def _ci(ci: Any) -> str:
    if not ci:
        return "-"
    return f"{ci[0]:.3f}-{ci[1]:.3f}"


# -- rendering ------------------------------------------------------------------------------------
def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: Sequence[Block], base: Path) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}\n")
        elif isinstance(block, Para):
            out.append(block.text + "\n")
        elif isinstance(block, Bullets):
            out.extend(f"- {item}" for item in block.items)
            out.append("")
        elif isinstance(block, Table):
            out.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            out.append("|" + "|".join("---" for _ in block.headers) + "|")
            out.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows)
            out.append("")
        elif isinstance(block, Figure):
            rel = block.path.relative_to(base).as_posix()
            out.append(f"![{block.caption}]({rel})\n")
            out.append(f"*{block.caption}*\n")
    return "\n".join(out).rstrip() + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
table{border-collapse:collapse;margin:0.6em 0 1.4em;font-size:0.85em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
tr.paper td{background:#fff7e6;color:#6a4d00}
figure{margin:1em 0}figcaption{font-size:0.85em;color:#555}
img{max-width:100%;border:1px solid #eee}
code{background:#f4f4f4;padding:0 3px}
"""


_MIME = {".png": "image/png", ".svg": "image/svg+xml"}


def render_html(blocks: Sequence[Block], title: str) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            out.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            out.append("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in block.headers))
            out.append("</tr></thead><tbody>")
            for row in block.rows:
                css = ' class="paper"' if len(row) > 1 and row[1] == "paper" else ""
                out.append(f"<tr{css}>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>")
            out.append("</tbody></table>")
        elif isinstance(block, Figure):
            data = base64.b64encode(block.path.read_bytes()).decode("ascii")
            mime = _MIME.get(block.path.suffix.lower(), "image/png")
            out.append(
                f'<figure><img alt="{html.escape(block.caption)}" src="data:{mime};base64,{data}">'
                f"<figcaption>{html.escape(block.caption)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _inline(text: str) -> str:
    """Escape, then turn `code` spans into <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


# -- the lab's topology ---------------------------------------------------------------------------
NO_TOPOLOGY = "no topology recorded"


def _topology_blocks(manifest: dict[str, Any], fig_dir: Path, name: str, label: str = "") -> list[Block]:
    """The lab as the run recorded it (manifest.json's ``inventory.model``, the lab model), drawn;
    a line saying so when the run recorded none or its model cannot be drawn."""
    inventory = manifest.get("inventory")
    model = inventory.get("model") if isinstance(inventory, dict) else None
    prefix = f"{label}: " if label else ""
    if model is None:
        return [Para(f"{prefix}{NO_TOPOLOGY} (manifest.json has no `inventory.model`).")]
    profile = manifest.get("profile")
    try:
        path = draw_topology(model, fig_dir / name, profile if isinstance(profile, str) else None)
    except LabError as exc:
        return [Para(f"{prefix}topology not drawn: {exc}")]
    caption = (
        f"the lab of this run ({model.get('figure')}, address plan {model.get('address_plan')}), "
        "from the lab model in manifest.json."
    )
    caption = prefix + caption if prefix else caption[0].upper() + caption[1:]
    return [Figure(path, caption)]


# -- single run -----------------------------------------------------------------------------------
def _paper_cells(paper: dict[str, Any] | None) -> list[str]:
    if not paper:
        return ["-", "-", "-"]
    return [_num(paper.get("min")), _num(paper.get("avg")), _num(paper.get("max"))]


def _direction_blocks(configs: list[dict[str, Any]]) -> list[Block]:
    """Away and back apart: the paper timed the way away only."""
    rows = []
    for c in configs:
        cells = [c["id"]]
        for direction in DIRECTIONS:
            group = c.get("by_direction", {}).get(direction)
            t = group["total_s"] if group else {}
            cells.append(str(group["n"]) if group else "0")
            cells += [_num(t.get(key)) for key in ("median", "min", "max")]
        cells.append(_num((c["paper"] or {}).get("avg")))
        rows.append(cells)
    if not rows:
        return []
    return [
        Heading(2, "Total handover time by direction (s)"),
        Para(
            "`away`: from the home WLAN to the foreign network; `home`: back. The paper timed handovers "
            "to the visited network (Sect. 4.3; CoTI and CoT happen only that way), so `away` is the "
            "column to read beside its average. The way back is ours: the correspondent's TCP then "
            "often waits for a retransmission timeout, since the segments queued on the slow link "
            "toward the old care-of address are lost."
        ),
        Table(
            [
                "configuration",
                "away n",
                "away median",
                "away min",
                "away max",
                "home n",
                "home median",
                "home min",
                "home max",
                "paper avg",
            ],
            rows,
        ),
    ]


def _run_blocks(analysis: RunAnalysis, summary: dict[str, Any], fig_dir: Path) -> list[Block]:
    folder = analysis.folder
    manifest = folder.manifest
    handovers = analysis.handovers
    complete = sum(1 for h in handovers if h.complete)
    # started_at / ended_at: the run folder's schema (module_utils/runfolder.py); the others: older names
    started = manifest.get("started_at") or manifest.get("start", manifest.get("start_time", "?"))
    ended = manifest.get("ended_at") or manifest.get("end", manifest.get("end_time", "?"))
    keys = (
        "given (ESP payload confirmed by decryption)"
        if analysis.keys_used
        else "not given (ESP counted by SPI)"
    )
    blocks: list[Block] = [
        Heading(1, f"Handover analysis: {folder.test} / {folder.run}"),
        Para(
            f"Run folder `{folder.path}`; started {started}, ended {ended}. "
            f"Analysed by mvpn-lab {__version__} "
            f"on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; ESP keys {keys}."
        ),
        Para(
            f"{len(handovers)} handovers: {complete} complete, {len(handovers) - complete} incomplete. "
            "Times come from the MN capture. Total handover time is the paper's definition: "
            "from the forced SSID switch (t0) to the next TCP data packet after the last signalling "
            "milestone. Statistics use complete handovers only; the paper's figures are shown beside "
            "ours and are never used as expectations."
        ),
        Heading(2, "Lab topology"),
        *_topology_blocks(manifest, fig_dir, "topology.svg"),
    ]
    configs = summary["configurations"]
    blocks.append(Heading(2, "Total handover time per configuration (s)"))
    rows = []
    for c in configs:
        t = c["total_s"]
        rows.append(
            [
                c["id"],
                str(c["n"]),
                _num(t["min"]),
                _num(t["mean"]),
                _num(t["median"]),
                _num(t["max"]),
                _num(t["stdev"]),
                _ci(t["ci95"]),
                *_paper_cells(c["paper"]),
                str(c.get("n_incomplete", 0)),
            ]
        )
    blocks.append(
        Table(
            [
                "configuration",
                "n",
                "min",
                "mean",
                "median",
                "max",
                "stdev",
                "95% CI of mean",
                "paper min",
                "paper avg",
                "paper max",
                "incomplete",
            ],
            rows,
        )
    )
    notes = [
        f"{c['id']}: paper row {c['paper']['test']} mip6={c['paper']['mip6']} ipsec={c['paper']['ipsec']}"
        + (f" ({c['paper']['note']})" if c["paper"].get("note") else "")
        for c in configs
        if c["paper"]
    ]
    if notes:
        blocks.append(Bullets(notes))
    blocks.extend(_direction_blocks(configs))

    blocks.append(Heading(2, "Phase shares of the mean handover (%)"))
    rows = []
    for c in configs:
        shares = [_na(c, m, _pct(c["phase_share_pct"].get(m))) for m in MILESTONES]
        rows.append([c["id"], "this run", *shares])
        paper = c["paper"] or {}
        paper_shares = paper.get("phase_share_pct")
        if paper_shares:
            rows.append(["", "paper", *[_pct(paper_shares.get(m)) for m in MILESTONES]])
    blocks.append(Table(["configuration", "source", *PHASE_HEADERS], rows))

    blocks.append(Heading(2, "Mean phase times (s)"))
    rows = []
    for c in configs:
        rows.append(
            [
                c["id"],
                *[_na(c, m, _num(c["phase_mean_s"].get(m))) for m in MILESTONES],
                _num(c["data_resumed_s"]["mean"]),
            ]
        )
    blocks.append(Table(["configuration", *PHASE_HEADERS, "data resumed"], rows))

    blocks.append(Heading(2, "Handovers"))
    blocks.append(
        Para(
            "One row per handover (as in handover.csv). Phases: time since the previous milestone present; "
            "`n/a`: not applicable in bidirectional tunnelling; `-`: not found."
        )
    )
    rows = []
    for h in handovers:
        rows.append(
            [
                h.config.id,
                str(h.rep),
                h.direction or "-",
                _num(h.total_s),
                _num(h.data_resumed_s),
                *[_num(h.phases.get(m)) for m in MILESTONES],
                str(h.bu_retransmissions),
                h.status,
            ]
        )
    blocks.append(
        Table(
            ["configuration", "rep", "direction", "total", "data resumed", *MILESTONES, "BU retx", "status"],
            rows,
        )
    )
    detail = [
        f"{h.config.id} rep {h.rep} handover {h.index + 1} ({h.direction}): {'; '.join(h.notes)}"
        for h in handovers
        if h.notes
    ]
    if detail:
        blocks.append(Heading(3, "Notes"))
        blocks.append(Bullets(detail))

    blocks.append(Heading(2, "Captures, clocks and the CN's view"))
    blocks.append(
        Para(
            "MN-CN clock offset = MN clock - CN clock, estimated from packets seen in both captures "
            "((min(mn-cn) - min(cn-mn)) / 2; ± is half the smallest round trip; TCP retransmissions "
            "and pairs giving a negative round trip are left out). CN times below are "
            "converted to the MN clock with that offset and given relative to t0; "
            "without an offset they are not shown."
        )
    )
    rows = []
    for rep in analysis.reps:
        clock = rep.clock
        for h in rep.handovers:
            cn = h.cn
            rows.append(
                [
                    rep.config.id,
                    str(rep.number),
                    h.direction or "-",
                    _num(clock.offset_s, 6) if clock else "-",
                    _num(clock.uncertainty_s, 6) if clock else "-",
                    clock.method if clock else "no CN capture",
                    _num(cn.get("data_resumed_sent_s")),
                    _num(h.data_resumed_s),
                    _flag(cn.get("saw_bu"), "yes", "NO"),
                    _num(cn.get("bu_cn_received_s")),
                    _flag(rep.transfer.get("sha256_ok"), "ok", "FAILED"),
                ]
            )
    blocks.append(
        Table(
            [
                "configuration",
                "rep",
                "direction",
                "offset (s)",
                "± (s)",
                "method",
                "CN sent first data (s)",
                "MN got first data (s)",
                "CN saw BU",
                "CN got BU (s)",
                "transfer",
            ],
            rows,
        )
    )

    blocks.append(Heading(2, "Figures"))
    fig_dir.mkdir(parents=True, exist_ok=True)
    series: list[tuple[str, dict[str, Any] | None]] = []
    groups = []
    for c in configs:
        series.append((f"{c['id']} (this run)", c["phase_share_pct"] if c["n"] else None))
        if c["paper"] and c["paper"].get("phase_share_pct"):
            series.append((f"{c['id']} (paper)", c["paper"]["phase_share_pct"]))
        totals = [
            h.total_s for h in handovers if h.config.id == c["id"] and h.complete and h.total_s is not None
        ]
        groups.append((c["id"], totals, c["paper"]))
    blocks.append(
        Figure(
            figures.stacked_bars(
                series, fig_dir / "phase_bars.png", "Phase shares: this run beside the paper"
            ),
            "Share of each phase in the mean handover, this run beside the paper (Figs. 2-11).",
        )
    )
    blocks.append(
        Figure(
            figures.distribution(groups, fig_dir / "totals.png", "Total handover time per configuration"),
            "Distribution of total handover times (box: quartiles; points: handovers; "
            "red: the paper's min-max and average).",
        )
    )
    for c in configs:
        if not c["n"] and not (c["paper"] and c["paper"].get("phase_share_pct")):
            continue
        path = figures.pie_figure(c, fig_dir / figures.figure_name("pie", c["id"]))
        blocks.append(Figure(path, f"{c['id']}: phase shares of the mean handover, this run and the paper."))

    if analysis.warnings:
        blocks.append(Heading(2, "Warnings"))
        blocks.append(Bullets([w.line() for w in analysis.warnings]))
    return blocks


# -- comparison of runs ---------------------------------------------------------------------------
def run_labels(analyses: Sequence[RunAnalysis], labels: Sequence[str] | None) -> list[str]:
    if labels and len(labels) == len(analyses):
        return list(labels)
    tests = {a.folder.test for a in analyses}
    out = []
    for a in analyses:
        kind = a.folder.manifest.get("inventory", {})
        kind = kind.get("kind") if isinstance(kind, dict) else None
        base = a.folder.run if len(tests) == 1 else f"{a.folder.test}/{a.folder.run}"
        out.append(f"{base} ({kind})" if kind else base)
    seen: dict[str, int] = {}
    for i, label in enumerate(out):
        if label in seen:
            seen[label] += 1
            out[i] = f"{label} #{seen[label]}"
        else:
            seen[label] = 1
    return out


def _family(c: dict[str, Any]) -> str:
    return f"{c['profile']} {c['mip6'].upper()} ipsec-{c['ipsec']}"


def _comparison_blocks(
    analyses: Sequence[RunAnalysis], labels: list[str], summaries: list[dict[str, Any]], fig_dir: Path
) -> list[Block]:
    blocks: list[Block] = [
        Heading(1, "Handover comparison: " + " vs ".join(labels)),
        Para(
            "Runs side by side. Rows are configuration families (profile, MIPv6 mode, IPsec mode); "
            "columns are each run's configurations by movement detection (md-ra: Router Advertisement, "
            "md-l2: link-layer trigger). Cells: mean total handover time (s), 95% CI of the mean, "
            "n complete handovers."
        ),
    ]
    rows_runs = []
    for label, a in zip(labels, analyses, strict=True):
        hs = a.handovers
        rows_runs.append(
            [
                label,
                a.folder.test,
                a.folder.run,
                f"`{a.folder.path}`",
                str(len(hs)),
                str(sum(h.complete for h in hs)),
            ]
        )
    blocks.append(Table(["run", "test", "timestamp", "folder", "handovers", "complete"], rows_runs))
    blocks.append(Heading(2, "Lab topology"))
    for i, (label, a) in enumerate(zip(labels, analyses, strict=True)):
        blocks.extend(_topology_blocks(a.folder.manifest, fig_dir, f"topology-{i + 1}.svg", label))

    families: list[str] = []
    series: list[str] = []
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    paper_avg: dict[str, float | None] = {}
    totals: dict[tuple[str, str], list[float]] = {}
    for label, a, summary in zip(labels, analyses, summaries, strict=True):
        for c in summary["configurations"]:
            fam = _family(c)
            name = f"{label} · md-{c['movement_detection']}"
            if fam not in families:
                families.append(fam)
            if name not in series:
                series.append(name)
            cells[(fam, name)] = c
            if c["paper"] and paper_avg.get(fam) is None:
                paper_avg[fam] = c["paper"].get("avg")
            totals[(fam, name)] = [
                h.total_s
                for h in a.handovers
                if h.config.id == c["id"] and h.complete and h.total_s is not None
            ]
    blocks.append(Heading(2, "Mean total handover time (s)"))
    rows = []
    for fam in families:
        row = [fam]
        for name in series:
            c = cells.get((fam, name))
            if c is None or not c["n"]:
                row.append("-")
                continue
            t = c["total_s"]
            row.append(f"{t['mean']:.3f} [{_ci(t['ci95'])}] n={c['n']}")
        row.append(_num(paper_avg.get(fam)))
        rows.append(row)
    blocks.append(Table(["configuration family", *series, "paper avg"], rows))

    blocks.append(Heading(2, "Phase shares of the mean handover (%)"))
    rows = []
    bar_series: list[tuple[str, dict[str, Any] | None]] = []
    for fam in families:
        for name in series:
            c = cells.get((fam, name))
            if c is None:
                continue
            shares = [_na(c, m, _pct(c["phase_share_pct"].get(m))) for m in MILESTONES]
            rows.append([f"{fam} · {name}", "this run", *shares])
            bar_series.append((f"{fam} · {name}", c["phase_share_pct"] if c["n"] else None))
        paper = next(
            (cells[(fam, n)]["paper"] for n in series if (fam, n) in cells and cells[(fam, n)]["paper"]), None
        )
        if paper and paper.get("phase_share_pct"):
            rows.append([fam, "paper", *[_pct(paper["phase_share_pct"].get(m)) for m in MILESTONES]])
            bar_series.append((f"{fam} · paper", paper["phase_share_pct"]))
    blocks.append(Table(["configuration · run", "source", *PHASE_HEADERS], rows))

    blocks.append(Heading(2, "Mean phase times (s)"))
    rows = []
    for fam in families:
        for name in series:
            c = cells.get((fam, name))
            if c is None:
                continue
            rows.append(
                [
                    f"{fam} · {name}",
                    *[_na(c, m, _num(c["phase_mean_s"].get(m))) for m in MILESTONES],
                    _num(c["data_resumed_s"]["mean"]),
                ]
            )
    blocks.append(Table(["configuration · run", *PHASE_HEADERS, "data resumed"], rows))

    blocks.append(Heading(2, "Figures"))
    fig_dir.mkdir(parents=True, exist_ok=True)
    means = {key: (c["total_s"]["mean"], c["total_s"]["ci95"]) for key, c in cells.items() if c["n"]}
    blocks.append(
        Figure(
            figures.mean_bars(
                families, series, means, paper_avg, fig_dir / "mean_totals.png", "Mean total handover time"
            ),
            "Mean total handover time per configuration family and run "
            "(error bars: 95% CI; diamonds: paper).",
        )
    )
    blocks.append(
        Figure(
            figures.stacked_bars(bar_series, fig_dir / "phase_bars.png", "Phase shares per run"),
            "Share of each phase in the mean handover, per run and beside the paper.",
        )
    )
    groups = [
        (f"{fam} · {name}", totals[(fam, name)], None)
        for fam in families
        for name in series
        if (fam, name) in totals
    ]
    blocks.append(
        Figure(
            figures.distribution(groups, fig_dir / "totals.png", "Total handover times per run"),
            "Distribution of total handover times per configuration family and run.",
        )
    )
    rows = []
    for label, a in zip(labels, analyses, strict=True):
        offsets = [rep.clock.offset_s for rep in a.reps if rep.clock and rep.clock.offset_s is not None]
        stats = describe(offsets)
        rows.append([label, str(len(offsets)), _num(stats["min"], 6), _num(stats["max"], 6)])
    blocks.append(Heading(2, "MN-CN clock offsets"))
    blocks.append(Table(["run", "repetitions with an offset", "min (s)", "max (s)"], rows))
    warnings = [f"{label}: {w.line()}" for label, a in zip(labels, analyses, strict=True) for w in a.warnings]
    if warnings:
        blocks.append(Heading(2, "Warnings"))
        blocks.append(Bullets(warnings))
    return blocks


def write_report(
    analyses: list[RunAnalysis], out_dir: Path | None = None, labels: Sequence[str] | None = None
) -> dict[str, Path]:
    """Write report.md, report.html and figures/ and return their paths.

    One run: into its run folder (or ``out_dir``). Several runs: a comparison,
    into ``out_dir`` (default: ``<first run>/comparison``).
    """
    if not analyses:
        raise ValueError("no runs to report")
    if len(analyses) == 1:
        out = out_dir or analyses[0].path
        title = f"Handover analysis: {analyses[0].folder.test} / {analyses[0].folder.run}"
        out.mkdir(parents=True, exist_ok=True)
        blocks = _run_blocks(analyses[0], summarize(analyses[0]), out / "figures")
    else:
        out = out_dir or analyses[0].path / "comparison"
        out.mkdir(parents=True, exist_ok=True)
        names = run_labels(analyses, labels)
        title = "Handover comparison: " + " vs ".join(names)
        blocks = _comparison_blocks(analyses, names, [summarize(a) for a in analyses], out / "figures")
    md = out / "report.md"
    page = out / "report.html"
    md.write_text(render_markdown(blocks, out), encoding="utf-8")
    page.write_text(render_html(blocks, title), encoding="utf-8")
    return {"markdown": md, "html": page, "figures": out / "figures"}
