"""CLASSIFY (table 0): the VPC a VM's packet belongs to, and only if the VM speaks as its
own ENI (anti-spoofing): its MAC, its IP, its ARP sender fields.

A VM port's flows write the VNI to metadata and, in Geneve mode, put the sender's ENI
key in a register for the forwarding entry to carry; in a VPC with subnets, the id of
its subnet's route table in another, and its IP packets go to ROUTE first (route.py). The tunnel port's classification
(tun_id -> VPC, the option moved into the registers) is one flow per VPC the router
serves, part of router_flows (router.py).
"""
from __future__ import annotations

from vpclab.router.pipeline.tables import (
    ARP, CLASSIFY, ETH_ARP, ETH_IP, FORWARD, PRIO_ENTRY, ROUTE, ROUTE_TABLE_REG, SOURCE_ENI_REG, Flow,
    LocalPort,
)


def classify_port_flows(port: LocalPort, eni_option: bool = False) -> list[Flow]:
    """A VM may only speak as its own ENI: its MAC, its IP, its ARP sender fields.
    With its source/destination check off (a NAT), any source IP, still only its MAC."""
    m = port.mapping
    own = {"in_port": port.ofport, "eth_src": m.mac}
    source = {"ipv4_src": str(m.ip)} if m.source_dest_check else {}
    remember = (("set", SOURCE_ENI_REG, m.key),) if eni_option else ()
    if port.route_table:        # its VPC has a router: its subnet's route table decides
        remember += (("set", ROUTE_TABLE_REG, port.route_table),)
    return [
        Flow(CLASSIFY, PRIO_ENTRY, {**own, "eth_type": ETH_IP, **source}, remember,
             goto=ROUTE if port.route_table else FORWARD, metadata=m.vni),
        Flow(CLASSIFY, PRIO_ENTRY, {**own, "eth_type": ETH_ARP, "arp_spa": str(m.ip),
                                    "arp_sha": m.mac}, goto=ARP, metadata=m.vni),
    ]
