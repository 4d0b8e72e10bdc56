"""FORWARD (table 20) and the tunnel: where a unicast packet for a known (VPC, IP, MAC) goes.

To a VM on this host, out of its port; to a remote one, with the VPC's VNI and the peer
host's address, out of the tunnel port. In Geneve mode the tunnel option also carries
the destination ENI's key and the sender's (moved in from the register classification
set). The flows that use these actions are part of a mapping's entry (entries.py).
"""
from __future__ import annotations

from vpclab.router.mapping import Mapping
from vpclab.router.pipeline.tables import ENI_FIELD, SOURCE_ENI_REG, Action, Router
from vpclab.model.plan import TUNNEL_PORT


def forward_actions(router: Router, mapping: Mapping) -> tuple[Action, ...]:
    local = router.port_of(mapping)
    if local is not None:
        return (("output", local),)
    eni = ((("set", ENI_FIELD, mapping.key),                        # destination ENI, low half
            ("move", SOURCE_ENI_REG, ENI_FIELD, 32, 0, 32))          # source ENI, high half
           if router.eni_option else ())
    return (("set", "tunnel_id", mapping.vni),
            ("set", "tun_ipv4_dst", str(mapping.host_ip)),
            *eni,
            ("output", TUNNEL_PORT))
