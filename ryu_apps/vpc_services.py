"""DHCP and the .2 resolver of a VPC with subnets, answered by the mapping service.

The router sends a VM's DHCP client messages (from CLASSIFY) and its queries to the
VPC's .2 (from ROUTE) here (vpclab/router/pipeline/services.py); the answer is built from the
mapping table (ryu_apps.dhcp_answer, ryu_apps.dns_answer) and sent back out of the port
it came in. The DHCP answer is the mapping's own address, so a VM that moves keeps it;
the resolver answers the VPC's own names only. Pure but for the caches: no os-ken here.
"""
from __future__ import annotations

from dataclasses import dataclass

from ryu_apps import dhcp_answer, dns_answer
from ryu_apps.udp_frame import parse_udp
from vpclab.running.identity import vm_hostname
from vpclab.router.pipeline import CLASSIFY, ROUTE, Router
from vpclab.model.plan import VM_MTU
from vpclab.model.topology import ROUTER_MAC, Topology, Vm

LEASE_SECONDS = 86400       # a lab lives for hours at most: no renewal while it runs
DHCP_PORTS, DNS_PORT = (68, 67), 53


@dataclass(frozen=True)
class Answer:
    frame: bytes
    event: str                  # "dhcp" or "dns", for the event log (and the diagram)
    fields: dict


def is_service(table_id: int, frame: bytes) -> bool:
    """A DHCP client message (CLASSIFY) or a DNS query (ROUTE): not a miss to decide."""
    if table_id not in (CLASSIFY, ROUTE):
        return False
    udp = parse_udp(frame)
    return udp is not None and ((table_id == CLASSIFY and (udp.sport, udp.dport) == DHCP_PORTS)
                                or (table_id == ROUTE and udp.dport == DNS_PORT))


class VpcServices:
    def __init__(self):
        self._topology: Topology | None = None      # the inventory the names were built from
        self._names: dict[str, dns_answer.Names] = {}

    @staticmethod
    def ours(topology: Topology, router: Router, in_port: int, table_id: int,
             frame: bytes) -> bool:
        """DHCP from a VM port is always ours; a DNS query only if it is for the VPC's .2
        (one for another server is routed like any packet)."""
        if table_id == CLASSIFY:
            return True
        port = router.port_by_number(in_port)
        vpc = topology.vpcs.get(port.mapping.vpc) if port else None
        udp = parse_udp(frame)
        return vpc is not None and udp is not None and udp.ip_dst == vpc.resolver

    def answer(self, topology: Topology, router: Router, in_port: int, table_id: int,
               frame: bytes) -> Answer | None:
        port = router.port_by_number(in_port)
        vm = topology.vm_by_address(port.mapping.vpc, port.mapping.ip) if port else None
        if vm is None or vm.subnet is None:
            return None
        vpc = topology.vpcs[vm.vpc]
        if table_id == CLASSIFY:
            reply = dhcp_answer.reply(frame, vm.mac, lease_for(topology, vm))
            return Answer(reply, "dhcp", {"vm": vm.name, "ip": str(vm.ip)}) if reply else None
        reply = dns_answer.reply(frame, self.names(topology, vm.vpc), ROUTER_MAC, vpc.resolver)
        return Answer(reply, "dns", {"vm": vm.name}) if reply else None

    def names(self, topology: Topology, vpc: str) -> dns_answer.Names:
        """The VPC's names, built once per inventory (a change makes a new Topology)."""
        if self._topology is not topology:
            self._topology, self._names = topology, {}
        if vpc not in self._names:
            self._names[vpc] = dns_answer.names_for(topology, vpc)
        return self._names[vpc]


def lease_for(topology: Topology, vm: Vm) -> dhcp_answer.Lease:
    """What DHCP gives a VM: its mapping's address in its subnet, the subnet's .1 as its
    router (and the server), the VPC's .2 as its resolver, the ENI's MTU, its EC2-style
    hostname and the VPC's domain (NAME.VPC.internal resolves)."""
    vpc = topology.vpcs[vm.vpc]
    subnet = vpc.subnets[vm.subnet]
    return dhcp_answer.Lease(ip=vm.ip, network=subnet.cidr, router=subnet.gateway,
                             dns=vpc.resolver, mtu=VM_MTU,
                             server_mac=ROUTER_MAC, server_ip=subnet.gateway,
                             lease_seconds=LEASE_SECONDS, hostname=vm_hostname(vm.ip),
                             domain=f"{vpc.name.lower()}.internal")
