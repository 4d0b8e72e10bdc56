"""The pipeline's vocabulary: table numbers, priorities, ethertypes and OpenFlow ports,
the Geneve ENI option and the registers it is read into, the cookie layout and its
builders, and the plain values the other modules build and read (Flow, LocalPort,
Router; Miss and Decision, what the mapping service is asked and what it answers).

One place for the numbers, so a table added later takes its number and priorities
beside the others. Nothing here builds a flow or decides anything. Miss and Decision
sit here, not in decide.py, because the receive check (check.py) returns Decisions
too and decide.py hands it the tunnel's misses: below both, they keep imports one-way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from vpclab.router.mapping import Mapping

CLASSIFY, ARP, ROUTE, NEXTHOP, FORWARD, CHECK, DELIVER = 0, 10, 15, 17, 20, 25, 30

PRIO_DROP_MCAST = 200
PRIO_ROUTE = 100       # + the destination's prefix length: longest prefix first
PRIO_ENTRY = 100
PRIO_APPLIANCE = 90    # by MAC only, for an ENI whose source/destination check is off
PRIO_NEGATIVE = 50     # below entries: an IP entry for the same address (another MAC) wins
PRIO_MISS = 10
PRIO_DEFAULT = 0

ETH_IP, ETH_ARP = 0x0800, 0x0806
ARP_REQUEST, ARP_REPLY = 1, 2
OFPP_IN_PORT = 0xFFFFFFF8
OFPP_TABLE = 0xFFFFFFF9
OFPP_CONTROLLER = 0xFFFFFFFD
MULTICAST = ("01:00:00:00:00:00", "01:00:00:00:00:00")

ENI_OPTION_CLASS, ENI_OPTION_TYPE, ENI_OPTION_LEN = 0xFFFF, 0x80, 8
ENI_FIELD = "tun_metadata0"       # where OVS maps the option (a TLV map the service sends)
SOURCE_ENI_REG = "reg0"           # the sending ENI's key: set by classification, both ways
DESTINATION_ENI_REG = "reg1"      # the receiving ENI's key, read from the option
NO_ENI = 0                        # what a register holds when the option was missing
ROUTE_TABLE_REG = "reg2"          # the sender's subnet's route table (set by classification)
NEXT_HOP_REG = "reg3"             # the routed packet's next hop (an IPv4 address of the VPC)

COOKIE_ROUTER = 0x0            # the router's own ports and defaults
COOKIE_MAPPING = 0x01 << 56    # | VNI << 32 | IPv4: one cookie per cached mapping
COOKIE_NEGATIVE = 0x02 << 56   # | VNI << 32 | IPv4: an unknown target, remembered briefly
COOKIE_CHECK_FAILED = 0x03 << 56  # receive-side check failures: their drops are counted
COOKIE_ROUTE = 0x04 << 56     # | VNI << 32 | route table id: one route table's cached routes
COOKIE_KIND_MASK = 0xFF << 56

# Actions are tuples, read by ofmsg.py and by the test table simulator:
#   ("output", port) ("set", field, value) ("controller",)
#   ("move", src, dst, bits) or ("move", src, dst, bits, src_offset, dst_offset)
Action = tuple


@dataclass(frozen=True)
class Flow:
    table: int
    priority: int
    match: dict[str, Any]
    actions: tuple[Action, ...] = ()
    goto: int | None = None
    metadata: int | None = None    # write_metadata before goto
    cookie: int = COOKIE_ROUTER
    idle_timeout: int = 0
    hard_timeout: int = 0
    meter: int | None = None       # OpenFlow meter applied first (rate limit)


def mapping_cookie(vni: int, ip: IPv4Address) -> int:
    """One cookie per (VPC, IP): invalidating an entry is one flow-mod by cookie."""
    return COOKIE_MAPPING | (vni << 32) | int(ip)


def negative_cookie(vni: int, ip: IPv4Address) -> int:
    return COOKIE_NEGATIVE | (vni << 32) | int(ip)


def check_failed_cookie(vni: int, ip: IPv4Address) -> int:
    """A receive-check drop of packets claiming to come from (VPC, IP)."""
    return COOKIE_CHECK_FAILED | (vni << 32) | int(ip)


def route_cookie(vni: int, table_id: int) -> int:
    """One cookie per (VPC, route table): a route change invalidates that table's cache."""
    return COOKIE_ROUTE | (vni << 32) | table_id


