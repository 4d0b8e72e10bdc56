"""03: the learner writes the tunnel: encapsulate (the VNI, the outer destination) and
deliver (which VM a packet out of the tunnel is for).

The learner's `encapsulate(router, destination)` and `deliver(router, arrival)`
(starter/tunnel.py) run, unprivileged, in place of the mapping service's own tunnel
(vpclab ryu_apps/learner_tunnel.py): every forwarding entry that tunnels carries the
learner's header, every delivery entry the learner's port. The lab (VXLAN, on demand): two
VPCs with one CIDR and the same addresses, twins on the SAME hosts (ZIGI-VM1 and OTHER-VM1
on one, ZIGI-VM2 and OTHER-VM2 on the other), and beside them on the receiving host a VM
of each VPC with another address (ZIGI-VM3, OTHER-VM3). Each VPC's VM1 pings its VM2 once,
with every VM and both hosts' underlay NICs captured. Graded on those captures: VXLAN
(UDP 4789) between the two hosts' underlay addresses with the VPC's own VNI around the
VMs' own ICMP; the request at its VM and the reply back; nothing at any other VM. Between
the two pings, host1 sends a forged VXLAN packet in OTHER-VPC's VNI from OTHER-VM1 (true:
it lives there, so host2's receive check verifies it and asks the learner's deliver) to
ZIGI-VM2's own address and MAC: nothing of it may reach ZIGI-VM2 (a deliver blind to the
VNI hands it over).

What the learner's code answered (or how it failed, and what it printed) is read from the
mapping service's events (learner_called, learner_answer, learner_error, each with its
"function"): the evidence beside the captures.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

from vpclab.classroom import Failed, Variant, check, forge, learner_events
from vpclab.classroom.learner_events import mark
from vpclab.classroom.variant import random_mac

TITLE = "Write the tunnel: the VNI, the outer destination, and delivery to the right VM"
WORK_FILES = ["tunnel.py"]
LEARNER = "tunnel.py"
LEARNER_HOOKS = {"tunnel": LEARNER}         # `vpclab lab start 3` runs it in its lab too

VXLAN_PORT = forge.VXLAN_PORT
SETTLE = 8.0        # s at most for the learner's calls of one probe to end (2 s each, a hang
                    # killed 1 s later)
REPLY_WAIT = 8      # ping -W: a request and its reply may each wait for a learner's call
                    # (2 s at most, +1 s before a hang is killed); judged on the captures
INJECTED = (0x0303, 3)    # the forged packet's ICMP echo id and seq (no data: length 8)
PINGS = {"ZIGI-VPC1": ("ZIGI-VM1", "ZIGI-VM2"), "OTHER-VPC": ("OTHER-VM1", "OTHER-VM2")}
VMS = ("ZIGI-VM1", "OTHER-VM1", "ZIGI-VM3", "OTHER-VM3", "ZIGI-VM2", "OTHER-VM2")


# -- the lab ---------------------------------------------------------------------------------
def topology(variant: Variant) -> dict:
    """Two VPCs, one CIDR, twins on the same hosts: VM1s on the sending host, VM2s (and
    VM3s, another address) on the receiving one. The seed's ZIGI numbers, or the student's;
    OTHER-VPC's VNI, the OTHER VMs' MACs and the hosts' underlay addresses too."""
    seed = variant.seed_lab("ex03")
    zigi = seed["vpcs"]["ZIGI-VPC1"]
    one, two = seed["vms"]["ZIGI-VM1"], seed["vms"]["ZIGI-VM2"]
    rng = variant.rng("tunnel")
    if variant.student is None:
        other_vni, underlay = zigi["vni"] + 1, ("192.168.100.1", "192.168.100.2")
    else:
        other_vni = next(v for v in iter(lambda: rng.randrange(100, 16_000_000), None)
                         if v != zigi["vni"])
        first, second = rng.sample(range(10, 250), 2)
        underlay = (f"192.168.100.{first}", f"192.168.100.{second}")
    network = IPv4Network(zigi["cidr"])
    spare = [str(a) for a in network.hosts()][3:]
    if variant.student is not None:
        rng.shuffle(spare)
    three = next(a for a in [str(network[200])] * (variant.student is None) + spare
                 if a not in (one["ip"], two["ip"]))

    def twin(vm: dict) -> dict:
        mac = {} if variant.student is None else {"mac": random_mac(rng)}
        return {"vpc": "OTHER-VPC", "host": vm["host"], "ip": vm["ip"], **mac}
    beside = {"vpc": "ZIGI-VPC1", "host": two["host"], "ip": three}
    # the order is the routers' port order: beside the VM2s, the VM3s come first
    vms = {"ZIGI-VM1": one, "OTHER-VM1": twin(one),
           "ZIGI-VM3": beside, "OTHER-VM3": {**beside, "vpc": "OTHER-VPC"},
           "ZIGI-VM2": two, "OTHER-VM2": twin(two)}
    hosts = sorted({one["host"], two["host"]})
    return {"name": "ex03", "description": f"two VPCs, one CIDR, twins on the same hosts "
                                           f"({variant.describe()})",
            "encap": "vxlan", "mapping": {"mode": "on-demand"}, "defaults": {"ttl": 255},
            "hosts": {h: {"underlay_ip": ip} for h, ip in zip(hosts, underlay)},
            "vpcs": {"ZIGI-VPC1": zigi, "OTHER-VPC": {"cidr": zigi["cidr"], "vni": other_vni}},
            "vms": vms}


