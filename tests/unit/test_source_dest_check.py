"""source_dest_check: false lets a NAT/appliance VM send and receive traffic not its own;
every other VM keeps the strict rules."""
from ipaddress import IPv4Address

import pytest

from tests.unit.flowsim import tunnel, walk
from tests.unit.test_pipeline import ip_packet, tunnel_miss
from vpclab.router.inventory import Inventory
from vpclab.router.pipeline import CHECK, Miss, decide_miss, router_flows
from vpclab.model.plan import TUNNEL_PORT
from vpclab.model.validation import TopologyError, parse_topology

NAT_LAB = """
name: nat
hosts: {host1: {}, host2: {}}
vpcs: {V: {cidr: 10.0.0.0/24}}
vms:
  CLIENT: {vpc: V, host: host1, ip: 10.0.0.10, mac: "02:00:00:00:00:10"}
  NAT: {vpc: V, host: host2, ip: 10.0.0.20, mac: "02:00:00:00:00:20", source_dest_check: false}
  SERVER: {vpc: V, host: host2, ip: 10.0.0.30, mac: "02:00:00:00:00:30"}
"""
CLIENT_MAC, NAT_MAC, SERVER_MAC = "02:00:00:00:00:10", "02:00:00:00:00:20", "02:00:00:00:00:30"


@pytest.fixture(params=["geneve", "vxlan"])
def lab(request):
    inventory = Inventory.from_topology(parse_topology(NAT_LAB + f"encap: {request.param}\n"))
    return inventory.routers(), inventory.table(), inventory.ports


def test_the_flag_is_validated():
    with pytest.raises(TopologyError, match="'no-way' is not true or false"):
        parse_topology(NAT_LAB.replace("source_dest_check: false", "source_dest_check: no-way"))


def test_only_the_appliance_may_send_as_someone_else(lab):
    routers, _, ports = lab
    flows = router_flows(routers[2])
    spoof = ip_packet(ports["NAT"], NAT_MAC, CLIENT_MAC, "10.9.9.9", "10.0.0.10")
    assert walk(flows, spoof)                       # classified (then asks the mapping service)
    assert walk(flows, {**spoof, "eth_src": "02:00:00:00:00:99"}) == []   # never another MAC
    strict = ip_packet(ports["SERVER"], SERVER_MAC, CLIENT_MAC, "10.9.9.9", "10.0.0.10")
    assert walk(flows, strict) == []                # SERVER keeps the check


def sent(router, table, port, packet) -> dict:
    """`packet` from a local VM, after the router asked the mapping service and cached the
    answer: what it puts on the underlay."""
    miss = Miss(port, 1001, IPv4Address(packet["ipv4_dst"]), False, packet["eth_dst"])
    decision = decide_miss(router, miss, table)
    assert decision.resubmit, decision.reason
    (out,) = walk(router_flows(router) + decision.flows, packet)
    assert out[:2] == ("output", TUNNEL_PORT)
    return out[2]


def test_traffic_routed_via_the_appliance_reaches_it(lab):
    routers, table, ports = lab
    packet = ip_packet(ports["CLIENT"], CLIENT_MAC, NAT_MAC, "10.0.0.10", "10.9.9.9")
    out = sent(routers[1], table, ports["CLIENT"], packet)
    assert out["tun_ipv4_dst"] == "192.168.100.2"
    arriving = tunnel(out, "192.168.100.1")
    check = decide_miss(routers[2], tunnel_miss(routers[2], arriving), table)
    assert check.output == ports["NAT"]
    (delivered,) = walk(router_flows(routers[2]) + check.flows, arriving)
    assert delivered[:2] == ("output", ports["NAT"])
    # the same packet for SERVER's MAC (its check on) is not delivered to it
    to_server = decide_miss(routers[1], Miss(ports["CLIENT"], 1001, IPv4Address("10.9.9.9"), False,
                                             SERVER_MAC), table)
    assert to_server.mapping is None and not to_server.resubmit


def test_the_appliance_is_trusted_from_its_own_host_only(lab):
    routers, table, ports = lab
    out = sent(routers[2], table, ports["NAT"], ip_packet(ports["NAT"], NAT_MAC, CLIENT_MAC, "10.9.9.9", "10.0.0.10"))
    honest = decide_miss(routers[1], tunnel_miss(routers[1], tunnel(out, "192.168.100.2")), table)
    assert honest.output == ports["CLIENT"] and CHECK in {f.table for f in honest.flows}
    (delivered,) = walk(router_flows(routers[1]) + honest.flows, tunnel(out, "192.168.100.2"))
    assert delivered[:2] == ("output", ports["CLIENT"])
    rogue = tunnel(out, "192.168.100.3")                            # NAT does not live there
    assert decide_miss(routers[1], tunnel_miss(routers[1], rogue), table).mapping is None
    assert all(o[0] != "output" for o in walk(router_flows(routers[1]) + honest.flows, rogue))
    # SERVER (its check on) may not speak for others, whatever it claims to be
    server = table.lookup(1001, IPv4Address("10.0.0.30"))
    posing = {**tunnel(out, "192.168.100.2"), "eth_src": SERVER_MAC}
    if "tun_metadata0" in posing:
        posing["tun_metadata0"] = server.key << 32 | posing["tun_metadata0"] & 0xFFFFFFFF
    assert decide_miss(routers[1], tunnel_miss(routers[1], posing), table).mapping is None
    assert all(o[0] != "output" for o in walk(router_flows(routers[1]) + honest.flows, posing))
