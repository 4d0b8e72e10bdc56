"""The on-demand decision: what the mapping service does with a packet a router could not
handle (a Miss). From a local VM of that VPC: answer it from the mapping table and cache
the entry on this router only (entries.entry_flows), or remember an unknown target
briefly (negative_flows) so its next packets are dropped on the router. For the VPC
router (route.py): the sender's route table (decide_route) or a next hop's entry. From
the tunnel: the receive-side check (check.py).
"""
from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, ip_network

from vpclab.router.mapping import MappingTable
from vpclab.router.pipeline.check import decide_check
from vpclab.router.pipeline.entries import entry_flows
from vpclab.router.pipeline.route import answer_flows, route_flow
from vpclab.router.pipeline.tables import (
    ARP, ARP_REQUEST, ETH_ARP, ETH_IP, FORWARD, NEXT_HOP_REG, NEXTHOP, PRIO_ENTRY, PRIO_NEGATIVE, ROUTE,
    Decision, Flow, Miss, RouteEntry, Router, negative_cookie,
)
from vpclab.model.topology import NEGATIVE_TTL


def negative_flows(miss: Miss, ttl: int) -> list[Flow]:
    """Remember an unknown target briefly: its next packets are dropped on the router."""
    cookie = negative_cookie(miss.vni, miss.target)
    if miss.is_arp:
        match = {"metadata": miss.vni, "eth_type": ETH_ARP, "arp_op": ARP_REQUEST,
                 "arp_tpa": str(miss.target)}
        return [Flow(ARP, PRIO_ENTRY, match, cookie=cookie, hard_timeout=ttl)]
    match = {"metadata": miss.vni, "eth_type": ETH_IP, "ipv4_dst": str(miss.target)}
    return [Flow(FORWARD, PRIO_NEGATIVE, match, cookie=cookie, hard_timeout=ttl)]


def decide_miss(router: Router, miss: Miss, table: MappingTable) -> Decision:
    """Answer a miss from the mapping table and cache the entry on this router only
    (its ARP answer, forwarding and, for a remote VM, trust in its host as a source).

    The router then re-runs the packet through its tables, so the reply an
    ARP request gets is exactly the one the cached flow will give next time.
    """
    if miss.tun_src is not None:
        return decide_check(router, miss, table)
    port = router.port_by_number(miss.in_port)
    if port is None or port.mapping.vni != miss.vni:
        return Decision([], False, None, "not from a local VM of that VPC")
    if miss.table == ROUTE:
        return decide_route(router, miss, table, port.route_table)
    mapping = table.lookup(miss.vni, miss.target)
    if miss.table == NEXTHOP:       # a cached route's next hop this router does not hold yet
        if mapping is None:
            return Decision(unknown_hop_flows(miss.vni, miss.target), False, None,
                            f"next hop {miss.target}: no mapping in VNI {miss.vni}")
        return Decision(entry_flows(router, mapping, router.idle_timeout), True, mapping,
                        "next hop cached")
    if not miss.is_arp and (mapping is None or mapping.mac != miss.eth_dst):
        appliance = table.appliance(miss.vni, miss.eth_dst)     # e.g. routed via a NAT VM
        if appliance is not None:
            return Decision(entry_flows(router, appliance, router.idle_timeout), True, appliance,
                            f"to appliance {appliance.ip} (source/destination check off)")
    if mapping is None:
        return Decision(negative_flows(miss, NEGATIVE_TTL), False, None,
                        f"no mapping for {miss.target} in VNI {miss.vni}")
    flows = entry_flows(router, mapping, router.idle_timeout)
    if not miss.is_arp and miss.eth_dst != mapping.mac:
        # addressed to another ENI's MAC: the entry cannot match it, and resubmitting
        # would bounce it between router and service forever. Cache, then drop it.
        return Decision(flows, False, mapping, f"{miss.eth_dst} is not {miss.target}'s MAC")
    return Decision(flows, True, mapping, "cached")


def decide_route(router: Router, miss: Miss, table: MappingTable, table_id: int) -> Decision:
    """A packet for the VPC router (its subnet's .1 MAC) that no cached route matched: the
    route table of the sender's subnet answers, longest prefix first. The router caches
    that route (and the more specific ones inside it, route.answer_flows) under the
    table's cookie, and the next hop's entry with it, then runs the packet again."""
    vpc = router.routed(miss.vni)
    routes = vpc.table(table_id) if vpc is not None else None
    if routes is None:
        return Decision([], False, None, f"no route table {table_id} in VNI {miss.vni}")
    route = routes.lookup(miss.target)
    if route is None:       # remembered briefly, as an unknown address is (a route change
        unrouted = RouteEntry(ip_network(miss.target), "none")        # forgets it: sync.py)
        drop = replace(route_flow(miss.vni, routes, unrouted), actions=(), goto=None,
                       cookie=negative_cookie(miss.vni, miss.target), hard_timeout=NEGATIVE_TTL)
        return Decision([drop], False, None, f"no route to {miss.target} in table {routes.name}")
    # no idle timeout: a table's answers go together (invalidated, or evicted past the
    # bound, by its one cookie); one more specific route expiring alone would let the
    # covering one take its traffic, past the appliance it names
    flows = answer_flows(miss.vni, routes, route, 0)
    if route.blackhole:
        return Decision(flows, False, None, f"{route.destination} -> {route.target_name}: "
                                            "blackhole (the target no longer exists)")
    hop = table.lookup(miss.vni, miss.target) if route.local else route.target
    if hop is None:
        return Decision(flows + unknown_hop_flows(miss.vni, miss.target), False, None,
                        f"no mapping for {miss.target} in VNI {miss.vni}")
    via = "local" if route.local else f"{route.target_name} ({hop.ip})"
    return Decision(flows + entry_flows(router, hop, router.idle_timeout), True, hop,
                    f"routed: {route.destination} -> {via}")


def unknown_hop_flows(vni: int, ip: IPv4Address) -> list[Flow]:
    """A next hop no VM is, remembered briefly as an unknown address is (its next packets
    are dropped on the router; an address that appears is forgotten at once: sync.py)."""
    return [Flow(NEXTHOP, PRIO_NEGATIVE, {"metadata": vni, NEXT_HOP_REG: int(ip)},
                 cookie=negative_cookie(vni, ip), hard_timeout=NEGATIVE_TTL)]
