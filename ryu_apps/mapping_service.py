"""The mapping service: an os-ken app that answers ARP and programs the virtual routers.

The Ryu app shape (simple_switch_13): one short handler per event. Decisions
live in `vpclab.router.pipeline` and `vpclab.router.sync`; this module parses, asks and
sends. It is the only module that imports `os_ken.controller`.

Its state is the lab's inventory (every ENI, its host and port), persisted in
the lab's state directory after every change, so a restarted service rebuilds
the same table and re-synchronises each router as it reconnects. Changes
come from the HTTP API (`ryu_apps.api`, a unix socket in the state directory)
and are acknowledged by OpenFlow barriers from every affected router.
Configuration: VPCLAB_STATE_DIR, set by the lab runner.

One lock guards the inventory, the caches and the pending requests; under it
the service only decides and encodes. Messages go to each router's `Outbox`,
whose own thread sends them, so a stalled router never holds the lock (and
with it every other router's misses). A change is computed and encoded for
every router before any is sent: all or nothing.
"""
from __future__ import annotations

import os
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from pathlib import Path

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import (
    CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls,
)
from os_ken.ofproto import ofproto_v1_3

from ryu_apps import api, arp_reply, geneve_option, learner_arp, ofmsg, packet_in, vpc_services
from ryu_apps.learner_check import LearnerReceiveCheck
from ryu_apps.learner_move import LearnerMove, moved_drops, moved_mappings
from ryu_apps.learner_tunnel import LearnerTunnel
from ryu_apps.outbox import Outbox
from vpclab.router.cache import RouterCache
from vpclab.router.events import EventLog
from vpclab.router.inventory import Inventory
from vpclab.router.pipeline import (
    ARP, CHECK, COOKIE_CHECK_FAILED, COOKIE_KIND_MASK, COOKIE_MAPPING, DESTINATION_ENI_REG, FORWARD,
    NEXT_HOP_REG, NEXTHOP, NO_ENI, ROUTE, ROUTE_TABLE_REG, SOURCE_ENI_REG, Decision, Flow, Miss, Router,
    decide_miss, decide_verdict, mapping_cookie, preload_flows,
)
from vpclab.model.plan import TUNNEL_PORT
from vpclab.router.sync import InstalledFlow, RouterOps, change_ops, decode_cookie, reconcile, static_flows
from vpclab.model.validation import load_topology

OFPP_TABLE, OFPP_CONTROLLER = ofproto_v1_3.OFPP_TABLE, ofproto_v1_3.OFPP_CONTROLLER
BARRIER_TIMEOUT = 5.0
HOUSEKEEPING_INTERVAL = 2.0     # forget expired requests; read hit counters for recency


@dataclass
class Pending:
    """A request to a router whose answer someone waits for (or acts on)."""

    kind: str                   # resync | ready | change | reply | recency
    deadline: float
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False            # answered (False: timed out or the router went away)
    body: list = field(default_factory=list)


@dataclass
class RouterChange:
    """One router's share of a change, computed (and encoded) before anything is sent."""

    dpid: int
    host: str
    ops: RouterOps
    messages: list[bytes]
    barriers: list[int]         # the xids of the barriers whose replies confirm it
    connected: bool
    steps: list = field(default_factory=list)    # a learner's messages (exercise 05)

    @property
    def invalidated(self) -> list[int]:
        return self.ops.invalidate + [s.cookie for s in self.steps if s.message == "invalidate"]