def briefing(variant: Variant) -> str:
    made = topology(variant)
    one, two = made["vms"]["ZIGI-VM1"], made["vms"]["ZIGI-VM2"]
    vnis = ", ".join(f"{name} VNI {vpc['vni']}" for name, vpc in made["vpcs"].items())
    return (f"{vnis}; ZIGI-VM1 and OTHER-VM1 ({one['ip']}) on {one['host']}, ZIGI-VM2 and "
            f"OTHER-VM2 ({two['ip']}) on {two['host']}\n"
            f"watch the underlay: vpclab capture ex03 --on {one['host']}:eth0,ZIGI-VM2,OTHER-VM2 "
            f"-- ZIGI-VM1 ping -c 1 {two['ip']}")


def lab(ctx):
    ctx.file(LEARNER)                                   # missing: fails, saying so
    return ctx.lab(topology(ctx.variant), key="twins", mode="on-demand",
                   learner={"tunnel": ctx.work / LEARNER})


# -- what the learner's code did, from the mapping service's events -------------------------
def settled(lab, start: int, timeout: float = SETTLE) -> list[dict]:
    return learner_events.settled(lab, start, timeout)


def printed(events: list[dict]) -> str:
    return learner_events.printed(events, labelled=True)


# -- one ping, captured everywhere -------------------------------------------------------------
@dataclass(frozen=True)
class Tunnelled:
    """One packet on a host's underlay NIC that carries a VM's packet."""
    outer_src: str
    outer_dst: str
    dport: int
    kind: str           # VXLAN, Geneve, or UDP (not a tunnel scapy knows)
    vni: int | None
    inner: str          # "ICMP echo request A > B", or what it carries

    def __str__(self) -> str:
        vni = f" vni {self.vni}" if self.vni is not None else ""
        return (f"{self.kind} {self.outer_src} > {self.outer_dst} (UDP port {self.dport}){vni}: "
                f"{self.inner}")


def icmp_line(pkt) -> str:
    from scapy.layers.inet import ICMP, IP
    if not pkt.haslayer(IP):
        return pkt.summary()
    ip = pkt[IP]
    if pkt.haslayer(ICMP) and pkt[ICMP].type in (0, 8):
        return f"ICMP echo {'request' if pkt[ICMP].type == 8 else 'reply'} {ip.src} > {ip.dst}"
    return f"IP {ip.src} > {ip.dst} proto {ip.proto}"


def read_underlay(pcap: Path) -> list[Tunnelled]:
    """The UDP packets on an underlay NIC (tunnels: VXLAN, Geneve), as Tunnelled."""
    from scapy.contrib.geneve import GENEVE
    from scapy.layers.inet import IP, UDP
    from scapy.layers.vxlan import VXLAN
    from scapy.utils import rdpcap
    found = []
    for pkt in rdpcap(str(pcap)) if pcap.exists() else []:
        if not pkt.haslayer(IP) or not pkt.haslayer(UDP):
            continue
        ip, udp = pkt[IP], pkt[UDP]
        for layer, kind in ((VXLAN, "VXLAN"), (GENEVE, "Geneve")):
            if udp.haslayer(layer):
                found.append(Tunnelled(ip.src, ip.dst, udp.dport, kind, pkt[layer].vni,
                                       icmp_line(pkt[layer].payload)))
                break
        else:
            found.append(Tunnelled(ip.src, ip.dst, udp.dport, "UDP", None, "?"))
    return found