@dataclass(frozen=True)
class LocalPort:
    ofport: int
    mapping: Mapping
    route_table: int = 0          # its subnet's route table id; 0: its VPC has no router


@dataclass(frozen=True)
class RouteEntry:
    """One route as a router applies it: `target` is the ENI's mapping, or None for the
    local route (`local`) and for a blackhole (a target VM that no longer exists)."""

    destination: IPv4Network
    target_name: str
    target: Mapping | None = None
    local: bool = False

    @property
    def blackhole(self) -> bool:
        return not self.local and self.target is None


@dataclass(frozen=True)
class RouteTable:
    id: int                       # what ROUTE_TABLE_REG holds for its subnets' VMs (1: main)
    name: str
    routes: tuple[RouteEntry, ...]

    def lookup(self, ip: IPv4Address) -> RouteEntry | None:
        """Longest prefix first, as the VPC router does."""
        hits = [r for r in self.routes if ip in r.destination]
        return max(hits, key=lambda r: r.destination.prefixlen, default=None)


@dataclass(frozen=True)
class RoutedVpc:
    """A VPC with subnets, as its routers see it: every subnet's gateway and every table."""

    vni: int
    gateways: tuple[IPv4Address, ...]
    tables: tuple[RouteTable, ...]
    resolver: IPv4Address | None = None     # the VPC's .2 (its DNS), answered on the host

    def table(self, table_id: int) -> RouteTable | None:
        return next((t for t in self.tables if t.id == table_id), None)


@dataclass(frozen=True)
class Router:
    """What one virtual router is: its host, datapath id and local VM ports."""

    host: str
    dpid: int
    on_demand: bool
    idle_timeout: int
    ports: tuple[LocalPort, ...] = field(default_factory=tuple)
    miss_rate: int = 100
    eni_option: bool = False     # Geneve: ENI keys travel in a tunnel option
    routing: tuple[RoutedVpc, ...] = ()   # its VPCs that have subnets (a VPC router)

    @property
    def vnis(self) -> set[int]:
        return {p.mapping.vni for p in self.ports}

    def routed(self, vni: int) -> RoutedVpc | None:
        return next((v for v in self.routing if v.vni == vni), None)

    @property
    def metered(self) -> bool:
        """Its ports have meters: they may ask the mapping service (on-demand misses; in
        a VPC with subnets, DHCP and DNS in either mode), each at most miss_rate a second."""
        return self.on_demand or bool(self.routing)

    def port_of(self, mapping: Mapping) -> int | None:
        return self._by_mapping.get(mapping)

    def port_by_number(self, ofport: int) -> LocalPort | None:
        return self._by_number.get(ofport)

    # indexes, built once per Router (the service asks on every miss; a router has many ports)
    @cached_property
    def _by_mapping(self) -> dict[Mapping, int]:
        return {p.mapping: p.ofport for p in reversed(self.ports)}      # the first one wins

    @cached_property
    def _by_number(self) -> dict[int, LocalPort]:
        return {p.ofport: p for p in reversed(self.ports)}


@dataclass(frozen=True)
class Miss:
    """A packet a router could not handle, as the mapping service sees it."""

    in_port: int
    vni: int
    target: IPv4Address   # ARP target or IPv4 destination
    is_arp: bool
    eth_dst: str = ""     # an IP packet's destination MAC
    tun_src: IPv4Address | None = None       # set for a receive-side check: the outer source
    destination: IPv4Address | None = None   # ...and the inner destination
    eth_src: str = ""
    source_key: int | None = None            # Geneve: the ENIs the option names
    destination_key: int | None = None
    table: int | None = None                 # where it missed (ROUTE, NEXTHOP; None: elsewhere)
    route_table: int = 0                     # ROUTE: the sender's subnet's route table


@dataclass(frozen=True)
class Decision:
    flows: list[Flow]
    resubmit: bool               # packet-out the packet back into the pipeline
    mapping: Mapping | None
    reason: str
    output: int | None = None    # or send it straight out of this port
    refused: bool = False        # a receive check said no: dropped, counted, reported
