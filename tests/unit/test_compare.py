"""`vpclab compare` on crafted pcaps: the seed's order passes; each kind of mistake is named."""
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether
from scapy.utils import wrpcap

from tests.unit.binaries import needs_binary
from vpclab.packets.compare import compare_traces
from vpclab.packets.trace import read_trace

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "traces" / "seed"
VM1, VM2 = ("10.0.0.148", "02:00:5e:ad:58:40"), ("10.0.0.185", "02:93:0e:03:bb:88")
BCAST = "ff:ff:ff:ff:ff:ff"


def arp_request(src, target):
    return Ether(src=src[1], dst=BCAST) / ARP(op=1, hwsrc=src[1], psrc=src[0], pdst=target[0])


def arp_reply(of, to, mac=None):
    mac = mac or of[1]
    return Ether(src=mac, dst=to[1]) / ARP(op=2, hwsrc=mac, psrc=of[0], hwdst=to[1], pdst=to[0])


def echo(src, dst, reply=False):
    return Ether(src=src[1], dst=dst[1]) / IP(src=src[0], dst=dst[0]) / ICMP(type=0 if reply else 8, id=7)


def seed_vm2():
    """ZIGI-VM2's packets in the seed's order."""
    return [echo(VM1, VM2), arp_request(VM2, VM1), arp_reply(VM1, VM2), echo(VM2, VM1, reply=True)]


def seed_vm1():
    return [arp_request(VM1, VM2), arp_reply(VM2, VM1), echo(VM1, VM2), echo(VM2, VM1, reply=True)]


def capture_dir(tmp_path: Path, vm2_packets) -> Path:
    folder = tmp_path / "capture"
    folder.mkdir()
    wrpcap(str(folder / "ZIGI-VM1.eth0.pcap"), seed_vm1())
    wrpcap(str(folder / "ZIGI-VM2.eth0.pcap"), vm2_packets)
    return folder


def vpclab_compare(*args):
    return subprocess.run([sys.executable, "-m", "vpclab", "compare", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO)


def test_seed_order_matches_the_documented_trace(tmp_path):
    done = vpclab_compare(capture_dir(tmp_path, seed_vm2()), SEED)
    assert done.returncode == 0, done.stdout
    assert "verdict: match (2 capture point(s))" in done.stdout


MUTATIONS = {
    "swapped order": (lambda p: [p[1], p[0], p[2], p[3]], "ZIGI-VM2:eth0: DIFFERENT at #1",
                      "same 4 packets arrived in a different order"),
    "missing packet": (lambda p: p[:3], "DIFFERENT at #4",
                       "1 expected packet(s) never arrived, first: 'ICMP echo reply"),
    "flooded ARP": (lambda p: [arp_request(VM1, VM2)] + p, "DIFFERENT at #1",
                    "ZIGI-VM2 saw an ARP request from 10.0.0.148 (who-has 10.0.0.185): the ARP was "
                    "flooded instead of answered by the virtual router"),
    "wrong MAC": (lambda p: [p[0], p[1], arp_reply(VM1, VM2, "02:00:5e:ad:58:41"), p[3]],
                  "DIFFERENT at #3", "the ARP reply says 10.0.0.148 is-at 02:00:5e:ad:58:41, the "
                  "expected trace says 02:00:5e:ad:58:40"),
}


@pytest.mark.parametrize("name", MUTATIONS)
def test_each_mistake_fails_with_exit_1_and_says_why(tmp_path, name):
    mutate, where, why = MUTATIONS[name]
    done = vpclab_compare(capture_dir(tmp_path, mutate(seed_vm2())), SEED)
    assert done.returncode == 1
    assert where in done.stdout and why in done.stdout
    assert "ZIGI-VM1:eth0: match" in done.stdout          # the other point is still fine
    assert "verdict: 1 of 2 capture point(s) differ: ZIGI-VM2:eth0" in done.stdout


@needs_binary("tcpdump", "renders the pcap whose text must read the same")
def test_text_and_pcap_of_the_same_packets_read_the_same(tmp_path):
    pcap = tmp_path / "vm2.pcap"
    wrpcap(str(pcap), seed_vm2())
    text = subprocess.run(["tcpdump", "-nn", "-r", str(pcap)], capture_output=True, text=True).stdout
    (tmp_path / "vm2.txt").write_text(text)
    from_pcap = [p.line for p in read_trace(pcap)]
    assert from_pcap == [p.line for p in read_trace(tmp_path / "vm2.txt")]
    assert from_pcap == [p.line for p in read_trace(SEED / "ZIGI-VM2.txt")]


def test_wildcards_and_vm_names_in_expected_lines(tmp_path, seed):
    expected = tmp_path / "ZIGI-VM2.txt"
    expected.write_text("IP ZIGI-VM1 > ZIGI-VM2: ICMP echo request, id 1, seq 1, length 64\n"
                        "ARP, Request who-has ZIGI-VM1 tell ZIGI-VM2, length 28\n"
                        "ARP, Reply ZIGI-VM1 is-at ZIGI-VM1.mac, length 28\n"
                        "IP 10.0.0.185 > *: ICMP echo reply, id 1, seq 1, length 64\n")
    folder = capture_dir(tmp_path, seed_vm2())
    (result,) = compare_traces(folder, expected, seed)
    assert result.matches, result.side_by_side()
    (result,) = compare_traces(folder, expected, None)     # without the names: no match
    assert not result.matches


def test_unreadable_inputs_exit_2(tmp_path):
    bad = tmp_path / "ZIGI-VM2.pcap"
    bad.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 3)
    done = vpclab_compare(bad, SEED / "ZIGI-VM2.txt")
    assert done.returncode == 2 and "not a readable pcap" in done.stderr
    done = vpclab_compare(tmp_path / "nothing-here", SEED)
    assert done.returncode == 2 and "no such file or folder" in done.stderr
