"""The mapping service: an os-ken app that answers ARP and programs the virtual routers.

The Ryu app shape (simple_switch_13): one short handler per event. Decisions
live in `vpclab.pipeline`; this module only parses, asks and sends. It is the
only module that imports `os_ken.controller`.

Configuration comes from the environment set by the lab runner:
VPCLAB_TOPOLOGY (the lab's topology file) and VPCLAB_EVENTS (the event log).
"""
from __future__ import annotations

import os
import time
from ipaddress import IPv4Address

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib.packet import arp, ipv4, packet
from os_ken.ofproto import ofproto_v1_3

from ryu_apps import ofmsg
from vpclab.events import EventLog
from vpclab.mapping import MappingTable
from vpclab.pipeline import Miss, decide_miss, preload_flows, router_flows, routers_from_plan
from vpclab.plan import plan_fabric
from vpclab.validation import load_topology


def miss_from_packet_in(msg) -> Miss | None:
    """What the router is asking about, or None for a packet we never answer."""
    vni = msg.match.get("metadata")
    pkt = packet.Packet(msg.data)
    request = pkt.get_protocol(arp.arp)
    if request is not None:
        if request.opcode != arp.ARP_REQUEST:
            return None
        return Miss(msg.match["in_port"], vni, IPv4Address(request.dst_ip), True)
    ip = pkt.get_protocol(ipv4.ipv4)
    if ip is None:
        return None
    return Miss(msg.match["in_port"], vni, IPv4Address(ip.dst), False)


class MappingService(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        topology = load_topology(os.environ["VPCLAB_TOPOLOGY"])
        self.table = MappingTable.from_topology(topology)
        self.routers = routers_from_plan(plan_fabric(topology), self.table)
        self.event_log = EventLog(os.environ["VPCLAB_EVENTS"])
        self.pending_ready: dict[int, int] = {}   # barrier xid -> dpid
        self.encoder = ofmsg.FlowEncoder()
        self.event_log.write("service_started", mappings=len(self.table), mode=topology.mapping_mode)

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def router_connected(self, ev):
        datapath = ev.msg.datapath
        router = self.routers.get(datapath.id)
        if router is None:
            self.logger.warning("unknown datapath %016x connected; ignoring it", datapath.id)
            return
        flows = router_flows(router)
        if not router.on_demand:
            flows += preload_flows(router, self.table)
        datapath.send_msg(ofmsg.delete_all_flows(datapath))
        for flow in flows:
            self.encoder.send(datapath, flow)
        request = ofmsg.barrier(datapath)
        datapath.set_xid(request)
        self.pending_ready[request.xid] = datapath.id
        datapath.send_msg(request)
        self.event_log.write("router_connected", host=router.host, dpid=datapath.id, flows=len(flows))
        if router.on_demand:   # encode now what this router may ask for, so misses are fast
            for flow in preload_flows(router, self.table, router.idle_timeout):
                self.encoder.encode(datapath, flow)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier_reply(self, ev):
        dpid = self.pending_ready.pop(ev.msg.xid, None)
        if dpid is not None:
            self.event_log.write("router_ready", host=self.routers[dpid].host, dpid=dpid)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        received, start = time.time(), time.perf_counter()
        msg = ev.msg
        datapath = msg.datapath
        router = self.routers.get(datapath.id)
        miss = miss_from_packet_in(msg) if router else None
        if miss is None:
            return
        decision = decide_miss(router, miss, self.table)
        for flow in decision.flows:
            self.encoder.send(datapath, flow)
        if decision.resubmit:
            datapath.send_msg(ofmsg.resubmit_packet(datapath, miss.in_port, msg.data))
        self.event_log.write("miss", at=received, host=router.host, vni=miss.vni, target=str(miss.target),
                          arp=miss.is_arp, answer=decision.mapping.mac if decision.mapping else None,
                          reason=decision.reason, flows_installed=len(decision.flows),
                          handled_us=round((time.perf_counter() - start) * 1e6))
