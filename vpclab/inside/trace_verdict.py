"""What a router did with one packet, in words: each stage, and the verdict.

ofproto/trace (vpclab/inside/router_trace.py) says which flow each table matched and
what the datapath would do; this module says what that means in the VPC:

  delivered  to a local VM (which, which port)
  tunnel     sent to another host (which host, VNI, ENI option), checked against
             the lab's records: a VNI not the VPC's, a host the VM does not live on
  answered   an ARP request answered by the router itself
  flooded    sent out of several ports (nothing vpclab installs floods)
  miss       sent to the mapping service, and what it would answer
             (vpclab/inside/trace_drops.py)
  dropped    with the reason (vpclab/inside/trace_drops.py), or because the datapath
             sends it nowhere (a port the router does not have)
  not sent   the VM's own routes send nothing (no route, its own address)

What is decided comes from what the trace really did (the flows that matched,
the datapath's actions), never from what vpclab meant to install: when a flow
vpclab never makes takes part (a hand-added fault), the verdict says what
happens and names that flow as foreign. Pure.
"""
from __future__ import annotations

from typing import Any

from vpclab.inside.explain_flows import explain, stage_name
from vpclab.inside.flowtext import FlowEntry, Meter
from vpclab.inside.labview import Eni, LabView
from vpclab.inside.probe import BROADCAST, Probe
from vpclab.inside.router_trace import OfprotoTrace, TraceStep
from vpclab.inside.trace_drops import dropped, miss
from vpclab.inside.trace_result import RouterTrace, Stage, Verdict

__all__ = ["RouterTrace", "Stage", "Verdict", "explain_trace", "not_sent", "stages", "verdict"]

ROUTER_BRIDGE = "br-int"
FOREIGN = "foreign flow"


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


def flow_text(flow: FlowEntry) -> str:
    """A flow as `ovs-ofctl add-flow` takes it (no counters)."""
    match = ",".join(k if v == "" else f"{k}={v}" for k, v in flow.match.items())
    return (f"table={flow.table},priority={flow.priority},cookie={flow.cookie:#x}"
            f"{',' + match if match else ''},actions={','.join(flow.actions) or 'drop'}")


# -- the verdict ----------------------------------------------------------------------------
def verdict(trace: OfprotoTrace, probe: Probe, view: LabView, stages_: tuple[Stage, ...],
            meters: dict[int, Meter]) -> Verdict:
    steps = trace.on(ROUTER_BRIDGE)
    if not steps:
        return Verdict("dropped", "dropped: the router matched no flow at all", "unknown")
    result = _named_elsewhere(_decide(steps, stages_, trace, probe, view, meters), probe, view)
    foreign = [s.flow for s in stages_ if not s.explained and s.flow is not None]
    if foreign and result.reason != FOREIGN:
        texts = [flow_text(f) for f in foreign]
        result = Verdict(result.kind, f"{result.text}; by a flow vpclab did not install: {'; '.join(texts)}",
                         FOREIGN, {**result.details, "foreign_flows": texts})
    return result


def _decide(steps: list[TraceStep], stages_: tuple[Stage, ...], trace: OfprotoTrace, probe: Probe,
            view: LabView, meters: dict[int, Meter]) -> Verdict:
    last, stage = steps[-1], stages_[-1]
    flow = stage.flow or last.as_flow()
    outputs = flow.outputs()
    if last.match is None or flow.is_drop:
        if not stage.explained:
            text = flow_text(flow)
            return Verdict("dropped", f"dropped by a flow vpclab did not install: {text}", FOREIGN,
                           {"foreign_flows": [text]})
        return dropped(last.table, flow, probe, view)
    if "CONTROLLER" in outputs:
        return miss(last.table, flow, probe, view, meters)
    if str(view.tunnel_port) in outputs or trace.encapsulation:
        return _tunnel(steps, trace, probe, view)
    if "IN_PORT" in outputs:
        return _answered(trace, probe, view)
    return _out_of_ports(last, flow, trace, probe, view)


def _destination(probe: Probe, view: LabView) -> Eni | None:
    """The ENI the packet is for in its VPC: by its address, or an appliance by its MAC."""
    target = view.by_ip(probe.vni, probe.to)
    if target is None or (probe.dst_mac and probe.dst_mac != target.mac):
        appliance = view.by_mac(probe.vni, probe.dst_mac)
        if appliance and not appliance.source_dest_check:
            return appliance
    return target


def _tunnel(steps: list[TraceStep], trace: OfprotoTrace, probe: Probe, view: LabView) -> Verdict:
    written: dict[str, str] = {}
    for step in steps:
        written.update(step.as_flow().set_fields())
    header = trace.encapsulation             # the datapath's own header: what really leaves
    encap = header[0] if header else ("geneve" if "tun_metadata0" in written else view.encap)
    vni = header[1] if header else int(written.get("tun_id", "0"), 0)
    tun_dst = trace.tunnel_destination or written.get("tun_dst") or trace.final("tun_dst")
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
    wrong = []
    if not probe.from_tunnel and vni != probe.vni:
        wrong.append("vni")
        text += (f"; the wrong VNI: {view.vpc_of(probe.vni)}'s is {probe.vni}, so the packet lands in "
                 f"{view.vpc_of(vni)} on the other side")
    dest = _destination(probe, view)
    if dest is not None and not probe.from_tunnel and tun_dst != dest.host_ip:
        wrong.append("host")
        text += f"; the wrong host: {dest.vm} lives on {view.host_label(dest.host_ip)}"
    if dest is not None and option and option[1] != dest.key:
        wrong.append("eni")
        text += f"; the ENI option names eni {option[1]}, not {dest.vm}'s eni {dest.key}"
    if wrong:
        details["wrong"] = wrong
    return Verdict("tunnel", text, "", details)


