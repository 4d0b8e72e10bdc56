"""The `.2` resolver's answers: queries made with scapy's DNS layer, answers parsed back by it."""
import struct
from ipaddress import IPv4Address, IPv4Network

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from ryu_apps import dns_answer
from ryu_apps.dns_answer import Names, names_for, read_name
from vpclab.model.topology import ROUTER_MAC, Host, Topology, Vm, Vpc

ASKER_MAC, ASKER_IP = "02:00:0a:32:02:14", "10.50.2.20"
SERVER = IPv4Address("10.50.0.2")


def vm(name, index, vpc, ip):
    return Vm(name, index, vpc, "hv-a", IPv4Address(ip), f"02:00:00:00:00:{index:02x}", f"eni-{index}")


TOPOLOGY = Topology(
    "t", "", "geneve", "on-demand", 300, 1024, 100,
    hosts={"hv-a": Host("hv-a", 1, IPv4Address("192.168.100.1"))},
    vpcs={"shop": Vpc("shop", IPv4Network("10.50.0.0/16"), 1001),
          "Other": Vpc("Other", IPv4Network("10.60.0.0/16"), 1002),
          "bad_vpc": Vpc("bad_vpc", IPv4Network("10.70.0.0/16"), 1003)},
    vms={v.name: v for v in (vm("web-1", 1, "shop", "10.50.1.10"), vm("app-1", 2, "shop", "10.50.2.20"),
                             vm("DB", 3, "shop", "10.50.3.30"), vm("fw_1", 4, "shop", "10.50.9.9"),
                             vm("edge-", 5, "shop", "10.50.9.10"), vm("Twin", 6, "shop", "10.50.9.11"),
                             vm("twin", 7, "shop", "10.50.9.12"), vm("web-2", 8, "Other", "10.60.1.10"),
                             vm("api", 9, "Other", "10.60.1.11"),
                             vm("lone", 10, "bad_vpc", "10.70.1.1"))})
NAMES = names_for(TOPOLOGY, "shop")


def query(name, qtype="A", rd=1, ident=0x4242, sport=40000, dport=53, **dns):
    return bytes(Ether(src=ASKER_MAC, dst=ROUTER_MAC) / IP(src=ASKER_IP, dst=str(SERVER)) /
                 UDP(sport=sport, dport=dport) / DNS(id=ident, rd=rd, qd=DNSQR(qname=name, qtype=qtype), **dns))


def ask(name, qtype="A", names=NAMES, **kw) -> Ether:
    frame = dns_answer.reply(query(name, qtype, **kw), names, ROUTER_MAC, SERVER)
    assert frame is not None
    return Ether(frame)


def assert_framed_back_to_asker(pkt):
    assert (pkt[Ether].src, pkt[Ether].dst) == (ROUTER_MAC, ASKER_MAC)
    assert (pkt[IP].src, pkt[IP].dst, pkt[IP].ttl) == (str(SERVER), ASKER_IP, 64)
    assert (pkt[UDP].sport, pkt[UDP].dport) == (53, 40000)
    again = pkt.copy()
    del again[IP].chksum, again[UDP].chksum
    rebuilt = Ether(bytes(again))
    assert (pkt[IP].chksum, pkt[UDP].chksum) == (rebuilt[IP].chksum, rebuilt[UDP].chksum)


def assert_header(dns, rcode, answers, rd=1, ident=0x4242):
    assert (dns.id, dns.qr, dns.opcode, dns.aa, dns.tc, dns.rd, dns.ra, dns.rcode) == (ident, 1, 0, 1, 0, rd, 0, rcode)
    assert (dns.qdcount, dns.ancount, dns.nscount, dns.arcount) == (1, answers, 0, 0)


def the_answer(dns):
    rr = dns.an[0]
    return rr.rrname.decode(), rr.type, rr.rclass, rr.ttl, rr.rdata


