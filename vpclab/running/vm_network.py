"""How a VM's eth0 is set up in its own namespace, from its VPC (pure: commands out).

A flat VPC (no subnets) is one subnet, its CIDR, with no router: the VM gets its address
with the VPC's prefix and no default route (as before subnets existed). In a VPC with
subnets the VM gets its subnet's prefix and its default route via the subnet's .1, the
VPC router, answered on the host. An appliance there (source/destination check off)
forwards for others: IP forwarding on, and no ICMP redirects (its traffic comes in and
goes out of the same NIC, and a Linux router would tell the sender to go direct, which
in a VPC bypasses the route table that sent it to the appliance). A DHCP VM gets no
address here: its DHCP client asks the router (vpclab/running/dhcp_client.py).
"""
from __future__ import annotations

from vpclab.model.topology import Topology, Vm


def address_commands(topology: Topology, vm: Vm) -> list[str]:
    """`ip` commands (without the leading `ip`) that give eth0 its address and routes."""
    vpc = topology.vpcs[vm.vpc]
    if vm.dhcp:
        return []
    if not vpc.routed or vm.subnet is None:
        return [f"addr add {vm.ip}/{vpc.cidr.prefixlen} dev eth0"]
    subnet = vpc.subnets[vm.subnet]
    return [f"addr add {vm.ip}/{subnet.cidr.prefixlen} dev eth0"]


def route_commands(topology: Topology, vm: Vm) -> list[str]:
    """What follows `link set eth0 up`: the default route via the subnet's .1."""
    vpc = topology.vpcs[vm.vpc]
    if vm.dhcp or not vpc.routed or vm.subnet is None:
        return []
    return [f"route add default via {vpc.subnets[vm.subnet].gateway} dev eth0"]


def forwarding_sysctls(topology: Topology, vm: Vm) -> dict[str, str]:
    """/proc/sys paths for an appliance in a routed VPC; nothing for any other VM."""
    if vm.source_dest_check or not topology.vpcs[vm.vpc].routed:
        return {}
    return {"net/ipv4/ip_forward": "1", "net/ipv4/conf/all/send_redirects": "0",
            "net/ipv4/conf/default/send_redirects": "0", "net/ipv4/conf/eth0/send_redirects": "0"}
