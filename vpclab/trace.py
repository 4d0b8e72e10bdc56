"""Normalise tcpdump lines so captures can be compared with documented traces.

A capture line carries a timestamp, ids and lengths that differ on every run;
what the seed documents is the kind of packet, its addresses and the order.
`normalise` keeps exactly that, one canonical line per packet.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

IP = r"(\d+\.\d+\.\d+\.\d+)"
MAC = r"([0-9a-f]{2}(?::[0-9a-f]{2}){5})"
TIMESTAMP = re.compile(r"^\s*\d{2}:\d{2}:\d{2}\.\d+\s+")

# (pattern on the line after its timestamp, canonical form)
PACKET_FORMS = [
    (re.compile(rf"^ARP, Request who-has {IP} tell {IP}"), "ARP request who-has {0} tell {1}"),
    (re.compile(rf"^ARP, Reply {IP} is-at {MAC}"), "ARP reply {0} is-at {1}"),
    (re.compile(rf"^IP {IP} > {IP}: ICMP echo request"), "ICMP echo request {0} > {1}"),
    (re.compile(rf"^IP {IP} > {IP}: ICMP echo reply"), "ICMP echo reply {0} > {1}"),
]
TCPDUMP_CHATTER = ("tcpdump:", "listening on", "packets captured", "packets received",
                   "packets dropped")


def normalise_line(line: str) -> str | None:
    """The canonical form of one tcpdump -nn line; None for tcpdump's own chatter."""
    text = line.strip()
    if not text or text.startswith("#") or text.startswith("$") or any(
            text.startswith(c) or c in text for c in TCPDUMP_CHATTER):
        return None
    body = TIMESTAMP.sub("", text)
    for pattern, form in PACKET_FORMS:
        found = pattern.match(body)
        if found:
            return form.format(*found.groups())
    return "other: " + body


def normalise(lines: list[str]) -> list[str]:
    return [n for n in map(normalise_line, lines) if n is not None]


@dataclass(frozen=True)
class Comparison:
    expected: list[str]
    actual: list[str]

    @property
    def matches(self) -> bool:
        return self.expected == self.actual

    @property
    def first_difference(self) -> int | None:
        for i, (e, a) in enumerate(zip(self.expected, self.actual)):
            if e != a:
                return i
        if len(self.expected) != len(self.actual):
            return min(len(self.expected), len(self.actual))
        return None

    def side_by_side(self, left: str = "expected", right: str = "captured") -> str:
        width = max([len(left)] + [len(e) for e in self.expected]) + 2
        rows = [f"     {left:<{width}}{right}"]
        diff = self.first_difference
        for i in range(max(len(self.expected), len(self.actual))):
            e = self.expected[i] if i < len(self.expected) else "-"
            a = self.actual[i] if i < len(self.actual) else "-"
            mark = "  " if e == a else ("=>" if i == diff else " x")
            rows.append(f"{mark} {i + 1:>2} {e:<{width}}{a}")
        return "\n".join(rows)


def compare(expected_lines: list[str], actual_lines: list[str]) -> Comparison:
    return Comparison(normalise(expected_lines), normalise(actual_lines))
