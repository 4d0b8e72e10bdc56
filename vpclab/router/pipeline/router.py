"""The flows a router always has, whatever it caches: its ports' classification
and delivery, the tunnel's classification for each VPC it serves, multicast dropped,
the misses that ask the mapping service (on-demand mode, each through its port's
meter) and every table's default drop (CHECK's counted). The Router value itself is
in tables.py.
"""
from __future__ import annotations

from vpclab.router.pipeline.classify import classify_port_flows
from vpclab.router.pipeline.deliver import deliver_flow
from vpclab.router.pipeline.route import router_route_flows
from vpclab.router.pipeline.services import service_flows
from vpclab.router.pipeline.tables import (
    ARP, ARP_REQUEST, CHECK, CLASSIFY, COOKIE_CHECK_FAILED, DELIVER, DESTINATION_ENI_REG, ENI_FIELD, ETH_ARP,
    ETH_IP, FORWARD, MULTICAST, PRIO_APPLIANCE, PRIO_DEFAULT, PRIO_DROP_MCAST, PRIO_ENTRY, PRIO_MISS,
    SOURCE_ENI_REG, Flow, Router,
)
from vpclab.model.plan import TUNNEL_PORT


def router_flows(router: Router) -> list[Flow]:
    """The router's own configuration: its ports, its VPCs, its defaults."""
    flows: list[Flow] = []
    for port in router.ports:
        flows += classify_port_flows(port, router.eni_option)
        flows.append(deliver_flow(port, router.eni_option))
        # an appliance also receives for others (with the Geneve option: by its key already)
        if not port.mapping.source_dest_check and not router.eni_option:
            flows.append(Flow(DELIVER, PRIO_APPLIANCE, {"metadata": port.mapping.vni, "eth_type": ETH_IP,
                                                        "eth_dst": port.mapping.mac},
                              (("output", port.ofport),)))
    read_option = (("move", ENI_FIELD, SOURCE_ENI_REG, 32, 32, 0),
                   ("move", ENI_FIELD, DESTINATION_ENI_REG, 32, 0, 0)) if router.eni_option else ()
    for vni in sorted(router.vnis):
        flows.append(Flow(CLASSIFY, PRIO_ENTRY, {"in_port": TUNNEL_PORT, "tunnel_id": vni},
                          read_option, goto=CHECK, metadata=vni))
    flows.append(Flow(FORWARD, PRIO_DROP_MCAST, {"eth_dst": MULTICAST}))
    if router.on_demand:
        for port in router.ports:
            flows += miss_flows(port.ofport)
        flows.append(Flow(CHECK, PRIO_MISS, {"eth_type": ETH_IP}, (("controller",),),
                          meter=TUNNEL_PORT))
    flows += router_route_flows(router)          # a VPC router, where a VPC has subnets
    flows += service_flows(router)               # ...and its DHCP and .2 resolver
    flows += [Flow(t, PRIO_DEFAULT, {}) for t in (CLASSIFY, ARP, FORWARD, DELIVER)]
    flows.append(Flow(CHECK, PRIO_DEFAULT, {}, cookie=COOKIE_CHECK_FAILED))   # counted drops
    return flows


def miss_flows(ofport: int) -> list[Flow]:
    """Ask the mapping service, through this port's meter: a VM that scans or sprays
    unknown addresses is rate-limited on its own port and cannot crowd out the others."""
    ask = (("controller",),)
    own = {"in_port": ofport}
    return [Flow(ARP, PRIO_MISS, {**own, "eth_type": ETH_ARP, "arp_op": ARP_REQUEST}, ask, meter=ofport),
            Flow(FORWARD, PRIO_MISS, {**own, "eth_type": ETH_IP}, ask, meter=ofport)]
