"""A VM that scans cannot overload the mapping service or its neighbours."""
import sys
import time

from tests.integration.labtools import MULTI_VPC
from vpclab.model.topology import NEGATIVE_TTL

# Frames built first, then written on a raw socket in a tight loop: thousands per second
# whatever the load, far above the port's 100/s meter (scapy's sendp builds as it sends,
# and on a busy machine it can fall to the meter's rate, when nothing would be limited).
SCAN = """
import socket
from scapy.all import ARP, Ether, get_if_hwaddr
me = get_if_hwaddr("eth0")
frames = [bytes(Ether(src=me, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=me, psrc="10.0.0.148",
          pdst=f"10.0.{{i // 250}}.{{1 + i % 250}}")) for i in range({count})]
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind(("eth0", 0))
for frame in frames:
    raw.send(frame)
"""


def scan(lab, vm: str, count: int) -> None:
    done = lab.exec(vm, sys.executable, "-c", SCAN.format(count=count), timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_scan_is_rate_limited_and_counted(vpclab_lab):
    lab = vpclab_lab(MULTI_VPC)
    scan(lab, "ZIGI-VM1", 2000)
    stats = lab.stats()
    host1 = stats["routers"]["host1"]
    looked_up = stats["service"]["lookups"]
    # the port's meter dropped most of what reached the router: the service saw a bounded part
    assert host1["misses_limited"] > looked_up > 0, (host1, stats["service"])
    assert host1["unknown"] == stats["service"]["unknown"] > 0
    assert lab.ping("ZIGI-VM3", "10.0.0.185")            # a neighbour on the same router
    assert lab.ping("OTHER-VM1", "10.0.0.77")            # and one in another VPC
    assert not [e for e in lab.state.events.read() if e["event"] == "openflow_error"]


def test_an_unknown_target_is_remembered_briefly(vpclab_lab):
    lab = vpclab_lab(MULTI_VPC)
    began = time.time()
    for _ in range(3):
        arp = lab.exec("ZIGI-VM1", "arping", "-c", "3", "-w", "2", "-I", "eth0", "10.0.0.99")
        assert arp.returncode != 0
    span = time.time() - began          # at least as long as the requests took to send
    lookups = [e for e in lab.state.events.read() if e["event"] == "miss" and e["target"] == "10.0.0.99"]
    # 9 requests, one lookup per NEGATIVE_TTL at most (one when they fit in it, as they
    # normally do; a slow machine that spreads them wider is allowed one more per TTL)
    assert 1 <= len(lookups) <= 1 + int(span // NEGATIVE_TTL), (len(lookups), span)
    lab.add_vm("LATE-VM", vpc="ZIGI-VPC1", host="host2", ip="10.0.0.99")
    assert lab.ping("ZIGI-VM1", "10.0.0.99")             # adding it clears the memory
