"""Exercise 06's receive check: a learner's check_source verdict is a bool or nothing (dropped:
a receive check fails closed); the service carries a verdict out as its own check would
(accepted: delivered to the local VM, the source cached only if the claim is true; refused:
dropped, the claim remembered briefly, counted); and the hook runs the learner's real code
(vpclab.sandbox: as this user, or `nobody` under root), telling every call in events."""
import dataclasses
import json
from ipaddress import IPv4Address
from types import SimpleNamespace

import pytest

from os_ken.lib.packet import ethernet, ipv4, packet
from os_ken.ofproto import ofproto_v1_3

from ryu_apps.learner_check import LearnerReceiveCheck, arrival_argument, parse_verdict
from ryu_apps.learner_part import BadAnswer
from tests.unit.test_service_changes import service
from vpclab.router.events import EventLog
from vpclab.router.inventory import Inventory
from vpclab.learner import learner_record, write_learner
from vpclab.router.pipeline import (
    CHECK, COOKIE_CHECK_FAILED, COOKIE_KIND_MASK, PRIO_NEGATIVE, Miss, check_failed_cookie,
    decide_verdict, entry_flows,
)
from vpclab.sandbox import LearnerCode
from vpclab.model.topology import NEGATIVE_TTL

SOLUTION = '''
def check_source(router, arrival, mappings):
    sender = next((m for m in mappings
                   if m["vni"] == arrival["vni"] and m["ip"] == arrival["src_ip"]), None)
    if sender is None:
        return False
    return sender["host_ip"] == arrival["outer_src"]
'''

HOST1, HOST2, HOST3 = (IPv4Address(f"192.168.100.{n}") for n in (1, 2, 3))
VM1, VM2, VM3 = (IPv4Address(a) for a in ("10.0.0.148", "10.0.0.185", "10.0.0.20"))


@pytest.fixture
def vxlan(multi_vpc):
    """multi-vpc over VXLAN: ZIGI-VM1 and ZIGI-VM3 on host1, ZIGI-VM2 on host2; ZIGI-VPC2
    has the same addresses (OTHER-VM1 on host1, OTHER-VM2 on host2)."""
    return dataclasses.replace(multi_vpc, encap="vxlan")


def routers(topology):
    inventory = Inventory.from_topology(topology)
    by_host = {r.host: r for r in inventory.routers().values()}
    return by_host, inventory.table()


def tunnelled(router, table, source, outer, destination=VM2, vni=1001) -> Miss:
    """A tunnelled packet at `router` claiming `source`, from the host at `outer`."""
    dst = table.lookup(vni, destination)
    claimed = table.lookup(vni, source)
    return Miss(in_port=0xfffe, vni=vni, target=source, is_arp=False, eth_dst=dst.mac,
                tun_src=outer, destination=destination,
                eth_src=claimed.mac if claimed else "02:00:00:00:00:99")


# -- the verdict -----------------------------------------------------------------------------
def test_a_verdict_is_a_bool_and_nothing_else():
    assert parse_verdict(True) is True and parse_verdict(False) is False
    for answer in (1, 0, None, "yes", "False", [True], {"accepted": True}):
        with pytest.raises(BadAnswer, match="returns True .deliver the packet. or False .drop it., not"):
            parse_verdict(answer)


# -- the service carries it out ----------------------------------------------------------------
def test_refused_is_dropped_and_the_claim_remembered_briefly(vxlan):
    by_host, table = routers(vxlan)
    miss = tunnelled(by_host["host2"], table, VM1, HOST3)
    decision = decide_verdict(by_host["host2"], miss, table, False)
    assert decision.mapping is None and decision.output is None and not decision.resubmit
    [drop] = decision.flows
    assert drop.table == CHECK and drop.priority == PRIO_NEGATIVE and drop.actions == ()
    assert drop.cookie == check_failed_cookie(1001, VM1)
    assert drop.cookie & COOKIE_KIND_MASK == COOKIE_CHECK_FAILED
    assert drop.hard_timeout == NEGATIVE_TTL
    assert drop.match["tun_ipv4_src"] == str(HOST3) and drop.match["ipv4_src"] == str(VM1)
    # a refused TRUE claim is dropped just the same: the learner decides
    honest = decide_verdict(by_host["host2"], tunnelled(by_host["host2"], table, VM1, HOST1),
                            table, False)
    assert honest.output is None and honest.flows[0].match["tun_ipv4_src"] == str(HOST1)
    assert decision.refused and honest.refused           # counted as receive-check failures


