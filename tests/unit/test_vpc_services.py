"""The mapping service's DHCP and .2 answers for a VM, from the lab's own records."""
from ipaddress import IPv4Address

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from ryu_apps.vpc_services import VpcServices, is_service, lease_for
from tests.unit.conftest import TOPOLOGIES
from vpclab.router.inventory import Inventory
from vpclab.router.pipeline import CLASSIFY, FORWARD, ROUTE
from vpclab.model.topology import ROUTER_MAC
from vpclab.model.validation import load_topology

TOPOLOGY = load_topology(TOPOLOGIES / "vpc-router.yaml")
INVENTORY = Inventory.from_topology(TOPOLOGY)
APP = TOPOLOGY.vms["app-1"]
ROUTER, PORT = INVENTORY.routers()[3], INVENTORY.ports["app-1"]


def discover() -> bytes:
    mac = bytes.fromhex(APP.mac.replace(":", ""))
    return bytes(Ether(src=APP.mac, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
                 / UDP(sport=68, dport=67) / BOOTP(chaddr=mac, xid=7)
                 / DHCP(options=[("message-type", "discover"), "end"]))


def query(dst: str, name: str) -> bytes:
    return bytes(Ether(src=APP.mac, dst=ROUTER_MAC) / IP(src=str(APP.ip), dst=dst)
                 / UDP(sport=40000, dport=53) / DNS(id=9, rd=1, qd=DNSQR(qname=name)))


def test_dhcp_offers_the_mapping_s_address_with_the_subnet_s_router_and_the_vpc_s_resolver():
    assert is_service(CLASSIFY, discover()) and not is_service(FORWARD, discover())
    answer = VpcServices().answer(TOPOLOGY, ROUTER, PORT, CLASSIFY, discover())
    offer = Ether(answer.frame)
    options = dict(o for o in offer[DHCP].options if isinstance(o, tuple))
    assert offer[BOOTP].yiaddr == "10.50.2.20" and offer[Ether].src == ROUTER_MAC
    assert (options["router"], options["name_server"], options["subnet_mask"]) == \
        ("10.50.2.1", "10.50.0.2", "255.255.255.0")
    assert options["message-type"] == 2 and answer.event == "dhcp"


def test_the_lease_follows_the_vm_s_subnet_and_vpc():
    lease = lease_for(TOPOLOGY, TOPOLOGY.vms["fw"])
    assert (lease.ip, lease.router, lease.dns, lease.domain) == \
        (IPv4Address("10.50.9.9"), IPv4Address("10.50.9.1"), IPv4Address("10.50.0.2"), "shop.internal")


def test_dns_to_the_vpc_s_resolver_is_answered_and_to_another_server_is_routed():
    services = VpcServices()
    to_resolver, elsewhere = query("10.50.0.2", "web-1.shop.internal"), query("8.8.8.8", "x.example")
    assert services.ours(TOPOLOGY, ROUTER, PORT, ROUTE, to_resolver)
    assert not services.ours(TOPOLOGY, ROUTER, PORT, ROUTE, elsewhere)
    reply = Ether(services.answer(TOPOLOGY, ROUTER, PORT, ROUTE, to_resolver).frame)
    assert reply[IP].src == "10.50.0.2" and reply[DNS].an.rdata == "10.50.1.10"
