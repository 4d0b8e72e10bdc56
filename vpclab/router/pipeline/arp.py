"""ARP (table 10): the router answers a request for a known (VPC, IP) itself.

The actions turn the request into its reply in place and send it back out of the port
it came in. The flow that matches a target is part of that mapping's entry
(entries.mapping_flows); a request that misses asks the mapping service
(router.miss_flows) or, for an unknown target, is dropped (decide.negative_flows).
"""
from __future__ import annotations

from ipaddress import IPv4Address

from vpclab.router.mapping import Mapping
from vpclab.router.pipeline.tables import ARP_REPLY, OFPP_IN_PORT, Action


def arp_responder_actions(mapping: Mapping) -> tuple[Action, ...]:
    """A VM's ARP answer: its ENI's MAC for its address."""
    return arp_answer_actions(mapping.mac, mapping.ip)


def arp_answer_actions(mac: str, ip: IPv4Address) -> tuple[Action, ...]:
    """Turn the request into the reply in place (Neutron's ARP responder recipe): `ip` is
    at `mac` (a VM's ENI, or the VPC router's for a subnet's .1)."""
    return (
        ("move", "eth_src", "eth_dst", 48),
        ("set", "eth_src", mac),
        ("set", "arp_op", ARP_REPLY),
        ("move", "arp_sha", "arp_tha", 48),
        ("move", "arp_spa", "arp_tpa", 32),
        ("set", "arp_sha", mac),
        ("set", "arp_spa", str(ip)),
        ("output", OFPP_IN_PORT),
    )
