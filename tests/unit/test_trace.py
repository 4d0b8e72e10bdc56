"""Trace normalisation: tcpdump text and pcap give one canonical line per packet."""
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import ICMP

from tests.unit.binaries import needs_binary
from vpclab.packets.compare import PointResult
from vpclab.packets.trace import _packet_line, normalise, parse_text

SEED_TRACES = Path(__file__).resolve().parents[2] / "traces" / "seed"
VM2_EXPECTED = [
    "ICMP echo request 10.0.0.148 > 10.0.0.185",
    "ARP request who-has 10.0.0.148 tell 10.0.0.185",
    "ARP reply 10.0.0.148 is-at 02:00:5e:ad:58:40",
    "ICMP echo reply 10.0.0.185 > 10.0.0.148",
]


def lines(name):
    return (SEED_TRACES / name).read_text().splitlines()


def test_expected_seed_trace_normalises_to_the_seed_order():
    assert normalise(lines("ZIGI-VM2.txt")) == VM2_EXPECTED
    assert normalise(lines("ZIGI-VM1.txt"))[:2] == [
        "ARP request who-has 10.0.0.185 tell 10.0.0.148",
        "ARP reply 10.0.0.185 is-at 02:93:0e:03:bb:88"]


def test_documented_typo_is_visible_and_corrected_file_fixes_it():
    documented = normalise(lines("documented/ZIGI-VM2.txt"))
    assert documented[0].startswith("other: IP 10.0.0.148.148 > 10.0.0.185")
    assert documented[1:] == VM2_EXPECTED[1:]
    result = PointResult("ZIGI-VM2:eth0", normalise(lines("ZIGI-VM2.txt")), documented)
    assert result.first_difference == 0


def test_timestamps_ids_chatter_and_ipv6_noise_are_dropped():
    run = ["tcpdump: verbose output suppressed, use -v[v]... for full protocol decode",
           "listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes",
           "12:00:00.1 IP6 fe80::1 > ff02::2: ICMP6, router solicitation, length 16",
           "12:31:44.350450 IP 0.0.0.0 > 224.0.0.22: igmp v3 report, 1 group record(s)",
           "12:29:03.441211 IP 10.0.0.148 > 10.0.0.185: ICMP echo request, id 4468, seq 1, length 64",
           "2 packets captured"]
    assert normalise(run) == [VM2_EXPECTED[0]]
    assert [p.line for p in parse_text(run, keep_noise=True)][0].startswith("other: IP6")


def test_underlay_text_forms_geneve_on_one_line_vxlan_on_two():
    geneve = ("12:35:24.496529 IP 192.168.100.1.43989 > 192.168.100.2.6081: Geneve, Flags [none], "
              "vni 0x3e9: IP 10.0.0.148 > 10.0.0.185: ICMP echo request, id 9467, seq 1, length 64")
    vxlan = ["12:35:29.440885 IP 192.168.100.1.43989 > 192.168.100.2.4789: VXLAN, flags [I] (0x08), vni 1001",
             "IP 10.0.0.148 > 10.0.0.185: ICMP echo request, id 9577, seq 1, length 64"]
    inner = "ICMP echo request 10.0.0.148 > 10.0.0.185"
    assert normalise([geneve]) == [f"Geneve 192.168.100.1 > 192.168.100.2 vni 1001: {inner}"]
    assert normalise(vxlan) == [f"VXLAN 192.168.100.1 > 192.168.100.2 vni 1001: {inner}"]