def injected(pkt) -> bool:
    """The forged packet (or a VM's answer to it): its ICMP id and seq, no data."""
    from scapy.layers.inet import ICMP
    icmp = pkt[ICMP]
    return (icmp.id, icmp.seq) == INJECTED and not bytes(icmp.payload)


def read_vm(pcap: Path, forged: bool = False) -> list[str]:
    """The ICMP echo lines a VM captured: the pings' (or, `forged`, the injection's)."""
    from scapy.layers.inet import ICMP
    from scapy.utils import rdpcap
    return [icmp_line(p) for p in (rdpcap(str(pcap)) if pcap.exists() else [])
            if p.haslayer(ICMP) and p[ICMP].type in (0, 8) and injected(p) == forged]


@dataclass
class Probe:
    """One VPC's ping (its VM1 to its VM2) in the twins' lab, and all it left behind."""
    vpc: str
    sender: str
    receiver: str
    underlay: dict[str, list[Tunnelled]]     # host -> what its NIC carried
    vms: dict[str, list[str]]                 # VM -> its ICMP echo lines
    events: list[dict]                        # the mapping service's, during the ping
    every: list[dict]                         # ... and all of the lab's, from its start
    made: dict                                # the topology
    nodes: dict

    def vni(self, vpc: str | None = None) -> int:
        return self.made["vpcs"][vpc or self.vpc]["vni"]

    def host(self, vm: str) -> str:
        return self.nodes[vm]["host"]

    def underlay_ip(self, host: str) -> str:
        return self.nodes[host]["underlay_ip"]

    @property
    def address(self) -> tuple[str, str]:
        return self.nodes[self.sender]["ip"], self.nodes[self.receiver]["ip"]

    @property
    def arrival(self) -> str:
        """How the service names deliver's question for this ping's request (its events)."""
        return f"{self.vni()}:{self.address[1]}:{self.nodes[self.receiver]['mac'].lower()}"

    @property
    def request(self) -> str:
        return "ICMP echo request {} > {}".format(*self.address)

    @property
    def reply(self) -> str:
        return "ICMP echo reply {1} > {0}".format(*self.address)

    def said(self) -> str:
        return f"{self.sender}'s ping to {self.receiver} ({self.address[1]}, in {self.vpc})"

    def vpc_of_vni(self, vni: int | None) -> str | None:
        return next((n for n, v in self.made["vpcs"].items() if v["vni"] == vni), None)

    def host_of_ip(self, ip: str) -> str | None:
        return next((h for h, n in self.nodes.items()
                     if n["kind"] == "host" and n["underlay_ip"] == ip), None)

    def evidence(self, *hosts: str, vms: tuple[str, ...] = ()) -> str:
        rows = []
        for host in hosts:
            rows.append(f"{host}:eth0 (underlay):")
            rows += [f"  {t}" for t in self.underlay[host]] or ["  (no tunnelled packet)"]
        for vm in vms:
            rows.append(f"{vm}:")
            rows += [f"  {line}" for line in self.vms[vm]] or ["  (nothing)"]
        return "\n".join(rows)

    def learner_answers(self, function: str, every: bool = False) -> list[dict]:
        return [e for e in (self.every if every else self.events)
                if e["event"] in ("learner_answer", "learner_error")
                and e.get("function") == function]


def probe(ctx, vpc: str) -> Probe:
    if vpc == "OTHER-VPC":       # the forged packet first: OTHER-VM1's first packet on host2
        injection(ctx)

    def run():
        twins = lab(ctx)
        sender, receiver = PINGS[vpc]
        nodes = twins.nodes()
        hosts = sorted({nodes[sender]["host"], nodes[receiver]["host"]})
        start = mark(twins)
        folder = ctx.tmp / vpc
        with twins.capture([f"{h}:eth0" for h in hosts] + list(VMS), folder,
                           filter="udp or icmp") as cap:
            twins.exec(sender, "ping", "-n", "-c", "1", "-W", str(REPLY_WAIT),
                       twins.address(receiver))
            events = settled(twins, start)
        return Probe(vpc, sender, receiver,
                     {h: read_underlay(cap.pcap(f"{h}:eth0")) for h in hosts},
                     {vm: read_vm(cap.pcap(vm)) for vm in VMS}, events,
                     list(twins.state.events.read()), topology(ctx.variant), nodes)
    return ctx.once(f"probe-{vpc}", run)


