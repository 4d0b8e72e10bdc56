"""Record what tests/unit/test_look_inside_text.py reads: real dump-flows, meters and
ofproto/trace output from real labs (the seed in Geneve and VXLAN, multi-vpc, faults
injected the way classroom exercise 07 does, a NAT appliance), with the lab's names (a
LabView) beside them. Run as root from the repository:

    .venv/bin/python -m tests.unit.data.look_inside.record [SCENARIO...]   # default: all

Each scenario brings up its own lab (f12rec-*), records, and removes it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from vpclab import Lab
from vpclab.router.pipeline import ARP, FORWARD, PRIO_ENTRY
from vpclab.model.plan import TUNNEL_PORT
from vpclab.inside.probe import tunnel_probe, vm_probe
from vpclab.inside.router_view import lab_view

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
    view, args = lab_view(lab), dict(kw)
    probe = (tunnel_probe(view, kw.pop("from_host"), to, vm, **kw) if "from_host" in kw
             else vm_probe(view, vm, to, **kw))
    state = router(lab, probe.router)
    done = lab.exec(probe.router, "ovs-appctl", "ofproto/trace", "br-int", probe.flow, check=True)
    return {"name": name, "vm": vm, "to": to, "args": args, "flow": probe.flow, "router": probe.router,
            "ofproto_trace": done.stdout, **state}


def scenario(source: Path, name: str, encap: str, record) -> None:
    topology = yaml.safe_load(source.read_text())
    topology.update(name=f"f12rec-{name}"[:20], encap=encap)
    with Lab(topology) as lab:
        data = {"view": lab_view(lab).to_json(), "routers": {}, "traces": []}
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


FAULT_COOKIE = 0x07 << 56         # classroom exercise 07's faults: this cookie, this priority
PRIO_FAULT = PRIO_ENTRY + 50


def with_fault(lab: Lab, host: str, flow: str, record) -> None:
    """`flow` added to `host`'s router the way exercise 07 injects a fault, then removed."""
    socket = f"unix:{lab._host_dir(host)}/br-int.mgmt"
    edit = ["ovs-ofctl", "-O", "OpenFlow13"]
    lab.exec(host, *edit, "add-flow", socket, f"priority={PRIO_FAULT},cookie={FAULT_COOKIE:#x}," + flow,
             check=True)
    try:
        record()
    finally:
        lab.exec(host, *edit, "del-flows", socket, f"cookie={FAULT_COOKIE:#x}/-1", check=True)


def faults(lab: Lab, data: dict) -> None:
    """multi-vpc with one foreign flow at a time on host1 (exercise 07's kinds), and a
    destination named as a VM of another VPC than the sender's."""
    t, nodes = data["traces"], lab.nodes()
    vm2 = nodes["ZIGI-VM2"]
    assert lab.ping("ZIGI-VM1", "10.0.0.185")
    tunnel = (f"set_field:{vm2['eni_key']:#x}->tun_metadata0,move:NXM_NX_REG0[]->NXM_NX_TUN_METADATA0[32..63],"
              f"output:{TUNNEL_PORT}")
    forward = f"table={FORWARD},ip,metadata=0x3e9,dl_dst={vm2['mac']},nw_dst=10.0.0.185,actions="
    host3 = nodes["host3"]["underlay_ip"]
    cases = [
        ("foreign-drop", f"table={FORWARD},ip,nw_dst=10.0.0.185,actions=drop", {}),
        ("wrong-vni", forward + f"set_field:0x3ea->tun_id,set_field:{nodes['host2']['underlay_ip']}->tun_dst,"
                                + tunnel, {}),
        ("stale-host", forward + f"set_field:0x3e9->tun_id,set_field:{host3}->tun_dst," + tunnel, {}),
        ("arp-flood", f"table={ARP},arp,arp_op=1,actions=output:101,output:103,output:104", {"proto": "arp"}),
        ("no-such-port", f"table={FORWARD},ip,nw_dst=10.0.0.185,actions=output:7", {}),
    ]
    for name, flow, kw in cases:
        with_fault(lab, "host1", flow, lambda: t.append(trace(lab, name, "ZIGI-VM1", "10.0.0.185", **kw)))
    t.append(trace(lab, "named-other-vpc", "ZIGI-VM1", "10.0.0.185", to_vm="OTHER-VM2"))
    t.append(trace(lab, "named-other-vpc-from-host", None, "10.0.0.185", from_host="host1", to_vm="OTHER-VM2"))
    data["routers"]["host1"] = router(lab, "host1")


NAT_LAB = {"hosts": {"host1": {}, "host2": {}}, "vpcs": {"V": {"cidr": "10.0.0.0/24"}},
           "vms": {"CLIENT": {"vpc": "V", "host": "host1", "ip": "10.0.0.10", "mac": "02:00:00:00:00:10"},
                   "NAT": {"vpc": "V", "host": "host2", "ip": "10.0.0.20", "mac": "02:00:00:00:00:20",
                           "source_dest_check": False},
                   "SERVER": {"vpc": "V", "host": "host2", "ip": "10.0.0.30", "mac": "02:00:00:00:00:30"}}}


def nat(lab: Lab, data: dict) -> None:
    """CLIENT routes 10.9.9.0/24 through the NAT appliance: its packet, both sides, and the
    routes that send nothing."""
    t = data["traces"]
    lab.exec("CLIENT", "ip", "route", "add", "10.9.9.0/24", "via", "10.0.0.20", check=True)
    t.append(trace(lab, "via-nat-miss", "CLIENT", "10.9.9.9", via="10.0.0.20"))
    lab.exec("CLIENT", "ping", "-c", "1", "-W", "1", "10.9.9.9")
    t.append(trace(lab, "via-nat-tunnel", "CLIENT", "10.9.9.9", via="10.0.0.20"))
    t.append(trace(lab, "via-nat-arrives", "CLIENT", "10.9.9.9", from_host="host1", via="10.0.0.20"))
    data["routes"] = {to: {"ok": done.ok, "stdout": done.stdout, "stderr": done.stderr}
                      for to in ("10.9.9.9", "10.0.0.30", "10.0.0.10", "8.8.8.8", "10.0.0.255")
                      for done in [lab.exec("CLIENT", "ip", "-o", "-4", "route", "get", to)]}
    data["routers"]["host1"] = router(lab, "host1")


def nat_scenario(path: Path) -> None:
    path.write_text(yaml.safe_dump({"name": "nat", **NAT_LAB}))


SCENARIOS = {
    "seed-geneve": lambda: scenario(REPO / "topologies" / "seed.yaml", "seed-geneve", "geneve", seed("geneve")),
    "seed-vxlan": lambda: scenario(REPO / "topologies" / "seed.yaml", "seed-vxlan", "vxlan", seed("vxlan")),
    "multi-vpc": lambda: scenario(REPO / "topologies" / "multi-vpc.yaml", "multi-vpc", "geneve", multi_vpc),
    "faults": lambda: scenario(REPO / "topologies" / "multi-vpc.yaml", "faults", "geneve", faults),
}


def _nat() -> None:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nat.yaml"
        nat_scenario(path)
        scenario(path, "nat", "geneve", nat)


SCENARIOS["nat"] = _nat

if __name__ == "__main__":
    for chosen in sys.argv[1:] or list(SCENARIOS):
        SCENARIOS[chosen]()