def test_an_accepted_true_claim_is_delivered_and_its_source_cached_with_its_host(vxlan):
    by_host, table = routers(vxlan)
    host2 = by_host["host2"]
    decision = decide_verdict(host2, tunnelled(host2, table, VM1, HOST1), table, True)
    source = table.lookup(1001, VM1)
    assert decision.mapping == source
    assert decision.output == host2.port_of(table.lookup(1001, VM2))   # to ZIGI-VM2's port
    assert decision.flows == entry_flows(host2, source, host2.idle_timeout)
    checks = [f for f in decision.flows if f.table == CHECK]
    assert checks and all(f.match["tun_ipv4_src"] == str(HOST1) for f in checks)


def test_an_accepted_false_claim_is_delivered_but_never_cached(vxlan):
    by_host, table = routers(vxlan)
    host2 = by_host["host2"]
    forged = decide_verdict(host2, tunnelled(host2, table, VM1, HOST3), table, True)
    assert forged.flows == [] and forged.output is not None       # the learner's mistake shows
    # ZIGI-VM2 lives on host2 itself: a packet claiming it from the tunnel is not cached either
    local = decide_verdict(host2, tunnelled(host2, table, VM2, HOST2), table, True)
    assert local.flows == []
    # an address no VM of the VPC has: delivered (the learner said so), nothing cached
    nobody = decide_verdict(host2, tunnelled(host2, table, IPv4Address("10.0.0.99"), HOST3),
                            table, True)
    assert nobody.flows == [] and nobody.mapping is None and nobody.output is not None
    assert not (forged.refused or nobody.refused)        # delivered: no receive-check failure


def test_the_learner_sees_the_packet_as_the_router_read_it(vxlan):
    by_host, table = routers(vxlan)
    miss = tunnelled(by_host["host2"], table, VM1, HOST3)
    assert arrival_argument(miss) == {
        "vni": 1001, "outer_src": "192.168.100.3", "src_ip": "10.0.0.148",
        "src_mac": table.lookup(1001, VM1).mac, "dst_ip": "10.0.0.185",
        "dst_mac": table.lookup(1001, VM2).mac}


# -- the hook, with the learner's real code running -------------------------------------------
def hooked(topology, tmp_path, source: str, call_timeout: float = 2.0):
    tmp_path.mkdir(exist_ok=True)
    svc = SimpleNamespace(state_dir=tmp_path, inventory=Inventory.from_topology(topology),
                          event_log=EventLog(tmp_path / "events.jsonl"))
    code = LearnerCode(source, "receive_check.py", call_timeout=call_timeout).start()
    return svc, LearnerReceiveCheck(svc, code)


def ask(svc, hook, source, outer, router="host2"):
    by_host = {r.host: r for r in svc.inventory.routers().values()}
    table = svc.inventory.table()
    verdict = hook.accepts(by_host[router], tunnelled(by_host[router], table, source, outer), table)
    events = [e for e in svc.event_log.read() if e["event"].startswith("learner_")]
    return verdict, events


def test_the_solution_accepts_the_true_sender_and_refuses_the_rogue(vxlan, tmp_path):
    svc, hook = hooked(vxlan, tmp_path, SOLUTION)
    try:
        assert ask(svc, hook, VM1, HOST1)[0] is True
        verdict, events = ask(svc, hook, VM1, HOST3)
        assert verdict is False
        called, answer = events[-2:]
        assert called == {**called, "event": "learner_called", "function": "check_source",
                          "host": "host2", "claimed_source": "10.0.0.148",
                          "outer_source": "192.168.100.3", "vni": 1001}
        assert answer["event"] == "learner_answer" and answer["function"] == "check_source"
        assert answer["accepted"] is False and answer["outer_source"] == "192.168.100.3"
        # ZIGI-VPC2 has 10.0.0.148 too (OTHER-VM1, on host1): in VNI 1002 it is that one's
        assert ask(svc, hook, VM3, HOST1)[0] is True
    finally:
        hook.close()


