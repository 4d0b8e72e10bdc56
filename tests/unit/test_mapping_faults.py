"""The mapping under faults, as plain decisions: resync judges what an entry does, a move
forgets the receive-check drops it concerns, ports are checked before anything is sent,
the cache bound counts everything and spares what is used, the event log is bounded."""
import json
from ipaddress import IPv4Address

import pytest

from vpclab.router.cache import RouterCache
from vpclab.router.events import EventLog
from vpclab.router.inventory import Inventory, InventoryError
from vpclab.results import ChangeUnconfirmed
from vpclab.router.pipeline import (
    CHECK, FORWARD, check_failed_cookie, entry_flows, mapping_cookie,
)
from vpclab.router.sync import InstalledFlow, change_ops, instructions_of, reconcile, static_flows

VM2 = mapping_cookie(1001, IPv4Address("10.0.0.185"))


def installed(flows):
    return [InstalledFlow(f.table, f.priority, f.cookie, f.match, instructions_of(f)) for f in flows]


def test_resync_removes_an_entry_whose_actions_went_stale(multi_vpc):
    """host1 cached ZIGI-VM2 on host2, missed its move to host3, reconnects: the forwarding
    entry has the same match but sends to the old host. The whole entry goes."""
    before = Inventory.from_topology(multi_vpc)
    after = before.move("ZIGI-VM2", "host3")
    router = after.routers()[1]
    vm2_old = before.table().lookup(1001, IPv4Address("10.0.0.185"))
    remote = after.table().lookup(1002, IPv4Address("10.0.0.185"))     # OTHER-VM2, unchanged
    cached = entry_flows(before.routers()[1], vm2_old, 300) + entry_flows(router, remote, 300)
    stale, kept = reconcile(router, after.table(), installed(static_flows(router, after.table()) + cached))
    assert kept == {mapping_cookie(1002, remote.ip)}
    stale_tables = {k[0] for k in stale}
    assert {FORWARD, CHECK} <= stale_tables and len(stale) == len(entry_flows(router, vm2_old))


def test_resync_judges_an_entry_by_what_it_does_not_only_what_it_matches(multi_vpc):
    """ZIGI-VM3 was local to host1 (ARP answer, forward to its port) and moved to host2
    while host1 was away: every flow still matches as before, yet forwards to a port
    that is gone. Stale."""
    before = Inventory.from_topology(multi_vpc)
    after = before.move("ZIGI-VM3", "host2")
    router = after.routers()[1]
    vm3_old = before.table().lookup(1001, IPv4Address("10.0.0.20"))
    cached = entry_flows(before.routers()[1], vm3_old, 300)
    wanted_now = {(f.table, f.priority, frozenset(f.match.items()))
                  for f in entry_flows(router, after.table().lookup(1001, vm3_old.ip))}
    assert {(f.table, f.priority, frozenset(f.match.items())) for f in cached} <= wanted_now
    stale, kept = reconcile(router, after.table(), installed(static_flows(router, after.table()) + cached))
    assert kept == set() and len(stale) == len(cached)


def test_resync_keeps_an_entry_that_is_still_right(multi_vpc):
    inv = Inventory.from_topology(multi_vpc)
    router = inv.routers()[1]
    vm2 = inv.table().lookup(1001, IPv4Address("10.0.0.185"))
    stale, kept = reconcile(router, inv.table(),
                            installed(static_flows(router, inv.table()) + entry_flows(router, vm2, 300)))
    assert stale == [] and kept == {VM2}


def test_router_reports_read_back_as_the_flows_that_made_them(multi_vpc):
    """What a router says a flow does (parsed from the wire) equals what the pipeline meant."""
    from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

    from ryu_apps import geneve_option, ofmsg
    geneve_option.register_field()

    class Datapath:
        ofproto, ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser

    inv = Inventory.from_topology(multi_vpc)
    router = inv.routers()[1]
    flows = static_flows(router, inv.table()) + [
        f for m in inv.table() for f in entry_flows(router, m, 300)]
    for flow in flows:
        parsed = []
        for inst in ofmsg.flow_mod(Datapath, flow).instructions:
            buf = bytearray()
            inst.serialize(buf, 0)
            parsed.append(ofproto_v1_3_parser.OFPInstruction.parser(bytes(buf), 0))
        assert ofmsg.installed_instructions(parsed) == instructions_of(flow), flow


