"""A stand-in for iproute2's ``tc`` (qdiscs only), as ``AnsibleModule.run_command``.

It keeps each device's qdiscs and prints ``tc -j qdisc show`` exactly as iproute2 6.1 (Debian 12)
does on the twin's kernel (recorded there: delay and jitter in seconds, loss as a fraction, rates
in bytes per second, tbf's ``lat`` in microseconds).
"""

from __future__ import annotations

import json
import re
from typing import Any

NOQUEUE = {"kind": "noqueue", "handle": "0:", "root": True, "refcnt": 2, "options": {}}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(ms|s|us)", text)
    assert match, text
    value = float(match[1])
    return {"ms": value, "s": value * 1000, "us": value / 1000}[match[2]]


def _kbit(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)kbit", text)
    assert match, text
    return float(match[1])


class FakeTc:
    def __init__(self, devices: tuple[str, ...] = ("eth0", "eth1")) -> None:
        self.qdiscs: dict[str, list[dict[str, Any]]] = {d: [dict(NOQUEUE)] for d in devices}
        self.commands: list[str] = []
        self.fail_on: str | None = None  # a command prefix that fails (rc 2)

    def changing(self) -> list[str]:
        return [c for c in self.commands if " -j " not in f" {c} "]

    def __call__(self, args: list[str], **_kw: Any) -> tuple[int, str, str]:
        line = " ".join(args)
        self.commands.append(line)
        if self.fail_on and line.startswith(self.fail_on):
            return 2, "", "RTNETLINK answers: Operation not permitted"
        if args[:5] == ["tc", "-j", "qdisc", "show", "dev"]:
            device = args[5]
            if device not in self.qdiscs:
                return 1, "", f'Cannot find device "{device}"'
            return 0, json.dumps(self.qdiscs[device], separators=(",", ":")) + "\n", ""
        assert args[:3] == ["tc", "qdisc", "replace"] or args[:3] == ["tc", "qdisc", "del"], line
        device = args[4]
        if device not in self.qdiscs:
            return 1, "", f'Cannot find device "{device}"'
        if args[2] == "del":
            assert args[5:] == ["root"], line
            if self.qdiscs[device][0]["kind"] == "noqueue":
                return 2, "", "Error: Cannot delete qdisc with handle of zero."
            self.qdiscs[device] = [dict(NOQUEUE)]
            return 0, "", ""
        if args[5:8] == ["root", "handle", "1:"]:
            netem = self._netem(args[8:])
            old = self.qdiscs[device][0]
            if old["kind"] == "netem" and "rate" in old["options"] and "rate" not in netem["options"]:
                # the kernel changes an existing netem: a rate that tc does not send is kept
                netem["options"]["rate"] = old["options"]["rate"]
            self.qdiscs[device] = [netem] + [q for q in self.qdiscs[device] if q.get("parent")]
            return 0, "", ""
        assert args[5:9] == ["parent", "1:1", "handle", "10:"], line
        assert self.qdiscs[device][0]["kind"] == "netem", "tbf below a netem that is not there"
        opts = dict(zip(args[10::2], args[11::2], strict=True))
        tbf = {
            "kind": "tbf",
            "handle": "10:",
            "parent": "1:1",
            "options": {
                "rate": int(_kbit(opts["rate"]) * 1000 / 8),
                "burst": int(opts["burst"]),
                "lat": int(_ms(opts["latency"]) * 1000),
            },
        }
        self.qdiscs[device] = [self.qdiscs[device][0], tbf]
        return 0, "", ""

    @staticmethod
    def _netem(words: list[str]) -> dict[str, Any]:
        assert words[0] == "netem", words
        options: dict[str, Any] = {"limit": 1000}
        delay = jitter = 0.0
        rest = words[1:]
        i = 0
        while i < len(rest):
            word = rest[i]
            if word == "limit":
                options["limit"] = int(rest[i + 1])
                i += 2
            elif word == "delay":
                delay = _ms(rest[i + 1])
                i += 2
                if i < len(rest) and re.fullmatch(r"[0-9.]+ms", rest[i]):
                    jitter = _ms(rest[i])
                    i += 1
            elif word == "loss":
                assert rest[i + 1] == "random"
                options["loss-random"] = {"loss": float(rest[i + 2].rstrip("%")) / 100, "correlation": 0}
                i += 3
            elif word == "rate":
                options["rate"] = {
                    "rate": round(_kbit(rest[i + 1]) * 1000 / 8),  # whole bytes per second
                    "packetoverhead": 0,
                    "cellsize": 0,
                    "celloverhead": 0,
                }
                i += 2
            else:
                raise AssertionError(f"fake tc: unknown netem word {word}")
        if delay or jitter:
            options["delay"] = {"delay": delay / 1000, "jitter": jitter / 1000, "correlation": 0}
        ordered = {k: options[k] for k in ("limit", "delay", "loss-random", "rate") if k in options}
        ordered.update(ecn=False, gap=0)
        return {"kind": "netem", "handle": "1:", "root": True, "refcnt": 2, "options": ordered}