def test_the_learner_gets_the_receiving_router_the_arrival_and_every_mapping(vxlan, tmp_path):
    show = ("import json\n"
            "def check_source(router, arrival, mappings):\n"
            "    print(json.dumps([router, arrival, mappings]))\n"
            "    return True\n")
    svc, hook = hooked(vxlan, tmp_path, show)
    try:
        verdict, events = ask(svc, hook, VM1, HOST3)
    finally:
        hook.close()
    assert verdict is True and events[-1]["accepted"] is True
    router, arrival, mappings = json.loads(events[-1]["output"])
    assert router["host"] == "host2" and router["underlay_ip"] == "192.168.100.2"
    assert {(p["vpc"], p["ip"]) for p in router["ports"]} == {
        ("ZIGI-VPC1", "10.0.0.185"), ("ZIGI-VPC2", "10.0.0.185"), ("ZIGI-VPC3", "172.16.0.11")}
    assert all(isinstance(p["port"], int) and p["host"] == "host2" for p in router["ports"])
    assert arrival["outer_src"] == "192.168.100.3" and arrival["src_ip"] == "10.0.0.148"
    vm1 = next(m for m in mappings if m["vpc"] == "ZIGI-VPC1" and m["ip"] == "10.0.0.148")
    assert vm1["host"] == "host1" and vm1["host_ip"] == "192.168.100.1" and vm1["vni"] == 1001
    assert len(mappings) == len(vxlan.vms)


@pytest.mark.parametrize("body, says, kind", [
    ("    print('checking', arrival['src_ip'])\n    return 1 / 0\n", "ZeroDivisionError",
     "ZeroDivisionError"),
    ("    print('checking', arrival['src_ip'])\n    return 'yes'\n",
     "returns True (deliver the packet) or False (drop it), not 'yes'", "BadAnswer"),
    ("    print('checking', arrival['src_ip'])\n    return None\n", "not None", "BadAnswer"),
    ("    print('checking', arrival['src_ip'])\n    return 1\n", "not 1", "BadAnswer"),
])
def test_a_failed_call_or_a_non_bool_drops_the_packet_with_a_learner_error(
        vxlan, tmp_path, body, says, kind):
    svc, hook = hooked(vxlan, tmp_path, "def check_source(router, arrival, mappings):\n" + body)
    try:
        verdict, events = ask(svc, hook, VM1, HOST1)          # even a true claim: fails closed
    finally:
        hook.close()
    assert verdict is False
    error = events[-1]
    assert error["event"] == "learner_error" and error["function"] == "check_source"
    assert says in error["message"] and error["kind"] == kind
    assert error["output"] == "checking 10.0.0.148\n" and error["claimed_source"] == "10.0.0.148"
    assert not [e for e in events if e["event"] == "learner_answer"]


def test_a_hanging_check_drops_the_packet_and_the_next_call_runs_again(vxlan, tmp_path):
    source = ("def check_source(router, arrival, mappings):\n"
              "    while arrival['src_ip'] == '10.0.0.148':\n"
              "        pass\n"
              "    return True\n")
    svc, hook = hooked(vxlan, tmp_path, source, call_timeout=0.5)
    try:
        verdict, events = ask(svc, hook, VM1, HOST1)
        assert verdict is False and events[-1]["event"] == "learner_error"
        assert events[-1]["timeout"] is True and "line 2" in events[-1]["message"]
        assert ask(svc, hook, VM3, HOST1)[0] is True            # a fresh child answers
    finally:
        hook.close()


