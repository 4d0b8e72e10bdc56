"""The VPC router (tables 15 ROUTE and 17 NEXTHOP), for a VPC that has subnets.

AWS's VPC router is no box anywhere: every subnet's `.1` is answered by the host's
virtual router. So here: the router answers ARP for every gateway of the VPCs it
serves (with ROUTER_MAC, never flooded), and a packet a VM addressed to ROUTER_MAC is
routed by its subnet's route table (classification put the table's id in
ROUTE_TABLE_REG), longest prefix first (priority PRIO_ROUTE + prefix length):

  local       the destination address itself is the next hop (NEXT_HOP_REG = ipv4_dst);
  an ENI      that VM is the next hop (an appliance: a firewall, a NAT instance);
  blackhole   the target VM no longer exists: dropped.

NEXTHOP then rewrites the frame as a router does (source MAC: the router's; destination
MAC: the next hop's) and hands it to FORWARD, which delivers it to that ENI locally or
through the tunnel. The TTL is left alone: as in AWS, the VPC router does not show in a
traceroute; an appliance on the path, a real host, does. The NEXTHOP flow of a VM is
part of its mapping's entry (entries.py), so it is cached and invalidated with it.

Same-subnet traffic is addressed to a VM's own MAC and goes straight to FORWARD.
In on-demand mode a route miss asks the mapping service (decide.decide_route), which
caches one route table's answer on that router under the table's cookie; in preload
mode every route is installed at connect.
"""
from __future__ import annotations

from vpclab.router.mapping import Mapping
from vpclab.router.pipeline.arp import arp_answer_actions
from vpclab.router.pipeline.tables import (
    ARP, ARP_REQUEST, ETH_ARP, ETH_IP, FORWARD, NEXTHOP, NEXT_HOP_REG, PRIO_DEFAULT, PRIO_ENTRY,
    PRIO_MISS, PRIO_ROUTE, ROUTE, ROUTE_TABLE_REG, Action, Flow, RouteEntry, RouteTable, Router,
    mapping_cookie, route_cookie,
)
from vpclab.model.topology import ROUTER_MAC


def gateway_flows(router: Router) -> list[Flow]:
    """Every subnet's `.1`, answered by this router with the router's MAC."""
    flows = []
    for vpc in router.routing:
        for gateway in vpc.gateways:
            answer = arp_answer_actions(ROUTER_MAC, gateway)
            flows.append(Flow(ARP, PRIO_ENTRY, {"metadata": vpc.vni, "eth_type": ETH_ARP,
                                                "arp_op": ARP_REQUEST, "arp_tpa": str(gateway)},
                              answer))
    return flows


def destination_match(route: RouteEntry) -> dict:
    """The route's destination as OVS reports it back: a /32 unmasked, a /0 not at all."""
    net = route.destination
    if net.prefixlen == 32:
        return {"ipv4_dst": str(net.network_address)}
    if net.prefixlen == 0:
        return {}
    return {"ipv4_dst": (str(net.network_address), str(net.netmask))}


def route_actions(route: RouteEntry) -> tuple[tuple[Action, ...], int | None]:
    """(actions, goto) of one route: pick the next hop, or drop (a blackhole)."""
    if route.local:
        return (("move", "ipv4_dst", NEXT_HOP_REG, 32),), NEXTHOP
    if route.target is None:
        return (), None
    return (("set", NEXT_HOP_REG, int(route.target.ip)),), NEXTHOP


def route_flow(vni: int, table: RouteTable, route: RouteEntry, idle_timeout: int = 0) -> Flow:
    match = {"metadata": vni, ROUTE_TABLE_REG: table.id, "eth_type": ETH_IP, "eth_dst": ROUTER_MAC,
             **destination_match(route)}
    actions, goto = route_actions(route)
    return Flow(ROUTE, PRIO_ROUTE + route.destination.prefixlen, match, actions, goto=goto,
                cookie=route_cookie(vni, table.id), idle_timeout=idle_timeout)


def table_flows(vni: int, table: RouteTable, idle_timeout: int = 0) -> list[Flow]:
    """Every route of one table (preload, and what a cached answer is checked against)."""
    return [route_flow(vni, table, route, idle_timeout) for route in table.routes]


def answer_flows(vni: int, table: RouteTable, route: RouteEntry, idle_timeout: int) -> list[Flow]:
    """What a router caches when it asks about one destination: the route that matched and
    every more specific route inside it, so its own longest-prefix match stays right."""
    inside = [r for r in table.routes if r is route or (
        r.destination.prefixlen > route.destination.prefixlen
        and r.destination.subnet_of(route.destination))]
    return [route_flow(vni, table, r, idle_timeout) for r in inside]


def nexthop_flow(mapping: Mapping) -> Flow:
    """A VM as a routed packet's next hop: the frame rewritten as a router does."""
    return Flow(NEXTHOP, PRIO_ENTRY, {"metadata": mapping.vni, NEXT_HOP_REG: int(mapping.ip)},
                (("set", "eth_src", ROUTER_MAC), ("set", "eth_dst", mapping.mac)), goto=FORWARD,
                cookie=mapping_cookie(mapping.vni, mapping.ip))


def router_route_flows(router: Router) -> list[Flow]:
    """What a router with a VPC router always has: gateways, table defaults, misses."""
    if not router.routing:
        return []
    flows = gateway_flows(router)
    flows.append(Flow(ROUTE, PRIO_DEFAULT, {}, goto=FORWARD))          # not for the router
    routed_ports = [p for p in router.ports if p.route_table]
    if router.on_demand:
        for port in routed_ports:
            ask = {"in_port": port.ofport, "eth_type": ETH_IP}
            flows += [Flow(ROUTE, PRIO_MISS, {**ask, "eth_dst": ROUTER_MAC}, (("controller",),),
                           meter=port.ofport),
                      Flow(NEXTHOP, PRIO_MISS, ask, (("controller",),), meter=port.ofport)]
    else:
        flows.append(Flow(ROUTE, PRIO_MISS, {"eth_dst": ROUTER_MAC}))   # no route: dropped
        for vpc in router.routing:
            for table in vpc.tables:
                flows += table_flows(vpc.vni, table)
    flows.append(Flow(NEXTHOP, PRIO_DEFAULT, {}))
    return flows
