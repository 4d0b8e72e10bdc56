"""Sequence diagrams of a capture: the seed's last figure, drawn from what really happened.

Lanes: each captured VM, its host's virtual router, the mapping service in
the middle. Arrows, in time order: every packet a VM sent or received (from
its pcap), the router-to-router hop with its encapsulation (outer host IPs,
VNI), and each mapping-service lookup and answer (from its event log).
`build_sequence` is pure data; `to_mermaid` and `to_figure` render it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from vpclab.errors import VpclabError
from vpclab.running.ownership import OutputFile
from vpclab.model.topology import ROUTER_MAC, Topology
from vpclab.packets.trace import Packet, read_pcap
from vpclab.model.validation import load_topology

MAPPING_SERVICE = "mapping service"
ANSWERED_LINES = ("DHCP ", "DNS ")    # what the virtual router may answer itself, but ARP
SOURCE = [re.compile(p) for p in (r"^ARP request who-has \S+ tell (\S+)$", r"^ARP reply (\S+) is-at",
                                  r"^\w+ (?:echo \w+ |unreachable )?(\d+\.\d+\.\d+\.\d+)[: ]")]


@dataclass(frozen=True)
class Arrow:
    time: float
    src: str
    dst: str
    label: str
    kind: str          # packet | tunnel | lookup | answer


@dataclass(frozen=True)
class Sequence:
    title: str
    lanes: list[str]
    arrows: list[Arrow]


def router(host: str) -> str:
    return f"router {host}"


def source_ip(line: str) -> str | None:
    for pattern in SOURCE:
        found = pattern.match(line)
        if found:
            return found.group(1)
    return None


def build_sequence(capture_dir: Path) -> Sequence:
    meta, topology = _load(capture_dir)
    nodes = meta["nodes"]
    vms = [p.split(":")[0] for p in meta["points"] if nodes.get(p.split(":")[0], {}).get("kind") == "vm"]
    if not vms:
        raise VpclabError(f"{capture_dir}: no VM was captured; a diagram needs VM captures")
    lanes = _lanes(vms, nodes)
    packets = {vm: read_pcap(capture_dir / f"{vm}.eth0.pcap") for vm in vms}
    service = _service_arrows(capture_dir, topology)
    arrows: list[Arrow] = []
    for vm in vms:
        arrows += _vm_arrows(packets, vm, nodes, topology, lanes, service)
    arrows += service
    arrows.sort(key=lambda a: a.time)
    return Sequence(_title(meta, topology), lanes, arrows)


def _title(meta: dict, topology: Topology) -> str:
    """The commands that ran during the capture, then the lab and its mapping mode
    (a folder from before the API names one command: node, command)."""
    commands = meta.get("commands") or ([{"node": meta["node"], "command": meta["command"]}]
                                        if "node" in meta and "command" in meta else [])
    ran = "; ".join(f"{c['node']}$ {' '.join(c['command'])}" for c in commands)
    return f"{ran or 'capture'}  (lab {meta['lab']}, mapping {topology.mapping_mode})"


def _load(capture_dir: Path) -> tuple[dict, Topology]:
    meta_path, topo_path = capture_dir / "capture.json", capture_dir / "topology.yaml"
    if not meta_path.exists() or not topo_path.exists():
        raise VpclabError(f"{capture_dir}: not a capture folder (capture.json and topology.yaml are "
                          "written by `vpclab capture` and `vpclab demo`)")
    return json.loads(meta_path.read_text()), load_topology(topo_path)


def _lanes(vms: list[str], nodes: dict) -> list[str]:
    """First VM and its router on the left, the mapping service, then the others."""
    first = nodes[vms[0]]
    lanes = [vms[0], router(first["host"]), MAPPING_SERVICE]
    for vm in vms[1:]:
        if router(nodes[vm]["host"]) not in lanes:
            lanes.append(router(nodes[vm]["host"]))
        lanes.append(vm)
    return lanes


def _sent_at(packets: dict, nodes: dict, sender_ip: str, vpc: str, line: str,
             arrival: float, sender: str | None = None) -> float | None:
    """When a captured VM (`sender`, or the one with the source address) sent this packet:
    the latest identical send before it arrived."""
    for vm, captured in packets.items():
        if vm == sender or (sender is None and nodes[vm]["ip"] == sender_ip
                            and nodes[vm]["vpc"] == vpc):
            sends = [p.time for p in captured if p.line == line and p.time <= arrival]
            return max(sends) if sends else None
    return None


def _forwarded_by(packet: Packet, me: dict) -> bool:
    """A packet the VM itself put on the wire though not its own source (an appliance,
    source/destination check off, forwarding for others): its Ethernet source is the VM's."""
    return packet.src_mac is not None and packet.src_mac == me.get("mac")