# -- a forged packet: OTHER-VPC's VNI, ZIGI-VM2's own address and MAC inside ---------------------
ASKED_WAIT = 3.0      # s at most for the forged packet to reach the learner's deliver


@dataclass
class Injection:
    """The packet host1 (OTHER-VM1's host) sends in OTHER-VPC's VNI from OTHER-VM1 to ZIGI-VM2's
    own address and MAC, and all it left behind: host2's NIC, every VM, the events."""
    vni: int
    source: dict                              # OTHER-VM1's node
    target: dict                              # ZIGI-VM2's node
    underlay: list[Tunnelled]                 # the receiving host's NIC
    vms: dict[str, list[str]]                 # VM -> its lines of the forged packet (or a reply)
    events: list[dict]

    @property
    def arrival(self) -> str:
        """How the service names deliver's question about it (its events)."""
        return f"{self.vni}:{self.target['ip']}:{self.target['mac'].lower()}"

    @property
    def request(self) -> str:
        return f"ICMP echo request {self.source['ip']} > {self.target['ip']}"

    def answers(self) -> list[dict]:
        """deliver's answers (or errors) about this packet."""
        return [e for e in self.events if e.get("function") == "deliver"
                and e["event"] in ("learner_answer", "learner_error")
                and e.get("arrival") == self.arrival]

    def said(self) -> str:
        return (f"{self.source['host']} sent ZIGI-VM2's host a VXLAN packet in OTHER-VPC's VNI "
                f"{self.vni} from OTHER-VM1 ({self.source['ip']}, which does live on "
                f"{self.source['host']}) to {self.target['ip']} with ZIGI-VM2's own MAC "
                f"{self.target['mac'].lower()}")

    def evidence(self, vms: tuple[str, ...]) -> str:
        host = self.target["host"]
        rows = [f"{host}:eth0 (underlay):"]
        rows += [f"  {t}" for t in self.underlay] or ["  (no tunnelled packet)"]
        for vm in vms:
            rows.append(f"{vm}:")
            rows += [f"  {line}" for line in self.vms[vm]] or ["  (nothing)"]
        for e in self.answers():
            said = (f"port {e.get('port')}" if e["event"] == "learner_answer"
                    else f"failed: {e['message'].splitlines()[0]}")
            rows.append(f"your deliver on {e.get('host')}, asked about {{'vni': {self.vni}, "
                        f"'dst_ip': '{self.target['ip']}', 'dst_mac': "
                        f"'{self.target['mac'].lower()}'}}: {said}")
        said = printed([e for e in self.events if e.get("function") == "deliver"])
        if said:
            rows += ["", "what your tunnel.py printed:", said.rstrip()]
        return "\n".join(rows)


def asked_deliver(lab, start: int, arrival: str, timeout: float = ASKED_WAIT) -> None:
    """Wait until the receiving router asked the learner's deliver about `arrival` (at most
    `timeout` s: the forged packet is on its way when the sender's exec returns)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e["event"] == "learner_called" and e.get("function") == "deliver"
               and e.get("arrival") == arrival for e in learner_events.since(lab, start)):
            return
        time.sleep(0.02)


def injection(ctx) -> Injection:
    """The forged packet, after ZIGI-VPC1's ping (whose caches carry a VM's reply to it at
    once) and before OTHER-VPC's: OTHER-VM1 is not verified on host2 yet, so the packet is
    a miss of host2's receive check, which verifies it (true: OTHER-VM1 lives on the sending
    host) and hands it to the port the learner's deliver answers for that (vni, dst_ip,
    dst_mac). No VM of OTHER-VPC has ZIGI-VM2's MAC: a deliver that reads the VNI drops it."""
    probe(ctx, "ZIGI-VPC1")

    def run():
        twins = lab(ctx)
        nodes = twins.nodes()
        source, target = nodes["OTHER-VM1"], nodes["ZIGI-VM2"]
        vni = topology(ctx.variant)["vpcs"]["OTHER-VPC"]["vni"]
        frame = forge.vxlan_frame(vni, src_mac=source["mac"], dst_mac=target["mac"],
                                  src_ip=source["ip"], dst_ip=target["ip"],
                                  ident=INJECTED[0], seq=INJECTED[1])
        made = Injection(vni, source, target, [], {}, [])
        into = target["host"]
        start = mark(twins)
        with twins.capture([f"{into}:eth0", *VMS], ctx.tmp / "forged",
                           filter="udp or icmp") as cap:
            forge.send(twins, source["host"], frame, into)
            asked_deliver(twins, start, made.arrival)
            made.events = settled(twins, start)
        made.underlay = [t for t in read_underlay(cap.pcap(f"{into}:eth0"))
                         if t.inner == made.request]
        made.vms = {vm: read_vm(cap.pcap(vm), forged=True) for vm in VMS}
        return made
    return ctx.once("forged", run)


