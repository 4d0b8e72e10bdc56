"""The service's own frame parser reads what os-ken's full decoder reads, on frames scapy
builds; a frame cut short is None; a miss is read from it as before."""
from ipaddress import IPv4Address
from types import SimpleNamespace

import pytest
from os_ken.lib.packet import arp, ethernet, ipv4, packet
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

from ryu_apps import packet_in
from ryu_apps.mapping_service import miss_from_packet_in
from vpclab.router.pipeline import ARP as ARP_TABLE, CHECK, FORWARD

VM, PEER = "02:00:0a:00:00:05", "02:00:0a:00:00:07"

FRAMES = {
    "arp request": Ether(dst="ff:ff:ff:ff:ff:ff", src=VM) / ARP(
        op=1, hwsrc=VM, psrc="10.0.0.5", pdst="10.0.0.7"),
    "arp reply": Ether(dst=VM, src=PEER) / ARP(
        op=2, hwsrc=PEER, psrc="10.0.0.7", hwdst=VM, pdst="10.0.0.5"),
    "ipv4 udp": Ether(dst=PEER, src=VM) / IP(src="10.0.0.5", dst="10.0.0.7") / UDP(dport=53),
    "ipv4 icmp with options": Ether(dst=PEER, src=VM) / IP(
        src="10.0.0.5", dst="10.0.1.9", options=b"\x01\x01\x01\x00") / ICMP(),
    "tagged arp request": Ether(dst="ff:ff:ff:ff:ff:ff", src=VM) / Dot1Q(vlan=5) / ARP(
        op=1, hwsrc=VM, psrc="10.0.0.5", pdst="10.0.0.9"),
    "ipv6": Ether(dst=PEER, src=VM) / IPv6(src="fd00::5", dst="fd00::7") / UDP(),
}


def os_ken_view(data: bytes) -> dict:
    """What the service read from os-ken's decoder before."""
    pkt = packet.Packet(data)
    eth, req, ip = (pkt.get_protocol(p) for p in (ethernet.ethernet, arp.arp, ipv4.ipv4))
    return {"eth": (eth.dst, eth.src),
            "arp": (req.opcode, IPv4Address(req.src_ip), IPv4Address(req.dst_ip)) if req else None,
            "ip": (IPv4Address(ip.src), IPv4Address(ip.dst)) if ip else None}


def own_view(data: bytes) -> dict:
    f = packet_in.parse(data)
    return {"eth": (f.eth_dst, f.eth_src),
            "arp": (f.arp_op, f.arp_spa, f.arp_tpa) if f.arp_op is not None else None,
            "ip": (f.ip_src, f.ip_dst) if f.ip_dst is not None else None}


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_the_same_fields_as_os_ken_reads(name):
    data = bytes(FRAMES[name])
    assert own_view(data) == os_ken_view(data)


def test_the_types_it_reads():
    assert packet_in.parse(bytes(FRAMES["arp request"])).arp_tpa == IPv4Address("10.0.0.7")
    assert packet_in.parse(bytes(FRAMES["tagged arp request"])).l3 == 18
    other = packet_in.parse(bytes(FRAMES["ipv6"]))
    assert other.eth_type == 0x86DD and other.arp_op is None and other.ip_dst is None


@pytest.mark.parametrize("name,cut", [("arp request", 41), ("ipv4 udp", 33), ("arp request", 13),
                                      ("tagged arp request", 17), ("ipv4 udp", 0)])
def test_a_frame_cut_short_is_none(name, cut):
    assert packet_in.parse(bytes(FRAMES[name])[:cut]) is None


def packet_in_msg(name: str, table: int, **match) -> SimpleNamespace:
    return SimpleNamespace(data=bytes(FRAMES[name]), table_id=table,
                           match={"in_port": 3, "metadata": 100, **match})


def test_misses_read_from_the_frame():
    request = miss_from_packet_in(packet_in_msg("arp request", ARP_TABLE))
    assert (request.in_port, request.vni, request.target, request.is_arp) == \
        (3, 100, IPv4Address("10.0.0.7"), True)
    assert miss_from_packet_in(packet_in_msg("arp reply", ARP_TABLE)) is None
    sent = miss_from_packet_in(packet_in_msg("ipv4 udp", FORWARD))
    assert (sent.target, sent.is_arp, sent.eth_dst) == (IPv4Address("10.0.0.7"), False, PEER)
    assert miss_from_packet_in(packet_in_msg("ipv6", FORWARD)) is None
    cut = packet_in_msg("ipv4 udp", FORWARD)
    cut.data = cut.data[:30]
    assert miss_from_packet_in(cut) is None


def test_a_receive_check_reads_the_inner_packet_and_the_tunnel():
    check = miss_from_packet_in(packet_in_msg("ipv4 udp", CHECK, tun_ipv4_src="192.168.0.2"))
    assert (check.target, check.destination, check.tun_src) == \
        (IPv4Address("10.0.0.5"), IPv4Address("10.0.0.7"), IPv4Address("192.168.0.2"))
    assert (check.eth_dst, check.eth_src, check.is_arp) == (PEER, VM, False)
    assert miss_from_packet_in(packet_in_msg("ipv4 udp", CHECK)) is None     # no tunnel source
