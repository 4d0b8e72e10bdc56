"""The mapping service: an os-ken app that answers ARP and programs the virtual routers.

The Ryu app shape (simple_switch_13): one short handler per event. Decisions
live in `vpclab.pipeline` and `vpclab.sync`; this module parses, asks and
sends. It is the only module that imports `os_ken.controller`.

Its state is the lab's inventory (every ENI, its host and port), persisted in
the lab's state directory after every change, so a restarted service rebuilds
the same table and re-synchronises each router as it reconnects. Changes
come from the HTTP API (`ryu_apps.api`, a unix socket in the state directory)
and are acknowledged by OpenFlow barriers from every affected router.
Configuration: VPCLAB_STATE_DIR, set by the lab runner.
"""
from __future__ import annotations

import os
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from ipaddress import IPv4Address
from pathlib import Path

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import (
    CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls,
)
from os_ken.lib.packet import arp, ethernet, ipv4, packet
from os_ken.ofproto import ofproto_v1_3

from ryu_apps import api, geneve_option, ofmsg
from vpclab.events import EventLog
from vpclab.inventory import Inventory
from vpclab.pipeline import (
    ARP, CHECK, COOKIE_CHECK_FAILED, DESTINATION_ENI_REG, FORWARD, NO_ENI, SOURCE_ENI_REG, Miss,
    decide_miss, mapping_cookie, preload_flows,
)
from vpclab.plan import TUNNEL_PORT
from vpclab.sync import InstalledFlow, RouterOps, change_ops, decode_cookie, reconcile, static_flows
from vpclab.validation import load_topology

BARRIER_TIMEOUT = 5.0


def miss_from_packet_in(msg) -> Miss | None:
    """What the router is asking about, or None for a packet we never answer."""
    vni = msg.match.get("metadata")
    pkt = packet.Packet(msg.data)
    if msg.table_id == CHECK:        # from the tunnel: is the inner source who it claims?
        ip, frame = pkt.get_protocol(ipv4.ipv4), pkt.get_protocol(ethernet.ethernet)
        tun_src = msg.match.get("tun_ipv4_src")
        if ip is None or tun_src is None:
            return None
        # the Geneve option, as the router's classification read it (a register at 0 is absent)
        keys = [msg.match.get(reg, NO_ENI) or None for reg in (SOURCE_ENI_REG, DESTINATION_ENI_REG)]
        return Miss(msg.match["in_port"], vni, IPv4Address(ip.src), False, frame.dst,
                    IPv4Address(tun_src), IPv4Address(ip.dst), frame.src, *keys)
    request = pkt.get_protocol(arp.arp)
    if request is not None:
        if request.opcode != arp.ARP_REQUEST:
            return None
        return Miss(msg.match["in_port"], vni, IPv4Address(request.dst_ip), True)
    ip = pkt.get_protocol(ipv4.ipv4)
    if ip is None:
        return None
    frame = pkt.get_protocol(ethernet.ethernet)
    return Miss(msg.match["in_port"], vni, IPv4Address(ip.dst), False, frame.dst)


geneve_option.register_field()