def test_the_hook_is_loaded_only_for_a_lab_that_names_it(vxlan, tmp_path):
    svc = SimpleNamespace(state_dir=tmp_path, inventory=Inventory.from_topology(vxlan),
                          event_log=EventLog(tmp_path / "events.jsonl"))
    assert LearnerReceiveCheck.for_lab(svc) is None                  # no learner.json
    (tmp_path / "receive_check.py").write_text(SOLUTION)
    write_learner(tmp_path, learner_record({"check_source": tmp_path / "receive_check.py"}, None))
    hook = LearnerReceiveCheck.for_lab(svc)
    try:
        assert isinstance(hook, LearnerReceiveCheck) and ask(svc, hook, VM1, HOST1)[0] is True
    finally:
        hook.close()
    broken = tmp_path / "b"
    broken.mkdir()
    (broken / "receive_check.py").write_text("def check_source(router, arrival, mappings:\n")
    write_learner(broken, learner_record({"check_source": broken / "receive_check.py"}, None))
    svc.state_dir, svc.event_log = broken, EventLog(broken / "events.jsonl")
    hook = LearnerReceiveCheck.for_lab(svc)                          # said at once, and at each call
    try:
        assert [e["event"] for e in svc.event_log.read()] == ["learner_error"]
        verdict, events = ask(svc, hook, VM1, HOST1)
        assert verdict is False and "SyntaxError" in events[-1]["message"]
    finally:
        hook.close()


# -- in the service: packet_in asks it and carries the verdict out ----------------------------
def packet_in(svc, host: str, source: IPv4Address, outer: IPv4Address):
    """A tunnelled ZIGI-VPC1 packet `source` -> ZIGI-VM2 that missed host's CHECK table."""
    dpid = next(d for d, r in svc.inventory.routers().items() if r.host == host)
    table = svc.inventory.table()
    frame = packet.Packet()
    frame.add_protocol(ethernet.ethernet(dst=table.lookup(1001, VM2).mac,
                                         src=table.lookup(1001, source).mac))
    frame.add_protocol(ipv4.ipv4(src=str(source), dst=str(VM2), proto=1))
    frame.serialize()
    msg = SimpleNamespace(datapath=svc.datapaths[dpid], table_id=CHECK, data=bytes(frame.data),
                          match={"in_port": 0xfffe, "metadata": 1001, "tun_ipv4_src": str(outer)})
    svc.packet_in(SimpleNamespace(msg=msg))
    return dpid


def kinds(messages: list[bytes]) -> list[str]:
    """The OpenFlow message types sent (the header's second byte)."""
    names = {ofproto_v1_3.OFPT_FLOW_MOD: "flow_mod", ofproto_v1_3.OFPT_PACKET_OUT: "packet_out"}
    return [names.get(m[1], str(m[1])) for m in messages]


def test_packet_in_asks_the_learner_and_carries_its_verdict_out(vxlan, tmp_path):
    svc = service(vxlan, tmp_path)
    svc.source_check = hooked(vxlan, tmp_path, SOLUTION)[1]
    try:
        dpid = packet_in(svc, "host2", VM1, HOST3)                     # the rogue
        assert svc.router_counters[dpid]["receive_check_failed"] == 1
        assert kinds(svc.outboxes[dpid].sent) == ["flow_mod"]          # the drop; no packet-out
        refused = len(svc.outboxes[dpid].sent)
        packet_in(svc, "host2", VM1, HOST1)                            # the true sender
        assert svc.router_counters[dpid]["receive_check_failed"] == 1
        sent = kinds(svc.outboxes[dpid].sent[refused:])
        assert sent[-1] == "packet_out" and set(sent[:-1]) == {"flow_mod"} and len(sent) > 2
    finally:
        svc.source_check.close()
    events = list(svc.event_log.read())
    assert [e["accepted"] for e in events if e["event"] == "learner_answer"] == [False, True]
    alarms = [e for e in events if e["event"] == "receive_check_failed"]
    assert len(alarms) == 1 and alarms[0]["outer_source"] == "192.168.100.3"


def test_without_the_hook_the_service_checks_by_itself(vxlan, tmp_path):
    svc = service(vxlan, tmp_path)                                    # source_check is None
    dpid = packet_in(svc, "host2", VM1, HOST3)
    assert svc.router_counters[dpid]["receive_check_failed"] == 1
    assert not [e for e in svc.event_log.read() if e["event"].startswith("learner_")]