def miss_from_packet_in(msg) -> Miss | None:
    """What the router is asking about, or None for a packet we never answer."""
    vni = msg.match.get("metadata")
    frame = packet_in.parse(msg.data)
    if frame is None:
        return None
    if msg.table_id == CHECK:        # from the tunnel: is the inner source who it claims?
        tun_src = msg.match.get("tun_ipv4_src")
        if frame.ip_src is None or tun_src is None:
            return None
        # the Geneve option, as the router's classification read it (a register at 0 is absent)
        keys = [msg.match.get(reg, NO_ENI) or None for reg in (SOURCE_ENI_REG, DESTINATION_ENI_REG)]
        return Miss(msg.match["in_port"], vni, frame.ip_src, False, frame.eth_dst,
                    IPv4Address(tun_src), frame.ip_dst, frame.eth_src, *keys)
    if frame.arp_op is not None:
        if frame.arp_op != packet_in.ARP_REQUEST:
            return None
        return Miss(msg.match["in_port"], vni, frame.arp_tpa, True)
    if frame.ip_dst is None:
        return None
    if msg.table_id == NEXTHOP:      # a cached route's next hop, named in a register
        return Miss(msg.match["in_port"], vni, IPv4Address(msg.match.get(NEXT_HOP_REG, 0)), False,
                    frame.eth_dst, table=NEXTHOP)
    if msg.table_id == ROUTE:        # for the VPC router: the sender's subnet's table decides
        return Miss(msg.match["in_port"], vni, frame.ip_dst, False, frame.eth_dst, table=ROUTE,
                    route_table=msg.match.get(ROUTE_TABLE_REG, 0))
    return Miss(msg.match["in_port"], vni, frame.ip_dst, False, frame.eth_dst)


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
        self.services = vpc_services.VpcServices()     # DHCP and the .2 resolver
        self.lock = threading.RLock()           # the inventory, the caches, the pending requests
        self.datapaths: dict[int, object] = {}
        self.outboxes: dict[int, Outbox] = {}
        self.cached: dict[int, RouterCache] = defaultdict(
            lambda: RouterCache(self.inventory.topology.max_entries))
        self.counters: Counter = Counter()
        self.router_counters: dict[int, Counter] = defaultdict(Counter)
        self.pending: dict[tuple[int, int], Pending] = {}    # (dpid, xid) -> what we wait for
        self.stats_parts: dict[tuple[int, int], list] = defaultdict(list)
        self.event_log.write("service_started", mappings=len(self.inventory.table()),
                             mode=topology.mapping_mode)
        # classroom exercises: a learner's code in place of one part of the service
        self.learner = learner_arp.LearnerHook.for_lab(self)     # 02: the ARP answer
        self.tunnel = LearnerTunnel.for_lab(self)                 # 03: the tunnel
        self.mover = LearnerMove.for_lab(self)                    # 05: invalidation after a move
        self.source_check = LearnerReceiveCheck.for_lab(self)     # 06: the receive check
        threading.Thread(target=self._housekeeping, name="vpclab-housekeeping", daemon=True).start()
        api.serve(self, self.state_dir / "mapping.sock")

    # -- connection and resynchronisation ------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def router_connected(self, ev):
        datapath = ev.msg.datapath
        if self.tunnel is not None:     # a learner's tunnel is asked before the lock is taken
            self._tunnel_answers(datapath.id)
        with self.lock:
            router = self.inventory.routers().get(datapath.id)
            if router is None:
                self.logger.warning("unknown datapath %016x connected; ignoring it", datapath.id)
                return
            self._forget_router(datapath.id)
            self.cached.pop(datapath.id, None)       # read again from the router (resync)
            self.datapaths[datapath.id] = datapath
            self.outboxes[datapath.id] = Outbox(datapath, datapath.close)
            out = []
            if router.eni_option:    # the option's TLV map first: flows that name it need it
                out.append(ofmsg.serialized(datapath, geneve_option.tlv_map_add(datapath)))
            if router.metered:       # meters first: flows that name a missing meter are refused
                for meter in [TUNNEL_PORT] + [port.ofport for port in router.ports]:
                    out.append(ofmsg.serialized(datapath, ofmsg.meter_add(datapath, meter, router.miss_rate)))
            flows = static_flows(router, self.inventory.table())
            out += self.flow_messages(datapath, router, flows, self.inventory.table())   # ADD: no gap
            out.append(self._request(datapath, ofmsg.flow_stats(datapath), "resync"))
            self.outboxes[datapath.id].put(out)
            if router.on_demand:   # encode now what this router may ask for, so misses are fast
                for flow in preload_flows(router, self.inventory.table(), router.idle_timeout):
                    self.encoder.encode(datapath, flow)
        self.event_log.write("router_connected", host=router.host, dpid=datapath.id, flows=len(flows))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def flow_stats(self, ev):
        self._multipart(ev.msg)

    def _multipart(self, msg) -> None:
        key = (msg.datapath.id, msg.xid)
        with self.lock:
            request = self.pending.get(key)
            if request is None:
                self.stats_parts.pop(key, None)      # nobody waits for it any more
                return
            self.stats_parts[key] += msg.body
            if msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE:
                return
            body = self.stats_parts.pop(key)
            del self.pending[key]
        if request.kind == "resync":
            self._resync(msg.datapath, body)
        elif request.kind == "recency":
            self._refresh_recency(msg.datapath.id, body)
        request.body.extend(body)
        request.ok = True
        request.done.set()

    def _resync(self, datapath, body) -> None:
        installed = [InstalledFlow(s.table_id, s.priority, s.cookie, dict(s.match.items()),
                                   ofmsg.installed_instructions(s.instructions)) for s in body]
        with self.lock:
            if self.datapaths.get(datapath.id) is not datapath:
                return                                  # gone (or replaced) meanwhile
            router = self.inventory.routers()[datapath.id]
            stale, kept = reconcile(router, self.inventory.table(), installed)
            out = self._encode_ops(datapath, router, RouterOps(delete=stale), self.inventory.table())
            tables = defaultdict(set)
            for flow in installed:
                tables[flow.cookie].add(flow.table)
            cache = self.cached[datapath.id]
            for cookie in sorted(kept):
                cache.add(cookie, tables[cookie])
            out += self._evictions(datapath)
            out.append(self._request(datapath, ofmsg.barrier(datapath), "ready"))
            self.outboxes[datapath.id].put(out)
        self.event_log.write("router_resynced", host=router.host, removed=len(stale),
                             kept_cached=len(kept))

    @set_ev_cls(ofp_event.EventOFPBarrierReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def barrier_reply(self, ev):
        with self.lock:
            request = self.pending.pop((ev.msg.datapath.id, ev.msg.xid), None)
        if request is None:
            return
        if request.kind == "ready":
            self.event_log.write("router_ready", host=self._host(ev.msg.datapath.id),
                                 dpid=ev.msg.datapath.id)
        request.ok = True
        request.done.set()

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def router_gone(self, ev):
        with self.lock:
            if self.datapaths.get(ev.datapath.id) is ev.datapath:
                self._forget_router(ev.datapath.id)
                self.event_log.write("router_disconnected", host=self._host(ev.datapath.id),
                                     dpid=ev.datapath.id)

    def _forget_router(self, dpid: int) -> None:
        """A router's connection ended (or is replaced): its sender and its requests. What
        it caches is kept as last known (a change while it is away may concern it)."""
        self.datapaths.pop(dpid, None)
        outbox = self.outboxes.pop(dpid, None)
        if outbox is not None:
            outbox.close()
        for key in [k for k in self.pending if k[0] == dpid]:
            self.pending.pop(key).done.set()           # waiters see it unanswered
        for key in [k for k in self.stats_parts if k[0] == dpid]:
            del self.stats_parts[key]

    # -- misses: the mapping service answering -------------------------------------
    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        received, start = time.time(), time.perf_counter()
        msg = ev.msg
        datapath = msg.datapath
        if vpc_services.is_service(msg.table_id, msg.data) and self._answer_service(msg):
            return                              # DHCP, or DNS to the VPC's .2: answered here
        miss = miss_from_packet_in(msg)         # the frame alone: no lock needed
        if miss is None:
            return
        with self.lock:
            router = self.inventory.routers().get(datapath.id)
            outbox = self.outboxes.get(datapath.id)
            if router is None or outbox is None:
                return
            table = self.inventory.table()
            if miss.is_arp and self.learner is not None:
                port, vpc = router.port_by_number(miss.in_port), self._vpc_name(miss.vni)
        if miss.is_arp and self.learner is not None:
            if port is not None and vpc is not None:
                self.learner.answer(datapath, router, miss, msg.data, vpc, table)
            return
        verdict = None          # a learner's code is asked outside the lock
        if miss.tun_src is not None and self.source_check is not None:
            verdict = self.source_check.accepts(router, miss, table)
        if self.tunnel is not None:     # its answers are kept: asked again under the lock, known
            self.tunnel.rewrite(router, self._decide(router, miss, table, verdict).flows, table)
        with self.lock:
            table = self.inventory.table()
            decision = self._decide(router, miss, table, verdict)
            out = self.flow_messages(datapath, router, decision.flows, table)
            for cookie in {f.cookie for f in decision.flows}:
                self.cached[datapath.id].add(cookie, {f.table for f in decision.flows if f.cookie == cookie})
            out += self._evictions(datapath)
            answer = self._arp_answer(datapath, miss, decision, msg.data)
            if answer is not None:          # the VM's reply first, then the router's entry
                out.insert(0, answer)
            elif decision.resubmit:
                out.append(ofmsg.packet_out(datapath, miss.in_port, OFPP_TABLE, msg.data))
            elif decision.output is not None:
                out.append(ofmsg.packet_out(datapath, OFPP_CONTROLLER, decision.output, msg.data))
            outbox.put(out)
            if decision.refused:
                self.router_counters[datapath.id]["receive_check_failed"] += 1
            self.counters["lookups"] += 1
            self.counters["answers" if decision.mapping else "unknown"] += 1
            self.router_counters[datapath.id]["misses"] += 1
            if decision.mapping is None:
                self.router_counters[datapath.id]["unknown"] += 1
        if decision.refused:
            self.event_log.write("receive_check_failed", host=router.host, vni=miss.vni,
                                 claimed_source=str(miss.target), outer_source=str(miss.tun_src))
        self.event_log.write_soon("miss", at=received, host=router.host, vni=miss.vni,
                                  target=str(miss.target), arp=miss.is_arp,
                                  outer_source=str(miss.tun_src) if miss.tun_src else None,
                                  source_eni_key=miss.source_key,
                                  answer=decision.mapping.mac if decision.mapping else None,
                                  reason=decision.reason, flows_installed=len(decision.flows),
                                  handled_us=round((time.perf_counter() - start) * 1e6))

    def _answer_service(self, msg) -> bool:
        """A VM's DHCP message or DNS query to the VPC's .2: the answer, out of its port.
        False: not one of ours (DNS routed elsewhere, a route miss to decide as any other)."""
        datapath, in_port = msg.datapath, msg.match["in_port"]
        with self.lock:
            router = self.inventory.routers().get(datapath.id)
            outbox = self.outboxes.get(datapath.id)
            topology = self.inventory.topology
        if router is None or outbox is None:
            return True
        if not self.services.ours(topology, router, in_port, msg.table_id, msg.data):
            return False
        answer = self.services.answer(topology, router, in_port, msg.table_id, msg.data)
        if answer is not None:
            with self.lock:         # the datapath's xids are taken under the lock
                outbox.put([ofmsg.packet_out(datapath, OFPP_CONTROLLER, in_port, answer.frame)])
            self.event_log.write_soon(answer.event, host=router.host, **answer.fields)
        return True

    def _arp_answer(self, datapath, miss: Miss, decision: Decision, request: bytes) -> bytes | None:
        """An ARP request for a known target, answered by the service itself with the
        reply the entry's ARP flow gives (ryu_apps.arp_reply), so the VM need not wait
        for the router to install the entry and re-run the request. None: resubmit it."""
        if not (miss.is_arp and decision.resubmit and decision.mapping) or self.tunnel is not None:
            return None
        flow = next((f for f in decision.flows if f.table == ARP and f.actions
                     and f.match.get("arp_tpa") == str(miss.target)), None)
        answered = arp_reply.reply(request, miss.in_port, flow.actions) if flow else None
        if answered is None:
            return None
        port, reply = answered
        return ofmsg.packet_out(datapath, OFPP_CONTROLLER, port, reply)

    def _decide(self, router: Router, miss: Miss, table, verdict: bool | None) -> Decision:
        """What to do with a miss; with a learner's tunnel, a verified packet from the tunnel
        goes where its deliver says (wherever the service would have sent it)."""
        decision = decide_miss(router, miss, table) if verdict is None else \
            decide_verdict(router, miss, table, verdict)
        if self.tunnel is None:
            return decision
        if miss.tun_src is not None and not decision.refused and decision.mapping is not None:
            decision = replace(decision, output=self.tunnel.port(
                router, miss.vni, miss.destination, miss.eth_dst))
        return decision

    def _tunnel_answers(self, dpid: int) -> None:
        """Ask a learner's tunnel what a (re)connecting router's flows need, outside the lock
        (its answers are kept, so building the flows under the lock asks nothing)."""
        inventory = self.inventory
        router = inventory.routers().get(dpid)
        if router is not None:
            self.tunnel.rewrite(router, static_flows(router, inventory.table()), inventory.table())

    def flow_messages(self, datapath, router: Router, flows: list[Flow], table) -> list[bytes]:
        """Flow-mods ready to send (under the lock), with a learner's tunnel if it has one.
        `table`: the mapping table the flows were built from (during a change, the new one)."""
        if self.tunnel is not None:
            flows = self.tunnel.rewrite(router, flows, table)
        return [self.encoder.message(datapath, flow) for flow in flows]

    def _vpc_name(self, vni: int) -> str | None:
        return next((v.name for v in self.inventory.topology.vpcs.values() if v.vni == vni), None)

    def _evictions(self, datapath) -> list[bytes]:
        """Past the router's bound, the least recently used entries go (messages to send)."""
        out = []
        for cookie in self.cached[datapath.id].over_bound():
            out.append(ofmsg.serialized(datapath, ofmsg.delete_cookie(datapath, cookie)))
            self.router_counters[datapath.id]["evictions"] += 1
        return out

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def flow_removed(self, ev):
        msg = ev.msg
        with self.lock:
            cache = self.cached.get(msg.datapath.id)
            if cache is not None and cache.removed(msg.cookie, msg.table_id):
                self.router_counters[msg.datapath.id]["expired"] += 1

    # -- changes (called from API threads) ------------------------------------------
    def apply(self, what: str, change) -> dict:
        """Apply an inventory change to every affected router; return once all confirmed
        (or the wait ran out). A router that is not connected is affected but unconfirmed:
        it gets the change when it reconnects (resync)."""
        started = time.monotonic()
        with self.lock:
            old = self.inventory
            new = change(old)                      # InventoryError: refused, nothing changed
            shares = self._plan_change(old, new)   # any error: nothing sent, nothing changed
            self.inventory = new
            new.save(self.state_dir / "mappings.json")
            self.counters["changes"] += 1
            waits = {s.host: self._commit(s) for s in shares if s.connected}
        unconfirmed = {s.host: "not connected (it gets the change when it reconnects)"
                       for s in shares if not s.connected}
        deadline = time.monotonic() + BARRIER_TIMEOUT
        for share in shares:
            for xid, request in zip(share.barriers, waits.get(share.host, [])):
                if not (request.done.wait(max(0.0, deadline - time.monotonic())) and request.ok):
                    unconfirmed[share.host] = f"no confirmation within {BARRIER_TIMEOUT:.0f} s"
                    with self.lock:
                        self.pending.pop((share.dpid, xid), None)
        touched = {s.host: {"added": len(s.ops.add), "deleted": len(s.ops.delete),
                            "invalidated": len(s.invalidated)} for s in shares}
        converged_ms = round((time.monotonic() - started) * 1000, 3)
        self.event_log.write("change", what=what, converged_ms=converged_ms, routers=touched,
                             late=sorted(unconfirmed))
        return {"ok": not unconfirmed, "change": what, "converged_ms": converged_ms,
                "routers": touched, "unconfirmed": sorted(unconfirmed),
                "unconfirmed_why": unconfirmed}

    def _plan_change(self, old: Inventory, new: Inventory) -> list[RouterChange]:
        """Every affected router's operations, encoded for the connected ones: its own,
        confirmed by a barrier, then a learner's messages for a move (exercise 05)."""
        shares = []
        old_routers, new_routers = old.routers(), new.routers()
        old_table, new_table = old.table(), new.table()
        moved = moved_mappings(old_table, new_table) if self.mover is not None else []
        steps = self.mover.steps(
            moved, {r.host: list(self.cached[d]) for d, r in old_routers.items()},
            {old_routers[d].host for d in self.datapaths if d in old_routers}) if moved else None
        learners = {mapping_cookie(a.vni, a.ip) for _, a in moved} if steps is not None else set()
        drops = moved_drops(moved) if steps is not None else set()
        for dpid, router in new_routers.items():
            ops = change_ops(old_routers[dpid], router, old_table, new_table, set(self.cached[dpid]))
            ops.invalidate = [c for c in ops.invalidate if c not in learners]
            # a receive-check drop of the moved entry goes only where one is held: a router
            # that holds none gets nothing of ours, and only the learner's barrier confirms it
            ops.forget = [c for c in ops.forget if c not in drops or c in self.cached[dpid]]
            mine = [s for s in steps or [] if s.router == router.host]
            if not ops and not mine:
                continue
            datapath = self.datapaths.get(dpid)
            if datapath is None:
                shares.append(RouterChange(dpid, router.host, ops, [], [], False, mine))
                continue
            messages, barriers = self._encode_ops(datapath, router, ops, new_table), []
            for step in ([None] if ops else []) + mine:          # None: the service's own barrier
                if step is not None and step.message == "invalidate":
                    messages.append(ofmsg.serialized(datapath, ofmsg.delete_cookie(datapath, step.cookie)))
                    continue
                xid, buf = ofmsg.encoded(datapath, ofmsg.barrier(datapath))
                messages.append(buf)
                barriers.append(xid)
            shares.append(RouterChange(dpid, router.host, ops, messages, barriers, True, mine))
        return shares

    def _commit(self, share: RouterChange) -> list[Pending]:
        """Send one connected router its share; what to wait on for its confirmation."""
        requests = []
        for xid in share.barriers:
            requests.append(Pending("change", time.monotonic() + BARRIER_TIMEOUT))
            self.pending[(share.dpid, xid)] = requests[-1]
        cache = self.cached[share.dpid]
        for cookie in share.invalidated + share.ops.forget:
            cache.discard(cookie)
        self.router_counters[share.dpid]["invalidations"] += len(share.invalidated)
        self.outboxes[share.dpid].put(share.messages)
        return requests

    def _encode_ops(self, datapath, router: Router, ops: RouterOps, table) -> list[bytes]:
        rate = self.inventory.topology.miss_rate
        msgs = [ofmsg.meter_add(datapath, meter, rate) for meter in ops.meters_add]
        out = [ofmsg.serialized(datapath, m) for m in msgs]
        out += self.flow_messages(datapath, router, ops.add, table)
        msgs = [ofmsg.delete_strict(datapath, table, priority, dict(match))
                for table, priority, match in ops.delete]
        msgs += [ofmsg.delete_cookie(datapath, cookie) for cookie in ops.invalidate + ops.forget]
        msgs += [ofmsg.meter_delete(datapath, meter) for meter in ops.meters_delete]
        return out + [ofmsg.serialized(datapath, m) for m in msgs]

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

    def _request(self, datapath, msg, kind: str) -> bytes:
        """Encode a request whose answer is awaited; register it (under the lock)."""
        xid, buf = ofmsg.encoded(datapath, msg)
        self.pending[(datapath.id, xid)] = Pending(kind, time.monotonic() + BARRIER_TIMEOUT)
        return buf

    def _host(self, dpid: int) -> str:
        router = self.inventory.routers().get(dpid)
        return router.host if router else str(dpid)

    # -- housekeeping: bounded tables, cache recency ------------------------------------
    def _housekeeping(self) -> None:
        while True:
            time.sleep(HOUSEKEEPING_INTERVAL)
            try:
                self._expire_requests(time.monotonic())
                self._poll_recency()
            except Exception:                      # never let the loop die silently
                self.logger.exception("housekeeping failed")

    def _expire_requests(self, now: float) -> None:
        """Requests no router answered in time are forgotten (their waiters saw the timeout)."""
        with self.lock:
            for key in [k for k, p in self.pending.items() if p.deadline + BARRIER_TIMEOUT < now]:
                self.pending.pop(key).done.set()
            for key in [k for k in self.stats_parts if k not in self.pending]:
                del self.stats_parts[key]

    def _poll_recency(self) -> None:
        """Ask busy caches' routers for their entries' packet counters: the service sees
        misses, not hits, and eviction must spare the entries in use."""
        with self.lock:
            bound = self.inventory.topology.max_entries
            for dpid, datapath in self.datapaths.items():
                cache = self.cached.get(dpid)
                if cache is None or len(cache) < max(1, bound // 2) or \
                        any(k[0] == dpid and p.kind == "recency" for k, p in self.pending.items()):
                    continue
                request = ofmsg.flow_stats(datapath, mappings_only=True)
                self.outboxes[dpid].put([self._request(datapath, request, "recency")])

    def _refresh_recency(self, dpid: int, body) -> None:
        packets: Counter = Counter()
        for stat in body:
            packets[stat.cookie] += stat.packet_count
        with self.lock:
            cache = self.cached.get(dpid)
            if cache is not None:
                cache.refresh(dict(packets))

    # -- statistics -------------------------------------------------------------------
    def stats(self) -> dict:
        asked = {dpid: self._ask_all(dpid) for dpid in self.inventory.routers()}
        routers = {}
        for dpid, router in self.inventory.routers().items():
            hits, failed, limited = (self._answer(request) for request in asked[dpid])
            routers[router.host] = {
                "connected": dpid in self.datapaths,
                "cached_entries": len(self.cached.get(dpid, ())) if router.on_demand else None,
                "queued": len(self.outboxes[dpid]) if dpid in self.outboxes else None,
                "hits": None if hits is None else
                sum(s.packet_count for s in hits if s.table_id == FORWARD),
                "misses_limited": None if limited is None or not router.on_demand else
                sum(b.packet_band_count for m in limited for b in m.band_stats),
                "receive_check_failed": None if failed is None else
                self.router_counters[dpid]["receive_check_failed"] + sum(s.packet_count for s in failed),
                **{k: self.router_counters[dpid][k]
                   for k in ("misses", "unknown", "invalidations", "evictions", "expired")},
            }
        return {"service": {"mappings": len(self.inventory.table()),
                            **{k: self.counters[k] for k in ("lookups", "answers", "unknown", "changes")},
                            "pending_requests": len(self.pending),
                            "partial_replies": len(self.stats_parts)},
                "routers": routers}

    @staticmethod
    def _answer(request: Pending | None) -> list | None:
        if request is None or not request.done.wait(BARRIER_TIMEOUT) or not request.ok:
            return None
        return request.body

    def _ask_all(self, dpid: int) -> list[Pending | None]:
        """The three counters' requests to one router, sent at once (answered in parallel)."""
        with self.lock:
            datapath = self.datapaths.get(dpid)
            if datapath is None:
                return [None, None, None]
            requests = [ofmsg.flow_stats(datapath, mappings_only=True),
                        ofmsg.flow_stats(datapath, cookie_kind=COOKIE_CHECK_FAILED),
                        ofmsg.meter_stats(datapath)]
            out, waits = [], []
            for request in requests:
                out.append(self._request(datapath, request, "reply"))
                waits.append(self.pending[(dpid, request.xid)])
            self.outboxes[dpid].put(out)
        return waits

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
            cookies = list(self.cached.get(dpid, ()))
            entries = [table.lookup(*decode_cookie(c)) for c in cookies
                       if c & COOKIE_KIND_MASK == COOKIE_MAPPING]
            out[router.host] = {"mode": "on-demand", "cached": len(cookies),
                                "entries": [m.to_json() for m in entries if m]}
        return out
