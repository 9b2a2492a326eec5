"""A fake iproute2 for the module tests: ``ip -j`` answers from an in-memory kernel state.

``FakeIp`` answers ``ip -j`` queries with output shaped like real ``ip -j`` output, applies
changing commands to its state (so a second module run sees the first one's work) and records
every command line. ``canned`` holds exact answers for given command lines, ``fail`` answers
for command lines starting with a given prefix (to inject errors).
"""

from __future__ import annotations

import ipaddress
import json

READ_ONLY = ("ip -j ", "ip token get ")


def _scope(address: str) -> str:
    addr = ipaddress.IPv6Address(address)
    if addr.is_link_local:
        return "link"
    if addr in ipaddress.IPv6Network("fec0::/10"):
        return "site"  # what the kernel reports for the paper's site-local prefixes
    return "global"


def addr_info(address: str, **extra) -> dict:
    """One ``addr_info`` entry as ``ip -j -6 addr show`` prints it."""
    iface = ipaddress.IPv6Interface(address)
    info = {
        "family": "inet6",
        "local": str(iface.ip),
        "prefixlen": iface.network.prefixlen,
        "scope": _scope(str(iface.ip)),
        "valid_life_time": 4294967295,
        "preferred_life_time": 4294967295,
    }
    info.update(extra)
    return info


def route(dst: str, gateway: str, dev: str, protocol: str = "boot", metric: int = 1024, **extra) -> dict:
    """One route as ``ip -j -6 route show table main`` prints it."""
    entry = {
        "dst": dst,
        "gateway": gateway,
        "dev": dev,
        "protocol": protocol,
        "metric": metric,
        "flags": [],
        "pref": "medium",
    }
    entry.update(extra)
    return entry


class FakeIp:
    """A kernel's links, IPv6 addresses, routes and SLAAC tokens, driven through ``ip`` command lines."""

    def __init__(self, links=("lo", "eth0", "eth1", "wlan0"), up=("lo",)):
        self.links = {
            name: ["LOOPBACK", "UP"]
            if name == "lo"
            else ["BROADCAST", "MULTICAST"] + (["UP", "LOWER_UP"] if name in up else [])
            for name in links
        }
        self.addrs = {name: [] for name in links}
        self.routes: list[dict] = []
        self.tokens = {name: "::" for name in links}
        self.commands: list[str] = []
        self.canned: dict[str, tuple[int, str, str]] = {}  # exact command line -> (rc, out, err)
        self.fail: dict[str, tuple[int, str, str]] = {}  # command line prefix -> (rc, out, err)

    # ---- what tests look at
    def changing(self) -> list[str]:
        """Command lines that change the kernel (everything but ``ip -j`` and ``ip token get``)."""
        return [c for c in self.commands if not c.startswith(READ_ONLY)]

    def addresses(self, dev: str) -> list[str]:
        return [f"{a['local']}/{a['prefixlen']}" for a in self.addrs[dev]]

    # ---- AnsibleModule.run_command
    def __call__(self, args, **kwargs):
        assert isinstance(args, list), f"modules pass argv lists, never shell strings: {args!r}"
        line = " ".join(args)
        self.commands.append(line)
        if line in self.canned:
            return self.canned[line]
        for prefix, answer in self.fail.items():
            if line.startswith(prefix):
                return answer
        assert args[0] == "ip", line
        if args[1] == "-j":
            return self._query(args[2:], line)
        return self._change(args[1:], line)

    def _no_device(self, name):
        return 1, "", f'Device "{name}" does not exist.\n'

    def _query(self, args, line):
        if args == ["link", "show"]:
            return 0, json.dumps([{"ifname": n, "flags": f} for n, f in self.links.items()]), ""
        if args[:3] == ["link", "show", "dev"]:
            name = args[3]
            if name not in self.links:
                return self._no_device(name)
            return 0, json.dumps([{"ifname": name, "flags": self.links[name]}]), ""
        if args[:4] == ["-6", "addr", "show", "dev"]:
            name = args[4]
            if name not in self.links:
                return self._no_device(name)
            link_local = addr_info("fe80::%x/64" % (list(self.links).index(name) + 1), noprefixroute=True)
            infos = list(self.addrs[name]) + ([link_local] if name != "lo" else [])
            return (
                0,
                json.dumps([{"ifindex": 2, "ifname": name, "flags": self.links[name], "addr_info": infos}]),
                "",
            )
        if args == ["-6", "route", "show", "table", "main"]:
            return 0, json.dumps(self.routes), ""
        raise AssertionError(f"unexpected query: {line}")

    def _change(self, args, line):
        if args[:3] == ["link", "set", "dev"] and args[4:] == ["up"]:
            self.links[args[3]] += ["UP", "LOWER_UP"]
        elif args[:3] == ["-6", "addr", "add"]:
            dev = args[args.index("dev") + 1]
            extra = {"nodad": True} if "nodad" in args else {}
            self.addrs[dev].append(addr_info(args[3], **extra))
        elif args[:3] == ["-6", "addr", "del"]:
            dev = args[args.index("dev") + 1]
            before = len(self.addrs[dev])
            self.addrs[dev] = [a for a in self.addrs[dev] if f"{a['local']}/{a['prefixlen']}" != args[3]]
            if len(self.addrs[dev]) == before:
                return 2, "", "RTNETLINK answers: Cannot assign requested address\n"
        elif args[:3] == ["-6", "route", "replace"]:
            dst, gw, dev = args[3], args[args.index("via") + 1], args[args.index("dev") + 1]
            metric = int(args[args.index("metric") + 1]) if "metric" in args else 1024
            dst = "default" if dst == "::/0" else dst
            # IPv6: replace only matches a route with the same metric; another metric is a new route.
            self.routes = [r for r in self.routes if (r["dst"], r["metric"]) != (dst, metric)]
            self.routes.append(route(dst, gw, dev, metric=metric))
        elif args[:3] == ["-6", "route", "del"]:
            dst, gw, dev = args[3], args[args.index("via") + 1], args[args.index("dev") + 1]
            dst = "default" if dst == "::/0" else dst
            metric = int(args[args.index("metric") + 1]) if "metric" in args else None
            for r in self.routes:
                if (r["dst"], r.get("gateway"), r["dev"]) == (dst, gw, dev) and metric in (None, r["metric"]):
                    self.routes.remove(r)
                    break
            else:
                return 2, "", "RTNETLINK answers: No such process\n"
        elif args[:2] == ["token", "get"]:
            return 0, f"token {self.tokens[args[3]]} dev {args[3]}\n", ""
        elif args[:2] == ["token", "set"]:
            self.tokens[args[args.index("dev") + 1]] = args[2]
        else:
            raise AssertionError(f"unexpected command: {line}")
        return 0, "", ""
