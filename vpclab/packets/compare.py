"""Compare captures with expected traces, the way p4c's STF does.

A trace is a list of packets per capture point (`NODE:IFACE`, from file names
like `ZIGI-VM2.eth0.pcap` or `ZIGI-VM2.txt`). Packets are compared in order
within a point; the order across points is free. Expected lines may use `*`
as a wildcard and VM names instead of addresses (`ZIGI-VM1`, `ZIGI-VM1.mac`).
On a difference the report shows both lists side by side, marks the first
divergence and says what it most likely means for a VPC.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from vpclab.errors import VpclabError
from vpclab.report import comparison
from vpclab.model.topology import Topology
from vpclab.packets.trace import Packet, is_pcap, parse_text, read_pcap
from vpclab.model.validation import load_topology

TRACE_SUFFIXES = (".pcap", ".pcapng", ".txt")


def point_of(path: Path) -> str:
    """`ZIGI-VM2.eth0.pcap` -> `ZIGI-VM2:eth0`; `ZIGI-VM2.txt` -> `ZIGI-VM2:eth0`."""
    stem = path.name
    for suffix in TRACE_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    node, _, iface = stem.partition(".")
    return f"{node}:{iface or 'eth0'}"


def trace_files(path: Path) -> dict[str, Path]:
    """Capture points of a file or a folder (a pcap wins over the text of the same point)."""
    if not path.exists():
        raise VpclabError(f"{path}: no such file or folder")
    if path.is_file():
        return {point_of(path): path}
    found: dict[str, Path] = {}
    for file in sorted(path.iterdir()):
        if file.is_file() and file.name.endswith(TRACE_SUFFIXES):
            point = point_of(file)
            if point not in found or is_pcap(file):
                found[point] = file
    if not found:
        raise VpclabError(f"{path}: no trace files (NODE[.IFACE].pcap or .txt) in this folder")
    return found


def aliases(topology: Topology) -> dict[str, str]:
    """Names a trace may use for addresses: VMs, their MACs, hosts."""
    names = {vm.name: str(vm.ip) for vm in topology.vms.values()}
    names |= {f"{vm.name}.mac": vm.mac for vm in topology.vms.values()}
    names |= {h.name: str(h.underlay_ip) for h in topology.hosts.values()}
    return names


# where a DNS line holds a DNS name (`DNS A? web-1.shop.internal`): never an alias
DNS_NAME_SLOT = re.compile(r"^DNS (?:\S+\? |answer |[A-Z]+ )$|(?:, | PTR | CNAME | NS )$")


def apply_aliases(lines: list[str], names: dict[str, str]) -> list[str]:
    """VM and host names in expected lines -> their addresses (`ZIGI-VM1.mac` -> its MAC),
    but not in a DNS line's name slots: `DNS A? web-1.shop.internal` asks for a name (a
    VM's name is its first label), it is no address; `... A web-1` is one."""
    if not names:
        return lines
    pattern = re.compile(r"(?<![\w.:-])(" + "|".join(
        re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")(?![\w-])")

    def alias(found: re.Match) -> str:
        before = found.string[:found.start()]
        in_dns_name = before.startswith("DNS ") and DNS_NAME_SLOT.search(before)
        return found.group(0) if in_dns_name else names[found.group(1)]

    return [pattern.sub(alias, line) for line in lines]


def load_trace(path: Path, names: dict[str, str] | None = None,
               keep_noise: bool = False) -> list[Packet]:
    try:
        if is_pcap(path):
            return read_pcap(path, keep_noise)
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise VpclabError(f"{path}: cannot read it: {exc}")
    except Exception as exc:  # scapy on a damaged pcap
        raise VpclabError(f"{path}: not a readable pcap: {exc}")
    return parse_text(apply_aliases(text.splitlines(), names or {}), keep_noise)


ENI_OPTION = re.compile(r" eni \S+(?=:)")


def line_matches(expected: str, actual: str) -> bool:
    """Equal, or equal but for `*` in the expected line. An expected tunnel line that
    does not mention the Geneve ENI option accepts any (tcpdump's text never shows it)."""
    if " eni " not in expected:
        actual = ENI_OPTION.sub("", actual, count=1)
    if "*" not in expected:
        return expected == actual
    return re.fullmatch(".*".join(map(re.escape, expected.split("*"))), actual) is not None


@dataclass(frozen=True)
class PointResult:
    point: str
    expected: list[str]
    actual: list[str]
    own_ip: str | None = None

    @property
    def first_difference(self) -> int | None:
        for i, (e, a) in enumerate(zip(self.expected, self.actual)):
            if not line_matches(e, a):
                return i
        if len(self.expected) != len(self.actual):
            return min(len(self.expected), len(self.actual))
        return None

    @property
    def matches(self) -> bool:
        return self.first_difference is None

    def side_by_side(self, left: str = "expected", right: str = "captured") -> str:
        width = max([len(left)] + [len(e) for e in self.expected]) + 2
        rows = [f"      {left:<{width}}{right}"]
        diff = self.first_difference
        for i in range(max(len(self.expected), len(self.actual))):
            e = self.expected[i] if i < len(self.expected) else "-"
            a = self.actual[i] if i < len(self.actual) else "-"
            same = i < len(self.expected) and i < len(self.actual) and line_matches(e, a)
            mark = "  " if same else ("=>" if i == diff else " x")
            rows.append(f"  {mark} {i + 1:>2} {e:<{width}}{a}")
        return "\n".join(rows)

    def explain(self) -> list[str]:
        """What the first difference most likely means, in a VPC's terms."""
        if self.matches:
            return []
        node = self.point.split(":")[0]
        reasons = _flooded_arp(node, self.expected, self.actual, self.own_ip)
        reasons += _wrong_mac(self.expected, self.actual)
        if not reasons:
            reasons += _order_or_count(self.expected, self.actual, self.first_difference)
        return reasons


ARP_REQUEST = re.compile(r"^ARP request who-has (\S+) tell (\S+)$")
ARP_REPLY = re.compile(r"^ARP reply (\S+) is-at (\S+)$")


def _flooded_arp(node: str, expected: list[str], actual: list[str], own_ip: str | None) -> list[str]:
    extra = [a for a in actual if ARP_REQUEST.match(a) and not any(line_matches(e, a) for e in expected)]
    out = []
    for line in extra:
        target, sender = ARP_REQUEST.match(line).groups()
        if own_ip is not None and sender == own_ip:
            continue   # the VM's own request: not a flood
        out.append(f"{node} saw an ARP request from {sender} (who-has {target}): the ARP was "
                   "flooded instead of answered by the virtual router (a VPC never floods ARP; "
                   "the router answers it from the mapping service)")
    return out[:1]


def _wrong_mac(expected: list[str], actual: list[str]) -> list[str]:
    want = {m.group(1): m.group(2) for m in map(ARP_REPLY.match, expected) if m}
    out = []
    for m in filter(None, map(ARP_REPLY.match, actual)):
        ip, mac = m.groups()
        if ip in want and "*" not in want[ip] and want[ip] != mac:
            out.append(f"the ARP reply says {ip} is-at {mac}, the expected trace says "
                       f"{want[ip]}: the mapping service answered with another ENI's MAC "
                       "(a wrong mapping, or a stale cached entry)")
    return out[:1]


def _order_or_count(expected: list[str], actual: list[str], diff: int) -> list[str]:
    if Counter(expected) == Counter(actual):
        return [f"the same {len(actual)} packets arrived in a different order: at #{diff + 1} "
                f"expected '{expected[diff]}', captured '{actual[diff]}'"]
    missing = [e for e in expected if not any(line_matches(e, a) for a in actual)]
    extra = [a for a in actual if not any(line_matches(e, a) for e in expected)]
    out = []
    if missing:
        out.append(f"{len(missing)} expected packet(s) never arrived, first: '{missing[0]}' "
                   "(dropped on the way: see the routers' flows and the mapping service's log)")
    if extra:
        out.append(f"{len(extra)} unexpected packet(s), first: '{extra[0]}'")
    if not out:
        out.append(f"expected {len(expected)} packets, captured {len(actual)}")
    return out


def compare_traces(capture: Path, expected: Path, topology: Topology | None = None,
                   keep_noise: bool = False) -> list[PointResult]:
    """Compare every expected capture point with the capture's; raise if nothing pairs up."""
    names = aliases(topology) if topology else {}
    want, have = trace_files(expected), trace_files(capture)
    if capture.is_file() and expected.is_file():      # two files: compare them as they are
        have = {point: path for point in want for path in have.values()}
    if not set(want) & set(have):
        raise VpclabError(f"no capture point of {expected} ({', '.join(want)}) is in {capture} "
                          f"({', '.join(have)}); name files NODE[.IFACE].pcap or .txt")
    own = _own_ips(capture) if capture.is_dir() else {}
    results = []
    for point, path in want.items():
        expected_lines = [p.line for p in load_trace(path, names, keep_noise)]
        actual = [p.line for p in load_trace(have[point], names, keep_noise)] if point in have else []
        results.append(PointResult(point, expected_lines, actual, own.get(point.split(":")[0])))
    return results


def _own_ips(capture_dir: Path) -> dict[str, str]:
    meta = capture_dir / "capture.json"
    if not meta.exists():
        return {}
    nodes = json.loads(meta.read_text()).get("nodes", {})
    return {name: n["ip"] for name, n in nodes.items() if "ip" in n}


@dataclass(frozen=True)
class Comparison:
    """A capture compared with an expected trace, point by point (the order across
    points is free). `str()` is `vpclab compare`'s side by side and verdict."""
    points: list[PointResult]
    labels: tuple[str, str] = ("expected", "captured")

    @property
    def match(self) -> bool:
        return all(point.matches for point in self.points)

    @property
    def differing(self) -> list[str]:
        return [point.point for point in self.points if not point.matches]

    @property
    def explanations(self) -> list[str]:
        """What each difference most likely means, in a VPC's terms ("point: why")."""
        return [f"{point.point}: {why}" for point in self.points for why in point.explain()]

    def verdict(self) -> str:
        """The last line `vpclab compare` prints: match, or which points differ."""
        if self.match:
            return f"verdict: match ({len(self.points)} capture point(s))"
        return (f"verdict: {len(self.differing)} of {len(self.points)} capture point(s) differ: "
                f"{', '.join(self.differing)}")

    def __str__(self) -> str:
        return "\n\n".join(comparison(point, self.labels) for point in self.points) + \
            "\n\n" + self.verdict()

    def __bool__(self) -> bool:
        return self.match


def compare_captures(capture: str | Path, expected: str | Path, topology: Topology | None = None,
                     keep_noise: bool = False) -> Comparison:
    """Compare a capture (a folder such as `vpclab capture` writes, a pcap or a tcpdump text
    file) with an expected trace. VM names in expected lines are resolved with `topology`,
    by default the capture folder's own topology.yaml."""
    capture, expected = Path(capture), Path(expected)
    if topology is None and capture.is_dir() and (capture / "topology.yaml").exists():
        topology = load_topology(capture / "topology.yaml")
    return Comparison(compare_traces(capture, expected, topology, keep_noise))
