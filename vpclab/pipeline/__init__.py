"""The virtual router's OpenFlow 1.3 pipeline, as plain data and pure decisions.

Nothing here talks to a switch or imports os-ken: functions return `Flow`
values that `ryu_apps/ofmsg.py` turns into OpenFlow messages, so every rule
of the pipeline is unit-testable (FAUCET's `valve_of` habit).

Tables (one br-int per physical host):

  0 CLASSIFY  VM port + its own MAC/IP (ARP sender too) -> VPC (metadata=VNI);
              tunnel port + tun_id -> VPC. Anything else: dropped (anti-spoofing).
  25 CHECK    from the tunnel: the outer source must be the host the mapping names
              for the inner source (AWS's receive-side check), and in Geneve mode the
              source ENI the option names must be that source; else dropped, counted.
  10 ARP      request for a known (VPC, IP): the router answers itself, out of
              the port it came in. Miss: ask the mapping service (on-demand) or drop.
  20 FORWARD  unicast by (VPC, dst IP, dst MAC): local port, or set VNI + peer
              host IP and out the tunnel. Miss: ask the mapping service or drop.
              Broadcast/multicast: dropped. Nothing ever floods.
  30 DELIVER  from the tunnel: only to a local VM of that VPC; in Geneve mode, to the
              destination ENI the option names (as OVN delivers by egress port key).

ENI identity in Geneve (the seed: the encapsulation carries the VPC *and* the ENI):
a Geneve option, class 0xffff (experimental), type 0x80 (critical: a receiver that
cannot read it must drop the packet), 8 bytes = source ENI key, destination ENI
key, 32 bits each. Classification puts the sender's key in reg0; the forwarding
entry writes the destination key and moves reg0 in beside it. The receiving
router's classification moves the option back into reg0 (source) and reg1
(destination), and CHECK and DELIVER match those registers, never the option
itself: OVS 3.1 crashes (a segfault in its RCU thread) when it reports the
removal of a flow that matches tun_metadata. VXLAN has no room for options, so
there the VNI plus the inner addresses are all a receiver has.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from vpclab.mapping import Mapping, MappingTable
from vpclab.plan import TUNNEL_PORT
from vpclab.topology import NEGATIVE_TTL

CLASSIFY, ARP, FORWARD, CHECK, DELIVER = 0, 10, 20, 25, 30

PRIO_DROP_MCAST = 200
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

COOKIE_ROUTER = 0x0            # the router's own ports and defaults
COOKIE_MAPPING = 0x01 << 56    # | VNI << 32 | IPv4: one cookie per cached mapping
COOKIE_NEGATIVE = 0x02 << 56   # | VNI << 32 | IPv4: an unknown target, remembered briefly
COOKIE_CHECK_FAILED = 0x03 << 56  # receive-side check failures: their drops are counted
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


@dataclass(frozen=True)
class LocalPort:
    ofport: int
    mapping: Mapping


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

    @property
    def vnis(self) -> set[int]:
        return {p.mapping.vni for p in self.ports}

    def port_of(self, mapping: Mapping) -> int | None:
        return next((p.ofport for p in self.ports if p.mapping == mapping), None)

    def port_by_number(self, ofport: int) -> LocalPort | None:
        return next((p for p in self.ports if p.ofport == ofport), None)


# -- flows a router always has -------------------------------------------------
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
    flows += [Flow(t, PRIO_DEFAULT, {}) for t in (CLASSIFY, ARP, FORWARD, DELIVER)]
    flows.append(Flow(CHECK, PRIO_DEFAULT, {}, cookie=COOKIE_CHECK_FAILED))   # counted drops
    return flows


def check_flow(mapping: Mapping, idle_timeout: int = 0, eni_option: bool = False) -> Flow:
    """A verified source: its packets come from the host its mapping names (and, with
    the Geneve option, as its ENI: then an appliance needs no IP, its key says who)."""
    match = {"metadata": mapping.vni, "eth_type": ETH_IP, "tun_ipv4_src": str(mapping.host_ip)}
    if eni_option:
        match[SOURCE_ENI_REG] = mapping.key
    if mapping.source_dest_check or not eni_option:
        match["ipv4_src"] = str(mapping.ip)
    return Flow(CHECK, PRIO_ENTRY, match, goto=DELIVER, cookie=mapping_cookie(mapping.vni, mapping.ip),
                idle_timeout=idle_timeout)


def classify_port_flows(port: LocalPort, eni_option: bool = False) -> list[Flow]:
    """A VM may only speak as its own ENI: its MAC, its IP, its ARP sender fields.
    With its source/destination check off (a NAT), any source IP, still only its MAC."""
    m = port.mapping
    own = {"in_port": port.ofport, "eth_src": m.mac}
    source = {"ipv4_src": str(m.ip)} if m.source_dest_check else {}
    remember = (("set", SOURCE_ENI_REG, m.key),) if eni_option else ()
    return [
        Flow(CLASSIFY, PRIO_ENTRY, {**own, "eth_type": ETH_IP, **source}, remember,
             goto=FORWARD, metadata=m.vni),
        Flow(CLASSIFY, PRIO_ENTRY, {**own, "eth_type": ETH_ARP, "arp_spa": str(m.ip),
                                    "arp_sha": m.mac}, goto=ARP, metadata=m.vni),
    ]


def miss_flows(ofport: int) -> list[Flow]:
    """Ask the mapping service, through this port's meter: a VM that scans or sprays
    unknown addresses is rate-limited on its own port and cannot crowd out the others."""
    ask = (("controller",),)
    own = {"in_port": ofport}
    return [Flow(ARP, PRIO_MISS, {**own, "eth_type": ETH_ARP, "arp_op": ARP_REQUEST}, ask, meter=ofport),
            Flow(FORWARD, PRIO_MISS, {**own, "eth_type": ETH_IP}, ask, meter=ofport)]


def deliver_flow(port: LocalPort, eni_option: bool = False) -> Flow:
    """To a local VM: by the destination ENI the Geneve option names, or (VXLAN) by
    the inner destination addresses."""
    m = port.mapping
    match = {"metadata": m.vni, "eth_type": ETH_IP}
    match.update({DESTINATION_ENI_REG: m.key} if eni_option else
                 {"ipv4_dst": str(m.ip), "eth_dst": m.mac})
    return Flow(DELIVER, PRIO_ENTRY, match, (("output", port.ofport),))


# -- flows for one mapping (the cache) -------------------------------------------
def mapping_flows(router: Router, mapping: Mapping, idle_timeout: int = 0) -> list[Flow]:
    """What a router holds for one (VPC, IP): an ARP answer and a forwarding entry."""
    cookie = mapping_cookie(mapping.vni, mapping.ip)
    return [
        Flow(ARP, PRIO_ENTRY, {"metadata": mapping.vni, "eth_type": ETH_ARP,
                               "arp_op": ARP_REQUEST, "arp_tpa": str(mapping.ip)},
             arp_responder_actions(mapping), cookie=cookie, idle_timeout=idle_timeout),
        Flow(FORWARD, PRIO_ENTRY, {"metadata": mapping.vni, "eth_type": ETH_IP,
                                   "ipv4_dst": str(mapping.ip), "eth_dst": mapping.mac},
             forward_actions(router, mapping), cookie=cookie, idle_timeout=idle_timeout),
    ]


def arp_responder_actions(mapping: Mapping) -> tuple[Action, ...]:
    """Turn the request into the reply in place (Neutron's ARP responder recipe)."""
    return (
        ("move", "eth_src", "eth_dst", 48),
        ("set", "eth_src", mapping.mac),
        ("set", "arp_op", ARP_REPLY),
        ("move", "arp_sha", "arp_tha", 48),
        ("move", "arp_spa", "arp_tpa", 32),
        ("set", "arp_sha", mapping.mac),
        ("set", "arp_spa", str(mapping.ip)),
        ("output", OFPP_IN_PORT),
    )


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


def preload_flows(router: Router, table: MappingTable, idle_timeout: int = 0) -> list[Flow]:
    """`preload` mode: every entry of the router's VPCs, pushed at connect."""
    return [f for m in table.in_vpcs(router.vnis) for f in entry_flows(router, m, idle_timeout)]


def entry_flows(router: Router, mapping: Mapping, idle_timeout: int = 0) -> list[Flow]:
    """Everything a router may hold for one mapping: answer, forward, verify as a source."""
    remote = mapping.host != router.host
    flows = mapping_flows(router, mapping, idle_timeout)
    flows += [check_flow(mapping, idle_timeout, router.eni_option)] if remote else []
    if not mapping.source_dest_check:
        flows += appliance_flows(router, mapping, remote, idle_timeout)
    return flows


def appliance_flows(router: Router, mapping: Mapping, remote: bool, idle_timeout: int) -> list[Flow]:
    """An ENI with its check off is reached, and trusted, by its MAC, whatever the IPs."""
    cookie = mapping_cookie(mapping.vni, mapping.ip)
    base = {"metadata": mapping.vni, "eth_type": ETH_IP}
    flows = [Flow(FORWARD, PRIO_APPLIANCE, {**base, "eth_dst": mapping.mac},
                  forward_actions(router, mapping), cookie=cookie, idle_timeout=idle_timeout)]
    if remote and not router.eni_option:      # with the option, check_flow trusts it by ENI
        flows.append(Flow(CHECK, PRIO_APPLIANCE, {**base, "eth_src": mapping.mac,
                                                  "tun_ipv4_src": str(mapping.host_ip)},
                          goto=DELIVER, cookie=cookie, idle_timeout=idle_timeout))
    return flows


# -- the on-demand decision -----------------------------------------------------
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


def negative_flows(miss: Miss, ttl: int) -> list[Flow]:
    """Remember an unknown target briefly: its next packets are dropped on the router."""
    cookie = negative_cookie(miss.vni, miss.target)
    if miss.is_arp:
        match = {"metadata": miss.vni, "eth_type": ETH_ARP, "arp_op": ARP_REQUEST,
                 "arp_tpa": str(miss.target)}
        return [Flow(ARP, PRIO_ENTRY, match, cookie=cookie, hard_timeout=ttl)]
    match = {"metadata": miss.vni, "eth_type": ETH_IP, "ipv4_dst": str(miss.target)}
    return [Flow(FORWARD, PRIO_NEGATIVE, match, cookie=cookie, hard_timeout=ttl)]


@dataclass(frozen=True)
class Decision:
    flows: list[Flow]
    resubmit: bool               # packet-out the packet back into the pipeline
    mapping: Mapping | None
    reason: str
    output: int | None = None    # or send it straight out of this port
    refused: bool = False        # a receive check said no: dropped, counted, reported


def decide_miss(router: Router, miss: Miss, table: MappingTable) -> Decision:
    """Answer a miss from the mapping table and cache the entry on this router only
    (its ARP answer, forwarding and, for a remote VM, trust in its host as a source).

    The router then re-runs the packet through its tables, so the reply an
    ARP request gets is exactly the one the cached flow will give next time.
    """
    if miss.tun_src is not None:
        return decide_check(router, miss, table)
    port = router.port_by_number(miss.in_port)
    if port is None or port.mapping.vni != miss.vni:
        return Decision([], False, None, "not from a local VM of that VPC")
    mapping = table.lookup(miss.vni, miss.target)
    if mapping is None and not miss.is_arp:
        appliance = table.appliance(miss.vni, miss.eth_dst)     # e.g. routed via a NAT VM
        if appliance is not None:
            return Decision(entry_flows(router, appliance, router.idle_timeout), True, appliance,
                            f"to appliance {appliance.ip} (source/destination check off)")
    if mapping is None:
        return Decision(negative_flows(miss, NEGATIVE_TTL), False, None,
                        f"no mapping for {miss.target} in VNI {miss.vni}")
    flows = entry_flows(router, mapping, router.idle_timeout)
    if not miss.is_arp and miss.eth_dst != mapping.mac:
        # addressed to another ENI's MAC: the entry cannot match it, and resubmitting
        # would bounce it between router and service forever. Cache, then drop it.
        return Decision(flows, False, mapping, f"{miss.eth_dst} is not {miss.target}'s MAC")
    return Decision(flows, True, mapping, "cached")


def decide_check(router: Router, miss: Miss, table: MappingTable) -> Decision:
    """Receive-side check: does the inner source live behind the outer source host?
    With the Geneve option, the claimed source is the ENI it names, and the option
    is required: a packet without it is dropped.

    A packet that passes is delivered straight to its local port (a resubmit would
    lose its tunnel metadata); one that fails is dropped, remembered briefly, counted.
    """
    if router.eni_option and miss.source_key is None:
        return Decision([], False, None, "receive check failed: no ENI option in the Geneve header",
                        refused=True)
    source = _source_by_eni(miss, table) if router.eni_option else _source_by_address(miss, table)
    if source is None or source.host_ip != miss.tun_src or source.host == router.host:
        return _check_failed(miss)
    # the whole entry: this router is about to answer the VM's ARP for it and forward its reply
    local = _local_destination(router, miss)
    return Decision(entry_flows(router, source, router.idle_timeout), False, source,
                    "source verified", local.ofport if local else None)


def decide_verdict(router: Router, miss: Miss, table: MappingTable, accepted: bool) -> Decision:
    """A receive check decided elsewhere (a learner's check_source, classroom exercise 06),
    carried out as decide_check would: accepted, the packet goes to its local VM and, if the
    claim is true, the source's entry is cached (its next packets pass on the router);
    refused, it is dropped and the claim remembered briefly."""
    if not accepted:
        return _check_failed(miss)
    source = table.lookup(miss.vni, miss.target)
    true = source is not None and source.host_ip == miss.tun_src and source.host != router.host
    local = _local_destination(router, miss)
    flows = entry_flows(router, source, router.idle_timeout) if true else []
    return Decision(flows, False, source, "source accepted", local.ofport if local else None)


def _source_by_eni(miss: Miss, table: MappingTable) -> Mapping | None:
    """The ENI the option names, if it is in this VPC and (unless an appliance) owns the
    inner source IP."""
    source = table.by_eni_key(miss.source_key)
    if source is None or source.vni != miss.vni or \
            (source.source_dest_check and source.ip != miss.target):
        return None
    return source


def _source_by_address(miss: Miss, table: MappingTable) -> Mapping | None:
    """VXLAN: the ENI that owns the inner source IP, or an appliance by its MAC."""
    source = table.lookup(miss.vni, miss.target)
    if source is None or source.host_ip != miss.tun_src:
        source = table.appliance(miss.vni, miss.eth_src) or source    # a NAT speaking for others
    return source


def _local_destination(router: Router, miss: Miss) -> LocalPort | None:
    if miss.destination_key is not None:
        return next((p for p in router.ports
                     if p.mapping.vni == miss.vni and p.mapping.key == miss.destination_key), None)
    return next((p for p in router.ports if p.mapping.vni == miss.vni and p.mapping.mac == miss.eth_dst
                 and (p.mapping.ip == miss.destination or not p.mapping.source_dest_check)), None)


def _check_failed(miss: Miss) -> Decision:
    """Drop and remember the claim, below real entries: if the claim becomes true (a VM
    moved there), its entry wins at once; a forged ENI key never shadows the real one."""
    cookie = check_failed_cookie(miss.vni, miss.target)
    match = {"metadata": miss.vni, "eth_type": ETH_IP, "ipv4_src": str(miss.target),
             "tun_ipv4_src": str(miss.tun_src)}
    claim = f"{miss.target}"
    if miss.source_key is not None:
        match[SOURCE_ENI_REG] = miss.source_key
        claim += f" as ENI key {miss.source_key}"
    drop = Flow(CHECK, PRIO_NEGATIVE, match, cookie=cookie, hard_timeout=NEGATIVE_TTL)
    return Decision([drop], False, None, f"receive check failed: {claim} does not live behind {miss.tun_src}",
                    refused=True)