def test_the_vpc_s_names_are_its_vms_lower_cased_and_ip_names():
    assert NAMES.forward == {
        "web-1.shop.internal": IPv4Address("10.50.1.10"), "ip-10-50-1-10.internal": IPv4Address("10.50.1.10"),
        "app-1.shop.internal": IPv4Address("10.50.2.20"), "ip-10-50-2-20.internal": IPv4Address("10.50.2.20"),
        "db.shop.internal": IPv4Address("10.50.3.30"), "ip-10-50-3-30.internal": IPv4Address("10.50.3.30"),
        "ip-10-50-9-9.internal": IPv4Address("10.50.9.9"), "ip-10-50-9-10.internal": IPv4Address("10.50.9.10"),
        "ip-10-50-9-11.internal": IPv4Address("10.50.9.11"), "ip-10-50-9-12.internal": IPv4Address("10.50.9.12")}
    assert NAMES.skipped == ("fw_1", "edge-", "Twin", "twin")    # '_', a trailing '-', twins by case
    assert NAMES.reverse["10.1.50.10.in-addr.arpa"] == "web-1.shop.internal"
    assert NAMES.reverse["9.9.50.10.in-addr.arpa"] == "ip-10-50-9-9.internal"
    assert names_for(TOPOLOGY, "Other").forward["web-2.other.internal"] == IPv4Address("10.60.1.10")
    assert names_for(TOPOLOGY, "bad_vpc").forward == {"ip-10-70-1-1.internal": IPv4Address("10.70.1.1")}


def test_a_known_name_gets_its_a_record():
    pkt = ask("web-1.shop.internal")
    assert_framed_back_to_asker(pkt)
    assert_header(pkt[DNS], rcode=0, answers=1)
    assert (pkt[DNS].qd[0].qname, pkt[DNS].qd[0].qtype, pkt[DNS].qd[0].qclass) == (b"web-1.shop.internal.", 1, 1)
    assert the_answer(pkt[DNS]) == ("web-1.shop.internal.", 1, 1, 60, "10.50.1.10")


def test_names_are_case_insensitive_and_the_question_s_case_is_echoed():
    pkt = ask("WEB-1.Shop.INTERNAL")
    assert pkt[DNS].qd[0].qname == b"WEB-1.Shop.INTERNAL."
    assert the_answer(pkt[DNS])[::4] == ("WEB-1.Shop.INTERNAL.", "10.50.1.10")
    assert the_answer(ask("db.shop.internal")[DNS])[4] == "10.50.3.30"


def test_an_aws_style_ip_name_gets_its_a_record():
    assert the_answer(ask("ip-10-50-9-9.internal")[DNS]) == ("ip-10-50-9-9.internal.", 1, 1, 60, "10.50.9.9")


def test_a_reverse_lookup_gets_the_vm_s_name():
    pkt = ask("10.1.50.10.in-addr.arpa", "PTR")
    assert_header(pkt[DNS], rcode=0, answers=1)
    assert the_answer(pkt[DNS]) == ("10.1.50.10.in-addr.arpa.", 12, 1, 60, b"web-1.shop.internal.")


@pytest.mark.parametrize("name", ["nosuch.example", "web-2.other.internal", "ip-10-60-1-10.internal",
                                  "10.1.60.10.in-addr.arpa", "fw_1.shop.internal", "nosuch.shop.internal"])
def test_anything_else_is_nxdomain_at_once_another_vpc_s_names_included(name):
    pkt = ask(name, "PTR" if name.endswith("arpa") else "A")
    assert_framed_back_to_asker(pkt)
    assert_header(pkt[DNS], rcode=3, answers=0)
    assert pkt[DNS].qd[0].qname == name.encode() + b"."


@pytest.mark.parametrize("name,qtype", [("web-1.shop.internal", "AAAA"), ("web-1.shop.internal", "MX"),
                                        ("10.1.50.10.in-addr.arpa", "A"), ("shop.internal", "A"),
                                        ("internal", "SOA")])
def test_a_known_name_asked_another_type_is_nodata(name, qtype):
    pkt = ask(name, qtype)
    assert_header(pkt[DNS], rcode=0, answers=0)
    assert pkt[DNS].qd[0].qtype == DNSQR(qtype=qtype).qtype


