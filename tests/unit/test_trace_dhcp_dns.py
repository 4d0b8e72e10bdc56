"""DHCP and DNS in traces: one canonical line from a pcap and from tcpdump -v/-vv text,
a clear `other:` line from text that hides what the line needs, compare and the diagram."""
import functools
import json
import subprocess
import tempfile
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from ryu_apps import dhcp_answer, dns_answer
from ryu_apps.dhcp_answer import Lease
from tests.unit.binaries import needs_binary
from vpclab.packets.compare import apply_aliases, compare_captures
from vpclab.packets.diagram import answered_by_router, build_sequence
from vpclab.packets.trace import CANONICAL, Packet, normalise, read_pcap
from vpclab.model.validation import load_topology

VM_MAC, VM_IP = "02:00:0a:32:02:14", "10.50.2.20"
ROUTER_MAC = "02:76:70:63:00:01"
DNS_IP = IPv4Address("10.50.0.2")
CHADDR = bytes.fromhex(VM_MAC.replace(":", "")) + b"\x00" * 10
T0 = 1_800_000_000.0
TOPOLOGY = """\
name: vpc-router
encap: geneve
hosts: {hv-a: {}, hv-c: {}}
vpcs:
  shop:
    cidr: 10.50.0.0/16
    subnets: {web: {cidr: 10.50.1.0/24}, app: {cidr: 10.50.2.0/24}}
vms:
  web-1: {vpc: shop, subnet: web, host: hv-a, ip: 10.50.1.10}
  app-1: {vpc: shop, subnet: app, host: hv-c, ip: 10.50.2.20}
"""
LEASE = Lease(IPv4Address(VM_IP), IPv4Network("10.50.2.0/24"), IPv4Address("10.50.2.1"), DNS_IP,
              1450, ROUTER_MAC, IPv4Address("10.50.2.1"), 3600, "app-1", "shop.internal")
BOOT = ["DHCP DISCOVER", "DHCP OFFER 10.50.2.20", "DHCP REQUEST 10.50.2.20", "DHCP ACK 10.50.2.20",
        "DHCP REQUEST 10.50.2.20", "DHCP ACK 10.50.2.20", "DHCP REQUEST 10.50.2.99", "DHCP NAK"]
LOOKUPS = ["DNS A? web-1.shop.internal", "DNS answer web-1.shop.internal A 10.50.1.10",
           "DNS PTR? 10.1.50.10.in-addr.arpa", "DNS answer 10.1.50.10.in-addr.arpa PTR web-1.shop.internal",
           "DNS A? nosuch.example", "DNS NXDOMAIN nosuch.example",
           "DNS AAAA? web-1.shop.internal", "DNS NODATA web-1.shop.internal AAAA"]


def client(options, src="0.0.0.0", dst="255.255.255.255", ciaddr="0.0.0.0", eth_dst="ff:ff:ff:ff:ff:ff"):
    return Ether(src=VM_MAC, dst=eth_dst) / IP(src=src, dst=dst) / UDP(sport=68, dport=67) / \
        BOOTP(xid=0x1234, ciaddr=ciaddr, chaddr=CHADDR) / DHCP(options=options + ["end"])


def boot_packets() -> list[Ether]:
    """A DHCP boot, a renewal and a wrong request, each answered by the router's own code."""
    asked = [client([("message-type", "discover"), ("param_req_list", [1, 3, 6, 26])]),
             client([("message-type", "request"), ("server_id", "10.50.2.1"), ("requested_addr", VM_IP)]),
             client([("message-type", "request")], src=VM_IP, dst="10.50.2.1", ciaddr=VM_IP, eth_dst=ROUTER_MAC),
             client([("message-type", "request"), ("requested_addr", "10.50.2.99")])]
    out = []
    for pkt in asked:
        out += [pkt, Ether(dhcp_answer.reply(bytes(pkt), VM_MAC, LEASE))]
    return out


def lookup_packets() -> list[Ether]:
    names = dns_answer.names_for(load_topology_text(), "shop")
    out = []
    for port, (name, qtype) in enumerate([("web-1.shop.internal", "A"), ("10.1.50.10.in-addr.arpa", "PTR"),
                                          ("nosuch.example", "A"), ("WEB-1.shop.internal", "AAAA")]):
        query = Ether(src=VM_MAC, dst=ROUTER_MAC) / IP(src=VM_IP, dst=str(DNS_IP)) / \
            UDP(sport=40000 + port, dport=53) / DNS(id=port + 1, rd=1, qd=DNSQR(qname=name, qtype=qtype))
        out += [query, Ether(dns_answer.reply(bytes(query), names, ROUTER_MAC, DNS_IP))]
    return out


@functools.cache
def load_topology_text():
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "topology.yaml"
        path.write_text(TOPOLOGY)
        return load_topology(path)


