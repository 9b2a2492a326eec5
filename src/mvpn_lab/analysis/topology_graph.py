"""The lab drawn from its model: an SVG picture made with matplotlib's SVG backend.

:func:`draw_topology` takes the lab model, the dict the collection's ``mvpn.lab.lab_model`` filter
(``plugins/filter/lab_model.py``) makes from the topology data and an inventory's variables, as
``mvpn-lab topology --graph`` builds it and as a run folder's manifest.json records it under
``inventory.model``. Nothing is hard-wired to one figure of the paper: the picture follows the data.

* Wired links are bars labelled with their name and prefix; each host hangs from the links it has
  an address on, laid out as a tree from the backbone (the correspondent on the left).
* Each wireless network (SSID, channel, its link's prefix) sits under its access point; the mobile
  node below them, with its home attachment (solid, its home address) and the visited one
  (dashed, its care-of address there).
* The tunnel-mode inner ends (a dummy interface with an address in the inner prefix) hang under
  their host in dashed boxes; the impairment node names its profile when one is given.
* Hosts of the model with no address in this figure, and prefixes of the plan no host uses, are
  shown greyed and in a footnote, so that every host and prefix of the model is named.

A model that lacks a field the picture needs raises :class:`~mvpn_lab.errors.LabError` with one
line naming the field (``lab model: field nodes.ha.addresses missing``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from mvpn_lab.errors import LabError

ROLES = {
    "cn": "correspondent node",
    "ha": "home agent",
    "fn": "foreign router",
    "impair": "impairment node",
    "mn": "mobile node",
}
#: left to right under a link: the correspondent first, then the home side, then the foreign side
ORDER = ("cn", "ha", "impair", "fn")
COLOURS = {
    "cn": "#dce9f9",
    "ha": "#f9dede",
    "fn": "#dff3df",
    "impair": "#fdf0cf",
    "mn": "#ebe1f7",
}
LINK_COLOUR = "#4a4a4a"
WLAN_COLOUR = "#eaf6fb"
GREY = "#9a9a9a"
FONT = 8
COLUMN_IN = 3.4  # inches per column of the layout
ROW_IN = 1.15  # inches per row


# -- reading the model ----------------------------------------------------------------------------
def _where(path: tuple[str, ...]) -> str:
    return ".".join(path)


def _get(value: Any, *path: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """``value[path[0]][path[1]]...``; a missing field or one of the wrong kind is one LabError line."""
    for i, key in enumerate(path):
        if not isinstance(value, dict):
            raise LabError(f"lab model: field {_where(path[:i]) or 'model'}: expected a mapping")
        if value.get(key) is None:
            raise LabError(f"lab model: field {_where(path[: i + 1])} missing")
        value = value[key]
    if kind is not None and not isinstance(value, kind):
        names: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string"}
        wanted = names.get(kind, kind.__name__) if isinstance(kind, type) else "a value"
        raise LabError(f"lab model: field {_where(path)}: expected {wanted}, got {type(value).__name__}")
    return value


@dataclass
class Wlan:
    ssid: str
    link: str
    channel: str
    ap: str


@dataclass
class Inner:
    interface: str
    address: str
    prefix: str
    link: str | None


@dataclass
class Lab:
    """What the picture shows, read (and checked) from a lab model."""

    figure: str
    plan: str
    prefixes: dict[str, str]
    addresses: dict[str, dict[str, str]]  # node -> link -> address/length
    wlans: list[Wlan]
    home_link: str
    foreign_link: str
    home_address: str
    mn_hosts: dict[str, str]  # link -> the MN's address there
    inner: dict[str, Inner]


def read_model(model: Any) -> Lab:
    """The fields of the lab model the picture uses; LabError naming the first one missing."""
    if not isinstance(model, dict):
        raise LabError(f"lab model: expected a mapping, got {type(model).__name__}")
    prefixes = {str(k): str(v) for k, v in _get(model, "prefixes", kind=dict).items()}
    addresses: dict[str, dict[str, str]] = {}
    for node in _get(model, "nodes", kind=dict):
        given = _get(model, "nodes", node, "addresses", kind=dict)
        addresses[str(node)] = {str(link): str(address) for link, address in given.items()}
    wlans = []
    for i, _ in enumerate(_get(model, "wlan_networks", kind=list)):
        net = model["wlan_networks"][i]
        if not isinstance(net, dict):
            raise LabError(f"lab model: field wlan_networks[{i}]: expected a mapping")
        here = f"wlan_networks[{i}]"
        wlans.append(
            Wlan(
                ssid=str(_get({here: net}, here, "ssid")),
                link=str(_get({here: net}, here, "link")),
                channel="?" if net.get("channel") is None else str(net["channel"]),
                ap=str(_get({here: net}, here, "node")),
            )
        )
    mn_hosts = {
        str(link): str(_get(model, "mn_links", link, "host")) for link in _get(model, "mn_links", kind=dict)
    }
    by_prefix = {prefix: link for link, prefix in prefixes.items()}
    inner = {}
    for node in _get(model, "inner", kind=dict):
        prefix = str(_get(model, "inner", node, "prefix"))
        inner[str(node)] = Inner(
            interface=str(_get(model, "inner", node, "interface")),
            address=str(_get(model, "inner", node, "address")),
            prefix=prefix,
            link=by_prefix.get(prefix),
        )
    return Lab(
        figure=str(_get(model, "figure")),
        plan=str(_get(model, "address_plan")),
        prefixes=prefixes,
        addresses=addresses,
        wlans=wlans,
        home_link=str(_get(model, "home_link")),
        foreign_link=str(_get(model, "foreign_link")),
        home_address=str(_get(model, "home_address")),
        mn_hosts=mn_hosts,
        inner=inner,
    )


# -- layout ---------------------------------------------------------------------------------------
@dataclass
class _Item:
    kind: str  # "link" or "node"
    name: str
    depth: int
    children: list[_Item] = field(default_factory=list)
    x: float = 0.0


def _order(name: str) -> tuple[int, str]:
    return (ORDER.index(name), "") if name in ORDER else (len(ORDER), name)


@dataclass
class Layout:
    node_at: dict[str, tuple[float, float]]  # host -> (x, depth)
    link_at: dict[str, float]  # wired link -> depth of its bar
    orphans: list[str]  # hosts without an address in this figure (but the MN)
    wlan_at: dict[int, tuple[float, float]]  # index into Lab.wlans -> (x, depth)
    mn_at: tuple[float, float]
    unused: list[str]  # links of the plan that no host and no network uses
    columns: int
    depth: float


def layout(lab: Lab) -> Layout:
    wlan_links = {w.link for w in lab.wlans}
    inner_links = {i.link for i in lab.inner.values() if i.link}
    hosts = sorted((n for n in lab.addresses if n != "mn"), key=_order)
    wired = [
        link
        for link in lab.prefixes
        if link not in wlan_links | inner_links and any(link in lab.addresses[n] for n in hosts)
    ]
    wired.sort(key=lambda link: (link != "backbone", -sum(link in lab.addresses[n] for n in hosts)))

    placed_nodes: set[str] = set()
    placed_links: set[str] = set()
    roots: list[_Item] = []
    for start in wired:  # one tree per connected part, the backbone's first
        if start in placed_links:
            continue
        placed_links.add(start)
        root = _Item("link", start, 0)
        roots.append(root)
        queue = [root]
        while queue:
            item = queue.pop(0)
            if item.kind == "link":
                for node in hosts:
                    if node not in placed_nodes and item.name in lab.addresses[node]:
                        placed_nodes.add(node)
                        item.children.append(_Item("node", node, item.depth + 1))
            else:
                for link in wired:
                    if link not in placed_links and link in lab.addresses[item.name]:
                        placed_links.add(link)
                        item.children.append(_Item("link", link, item.depth + 1))
            queue.extend(item.children)
    # hosts on no wired link: an access point alone, or a host this figure does not cable
    loose = [n for n in hosts if n not in placed_nodes]
    aps = {w.ap for w in lab.wlans}
    orphans = [n for n in loose if not lab.addresses[n] and n not in aps]
    roots += [_Item("node", n, 1) for n in loose if n not in orphans]

    column = 0

    def place(item: _Item) -> None:
        nonlocal column
        for child in item.children:
            place(child)
        if item.children:
            item.x = sum(c.x for c in item.children) / len(item.children)
        else:
            item.x = float(column)
            column += 1

    node_at: dict[str, tuple[float, float]] = {}
    link_at: dict[str, float] = {}

    def record(item: _Item) -> None:
        if item.kind == "node":
            node_at[item.name] = (item.x, float(item.depth))
        else:
            link_at[item.name] = float(item.depth)
        for child in item.children:
            record(child)

    for root in roots:
        place(root)
        record(root)

    deepest = max((d for _, d in node_at.values()), default=0.0)
    wlan_row = deepest + 1
    wlan_at: dict[int, tuple[float, float]] = {}
    by_ap: dict[str, list[int]] = {}
    for i, wlan in enumerate(lab.wlans):
        by_ap.setdefault(wlan.ap, []).append(i)
    for ap, indices in by_ap.items():
        if ap in node_at:
            x0 = node_at[ap][0]
        else:  # a network whose access point the model does not list
            x0 = float(column)
            column += 1
        for k, i in enumerate(indices):
            wlan_at[i] = (x0 + 0.5 * (k - (len(indices) - 1) / 2), wlan_row)
    attached = [wlan_at[i][0] for i, w in enumerate(lab.wlans) if w.link in lab.mn_hosts] or [
        x for x, _ in wlan_at.values()
    ]
    mn_x = sum(attached) / len(attached) if attached else 0.0
    mn_row = wlan_row + 1 if lab.wlans else deepest + 1
    for k, node in enumerate(orphans):
        node_at[node] = (float(column + k), 1.0)
    used = set(link_at) | wlan_links | inner_links
    unused = [link for link in lab.prefixes if link not in used]
    depth = mn_row + (0.9 if "mn" in lab.inner else 0.3)
    return Layout(
        node_at, link_at, orphans, wlan_at, (mn_x, mn_row), unused, max(column + len(orphans), 1), depth
    )


# -- drawing --------------------------------------------------------------------------------------
def _profile_text(profile: str | None) -> str:
    if not profile:
        return "profile: unknown"
    try:
        from mvpn_lab.analysis.summary import load_paper

        known = load_paper().get("impairment_profiles", {}).get(profile)
    except Exception:  # the picture does not depend on the paper's data being readable
        known = None
    if not isinstance(known, dict):
        return f"profile: {profile}"
    parts = []
    if known.get("uplink_kbit") is not None:
        parts.append(f"up {known['uplink_kbit']} / down {known.get('downlink_kbit', '?')} kbit/s")
    if known.get("rtt_ms") is not None:
        parts.append(f"RTT {known['rtt_ms']} ms")
    if not parts and known.get("description"):
        parts.append(f"{known['description']}, no impairment")
    return f"profile: {profile}" + (f" ({', '.join(parts)})" if parts else "")


def _node_text(lab: Lab, node: str, profile: str | None) -> str:
    lines = [f"{node} · {ROLES.get(node, 'host')}"]
    lines += [f"{link}: {address}" for link, address in lab.addresses[node].items()]
    if node == "impair":
        lines.append(_profile_text(profile))
    return "\n".join(lines)


def _y(depth: float) -> float:
    return -depth


def draw_topology(model: Any, path: Path, profile: str | None = None) -> Path:
    """Draw the lab model as an SVG file at ``path``; ``profile``: the impairment profile, if known.

    Raises LabError (one line naming the field) when the model lacks a field the picture needs.
    """
    lab = read_model(model)
    plan = layout(lab)
    text: dict[str, Any] = {"fontsize": FONT, "parse_math": False, "zorder": 4}

    fig = Figure(figsize=(max(8.0, plan.columns * COLUMN_IN), (plan.depth + 1.6) * ROW_IN))
    FigureCanvasSVG(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    ax.set_xlim(-0.6, plan.columns - 0.4)
    ax.set_ylim(_y(plan.depth + 0.6), 0.9)

    # wired links: a bar under (or over) the hosts on it, each host joined to it
    for link, depth in plan.link_at.items():
        xs = [plan.node_at[n][0] for n in lab.addresses if link in lab.addresses[n] and n in plan.node_at]
        y = _y(depth)
        ax.plot([min(xs) - 0.38, max(xs) + 0.38], [y, y], color=LINK_COLOUR, lw=3, zorder=2)
        ax.text(
            min(xs) - 0.38,
            y + 0.06,
            f"{link}  {lab.prefixes[link]}",
            ha="left",
            va="bottom",
            color=LINK_COLOUR,
            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"},
            **text,
        )
        for node, (x, node_depth) in plan.node_at.items():
            if link in lab.addresses.get(node, {}):
                ax.plot([x, x], [y, _y(node_depth)], color=LINK_COLOUR, lw=1.2, zorder=1)

    for node, (x, depth) in plan.node_at.items():
        orphan = node in plan.orphans
        label = (
            f"{node} · {ROLES.get(node, 'host')}\nno address in {lab.figure}"
            if orphan
            else _node_text(lab, node, profile)
        )
        ax.text(
            x,
            _y(depth),
            label,
            ha="center",
            va="center",
            color=GREY if orphan else "black",
            bbox={
                "boxstyle": "round,pad=0.5",
                "fc": "white" if orphan else COLOURS.get(node, "#eeeeee"),
                "ec": GREY if orphan else "#555555",
                "ls": "--" if orphan else "-",
            },
            **text,
        )

    # wireless networks under their access points, the mobile node below them
    mn_x, mn_depth = plan.mn_at
    for i, wlan in enumerate(lab.wlans):
        x, depth = plan.wlan_at[i]
        role = {lab.home_link: "home", lab.foreign_link: "visited"}.get(wlan.link, "")
        prefix = lab.prefixes.get(wlan.link, "?")
        ax.text(
            x,
            _y(depth),
            f"WLAN {wlan.ssid}" + (f" ({role})" if role else "") + f"\nchannel {wlan.channel}"
            f"\n{wlan.link}  {prefix}",
            ha="center",
            va="center",
            bbox={"boxstyle": "round4,pad=0.6", "fc": WLAN_COLOUR, "ec": "#3b8bb5", "ls": "--"},
            **text,
        )
        if wlan.ap in plan.node_at:
            ap_x, ap_depth = plan.node_at[wlan.ap]
            ax.plot([ap_x, x], [_y(ap_depth), _y(depth)], color="#3b8bb5", lw=1.2, zorder=1)
        if wlan.link in lab.mn_hosts:
            home = wlan.link == lab.home_link
            ax.plot(
                [x, mn_x],
                [_y(depth), _y(mn_depth)],
                color="#6a3d9a",
                lw=1.4,
                ls="-" if home else "--",
                zorder=1,
            )
            ax.text(
                (x + mn_x) / 2,
                (_y(depth) + _y(mn_depth)) / 2,
                "home attachment" if home else f"visited ({wlan.ssid})",
                ha="center",
                va="center",
                color="#6a3d9a",
                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"},
                **text,
            )
    mn_lines = ["mn · mobile node", f"home address {lab.home_address}"]
    mn_lines += [
        f"care-of on {w.ssid}: {lab.mn_hosts[w.link]}"
        for w in lab.wlans
        if w.link in lab.mn_hosts and w.link != lab.home_link
    ]
    ax.text(
        mn_x,
        _y(mn_depth),
        "\n".join(mn_lines),
        ha="center",
        va="center",
        bbox={"boxstyle": "round,pad=0.5", "fc": COLOURS["mn"], "ec": "#555555"},
        **text,
    )

    # tunnel-mode inner ends: a dummy interface under their host
    for node, inner in lab.inner.items():
        if node == "mn":
            x, depth = mn_x, mn_depth
        elif node in plan.node_at:
            x, depth = plan.node_at[node]
        else:
            continue
        below = depth + (0.8 if node == "mn" else 0.62)
        ax.plot([x, x], [_y(depth), _y(below)], color=GREY, lw=1, ls=":", zorder=1)
        ax.text(
            x,
            _y(below),
            f"{inner.interface} (tunnel-mode inner end of {node})\n"
            f"{inner.link or 'inner'}  {inner.prefix}\n{inner.address}",
            ha="center",
            va="center",
            bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": GREY, "ls": "--"},
            **text,
        )

    ax.text(
        -0.55,
        0.75,
        f"Lab topology: {lab.figure}, address plan {lab.plan}",
        ha="left",
        va="top",
        fontsize=FONT + 3,
        fontweight="bold",
        parse_math=False,
    )
    if plan.unused:
        ax.text(
            -0.55,
            _y(plan.depth + 0.45),
            f"prefixes of the plan not used in {lab.figure}: "
            + ", ".join(f"{link}  {lab.prefixes[link]}" for link in plan.unused),
            ha="left",
            va="center",
            color="#555555",
            **text,
        )

    path.parent.mkdir(parents=True, exist_ok=True)
    # svg.fonttype none: text stays text (searchable, and the tests read it); a fixed hash salt and
    # no date: the same model gives the same file
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "mvpn-lab-topology"}):
        fig.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None})
    return path
