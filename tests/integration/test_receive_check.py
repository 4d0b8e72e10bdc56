"""AWS's receive-side check: a host that claims a VM it does not hold is not believed."""
import sys

import pytest

from tests.integration.labtools import MULTI_VPC, in_node
from vpclab import api_client
from vpclab.capture import Capture, settle

INJECT = """
import sys
from scapy.all import Ether, IP, UDP, ICMP, send
from scapy.contrib.geneve import GENEVE
outer_src, ident, vm1_mac, vm2_mac = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
inner = Ether(src=vm1_mac, dst=vm2_mac) / IP(src="10.0.0.148", dst="10.0.0.185") / ICMP(id=ident)
send(IP(src=outer_src, dst="192.168.100.2") / UDP(sport=40000, dport=6081) /
     GENEVE(vni=1001, proto=0x6558) / inner, verbose=False, count=3)
"""


@pytest.mark.parametrize("mode", ["on-demand", "preload"])
def test_a_rogue_host_claiming_a_vm_is_dropped_and_counted(labs, tmp_path, mode):
    state, plan = labs.up(MULTI_VPC, f"rx-{mode[:3]}", mode)
    vms = plan.topology.vms
    macs = [vms["ZIGI-VM1"].mac, vms["ZIGI-VM2"].mac]
    watch = Capture(state, "ZIGI-VM2", tmp_path, filter_expr="icmp").start()
    try:
        # host3 holds no ZIGI-VM1, yet sends a tunnelled packet "from" it (ICMP id 0x1111)
        rogue = in_node(state, "host3", [sys.executable, "-c", INJECT, "192.168.100.3", "4369", *macs])
        # control: the same packet from the host that really holds ZIGI-VM1 (id 0x2222)
        honest = in_node(state, "host1", [sys.executable, "-c", INJECT, "192.168.100.1", "8738", *macs])
        assert rogue.returncode == 0 and honest.returncode == 0, rogue.stderr + honest.stderr
        settle([watch], quiet=0.5)
    finally:
        seen = "\n".join(watch.stop())
    assert "id 8738" in seen                   # the honest host's packets arrive
    assert "id 4369" not in seen               # the rogue's never do
    host2 = api_client.call(state, "GET", "/stats")["routers"]["host2"]
    assert host2["receive_check_failed"] >= 3
    alarms = [e for e in state.events.read() if e["event"] == "receive_check_failed"]
    if mode == "on-demand":
        assert alarms and alarms[0]["outer_source"] == "192.168.100.3" \
            and alarms[0]["claimed_source"] == "10.0.0.148"