def write(path, packets, start=T0):
    for i, pkt in enumerate(packets):
        pkt.time = start + i / 1000
    wrpcap(str(path), packets)
    return path


# tcpdump 4.99.3 -nn -v of the first packets of boot_packets() and lookup_packets()
TCPDUMP_V = """\
14:26:09.434094 IP (tos 0x0, ttl 64, id 1, offset 0, flags [none], proto UDP (17), length 268)
    0.0.0.0.68 > 255.255.255.255.67: BOOTP/DHCP, Request from 02:00:0a:32:02:14, length 240, xid 0x1234, Flags [none]
\t  Client-Ethernet-Address 02:00:0a:32:02:14
\t  Vendor-rfc1048 Extensions
\t    Magic Cookie 0x63825363
\t    DHCP-Message (53), length 1: Discover
\t    Parameter-Request (55), length 4: 
\t      Subnet-Mask (1), Default-Gateway (3), Domain-Name-Server (6), MTU (26)
14:26:09.434821 IP (tos 0x0, ttl 64, id 0, offset 0, flags [none], proto UDP (17), length 328)
    10.50.2.1.67 > 255.255.255.255.68: BOOTP/DHCP, Reply, length 300, xid 0x1234, Flags [none]
\t  Your-IP 10.50.2.20
\t  Client-Ethernet-Address 02:00:0a:32:02:14
\t  Vendor-rfc1048 Extensions
\t    Magic Cookie 0x63825363
\t    DHCP-Message (53), length 1: Offer
\t    Server-ID (54), length 4: 10.50.2.1
\t    Lease-Time (51), length 4: 3600
\t    Subnet-Mask (1), length 4: 255.255.255.0
\t    Default-Gateway (3), length 4: 10.50.2.1
\t    Domain-Name-Server (6), length 4: 10.50.0.2
\t    MTU (26), length 2: 1450
\t    BR (28), length 4: 10.50.2.255
\t    Hostname (12), length 5: "app-1"
\t    Domain-Name (15), length 13: "shop.internal"
14:26:09.436185 IP (tos 0x0, ttl 64, id 1, offset 0, flags [none], proto UDP (17), length 272)
    10.50.2.20.68 > 10.50.2.1.67: BOOTP/DHCP, Request from 02:00:0a:32:02:14, length 244, xid 0x1234, Flags [none]
\t  Client-IP 10.50.2.20
\t  Client-Ethernet-Address 02:00:0a:32:02:14
\t  Vendor-rfc1048 Extensions
\t    Magic Cookie 0x63825363
\t    DHCP-Message (53), length 1: Request
14:26:09.436705 IP (tos 0x0, ttl 64, id 0, offset 0, flags [none], proto UDP (17), length 328)
    10.50.2.1.67 > 255.255.255.255.68: BOOTP/DHCP, Reply, length 300, xid 0x1234, Flags [none]
\t  Client-Ethernet-Address 02:00:0a:32:02:14
\t  Vendor-rfc1048 Extensions
\t    Magic Cookie 0x63825363
\t    DHCP-Message (53), length 1: NACK
\t    Server-ID (54), length 4: 10.50.2.1
14:23:32.237116 IP (tos 0x0, ttl 64, id 1, offset 0, flags [none], proto UDP (17), length 65)
    10.50.2.20.40000 > 10.50.0.2.53: 1+ A? web-1.shop.internal. (37)
14:23:32.237574 IP (tos 0x0, ttl 64, id 0, offset 0, flags [none], proto UDP (17), length 81)
    10.50.0.2.53 > 10.50.2.20.40000: 1*- 1/0/0 web-1.shop.internal. A 10.50.1.10 (53)
14:23:32.238412 IP (tos 0x0, ttl 64, id 0, offset 0, flags [none], proto UDP (17), length 125)
    10.50.0.2.53 > 10.50.2.20.40001: 2*- 1/0/0 10.1.50.10.in-addr.arpa. PTR web-1.shop.internal. (97)
14:23:32.239194 IP (tos 0x0, ttl 64, id 0, offset 0, flags [none], proto UDP (17), length 60)
    10.50.0.2.53 > 10.50.2.20.40002: 3 NXDomain*- 0/0/0 (32)
"""
TCPDUMP_VV_NEGATIVE = [
    "14:23:32.239194 IP 10.50.0.2.53 > 10.50.2.20.40002: [udp sum ok] 3 NXDomain*- q: A? nosuch.example. 0/0/0 (32)",
    "14:23:32.240073 IP 10.50.0.2.53 > 10.50.2.20.40003: [udp sum ok] 4*- q: AAAA? WEB-1.shop.internal. 0/0/0 (37)",
    "14:23:32.240073 IP 10.50.0.2.53 > 10.50.2.20.40003: 5 ServFail- q: A? web-1.shop.internal. 0/0/0 (37)",
    "14:23:32.240073 IP 10.50.0.2.53 > 10.50.2.20.40003: 6*- 2/0/1 a.x. A 10.0.0.1, a.x. A 10.0.0.2 ar: . OPT (60)"]
