"""The sequence diagram of a seed capture: five lanes, the seed's arrows in time order."""
import html
import json
import re
import shutil
from pathlib import Path

from scapy.utils import wrpcap

from tests.unit.test_compare import seed_vm1, seed_vm2
from vpclab.packets.diagram import build_sequence, to_mermaid, write_diagram

REPO = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0
LANES = ["ZIGI-VM1", "router host1", "mapping service", "router host2", "ZIGI-VM2"]
VM_SIDE = [
    ("ZIGI-VM1", "router host1", "ARP request who-has 10.0.0.185 tell 10.0.0.148"),
    ("router host1", "ZIGI-VM1", "ARP reply 10.0.0.185 is-at 02:93:0e:03:bb:88"),
    ("ZIGI-VM1", "router host1", "ICMP echo request 10.0.0.148 > 10.0.0.185"),
    ("router host2", "ZIGI-VM2", "ICMP echo request 10.0.0.148 > 10.0.0.185"),
    ("ZIGI-VM2", "router host2", "ARP request who-has 10.0.0.148 tell 10.0.0.185"),
    ("router host2", "ZIGI-VM2", "ARP reply 10.0.0.148 is-at 02:00:5e:ad:58:40"),
    ("ZIGI-VM2", "router host2", "ICMP echo reply 10.0.0.185 > 10.0.0.148"),
    ("router host1", "ZIGI-VM1", "ICMP echo reply 10.0.0.185 > 10.0.0.148"),
]