def test_pcap_packets_get_the_same_forms():
    inner = Ether() / IP(src="10.0.0.148", dst="10.0.0.185") / ICMP(type=8)
    outer = Ether() / IP(src="192.168.100.1", dst="192.168.100.2") / UDP(sport=4000, dport=6081)
    assert _packet_line(Ether(bytes(outer / GENEVE(vni=1001, proto=0x6558) / inner))) == \
        "Geneve 192.168.100.1 > 192.168.100.2 vni 1001: ICMP echo request 10.0.0.148 > 10.0.0.185"
    outer[UDP].dport = 4789
    assert _packet_line(Ether(bytes(outer / VXLAN(vni=1001) / inner))).startswith("VXLAN ")
    syn = Ether() / IP(src="10.0.0.148", dst="10.0.0.185") / TCP(sport=41000, dport=80, flags="S")
    assert _packet_line(syn) == "TCP 10.0.0.148:41000 > 10.0.0.185:80 [S]"
    text = "12:00:00.000001 IP 10.0.0.185.80 > 10.0.0.148.41000: Flags [S.], seq 1, ack 2, win 1"
    synack = Ether() / IP(src="10.0.0.185", dst="10.0.0.148") / TCP(sport=80, dport=41000, flags="SA")
    assert normalise([text]) == [_packet_line(synack)] == ["TCP 10.0.0.185:80 > 10.0.0.148:41000 [S.]"]


@needs_binary("tcpdump", "renders the pcap whose text must read the same")
def test_the_geneve_eni_option_reads_the_same_from_pcap_and_tcpdump_vv(tmp_path):
    """The underlay's text view is rendered with -vv, which prints the option's data."""
    import struct
    import subprocess

    from scapy.contrib.geneve import GeneveOptions
    from scapy.utils import wrpcap

    from vpclab.packets.trace import read_pcap

    option = GeneveOptions(classid=0xFFFF, type=0x80, data=struct.pack("!II", 1, 2))
    inner = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / \
        IP(src="10.0.0.148", dst="10.0.0.185") / ICMP(type=8)
    outer = Ether() / IP(src="192.168.100.1", dst="192.168.100.2") / UDP(sport=4000, dport=6081)
    pcap = tmp_path / "host1.eth0.pcap"
    wrpcap(str(pcap), [outer / GENEVE(vni=1001, proto=0x6558, options=[option]) / inner,
                       outer / GENEVE(vni=1001, proto=0x6558) / inner])
    want = ["Geneve 192.168.100.1 > 192.168.100.2 vni 1001 eni 1>2: ICMP echo request 10.0.0.148 > 10.0.0.185",
            "Geneve 192.168.100.1 > 192.168.100.2 vni 1001: ICMP echo request 10.0.0.148 > 10.0.0.185"]
    assert [p.line for p in read_pcap(pcap)] == want
    verbose = subprocess.run(["tcpdump", "-nn", "-vv", "-r", str(pcap)], capture_output=True, text=True)
    assert "data 00000001 00000002" in verbose.stdout          # what a student reads
    assert normalise(verbose.stdout.splitlines()) == want
    plain = subprocess.run(["tcpdump", "-nn", "-r", str(pcap)], capture_output=True, text=True)
    assert normalise(plain.stdout.splitlines()) == [want[1], want[1]]   # -nn cannot show it


def test_verbose_arp_and_tcp_fold_into_the_usual_forms():
    text = ["12:00:00.000001 ARP, Ethernet (len 6), IPv4 (len 4), Request who-has 10.0.0.185 tell 10.0.0.148, length 28",
            "12:00:00.000002 IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), length 60)",
            "    10.0.0.148.41000 > 10.0.0.185.80: Flags [S], cksum 0x1 (correct), seq 1, win 64240, length 0"]
    assert normalise(text) == ["ARP request who-has 10.0.0.185 tell 10.0.0.148",
                               "TCP 10.0.0.148:41000 > 10.0.0.185:80 [S]"]


def test_an_expected_line_without_the_option_accepts_any_but_one_with_it_must_agree():
    from vpclab.packets.compare import line_matches

    captured = "Geneve 192.168.100.1 > 192.168.100.2 vni 1001 eni 1>2: ICMP echo request 10.0.0.148 > 10.0.0.185"
    assert line_matches(captured.replace(" eni 1>2", ""), captured)
    assert line_matches(captured, captured)
    assert not line_matches(captured.replace("eni 1>2", "eni 3>2"), captured)
    assert line_matches(captured.replace("eni 1>2", "eni *>2"), captured)
    assert not line_matches(captured, captured.replace(" eni 1>2", ""))   # the option is missing