def test_moves_reported_in_nxm_form_read_as_the_fields_we_sent():
    """OVS reports `move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]`, which os-ken names eth_src_nxm."""
    from os_ken.ofproto import ofproto_v1_3_parser as parser

    from ryu_apps import ofmsg
    reported = parser.OFPInstructionActions(4, [parser.NXActionRegMove(
        src_field="eth_src_nxm", dst_field="eth_dst_nxm", n_bits=48)])
    assert ofmsg.installed_instructions([reported]) == \
        frozenset({("actions", (("move", "eth_src", "eth_dst", 48, 0, 0),))})


def test_a_move_forgets_the_receive_check_drops_of_that_vm(multi_vpc):
    old = Inventory.from_topology(multi_vpc)
    new = old.move("ZIGI-VM1", "host3")
    drop = check_failed_cookie(1001, IPv4Address("10.0.0.148"))
    for dpid in (1, 2, 3):            # every router of ZIGI-VPC1, before or after
        ops = change_ops(old.routers()[dpid], new.routers()[dpid], old.table(), new.table(), set())
        assert ops.forget == ([drop] if 1001 in new.routers()[dpid].vnis else [])
    back = new.move("ZIGI-VM1", "host1")
    ops = change_ops(new.routers()[2], back.routers()[2], new.table(), back.table(), set())
    assert ops.forget == [drop] and ops.invalidate == []     # not counted as a cached entry


def test_resync_drops_a_receive_check_drop_whose_claim_became_true(multi_vpc):
    inv = Inventory.from_topology(multi_vpc)
    router = inv.routers()[2]
    match = {"metadata": 1001, "eth_type": 0x0800, "ipv4_src": "10.0.0.148"}
    cookie = check_failed_cookie(1001, IPv4Address("10.0.0.148"))
    true_now = InstalledFlow(CHECK, 50, cookie, {**match, "tun_ipv4_src": "192.168.100.1"})
    still_false = InstalledFlow(CHECK, 50, cookie, {**match, "tun_ipv4_src": "192.168.100.3"})
    stale, kept = reconcile(router, inv.table(), installed(static_flows(router, inv.table()))
                            + [true_now, still_false])
    assert stale == [(CHECK, 50, frozenset(true_now.match.items()))]
    assert kept == {cookie}            # the other one stays, and counts against the bound


@pytest.mark.parametrize("port", [1, 50, 100, 0xFF00, -5, True, "101"])
def test_a_port_that_cannot_be_a_vm_port_is_refused(multi_vpc, port):
    with pytest.raises(InventoryError, match="port"):
        Inventory.from_topology(multi_vpc).add(
            "X", {"vpc": "ZIGI-VPC1", "host": "host1", "ip": "10.0.0.9"}, port)


def test_a_vm_port_above_the_base_is_accepted_once(multi_vpc):
    inv = Inventory.from_topology(multi_vpc).add(
        "X", {"vpc": "ZIGI-VPC1", "host": "host1", "ip": "10.0.0.9"}, 0xFEFF)
    assert inv.table().lookup(1001, IPv4Address("10.0.0.9")).key == 0xFEFF - 100
    with pytest.raises(InventoryError, match="already used by X"):
        inv.add("Y", {"vpc": "ZIGI-VPC1", "host": "host1", "ip": "10.0.0.10"}, 0xFEFF)


