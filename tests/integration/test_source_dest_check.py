"""A NAT VM (source_dest_check: false) sends and receives for others; nobody else can."""
import sys

import pytest

from tests.unit.test_source_dest_check import CLIENT_MAC, NAT_LAB

SEND_AS = """
import sys
from scapy.all import Ether, IP, ICMP, sendp, get_if_hwaddr
sendp(Ether(src=get_if_hwaddr("eth0"), dst=sys.argv[1]) / IP(src="10.9.9.9", dst="10.0.0.10") /
      ICMP(id=int(sys.argv[2])), iface="eth0", verbose=False, count=2)
"""


@pytest.mark.parametrize("encap", ["geneve", "vxlan"])   # trusted by its ENI key / by its MAC
def test_a_nat_vm_sends_and_receives_traffic_not_its_own(vpclab_lab, tmp_path, encap):
    topology = tmp_path / "nat.yaml"
    topology.write_text(NAT_LAB + f"encap: {encap}\n")
    lab = vpclab_lab(topology)
    for route in ("10.9.9.0/24 via 10.0.0.20", "10.8.8.0/24 via 10.0.0.30"):   # NAT, SERVER
        assert lab.exec("CLIENT", "ip", "route", "add", *route.split()).ok
    with lab.capture(["CLIENT", "NAT", "SERVER"], tmp_path, filter="icmp", quiet=0.5) as cap:
        lab.exec("CLIENT", "ping", "-c", "2", "-W", "1", "10.9.9.9")     # via NAT
        lab.exec("CLIENT", "ping", "-c", "2", "-W", "1", "10.8.8.8")     # via SERVER
        for vm, ident in (("NAT", "13107"), ("SERVER", "17476")):         # 0x3333, 0x4444
            done = lab.exec(vm, sys.executable, "-c", SEND_AS, CLIENT_MAC, ident)
            assert done.ok, done.stderr
    seen = {vm: "\n".join(lines) for vm, lines in cap.lines().items()}
    assert "10.0.0.10 > 10.9.9.9: ICMP echo request" in seen["NAT"]       # received for others
    assert "10.8.8.8" not in seen["SERVER"]                               # SERVER did not
    assert "IP 10.9.9.9 > 10.0.0.10: ICMP echo request, id 13107" in seen["CLIENT"]   # sent as others
    assert "id 17476" not in seen["CLIENT"]                               # SERVER could not
