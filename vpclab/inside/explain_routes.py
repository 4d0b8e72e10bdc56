"""The VPC router's flows (ROUTE, NEXTHOP and the gateways' ARP answers) in words, for
`vpclab flows` (explain_flows.py hands them here; vpclab/router/pipeline/route.py makes them):

    ARP      10.50.2.1 in shop is-at 02:76:70:63:00:01 (the VPC router: subnet app's .1)
    ROUTE    via-fw (shop): 10.50.1.0/24 -> fw (10.50.9.9); cached 2.0 s ago, ...
    NEXTHOP  next hop 10.50.9.9 (fw): from the router's MAC to 02:...; -> FORWARD
"""
from __future__ import annotations

from typing import Callable

from vpclab.inside.flowtext import FlowEntry, Meter
from vpclab.inside.labview import RESOLVER, Eni, LabView
from vpclab.router.pipeline import COOKIE_ROUTE, PRIO_DEFAULT, PRIO_MISS, PRIO_ROUTE
from vpclab.model.topology import ROUTER_MAC

Helpers = dict[str, Callable]     # explain_flows' shared pieces: origin, remembered, meter, vm


def gateway_arp(flow: FlowEntry, view: LabView, vni: int | None) -> str | None:
    """A subnet's .1, answered with the router's own MAC."""
    ip, mac = flow.field("arp_tpa"), (flow.set_fields().get("eth_src") or "").lower()
    if mac != ROUTER_MAC or "IN_PORT" not in flow.outputs():
        return None
    subnet = view.gateway_of(vni, ip)
    which = ("the VPC's DNS resolver, .2" if subnet == RESOLVER else
             f"subnet {subnet}'s .1" if subnet else "no subnet's .1 now: STALE")
    return f"{ip} in {view.vpc_of(vni)} is-at {mac} (the VPC router: {which})"


def service(flow: FlowEntry, view: LabView, meters: dict[int, Meter], shared: Helpers) -> str | None:
    """A VM's DHCP messages (CLASSIFY) and DNS queries to .2 (ROUTE), sent to the service."""
    if "CONTROLLER" not in flow.outputs() or not flow.has("udp"):
        return None
    eni = view.local_port(flow.number("in_port"))
    who = f"{shared['vm'](eni, 'port')} (port {flow.field('in_port')})"
    asks = f"the mapping service answers, on the host{shared['meter'](flow, meters)}"
    if flow.field("tp_src") == "68" and flow.field("tp_dst") == "67":
        return f"DHCP from {who}: {asks}"
    if flow.field("tp_dst") == "53":
        return f"DNS from {who} to the VPC's resolver {flow.field('nw_dst')}: {asks}"
    return None


def route(flow: FlowEntry, view: LabView, vni: int | None, meters: dict[int, Meter],
          shared: Helpers) -> str | None:
    dns = service(flow, view, meters, shared)
    if dns is not None:
        return dns
    if flow.priority == PRIO_DEFAULT and not flow.match and flow.action_value("goto_table"):
        return "anything not for the router (same subnet) -> FORWARD"
    if flow.priority == PRIO_MISS and flow.field("dl_dst") == ROUTER_MAC:
        if "CONTROLLER" in flow.outputs():
            eni = view.local_port(flow.number("in_port"))
            return (f"any other packet for the router from {shared['vm'](eni, 'port')} (port "
                    f"{flow.field('in_port')}): ask the mapping service for its route table's "
                    f"answer (a miss{shared['meter'](flow, meters)})")
        if flow.is_drop:
            return "any other packet for the router: dropped (no route to its destination)"
    if flow.cookie_kind != COOKIE_ROUTE or not PRIO_ROUTE <= flow.priority <= PRIO_ROUTE + 32:
        return None
    table = f"{view.route_table(vni, flow.number('reg2'))} ({view.vpc_of(vni)})"
    destination = flow.field("nw_dst") or "0.0.0.0/0"
    if flow.is_drop and flow.hard_timeout:
        return f"{table}: no route to {destination}, dropped ({shared['remembered'](flow)})"
    return f"{table}: {destination} -> {_target(flow, view, vni)}; {shared['origin'](flow, view)}"


def _target(flow: FlowEntry, view: LabView, vni: int | None) -> str:
    if flow.is_drop:
        return "blackhole: dropped (its target VM no longer exists)"
    written = flow.set_fields().get("reg3")
    if written is None:
        return "local (the destination itself is the next hop) -> NEXTHOP"
    ip = _ip(int(written, 0))
    eni = view.by_ip(vni, ip)
    return f"{eni.vm if eni else '?'} ({ip}) -> NEXTHOP"


def nexthop(flow: FlowEntry, view: LabView, vni: int | None, meters: dict[int, Meter],
            shared: Helpers) -> str | None:
    if flow.priority == PRIO_DEFAULT and not flow.match and flow.is_drop:
        return "anything else: dropped"
    if flow.priority == PRIO_MISS and "CONTROLLER" in flow.outputs():
        eni = view.local_port(flow.number("in_port"))
        return (f"any other next hop for {shared['vm'](eni, 'port')} (port {flow.field('in_port')}): "
                f"ask the mapping service (a miss{shared['meter'](flow, meters)})")
    hop = flow.number("reg3")
    if hop is None:
        return None
    ip = _ip(hop)
    eni: Eni | None = view.by_ip(vni, ip)
    mac = flow.set_fields().get("eth_dst")
    stale = "" if eni and eni.mac == (mac or "").lower() else "; STALE: not that VM's MAC now"
    return (f"next hop {ip} ({eni.vm if eni else '?'}): the frame from the router's MAC to {mac} "
            f"-> FORWARD; {shared['origin'](flow, view)}{stale}")


def _ip(value: int) -> str:
    return ".".join(str((value >> s) & 0xFF) for s in (24, 16, 8, 0))