# -- the verdicts ----------------------------------------------------------------------------
def learner_failed(p: Probe, function: str, every: bool = False, evidence: str = "") -> None:
    """Fail with the learner's traceback (and prints) if its `function` failed, or could not
    load at all; `evidence`: the captures that show what it cost."""
    errors = [e for e in p.learner_answers(function, every) if e["event"] == "learner_error"]
    errors += [e for e in p.every if e["event"] == "learner_error" and "function" not in e]
    own = [e for e in errors if e.get("arrival") == p.arrival]     # this ping's own question
    errors = own or errors
    if not errors:
        return
    error = errors[-1]
    if error.get("kind") == "BadAnswer" and "not None" in error["message"] and \
            function == "encapsulate":
        raise Failed(f"{p.said()}: your encapsulate returned None, so the router had no "
                     "header to put on it and dropped it",
                     seen=error["message"], evidence=evidence_with_prints(p, evidence, [error]),
                     hint="encapsulate returns {'vni': ..., 'remote_ip': ...}: see TODO 1 and 2")
    raise Failed(f"{p.said()}: your {function} failed", seen=error["message"].splitlines()[0],
                 evidence=evidence_with_prints(p, (evidence + "\n\n" if evidence else "")
                                               + error["message"], [error]),
                 hint="fix what it says (a traceback points at your line); the router drops "
                      "what your code did not answer")


def evidence_with_prints(p: Probe, evidence: str, more: list[dict] = ()) -> str:
    unique = {(e["t"], e["event"], e.get("function")): e for e in [*p.events, *more]}
    said = printed(sorted(unique.values(), key=lambda e: e["t"]))
    if not said:
        return evidence
    return ((evidence.rstrip() + "\n\n" if evidence else "")
            + "what your tunnel.py printed:\n" + said)


def header_answer(p: Probe, host: str, vm: str) -> dict | None:
    """encapsulate's answer on `host` for a packet to `vm` (the last, from the lab's events)."""
    key = f"{p.nodes[vm]['vpc']}:{p.nodes[vm]['ip']}"
    answers = [e for e in p.learner_answers("encapsulate", every=True)
               if e["event"] == "learner_answer" and e.get("host") == host
               and e.get("destination") == key]
    return answers[-1] if answers else None


def what_address(p: Probe, ip: str, sender_host: str) -> str:
    """What an outer destination the learner gave is, in words."""
    if ip == p.underlay_ip(sender_host):
        return f"{sender_host}'s own underlay address: the packet never leaves {sender_host}"
    host = p.host_of_ip(ip)
    if host is not None:
        return f"{host}'s underlay address"
    vms = [vm for vm, n in p.nodes.items() if n["kind"] == "vm" and n["ip"] == ip]
    if vms:
        return (f"an address inside the VPCs ({', '.join(vms)}), which the underlay does not "
                "know: it carries packets between hosts")
    return "no host's address"


def crossed(p: Probe, forward: bool = True) -> tuple[list[Tunnelled], list[Tunnelled]]:
    """(what left the sending host, what arrived at the receiving one) carrying the request
    (or, forward False, the reply: leaving the receiver's host, arriving at the sender's)."""
    out, into = p.host(p.sender), p.host(p.receiver)
    inner = p.request if forward else p.reply
    if not forward:
        out, into = into, out
    leaving = [t for t in p.underlay[out] if t.inner == inner and t.outer_src == p.underlay_ip(out)]
    arriving = [t for t in p.underlay[into] if t.inner == inner]
    return leaving, arriving


