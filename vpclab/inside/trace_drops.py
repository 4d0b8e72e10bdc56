"""Why a router drops a packet, or what the mapping service would answer its miss.

The drops and misses of flows vpclab installs (vpclab/router/pipeline/), each in the words
of the VPC: anti-spoofing, an unknown destination (remembered or not), another VPC, a
broadcast, a refused receive check. A trace sends nothing to the mapping service (OVS
marks the packet-in `dont_send`), so the answer to a miss is predicted from the lab's
records with the same rules as vpclab.router.pipeline's decisions; the meter a miss passes is named
with its rate. Pure: used by vpclab/inside/trace_verdict.py.
"""
from __future__ import annotations

from vpclab.inside.flowtext import FlowEntry, Meter
from vpclab.inside.labview import LabView
from vpclab.router.pipeline import ARP, CHECK, CLASSIFY, COOKIE_CHECK_FAILED, COOKIE_NEGATIVE, DELIVER, FORWARD, PRIO_DROP_MCAST
from vpclab.inside.probe import Probe
from vpclab.inside.trace_result import Verdict


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


def dropped(table: int, flow: FlowEntry, probe: Probe, view: LabView) -> Verdict:
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


def miss(table: int, flow: FlowEntry, probe: Probe, view: LabView, meters: dict[int, Meter]) -> Verdict:
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
