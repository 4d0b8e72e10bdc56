"""DELIVER (table 30): a packet from the tunnel goes only to a local VM of its VPC.

With the Geneve option, to the destination ENI the option names (classification read
it into a register; OVN delivers by egress port key the same way); with VXLAN, by the
inner destination addresses. An appliance's delivery by its MAC alone is part of
router_flows (router.py).
"""
from __future__ import annotations

from vpclab.router.pipeline.tables import DELIVER, DESTINATION_ENI_REG, ETH_IP, PRIO_ENTRY, Flow, LocalPort


def deliver_flow(port: LocalPort, eni_option: bool = False) -> Flow:
    """To a local VM: by the destination ENI the Geneve option names, or (VXLAN) by
    the inner destination addresses."""
    m = port.mapping
    match = {"metadata": m.vni, "eth_type": ETH_IP}
    match.update({DESTINATION_ENI_REG: m.key} if eni_option else
                 {"ipv4_dst": str(m.ip), "eth_dst": m.mac})
    return Flow(DELIVER, PRIO_ENTRY, match, (("output", port.ofport),))