def _forwarder(packets: dict, nodes: dict, vm: str, arrived: Packet) -> tuple[str, str] | None:
    """The captured appliance that last forwarded this very packet before it arrived (the
    VPC router sent it there by a route): the tunnel came from that VM's host."""
    last = None
    for other, captured in packets.items():
        if other == vm:
            continue
        for p in captured:
            if p.line == arrived.line and p.time <= arrived.time and \
                    _forwarded_by(p, nodes[other]) and source_ip(p.line) != nodes[other]["ip"]:
                if last is None or p.time > last[0]:
                    last = (p.time, other)
    return (last[1], nodes[last[1]]["host"]) if last else None


def _vm_arrows(packets: dict, vm: str, nodes: dict, topology: Topology,
               lanes: list[str], service: list[Arrow]) -> list[Arrow]:
    me = nodes[vm]
    home = router(me["host"])
    arrows = []
    for packet in packets[vm]:
        sender = source_ip(packet.line)
        if packet.line.startswith(ANSWERED_LINES):      # DHCP, DNS: the line names no sender
            if answered_by_router(packet, topology, me["vpc"]):
                arrows.append(Arrow(packet.time, home, vm, packet.line, "packet"))
                continue
            sender = me["ip"] if packet.src_mac == me.get("mac") else packet.src_ip
        if sender == me["ip"] or _forwarded_by(packet, me):
            arrows.append(Arrow(packet.time, vm, home, packet.line, "packet"))
            continue
        peer = _forwarder(packets, nodes, vm, packet) or \
            (_peer(nodes, topology, me["vpc"], sender) if sender else None)
        if peer is not None and peer[1] != me["host"] and not packet.line.startswith("ARP"):
            name, host = peer
            if router(host) not in lanes:
                lanes.append(router(host))
            left = _sent_at(packets, nodes, sender, me["vpc"], packet.line, packet.time, name)
            left = left + 1e-6 if left is not None else packet.time - 1e-6
            arrows.append(Arrow(_after_lookup(service, router(host), left, packet.time),
                                router(host), home,
                                _tunnel_label(topology, host, nodes.get(name, {}), me), "tunnel"))
        arrows.append(Arrow(packet.time, home, vm, packet.line, "packet"))
    return arrows


def answered_by_router(packet: Packet, topology: Topology, vpc: str) -> bool:
    """A DHCP or DNS answer of the VM's own virtual router: sent from ROUTER_MAC, or from
    the VPC router's addresses (a subnet's .1, the VPC's .2), as its ARP answers for .1
    are. Drawn like those: from the VM's host's router lane, with no tunnel before it."""
    if packet.src_mac == ROUTER_MAC:
        return True
    known = topology.vpcs.get(vpc)
    if known is None or packet.src_ip is None:
        return False
    own = {str(s.gateway) for s in known.subnets.values()} | {str(known.resolver)}
    return packet.src_ip in own


def _after_lookup(service: list[Arrow], sender: str, sent: float, arrived: float) -> float:
    """When a packet left its sender's router: if that router asked the mapping service
    between the send and the arrival (an IP packet that missed there), after the answer."""
    answers = [a.time for a in service if a.kind == "answer" and a.dst == sender
               and sent <= a.time < arrived]
    return max(answers) + 1e-6 if answers else sent


def _peer(nodes: dict, topology: Topology, vpc: str, ip: str) -> tuple[str, str] | None:
    """The VM with this address in this VPC, and its host when the capture was made (the
    lab's nodes then: a VM moved or added live is where it was, not where the file put it)."""
    for name, node in nodes.items():
        if node.get("kind") == "vm" and node.get("vpc") == vpc and node.get("ip") == ip:
            return name, node["host"]
    vm = topology.vm_by_address(vpc, _ip(ip))
    return (vm.name, vm.host) if vm is not None else None


def _ip(text: str):
    from ipaddress import IPv4Address
    try:
        return IPv4Address(text)
    except ValueError:
        return None


def _tunnel_label(topology: Topology, src_host: str, sender: dict, receiver: dict) -> str:
    """The outer header as the underlay carries it; in Geneve, with the ENI option's keys."""
    label = (f"{ {'geneve': 'Geneve', 'vxlan': 'VXLAN'}[topology.encap]} "
             f"{topology.hosts[src_host].underlay_ip} > {topology.hosts[receiver['host']].underlay_ip} "
             f"vni {topology.vpcs[receiver['vpc']].vni}")
    if topology.encap == "geneve" and "eni_key" in sender and "eni_key" in receiver:
        label += f" eni {sender['eni_key']}>{receiver['eni_key']}"
    return label