def _answered(trace: OfprotoTrace, probe: Probe, view: LabView) -> Verdict:
    ip, mac = trace.final("arp_spa"), trace.final("arp_sha")
    eni = view.by_ip(probe.vni, ip)
    text = (f"answered locally (ARP): {ip} is-at {mac} ({eni.vm if eni else '?'}), sent back to "
            f"{probe.sender} out of port {probe.in_port}")
    details: dict[str, Any] = {"ip": ip, "mac": mac, "vm": eni.vm if eni else None}
    if eni is not None and mac != eni.mac:
        text += f"; the wrong MAC: {eni.vm}'s is {eni.mac}"
        details["wrong"] = ["mac"]
    return Verdict("answered", text, "", details)


def _out_of_ports(step: TraceStep, flow: FlowEntry, trace: OfprotoTrace, probe: Probe,
                  view: LabView) -> Verdict:
    """Local ports: one VM (delivered), several or a broadcast (flooded), or nothing at all."""
    sent = [p for p in flow.outputs() if p.isdigit() and int(p) != probe.in_port]
    enis = {p: view.local_port(int(p)) for p in sent}
    said = "; ".join(step.notes)
    if trace.datapath_actions.strip() in ("", "drop"):
        missing = [p for p, eni in enis.items() if eni is None]
        if missing:
            return Verdict("dropped", f"dropped: the last flow sends it out of port {', '.join(missing)}, "
                                      f"which {probe.router}'s router does not have (OVS: {said or 'nothing to output'})",
                           "no such port", {"ports": missing, "actions": list(flow.actions)})
        return Verdict("dropped", f"dropped: nothing leaves {probe.router}'s router (the last flow does "
                                  f"{', '.join(flow.actions)}{'; OVS: ' + said if said else ''})", "nothing sent",
                       {"actions": list(flow.actions)})
    vms = [(p, e) for p, e in enis.items() if e is not None]
    if len(sent) > 1 or (vms and probe.dst_mac == BROADCAST):
        named = ", ".join(f"port {p} ({e.vm}" + ("" if e.vni == probe.vni else f", {e.vpc}: another VPC")
                          + ")" for p, e in vms)
        return Verdict("flooded", f"flooded: sent out of {len(sent)} port{'s' if len(sent) > 1 else ''} on "
                                  f"{probe.router}: {named}; vpclab never floods (the router answers ARP itself)",
                       "", {"ports": [int(p) for p in sent], "vms": [e.vm for _, e in vms], "host": probe.router})
    if len(vms) == 1:
        port, vm = vms[0]
        return Verdict("delivered", f"delivered to {vm.vm} (port {vm.port}) on {probe.router}", "",
                       {"vm": vm.vm, "port": vm.port, "host": probe.router})
    return Verdict("other", f"the last flow does: {', '.join(flow.actions)}", "", {"actions": list(flow.actions)})


def _named_elsewhere(result: Verdict, probe: Probe, view: LabView) -> Verdict:
    """A destination named as a VM of another VPC than the sender's: say which one is meant."""
    named = view.vm(probe.to_vm) if probe.to_vm else None
    if named is None or named.vni == probe.vni:
        return result
    return Verdict(result.kind, f"{result.text} (this is {probe.to} of {view.vpc_of(probe.vni)}, not "
                                f"{named.vm} of {named.vpc})", result.reason, {**result.details, "not": named.vm})


def not_sent(lab: str, probe: Probe, reason: str, words: str) -> RouterTrace:
    """The trace of a packet the VM's own routes never send (vpclab.inside.probe.unsent)."""
    empty = OfprotoTrace("", (), "", "", "", "")
    return RouterTrace(lab, probe, (), Verdict("not sent", f"not sent: {words}", reason, {"to": probe.to}), empty)


def follow_up(lab: str, probe: Probe, verdict_: Verdict, view: LabView) -> str:
    """The trace of the same packet on the router it goes to, if it leaves through the tunnel
    to the host and VNI the lab's records give its destination."""
    if verdict_.kind != "tunnel" or probe.from_tunnel or not verdict_.details.get("host") \
            or verdict_.details.get("wrong") or _destination(probe, view) is None:
        return ""
    sender = view.vm(probe.sender)
    forged = "" if sender is None or probe.src == sender.ip else f" --src {probe.src}"
    forged += "" if sender is None or probe.src_mac == sender.mac else f" --src-mac {probe.src_mac}"
    proto = "" if probe.proto == "icmp" else f" --proto {probe.proto}"
    return f"vpclab trace {lab} {probe.sender} --from-host {probe.router} --to {probe.to}{proto}{forged}"


def explain_trace(lab: str, probe: Probe, trace: OfprotoTrace, view: LabView, flows: list[FlowEntry],
                  meters: dict[int, Meter] | None = None) -> RouterTrace:
    """Everything `vpclab trace` prints, from the trace, the router's flows and its meters."""
    meters = meters or {}
    steps = stages(trace, view, flows, meters)
    result = verdict(trace, probe, view, steps, meters)
    return RouterTrace(lab, probe, steps, result, trace, follow_up(lab, probe, result, view))
