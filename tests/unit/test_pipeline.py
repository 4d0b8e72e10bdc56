"""The virtual router's flows and the mapping service's decisions, walked in memory."""
import dataclasses
from ipaddress import IPv4Address

import pytest

from tests.unit.conftest import routers_for
from tests.unit.flowsim import tunnel, walk

from vpclab.router.pipeline import (
    ARP, CHECK, CLASSIFY, FORWARD, OFPP_IN_PORT, Miss, decide_miss, mapping_cookie, preload_flows, router_flows,
)
from vpclab.model.plan import TUNNEL_PORT, plan_fabric


def arp_request(port, mac, spa, tpa):
    return {"in_port": port, "eth_src": mac, "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": 0x0806,
            "arp_op": 1, "arp_sha": mac, "arp_spa": spa, "arp_tha": "00:00:00:00:00:00",
            "arp_tpa": tpa}


def ip_packet(port, src_mac, dst_mac, src, dst):
    return {"in_port": port, "eth_src": src_mac, "eth_dst": dst_mac, "eth_type": 0x0800,
            "ipv4_src": src, "ipv4_dst": dst}


def seed_parts(seed):
    routers, table = routers_for(seed)
    plan = plan_fabric(seed)
    vm1, vm2 = plan.vms["ZIGI-VM1"], plan.vms["ZIGI-VM2"]
    return routers[1], routers[2], table, vm1, vm2


def answer(router, table, miss, flows):
    decision = decide_miss(router, miss, table)
    return flows + decision.flows, decision


def test_on_demand_arp_miss_goes_to_the_mapping_service_then_is_answered_locally(seed):
    r1, _, table, vm1, vm2 = seed_parts(seed)
    flows = router_flows(r1)
    request = arp_request(vm1.ofport, vm1.vm.mac, "10.0.0.148", "10.0.0.185")
    (fate,) = walk(flows, request)
    assert fate[0] == "controller" and fate[1] == ARP
    flows, decision = answer(r1, table, Miss(vm1.ofport, 1001, IPv4Address("10.0.0.185"), True), flows)
    assert decision.resubmit and decision.mapping.mac == "02:93:0e:03:bb:88"
    (out,) = walk(flows, request)
    kind, port, reply = out
    assert (kind, port) == ("output", OFPP_IN_PORT)
    assert reply["arp_op"] == 2
    assert (reply["eth_src"], reply["arp_sha"], reply["arp_spa"]) == ("02:93:0e:03:bb:88",) * 2 + ("10.0.0.185",)
    assert (reply["eth_dst"], reply["arp_tha"], reply["arp_tpa"]) == (vm1.vm.mac, vm1.vm.mac, "10.0.0.148")


def test_cached_entry_has_idle_timeout_and_one_cookie_per_mapping(seed):
    r1, _, table, vm1, _ = seed_parts(seed)
    decision = decide_miss(r1, Miss(vm1.ofport, 1001, IPv4Address("10.0.0.185"), True), table)
    cookie = mapping_cookie(1001, IPv4Address("10.0.0.185"))
    assert {f.cookie for f in decision.flows} == {cookie}
    assert {f.idle_timeout for f in decision.flows} == {seed.idle_timeout}
    assert {f.table for f in decision.flows} == {ARP, FORWARD, CHECK}   # remote: trust its host too


def test_remote_destination_is_encapsulated_with_vni_and_peer_host(seed):
    r1, _, table, vm1, vm2 = seed_parts(seed)
    flows, _ = answer(r1, table, Miss(vm1.ofport, 1001, IPv4Address("10.0.0.185"), False, vm2.vm.mac),
                      router_flows(r1))
    (out,) = walk(flows, ip_packet(vm1.ofport, vm1.vm.mac, vm2.vm.mac, "10.0.0.148", "10.0.0.185"))
    assert out[:2] == ("output", TUNNEL_PORT)
    assert out[2]["tunnel_id"] == 1001 and out[2]["tun_ipv4_dst"] == "192.168.100.2"


