"""`ovs-appctl ofproto/trace` output, read back into steps.

ofproto/trace runs a packet described as a flow through the real switch's
tables, with no packet sent and nothing asked of the controller, and prints
each table it visits:

    bridge("br-int")
    ----------------
     0. ip,in_port=101,dl_src=02:00:5e:ad:58:40,nw_src=10.0.0.148, priority 100
        set_field:0x1->reg0
        goto_table:20
    20. ip,metadata=0x3e9,...,nw_dst=10.0.0.185, priority 100, cookie 0x10003e90a0000b9
        output:1
         -> output to native tunnel

    Final flow: ...
    Datapath actions: tnl_push(...geneve(crit,vni=0x3e9,options({...,0x100000002}))...)

This module turns that text into `TraceStep`s (the flow each table matched,
its actions, OVS's notes under them) and the closing lines, so what the steps
mean can be decided without a switch (vpclab/inside/trace_verdict.py). OVS's own
format is the contract; the unit tests read real recorded output.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from vpclab.inside.flowtext import FlowEntry, parse_match

_BRIDGE = re.compile(r'^bridge\("([^"]+)"\)')
_STEP = re.compile(r"^(\s*)(\d+)\. (.*)$")
_HEAD = re.compile(r"^(?:(?P<match>.*?),\s*)?priority (?P<priority>\d+)(?:, cookie (?P<cookie>0x[0-9a-fA-F]+))?$")
_GENEVE_OPTION = re.compile(r"options\(\{class=0xffff,type=0x80,len=8,(0x[0-9a-fA-F]+)\}\)")
_VNI = re.compile(r"(geneve|vxlan)\([^)]*?vni=(0x[0-9a-fA-F]+)")
_TUNNEL_DST = re.compile(r"tnl_push\(.*?ipv4\(src=[^,]+,dst=([0-9.]+)")


@dataclass(frozen=True)
class TraceStep:
    """One table visited: the flow that matched (None: no flow did), its actions, notes."""

    bridge: str
    table: int
    match: dict[str, str] | None
    priority: int | None
    cookie: int
    actions: tuple[str, ...]
    notes: tuple[str, ...]

    def as_flow(self) -> FlowEntry:
        """The matched flow as a dump-flows record (no counters: a trace has none)."""
        return FlowEntry(self.table, self.priority or 0, self.cookie, dict(self.match or {}),
                         self.actions)

    def is_same_flow(self, flow: FlowEntry) -> bool:
        """Is `flow` (from dump-flows) the one this step matched?"""
        return (flow.table == self.table and flow.priority == self.priority
                and flow.cookie == self.cookie and flow.match == self.match)


@dataclass(frozen=True)
class OfprotoTrace:
    flow: str                     # the packet as OVS understood it ("Flow:" line)
    steps: tuple[TraceStep, ...]
    final_flow: str
    megaflow: str
    datapath_actions: str
    raw: str

    def on(self, bridge: str) -> list[TraceStep]:
        return [step for step in self.steps if step.bridge == bridge]

    @property
    def geneve_option(self) -> tuple[int, int] | None:
        """The (source, destination) ENI keys the packet leaves with, from the datapath's
        own Geneve header."""
        found = _GENEVE_OPTION.search(self.datapath_actions)
        if not found:
            return None
        value = int(found.group(1), 0)
        return value >> 32, value & 0xFFFFFFFF

    @property
    def encapsulation(self) -> tuple[str, int] | None:
        """("geneve"|"vxlan", vni) of the header the datapath pushes, if it pushes one."""
        found = _VNI.search(self.datapath_actions)
        return (found.group(1), int(found.group(2), 0)) if found else None

    @property
    def tunnel_destination(self) -> str | None:
        """The outer destination IP of the header the datapath pushes, if it pushes one."""
        found = _TUNNEL_DST.search(self.datapath_actions)
        return found.group(1) if found else None

    def final(self, name: str) -> str | None:
        """A field of the final flow (`arp_spa`, `dl_src`...)."""
        found = re.search(rf"(?:^|,){re.escape(name)}=([^,]+)", self.final_flow)
        return found.group(1) if found else None


def _step_head(bridge: str, table: str, text: str) -> TraceStep:
    text = text.strip()
    if text.rstrip(".").lower() == "no match":
        return TraceStep(bridge, int(table), None, None, 0, (), ())
    head = _HEAD.match(text)
    if head is None:
        return TraceStep(bridge, int(table), parse_match(text), None, 0, (), ())
    return TraceStep(bridge, int(table), parse_match(head.group("match") or ""),
                     int(head.group("priority")), int(head.group("cookie") or "0", 0), (), ())


def parse_trace(text: str) -> OfprotoTrace:
    """The steps and closing lines of one ofproto/trace run."""
    steps: list[TraceStep] = []
    bridge = ""
    current: TraceStep | None = None
    actions: list[str] = []
    notes: list[str] = []
    closing = {"Flow": "", "Final flow": "", "Megaflow": "", "Datapath actions": ""}

    def close() -> None:
        nonlocal current
        if current is not None:
            steps.append(TraceStep(current.bridge, current.table, current.match, current.priority,
                                   current.cookie, tuple(actions), tuple(notes)))
        current = None

    for line in text.splitlines():
        key = line.split(":", 1)[0]
        if key in closing and not line.startswith(" "):
            closing[key] = line.split(":", 1)[1].strip()
            if key != "Flow":          # the tables are over: what follows is OVS's summary
                close()
                current = None
            continue
        found = _BRIDGE.match(line)
        if found:
            bridge = found.group(1)
            continue
        step = _STEP.match(line)
        if step:
            close()
            current, actions, notes = _step_head(bridge, step.group(2), step.group(3)), [], []
            continue
        body = line.strip()
        if current is None or not body or set(body) == {"-"}:
            continue
        if body.startswith(("->", ">>")):          # OVS's remarks, not actions
            notes.append(body[2:].strip())
        elif line.startswith(" "):
            actions.append(body)
    close()
    return OfprotoTrace(closing["Flow"], tuple(steps), closing["Final flow"], closing["Megaflow"],
                        closing["Datapath actions"], text)
