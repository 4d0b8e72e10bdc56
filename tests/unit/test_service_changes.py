"""The mapping service's change path without a switch: os-ken's real message codec, a
stand-in connection that records what would be sent. All or nothing, and a router that
goes away leaves no request behind."""
import dataclasses
import threading
from types import SimpleNamespace

import pytest
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from ryu_apps import mapping_service, ofmsg
from ryu_apps.mapping_service import MappingService, Pending
from vpclab.router.cache import RouterCache
from vpclab.router.events import EventLog
from vpclab.router.inventory import Inventory


class Datapath:
    ofproto, ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser

    def __init__(self, dpid):
        self.id, self.xid = dpid, 0

    def set_xid(self, msg):
        self.xid += 1
        msg.set_xid(self.xid)
        return self.xid


class Outbox:
    def __init__(self):
        self.sent = []

    def put(self, messages):
        self.sent += messages

    def close(self):
        pass

    def __len__(self):
        return 0


def service(topology, tmp_path) -> MappingService:
    """The service's state as __init__ builds it, minus the listener and the API."""
    svc = MappingService.__new__(MappingService)
    svc.state_dir, svc.inventory = tmp_path, Inventory.from_topology(topology)
    svc.event_log, svc.encoder = EventLog(tmp_path / "events.jsonl"), ofmsg.FlowEncoder()
    svc.lock = threading.RLock()
    svc.datapaths = {dpid: Datapath(dpid) for dpid in svc.inventory.routers()}
    svc.outboxes = {dpid: Outbox() for dpid in svc.datapaths}
    svc.cached = mapping_service.defaultdict(lambda: RouterCache(16))
    svc.counters, svc.router_counters = mapping_service.Counter(), mapping_service.defaultdict(
        mapping_service.Counter)
    svc.pending, svc.stats_parts = {}, mapping_service.defaultdict(list)
    svc.learner = svc.tunnel = svc.mover = svc.source_check = None   # the service's own parts
    return svc


def test_a_change_that_fails_to_encode_touches_no_router(multi_vpc, tmp_path):
    """An ENI key the wire cannot carry (port 1: key -99) fails while encoding host2's
    share (its Geneve option), after host1's was computed: none is sent, nothing changes."""
    svc = service(dataclasses.replace(multi_vpc, mapping_mode="preload"), tmp_path)
    before = svc.inventory

    def bad_add(inv: Inventory) -> Inventory:      # what the inventory's checks now refuse
        raw = inv.add("X", {"vpc": "ZIGI-VPC1", "host": "host1", "ip": "10.0.0.9"})
        return Inventory(raw.topology, {**raw.ports, "X": 1})

    with pytest.raises(OverflowError):
        svc.apply("add X", bad_add)
    assert all(box.sent == [] for box in svc.outboxes.values())
    assert svc.inventory is before and not (tmp_path / "mappings.json").exists()
    assert svc.pending == {}


def test_a_disconnected_router_is_named_unconfirmed(multi_vpc, tmp_path, monkeypatch):
    monkeypatch.setattr(mapping_service, "BARRIER_TIMEOUT", 0.01)
    svc = service(multi_vpc, tmp_path)
    del svc.datapaths[1], svc.outboxes[1]          # host1 is away
    result = svc.apply("move", lambda inv: inv.move("ZIGI-VM2", "host3"))
    assert "host1" in result["unconfirmed"] and not result["ok"]
    assert "not connected" in result["unconfirmed_why"]["host1"]
    assert svc.pending == {}                       # the timed-out barriers were forgotten


def test_a_router_that_goes_away_leaves_no_request_behind(multi_vpc, tmp_path):
    svc = service(multi_vpc, tmp_path)
    waiting = Pending("reply", 0.0)
    svc.pending = {(3, 7): waiting, (3, 8): Pending("recency", 0.0), (1, 7): Pending("ready", 1e12)}
    svc.stats_parts[(3, 7)].append("part")
    svc.router_gone(SimpleNamespace(datapath=svc.datapaths[3]))
    assert list(svc.pending) == [(1, 7)] and not svc.stats_parts
    assert waiting.done.is_set() and not waiting.ok      # its waiter stops waiting, unanswered
    svc._expire_requests(now=1e6)                        # and on timeout
    assert list(svc.pending) == [(1, 7)]
    svc._expire_requests(now=2e12)
    assert svc.pending == {}
