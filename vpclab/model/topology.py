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


LOCAL = "local"               # the implicit route's target: the VPC's own addresses
ROUTER_MAC = "02:76:70:63:00:01"   # the VPC router's MAC ("vpc" in ASCII): every subnet's .1


@dataclass(frozen=True)
class Route:
    """One route of a VPC route table: `destination` (a CIDR) goes to `target`, a VM's
    name (its ENI: an appliance, a NAT instance) or LOCAL (delivered to the VM that owns
    the address, wherever it lives)."""

    destination: IPv4Network
    target: str


@dataclass(frozen=True)
class Subnet:
    """A subnet of a VPC. Its `.1` is the VPC router (answered by every host's virtual
    router, never a node); `route_table` names one of the VPC's tables, None: the main
    table, which holds only the implicit local route."""

    name: str
    cidr: IPv4Network
    route_table: str | None = None

    @property
    def gateway(self) -> IPv4Address:
        return self.cidr.network_address + 1


@dataclass(frozen=True)
class Vpc:
    """A VPC. Without `subnets` it is one flat subnet, its CIDR, with no router (the files
    written before subnets existed); with them, its VMs route through their subnet's `.1`."""

    name: str
    cidr: IPv4Network
    vni: int
    subnets: dict[str, Subnet] = field(default_factory=dict)
    route_tables: dict[str, tuple[Route, ...]] = field(default_factory=dict)

    @property
    def routed(self) -> bool:
        return bool(self.subnets)

    @property
    def resolver(self) -> IPv4Address:
        """The VPC's DNS resolver, its CIDR's base + 2, as in AWS."""
        return self.cidr.network_address + 2

    def subnet_of(self, ip: IPv4Address) -> Subnet | None:
        return next((s for s in self.subnets.values() if ip in s.cidr), None)

    def routes(self, table: str | None) -> tuple[Route, ...]:
        """A route table's routes, the implicit local route first; None: the main table."""
        own = self.route_tables.get(table, ()) if table is not None else ()
        return (Route(self.cidr, LOCAL), *own)


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
    subnet: str | None = None        # its VPC's subnet (None: the VPC has no subnets)
    dhcp: bool = False               # starts with no address and asks the router's DHCP


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
    warnings: tuple[str, ...] = field(default=(), compare=False)   # accepted, but worth saying

    def vms_on(self, host: str) -> list[Vm]:
        return [vm for vm in self.vms.values() if vm.host == host]

    def vm_by_address(self, vpc: str, ip: IPv4Address) -> Vm | None:
        for vm in self.vms.values():
            if vm.vpc == vpc and vm.ip == ip:
                return vm
        return None

    def route_target(self, vpc: str, route: Route) -> Vm | None:
        """The VM (ENI) a route of `vpc` delivers to; None for a local route or a blackhole."""
        vm = self.vms.get(route.target)
        return vm if route.target != LOCAL and vm is not None and vm.vpc == vpc else None

    def blackhole(self, vpc: str, route: Route) -> bool:
        """A route whose target VM was deleted from the running lab: as in AWS it stays in
        its table (shown as blackhole) and drops its traffic, until a VM of that name is
        added back. Validation keeps a topology file from starting with one."""
        return route.target != LOCAL and self.route_target(vpc, route) is None