def sent_over_the_tunnel(r1, table, vm1, vm2):
    """ZIGI-VM1's packet to ZIGI-VM2 as host1's router puts it on the underlay."""
    flows, _ = answer(r1, table, Miss(vm1.ofport, 1001, IPv4Address("10.0.0.185"), False, vm2.vm.mac),
                      router_flows(r1))
    (out,) = walk(flows, ip_packet(vm1.ofport, vm1.vm.mac, vm2.vm.mac, "10.0.0.148", "10.0.0.185"))
    assert out[:2] == ("output", TUNNEL_PORT)
    return out[2]


def tunnel_miss(router, packet):
    """The Miss the mapping service reads from a packet-in at the CHECK table, with the
    registers the router's classification filled from the Geneve option (0: none)."""
    classify = [dataclasses.replace(f, actions=f.actions + (("controller",),), goto=None)
                for f in router_flows(router) if f.table == CLASSIFY]
    (asked,) = walk(classify, packet)
    seen = asked[2]
    keys = [seen.get(reg) or None for reg in ("reg0", "reg1")]
    return Miss(TUNNEL_PORT, seen["tunnel_id"], IPv4Address(seen["ipv4_src"]), False, seen["eth_dst"],
                IPv4Address(seen["tun_ipv4_src"]), IPv4Address(seen["ipv4_dst"]), seen["eth_src"], *keys)


@pytest.mark.parametrize("encap", ["geneve", "vxlan"])
def test_tunnel_ingress_checks_the_source_then_delivers_only_locally(seed, encap):
    r1, r2, table, vm1, vm2 = seed_parts(dataclasses.replace(seed, encap=encap))
    packet = tunnel(sent_over_the_tunnel(r1, table, vm1, vm2), "192.168.100.1")
    (asked,) = walk(router_flows(r2), packet)
    assert asked[:2] == ("controller", CHECK)                   # on-demand: verify the source
    decision = decide_miss(r2, tunnel_miss(r2, packet), table)
    assert decision.output == vm2.ofport and decision.reason == "source verified"
    (out,) = walk(router_flows(r2) + decision.flows, packet)
    assert out[:2] == ("output", vm2.ofport)
    assert walk(router_flows(r2) + decision.flows, {**packet, "tunnel_id": 1002}) == []


@pytest.mark.parametrize("encap", ["geneve", "vxlan"])
def test_a_source_arriving_from_the_wrong_host_is_dropped(seed, encap):
    """AWS's receive-side check: a rogue host claiming ZIGI-VM1 (and, in Geneve, its ENI)."""
    seed = dataclasses.replace(seed, encap=encap)
    r1, r2, table, vm1, vm2 = seed_parts(seed)
    packet = tunnel(sent_over_the_tunnel(r1, table, vm1, vm2), "192.168.100.3")
    decision = decide_miss(r2, tunnel_miss(r2, packet), table)
    assert decision.output is None and decision.mapping is None
    assert decision.reason.startswith("receive check failed")
    assert walk(router_flows(r2) + decision.flows, packet) == []
    preload = dataclasses.replace(seed, mapping_mode="preload")
    _, p2, ptable, _, _ = seed_parts(preload)
    flows = router_flows(p2) + preload_flows(p2, ptable)
    assert walk(flows, packet) == []                            # preload: dropped by default
    assert walk(flows, {**packet, "tun_ipv4_src": "192.168.100.1"})[0][:2] == ("output", vm2.ofport)


def test_geneve_option_carries_the_source_and_destination_eni(seed):
    r1, _, table, vm1, vm2 = seed_parts(seed)
    sent = sent_over_the_tunnel(r1, table, vm1, vm2)
    keys = table.lookup(1001, IPv4Address("10.0.0.148")).key, table.lookup(1001, IPv4Address("10.0.0.185")).key
    assert keys == (1, 2)
    assert sent["tun_metadata0"] == keys[0] << 32 | keys[1]
    v1, _, vtable, vm1, vm2 = seed_parts(dataclasses.replace(seed, encap="vxlan"))
    assert "tun_metadata0" not in sent_over_the_tunnel(v1, vtable, vm1, vm2)


