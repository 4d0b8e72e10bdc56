"""The on-demand decision: what the mapping service does with a packet a router could not
handle (a Miss). From a local VM of that VPC: answer it from the mapping table and cache
the entry on this router only (entries.entry_flows), or remember an unknown target
briefly (negative_flows) so its next packets are dropped on the router. From the
tunnel: the receive-side check (check.py).
"""
from __future__ import annotations

from vpclab.mapping import MappingTable
from vpclab.pipeline.check import decide_check
from vpclab.pipeline.entries import entry_flows
from vpclab.pipeline.tables import (
    ARP, ARP_REQUEST, ETH_ARP, ETH_IP, FORWARD, PRIO_ENTRY, PRIO_NEGATIVE, Decision, Flow, Miss, Router,
    negative_cookie,
)
from vpclab.topology import NEGATIVE_TTL


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
    mapping = table.lookup(miss.vni, miss.target)
    if mapping is None and not miss.is_arp:
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