def grade_encapsulation(p: Probe) -> None:
    """The request (and the reply, if there is one) in VXLAN, UDP 4789, the VPC's VNI,
    between the two hosts' underlay addresses."""
    out, into = p.host(p.sender), p.host(p.receiver)
    leaving, _ = crossed(p)
    if not leaving:
        learner_failed(p, "encapsulate", evidence=p.evidence(out, vms=(p.sender,)))
        answer = header_answer(p, out, p.receiver)
        if answer and answer.get("remote_ip") != p.underlay_ip(into):
            raise Failed(f"{p.said()} never left {out}: your encapsulate sent it to "
                         f"{answer['remote_ip']}",
                         expected=f"remote_ip {p.underlay_ip(into)} ({into}, where {p.receiver} "
                                  "lives)",
                         seen=f"remote_ip {answer['remote_ip']}: "
                              f"{what_address(p, answer['remote_ip'], out)}",
                         evidence=evidence_with_prints(p, p.evidence(out)),
                         hint=f"on the underlay a packet can only go to a host: which host "
                              f"does {p.receiver}'s mapping (`destination`) place it on, and "
                              "at which underlay address?")
        raise Failed(f"{p.said()} did not leave {out} through the tunnel",
                     expected=f"on {out}:eth0: VXLAN {p.underlay_ip(out)} > {p.underlay_ip(into)} "
                              f"vni {p.vni()}: {p.request}",
                     evidence=evidence_with_prints(p, p.evidence(out, vms=(p.sender,))),
                     hint="was encapsulate asked (the evidence shows what it printed)? Does it "
                          "return {'vni': ..., 'remote_ip': ...} (TODO 1 and 2)?")
    for forward in (True, False):
        leaving, arriving = crossed(p, forward)
        what = "request" if forward else "reply"
        src, dst = (out, into) if forward else (into, out)
        towards = p.receiver if forward else p.sender
        for t in leaving:
            if t.kind != "VXLAN" or t.dport != VXLAN_PORT:
                raise Failed(f"the {what} of {p.said()} left {src} but not in VXLAN",
                             expected=f"VXLAN, UDP port {VXLAN_PORT}", seen=str(t),
                             evidence=p.evidence(src), hint="the lab's tunnel is VXLAN")
            if t.vni != p.vni():
                whose = p.vpc_of_vni(t.vni)
                owner = f"{whose}'s" if whose else "no VPC has it"
                raise Failed(f"the {what} of {p.said()} carried the wrong VNI",
                             expected=f"vni {p.vni()} ({p.vpc}'s)", seen=f"vni {t.vni} ({owner})",
                             evidence=evidence_with_prints(p, p.evidence(src, dst)),
                             hint=(f"{src}'s router carries VMs of {' and '.join(p.made['vpcs'])}; "
                                   "the receiver reads the VPC from the VNI alone, so "
                                   + (f"{whose}'s VNI makes it a packet of {whose}"
                                      if whose else f"with vni {t.vni}, a VNI no VPC of this lab "
                                                    f"has, {dst}'s router drops it")
                                   + f". Which VPC is {p.sender}'s packet to {towards} "
                                     "travelling in, and which VNI is that VPC's?"))
            if t.outer_dst != p.underlay_ip(dst):
                raise Failed(f"the {what} of {p.said()} was sent to the wrong host",
                             expected=f"outer destination {p.underlay_ip(dst)} ({dst}, where "
                                      f"{towards} lives)",
                             seen=f"{t.outer_dst}: {what_address(p, t.outer_dst, src)}",
                             evidence=evidence_with_prints(p, p.evidence(src, dst)),
                             hint=f"{towards} lives on {dst}: which host does the mapping "
                                  f"place it on, and at which underlay address?")
        if forward and not arriving:
            raise Failed(f"the request of {p.said()} left {out} but never reached {into}",
                         evidence=evidence_with_prints(p, p.evidence(out, into)),
                         hint=f"is {p.underlay_ip(into)} really {into}'s underlay address?")


