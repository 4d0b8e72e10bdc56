"""The cache: everything a router may hold for one (VPC, IP) mapping, all under that
mapping's cookie (tables.mapping_cookie), so invalidating it is one flow-mod.

Its ARP answer (arp.py) and forwarding entry (forward.py); in a VPC with subnets, the
VM as a routed packet's next hop (route.py); for a remote VM, trust in
its host as a source (check_flow: its packets pass CHECK without asking the service);
for an ENI whose source/destination check is off, reach and trust by its MAC.
`preload` mode pushes every entry of the router's VPCs at connect; on-demand mode
caches one entry per decision (decide.py, check.py). check_flow lives here rather than
in check.py because the check's decisions cache whole entries: check.py imports this.
"""
from __future__ import annotations

from dataclasses import replace

from vpclab.router.mapping import Mapping, MappingTable
from vpclab.router.pipeline.arp import arp_responder_actions
from vpclab.router.pipeline.forward import forward_actions
from vpclab.router.pipeline.route import nexthop_flow
from vpclab.model.topology import ROUTER_MAC
from vpclab.router.pipeline.tables import (
    ARP, ARP_REQUEST, CHECK, DELIVER, ETH_ARP, ETH_IP, FORWARD, PRIO_APPLIANCE, PRIO_ENTRY, SOURCE_ENI_REG,
    Flow, Router, mapping_cookie,
)


def mapping_flows(router: Router, mapping: Mapping, idle_timeout: int = 0) -> list[Flow]:
    """What a router holds for one (VPC, IP): an ARP answer and a forwarding entry."""
    cookie = mapping_cookie(mapping.vni, mapping.ip)
    return [
        Flow(ARP, PRIO_ENTRY, {"metadata": mapping.vni, "eth_type": ETH_ARP,
                               "arp_op": ARP_REQUEST, "arp_tpa": str(mapping.ip)},
             arp_responder_actions(mapping), cookie=cookie, idle_timeout=idle_timeout),
        Flow(FORWARD, PRIO_ENTRY, {"metadata": mapping.vni, "eth_type": ETH_IP,
                                   "ipv4_dst": str(mapping.ip), "eth_dst": mapping.mac},
             forward_actions(router, mapping), cookie=cookie, idle_timeout=idle_timeout),
    ]


def check_flow(mapping: Mapping, idle_timeout: int = 0, eni_option: bool = False) -> Flow:
    """A verified source: its packets come from the host its mapping names (and, with
    the Geneve option, as its ENI: then an appliance needs no IP, its key says who)."""
    match = {"metadata": mapping.vni, "eth_type": ETH_IP, "tun_ipv4_src": str(mapping.host_ip)}
    if eni_option:
        match[SOURCE_ENI_REG] = mapping.key
    if mapping.source_dest_check or not eni_option:
        match["ipv4_src"] = str(mapping.ip)
    return Flow(CHECK, PRIO_ENTRY, match, goto=DELIVER, cookie=mapping_cookie(mapping.vni, mapping.ip),
                idle_timeout=idle_timeout)


def preload_flows(router: Router, table: MappingTable, idle_timeout: int = 0) -> list[Flow]:
    """`preload` mode: every entry of the router's VPCs, pushed at connect."""
    return [f for m in table.in_vpcs(router.vnis) for f in entry_flows(router, m, idle_timeout)]


def entry_flows(router: Router, mapping: Mapping, idle_timeout: int = 0) -> list[Flow]:
    """Everything a router may hold for one mapping: answer, forward, verify as a source."""
    remote = mapping.host != router.host
    flows = mapping_flows(router, mapping, idle_timeout)
    if router.routed(mapping.vni) is not None:      # a routed packet's next hop (route.py)
        flows.append(replace(nexthop_flow(mapping), idle_timeout=idle_timeout))
    flows += [check_flow(mapping, idle_timeout, router.eni_option)] if remote else []
    if not mapping.source_dest_check:
        flows += appliance_flows(router, mapping, remote, idle_timeout)
    return flows


def appliance_flows(router: Router, mapping: Mapping, remote: bool, idle_timeout: int) -> list[Flow]:
    """An ENI with its check off is reached, and trusted, by its MAC, whatever the IPs."""
    cookie = mapping_cookie(mapping.vni, mapping.ip)
    base = {"metadata": mapping.vni, "eth_type": ETH_IP}
    flows = [Flow(FORWARD, PRIO_APPLIANCE, {**base, "eth_dst": mapping.mac},
                  forward_actions(router, mapping), cookie=cookie, idle_timeout=idle_timeout)]
    if remote and not router.eni_option:      # with the option, check_flow trusts it by ENI
        flows.append(Flow(CHECK, PRIO_APPLIANCE, {**base, "eth_src": mapping.mac,
                                                  "tun_ipv4_src": str(mapping.host_ip)},
                          goto=DELIVER, cookie=cookie, idle_timeout=idle_timeout))
        if router.routed(mapping.vni) is not None:
            # what it forwards through the VPC router arrives with the router's MAC: VXLAN
            # carries no ENI, so its host is all that says who sent it (check.py)
            flows.append(Flow(CHECK, PRIO_APPLIANCE, {**base, "eth_src": ROUTER_MAC,
                                                      "tun_ipv4_src": str(mapping.host_ip)},
                              goto=DELIVER, cookie=cookie, idle_timeout=idle_timeout))
    return flows
