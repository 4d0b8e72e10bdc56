"""The VPC router's decisions, walked through the in-memory flow table: gateways answered
on the host, routes by longest prefix, local vs an ENI target, blackholes, the frame
rewritten as a router does and the TTL left alone, in both modes and encapsulations."""
import dataclasses
from ipaddress import IPv4Address

import pytest

from tests.unit.flowsim import tunnel, walk
from vpclab.router.inventory import Inventory
from vpclab.router.pipeline import (
    ARP, CHECK, COOKIE_KIND_MASK, COOKIE_ROUTE, NEXTHOP, OFPP_IN_PORT, ROUTE, Miss, decide_miss, entry_flows,
    mapping_cookie, negative_cookie,
    route_cookie, router_flows,
)
from vpclab.model.plan import TUNNEL_PORT
from vpclab.router.sync import change_ops, static_flows
from vpclab.model.topology import ROUTER_MAC
from vpclab.model.validation import TopologyError, check_topology, load_topology, topology_to_raw
from tests.unit.conftest import TOPOLOGIES

A, B, C = 1, 2, 3          # hv-a (web-1), hv-b (fw), hv-c (app-1)


def lab(mode="on-demand", encap="geneve"):
    topology = dataclasses.replace(load_topology(TOPOLOGIES / "vpc-router.yaml"),
                                   mapping_mode=mode, encap=encap)
    return Inventory.from_topology(topology)


def vm(inventory, name):
    t = inventory.topology.vms[name]
    return t, inventory.ports[name]


def ip_from(inventory, name, dst, eth_dst=ROUTER_MAC, src=None, ttl=64):
    t, port = vm(inventory, name)
    return {"in_port": port, "eth_src": t.mac, "eth_dst": eth_dst, "eth_type": 0x0800,
            "ipv4_src": src or str(t.ip), "ipv4_dst": dst, "ip_ttl": ttl}


def run(inventory, dpid, flows, packet, tun_src=None):
    """Walk `packet` through router `dpid`; answer each miss as the mapping service would
    (its flows added; a resubmit walks it again, an output is where it went)."""
    router, table = inventory.routers()[dpid], inventory.table()
    for _ in range(4):
        fates = walk(flows, packet)
        asks = [f for f in fates if f[0] == "controller"]
        if not asks:
            return flows, fates
        seen = asks[0][2]
        miss = miss_of(asks[0][1], seen, tun_src)
        decision = decide_miss(router, miss, table)
        flows = flows + decision.flows
        if decision.output is not None:
            return flows, [("output", decision.output, seen)]
        if not decision.resubmit:
            return flows, []
    raise AssertionError("still asking after four answers")


def miss_of(table_id, seen, tun_src):
    vni = seen["metadata"]
    if table_id == CHECK:
        keys = [seen.get(reg) or None for reg in ("reg0", "reg1")]
        return Miss(TUNNEL_PORT, vni, IPv4Address(seen["ipv4_src"]), False, seen["eth_dst"],
                    IPv4Address(tun_src), IPv4Address(seen["ipv4_dst"]), seen["eth_src"], *keys)
    if table_id == ARP:
        return Miss(seen["in_port"], vni, IPv4Address(seen["arp_tpa"]), True)
    target = IPv4Address(seen["reg3"]) if table_id == NEXTHOP else IPv4Address(seen["ipv4_dst"])
    return Miss(seen["in_port"], vni, target, False, seen["eth_dst"], table=table_id,
                route_table=seen.get("reg2", 0))


@pytest.mark.parametrize("mode", ["on-demand", "preload"])
def test_the_gateway_is_answered_by_the_router_itself(mode):
    inventory = lab(mode)
    t, port = vm(inventory, "app-1")
    request = {"in_port": port, "eth_src": t.mac, "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": 0x0806,
               "arp_op": 1, "arp_sha": t.mac, "arp_spa": str(t.ip), "arp_tha": "00:00:00:00:00:00",
               "arp_tpa": "10.50.2.1"}
    (fate,) = walk(router_flows(inventory.routers()[C]), request)      # no miss: on the host
    assert fate[:2] == ("output", OFPP_IN_PORT)
    assert (fate[2]["arp_op"], fate[2]["arp_sha"], fate[2]["arp_spa"]) == (2, ROUTER_MAC, "10.50.2.1")