class MappingService(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.state_dir = Path(os.environ["VPCLAB_STATE_DIR"])
        topology = load_topology(self.state_dir / "topology.yaml")
        self.inventory = Inventory.load(self.state_dir / "mappings.json", topology)
        self.event_log = EventLog(self.state_dir / "events.jsonl")
        self.encoder = ofmsg.FlowEncoder()
        self.lock = threading.RLock()           # the inventory, the caches, sending
        self.datapaths: dict[int, object] = {}
        # dpid -> cookie -> tables still holding that cached entry (LRU order)
        self.cached: dict[int, OrderedDict[int, set[int]]] = defaultdict(OrderedDict)
        self.counters: Counter = Counter()
        self.router_counters: dict[int, Counter] = defaultdict(Counter)
        self.pending: dict[int, tuple[str, int, object]] = {}   # xid -> (what, dpid, payload)
        self.stats_parts: dict[int, list] = defaultdict(list)
        self.event_log.write("service_started", mappings=len(self.inventory.table()),
                             mode=topology.mapping_mode)
        api.serve(self, self.state_dir / "mapping.sock")

    # -- connection and resynchronisation ------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def router_connected(self, ev):
        datapath = ev.msg.datapath
        with self.lock:
            router = self.inventory.routers().get(datapath.id)
            if router is None:
                self.logger.warning("unknown datapath %016x connected; ignoring it", datapath.id)
                return
            self.datapaths[datapath.id] = datapath
            self.cached.pop(datapath.id, None)
            if router.eni_option:    # the option's TLV map first: flows that name it need it
                self._send(datapath, geneve_option.tlv_map_add(datapath))
            if router.on_demand:     # meters first: flows that name a missing meter are refused
                for meter in [TUNNEL_PORT] + [port.ofport for port in router.ports]:
                    self._send(datapath, ofmsg.meter_add(datapath, meter, router.miss_rate))
            flows = static_flows(router, self.inventory.table())
            for flow in flows:                  # ADD replaces in place: no gap for traffic
                self.encoder.send(datapath, flow)
            self.pending[self._send(datapath, ofmsg.flow_stats(datapath))] = ("resync", datapath.id, None)
            if router.on_demand:   # encode now what this router may ask for, so misses are fast
                for flow in preload_flows(router, self.inventory.table(), router.idle_timeout):
                    self.encoder.encode(datapath, flow)
        self.event_log.write("router_connected", host=router.host, dpid=datapath.id, flows=len(flows))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def flow_stats(self, ev):
        self._multipart(ev.msg)

    def _multipart(self, msg) -> None:
        self.stats_parts[msg.xid] += msg.body
        if msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE:
            return
        body = self.stats_parts.pop(msg.xid)
        what, dpid, payload = self.pending.pop(msg.xid, (None, None, None))
        if what == "resync":
            self._resync(msg.datapath, body)
        elif what == "reply":
            payload[1].extend(body)
            payload[0].set()

    def _resync(self, datapath, body) -> None:
        installed = [InstalledFlow(s.table_id, s.priority, s.cookie, dict(s.match.items())) for s in body]
        with self.lock:
            router = self.inventory.routers()[datapath.id]
            stale, kept = reconcile(router, self.inventory.table(), installed)
            self._send_ops(datapath, RouterOps(delete=stale))
            for cookie in sorted(kept):
                self.cached[datapath.id][cookie] = {ARP, FORWARD, CHECK}
            xid = self._send(datapath, ofmsg.barrier(datapath))
            self.pending[xid] = ("ready", datapath.id, None)
        self.event_log.write("router_resynced", host=router.host, removed=len(stale),
                             kept_cached=len(kept))

    @set_ev_cls(ofp_event.EventOFPBarrierReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def barrier_reply(self, ev):
        what, dpid, payload = self.pending.pop(ev.msg.xid, (None, None, None))
        if what == "ready":
            self.event_log.write("router_ready", host=self._host(dpid), dpid=dpid)
        elif what == "change":
            payload.set()

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def router_gone(self, ev):
        with self.lock:
            if self.datapaths.get(ev.datapath.id) is ev.datapath:
                del self.datapaths[ev.datapath.id]

    # -- misses: the mapping service answering -------------------------------------
    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        received, start = time.time(), time.perf_counter()
        msg = ev.msg
        datapath = msg.datapath
        with self.lock:
            router = self.inventory.routers().get(datapath.id)
            miss = miss_from_packet_in(msg) if router else None
            if miss is None:
                return
            decision = decide_miss(router, miss, self.inventory.table())
            for flow in decision.flows:
                self.encoder.send(datapath, flow)
            if decision.mapping is not None:
                cookie = mapping_cookie(decision.mapping.vni, decision.mapping.ip)
                self._remember(datapath, cookie, {f.table for f in decision.flows if f.cookie == cookie})
            if decision.resubmit:
                self._send(datapath, ofmsg.resubmit_packet(datapath, miss.in_port, msg.data))
            elif decision.output is not None:
                self._send(datapath, ofmsg.packet_to_port(datapath, decision.output, msg.data))
            if miss.tun_src is not None and decision.mapping is None:
                self.router_counters[datapath.id]["receive_check_failed"] += 1
                self.event_log.write("receive_check_failed", host=router.host, vni=miss.vni,
                                     claimed_source=str(miss.target), outer_source=str(miss.tun_src))
            self.counters["lookups"] += 1
            self.counters["answers" if decision.mapping else "unknown"] += 1
            self.router_counters[datapath.id]["misses"] += 1
            if decision.mapping is None:
                self.router_counters[datapath.id]["unknown"] += 1
        self.event_log.write("miss", at=received, host=router.host, vni=miss.vni,
                             target=str(miss.target), arp=miss.is_arp,
                             outer_source=str(miss.tun_src) if miss.tun_src else None,
                             source_eni_key=miss.source_key,
                             answer=decision.mapping.mac if decision.mapping else None,
                             reason=decision.reason, flows_installed=len(decision.flows),
                             handled_us=round((time.perf_counter() - start) * 1e6))

    def _remember(self, datapath, cookie: int, tables: set[int]) -> None:
        """Track a cached entry; past the router's bound, evict the least recent one."""
        cache = self.cached[datapath.id]
        cache[cookie] = cache.get(cookie, set()) | tables
        cache.move_to_end(cookie)
        while len(cache) > self.inventory.topology.max_entries:
            oldest, _ = cache.popitem(last=False)
            self._send(datapath, ofmsg.delete_cookie(datapath, oldest))
            self.router_counters[datapath.id]["evictions"] += 1

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def flow_removed(self, ev):
        msg = ev.msg
        with self.lock:
            tables = self.cached[msg.datapath.id].get(msg.cookie)
            if tables is not None:
                tables.discard(msg.table_id)
                if not tables:
                    del self.cached[msg.datapath.id][msg.cookie]
                    self.router_counters[msg.datapath.id]["expired"] += 1

    # -- changes (called from API threads) ------------------------------------------
    def apply(self, what: str, change) -> dict:
        """Apply an inventory change to every affected router; return once all confirmed."""
        started = time.monotonic()
        waits, touched = [], {}
        with self.lock:
            old = self.inventory
            new = change(old)                      # InventoryError: refused, nothing changed
            old_routers, new_routers = old.routers(), new.routers()
            old_table, new_table = old.table(), new.table()
            for dpid, datapath in self.datapaths.items():
                ops = change_ops(old_routers[dpid], new_routers[dpid], old_table, new_table,
                                 set(self.cached[dpid]))
                if not ops:
                    continue
                self._send_ops(datapath, ops)
                for cookie in ops.invalidate:
                    self.cached[dpid].pop(cookie, None)
                self.router_counters[dpid]["invalidations"] += len(ops.invalidate)
                done = threading.Event()
                self.pending[self._send(datapath, ofmsg.barrier(datapath))] = ("change", dpid, done)
                waits.append((new_routers[dpid].host, done))
                touched[new_routers[dpid].host] = {"added": len(ops.add), "deleted": len(ops.delete),
                                                   "invalidated": len(ops.invalidate)}
            self.inventory = new
            new.save(self.state_dir / "mappings.json")
            self.counters["changes"] += 1
        late = [host for host, done in waits if not done.wait(BARRIER_TIMEOUT)]
        converged_ms = round((time.monotonic() - started) * 1000, 3)
        self.event_log.write("change", what=what, converged_ms=converged_ms, routers=touched, late=late)
        return {"ok": not late, "change": what, "converged_ms": converged_ms, "routers": touched,
                "unconfirmed": late}

    def _send_ops(self, datapath, ops: RouterOps) -> None:
        rate = self.inventory.topology.miss_rate
        for meter in ops.meters_add:
            self._send(datapath, ofmsg.meter_add(datapath, meter, rate))
        for flow in ops.add:
            self.encoder.send(datapath, flow)
        for table, priority, match in ops.delete:
            self._send(datapath, ofmsg.delete_strict(datapath, table, priority, dict(match)))
        for cookie in ops.invalidate:
            self._send(datapath, ofmsg.delete_cookie(datapath, cookie))
        for meter in ops.meters_delete:
            self._send(datapath, ofmsg.meter_delete(datapath, meter))

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def openflow_error(self, ev):
        """Every refusal by a router is logged; a meter or TLV map that already exists (a
        router reconnecting to a restarted service) is the one expected case."""
        msg, ofp = ev.msg, ev.msg.datapath.ofproto
        if msg.type == ofp.OFPET_METER_MOD_FAILED and msg.code == ofp.OFPMMFC_METER_EXISTS:
            return
        if geneve_option.is_already_mapped(msg):
            return
        self.event_log.write("openflow_error", host=self._host(msg.datapath.id), type=msg.type,
                             code=msg.code, xid=msg.xid, exp_type=getattr(msg, "exp_type", None))

    def _send(self, datapath, msg) -> int:
        datapath.set_xid(msg)
        datapath.send_msg(msg)
        return msg.xid

    def _host(self, dpid: int) -> str:
        router = self.inventory.routers().get(dpid)
        return router.host if router else str(dpid)

    # -- statistics -------------------------------------------------------------------
    def stats(self) -> dict:
        routers = {}
        for dpid, router in self.inventory.routers().items():
            routers[router.host] = {
                "connected": dpid in self.datapaths,
                "cached_entries": len(self.cached[dpid]) if router.on_demand else None,
                "hits": self._hits(dpid),
                "misses_limited": self._limited(dpid) if router.on_demand else None,
                "receive_check_failed": self._check_failures(dpid),
                **{k: self.router_counters[dpid][k]
                   for k in ("misses", "unknown", "invalidations", "evictions", "expired")},
            }
        return {"service": {"mappings": len(self.inventory.table()),
                            **{k: self.counters[k] for k in ("lookups", "answers", "unknown", "changes")}},
                "routers": routers}

    def _hits(self, dpid: int) -> int | None:
        """Packets forwarded by this router's mapping entries (their flow counters)."""
        body = self._ask(dpid, lambda dp: ofmsg.flow_stats(dp, mappings_only=True))
        return None if body is None else sum(s.packet_count for s in body if s.table_id == FORWARD)

    def _check_failures(self, dpid: int) -> int | None:
        """Packets dropped by the receive-side check: asked about, or dropped on the router."""
        body = self._ask(dpid, lambda dp: ofmsg.flow_stats(dp, cookie_kind=COOKIE_CHECK_FAILED))
        if body is None:
            return None
        return self.router_counters[dpid]["receive_check_failed"] + sum(s.packet_count for s in body)

    def _limited(self, dpid: int) -> int | None:
        """Misses the ports' meters dropped before they reached the mapping service."""
        body = self._ask(dpid, ofmsg.meter_stats)
        return None if body is None else sum(b.packet_band_count for m in body for b in m.band_stats)

    def _ask(self, dpid: int, request):
        """A multipart request to one router, answered synchronously (for the API threads)."""
        datapath = self.datapaths.get(dpid)
        if datapath is None:
            return None
        done, body = threading.Event(), []
        with self.lock:
            self.pending[self._send(datapath, request(datapath))] = ("reply", dpid, (done, body))
        return body if done.wait(BARRIER_TIMEOUT) else None

    @set_ev_cls(ofp_event.EventOFPMeterStatsReply, MAIN_DISPATCHER)
    def meter_stats(self, ev):
        self._multipart(ev.msg)

    def cached_entries(self) -> dict:
        table = self.inventory.table()
        out = {}
        for dpid, router in self.inventory.routers().items():
            if not router.on_demand:
                out[router.host] = {"mode": "preload",
                                    "entries": [m.to_json() for m in table.in_vpcs(router.vnis)]}
                continue
            entries = [table.lookup(*decode_cookie(c)) for c in self.cached[dpid]]
            out[router.host] = {"mode": "on-demand", "entries": [m.to_json() for m in entries if m]}
        return out
