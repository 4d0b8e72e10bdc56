"""What `vpclab trace` returns (Lab.trace): the stages a packet went through, the verdict,
and how it prints. Values only; vpclab/inside/trace_verdict.py decides them."""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from vpclab.inside.flowtext import FlowEntry
from vpclab.inside.probe import Probe
from vpclab.inside.router_trace import OfprotoTrace

WIDTH = 100             # the verdict is wrapped to this width


@dataclass(frozen=True)
class Stage:
    """One table the packet went through: the flow that matched, explained."""

    stage: str
    table: int
    text: str
    explained: bool                   # False: a flow vpclab never installs (shown raw)
    flow: FlowEntry | None            # None: no flow matched
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        f = self.flow
        return {"stage": self.stage, "table": self.table, "text": self.text, "explained": self.explained,
                "priority": f.priority if f else None, "cookie": hex(f.cookie) if f else None,
                "match": f.match if f else None, "actions": list(f.actions) if f else [],
                "notes": list(self.notes)}


@dataclass(frozen=True)
class Verdict:
    """What the router does with the packet. `kind`:

    delivered  to a local VM (details: vm, port, host)
    tunnel     sent to another host (details: host, host_ip, encap, vni, vpc, eni_option;
               `wrong`: ["vni"] / ["host"] when the header is not what the VPC's records say)
    answered   an ARP request answered by the router itself (details: ip, mac, vm)
    flooded    sent out of several ports, or a broadcast sent to VMs (details: ports, vms)
    miss       sent to the mapping service; `reason` is what it would answer: knows,
               unknown, verified or refused
    dropped    `reason`: anti-spoofing, unknown destination, another VPC, broadcast,
               receive check, no such port (the flow outputs to a port the router lacks),
               nothing sent, foreign flow, or unknown
    not sent   the VM's own routes send nothing: `reason` no route, or own address
    other      none of these: the last flow's actions are in details

    `reason` is "foreign flow" whenever a flow vpclab never installs took part (a hand-added
    fault, say): the text then says what really happens and names that flow, and
    details["foreign_flows"] lists each one in ovs-ofctl add-flow syntax."""

    kind: str
    text: str
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "reason": self.reason, "details": self.details}


@dataclass(frozen=True)
class RouterTrace:
    """A packet's way through one real router (Lab.trace, `vpclab trace`): `.probe` (the
    packet and the router it enters), `.stages` (each with `.stage` and `.text`: the flow
    that matched, in words), `.verdict` (a Verdict), `.ofproto` (OVS's own trace, parsed) and
    `.next` (the command that follows the packet to the next router, if any). A packet the
    VM never sends (verdict kind "not sent") has no stages and an empty `.ofproto`."""

    lab: str
    probe: Probe
    stages: tuple[Stage, ...]
    verdict: Verdict
    ofproto: OfprotoTrace
    next: str = ""                    # the command that follows the packet further

    def to_json(self) -> dict[str, Any]:
        return {"lab": self.lab, "router": self.probe.router, "packet": self.probe.to_json(),
                "stages": [s.to_json() for s in self.stages], "verdict": self.verdict.to_json(),
                "next": self.next, "datapath_actions": self.ofproto.datapath_actions}

    def render(self, raw: bool = False) -> str:
        p = self.probe
        traced = bool(p.flow)
        lines = [f"trace on {p.router}'s router: {p.description}" if traced else
                 f"nothing to trace on {p.router}'s router: {p.description}"]
        lines += [f"  packet    {p.flow}"] if traced else []
        lines += [f"  note      {note}" for note in p.notes]
        lines += [f"  {s.stage:<9} {s.text}" for s in self.stages]
        lines.append(textwrap.fill(f"verdict: {self.verdict.text}", WIDTH, subsequent_indent="         ",
                                   break_on_hyphens=False, break_long_words=False))
        if self.next:
            lines.append(f"next: {self.next}")
        if raw and self.ofproto.raw:
            lines += ["", "ofproto/trace said:", self.ofproto.raw.rstrip()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()