def _service_arrows(capture_dir: Path, topology: Topology) -> list[Arrow]:
    path = capture_dir / "mapping-service.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    arrows = []
    for event in events:
        if event["event"] != "miss":
            continue
        if event.get("outer_source"):      # the receive-side check of a tunnelled packet
            eni = f"ENI {event['source_eni_key']} = " if event.get("source_eni_key") else ""
            question = (f"packet-in (from tunnel): is {eni}{event['target']} behind "
                        f"{event['outer_source']} in VNI {event['vni']}?")
            answer = (f"yes, {event['target']} is-at {event['answer']}: cached on {event['host']}"
                      if event["answer"] else "no: dropped (receive check failed)")
        elif _routed(event):        # the VPC router's table (or a route's next hop)
            question = f"packet-in (for the VPC router): route to {event['target']} in VNI {event['vni']}?"
            answer = f"{event['reason']}: cached on {event['host']}"
        else:
            asked = "ARP" if event["arp"] else "IP"
            question = f"packet-in ({asked}): who is {event['target']} in VNI {event['vni']}?"
            answer = (f"{event['target']} is-at {event['answer']}: cached on {event['host']}"
                      if event["answer"] else "no mapping: no answer")
        arrows.append(Arrow(event["t"], router(event["host"]), MAPPING_SERVICE, question, "lookup"))
        done = event["t"] + event.get("handled_us", 0) / 1e6
        arrows.append(Arrow(done, MAPPING_SERVICE, router(event["host"]), answer, "answer"))
    return arrows


def _routed(event: dict) -> bool:
    """A miss the VPC router's route table answered (pipeline.decide.decide_route)."""
    reason = event.get("reason") or ""
    return reason.startswith(("routed:", "no route to ", "next hop ")) or ": blackhole" in reason


# -- renderers ------------------------------------------------------------------------
def to_mermaid(seq: Sequence) -> str:
    ids = {lane: f"L{i}" for i, lane in enumerate(seq.lanes)}
    lines = ["sequenceDiagram", f"    title {seq.title}"]
    lines += [f"    participant {ids[lane]} as {lane}" for lane in seq.lanes]
    for arrow in seq.arrows:
        style = "-->>" if arrow.kind == "answer" else "->>"
        lines.append(f"    {ids[arrow.src]}{style}{ids[arrow.dst]}: {arrow.label}")
    return "\n".join(lines) + "\n"


COLOURS = {"packet": "#1f2937", "tunnel": "#c2410c", "lookup": "#1d4ed8", "answer": "#1d4ed8"}


def to_figure(seq: Sequence, path: Path) -> None:
    """Draw with matplotlib; SVG keeps its text as text (searchable, testable)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"
    width, step = 2.9, 0.42
    x = {lane: 0.6 + i * width for i, lane in enumerate(seq.lanes)}
    bottom = -0.2 - step * len(seq.arrows)
    height = 1.0 - bottom
    fig, ax = plt.subplots(figsize=(0.9 + width * len(seq.lanes), height))
    ax.set_xlim(-0.6, 0.6 + width * len(seq.lanes))
    ax.set_ylim(bottom, 0.8)
    ax.axis("off")
    ax.set_title(seq.title, fontsize=9, loc="left")
    start = seq.arrows[0].time if seq.arrows else 0.0
    for lane in seq.lanes:
        ax.text(x[lane], 0.35, lane, ha="center", va="center", fontsize=9, weight="bold",
                bbox=dict(boxstyle="round", fc="#e5e7eb" if lane != MAPPING_SERVICE else "#dbeafe"))
        ax.plot([x[lane]] * 2, [0.1, bottom + 0.1], color="#9ca3af", lw=0.8, ls="--")
    for i, arrow in enumerate(seq.arrows):
        y = -0.2 - step * i
        colour = COLOURS[arrow.kind]
        ax.annotate("", xy=(x[arrow.dst], y), xytext=(x[arrow.src], y),
                    arrowprops=dict(arrowstyle="->", color=colour, lw=1.2,
                                    ls="--" if arrow.kind == "answer" else "-"))
        ax.text((x[arrow.src] + x[arrow.dst]) / 2, y + 0.05, arrow.label, ha="center", va="bottom",
                fontsize=6.5, color=colour)
        ax.text(-0.55, y, f"+{(arrow.time - start) * 1000:.2f} ms", fontsize=6, va="center",
                color="#6b7280")
    fig.savefig(path, bbox_inches="tight", dpi=150)
    plt.close(fig)


def diagram_targets(capture_dir: Path, output: Path | None = None) -> list[Path]:
    """The files write_diagram writes: `output`, or diagram.svg and .md in the folder."""
    return [output] if output else [capture_dir / "diagram.svg", capture_dir / "diagram.md"]


def draw_for_user(capture_dir: Path, output: Path | None = None) -> list[Path]:
    """write_diagram for the user behind sudo: a symlink in a target's place is refused
    (root would write through it), and a file this run creates is theirs."""
    owned = [OutputFile(target) for target in diagram_targets(capture_dir, output)]
    try:
        return write_diagram(capture_dir, output)
    finally:
        for file in owned:
            file.give_back()


def write_diagram(capture_dir: Path, output: Path | None = None) -> list[Path]:
    """Write the diagram; by default diagram.svg and diagram.md in the capture folder."""
    seq = build_sequence(capture_dir)
    targets = diagram_targets(capture_dir, output)
    for target in targets:
        if target.suffix == ".md":
            target.write_text(f"# {seq.title}\n\n```mermaid\n{to_mermaid(seq)}```\n")
        elif target.suffix in (".svg", ".png"):
            to_figure(seq, target)
        else:
            raise VpclabError(f"{target}: say .svg, .png or .md")
    return targets
