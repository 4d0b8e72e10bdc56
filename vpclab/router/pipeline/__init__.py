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
              A subnet's .1 (a VPC with subnets) is answered with the router's MAC.
  15 ROUTE    (VPCs with subnets only) a packet for the router's MAC: the sender's
              subnet's route table, longest prefix first: local, an ENI, a blackhole.
              Anything else goes on to FORWARD. Miss: ask the mapping service or drop.
  17 NEXTHOP  the routed packet's next hop: source MAC the router's, destination MAC
              the next hop's; then FORWARD. No TTL change (AWS's router is invisible).
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

Modules, one concern each, imported one way only (tables, then the tables' own
builders, then what a router holds, then the decisions):

  tables    numbers, priorities, ports, registers, cookies; Flow, LocalPort, Router,
            Miss, Decision
  classify  CLASSIFY: a VM port's flows (anti-spoofing)
  arp       ARP: the responder's actions
  forward   FORWARD and the tunnel: where a known destination goes
  deliver   DELIVER: a tunnel packet to a local VM only
  route     ROUTE and NEXTHOP: the VPC router (gateways, routes, next hops)
  services  the VPC's DHCP and .2 resolver: a VM's messages to the mapping service
  router    the flows a router always has: its ports, the tunnel per VPC, misses, defaults
  entries   the cache: one mapping's flows (ARP answer, forwarding, CHECK trust, appliance)
  check     the receive-side check's decisions (decide_check, decide_verdict)
  decide    the on-demand decision (decide_miss; an unknown target remembered briefly;
            decide_route: a route table's answer)

The names below are the pipeline's interface: `from vpclab.router.pipeline import X`.
"""
from vpclab.router.pipeline.arp import arp_answer_actions, arp_responder_actions
from vpclab.router.pipeline.check import decide_check, decide_verdict
from vpclab.router.pipeline.classify import classify_port_flows
from vpclab.router.pipeline.decide import decide_miss, decide_route, negative_flows
from vpclab.router.pipeline.deliver import deliver_flow
from vpclab.router.pipeline.entries import appliance_flows, check_flow, entry_flows, mapping_flows, preload_flows
from vpclab.router.pipeline.forward import forward_actions
from vpclab.router.pipeline.route import (
    answer_flows, gateway_flows, nexthop_flow, route_flow, router_route_flows, table_flows,
)
from vpclab.router.pipeline.router import miss_flows, router_flows
from vpclab.router.pipeline.services import port_service_flows, service_flows
from vpclab.router.pipeline.tables import (
    ARP, ARP_REPLY, ARP_REQUEST, CHECK, CLASSIFY, COOKIE_CHECK_FAILED, COOKIE_KIND_MASK, COOKIE_MAPPING,
    COOKIE_NEGATIVE, COOKIE_ROUTE, COOKIE_ROUTER, DELIVER, DESTINATION_ENI_REG, ENI_FIELD, ENI_OPTION_CLASS,
    ENI_OPTION_LEN, ENI_OPTION_TYPE, ETH_ARP, ETH_IP, FORWARD, MULTICAST, NEXT_HOP_REG, NEXTHOP, NO_ENI,
    OFPP_CONTROLLER, OFPP_IN_PORT, OFPP_TABLE, PRIO_APPLIANCE, PRIO_DEFAULT, PRIO_DROP_MCAST, PRIO_ENTRY,
    PRIO_MISS, PRIO_NEGATIVE, PRIO_ROUTE, ROUTE, ROUTE_TABLE_REG, SOURCE_ENI_REG, Action, Decision, Flow,
    LocalPort, Miss, RoutedVpc, RouteEntry, Router, RouteTable, check_failed_cookie, mapping_cookie,
    negative_cookie, route_cookie,
)

__all__ = [
    # tables
    "CLASSIFY", "ARP", "ROUTE", "NEXTHOP", "FORWARD", "CHECK", "DELIVER",
    "PRIO_DROP_MCAST", "PRIO_ROUTE", "PRIO_ENTRY", "PRIO_APPLIANCE", "PRIO_NEGATIVE", "PRIO_MISS", "PRIO_DEFAULT",
    "ETH_IP", "ETH_ARP", "ARP_REQUEST", "ARP_REPLY", "OFPP_IN_PORT", "OFPP_TABLE", "OFPP_CONTROLLER", "MULTICAST",
    "ENI_OPTION_CLASS", "ENI_OPTION_TYPE", "ENI_OPTION_LEN", "ENI_FIELD", "SOURCE_ENI_REG",
    "DESTINATION_ENI_REG", "NO_ENI", "ROUTE_TABLE_REG", "NEXT_HOP_REG",
    "COOKIE_ROUTER", "COOKIE_MAPPING", "COOKIE_NEGATIVE", "COOKIE_CHECK_FAILED", "COOKIE_ROUTE",
    "COOKIE_KIND_MASK", "mapping_cookie", "negative_cookie", "check_failed_cookie", "route_cookie",
    "Action", "Flow", "LocalPort", "Router", "Miss", "Decision", "RouteEntry", "RouteTable", "RoutedVpc",
    # the tables' builders
    "classify_port_flows", "arp_responder_actions", "arp_answer_actions", "forward_actions",
    "deliver_flow", "gateway_flows", "route_flow", "table_flows", "answer_flows", "nexthop_flow",
    # what a router holds
    "router_flows", "miss_flows", "router_route_flows", "service_flows", "port_service_flows", "mapping_flows", "check_flow", "preload_flows",
    "entry_flows", "appliance_flows",
    # the decisions
    "decide_miss", "negative_flows", "decide_check", "decide_verdict", "decide_route",
]