@pytest.mark.parametrize("encap", ["geneve", "vxlan"])
@pytest.mark.parametrize("mode", ["on-demand", "preload"])
def test_app_reaches_web_through_the_firewall_and_the_router_stays_invisible(mode, encap):
    inventory = lab(mode, encap)
    routers = inventory.routers()
    fw, fw_port = vm(inventory, "fw")
    web, web_port = vm(inventory, "web-1")
    # hv-c: app-1's route table sends web's subnet to fw, over the tunnel to hv-b
    _, (sent,) = run(inventory, C, static_flows(routers[C], inventory.table()),
                     ip_from(inventory, "app-1", "10.50.1.10"))
    assert sent[:2] == ("output", TUNNEL_PORT)
    frame = sent[2]
    assert (frame["eth_src"], frame["eth_dst"]) == (ROUTER_MAC, fw.mac)
    assert frame["tun_ipv4_dst"] == str(routers[B].ports[0].mapping.host_ip)
    assert frame["ip_ttl"] == 64 and frame["ipv4_dst"] == "10.50.1.10"       # no TTL change
    # hv-b: verified, delivered to the appliance
    _, (delivered,) = run(inventory, B, static_flows(routers[B], inventory.table()),
                          tunnel(frame, "192.168.100.3"), "192.168.100.3")
    assert delivered[:2] == ("output", fw_port)
    # fw forwards it (its own MAC, app-1's address) to its gateway: dmz's main table, local
    forwarded = {**ip_from(inventory, "fw", "10.50.1.10", src="10.50.2.20"), "ip_ttl": 63}
    _, (sent,) = run(inventory, B, static_flows(routers[B], inventory.table()), forwarded)
    assert sent[:2] == ("output", TUNNEL_PORT)
    assert (sent[2]["eth_src"], sent[2]["eth_dst"], sent[2]["ip_ttl"]) == (ROUTER_MAC, web.mac, 63)
    # hv-a: the appliance spoke for app-1 (Geneve: by its ENI key; VXLAN: its host vouches)
    _, (arrived,) = run(inventory, A, static_flows(routers[A], inventory.table()),
                        tunnel(sent[2], "192.168.100.2"), "192.168.100.2")
    assert arrived[:2] == ("output", web_port)


def test_longest_prefix_first_and_a_cached_local_route_does_not_shadow_a_specific_one():
    inventory = lab("on-demand")
    routers = inventory.routers()
    fw, _ = vm(inventory, "fw")
    flows = static_flows(routers[C], inventory.table())
    flows, (to_fw,) = run(inventory, C, flows, ip_from(inventory, "app-1", "10.50.9.9"))
    assert to_fw[2]["eth_dst"] == fw.mac                    # local route: fw's own address
    cached = [f for f in flows if f.table == ROUTE and f.cookie & COOKIE_KIND_MASK == COOKIE_ROUTE]
    assert sorted(f.priority - 100 for f in cached) == [16, 24]    # /16 local, /24 inside it
    assert walk(flows, ip_from(inventory, "app-1", "10.50.1.10"))[0][2]["eth_dst"] == fw.mac


def test_same_subnet_traffic_is_not_routed():
    inventory = lab("on-demand")
    web, _ = vm(inventory, "web-1")
    flows = router_flows(inventory.routers()[C])
    (asked,) = walk(flows, ip_from(inventory, "app-1", "10.50.2.30", eth_dst="02:00:00:00:00:99"))
    assert asked[:2] == ("controller", 20)                  # FORWARD's miss, not ROUTE's


def test_no_route_is_dropped_and_remembered_briefly_until_the_routes_change():
    inventory = lab("on-demand")
    router = inventory.routers()[C]
    miss = Miss(vm(inventory, "app-1")[1], 1001, IPv4Address("8.8.8.8"), False, ROUTER_MAC,
                table=ROUTE, route_table=2)
    decision = decide_miss(router, miss, inventory.table())
    (drop,) = decision.flows
    assert not decision.resubmit and drop.actions == () and drop.goto is None and drop.hard_timeout
    assert drop.cookie == negative_cookie(1001, IPv4Address("8.8.8.8"))   # not the table's
    changed = inventory.add_route("shop", "via-fw", "0.0.0.0/0", "fw")
    ops = change_ops(router, changed.routers()[C], inventory.table(), changed.table(),
                     {drop.cookie, route_cookie(1001, 2)})
    assert drop.cookie in ops.invalidate and route_cookie(1001, 2) in ops.invalidate


def test_a_table_s_cached_answers_do_not_expire_one_by_one():
    """An idle more specific route expiring alone would hand its traffic to the covering
    route, past the appliance it names: a table's answers live and go together."""
    inventory = lab("on-demand")
    miss = Miss(vm(inventory, "app-1")[1], 1001, IPv4Address("10.50.9.9"), False, ROUTER_MAC,
                table=ROUTE, route_table=2)
    decision = decide_miss(inventory.routers()[C], miss, inventory.table())
    routes = [f for f in decision.flows if f.table == ROUTE]
    assert len(routes) == 2 and {f.idle_timeout for f in routes} == {0}
    assert {f.cookie for f in routes} == {route_cookie(1001, 2)}


