"""The fabric plan: every internal name and number the lab derives from a topology.

Pure and deterministic, so the runner that builds the lab, the mapping
service that programs it and the CLI that inspects it all agree without
talking to each other. Kernel interface names are at most 15 characters, so
display names (ZIGI-VM1) never reach the kernel: VMs are `v<n>`, their router
ports `vm<n>`, hosts `h<n>`.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from vpclab.model.topology import MANAGEMENT_CIDR, Host, Topology, Vm

IFNAME_MAX = 15
TUNNEL_PORT = 1          # OpenFlow port of the Geneve/VXLAN port on every br-int
VM_PORT_BASE = 100       # a VM's router port is VM_PORT_BASE + its index
CONTROLLER_IP = MANAGEMENT_CIDR[-2]      # hosts take MANAGEMENT_CIDR[index], from 1
CONTROLLER_PORT = 6653
VM_MTU = 1500            # what a VM sees, as on a plain AWS ENI
UNDERLAY_MTU = 9000      # jumbo underlay, as AWS runs: the encapsulation always fits


def eni_key(ofport: int) -> int:
    """An ENI's lab-wide key (what the Geneve option carries) is its router port's number
    less the base: unique in the lab, and kept for the ENI's life (a move keeps the port)."""
    return ofport - VM_PORT_BASE


def namespace_for(lab: str) -> str:
    """The named network namespace that holds one whole lab."""
    return f"vpclab-{lab}"


@dataclass(frozen=True)
class HostPlan:
    host: Host
    node: str            # Mininet node name (h1)
    dpid: int            # datapath id of its virtual router (br-int)
    mgmt_ip: IPv4Address
    underlay_mac: str    # br-phy's fixed MAC, so peers can pre-load it

    @property
    def name(self) -> str:
        return self.host.name


@dataclass(frozen=True)
class VmPlan:
    vm: Vm
    node: str            # Mininet node name (v1)
    port_name: str       # its veth end on the host, a port of br-int (vm1)
    ofport: int

    @property
    def name(self) -> str:
        return self.vm.name


@dataclass(frozen=True)
class FabricPlan:
    topology: Topology
    hosts: dict[str, HostPlan]
    vms: dict[str, VmPlan]

    @property
    def namespace(self) -> str:
        return namespace_for(self.topology.name)

    def vms_on(self, host: str) -> list[VmPlan]:
        return [self.vms[vm.name] for vm in self.topology.vms_on(host)]


def vm_plan(vm: Vm, ofport: int) -> VmPlan:
    """The one naming rule for a VM, from its router port: node `v<key>`, port `vm<key>`
    (the same for VMs of the file and VMs added to a running lab)."""
    key = eni_key(ofport)
    return VmPlan(vm, f"v{key}", f"vm{key}", ofport)


def plan_fabric(topology: Topology) -> FabricPlan:
    hosts = {h.name: HostPlan(h, f"h{h.index}", h.index, MANAGEMENT_CIDR[h.index],
                              f"0e:00:00:00:{h.index >> 8:02x}:{h.index & 0xff:02x}")
             for h in topology.hosts.values()}
    vms = {vm.name: vm_plan(vm, VM_PORT_BASE + vm.index) for vm in topology.vms.values()}
    assert all(len(p.port_name) <= IFNAME_MAX for p in vms.values())
    return FabricPlan(topology, hosts, vms)
