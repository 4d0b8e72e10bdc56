"""A VM that forges its source IP or MAC (or ARP sender) reaches nobody."""
import re
import sys

from tests.integration.labtools import SEED

FORGE = """
from scapy.all import ARP, ICMP, IP, Ether, sendp
vm2 = "02:93:0e:03:bb:88"
me = "02:00:5e:ad:58:40"
def echo(src_mac, src_ip, ident):
    return Ether(src=src_mac, dst=vm2) / IP(src=src_ip, dst="10.0.0.185") / ICMP(id=ident)
frames = [
    echo(me, "10.0.0.99", 0x1111),                  # forged source IP
    echo("02:00:00:00:00:99", "10.0.0.148", 0x1112),  # forged source MAC
    echo(me, "10.0.0.185", 0x1113),                 # claims to be VM2 itself
    Ether(src=me, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=me, psrc="10.0.0.99", pdst="10.0.0.185"),
    Ether(src=me, dst="ff:ff:ff:ff:ff:ff") / ARP(op=2, hwsrc=me, psrc="10.0.0.185", pdst="10.0.0.148"),
    echo(me, "10.0.0.148", 0x2222),                 # the only honest one
]
sendp(frames, iface="eth0", verbose=False)
"""


def test_forged_source_ip_or_mac_reaches_nobody(vpclab_lab, tmp_path):
    lab = vpclab_lab(SEED)
    # quiet=0.5: VM2's answer to the honest echo comes after the forged frames
    with lab.capture(["ZIGI-VM1", "ZIGI-VM2"], tmp_path, quiet=0.5) as cap:
        done = lab.exec("ZIGI-VM1", sys.executable, "-c", FORGE, timeout=60)
        assert done.returncode == 0, done.stderr
    at_vm1, at_vm2 = cap.lines()["ZIGI-VM1"], cap.lines()["ZIGI-VM2"]
    received = "\n".join(at_vm2)
    # only the honest echo arrived (and VM2's reply to it)
    assert re.findall(r"id (\d+)", received) == [str(0x2222), str(0x2222)], received
    # the only ARP at VM2 is its own, for the honest sender, answered by the router
    arp = [l.split(" ", 1)[1] for l in at_vm2 if " ARP, " in l]
    assert arp == ["ARP, Request who-has 10.0.0.148 tell 10.0.0.185, length 28",
                   "ARP, Reply 10.0.0.148 is-at 02:00:5e:ad:58:40, length 28"], received
    # the forged ARP request (sender 10.0.0.99) got no answer from the router
    # (VM1's capture also shows its own forged frames going out)
    assert any("tell 10.0.0.99" in l for l in at_vm1)
    assert not [l for l in at_vm1 if "is-at 02:93:0e:03:bb:88" in l], at_vm1