def grade_delivery(p: Probe) -> None:
    """The request reached its VM (and no other), the reply came back to the sender."""
    out, into = p.host(p.sender), p.host(p.receiver)
    _, arriving = crossed(p)
    if not arriving:
        deliver = [e for e in p.learner_answers("deliver", every=True)
                   if e["event"] == "learner_answer"]
        mine = next((e for e in deliver if e.get("host") == into and e.get("arrival") == p.arrival),
                    None)
        none = mine is not None and mine.get("port") is None
        raise Failed(f"{p.said()}: nothing came out of the tunnel on {into}, so delivery was "
                     "not tried", evidence=evidence_with_prints(p, p.evidence(out, into)),
                     hint="first the packet must cross (encapsulate, TODO 1 and 2)"
                          + (f"; and your deliver answered None for {p.receiver}'s own VNI, "
                             "address and MAC (TODO 3)" if none else ""))
    request_at = [vm for vm, lines in p.vms.items() if p.request in lines and vm != p.sender]
    if not request_at and not any(t.vni == p.vni() for t in arriving):
        raise Failed(f"{p.said()} arrived at {into} as no packet of {p.vpc}, so it could not be "
                     f"delivered to {p.receiver}",
                     expected=f"vni {p.vni()} ({p.vpc}'s)",
                     seen=", ".join(sorted({f"vni {t.vni}" for t in arriving})),
                     evidence=evidence_with_prints(p, p.evidence(into, vms=(p.receiver,))),
                     hint="the receiver reads the VPC from the VNI: fix encapsulate's VNI first "
                          "(see the first check)")
    wrong = [vm for vm in request_at if vm != p.receiver]
    if wrong:
        twin = wrong[0]
        same = p.nodes[twin]["ip"] == p.address[1]
        raise Failed(f"{p.said()} was delivered to {', '.join(wrong)}",
                     expected=f"{p.request} at {p.receiver} only",
                     seen=f"at {', '.join(request_at)}",
                     evidence=evidence_with_prints(p, p.evidence(into, vms=(p.receiver, *wrong))),
                     hint=(f"{twin} is in {p.nodes[twin]['vpc']}"
                           + (f" and has the same address {p.address[1]}: the receiver tells VPCs "
                              "apart by the VNI alone" if same else
                              f" too, with another address ({p.nodes[twin]['ip']}): within a VPC, "
                              "the inner destination says which VM")
                           + "; deliver must pick the VM the arrival is for, or None"))
    if p.receiver not in request_at:
        learner_failed(p, "deliver", every=True, evidence=p.evidence(into, vms=(p.receiver,)))
        raise Failed(f"{p.said()} came out of the tunnel on {into} but reached no VM",
                     evidence=evidence_with_prints(p, p.evidence(into, vms=(p.receiver,))),
                     hint=f"deliver gets {{'vni': {p.vni()}, 'dst_ip': '{p.address[1]}', "
                          f"'dst_mac': ...}}: it returns the port of the VM that packet is for "
                          "(TODO 3), None drops it")
    if p.reply not in p.vms[p.sender]:
        replied = p.reply in p.vms[p.receiver]
        raise Failed(f"{p.said()}: {p.receiver} got the request but {p.sender} got no reply",
                     evidence=evidence_with_prints(p, p.evidence(into, out,
                                                                 vms=(p.receiver, p.sender))),
                     hint=("the reply goes through the tunnel the other way: the same "
                           "encapsulate and deliver, on the other router" if replied else
                           f"{p.receiver} did not answer: was the request addressed to it?"))


# -- the checks ------------------------------------------------------------------------------
@check("ZIGI-VM1's ping crosses the underlay in VXLAN: ZIGI-VPC1's VNI, host to host, the "
       "VMs' own packet inside")
def zigi_encapsulated(ctx) -> None:
    grade_encapsulation(probe(ctx, "ZIGI-VPC1"))


@check("out of the tunnel, the request goes to ZIGI-VM2 and the reply back to ZIGI-VM1")
def zigi_delivered(ctx) -> None:
    grade_delivery(probe(ctx, "ZIGI-VPC1"))


@check("OTHER-VM1's ping to OTHER-VM2 (the same addresses) works with OTHER-VPC's VNI")
def other_vpc_works(ctx) -> None:
    p = probe(ctx, "OTHER-VPC")
    grade_encapsulation(p)
    grade_delivery(p)


def leak_hint(p: Probe, vm: str, sent_with: set[int]) -> str:
    same = p.nodes[vm]["ip"] == p.address[1]
    where = f"{vm} is in {p.nodes[vm]['vpc']}" + (f", with the same address {p.address[1]}"
                                                  if same else "")
    if sent_with == {p.vni()}:
        return (f"the request arrived with {p.vpc}'s own VNI {p.vni()}, and deliver handed it to "
                f"{vm}: {where}. The receiver tells VPCs apart by the VNI alone")
    return (f"the request arrived with vni {', '.join(map(str, sorted(sent_with))) or '?'}, not "
            f"{p.vpc}'s {p.vni()}: {where}. The VNI is what tells VPCs apart, on the wire and "
            "when delivering")


