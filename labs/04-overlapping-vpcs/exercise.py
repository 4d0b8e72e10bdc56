"""04: two VPCs with the same CIDR and the same VM addresses, and the traces that prove it.

The learner writes a topology (two VPCs sharing a CIDR and VM addresses, over at least
three hosts) and two expected traces for the check's ping: what the VM with the pinged
address sees in the pinger's own VPC, and what its twin in the other VPC sees. The
check validates the topology, runs it, pings, captures at both twins and compares.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

import yaml

from vpclab.classroom import Failed, Variant, check
from vpclab.packets.compare import compare_captures
from vpclab.model.validation import TopologyError, default_mac, load_topology

TITLE = "Write two VPCs with identical addresses, and the traces that prove they are isolated"
WORK_FILES = ["topology.yaml", "own-vpc.txt", "other-vpc.txt"]
MAX_HOSTS, MAX_VMS = 8, 16      # a check runs in seconds; a class is graded on one machine


def shared_cidr(variant: Variant) -> str:
    """The CIDR both VPCs must use: the seed's, or this student's own."""
    if variant.student is None:
        return "10.0.0.0/24"
    rng = variant.rng("cidr")
    return str(IPv4Network(f"172.{rng.randrange(16, 32)}.{rng.randrange(0, 256)}.0/24"))


def topology(variant: Variant) -> dict:
    """What `vpclab lab start 4` brings up to explore: ONE VPC in your CIDR (the second, and
    the overlap, are yours to write)."""
    network = IPv4Network(shared_cidr(variant))
    return {"name": "ex04", "hosts": {"host1": {}, "host2": {}},
            "vpcs": {"BLUE": {"cidr": str(network), "vni": 101}},
            "vms": {"BLUE-1": {"vpc": "BLUE", "host": "host1", "ip": str(network[10])},
                    "BLUE-2": {"vpc": "BLUE", "host": "host2", "ip": str(network[20])}}}


def briefing(variant: Variant) -> str:
    return (f"your CIDR, for both VPCs: {shared_cidr(variant)}\n"
            "run your own topology to see its addresses and MACs: vpclab up "
            "work/04-overlapping-vpcs/topology.yaml; vpclab mapping list ex04-mine")


def solution(variant: Variant) -> dict[str, str]:
    network = IPv4Network(shared_cidr(variant))
    a, b, c = (str(network[n]) for n in (10, 20, 30))
    topo = {"name": "ex04", "hosts": {"host1": {}, "host2": {}, "host3": {}},
            "vpcs": {"BLUE": {"cidr": str(network), "vni": 101},
                     "RED": {"cidr": str(network), "vni": 102}},
            "vms": {"BLUE-1": {"vpc": "BLUE", "host": "host1", "ip": a},
                    "BLUE-2": {"vpc": "BLUE", "host": "host2", "ip": b},
                    "RED-1": {"vpc": "RED", "host": "host3", "ip": a},
                    "RED-2": {"vpc": "RED", "host": "host2", "ip": b},
                    "RED-3": {"vpc": "RED", "host": "host1", "ip": c}}}
    return {"topology.yaml": yaml.safe_dump(topo, sort_keys=False),
            "own-vpc.txt": f"ICMP echo request {a} > {b}\nARP request who-has {a} tell {b}\n"
                           f"ARP reply {a} is-at {default_mac('BLUE', 'BLUE-1')}\n"
                           f"ICMP echo reply {b} > {a}\n",
            "other-vpc.txt": "# nothing may arrive here\n"}


@dataclass(frozen=True)
class Scenario:
    """The check's ping: `source` pings `address`, which `target` (same VPC) and `twin`
    (the other VPC) both have."""
    source: str
    address: str
    target: str
    twin: str
    vpcs: tuple[str, str]

    def __str__(self) -> str:
        return (f"the check's ping: {self.source} -> {self.address} (in {self.vpcs[0]}: "
                f"{self.target}; in {self.vpcs[1]}: {self.twin})")


def learner_topology(ctx):
    def load():
        path = ctx.copy("topology.yaml")
        try:
            topo = load_topology(path)
        except TopologyError as exc:
            raise Failed(f"topology.yaml has {len(exc.issues)} error(s)",
                         evidence="\n".join(str(issue) for issue in exc.issues),
                         hint="each error names its YAML path; `vpclab validate "
                              f"{ctx.work / 'topology.yaml'}` prints the same") from None
        if len(topo.hosts) > MAX_HOSTS or len(topo.vms) > MAX_VMS:
            raise Failed(f"topology.yaml has {len(topo.hosts)} hosts and {len(topo.vms)} VMs",
                         expected=f"at most {MAX_HOSTS} hosts and {MAX_VMS} VMs",
                         hint="a few hosts and VMs prove the point")
        return topo
    return ctx.once("topology", load)


def scenario(ctx) -> Scenario:
    topo = learner_topology(ctx)
    cidr = shared_cidr(ctx.variant)
    sharing = [v.name for v in topo.vpcs.values() if str(v.cidr) == cidr]
    if len(sharing) < 2:
        raise Failed(f"{len(sharing)} VPC(s) use {cidr}; two must",
                     expected=f"two VPCs with cidr {cidr}",
                     seen=", ".join(f"{v.name} {v.cidr}" for v in topo.vpcs.values()),
                     hint=f"{cidr} is your CIDR (`vpclab lab start 4"
                          f"{' --student ' + ctx.variant.student if ctx.variant.student else ''}`"
                          " prints it); both VPCs use it")
    first, second = sharing[:2]
    in_vpc = {vpc: [vm for vm in topo.vms.values() if vm.vpc == vpc] for vpc in (first, second)}
    twins = {str(vm.ip): vm.name for vm in in_vpc[second]}
    for source in in_vpc[first]:
        for target in in_vpc[first]:
            if target is not source and str(target.ip) in twins:
                return Scenario(source.name, str(target.ip), target.name, twins[str(target.ip)],
                                (first, second))
    raise Failed(f"no VM of {first} can ping an address that {second} has too",
                 hint=f"give {first} two VMs, and give {second} a VM with the same address as "
                      f"one of them")


def ping_captured(ctx):
    def run():
        s = scenario(ctx)
        lab = ctx.lab(ctx.copy("topology.yaml"))
        with lab.capture([s.target, s.twin], ctx.tmp / "cap", filter="icmp or arp") as cap:
            done = lab.exec(s.source, "ping", "-c", "1", "-W", "2", s.address)
        return lab, cap, done
    return ctx.once("ping", run)


def compare(ctx, vm: str, name: str) -> None:
    text = ctx.file(name)
    if "*" in "".join(l for l in text.splitlines() if not l.lstrip().startswith("#")):
        raise Failed(f"{name} uses '*'", hint="a trace that proves something names every address")
    lab, cap, _ = ping_captured(ctx)
    point = compare_captures(cap.pcap(vm), ctx.copy(name)).points[0]
    if point.matches:
        return
    raise Failed(f"{name} is not what {vm} saw ({scenario(ctx)})",
                 expected=f"{len(point.expected)} packet(s) (your trace)",
                 seen=f"{len(point.actual)} packet(s)",
                 evidence=point.side_by_side(f"your {name}", f"{vm}'s capture"),
                 hint="; ".join(point.explain()) or "compare the two columns line by line")


@check("topology.yaml is a valid lab")
def valid(ctx) -> None:
    learner_topology(ctx)


@check("two VPCs share your CIDR and VM addresses, over at least three hosts")
def overlapping(ctx) -> None:
    topo = learner_topology(ctx)
    s = scenario(ctx)
    hosts = {vm.host for vm in topo.vms.values() if vm.vpc in s.vpcs}
    if len(hosts) < 3:
        raise Failed(f"the two VPCs' VMs are on {len(hosts)} host(s): {', '.join(sorted(hosts))}",
                     expected="VMs of the two VPCs on at least three hosts",
                     hint="many VPCs share the same physical hosts: spread their VMs")
    shared = {vm.host for vm in topo.vms.values() if vm.vpc == s.vpcs[0]} & \
        {vm.host for vm in topo.vms.values() if vm.vpc == s.vpcs[1]}
    if not shared:
        raise Failed(f"no host carries VMs of both {s.vpcs[0]} and {s.vpcs[1]}",
                     expected="at least one host with VMs of both VPCs",
                     hint="the point is two VPCs on the same physical hosts: put VMs of both "
                          "on one host")
    if topo.vms[s.twin].host not in {topo.vms[s.source].host, topo.vms[s.target].host}:
        raise Failed(f"{s.twin} is on a host the ping never reaches", seen=str(s),
                     expected=f"{s.twin} on {topo.vms[s.source].host} or "
                              f"{topo.vms[s.target].host}, where the ping passes",
                     hint="a twin the traffic never comes near proves nothing: put it where "
                          "the packets are")


@check("the ping reaches its own VPC's VM, as your own-vpc.txt says")
def own_vpc(ctx) -> None:
    s = scenario(ctx)
    _, _, done = ping_captured(ctx)
    if not done.ok:
        raise Failed(f"{s.source} pinged {s.address} and got no answer",
                     seen=done.stdout.strip(), hint="is the address in the source's own VPC?")
    compare(ctx, s.target, "own-vpc.txt")


@check("the other VPC's VM with the same address stays silent, as your other-vpc.txt says")
def other_vpc(ctx) -> None:
    s = scenario(ctx)
    text = ctx.file("other-vpc.txt")
    if any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        raise Failed(f"your other-vpc.txt expects packets at {s.twin}",
                     hint=f"{s.twin} is in {s.vpcs[1]}; the ping is in {s.vpcs[0]}. What does "
                          "the VNI on the wire tell the receiving router?")
    compare(ctx, s.twin, "other-vpc.txt")


@check("isolation holds the other way round too", hidden=True)
def other_way(ctx) -> None:
    s = scenario(ctx)
    lab, _, _ = ping_captured(ctx)
    source_ip = lab.address(s.source)
    with lab.capture([s.source], ctx.tmp / "back", filter="icmp") as cap:
        lab.exec(s.twin, "ping", "-c", "1", "-W", "1", source_ip)
    if cap.lines()[s.source]:
        raise Failed(f"{s.source} saw a ping from {s.twin}, of the other VPC",
                     evidence="\n".join(cap.lines()[s.source]))