@pytest.mark.parametrize("mode", ["on-demand", "preload"])
def test_geneve_delivers_by_destination_eni_and_checks_the_source_eni(seed, mode):
    r1, r2, table, vm1, vm2 = seed_parts(dataclasses.replace(seed, mapping_mode=mode))
    good = tunnel(sent_over_the_tunnel(r1, table, vm1, vm2), "192.168.100.1")
    flows = router_flows(r2) + (preload_flows(r2, table) if mode == "preload" else
                                decide_miss(r2, tunnel_miss(r2, good), table).flows)
    assert walk(flows, good)[0][:2] == ("output", vm2.ofport)
    # the inner addresses say ZIGI-VM2, but the option names no ENI here: not delivered
    assert walk(flows, {**good, "tun_metadata0": 1 << 32 | 7}) == []
    # the right host, but the option claims an ENI that is not ZIGI-VM1: not trusted
    forged = {**good, "tun_metadata0": 9 << 32 | 2}
    assert walk(flows, forged) == [] or walk(flows, forged)[0][0] == "controller"
    assert decide_miss(r2, tunnel_miss(r2, forged), table).mapping is None
    # no option at all in Geneve mode: dropped, and nothing installed that could shadow VM1
    bare = {k: v for k, v in good.items() if k != "tun_metadata0"}
    assert all(out[0] != "output" for out in walk(flows, bare))
    refused = decide_miss(r2, tunnel_miss(r2, bare), table)
    assert refused.mapping is None and refused.flows == [] and "no ENI option" in refused.reason


def test_anti_spoofing_drops_forged_ip_mac_and_arp_sender(seed):
    r1, _, _, vm1, vm2 = seed_parts(seed)
    flows = router_flows(r1)
    good = ip_packet(vm1.ofport, vm1.vm.mac, vm2.vm.mac, "10.0.0.148", "10.0.0.185")
    assert walk(flows, good)            # reaches the mapping service (control case)
    assert walk(flows, {**good, "ipv4_src": "10.0.0.99"}) == []
    assert walk(flows, {**good, "eth_src": "02:00:00:00:00:99"}) == []
    forged_arp = arp_request(vm1.ofport, vm1.vm.mac, "10.0.0.99", "10.0.0.185")
    assert walk(flows, forged_arp) == []
    assert walk(flows, {**arp_request(vm1.ofport, vm1.vm.mac, "10.0.0.148", "10.0.0.185"),
                        "arp_sha": "02:00:00:00:00:99"}) == []


def test_broadcast_and_multicast_ip_never_leave(seed):
    r1, _, table, vm1, _ = seed_parts(seed)
    flows = router_flows(r1) + preload_flows(r1, table)
    for dst_mac, dst in (("ff:ff:ff:ff:ff:ff", "10.0.0.255"), ("01:00:5e:00:00:01", "224.0.0.1")):
        assert walk(flows, ip_packet(vm1.ofport, vm1.vm.mac, dst_mac, "10.0.0.148", dst)) == []


def test_unknown_target_gets_no_answer_and_is_remembered_briefly(seed):
    r1, _, table, vm1, _ = seed_parts(seed)
    decision = decide_miss(r1, Miss(vm1.ofport, 1001, IPv4Address("10.0.0.77"), True), table)
    assert not decision.resubmit and decision.mapping is None
    (negative,) = decision.flows
    assert negative.actions == () and negative.hard_timeout == 10
    request = arp_request(vm1.ofport, vm1.vm.mac, "10.0.0.148", "10.0.0.77")
    assert walk(router_flows(r1), request)[0][0] == "controller"
    assert walk(router_flows(r1) + decision.flows, request) == []     # now dropped locally
    known = arp_request(vm1.ofport, vm1.vm.mac, "10.0.0.148", "10.0.0.185")
    assert walk(router_flows(r1) + decision.flows, known)[0][0] == "controller"


def test_misses_go_through_the_port_s_own_meter(seed):
    r1, _, _, vm1, _ = seed_parts(seed)
    asking = [f for f in router_flows(r1) if ("controller",) in f.actions]
    assert {(f.match.get("in_port"), f.meter) for f in asking} == {(vm1.ofport, vm1.ofport),
                                                                   (None, TUNNEL_PORT)}


