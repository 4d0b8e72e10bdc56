"""Live changes as pure decisions: the inventory refuses what a topology file could not
hold, and the routers get exactly the operations a change needs."""
import dataclasses
from ipaddress import IPv4Address

import pytest

from vpclab.router.inventory import Inventory, InventoryError
from vpclab.router.pipeline import ARP, CHECK, COOKIE_ROUTER, FORWARD, mapping_cookie, negative_cookie
from vpclab.router.sync import InstalledFlow, change_ops, instructions_of, reconcile, static_flows

VM2 = mapping_cookie(1001, IPv4Address("10.0.0.185"))
VM3 = mapping_cookie(1001, IPv4Address("10.0.0.20"))


def test_add_move_remove_keep_ports_and_validate(multi_vpc, tmp_path):
    inv = Inventory.from_topology(multi_vpc)
    ports = dict(inv.ports)
    added = inv.add("NEW-VM", {"vpc": "ZIGI-VPC1", "host": "host3", "ip": "10.0.0.50"})
    assert added.ports["NEW-VM"] == max(ports.values()) + 1
    assert added.topology.vms["NEW-VM"].mac.startswith("02:")
    removed = added.remove("ZIGI-VM1")
    assert {k: v for k, v in removed.ports.items() if k in ports} == \
        {k: v for k, v in ports.items() if k != "ZIGI-VM1"}          # nobody renumbered
    moved = removed.move("ZIGI-VM2", "host3")
    assert moved.topology.vms["ZIGI-VM2"].host == "host3" and moved.ports == removed.ports
    moved.save(tmp_path / "m.json")
    assert Inventory.load(tmp_path / "m.json", multi_vpc) == moved


@pytest.mark.parametrize("change,message", [
    (lambda i: i.add("X", {"vpc": "ZIGI-VPC1", "host": "host1", "ip": "10.0.0.185"}),
     "vms.X.ip: 10.0.0.185 is already used by ZIGI-VM2 in ZIGI-VPC1"),
    (lambda i: i.add("X", {"vpc": "NOPE", "host": "host1", "ip": "10.0.0.9"}), "vms.X.vpc: unknown VPC 'NOPE'"),
    (lambda i: i.add("X", {"vpc": "ZIGI-VPC1", "host": "host1", "ip": "10.0.0.9", "mac": "zz"}),
     "vms.X.mac: 'zz' is not a MAC address"),
    (lambda i: i.add("X", {"vpc": "ZIGI-VPC1", "host": "host1", "ip": "10.0.0.1"}), "reserved by AWS"),
    (lambda i: i.add("ZIGI-VM1", {"vpc": "ZIGI-VPC1", "host": "host1", "ip": "10.0.0.9"}), "already exists"),
    (lambda i: i.move("ZIGI-VM2", "host9"), "vms.ZIGI-VM2.host: unknown host 'host9'"),
    (lambda i: i.move("ZIGI-VM2", "host2"), "already on host2"),
    (lambda i: i.remove("GHOST"), "no VM named 'GHOST'"),
])
def test_bad_changes_are_refused_with_the_topology_message(multi_vpc, change, message):
    with pytest.raises(InventoryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        change(Inventory.from_topology(multi_vpc))


def ops_for_move(topology, cached):
    old = Inventory.from_topology(topology)
    new = old.move("ZIGI-VM2", "host3")
    return {new.routers()[d].host: change_ops(old.routers()[d], new.routers()[d], old.table(),
                                                new.table(), cached.get(d, set()))
            for d in old.routers()}


def test_move_invalidates_exactly_the_routers_that_cached_it(multi_vpc):
    ops = ops_for_move(multi_vpc, {1: {VM2, VM3}, 3: set()})
    assert ops["host1"].invalidate == [VM2]          # VM3 did not change: kept
    assert not ops["host1"].add and not ops["host1"].delete
    assert ops["host3"].invalidate == []
    # host2 loses the VM's port flows (classify x2, deliver, metered misses x2), its meter
    # and, its last ZIGI-VPC1 VM gone, that VPC's tunnel entry; host3 gains the same
    port = Inventory.from_topology(multi_vpc).ports["ZIGI-VM2"]
    assert len(ops["host2"].delete) == 6 and not ops["host2"].add
    assert ops["host2"].meters_delete == [port] and ops["host3"].meters_add == [port]
    assert len(ops["host3"].add) == 6 and not ops["host3"].delete


def test_an_added_address_is_no_longer_remembered_as_unknown(multi_vpc):
    old = Inventory.from_topology(multi_vpc)
    new = old.add("NEW-VM", {"vpc": "ZIGI-VPC1", "host": "host3", "ip": "10.0.0.77"})
    ops = change_ops(old.routers()[1], new.routers()[1], old.table(), new.table(), set())
    assert negative_cookie(1001, IPv4Address("10.0.0.77")) in ops.invalidate
    assert negative_cookie(1002, IPv4Address("10.0.0.77")) not in ops.invalidate   # other VPC


def test_preload_routers_get_the_new_entry_in_place(multi_vpc):
    preload = dataclasses.replace(multi_vpc, mapping_mode="preload")
    ops = ops_for_move(preload, {})
    changed = {f.table: f for f in ops["host1"].add}    # only ZIGI-VM2's entries changed:
    assert set(changed) == {FORWARD, CHECK} and {f.cookie for f in changed.values()} == {VM2}
    assert ("set", "tun_ipv4_dst", "192.168.100.3") in changed[FORWARD].actions   # where to send
    assert changed[CHECK].match["tun_ipv4_src"] == "192.168.100.3"               # whom to trust
    # forwarding is replaced in place (same match); the old host is no longer trusted
    (gone,) = ops["host1"].delete
    assert gone[0] == CHECK and ("tun_ipv4_src", "192.168.100.2") in gone[2]
    assert any(f.cookie == VM2 and f.table == ARP for f in ops["host3"].add)


def test_reconcile_keeps_valid_cache_and_removes_what_is_stale(multi_vpc):
    inv = Inventory.from_topology(multi_vpc)
    router, table = inv.routers()[1], inv.table()
    desired = static_flows(router, table)
    installed = [InstalledFlow(f.table, f.priority, f.cookie, f.match, instructions_of(f)) for f in desired]
    vm2 = table.lookup(1001, IPv4Address("10.0.0.185"))
    from vpclab.router.pipeline import mapping_flows
    installed += [InstalledFlow(f.table, f.priority, f.cookie, f.match, instructions_of(f))
                  for f in mapping_flows(router, vm2, 300)]
    stale_port = InstalledFlow(0, 100, COOKIE_ROUTER, {"in_port": 999, "eth_src": "02:00:00:00:00:01"})
    ghost = mapping_cookie(1001, IPv4Address("10.0.0.99"))
    ghost_flow = InstalledFlow(ARP, 100, ghost, {"metadata": 1001, "eth_type": 0x0806, "arp_op": 1,
                                                 "arp_tpa": "10.0.0.99"})
    stale, kept = reconcile(router, table, installed + [stale_port, ghost_flow])
    assert kept == {VM2}
    assert set(stale) == {(0, 100, frozenset(stale_port.match.items())),
                          (ARP, 100, frozenset(ghost_flow.match.items()))}