def test_the_cache_bound_counts_every_entry_and_evicts_the_least_recent():
    cache = RouterCache(bound=3)
    for cookie in (1, 2, 3):
        cache.add(cookie, {FORWARD})
    cache.add(0x02 << 56, {FORWARD})           # a negative entry counts too
    assert cache.over_bound() == [1] and len(cache) == 3
    cache.add(2, {FORWARD})                    # asked again: most recent
    cache.add(4, {FORWARD})
    assert cache.over_bound() == [3]


def test_hits_seen_in_flow_counters_refresh_recency():
    cache = RouterCache(bound=2)
    cache.add(1, {FORWARD})
    cache.add(2, {FORWARD})
    cache.refresh({1: 5, 2: 0})                # entry 1 carried packets since the last look
    cache.add(3, {FORWARD})
    assert cache.over_bound() == [2]
    cache.refresh({1: 5, 3: 1})                # 1 idle since, 3 busy
    cache.add(4, {FORWARD})
    assert cache.over_bound() == [1]


def test_an_entry_leaves_the_cache_when_its_last_flow_expires():
    cache = RouterCache(bound=10)
    cache.add(7, {FORWARD, CHECK})
    assert not cache.removed(7, FORWARD) and 7 in cache
    assert cache.removed(7, CHECK) and 7 not in cache
    assert not cache.removed(8, FORWARD)


def test_the_event_log_rotates_and_reads_both_files_in_order(tmp_path):
    log = EventLog(tmp_path / "events.jsonl", max_bytes=400)
    for n in range(100):
        log.write("miss", n=n)
    numbers = [e["n"] for e in log.read()]
    current = [line for line in log.path.read_text().splitlines() if line]
    assert len(numbers) > len(current)                             # the rotated file is read too
    assert numbers == sorted(numbers) and numbers[-1] == 99       # newest kept, in order
    assert 0 not in numbers                                        # oldest dropped
    kept = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert kept <= 2 * 400 + 100 and sorted(p.name for p in tmp_path.iterdir()) == \
        ["events.1.jsonl", "events.jsonl"]



def test_a_time_window_reads_across_the_rotation(tmp_path):
    log = EventLog(tmp_path / "events.jsonl", max_bytes=400)
    for n in range(100):
        log.write("miss", at=1000 + n, n=n)
    first_current = json.loads(log.path.read_text().splitlines()[0])["n"]
    assert log.older.exists() and first_current > 2
    low, high = 1000 + first_current - 2, 1000 + first_current + 2
    window = [e["n"] for e in log.read() if low <= e["t"] <= high]
    assert window == [n for n in range(first_current - 2, first_current + 3) if n < 100]


def test_the_event_log_reads_a_lab_that_never_rotated(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    log.write("router_ready", dpid=1)
    assert [e["dpid"] for e in log.read()] == [1]


def test_an_unconfirmed_change_is_said_and_exits_1(capsys):
    from vpclab.commands.mapping import print_change
    from vpclab.lab import Lab
    result = {"change": "move X to host3", "converged_ms": 5003.1, "unconfirmed": ["host1"],
              "unconfirmed_why": {"host1": "not connected (it gets the change when it reconnects)"},
              "routers": {"host1": {"added": 0, "deleted": 0, "invalidated": 1},
                          "host3": {"added": 6, "deleted": 0, "invalidated": 0}}}
    with pytest.raises(ChangeUnconfirmed) as raised:      # the API raises, with the report
        Lab._confirmed(result)
    assert raised.value.exit_code == 1 and raised.value.report.unconfirmed == {
        "host1": "not connected (it gets the change when it reconnects)"}
    code, report = print_change(lambda: Lab._confirmed(result))    # the CLI says it, exit 1
    assert code == 1 and report.invalidated == ["host1"]
    out = capsys.readouterr().out
    assert "confirmed by every affected router" not in out
    assert "NOT confirmed by host1: not connected" in out
    code, report = print_change(lambda: Lab._confirmed({**result, "unconfirmed": [],
                                                        "unconfirmed_why": {}}))
    assert code == 0 and report.confirmed
    assert "confirmed by every affected router" in capsys.readouterr().out
