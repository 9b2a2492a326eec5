"""``mvpn-lab topology --graph FILE.svg``: the lab of an inventory, drawn from its lab model.

The inventory is read the way Ansible reads it (ansible-core's InventoryManager and VariableManager:
hosts.yml, group_vars, host_vars); the topology variables of one lab host (they are the same for
every host unless an inventory sets them per host) are templated and handed to the collection's
``mvpn.lab.lab_model`` filter (``plugins/filter/lab_model.py``, imported by name through
:func:`mvpn_lab.collection.filter_plugin`), which fills in the collection's topology defaults
(``playbooks/vars/topology.yml``). The picture is :func:`mvpn_lab.analysis.topology_graph.draw_topology`,
the same that draws a run's topology in its report.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path
from typing import Any

from mvpn_lab.errors import LabError

#: the inventory used without -i: the virtual twin's, as ansible.cfg sets it
DEFAULT_INVENTORY = Path("inventories") / "virtual"
#: the group of the lab's hosts; the topology variables are read from its first host
LAB_GROUP = "mvpn_lab"


def _one_line(text: str) -> str:
    """The first line of ansible-core's message, without its ``[WARNING]:`` prefix."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line.removeprefix("[WARNING]:").removeprefix("[ERROR]:").strip()
    return ""


def default_inventory() -> Path:
    from mvpn_lab.runner.project import find_root

    return find_root() / DEFAULT_INVENTORY


def model_from_inventory(inventory: Path) -> tuple[dict[str, Any], str | None]:
    """(the lab model, the impairment host's ``impairment_profile`` or None) of an inventory.

    LabError (one line) when the inventory is missing or unreadable, has no host, or its topology
    variables do not make a lab model.
    """
    if not inventory.exists():
        raise LabError(f"-i: no inventory at {inventory}")
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    from mvpn_lab.collection import filter_plugin

    lab_model = filter_plugin("lab_model")
    loader = DataLoader()
    said = io.StringIO()  # ansible-core's warnings: one line of them if nothing could be read
    try:
        with contextlib.redirect_stderr(said):
            hosts_of = InventoryManager(loader=loader, sources=[str(inventory)])
    except AnsibleError as exc:
        raise LabError(f"-i {inventory}: {_one_line(str(exc))}") from None
    hosts = hosts_of.get_hosts()
    if not hosts:
        why = _one_line(said.getvalue()) or "no hosts"
        raise LabError(f"-i {inventory}: not an inventory with hosts ({why})")
    if said.getvalue():
        sys.stderr.write(said.getvalue())
    variables = VariableManager(loader=loader, inventory=hosts_of)
    lab_hosts = [h for h in hosts if LAB_GROUP in (g.name for g in h.get_groups())] or hosts

    def values(host: Any, names: tuple[str, ...]) -> dict[str, Any]:
        given = variables.get_vars(host=host)
        templar = Templar(loader=loader, variables=given)
        out = {}
        for name in names:
            if given.get(name) is None:
                continue
            try:
                out[name] = templar.template(given[name])
            except AnsibleError as exc:
                raise LabError(f"-i {inventory}: {host.name}: {name}: {_one_line(str(exc))}") from None
        return out

    topology = values(lab_hosts[0], tuple(lab_model.TOPOLOGY_VARIABLES))
    try:
        model = lab_model.lab_model(topology)
    except AnsibleError as exc:
        raise LabError(f"-i {inventory}: {_one_line(str(exc))}") from None
    profile = None
    for host in lab_hosts:
        given = values(host, ("mvpn_node", "impairment_profile"))
        if given.get("mvpn_node") == "impair" and given.get("impairment_profile"):
            profile = str(given["impairment_profile"])
    return model, profile


def cmd_topology(args: argparse.Namespace) -> int:
    from mvpn_lab.analysis.topology_graph import draw_topology

    out = Path(args.graph)
    if out.suffix.lower() != ".svg":
        raise LabError(f"--graph: {args.graph}: expected a file name ending in .svg")
    inventory = Path(args.inventory).expanduser() if args.inventory else default_inventory()
    model, profile = model_from_inventory(inventory)
    try:
        draw_topology(model, out, args.profile or profile)
    except OSError as exc:
        raise LabError(f"--graph: cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out} ({model['figure']}, address plan {model['address_plan']}, inventory {inventory})")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "topology",
        help="draw the lab of an inventory (hosts, links, prefixes, WLANs) as an SVG file",
        description="Build the lab model of an inventory (the mvpn.lab.lab_model filter over the "
        "collection's topology data and the inventory's variables) and draw it with matplotlib: "
        "hosts, links and prefixes, the wireless networks with SSID and channel, the mobile node's "
        "home and visited attachment, the tunnel-mode inner ends, the impairment node and its "
        "profile. Exit 0: written; 2: bad input (one line naming the problem).",
    )
    parser.add_argument("--graph", required=True, metavar="FILE.svg", help="the SVG file to write")
    parser.add_argument(
        "-i",
        "--inventory",
        metavar="INVENTORY",
        help=f"inventory to read (default: the twin's, {DEFAULT_INVENTORY} of the checkout)",
    )
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="the impairment profile to show (default: the impairment host's impairment_profile "
        "in the inventory; the tests set it per run)",
    )
    parser.set_defaults(func=cmd_topology)
