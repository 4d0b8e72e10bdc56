"""Record what tests/unit/test_look_inside_text.py reads: real dump-flows, meters and
ofproto/trace output from real labs (the seed in Geneve and VXLAN, multi-vpc), with the
lab's names (a LabView) beside them. Run as root from the repository:

    .venv/bin/python -m tests.unit.data.look_inside.record

Each scenario brings up its own lab (t12rec-*), records, and removes it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from vpclab import Lab
from vpclab.probe import tunnel_probe, vm_probe

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]

# a tunnelled packet with a chosen inner source and ENI option (argv: encap, outer src,
# outer dst, inner src MAC, inner dst MAC, inner src, inner dst, vni, source key, dest key)
INJECT = """
import struct, sys
from scapy.all import Ether, IP, UDP, ICMP, send
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.vxlan import VXLAN
encap, outer_src, outer_dst, src_mac, dst_mac, src, dst, vni, skey, dkey = sys.argv[1:11]
inner = Ether(src=src_mac, dst=dst_mac) / IP(src=src, dst=dst) / ICMP(id=0x7777)
if encap == "geneve":
    opt = GeneveOptions(classid=0xffff, type=0x80, data=struct.pack("!II", int(skey), int(dkey)))
    head = UDP(sport=40000, dport=6081) / GENEVE(vni=int(vni), proto=0x6558, options=[opt])
else:
    head = UDP(sport=40000, dport=4789) / VXLAN(vni=int(vni), flags=0x08)
send(IP(src=outer_src, dst=outer_dst) / head / inner, verbose=False, count=2)
"""


def ofctl(lab: Lab, host: str, *argv: str) -> str:
    socket = f"unix:{lab._host_dir(host)}/br-int.mgmt"
    return lab.exec(host, "ovs-ofctl", "-O", "OpenFlow13", *argv, socket, check=True).stdout


def router(lab: Lab, host: str) -> dict:
    return {"flows": ofctl(lab, host, "dump-flows"), "meters": ofctl(lab, host, "dump-meters"),
            "meter_stats": ofctl(lab, host, "meter-stats")}


def trace(lab: Lab, name: str, vm: str | None, to: str, **kw) -> dict:
    view, args = lab._lab_view(lab.hosts[0]), dict(kw)
    probe = (tunnel_probe(view, kw.pop("from_host"), to, vm, **kw) if "from_host" in kw
             else vm_probe(view, vm, to, **kw))
    state = router(lab, probe.router)
    done = lab.exec(probe.router, "ovs-appctl", "ofproto/trace", "br-int", probe.flow, check=True)
    return {"name": name, "vm": vm, "to": to, "args": args, "flow": probe.flow, "router": probe.router,
            "ofproto_trace": done.stdout, **state}


def scenario(source: Path, name: str, encap: str, record) -> None:
    topology = yaml.safe_load(source.read_text())
    topology.update(name=f"t12rec-{name}"[:20], encap=encap)
    with Lab(topology) as lab:
        data = {"view": lab._lab_view(lab.hosts[0]).to_json(), "routers": {}, "traces": []}
        record(lab, data)
    (HERE / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"recorded {name}: {len(data['traces'])} traces, routers {', '.join(data['routers'])}")


def inject(lab: Lab, host: str, encap: str, src: str, dst_vm: str, keys: tuple[int, int]) -> None:
    nodes = lab.nodes()
    target, sender = nodes[dst_vm], nodes["ZIGI-VM1"]
    outer_dst = nodes[target["host"]]["underlay_ip"]
    args = [encap, nodes[host]["underlay_ip"], outer_dst, sender["mac"], target["mac"], src,
            target["ip"], "1001", *map(str, keys)]
    lab.exec(host, sys.executable, "-c", INJECT, *args, check=True)


def seed(encap: str):
    def record(lab: Lab, data: dict) -> None:
        t = data["traces"]
        t.append(trace(lab, "before-ping-miss", "ZIGI-VM1", "10.0.0.185"))
        t.append(trace(lab, "before-ping-check-miss", None, "10.0.0.185", from_host="host1"))
        assert lab.ping("ZIGI-VM1", "10.0.0.185")
        data["routers"]["host1"] = router(lab, "host1")
        data["routers"]["host2"] = router(lab, "host2")
        t.append(trace(lab, "tunnel", "ZIGI-VM1", "10.0.0.185"))
        t.append(trace(lab, "antispoofing-ip", "ZIGI-VM1", "10.0.0.185", src="10.0.0.99"))
        t.append(trace(lab, "antispoofing-mac", "ZIGI-VM1", "10.0.0.185", src_mac="02:00:00:00:00:99"))
        t.append(trace(lab, "arp-answered", "ZIGI-VM1", "10.0.0.185", proto="arp"))
        t.append(trace(lab, "reply-tunnel", "ZIGI-VM2", "10.0.0.148", proto="tcp:22"))
        t.append(trace(lab, "receive-delivered", None, "10.0.0.185", from_host="host1"))
        t.append(trace(lab, "receive-forged-miss", None, "10.0.0.185", from_host="host1", src="10.0.0.99"))
        t.append(trace(lab, "unknown-miss", "ZIGI-VM1", "10.0.0.99"))
        lab.exec("ZIGI-VM1", "ping", "-c", "1", "-W", "1", "10.0.0.99")          # unknown: remembered
        lab.exec("ZIGI-VM1", "ip", "neigh", "replace", "10.0.0.77", "lladdr", "02:00:00:00:00:77",
                 "dev", "eth0", check=True)
        lab.exec("ZIGI-VM1", "ping", "-c", "1", "-W", "1", "10.0.0.77")          # unknown IP
        inject(lab, "host1", encap, "10.0.0.99", "ZIGI-VM2", (1, 2))               # refused claim
        t.append(trace(lab, "unknown-dropped", "ZIGI-VM1", "10.0.0.99"))
        t.append(trace(lab, "receive-refused", None, "10.0.0.185", from_host="host1", src="10.0.0.99"))
        data["routers"]["host1-later"] = router(lab, "host1")
        data["routers"]["host2-later"] = router(lab, "host2")
    return record


def multi_vpc(lab: Lab, data: dict) -> None:
    t = data["traces"]
    assert lab.ping("ZIGI-VM1", "10.0.0.185") and lab.ping("OTHER-VM1", "10.0.0.77")
    assert lab.ping("ZIGI-VM1", "10.0.0.20")
    t.append(trace(lab, "another-vpc-miss", "ZIGI-VM1", "10.0.0.77"))
    lab.exec("ZIGI-VM1", "ping", "-c", "1", "-W", "1", "10.0.0.77")
    t.append(trace(lab, "another-vpc-dropped", "ZIGI-VM1", "10.0.0.77"))
    t.append(trace(lab, "rogue-host", "ZIGI-VM1", "10.0.0.185", from_host="host3"))
    t.append(trace(lab, "local-delivery", "ZIGI-VM1", "10.0.0.20"))
    for host in lab.hosts:
        data["routers"][host] = router(lab, host)


if __name__ == "__main__":
    scenario(REPO / "topologies" / "seed.yaml", "seed-geneve", "geneve", seed("geneve"))
    scenario(REPO / "topologies" / "seed.yaml", "seed-vxlan", "vxlan", seed("vxlan"))
    scenario(REPO / "topologies" / "multi-vpc.yaml", "multi-vpc", "geneve", multi_vpc)
