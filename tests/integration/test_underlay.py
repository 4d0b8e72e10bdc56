"""The underlay carries the VM packet encapsulated: host IPs outside, the VPC's VNI, and in
Geneve the ENI option naming the sending and the receiving ENI."""
import pytest

from tests.integration.labtools import SEED
from vpclab.packets.trace import normalise, read_pcap

REQUEST = "ICMP echo request 10.0.0.148 > 10.0.0.185"
REPLY = "ICMP echo reply 10.0.0.185 > 10.0.0.148"


@pytest.mark.parametrize("encap", ["geneve", "vxlan"])
def test_underlay_capture_shows_the_encapsulation(vpclab_lab, tmp_path, encap):
    topology = tmp_path / "lab.yaml"
    topology.write_text(SEED.read_text().replace("encap: geneve", f"encap: {encap}"))
    lab = vpclab_lab(topology)
    keys = {m["ip"]: m["eni_key"] for m in lab.mappings()}
    vm1, vm2 = keys["10.0.0.148"], keys["10.0.0.185"]
    with lab.capture(["host1:eth0", "host2:eth0"], tmp_path, filter="udp") as cap:
        ping = lab.exec("ZIGI-VM1", "ping", "-c", "1", "10.0.0.185")
    assert ping.ok
    captured = cap.lines()
    kind = {"geneve": "Geneve", "vxlan": "VXLAN"}[encap]
    there, back = (f" eni {vm1}>{vm2}", f" eni {vm2}>{vm1}") if encap == "geneve" else ("", "")
    want = [f"{kind} 192.168.100.1 > 192.168.100.2 vni 1001{there}: {REQUEST}",
            f"{kind} 192.168.100.2 > 192.168.100.1 vni 1001{back}: {REPLY}"]
    for point in ("host1.eth0", "host2.eth0"):     # leaving host1, arriving at host2
        assert [p.line for p in read_pcap(tmp_path / f"{point}.pcap")] == want
        text = (tmp_path / f"{point}.txt").read_text()
        assert normalise(text.splitlines()) == want                     # the text view shows it too
    if encap == "geneve":
        assert f"options [class Experimental (0xffff) type 0x80(C) len 12 data {vm1:08x} {vm2:08x}]" \
            in "\n".join(captured["host1:eth0"])