def test_a_next_hop_no_vm_is_is_remembered_briefly_until_the_address_appears():
    inventory = lab("on-demand")
    router = inventory.routers()[B]                 # fw's subnet, dmz: the main table, local
    port = vm(inventory, "fw")[1]
    routed = decide_miss(router, Miss(port, 1001, IPv4Address("10.50.1.77"), False, ROUTER_MAC,
                                      table=ROUTE, route_table=1), inventory.table())
    (drop,) = [f for f in routed.flows if f.table == NEXTHOP]
    assert drop.cookie == negative_cookie(1001, IPv4Address("10.50.1.77")) and drop.hard_timeout
    again = decide_miss(router, Miss(port, 1001, IPv4Address("10.50.1.77"), False, ROUTER_MAC,
                                     table=NEXTHOP), inventory.table())
    assert [f.cookie for f in again.flows] == [drop.cookie] and not again.resubmit
    added = inventory.add("web-2", {"vpc": "shop", "host": "hv-a", "ip": "10.50.1.77"})
    ops = change_ops(router, added.routers()[B], inventory.table(), added.table(), {drop.cookie})
    assert drop.cookie in ops.invalidate


@pytest.mark.parametrize("mode", ["on-demand", "preload"])
def test_a_deleted_target_is_a_blackhole_until_it_is_back(mode):
    inventory = lab(mode)
    gone = inventory.remove("fw")
    (table,) = [t for t in gone.routers()[C].routed(1001).tables if t.name == "via-fw"]
    assert [r.blackhole for r in table.routes] == [False, True]
    flows = static_flows(gone.routers()[C], gone.table())
    assert run(gone, C, flows, ip_from(gone, "app-1", "10.50.1.10"))[1] == []      # dropped
    fw = inventory.topology.vms["fw"]
    back = gone.add("fw", {"vpc": "shop", "subnet": "dmz", "host": "hv-b", "ip": str(fw.ip),
                           "mac": fw.mac, "source_dest_check": False})
    flows = static_flows(back.routers()[C], back.table())
    _, (sent,) = run(back, C, flows, ip_from(back, "app-1", "10.50.1.10"))
    assert sent[2]["eth_dst"] == fw.mac


def test_a_route_change_invalidates_only_the_routers_that_cached_that_table():
    old = lab("on-demand")
    new = old.delete_route("shop", "via-fw", "10.50.1.0/24")
    via_fw, main = route_cookie(1001, 2), route_cookie(1001, 1)
    on_c = change_ops(old.routers()[C], new.routers()[C], old.table(), new.table(), {via_fw})
    on_a = change_ops(old.routers()[A], new.routers()[A], old.table(), new.table(), {main})
    assert on_c.invalidate == [via_fw] and on_a.invalidate == []
    _, (sent,) = run(new, C, static_flows(new.routers()[C], new.table()),
                     ip_from(new, "app-1", "10.50.1.10"))
    assert sent[2]["eth_dst"] == new.topology.vms["web-1"].mac      # straight to web-1 now


def test_no_vm_may_take_the_router_s_mac():
    raw = topology_to_raw(load_topology(TOPOLOGIES / "vpc-router.yaml"))
    raw["vms"]["web-1"]["mac"] = ROUTER_MAC.upper()
    with pytest.raises(TopologyError, match="vms.web-1.mac: 02:76:70:63:00:01 is the VPC router's"):
        check_topology(raw)


def test_a_next_hop_is_part_of_its_mapping_s_entry():
    inventory = lab("on-demand")
    web = inventory.table().lookup(1001, IPv4Address("10.50.1.10"))
    (hop,) = [f for f in entry_flows(inventory.routers()[C], web, 300) if f.table == NEXTHOP]
    assert hop.cookie == mapping_cookie(1001, web.ip) and hop.idle_timeout == 300


@pytest.mark.parametrize("mode", ["on-demand", "preload"])
def test_dhcp_and_dns_go_through_the_port_s_meter_in_both_modes(mode):
    inventory = lab(mode)
    router = inventory.routers()[C]
    port = vm(inventory, "app-1")[1]
    asks = [f for f in router_flows(router) if ("controller",) in f.actions and f.match.get("in_port") == port]
    assert asks and {f.meter for f in asks} == {port} and router.metered
    added = inventory.add("app-2", {"vpc": "shop", "host": "hv-c", "ip": "10.50.2.30"})
    new_port = added.ports["app-2"]
    ops = change_ops(router, added.routers()[C], inventory.table(), added.table(), set())
    assert ops.meters_add == [new_port]
    gone = change_ops(added.routers()[C], router, added.table(), inventory.table(), set())
    assert gone.meters_delete == [new_port]


def test_a_preload_router_without_subnets_has_no_meters():
    seed = Inventory.from_topology(dataclasses.replace(load_topology(TOPOLOGIES / "seed.yaml"),
                                                       mapping_mode="preload"))
    assert not any(r.metered for r in seed.routers().values())
    assert not [f for r in seed.routers().values() for f in router_flows(r) if f.meter is not None]
