"""What a router did with one packet, in words: each stage, and the verdict.

ofproto/trace (vpclab/router_trace.py) says which flow each table matched and
what the datapath would do; this module says what that means in the VPC:

  delivered  to a local VM (which, which port)
  tunnel     sent to another host (which host, VNI, ENI option)
  answered   an ARP request answered by the router itself
  miss       sent to the mapping service: what it would be asked, and what the
             mapping table says it would answer (knows / unknown: silence /
             source verified / refused)
  dropped    with the reason: anti-spoofing, unknown destination, another VPC,
             broadcast, receive check

A trace sends nothing to the mapping service (OVS marks the packet-in
`dont_send`), so the answer to a miss is predicted from the lab's records with
the same rules as vpclab/pipeline.py's decisions; the meter a miss passes is
named with its rate: past it, the router drops the miss. Pure.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from vpclab.explain_flows import explain, stage_name
from vpclab.flowtext import FlowEntry, Meter
from vpclab.labview import Eni, LabView
from vpclab.pipeline import (
    ARP, CHECK, CLASSIFY, COOKIE_CHECK_FAILED, COOKIE_NEGATIVE, DELIVER, FORWARD, PRIO_DROP_MCAST,
)
from vpclab.probe import Probe
from vpclab.router_trace import OfprotoTrace, TraceStep

ROUTER_BRIDGE = "br-int"
WIDTH = 100             # the verdict is wrapped to this width


@dataclass(frozen=True)
class Stage:
    """One table the packet went through: the flow that matched, explained."""

    stage: str
    table: int
    text: str
    explained: bool
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
    """kind: delivered, tunnel, answered, miss or dropped. `reason` for a drop (anti-spoofing,
    unknown destination, another VPC, broadcast, receive check); for a miss, what the
    mapping service would answer (knows, unknown, verified, refused)."""

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
    `.next` (the command that follows the packet to the next router, if any)."""

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
        lines = [f"trace on {p.router}'s router: {p.description}",
                 f"  packet    {p.flow}"]
        lines += [f"  note      {note}" for note in p.notes]
        lines += [f"  {s.stage:<9} {s.text}" for s in self.stages]
        lines.append(textwrap.fill(f"verdict: {self.verdict.text}", WIDTH, subsequent_indent="         ",
                                   break_on_hyphens=False, break_long_words=False))
        if self.next:
            lines.append(f"next: {self.next}")
        if raw:
            lines += ["", "ofproto/trace said:", self.ofproto.raw.rstrip()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


# -- stages ------------------------------------------------------------------------------
def stages(trace: OfprotoTrace, view: LabView, flows: list[FlowEntry],
           meters: dict[int, Meter]) -> tuple[Stage, ...]:
    """The router's steps, each with the dumped flow it matched (for its counters and age)."""
    out = []
    for step in trace.on(ROUTER_BRIDGE):
        if step.match is None:
            out.append(Stage(stage_name(step.table), step.table, "no flow matched: dropped", True, None,
                             step.notes))
            continue
        flow = next((f for f in flows if step.is_same_flow(f)), step.as_flow())
        line = explain(flow, view, meters)
        out.append(Stage(line.stage, step.table, line.text, line.known, flow, step.notes))
    return tuple(out)


# -- the verdict ----------------------------------------------------------------------------
def verdict(trace: OfprotoTrace, probe: Probe, view: LabView, stages_: tuple[Stage, ...],
            meters: dict[int, Meter]) -> Verdict:
    steps = trace.on(ROUTER_BRIDGE)
    if not steps:
        return Verdict("dropped", "dropped: the router matched no flow at all", "unknown")
    last, stage = steps[-1], stages_[-1]
    flow = stage.flow or last.as_flow()
    outputs = flow.outputs()
    if last.match is None or flow.is_drop:
        return _dropped(last.table, flow, probe, view)
    if "CONTROLLER" in outputs:
        return _miss(last.table, flow, probe, view, meters)
    if str(view.tunnel_port) in outputs:
        return _tunnel(steps, trace, probe, view)
    if "IN_PORT" in outputs:
        return _answered(trace, probe, view)
    local = [view.local_port(int(p)) for p in outputs if p.isdigit()]
    if local and local[0] is not None:
        vm = local[0]
        return Verdict("delivered", f"delivered to {vm.vm} (port {vm.port}) on {probe.router}", "",
                       {"vm": vm.vm, "port": vm.port, "host": probe.router})
    return Verdict("other", f"the last flow does: {', '.join(flow.actions)}", "",
                   {"actions": list(flow.actions)})


def _another_vpc(view: LabView, probe: Probe) -> str:
    """'' or where else the address lives (identical addresses in other VPCs are allowed)."""
    others = [e for e in view.with_ip(probe.to) if e.vni != probe.vni]
    if not others:
        return ""
    named = ", ".join(f"{e.vm} in {e.vpc}" for e in others)
    return f"; {probe.to} is {named}: another VPC, unreachable from {view.vpc_of(probe.vni)}"


def _unknown(flow: FlowEntry, probe: Probe, view: LabView, where: str) -> Verdict:
    vpc = view.vpc_of(probe.vni)
    remembered = ""
    if flow.cookie_kind == COOKIE_NEGATIVE:
        left = max(0.0, flow.hard_timeout - flow.duration) if flow.hard_timeout else None
        remembered = (" (the mapping service said so; remembered as unknown"
                      + (f", {left:.0f} s left)" if left is not None else ")"))
    other = _another_vpc(view, probe)
    return Verdict("dropped", f"dropped {where}: unknown destination, no ENI has {probe.to} in "
                              f"{vpc}{remembered}{other}", "another VPC" if other else "unknown destination",
                   {"to": probe.to, "vpc": vpc})


def _dropped(table: int, flow: FlowEntry, probe: Probe, view: LabView) -> Verdict:
    vpc = view.vpc_of(probe.vni)
    if table == CLASSIFY and probe.from_tunnel:
        if view.local(probe.vni):
            return Verdict("dropped", "dropped at classification: a packet of a VNI with no flow here",
                           "another VPC")
        return Verdict("dropped", f"dropped at classification: {vpc} has no VM on {probe.router}, so its "
                                  f"router takes no packet of vni {probe.vni}", "another VPC", {"vpc": vpc})
    if table == CLASSIFY:
        own = view.vm(probe.sender)
        claims = f"{probe.src_mac} / {probe.src}"
        return Verdict("dropped", f"dropped by anti-spoofing: {probe.sender} may only send as "
                                  f"{own.mac} / {own.ip}, this packet says {claims}", "anti-spoofing",
                       {"vm": probe.sender, "src": probe.src, "src_mac": probe.src_mac})
    if table == FORWARD and flow.priority == PRIO_DROP_MCAST:
        return Verdict("dropped", "dropped: broadcast and multicast never leave a VM (nothing floods)",
                       "broadcast")
    if table == ARP:
        return _unknown(flow, probe, view, "unanswered")
    if table == FORWARD:
        return _unknown(flow, probe, view, "at forwarding")
    if table == CHECK:
        claim = f"{probe.src}" + (f" as eni {probe.eni_option[0]}" if probe.eni_option else "")
        how = ("the claim was refused before and is remembered" if flow.cookie_kind == COOKIE_CHECK_FAILED
               and flow.match else "no entry trusts that source")
        return Verdict("dropped", f"dropped by the receive check: {claim} from "
                                  f"{view.host_label(probe.tun_src)}: {how}; counted", "receive check",
                       {"claimed_source": probe.src, "outer_source": probe.tun_src})
    if table == DELIVER:
        return Verdict("dropped", f"dropped at delivery: no local ENI of {vpc} on {probe.router} is its "
                                  "destination", "unknown destination")
    return Verdict("dropped", f"dropped in table {table}", "unknown")


def _meter_text(flow: FlowEntry, meters: dict[int, Meter]) -> str:
    value = flow.action_value("meter")
    if value is None:
        return ""
    meter = meters.get(int(value))
    rate = f"at most {meter.rate}/s, " if meter and meter.rate else ""
    dropped = f"; it dropped {meter.dropped} so far" if meter and meter.dropped else ""
    return f"; the miss passes meter {value} ({rate}past that the router drops it{dropped})"


def _miss(table: int, flow: FlowEntry, probe: Probe, view: LabView, meters: dict[int, Meter]) -> Verdict:
    vpc = view.vpc_of(probe.vni)
    head = "sent to the mapping service (a miss): it would be asked "
    meter = _meter_text(flow, meters)
    if table == CHECK:
        question, answer, verdict = _check_question(probe, view)
        return Verdict("miss", head + f"{question}; {answer}{meter}", verdict,
                       {"question": question, "answer": answer})
    target = view.by_ip(probe.vni, probe.to)
    question = f"who has {probe.to} in {vpc}" if table == ARP else f"where {probe.to} is in {vpc}"
    if target is None and table == FORWARD:
        appliance = view.by_mac(probe.vni, probe.dst_mac)
        if appliance and not appliance.source_dest_check:
            target = appliance
    if target is None:
        answer = (f"it has no mapping for {probe.to} in {vpc}: no answer, silence ({probe.router} then "
                  f"drops {probe.to} for {view.negative_ttl} s){_another_vpc(view, probe)}")
        return Verdict("miss", head + f"{question}; {answer}{meter}", "unknown",
                       {"question": question, "answer": answer})
    where = view.host_label(target.host_ip)
    if table == ARP:
        answer = (f"it knows: {target.vm} ({target.mac}) on {where}; it would cache the entry on "
                  f"{probe.router} and answer this ARP from it")
    elif probe.dst_mac not in (target.mac, ""):
        answer = (f"it knows {target.vm} ({target.mac}) on {where}, but {probe.dst_mac} is not its MAC: "
                  "it would cache the entry and drop this packet")
    else:
        answer = (f"it knows: {target.vm} on {where}; it would cache the entry on {probe.router} and send "
                  "the packet on")
    return Verdict("miss", head + f"{question}; {answer}{meter}", "knows",
                   {"question": question, "answer": answer, "vm": target.vm})


def _check_question(probe: Probe, view: LabView) -> tuple[str, str, str]:
    """The receive-side check the mapping service would run (pipeline.decide_check's rules)."""
    vpc, outer = view.vpc_of(probe.vni), view.host_label(probe.tun_src)
    geneve = view.encap == "geneve"
    key = probe.eni_option[0] if probe.eni_option else None
    who = f"{probe.src} (eni {key})" if geneve else probe.src
    question = f"whether {who} of {vpc} lives behind {outer}"
    refused = (f"it would drop the packet, count it (receive_check_failed) and remember the claim "
               f"{view.negative_ttl} s")
    if geneve and key is None:
        return question, f"no: no ENI option in the Geneve header; {refused}", "refused"
    if geneve:
        source = view.by_key(key)
        if source is None or source.vni != probe.vni:
            return question, f"no: no ENI of {vpc} has key {key}; {refused}", "refused"
        if source.source_dest_check and source.ip != probe.src:
            return question, f"no: eni {key} is {source.vm}, whose address is {source.ip}; {refused}", "refused"
    else:
        source = view.by_ip(probe.vni, probe.src)
        if source is None or source.host_ip != probe.tun_src:
            appliance = view.by_mac(probe.vni, probe.src_mac)
            source = appliance if appliance and not appliance.source_dest_check else source
        if source is None:
            return question, f"no: no ENI has {probe.src} in {vpc}; {refused}", "refused"
    if source.host_ip != probe.tun_src or source.host == probe.router:
        return question, f"no: {source.vm} lives on {view.host_label(source.host_ip)}; {refused}", "refused"
    target = view.by_key(probe.eni_option[1]) if probe.eni_option else view.by_ip(probe.vni, probe.to)
    onto = f" and deliver the packet to {target.vm}" if target and target.host == probe.router else \
        ", but no local ENI is its destination: dropped"
    return question, (f"yes: {source.vm} lives on {view.host_by_ip(source.host_ip)}; it would cache "
                      f"{source.vm}'s entry on {probe.router}{onto}"), "verified"


def _tunnel(steps: list[TraceStep], trace: OfprotoTrace, probe: Probe, view: LabView) -> Verdict:
    written: dict[str, str] = {}
    for step in steps:
        written.update(step.as_flow().set_fields())
    header = trace.encapsulation
    encap = header[0] if header else ("geneve" if "tun_metadata0" in written else view.encap)
    vni = header[1] if header else int(written.get("tun_id", "0"), 0)
    tun_dst = written.get("tun_dst") or trace.final("tun_dst")
    option = trace.geneve_option
    text = (f"sent through the tunnel to {view.host_label(tun_dst)}: {'Geneve' if encap == 'geneve' else 'VXLAN'} "
            f"vni {vni} ({view.vpc_of(vni)})")
    details: dict[str, Any] = {"host": view.host_by_ip(tun_dst), "host_ip": tun_dst, "encap": encap,
                               "vni": vni, "vpc": view.vpc_of(vni)}
    if option:
        source, target = view.by_key(option[0]), view.by_key(option[1])
        text += (f", ENI option {option[0]}>{option[1]} ({source.vm if source else '?'} > "
                 f"{target.vm if target else '?'})")
        details["eni_option"] = list(option)
    return Verdict("tunnel", text, "", details)


def _answered(trace: OfprotoTrace, probe: Probe, view: LabView) -> Verdict:
    ip, mac = trace.final("arp_spa"), trace.final("arp_sha")
    eni = view.by_ip(probe.vni, ip)
    return Verdict("answered", f"answered locally (ARP): {ip} is-at {mac} ({eni.vm if eni else '?'}), sent "
                               f"back to {probe.sender} out of port {probe.in_port}", "",
                   {"ip": ip, "mac": mac, "vm": eni.vm if eni else None})


def follow_up(lab: str, probe: Probe, verdict_: Verdict, view: LabView) -> str:
    """The trace of the same packet on the router it goes to, if it leaves through the tunnel."""
    if verdict_.kind != "tunnel" or probe.from_tunnel or not verdict_.details.get("host") \
            or view.by_ip(probe.vni, probe.to) is None:       # routed via an appliance: no ENI of its own
        return ""
    sender = view.vm(probe.sender)
    forged = "" if sender is None or probe.src == sender.ip else f" --src {probe.src}"
    proto = "" if probe.proto == "icmp" else f" --proto {probe.proto}"
    return f"vpclab trace {lab} {probe.sender} --from-host {probe.router} --to {probe.to}{proto}{forged}"


def explain_trace(lab: str, probe: Probe, trace: OfprotoTrace, view: LabView, flows: list[FlowEntry],
                  meters: dict[int, Meter] | None = None) -> RouterTrace:
    """Everything `vpclab trace` prints, from the trace, the router's flows and its meters."""
    meters = meters or {}
    steps = stages(trace, view, flows, meters)
    result = verdict(trace, probe, view, steps, meters)
    return RouterTrace(lab, probe, steps, result, trace, follow_up(lab, probe, result, view))
