"""source_dest_check: false lets a NAT/appliance VM send and receive traffic not its own;
every other VM keeps the strict rules."""
from ipaddress import IPv4Address

import pytest

from tests.unit.flowsim import walk
from tests.unit.test_pipeline import ip_packet
from vpclab.inventory import Inventory
from vpclab.pipeline import CHECK, Miss, decide_miss, router_flows
from vpclab.plan import TUNNEL_PORT
from vpclab.validation import TopologyError, parse_topology

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


@pytest.fixture
def lab():
    inventory = Inventory.from_topology(parse_topology(NAT_LAB))
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


def test_traffic_routed_via_the_appliance_reaches_it(lab):
    routers, table, ports = lab
    miss = Miss(ports["CLIENT"], 1001, IPv4Address("10.9.9.9"), False, NAT_MAC)
    decision = decide_miss(routers[1], miss, table)
    assert decision.resubmit and decision.mapping.ip == IPv4Address("10.0.0.20")
    packet = ip_packet(ports["CLIENT"], CLIENT_MAC, NAT_MAC, "10.0.0.10", "10.9.9.9")
    (out,) = walk(router_flows(routers[1]) + decision.flows, packet)
    assert out[:2] == ("output", TUNNEL_PORT) and out[2]["tun_ipv4_dst"] == "192.168.100.2"
    arriving = {**packet, "in_port": TUNNEL_PORT, "tunnel_id": 1001, "tun_ipv4_src": "192.168.100.1"}
    check = decide_miss(routers[2], Miss(TUNNEL_PORT, 1001, IPv4Address("10.0.0.10"), False, NAT_MAC,
                                         IPv4Address("192.168.100.1"), IPv4Address("10.9.9.9"),
                                         CLIENT_MAC), table)
    assert check.output == ports["NAT"]
    (delivered,) = walk(router_flows(routers[2]) + check.flows, arriving)
    assert delivered[:2] == ("output", ports["NAT"])
    # the same packet for SERVER's MAC (its check on) is not delivered to it
    to_server = decide_miss(routers[1], Miss(ports["CLIENT"], 1001, IPv4Address("10.9.9.9"), False,
                                             SERVER_MAC), table)
    assert to_server.mapping is None and not to_server.resubmit


def test_the_appliance_is_trusted_by_its_mac_from_its_own_host(lab):
    routers, table, ports = lab
    def check(outer, eth_src):
        return decide_miss(routers[1], Miss(TUNNEL_PORT, 1001, IPv4Address("10.9.9.9"), False,
                                            CLIENT_MAC, IPv4Address(outer), IPv4Address("10.0.0.10"),
                                            eth_src), table)
    assert check("192.168.100.2", NAT_MAC).output == ports["CLIENT"]
    assert check("192.168.100.3", NAT_MAC).mapping is None          # NAT does not live there
    assert check("192.168.100.2", SERVER_MAC).mapping is None       # SERVER may not speak for others
    assert CHECK in {f.table for f in check("192.168.100.2", NAT_MAC).flows}
