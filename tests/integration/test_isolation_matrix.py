"""Two VPCs with identical CIDRs and IPs on three hosts: every ordered pair is tried (ICMP
and a TCP connect); each VPC reaches exactly itself, and no VM ever receives a frame of
the other VPC, in both mapping modes (and with VXLAN, which carries no ENI identity)."""
import itertools
import sys

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import ARP, Ether
from scapy.utils import rdpcap

from tests.integration.labtools import REPO
from vpclab.model.validation import load_topology
from vpclab.running.wait import wait_until

TOPOLOGY = REPO / "topologies" / "isolation.yaml"
VMS = load_topology(TOPOLOGY).vms
LISTEN = ("import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          "s.bind(('0.0.0.0', 7000))\ns.listen(16)\nwhile True:\n    s.accept()[0].close()\n")
CONNECT = "import socket, sys\nsocket.create_connection((sys.argv[1], 7000), timeout=2).close()\n"
FORGE = ("from scapy.all import Ether, IP, ICMP, sendp, get_if_hwaddr\nimport sys\n"
         "me = get_if_hwaddr('eth0')\n"
         "sendp(Ether(src=me, dst=sys.argv[1]) / IP(src=sys.argv[2], dst=sys.argv[3]) / ICMP(id=0x7777),"
         " iface='eth0', verbose=False)\n")


@pytest.mark.parametrize("mode, encap", [("on-demand", "geneve"), ("preload", "geneve"),
                                         ("on-demand", "vxlan")])   # VXLAN: the VNI alone separates them
def test_every_pair_reaches_exactly_its_own_vpc(vpclab_lab, tmp_path, mode, encap):
    topology = tmp_path / "isolation.yaml"
    topology.write_text(TOPOLOGY.read_text() + f"encap: {encap}\n")
    lab = vpclab_lab(topology, mode=mode, tag=f"iso-{mode[:3]}-{encap[:3]}")
    listeners = [lab.popen(vm, sys.executable, "-c", LISTEN) for vm in VMS]
    try:
        with lab.capture(list(VMS), tmp_path, quiet=0.5) as cap:
            for vm in VMS:      # a connect before the listener binds would be refused
                wait_until(lambda: lab.exec(vm, "ss", "-Hltn", "sport = :7000").stdout.strip(),
                           f"{vm}'s listener on port 7000")
            failures = []
            for src, dst in itertools.permutations(VMS, 2):
                ip = str(VMS[dst].ip)
                if ip == str(VMS[src].ip):
                    continue                 # its own address (the twin in the other VPC)
                if not lab.ping(src, ip):
                    failures.append(f"{src} ping {ip}")
                if not lab.exec(src, sys.executable, "-c", CONNECT, ip).ok:
                    failures.append(f"{src} tcp {ip}")
            for src in VMS:                  # frames addressed to the twin's MAC: dropped
                twin = next(v for v in VMS if v != src and VMS[v].ip == VMS[src].ip)
                other = next(v for v in VMS if VMS[v].vpc == VMS[twin].vpc and v != twin)
                lab.exec(src, sys.executable, "-c", FORGE, VMS[other].mac, str(VMS[src].ip),
                         str(VMS[other].ip))
    finally:
        for listener in listeners:
            listener.kill()
            listener.wait()
    assert failures == []
    for vm in VMS:
        own = {v.mac for v in VMS.values() if v.vpc == VMS[vm].vpc} | {"ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00"}
        frames = rdpcap(str(cap.pcap(vm)))
        received = [f for f in frames if f[Ether].src != VMS[vm].mac]   # not its own (forged) sends
        assert received, f"{vm} received nothing at all: the check below would prove nothing"
        foreign = [f.summary() for f in received if f[Ether].src not in own or f[Ether].dst not in own
                   or (ARP in f and f[ARP].hwsrc not in own)]
        assert foreign == [], f"{vm} saw the other VPC: {foreign[:3]}"
        # its 2 peers each pinged and connected to its address twice (once meaning it, once
        # meaning its twin in the other VPC: from inside a VPC the twin's address is this VM);
        # counted as distinct pings and connections, so a retransmitted SYN is still one
        pings = {(f[IP].src, f[ICMP].id, f[ICMP].seq) for f in received if ICMP in f and f[ICMP].type == 8}
        assert len(pings) == 4, f"{vm}: {len(pings)} pings"
        connects = {(f[IP].src, f[TCP].sport) for f in received if TCP in f and f[TCP].flags == "S"}
        assert len(connects) == 4, f"{vm}: {len(connects)} TCP connects"
        assert not [f for f in received if ICMP in f and f[ICMP].id == 0x7777]
