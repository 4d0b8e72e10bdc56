"""`ovs-ofctl -O OpenFlow13 dump-flows` text, read back into records.

Explaining a real switch's flows starts from what the switch itself prints, not
from what the mapping service meant to install: a flow somebody added by hand,
or one left over from an older program, must show up too. So this reads the
text OVS prints (one flow a line) into `FlowEntry` records, keeping every
match field and action as written, and the line itself. Pure: no OVS needed.

    cookie=0x0, duration=2.5s, table=0, n_packets=1, n_bytes=98, priority=100,ip,
        in_port=101,... actions=set_field:0x1->reg0,write_metadata:0x3e9,goto_table:20

OpenFlow 1.3 statistics carry no idle age (only OpenFlow 1.0's Nicira
extension does, and the routers speak 1.3 only), so `idle_age` is None unless
the text has it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from vpclab.router.pipeline import COOKIE_KIND_MASK

DEFAULT_PRIORITY = 32768          # OVS omits priority=32768 from its text
_STATS = {"cookie", "duration", "table", "n_packets", "n_bytes", "idle_timeout", "hard_timeout",
          "idle_age", "hard_age", "importance", "out_port", "out_group"}
_FLAGS = {"send_flow_rem", "check_overlap", "reset_counts", "no_packet_counts", "no_byte_counts"}
_SEPARATOR = re.compile(r"[,\s]+")


@dataclass(frozen=True)
class FlowEntry:
    """One flow as the switch reports it: `match` keeps the text's order (a bare protocol
    such as `ip` or `arp` is a key with value ""), `actions` one string per action."""

    table: int
    priority: int
    cookie: int
    match: dict[str, str]
    actions: tuple[str, ...]
    n_packets: int = 0
    n_bytes: int = 0
    duration: float = 0.0
    idle_timeout: int = 0
    hard_timeout: int = 0
    idle_age: int | None = None
    flags: tuple[str, ...] = ()
    raw: str = field(default="", compare=False)

    @property
    def cookie_kind(self) -> int:
        """The cookie's top byte (pipeline.COOKIE_MAPPING, COOKIE_NEGATIVE, ...)."""
        return self.cookie & COOKIE_KIND_MASK

    @property
    def cookie_vni(self) -> int:
        return (self.cookie >> 32) & 0xFFFFFF

    @property
    def cookie_ip(self) -> str:
        value = self.cookie & 0xFFFFFFFF
        return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))

    @property
    def is_drop(self) -> bool:
        return self.actions in ((), ("drop",))

    def field(self, name: str) -> str | None:
        """A match field's text (None if the flow does not match on it)."""
        return self.match.get(name)

    def has(self, *names: str) -> bool:
        return all(name in self.match for name in names)

    def number(self, name: str) -> int | None:
        """A numeric match field (decimal or 0x hex) as an int."""
        value = self.match.get(name)
        return None if value is None or value == "" else int(value.split("/")[0], 0)

    def outputs(self) -> list[str]:
        """The ports the actions send to: numbers as text, or IN_PORT, CONTROLLER..."""
        ports = []
        for action in self.actions:
            if action.startswith("output:"):
                ports.append(action.split(":", 1)[1])
            elif action in ("IN_PORT", "LOCAL", "NORMAL", "ALL", "FLOOD") or action.startswith("CONTROLLER"):
                ports.append(action.split(":")[0])
            elif action.startswith("controller("):
                ports.append("CONTROLLER")
        return ports

    def set_fields(self) -> dict[str, str]:
        """What `set_field:VALUE->FIELD` actions write, by field."""
        written = {}
        for action in self.actions:
            if action.startswith("set_field:") and "->" in action:
                value, target = action[len("set_field:"):].rsplit("->", 1)
                written[target] = value
        return written

    def action_value(self, name: str) -> str | None:
        """The argument of the first `name:ARG` action (goto_table, meter, write_metadata)."""
        prefix = name + ":"
        return next((a[len(prefix):] for a in self.actions if a.startswith(prefix)), None)


def split_actions(text: str) -> tuple[str, ...]:
    """Actions at top level: commas inside (...) or [...] belong to one action."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return tuple(p.strip() for p in parts if p.strip())


def _duration(text: str) -> float:
    return float(text.rstrip("s"))


def parse_match(text: str) -> dict[str, str]:
    """`ip,in_port=101,nw_src=10.0.0.148` -> {"ip": "", "in_port": "101", ...}."""
    match: dict[str, str] = {}
    for token in _SEPARATOR.split(text.strip()):
        if token:
            key, _, value = token.partition("=")
            match[key] = value
    return match


def parse_flow(line: str) -> FlowEntry | None:
    """One dump-flows line; None for a header (`OFPST_FLOW reply ...`) or a blank line."""
    text = line.strip()
    if not text or " actions=" not in f" {text}" or text.startswith(("OFPST_", "NXST_")):
        return None
    head, _, actions = f" {text}".partition(" actions=")
    stats: dict[str, str] = {}
    match: dict[str, str] = {}
    flags: list[str] = []
    priority = DEFAULT_PRIORITY
    for token in _SEPARATOR.split(head.strip()):
        if not token:
            continue
        key, eq, value = token.partition("=")
        if key == "priority":
            priority = int(value)
        elif eq and key in _STATS:
            stats[key] = value
        elif not eq and key in _FLAGS:
            flags.append(key)
        else:
            match[key] = value
    return FlowEntry(
        table=int(stats.get("table", "0")), priority=priority,
        cookie=int(stats.get("cookie", "0"), 0), match=match, actions=split_actions(actions),
        n_packets=int(stats.get("n_packets", "0")), n_bytes=int(stats.get("n_bytes", "0")),
        duration=_duration(stats.get("duration", "0s")),
        idle_timeout=int(stats.get("idle_timeout", "0")),
        hard_timeout=int(stats.get("hard_timeout", "0")),
        idle_age=int(stats["idle_age"]) if "idle_age" in stats else None,
        flags=tuple(flags), raw=text)


def parse_flows(text: str) -> list[FlowEntry]:
    """Every flow of a dump, in the order printed."""
    return [flow for flow in map(parse_flow, text.splitlines()) if flow is not None]


@dataclass(frozen=True)
class Meter:
    """An OpenFlow meter: its packet rate, and how many packets its drop band dropped."""

    meter_id: int
    rate: int | None = None
    unit: str = "pktps"
    dropped: int = 0


def parse_meters(config: str, stats: str = "") -> dict[int, Meter]:
    """`dump-meters` (rates) and `meter-stats` (band counters) text, by meter id."""
    rates: dict[int, tuple[int | None, str]] = {}
    current = None
    for line in config.splitlines():
        found = re.match(r"meter=(\d+)\s+(\w+)", line.strip())
        if found:
            current = int(found.group(1))
            rates[current] = (None, found.group(2))
        rate = re.search(r"\brate=(\d+)", line)
        if rate and current is not None:
            rates[current] = (int(rate.group(1)), rates[current][1])
    dropped: dict[int, int] = {}
    current = None
    for line in stats.splitlines():
        found = re.match(r"meter:(\d+)", line.strip())
        if found:
            current = int(found.group(1))
            dropped[current] = 0
        band = re.match(r"\d+: packet_count:(\d+)", line.strip())
        if band and current is not None:
            dropped[current] += int(band.group(1))
    return {m: Meter(m, rates.get(m, (None, "pktps"))[0], rates.get(m, (None, "pktps"))[1],
                     dropped.get(m, 0))
            for m in sorted(set(rates) | set(dropped))}
