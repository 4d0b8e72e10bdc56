"""The VPC's own services, answered on the host (VPCs with subnets): DHCP and the .2 resolver.

In AWS an instance's DHCP exchange and its DNS queries to the VPC's .2 never reach any
other machine: the host answers. Here each VM port's DHCP client messages (UDP 68 -> 67,
from 0.0.0.0 or from its own address when renewing) and its queries to the VPC's .2
(UDP 53, addressed to the router's MAC; the router also answers ARP for .2) go to the
mapping service through the port's meter, which answers with a packet-out to that port.
Nothing of it is flooded, nothing crosses the underlay, in either mapping mode. The
answers themselves are built in ryu_apps (dhcp_answer, dns_answer).
"""
from __future__ import annotations

from ipaddress import IPv4Address

from vpclab.router.pipeline.arp import arp_answer_actions
from vpclab.router.pipeline.tables import (
    ARP, ARP_REQUEST, CLASSIFY, ETH_ARP, ETH_IP, PRIO_ENTRY, PRIO_ROUTE, ROUTE, Flow, LocalPort, Router,
)
from vpclab.model.topology import ROUTER_MAC

UDP = 17
DHCP_SERVER, DHCP_CLIENT, DNS = 67, 68, 53
PRIO_DHCP = PRIO_ENTRY + 10      # above the port's IP classification (a renewing client's source is its own)
PRIO_DNS = PRIO_ROUTE + 33       # above every route


def service_flows(router: Router) -> list[Flow]:
    """Per routed VM port, its DHCP and its DNS to .2 go to the mapping service, through
    the port's meter; .2 is answered by ARP with the router's MAC."""
    flows = []
    for vpc in router.routing:
        flows.append(Flow(ARP, PRIO_ENTRY, {"metadata": vpc.vni, "eth_type": ETH_ARP,
                                            "arp_op": ARP_REQUEST, "arp_tpa": str(vpc.resolver)},
                          arp_answer_actions(ROUTER_MAC, vpc.resolver)))
    for port in router.ports:
        vpc = router.routed(port.mapping.vni)
        if port.route_table and vpc is not None:
            flows += port_service_flows(port, vpc.resolver)
    return flows


def port_service_flows(port: LocalPort, dns: IPv4Address) -> list[Flow]:
    """Through the port's meter (Router.metered): a VM flooding its DHCP or its resolver
    cannot crowd out the others, in either mode."""
    m = port.mapping
    ask, meter = (("controller",),), port.ofport
    dhcp = Flow(CLASSIFY, PRIO_DHCP, {"in_port": port.ofport, "eth_src": m.mac, "eth_type": ETH_IP,
                                      "ip_proto": UDP, "udp_src": DHCP_CLIENT,
                                      "udp_dst": DHCP_SERVER}, ask, meter=meter)
    query = Flow(ROUTE, PRIO_DNS, {"in_port": port.ofport, "metadata": m.vni, "eth_type": ETH_IP,
                                   "eth_dst": ROUTER_MAC, "ipv4_dst": str(dns), "ip_proto": UDP,
                                   "udp_dst": DNS}, ask, meter=meter)
    return [dhcp, query]
