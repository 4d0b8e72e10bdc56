"""vpclab.classroom.forge: the VXLAN frame a check forges (no root, no lab), and that it is
sent only to a lab host's underlay address."""
import sys
from types import SimpleNamespace

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from vpclab.classroom import forge


def frame(**changes) -> bytes:
    fields = dict(src_mac="02:00:5e:ad:58:77", dst_mac="02:93:0e:03:bb:88", src_ip="10.0.0.148",
                  dst_ip="10.0.0.185", ident=0x0303, seq=3)
    return forge.vxlan_frame(1002, **{**fields, **changes})


def test_the_frame_is_a_vxlan_header_and_the_inner_echo_request():
    raw = frame()
    # VXLAN header (8) + Ethernet (14) + IPv4 (20) + ICMP echo without data (8)
    assert len(raw) == 8 + 14 + 20 + 8
    assert raw[:8] == bytes([0x08, 0, 0, 0]) + (1002).to_bytes(3, "big") + b"\0"
    pkt = VXLAN(raw)
    assert pkt.vni == 1002 and pkt.flags == 0x08
    inner = pkt[Ether]
    assert (inner.src, inner.dst) == ("02:00:5e:ad:58:77", "02:93:0e:03:bb:88")
    assert (inner[IP].src, inner[IP].dst) == ("10.0.0.148", "10.0.0.185")
    assert inner[ICMP].type == 8 and (inner[ICMP].id, inner[ICMP].seq) == (0x0303, 3)
    assert IP(bytes(inner[IP])).chksum == inner[IP].chksum        # checksums filled in
    assert VXLAN(frame(ident=0x1111))[ICMP].id == 0x1111
    assert forge.vxlan_frame(7, src_mac=inner.src, dst_mac=inner.dst, src_ip="10.0.0.148",
                             dst_ip="10.0.0.185", ident=1, seq=1)[4:7] == (7).to_bytes(3, "big")

class FakeLab:
    name = "f36-fake"

    def __init__(self):
        self.ran = []

    def nodes(self):
        return {"host1": {"kind": "host", "underlay_ip": "192.168.100.1"},
                "host2": {"kind": "host", "underlay_ip": "192.168.100.2"},
                "ZIGI-VM2": {"kind": "vm", "ip": "10.0.0.185"}}

    def exec(self, node, *argv, timeout=60.0):
        self.ran.append((node, argv))
        return SimpleNamespace(ok=True, stderr="")

    def command(self, node, *argv):
        return ["in", node, *argv]


def test_it_is_sent_from_a_host_to_another_host_s_underlay_address_only():
    lab = FakeLab()
    raw = frame()
    forge.send(lab, "host1", raw, "host2", count=2)
    (node, argv), = lab.ran
    assert node == "host1" and argv[:3] == (sys.executable, "-c", forge.SEND)
    assert argv[3:] == (raw.hex(), "192.168.100.2", "2")
    assert f"{forge.VXLAN_PORT}))" in forge.SEND
    assert forge.send_command(lab, "host1", raw, "host2")[-2:] == ["192.168.100.2", "1"]
    for to in ("ZIGI-VM2", "10.0.0.185", "8.8.8.8", "host9"):
        with pytest.raises(ValueError, match="underlay address"):
            forge.send(lab, "host1", raw, to)
    with pytest.raises(ValueError):
        forge.send(lab, "ZIGI-VM2", raw, "host2")          # from a host's namespace only
    assert len(lab.ran) == 1