TCPDUMP_NN = [
    "14:23:32.234094 IP 0.0.0.0.68 > 255.255.255.255.67: BOOTP/DHCP, Request from 02:00:0a:32:02:14, length 262",
    "14:23:32.234821 IP 10.50.2.1.67 > 255.255.255.255.68: BOOTP/DHCP, Reply, length 306",
    "14:23:32.237574 IP 10.50.0.2.53 > 10.50.2.20.40000: 7*- 1/0/0 A 10.50.1.10 (72)",
    "14:23:32.239194 IP 10.50.0.2.53 > 10.50.2.20.40002: 9 NXDomain*- 0/0/0 (32)",
    "14:23:32.240073 IP 10.50.0.2.53 > 10.50.2.20.40003: 10*- 0/0/0 (37)"]


def test_a_pcap_of_a_dhcp_boot_reads_as_its_canonical_lines(tmp_path):
    assert [p.line for p in read_pcap(write(tmp_path / "boot.pcap", boot_packets()))] == BOOT


def test_a_pcap_of_dns_lookups_reads_as_its_canonical_lines(tmp_path):
    assert [p.line for p in read_pcap(write(tmp_path / "dns.pcap", lookup_packets()))] == LOOKUPS


def test_other_dhcp_messages_are_named_bare(tmp_path):
    packets = [client([("message-type", kind)], src=VM_IP, ciaddr=VM_IP) for kind in ("release", "inform")]
    packets.append(client([("message-type", "decline"), ("requested_addr", VM_IP)]))
    lines = [p.line for p in read_pcap(write(tmp_path / "x.pcap", packets))]
    assert lines == ["DHCP RELEASE", "DHCP INFORM", "DHCP DECLINE"]


def test_a_query_of_type_any_is_spelt_as_tcpdump_spells_it(tmp_path):
    query = Ether(src=VM_MAC, dst=ROUTER_MAC) / IP(src=VM_IP, dst=str(DNS_IP)) / UDP(sport=40000, dport=53) / \
        DNS(id=1, rd=1, qd=DNSQR(qname="web-1.shop.internal", qtype="ALL"))
    text = "12:00:00.000001 IP 10.50.2.20.40000 > 10.50.0.2.53: 1+ ANY? web-1.shop.internal. (37)"
    assert [p.line for p in read_pcap(write(tmp_path / "any.pcap", [query]))] == normalise([text]) == \
        ["DNS ANY? web-1.shop.internal"]


def test_a_pcap_packet_keeps_its_sources_for_the_diagram(tmp_path):
    packets = read_pcap(write(tmp_path / "boot.pcap", boot_packets()))
    assert [(p.src_mac, p.src_ip) for p in packets[:2]] == [(VM_MAC, "0.0.0.0"), (ROUTER_MAC, "10.50.2.1")]


def test_tcpdump_v_text_reads_as_the_pcap_does():
    assert normalise(TCPDUMP_V.splitlines()) == [BOOT[0], BOOT[1], BOOT[4], BOOT[7], *LOOKUPS[:2], LOOKUPS[3],
                                                 "other: DNS NXDOMAIN, question not shown (tcpdump -vv shows it)"]


def test_tcpdump_vv_shows_the_question_of_a_negative_answer():
    assert normalise(TCPDUMP_VV_NEGATIVE) == [
        "DNS NXDOMAIN nosuch.example", "DNS NODATA web-1.shop.internal AAAA", "DNS SERVFAIL web-1.shop.internal",
        "DNS answer a.x A 10.0.0.1, a.x A 10.0.0.2"]


def test_tcpdump_nn_text_is_a_clear_other_line_never_a_wrong_canonical_one():
    assert normalise(TCPDUMP_NN) == [
        "other: DHCP Request from 02:00:0a:32:02:14, message type not shown (tcpdump -v shows it)",
        "other: DHCP Reply, message type not shown (tcpdump -v shows it)",
        "other: DNS answer A 10.50.1.10, names not shown (tcpdump -v shows them)",
        "other: DNS NXDOMAIN, question not shown (tcpdump -vv shows it)",
        "other: DNS NODATA, question not shown (tcpdump -vv shows it)"]


@needs_binary("tcpdump", "prints the text this reader must read as the pcap reader does")
@pytest.mark.parametrize("flag", ["-v", "-vv"])
def test_real_tcpdump_text_agrees_with_the_pcap_reader(tmp_path, flag):
    pcap = write(tmp_path / "all.pcap", boot_packets() + lookup_packets())
    text = subprocess.run(["tcpdump", "-nn", flag, "-r", str(pcap)], capture_output=True, text=True,
                          check=True).stdout.splitlines()
    expected = BOOT + LOOKUPS
    if flag == "-v":     # no question in a response: the negative answers cannot be named
        expected = expected[:-3] + ["other: DNS NXDOMAIN, question not shown (tcpdump -vv shows it)",
                                    expected[-2], "other: DNS NODATA, question not shown (tcpdump -vv shows it)"]
    assert normalise(text) == expected