@check("isolation: no VM sees the other VPC's ping, not even its twin on the same host")
def isolated(ctx) -> None:
    probes = [probe(ctx, vpc) for vpc in PINGS]
    for p in probes:
        strangers = [vm for vm in VMS if p.nodes[vm]["vpc"] != p.vpc]
        leaks = {vm: p.vms[vm] for vm in strangers if p.vms[vm]}
        if leaks:
            vm, lines = next(iter(leaks.items()))
            sent_with = {t.vni for t in p.underlay[p.host(p.receiver)] if t.inner == p.request}
            raise Failed(f"{p.said()} reached {', '.join(leaks)}, in another VPC",
                         expected=f"nothing at {', '.join(strangers)}", seen=f"{vm}: {lines[0]}",
                         evidence=evidence_with_prints(p, p.evidence(
                             p.host(p.receiver), vms=(p.receiver, *leaks))),
                         hint=leak_hint(p, vm, sent_with))
    for p in probes:
        foreign = [t for host in p.underlay.values() for t in host
                   if t.inner in (p.request, p.reply) and t.vni != p.vni()]
        if foreign:
            whose = p.vpc_of_vni(foreign[0].vni)
            raise Failed(f"{p.said()} travelled as a packet of {whose or 'no VPC'}",
                         expected=f"vni {p.vni()} ({p.vpc}'s) on the wire", seen=str(foreign[0]),
                         evidence=evidence_with_prints(p, p.evidence(*p.underlay)),
                         hint=f"with vni {foreign[0].vni} the receiving router takes it for "
                              f"{whose or 'no VPC'}'s, where the same addresses belong to other "
                              "VMs: the VNI on the wire is the only thing that keeps the VPCs "
                              "apart")
    for p in probes:
        if not crossed(p)[1]:
            try:
                learner_failed(p, "encapsulate", evidence=p.evidence(p.host(p.sender)))
            except Failed as failed:
                failed.summary = (f"{p.said()} never crossed the tunnel, so its isolation "
                                  f"proves nothing: {failed.summary.split(': ', 1)[-1]}")
                raise
            raise Failed(f"{p.said()} never crossed the tunnel, so its isolation proves nothing",
                         evidence=evidence_with_prints(p, p.evidence(p.host(p.sender))),
                         hint="isolation counts once both VPCs' pings cross (TODO 1 and 2)")


@check("deliver reads the VNI: a packet in OTHER-VPC's VNI to ZIGI-VM2's own address and MAC "
       "does not reach ZIGI-VM2")
def vni_decides(ctx) -> None:
    zigi = probe(ctx, "ZIGI-VPC1")
    i = injection(ctx)
    into = i.target["host"]
    errors = [e for e in i.answers() if e["event"] == "learner_error"]
    if errors:
        raise Failed(f"{i.said()}: your deliver failed on it",
                     seen=errors[-1]["message"].splitlines()[0],
                     evidence=i.evidence(("ZIGI-VM2",)) + "\n\n" + errors[-1]["message"],
                     hint="the packet is for none of the router's VMs, which deliver answers "
                          "with None; an error drops it too, but it is your code failing: "
                          "fix what the traceback points at")
    taken = [vm for vm in VMS if zigi.nodes[vm]["vpc"] != "OTHER-VPC" and i.request in i.vms[vm]]
    if taken:
        vm = taken[0]
        raise Failed(f"{i.said()}, and {', '.join(taken)} received it",
                     expected=f"nothing at {vm}: it is a VM of ZIGI-VPC1, and the packet was "
                              f"in OTHER-VPC (VNI {i.vni}), where no VM on {into} has that "
                              "address and MAC",
                     seen=f"{vm}: {i.request}",
                     evidence=i.evidence((*taken, "ZIGI-VM1")),
                     hint=f"the packet's inner address and MAC are {vm}'s, but its VNI {i.vni} "
                          f"is OTHER-VPC's, not ZIGI-VPC1's {zigi.vni()}. The receiver tells "
                          "VPCs apart by the VNI alone: which field of `arrival` did your "
                          "deliver not look at? (None drops a packet that is for none of the "
                          "router's VMs.)")
    if zigi.request not in zigi.vms[zigi.receiver]:
        raise Failed(f"{i.said()}, and nothing of it reached ZIGI-VM2, but neither did "
                     f"ZIGI-VM1's own request, so this proves nothing",
                     evidence=zigi.evidence(into, vms=(zigi.receiver,)),
                     hint="a deliver that drops everything keeps the VPCs apart too: first "
                          "the second check (the request to ZIGI-VM2, TODO 3)")
    if not i.answers():
        raise RuntimeError(f"the forged packet never reached deliver on {into}")
