"""The lab's topology model: physical hosts, VPCs and VMs (one ENI each).

These are plain frozen dataclasses built only by `validation.load_topology`,
so every Topology in the program has already passed every check: code further
down (plan, mapping service, fabric) never re-validates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

ENCAPS = ("geneve", "vxlan")
MAPPING_MODES = ("on-demand", "preload")
DEFAULT_IDLE_TIMEOUT = 300
DEFAULT_MAX_ENTRIES = 1024    # cached mappings per virtual router (on-demand)
DEFAULT_MISS_RATE = 100       # packet-ins per second a VM port may cause (meter)
NEGATIVE_TTL = 10             # seconds an unknown target is remembered (drop entry)
DEFAULT_UNDERLAY_CIDR = IPv4Network("192.168.100.0/24")   # the hosts' physical network
# The mapping service's control network. It lives only in the lab's and the hosts'
# namespaces, never in a VM's, so it cannot clash with any VPC; link-local keeps it out
# of every underlay anyone would choose.
MANAGEMENT_CIDR = IPv4Network("169.254.0.0/16")
FIRST_VNI = 1001
DEFAULT_TTL = 64              # a VM's IPv4 default TTL (Linux's); the seed's instance answers 255


@dataclass(frozen=True)
class Host:
    """A physical host (hypervisor) with its own virtual router."""

    name: str
    index: int  # 1-based, in file order; drives internal names and numbers
    underlay_ip: IPv4Address


@dataclass(frozen=True)
class Vpc:
    name: str
    cidr: IPv4Network
    vni: int


@dataclass(frozen=True)
class Vm:
    """A VM with its single ENI: what the mapping service knows about it."""

    name: str
    index: int  # 1-based, in file order
    vpc: str
    host: str
    ip: IPv4Address
    mac: str
    eni: str
    source_dest_check: bool = True   # off: a NAT/appliance VM may send and receive for others
    ttl: int = DEFAULT_TTL           # the IPv4 TTL its packets start with


@dataclass(frozen=True)
class Topology:
    name: str
    description: str
    encap: str
    mapping_mode: str
    idle_timeout: int
    max_entries: int
    miss_rate: int
    hosts: dict[str, Host] = field(default_factory=dict)
    vpcs: dict[str, Vpc] = field(default_factory=dict)
    vms: dict[str, Vm] = field(default_factory=dict)
    underlay: IPv4Network = DEFAULT_UNDERLAY_CIDR
    default_ttl: int = DEFAULT_TTL   # `defaults: {ttl: N}`: for VMs without their own, and live adds

    def vms_on(self, host: str) -> list[Vm]:
        return [vm for vm in self.vms.values() if vm.host == host]

    def vm_by_address(self, vpc: str, ip: IPv4Address) -> Vm | None:
        for vm in self.vms.values():
            if vm.vpc == vpc and vm.ip == ip:
                return vm
        return None