def test_rd_is_copied_and_the_id_echoed():
    pkt = ask("web-1.shop.internal", rd=0, ident=7)
    assert_header(pkt[DNS], rcode=0, answers=1, rd=0, ident=7)


def test_an_edns_query_is_answered_without_echoing_its_additional_record():
    from scapy.layers.dns import DNSRROPT
    pkt = ask("web-1.shop.internal", ar=DNSRROPT(rclass=1232))
    assert_header(pkt[DNS], rcode=0, answers=1)


def raw_query(body: bytes, flags=0x0100, qdcount=1) -> bytes:
    return bytes(Ether(src=ASKER_MAC, dst=ROUTER_MAC) / IP(src=ASKER_IP, dst=str(SERVER)) /
                 UDP(sport=40000, dport=53) / (struct.pack("!HHHHHH", 1, flags, qdcount, 0, 0, 0) + body))


QUESTION = b"\x05web-1\x04shop\x08internal\x00\x00\x01\x00\x01"


def test_a_raw_query_built_by_hand_is_answered():
    assert Ether(dns_answer.reply(raw_query(QUESTION), NAMES, ROUTER_MAC, SERVER))[DNS].an[0].rdata == "10.50.1.10"


@pytest.mark.parametrize("frame", [
    query("web-1.shop.internal", qr=1),                                  # a response
    query("web-1.shop.internal", opcode=2),                              # STATUS, not QUERY
    query("web-1.shop.internal", dport=5353),                            # not to port 53
    raw_query(QUESTION, qdcount=2),                                      # two questions announced
    raw_query(QUESTION, qdcount=0),
    raw_query(QUESTION[:-3]),                                            # cut in the type/class
    raw_query(b"\x05web-1\x04sh"),                                       # cut in a label
    raw_query(b"\x05web-1\xc0\x0c\x00\x01\x00\x01"),                     # a pointer back to itself: a loop
    raw_query(b"\xc0\x20\x00\x01\x00\x01" + b"\x00" * 20),               # a pointer forward
    raw_query(b"\x45web-1\x00\x00\x01\x00\x01"),                         # label type 0x40
    raw_query(b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63 + b"\x3f" + b"d" * 63
              + b"\x00\x00\x01\x00\x01"),                                # 257 octets: too long
    raw_query(b"\x00"[:0]),                                              # no question at all
    b"\x00" * 20,                                                        # not IPv4
], ids=["response", "opcode", "port", "qd2", "qd0", "cut-type", "cut-label", "loop", "forward",
        "label-type", "too-long", "empty", "not-ip"])
def test_a_malformed_query_or_a_response_gets_no_answer(frame):
    assert dns_answer.reply(frame, NAMES, ROUTER_MAC, SERVER) is None


def test_a_name_of_255_octets_is_read():
    name = b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63 + b"\x3d" + b"d" * 61 + b"\x00"
    assert len(name) == 255
    assert dns_answer.reply(raw_query(name + b"\x00\x01\x00\x01"), NAMES, ROUTER_MAC, SERVER) is not None


def test_compression_pointers_are_followed():
    """A compressed message (scapy compresses the answer's name to the question's)."""
    message = bytes(DNS(id=1, qr=1, qd=DNSQR(qname="web-1.shop.internal"),
                        an=DNSRR(rrname="app-1.shop.internal", rdata="10.50.2.20")).compress())
    question_end = 12 + len(b"\x05web-1\x04shop\x08internal\x00") + 4
    assert message[question_end + 6] & 0xC0 == 0xC0                       # app-1 + a pointer
    labels, end = read_name(message, question_end)
    assert labels == (b"app-1", b"shop", b"internal")
    assert end == question_end + 1 + len("app-1") + 2


def test_a_label_holding_a_dot_is_not_taken_for_two():
    body = b"\x0aweb-1.shop\x08internal\x00\x00\x01\x00\x01"
    pkt = Ether(dns_answer.reply(raw_query(body), NAMES, ROUTER_MAC, SERVER))
    assert pkt[DNS].rcode == 3


def test_names_of_an_unknown_vpc_are_empty():
    assert names_for(TOPOLOGY, "nosuch") == Names()