def test_canonical_lines_are_read_as_they_are():
    lines = BOOT + LOOKUPS + ["DHCP OFFER *", "DNS A? *"]
    assert all(CANONICAL.match(line) for line in lines)
    assert normalise(lines) == lines


def test_compare_matches_an_expected_trace_of_these_lines_against_a_pcap(tmp_path):
    expected, capture = tmp_path / "expected", tmp_path / "capture"
    expected.mkdir(), capture.mkdir()
    (expected / "app-1.txt").write_text("\n".join(BOOT + LOOKUPS) + "\n")
    write(capture / "app-1.eth0.pcap", boot_packets() + lookup_packets())
    assert compare_captures(capture, expected).match
    (expected / "app-1.txt").write_text("\n".join(BOOT + LOOKUPS).replace("OFFER 10.50.2.20", "OFFER 10.50.2.21"))
    result = compare_captures(capture, expected)
    assert not result.match and result.points[0].first_difference == 1


def test_vm_names_in_dns_names_are_not_taken_for_aliases():
    names = {"web-1": "10.50.1.10", "web-1.mac": "02:00:00:00:00:01", "ZIGI-VM1": "10.0.0.148"}
    lines = ["DNS A? web-1.shop.internal", "DNS A? web-1", "DNS answer web-1.shop.internal A web-1",
             "DNS answer 10.1.50.10.in-addr.arpa PTR web-1", "DNS NXDOMAIN web-1",
             "ARP reply web-1 is-at web-1.mac", "IP ZIGI-VM1.41000 > web-1.80: Flags [S]"]
    assert apply_aliases(lines, names) == [
        "DNS A? web-1.shop.internal", "DNS A? web-1", "DNS answer web-1.shop.internal A 10.50.1.10",
        "DNS answer 10.1.50.10.in-addr.arpa PTR web-1", "DNS NXDOMAIN web-1",
        "ARP reply 10.50.1.10 is-at 02:00:00:00:00:01", "IP 10.0.0.148.41000 > 10.50.1.10.80: Flags [S]"]


def capture_folder(folder, packets):
    folder.mkdir()
    write(folder / "app-1.eth0.pcap", packets)
    (folder / "topology.yaml").write_text(TOPOLOGY)
    nodes = {"app-1": {"kind": "vm", "vpc": "shop", "host": "hv-c", "ip": VM_IP, "mac": VM_MAC, "eni_key": 1}}
    (folder / "capture.json").write_text(json.dumps({
        "lab": "vpc-router", "commands": [{"node": "app-1", "command": ["udhcpc"], "exit_code": 0}],
        "points": ["app-1:eth0"], "nodes": nodes}))
    return folder


def test_the_diagram_draws_the_vm_asking_and_its_router_answering(tmp_path):
    seq = build_sequence(capture_folder(tmp_path / "cap", boot_packets() + lookup_packets()))
    assert seq.lanes == ["app-1", "router hv-c", "mapping service"]
    arrows = [(a.src, a.dst, a.label) for a in seq.arrows]
    asks, answers = arrows[0::2], arrows[1::2]
    assert all((src, dst) == ("app-1", "router hv-c") for src, dst, _ in asks)
    assert all((src, dst) == ("router hv-c", "app-1") for src, dst, _ in answers)
    assert [label for _, _, label in arrows] == BOOT + LOOKUPS
    assert {a.kind for a in seq.arrows} == {"packet"}


def test_the_router_answers_from_its_mac_or_the_vpc_router_s_addresses():
    """A subnet's .1 or the VPC's .2, or ROUTER_MAC; a VM's own address or MAC is not."""
    topology = load_topology_text()
    other = "02:00:00:00:00:99"
    assert answered_by_router(Packet("DNS x", src_mac=ROUTER_MAC, src_ip="10.50.1.10"), topology, "shop")
    assert answered_by_router(Packet("DNS x", src_mac=other, src_ip="10.50.0.2"), topology, "shop")
    assert answered_by_router(Packet("DHCP x", src_mac=other, src_ip="10.50.1.1"), topology, "shop")
    assert not answered_by_router(Packet("DNS x", src_mac=other, src_ip="10.50.1.10"), topology, "shop")
    assert not answered_by_router(Packet("DNS x", src_mac=other, src_ip="10.50.0.3"), topology, "shop")
    assert not answered_by_router(Packet("DNS x", src_mac=other, src_ip="10.50.0.2"), topology, "nosuch")