def test_same_ip_in_another_vpc_is_never_answered(multi_vpc):
    routers, table = routers_for(multi_vpc)
    plan = plan_fabric(multi_vpc)
    vm1 = plan.vms["ZIGI-VM1"]
    # 10.0.0.77 exists only in ZIGI-VPC2: ZIGI-VM1 (ZIGI-VPC1) must get nothing
    assert decide_miss(routers[1], Miss(vm1.ofport, 1001, IPv4Address("10.0.0.77"), True), table).mapping is None
    # 10.0.0.185 exists in both: ZIGI-VM1 gets ZIGI-VM2's MAC, never OTHER-VM2's
    got = decide_miss(routers[1], Miss(vm1.ofport, 1001, IPv4Address("10.0.0.185"), True), table)
    assert got.mapping.mac == multi_vpc.vms["ZIGI-VM2"].mac != multi_vpc.vms["OTHER-VM2"].mac


def test_a_miss_claiming_another_vpc_is_refused(multi_vpc):
    routers, table = routers_for(multi_vpc)
    vm1 = plan_fabric(multi_vpc).vms["ZIGI-VM1"]
    assert decide_miss(routers[1], Miss(vm1.ofport, 1002, IPv4Address("10.0.0.185"), True), table).flows == []


def test_same_host_pair_goes_straight_to_the_port(multi_vpc):
    routers, table = routers_for(multi_vpc)
    plan = plan_fabric(multi_vpc)
    vm1, vm3 = plan.vms["ZIGI-VM1"], plan.vms["ZIGI-VM3"]
    flows = router_flows(routers[1]) + preload_flows(routers[1], table)
    (out,) = walk(flows, ip_packet(vm1.ofport, vm1.vm.mac, vm3.vm.mac, "10.0.0.148", "10.0.0.20"))
    assert out[:2] == ("output", vm3.ofport)


def test_preload_has_no_miss_path_and_every_entry_of_its_vpcs(multi_vpc):
    preload = dataclasses.replace(multi_vpc, mapping_mode="preload")
    routers, table = routers_for(preload)
    r3 = routers[3]                       # host3: OTHER-VM3 (VPC2) and WEB-VM1 (VPC3)
    flows = router_flows(r3)
    assert not any(a == ("controller",) for f in flows for a in f.actions)
    pushed = {f.cookie for f in preload_flows(r3, table)}
    want = {mapping_cookie(m.vni, m.ip) for m in table if m.vni in (1002, 1003)}
    assert pushed == want and len(want) == 5


def test_preload_answers_arp_without_the_mapping_service(seed):
    preload = dataclasses.replace(seed, mapping_mode="preload")
    r1, _, table, vm1, _ = seed_parts(preload)
    (out,) = walk(router_flows(r1) + preload_flows(r1, table),
                  arp_request(vm1.ofport, vm1.vm.mac, "10.0.0.148", "10.0.0.185"))
    assert out[1] == OFPP_IN_PORT and out[2]["eth_src"] == "02:93:0e:03:bb:88"


def test_a_packet_for_the_wrong_mac_is_never_resubmitted(seed):
    """It would miss again after the entry is cached: an endless router<->service loop."""
    r1, _, table, vm1, vm2 = seed_parts(seed)
    wrong = Miss(vm1.ofport, 1001, IPv4Address("10.0.0.185"), False, "02:00:00:00:00:99")
    decision = decide_miss(r1, wrong, table)
    assert decision.flows and not decision.resubmit
    flows = router_flows(r1) + decision.flows
    packet = ip_packet(vm1.ofport, vm1.vm.mac, "02:00:00:00:00:99", "10.0.0.148", "10.0.0.185")
    assert walk(flows, packet)[0][0] == "controller"      # it would miss again
    right = Miss(vm1.ofport, 1001, IPv4Address("10.0.0.185"), False, vm2.vm.mac)
    assert decide_miss(r1, right, table).resubmit