def seed_capture(folder: Path) -> Path:
    """A capture folder as `vpclab capture` writes it, with the seed's timing."""
    folder.mkdir()
    vm1, vm2 = seed_vm1(), seed_vm2()
    for pkt, at in zip(vm1, (0.0, 2.0, 2.1, 5.2)):
        pkt.time = T0 + at / 1000
    for pkt, at in zip(vm2, (2.7, 2.8, 4.8, 4.9)):
        pkt.time = T0 + at / 1000
    wrpcap(str(folder / "ZIGI-VM1.eth0.pcap"), vm1)
    wrpcap(str(folder / "ZIGI-VM2.eth0.pcap"), vm2)
    shutil.copy(REPO / "topologies" / "seed.yaml", folder / "topology.yaml")
    nodes = {"ZIGI-VM1": {"kind": "vm", "vpc": "ZIGI-VPC1", "host": "host1", "ip": "10.0.0.148", "eni_key": 1},
             "ZIGI-VM2": {"kind": "vm", "vpc": "ZIGI-VPC1", "host": "host2", "ip": "10.0.0.185", "eni_key": 2}}
    (folder / "capture.json").write_text(json.dumps({
        "lab": "seed", "commands": [{"node": "ZIGI-VM1", "command": ["ping", "-c", "1", "10.0.0.185"], "exit_code": 0}],
        "points": ["ZIGI-VM1:eth0", "ZIGI-VM2:eth0"], "nodes": nodes}))
    events = [{"t": T0 + 0.0009, "event": "miss", "host": "host1", "vni": 1001, "target": "10.0.0.185",
               "arp": True, "answer": "02:93:0e:03:bb:88", "handled_us": 400},
              {"t": T0 + 0.0030, "event": "miss", "host": "host2", "vni": 1001, "target": "10.0.0.148",
               "arp": False, "outer_source": "192.168.100.1", "source_eni_key": 1,
               "answer": "02:00:5e:ad:58:40", "handled_us": 400}]
    (folder / "mapping-service.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return folder


def test_sequence_has_five_lanes_and_the_seed_story_in_order(tmp_path):
    seq = build_sequence(seed_capture(tmp_path / "cap"))
    assert seq.lanes == LANES
    assert [(a.src, a.dst, a.label) for a in seq.arrows if a.kind == "packet"] == VM_SIDE
    kinds = [a.kind for a in seq.arrows]
    assert kinds == ["packet", "lookup", "answer", "packet", "packet", "tunnel", "packet", "packet",
                     "lookup", "answer", "packet", "packet", "tunnel", "packet"]
    tunnel = next(a for a in seq.arrows if a.kind == "tunnel")
    assert (tunnel.src, tunnel.dst, tunnel.label) == (
        "router host1", "router host2", "Geneve 192.168.100.1 > 192.168.100.2 vni 1001 eni 1>2")
    check = [a.label for a in seq.arrows if a.kind == "lookup"][1]
    assert check == "packet-in (from tunnel): is ENI 1 = 10.0.0.148 behind 192.168.100.1 in VNI 1001?"


def test_mermaid_and_svg_carry_the_lanes_and_packets_in_order(tmp_path):
    folder = seed_capture(tmp_path / "cap")
    mermaid = to_mermaid(build_sequence(folder))
    assert [m for m in re.findall(r"participant L\d as (.+)", mermaid)] == LANES
    packet_labels = [label for _, _, label in VM_SIDE]
    positions = [mermaid.index(f": {label}", mermaid.index(f": {packet_labels[i - 1]}") + 1 if i else 0)
                 for i, label in enumerate(packet_labels)]
    assert positions == sorted(positions)
    svg_path, md_path = write_diagram(folder)
    svg = svg_path.read_text()
    texts = [html.unescape(t) for t in re.findall(r">([^<]+)</text>", svg)]
    assert all(lane in texts for lane in LANES)
    vm_side = [t for t in texts if t in packet_labels]
    assert vm_side == packet_labels
    assert md_path.read_text().startswith("# ZIGI-VM1$ ping -c 1 10.0.0.185")


def test_a_vm_that_moved_before_the_capture_is_drawn_on_its_host_of_then(tmp_path):
    """topology.yaml says where the lab began; the capture's nodes say where each VM was."""
    folder = seed_capture(tmp_path / "cap")
    topology = (folder / "topology.yaml").read_text()
    (folder / "topology.yaml").write_text(topology.replace(
        "  host2: {underlay_ip: 192.168.100.2}\n",
        "  host2: {underlay_ip: 192.168.100.2}\n  host3: {underlay_ip: 192.168.100.3}\n"))
    meta = json.loads((folder / "capture.json").read_text())
    meta["nodes"]["ZIGI-VM1"]["host"] = "host3"              # moved there before the capture
    (folder / "capture.json").write_text(json.dumps(meta))
    seq = build_sequence(folder)
    into_host2 = [a for a in seq.arrows if a.kind == "tunnel" and a.dst == "router host2"]
    assert into_host2 and all(a.src == "router host3" for a in into_host2)
    assert into_host2[0].label.startswith("Geneve 192.168.100.3 > 192.168.100.2")
    assert "router host1" not in [a.src for a in seq.arrows if a.kind == "tunnel"]


def test_a_packet_that_missed_at_its_sender_s_router_enters_the_tunnel_after_the_answer(tmp_path):
    """ZIGI-VM1 knows ZIGI-VM2's MAC already (no ARP): its router asks about the ICMP itself."""
    folder = seed_capture(tmp_path / "cap")
    events = [json.loads(line) for line in (folder / "mapping-service.jsonl").read_text().splitlines()]
    events.append({"t": T0 + 0.00215, "event": "miss", "host": "host1", "vni": 1001,
                   "target": "10.0.0.185", "arp": False, "answer": "02:93:0e:03:bb:88",
                   "handled_us": 300})
    (folder / "mapping-service.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    seq = build_sequence(folder)
    kinds = [(a.kind, a.src) for a in seq.arrows]
    request = kinds.index(("packet", "ZIGI-VM1"), 1)          # the ICMP request, after the ARP
    assert kinds[request + 1:request + 4] == [("lookup", "router host1"),
                                              ("answer", "mapping service"),
                                              ("tunnel", "router host1")]


def test_a_ping_through_an_appliance_is_drawn_hop_by_hop(tmp_path):
    """A real capture (vpc-router lab, on-demand): app-1 -> fw -> web-1, the reply direct."""
    capture = tmp_path / "cap"
    shutil.copytree(Path(__file__).parent / "data" / "vpc_router_ping", capture)
    seq = build_sequence(capture)
    tunnels = [(a.src, a.dst) for a in seq.arrows if a.kind == "tunnel"]
    assert tunnels == [("router hv-c", "router hv-b"), ("router hv-b", "router hv-a"),
                       ("router hv-a", "router hv-c")]
    forwarded = [a for a in seq.arrows if a.src == "fw" and "ICMP echo request" in a.label]
    assert len(forwarded) == 1 and forwarded[0].dst == "router hv-b"
    routes = [a.label for a in seq.arrows if a.kind == "answer" and a.label.startswith("routed:")]
    assert routes[0] == "routed: 10.50.1.0/24 -> fw (10.50.9.9): cached on hv-c"
