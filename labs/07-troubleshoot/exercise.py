"""07: one fault injected in one virtual router; the learner finds it with the tools.

`prepare(lab, variant)` breaks ONE router of a running lab, the way real routers break:
OpenFlow flows above the mapping service's entries (PRIO_ENTRY), under a cookie of their
own (FAULT_COOKIE), with no timeout. The mapping service never undoes them: it deletes
only its own cookies, and resynchronises a router only when it reconnects. The fault and
the router come from the student's ID (variant.rng), one of:

  stale-entry    a VM was really moved (lab.move); the router tunnels to its old host
  wrong-vni      the router encapsulates one VM's traffic with a VNI no VPC has
  arp-flood      the router floods its VMs' ARP requests to all its VM ports (all VPCs)
  wrong-arp-mac  the router answers ARP for one VM's address with a MAC that is not its own

The learner writes diagnosis.txt (fault, router, evidence). The checks grade it on a
fresh faulty lab, by behaviour: every VM pings every other VM of its VPC while every VM
and every host's underlay NIC is captured (`survey`); the captures say, for each kind of
fault and each router, whether that fault shows there and with which concrete values
(the wrong VNI, the old host's underlay IP, the VMs the flood reached, the wrong MAC).
A diagnosis passes if the fault it names shows in that lab, at the router it names, and
its evidence cites a value that lab shows.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path

from vpclab.classroom import Failed, Variant, check
from vpclab.classroom.variant import random_mac
from vpclab.errors import VpclabError
from vpclab.router.pipeline import ARP, ARP_REPLY, ARP_REQUEST, FORWARD, PRIO_ENTRY
from vpclab.model.plan import TUNNEL_PORT, VM_PORT_BASE
from vpclab.packets.trace import read_pcap

TITLE = "Find the one fault injected in a lab's virtual routers, and prove it"
WORK_FILES = ["diagnosis.txt"]
ANSWER = "diagnosis.txt"

FAULTS = ("stale-entry", "wrong-vni", "arp-flood", "wrong-arp-mac")
HOSTS = ("host1", "host2", "host3")
VPC1, VPC2 = "ZIGI-VPC1", "ZIGI-VPC2"
VPC1_VMS, VPC2_VMS = ("ZIGI-VM1", "ZIGI-VM2", "ZIGI-VM3", "ZIGI-VM4"), ("ZIGI-VM5", "ZIGI-VM6")
FAULT_COOKIE = 0x07 << 56       # a kind of its own: no cookie the mapping service deletes
FAULT_COOKIE_TEXT = f"cookie={FAULT_COOKIE:#x},"     # as dump-flows prints it
PRIO_FAULT = PRIO_ENTRY + 50    # above every entry the mapping service installs
PING_WAIT = 1                   # s: a survey ping's wait for its reply

# what each fault looks like with the tools: said when a diagnosis names it wrongly
LOOKS_LIKE = {
    "stale-entry": "a router tunnels a VM's packets to an underlay IP that is not the host "
                   "`vpclab mapping list` names for that VM (capture the host's NIC, host:eth0)",
    "wrong-vni": "a router sends a VM's packets in a Geneve header whose VNI is not the VPC's "
                 "(capture the host's NIC, host:eth0; `vpclab mapping list` gives every VPC's VNI)",
    "arp-flood": "a VM's ARP request reaches other VMs (a capture on a VM shows a request "
                 "'tell' another VM's address), and nobody answers it",
    "wrong-arp-mac": "a VM gets an ARP reply whose MAC is not the one `vpclab mapping list` "
                     "gives for that address",
}
EVIDENCE = {
    "stale-entry": "the underlay IP the stale router tunnels to",
    "wrong-vni": "the wrong VNI seen on the wire",
    "arp-flood": "a VM that received the flooded request",
    "wrong-arp-mac": "the wrong MAC in the ARP reply",
}


# -- the lab: two VPCs on three hosts, every host with a ZIGI-VPC1 VM -------------------
def topology(variant: Variant) -> dict:
    if variant.student is None:
        underlay = IPv4Network("192.168.100.0/24")
        hosts = {h: str(underlay[i]) for i, h in enumerate(HOSTS, start=1)}
        cidrs, vnis = ("10.0.0.0/24", "172.16.0.0/24"), (1001, 1002)
        vms = {"ZIGI-VM1": ("host1", "10.0.0.148", "02:00:5e:ad:58:40"),
               "ZIGI-VM2": ("host2", "10.0.0.185", "02:93:0e:03:bb:88"),
               "ZIGI-VM3": ("host3", "10.0.0.23", "02:1c:7a:40:e2:13"),
               "ZIGI-VM4": ("host3", "10.0.0.201", "02:6b:d1:0f:35:9e"),
               "ZIGI-VM5": ("host1", "172.16.0.10", "02:3a:88:c4:17:05"),
               "ZIGI-VM6": ("host2", "172.16.0.20", "02:d4:29:6e:a0:71")}
    else:
        rng = variant.rng("lab")
        underlay = IPv4Network(f"192.168.{rng.randrange(1, 255)}.0/24")
        hosts = dict(zip(HOSTS, (str(underlay[n]) for n in rng.sample(range(1, 255), 3))))
        cidrs = (f"10.{rng.randrange(1, 255)}.{rng.randrange(256)}.0/24",
                 f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.0/24")
        vnis = tuple(rng.sample(range(100, 16_000_000), 2))
        order = rng.sample(HOSTS, 3)                      # one ZIGI-VPC1 VM on every host
        fourth = rng.choice(HOSTS)
        others = [h for h in HOSTS if h != fourth]        # two VMs on every host
        placed = [*order, fourth, *others]
        vms = {}
        for vm, host in zip(VPC1_VMS + VPC2_VMS, placed):
            network = IPv4Network(cidrs[0] if vm in VPC1_VMS else cidrs[1])
            taken = {ip for _, ip, _ in vms.values()}
            ip = next(str(network[n]) for n in iter(lambda: rng.randrange(4, 255), None)
                      if str(network[n]) not in taken)
            vms[vm] = (host, ip, random_mac(rng))
    return {"name": "ex07", "description": "two VPCs on three hosts; one router is faulty",
            "encap": "geneve", "mapping": {"mode": "on-demand"}, "defaults": {"ttl": 255},
            "underlay": {"cidr": str(underlay)},
            "hosts": {h: {"underlay_ip": ip} for h, ip in hosts.items()},
            "vpcs": {VPC1: {"cidr": cidrs[0], "vni": vnis[0]},
                     VPC2: {"cidr": cidrs[1], "vni": vnis[1]}},
            "vms": {vm: {"vpc": VPC1 if vm in VPC1_VMS else VPC2, "host": host, "ip": ip,
                         "mac": mac} for vm, (host, ip, mac) in vms.items()}}


# -- the fault: which, where, with which values ------------------------------------------
@dataclass(frozen=True)
class Fault:
    kind: str
    router: str          # the faulty router's host
    target: str          # the VM whose traffic it breaks (stale-entry: the VM that moved)
    old_host: str = ""   # stale-entry: where the target was; it moves to new_host
    new_host: str = ""
    wrong_vni: int = 0
    wrong_mac: str = ""


def plan(variant: Variant, kind: str | None = None) -> Fault:
    """This student's fault (`kind` forces one kind, for tests; the router and the values
    stay the student's)."""
    topo = topology(variant)
    vms = topo["vms"]
    if variant.student is None:
        chosen, router, target = "stale-entry", "host3", "ZIGI-VM2"
        wrong_vni, wrong_mac = 1010, "02:93:0e:03:bb:89"     # ZIGI-VM2's, one off
    else:
        rng = variant.rng("fault")
        chosen, router = rng.choice(FAULTS), rng.choice(HOSTS)
        target = rng.choice([v for v in VPC1_VMS if vms[v]["host"] != router])
        taken = {vpc["vni"] for vpc in topo["vpcs"].values()}
        wrong_vni = next(n for n in iter(lambda: rng.randrange(100, 16_000_000), None)
                         if n not in taken)
        wrong_mac = _near(vms[target]["mac"], rng.randrange(1, 256))
    kind = kind or chosen
    if kind not in FAULTS:
        raise ValueError(f"no fault {kind!r}; faults: {', '.join(FAULTS)}")
    if kind != "stale-entry":
        return Fault(kind, router, target, wrong_vni=wrong_vni, wrong_mac=wrong_mac)
    old = vms[target]["host"]
    new = next(h for h in HOSTS if h not in (old, router))
    return Fault(kind, router, target, old_host=old, new_host=new)


def _near(mac: str, delta: int) -> str:
    """`mac` with its last byte changed: the kind of MAC a typo or a stale table gives."""
    head, last = mac.rsplit(":", 1)
    return f"{head}:{(int(last, 16) + delta) % 256:02x}"


def prepare(lab, variant: Variant, kind: str | None = None) -> Fault:
    """Break one router of a running lab of `topology(variant)`; returns the fault."""
    fault = plan(variant, kind)
    mapping = {m["ip"]: m for m in lab.mappings()}
    target = mapping[lab.address(fault.target)]
    vni = target["vni"]
    if fault.kind == "stale-entry":
        # the router really used the entry, then the VM really moved (the mapping service
        # invalidated it everywhere), then the old entry came back on that router alone
        asker = _vm_on(lab, fault.router, target["vpc"])
        lab.exec(asker, "ping", "-c", "1", "-W", "2", target["ip"])
        old_host_ip = target["host_ip"]
        lab.move(fault.target, fault.new_host)
        flows = [_forward(vni, target, vni, old_host_ip)]
    elif fault.kind == "wrong-vni":
        flows = [_forward(vni, target, fault.wrong_vni, target["host_ip"])]
    elif fault.kind == "arp-flood":
        ports = [str(_ofport(lab, vm)) for vm in sorted(lab.vms)
                 if lab.nodes()[vm]["host"] == fault.router]
        flows = [f"table={ARP},priority={PRIO_FAULT},cookie={FAULT_COOKIE:#x},arp,"
                 f"arp_op={ARP_REQUEST},actions=" + ",".join(f"output:{p}" for p in ports)]
    else:
        mac = fault.wrong_mac
        flows = [f"table={ARP},priority={PRIO_FAULT},cookie={FAULT_COOKIE:#x},arp,"
                 f"metadata={vni:#x},arp_op={ARP_REQUEST},arp_tpa={target['ip']},actions="
                 f"move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:{mac}->eth_src,"
                 f"set_field:{ARP_REPLY}->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],"
                 f"move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:{mac}->arp_sha,"
                 f"set_field:{target['ip']}->arp_spa,IN_PORT"]
    for flow in flows:
        ofctl(lab, fault.router, "add-flow", flow)
    return fault


def in_place(lab, fault: Fault) -> bool:
    """Are the fault's flows still on its router? (A router that reconnects is resynchronised
    by the mapping service, which removes every flow it did not install.)"""
    return FAULT_COOKIE_TEXT in ofctl(lab, fault.router, "dump-flows",
                                      f"cookie={FAULT_COOKIE:#x}/-1")


def _forward(vni: int, target: dict, wire_vni: int, host_ip: str) -> str:
    """The forwarding entry the mapping service would install for `target` (Geneve, with
    the ENI option), but with the VNI on the wire and the host it tunnels to as given."""
    return (f"table={FORWARD},priority={PRIO_FAULT},cookie={FAULT_COOKIE:#x},ip,"
            f"metadata={vni:#x},dl_dst={target['mac']},nw_dst={target['ip']},actions="
            f"set_field:{wire_vni:#x}->tun_id,set_field:{host_ip}->tun_dst,"
            f"set_field:{target['eni_key']:#x}->tun_metadata0,"
            f"move:NXM_NX_REG0[]->NXM_NX_TUN_METADATA0[32..63],output:{TUNNEL_PORT}")


def ofctl(lab, host: str, command: str, *args: str) -> str:
    """`ovs-ofctl COMMAND BRIDGE ARGS` against one host's own Open vSwitch (its br-int)."""
    directory = lab.state.host_dir(lab.nodes()[host]["node"])
    return lab.exec(host, "ovs-ofctl", "-O", "OpenFlow13", command,
                    f"unix:{directory}/br-int.mgmt", *args, check=True).stdout


def _ofport(lab, vm: str) -> int:
    """The OpenFlow port of `vm` on its router: the port base plus its ENI key (vpclab.model.plan)."""
    return VM_PORT_BASE + lab.nodes()[vm]["eni_key"]


def _vm_on(lab, host: str, vpc: str) -> str:
    nodes = lab.nodes()
    return next(vm for vm in sorted(lab.vms) if nodes[vm]["host"] == host
                and nodes[vm]["vpc"] == vpc)


# -- the survey: every VM pings every other VM of its VPC, everything captured -------------
GENEVE = re.compile(r"Geneve (?P<src>\S+) > (?P<dst>\S+) vni (?P<vni>\d+)[^:]*: "
                    r"ICMP echo (?:request|reply) (?P<inner_src>\S+) > (?P<inner_dst>\S+)")
ARP_ASKED = re.compile(r"ARP request who-has (?P<target>\S+) tell (?P<asker>\S+)")
ARP_ANSWER = re.compile(r"ARP reply (?P<ip>\S+) is-at (?P<mac>\S+)")


@dataclass
class Survey:
    """What a survey saw: for each fault kind and each router, the values that show it
    (wrong VNIs, underlay IPs tunnelled to, VMs a flood reached, wrong MACs), with the
    capture lines that show them."""
    facts: dict[str, dict[str, set[str]]]
    lines: dict[str, dict[str, list[str]]]
    hosts: dict[str, str]                   # host -> its underlay IP
    vms: list[str]
    pings: dict[tuple[str, str], bool] = field(default_factory=dict)

    def at(self, kind: str, router: str) -> set[str]:
        return self.facts[kind].get(router, set())

    def values(self, kind: str) -> set[str]:
        return set().union(*self.facts[kind].values())

    def faulty(self) -> dict[str, list[str]]:
        """Router -> the kinds of fault that show there (a fault-free lab: {})."""
        found: dict[str, list[str]] = {}
        for kind in FAULTS:
            for router, values in self.facts[kind].items():
                if values:
                    found.setdefault(router, []).append(kind)
        return found


def survey(lab, out: Path) -> Survey:
    """Ping every VM from every other VM of its VPC at once (one packet each), capturing
    `arp or icmp` at every VM and the Geneve packets on every host's NIC; then read what
    each fault would leave in those captures."""
    nodes = lab.nodes()
    vms, hosts = sorted(lab.vms), sorted(lab.hosts)
    pairs = [(a, b) for a in vms for b in vms if a != b and nodes[a]["vpc"] == nodes[b]["vpc"]]
    points = vms + [f"{h}:eth0" for h in hosts]

    def ping(pair: tuple[str, str]) -> bool:
        return lab.exec(pair[0], "ping", "-c", "1", "-W", str(PING_WAIT), nodes[pair[1]]["ip"]).ok
    with lab.capture(points, out, filter="arp or icmp or udp port 6081") as cap:
        with ThreadPoolExecutor(len(pairs)) as pool:
            pings = dict(zip(pairs, pool.map(ping, pairs)))
    nodes = lab.nodes()                                   # where every VM is now
    by_ip = {nodes[vm]["ip"]: vm for vm in vms}           # the lab's VPCs share no address
    vni = {m["vpc"]: m["vni"] for m in lab.mappings()}
    host_ip = {h: nodes[h]["underlay_ip"] for h in hosts}
    facts = {kind: {h: set() for h in hosts} for kind in FAULTS}
    lines = {kind: {h: [] for h in hosts} for kind in FAULTS}

    def saw(kind: str, router: str, value: str, point: str, line: str) -> None:
        facts[kind][router].add(value)
        lines[kind][router].append(f"{point}: {line}")
    for host in hosts:
        point = f"{host}:eth0"
        for packet in read_pcap(cap.pcap(point)):
            sent = GENEVE.match(packet.line)
            if not sent or sent["src"] != host_ip[host]:
                continue                     # another host's packet, seen on the shared underlay
            source, target = by_ip.get(sent["inner_src"]), by_ip.get(sent["inner_dst"])
            if source and int(sent["vni"]) != vni[nodes[source]["vpc"]]:
                saw("wrong-vni", host, sent["vni"], point, packet.line)
            if target and sent["dst"] != host_ip[nodes[target]["host"]]:
                saw("stale-entry", host, sent["dst"], point, packet.line)
    for vm in vms:
        for packet in read_pcap(cap.pcap(vm)):
            asked, answer = ARP_ASKED.match(packet.line), ARP_ANSWER.match(packet.line)
            if asked and asked["asker"] != nodes[vm]["ip"] and asked["asker"] in by_ip:
                saw("arp-flood", nodes[by_ip[asked["asker"]]]["host"], vm, vm, packet.line)
            if answer and answer["ip"] != nodes[vm]["ip"]:          # a reply vm received
                owner = by_ip.get(answer["ip"])
                if owner is None or answer["mac"] != nodes[owner]["mac"]:
                    saw("wrong-arp-mac", nodes[vm]["host"], answer["mac"], vm, packet.line)
    return Survey(facts, lines, host_ip, vms, pings)


# -- the answer file ----------------------------------------------------------------------
KEYS = ("fault", "router", "evidence")
LINE = re.compile(r"\s*(?P<key>[A-Za-z]+)\s*[:=]\s*(?P<value>.*?)\s*$")
STARTER_HINT = "three lines: `fault: ...`, `router: ...`, `evidence: ...` ('#' starts a comment)"


@dataclass
class Diagnosis:
    """The learner's answer: each field's value, or the Failed that says what is wrong with
    its line (so each check points at its own line)."""
    values: dict[str, str]
    problems: dict[str, Failed]
    line_of: dict[str, int]

    def get(self, key: str) -> str:
        if key in self.problems:
            raise self.problems[key]
        return self.values[key]


def parse(text: str) -> Diagnosis:
    """Read diagnosis.txt: `key: value` lines (`=` works too), keys fault, router, evidence
    in any case and order; '#' starts a comment; evidence may go on over several lines
    (more `evidence:` lines, or indented ones). A line that is none of these fails every
    check, naming it."""
    values: dict[str, str] = {}
    line_of: dict[str, int] = {}
    last = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        found = LINE.fullmatch(line)
        key = found["key"].lower() if found else None
        if key not in KEYS:
            if last == "evidence" and (raw[:1].isspace() or not found):
                values["evidence"] += "\n" + line.strip()      # evidence goes on
                continue
            said = f"`{found['key']}` is not a key" if found else "it is not `key: value`"
            raise Failed(f"{ANSWER} line {number}: {said}", seen=raw.strip(),
                         expected=STARTER_HINT, hint="the keys are fault, router and evidence")
        if key in values and key != "evidence":
            raise Failed(f"{ANSWER} line {number}: a second `{key}:` (line {line_of[key]} "
                         "has one)", seen=raw.strip(),
                         hint=f"one {key}: the lab has one fault, on one router")
        values[key] = (values[key] + "\n" + found["value"]) if key in values else found["value"]
        line_of.setdefault(key, number)
        last = key
    problems: dict[str, Failed] = {}
    for key in KEYS:
        value = values.get(key, "")
        where = f"{ANSWER} line {line_of[key]}" if key in line_of else ANSWER
        if key not in values:
            problems[key] = Failed(f"{ANSWER} has no `{key}:` line", expected=STARTER_HINT,
                                   hint="`vpclab lab reset 7` puts the starter back")
        elif not value.strip() or "TODO" in value.upper():
            problems[key] = Failed(f"{where}: {key} is still TODO", seen=f"{key}: {value}",
                                   hint=TODO_HINT[key])
        elif key == "fault":
            name = re.sub(r"[\s_]+", "-", value.strip().strip("`'\".").lower())
            if name not in FAULTS:
                problems[key] = Failed(f"{where}: {value!r} is not a fault of this exercise",
                                       expected=f"one of {', '.join(FAULTS)}",
                                       hint="the README says what each one means")
            values[key] = name
        elif key == "router":
            named = sorted(set(re.findall(r"\bhost\d+\b", value.lower())))
            if len(named) != 1:
                problems[key] = Failed(f"{where}: {value!r} names {len(named) or 'no'} "
                                       f"router{'s' if len(named) != 1 else ''}",
                                       expected=f"one of {', '.join(HOSTS)}",
                                       hint="one router is faulty: name its host")
            else:
                values[key] = named[0]
    return Diagnosis(values, problems, line_of)


TODO_HINT = {
    "fault": "which kind of fault is it? Find a ping that fails, capture it, and compare "
             "what you see with what each fault would look like (the README)",
    "router": "which router's packets show the fault? The host whose VMs send them",
    "evidence": "write what you saw that proves it, with the value itself (a VNI, an IP, "
                "a VM, a MAC: whatever your capture shows)",
}


def cited(kind: str, evidence: str, survey: Survey) -> set[str]:
    """The values of `kind` that the evidence text names, as the survey writes them."""
    text = evidence.lower()
    macs = {m.replace("-", ":") for m in re.findall(r"\b[0-9a-f]{2}(?:[:-][0-9a-f]{2}){5}\b", text)}
    ips = set(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text))
    names = {vm for vm in survey.vms if re.search(rf"\b{re.escape(vm.lower())}\b", text)}
    if kind == "wrong-arp-mac":
        return macs
    if kind == "stale-entry":
        return ips
    if kind == "arp-flood":
        return names
    numbers = set()
    for token in re.findall(r"[\w.:-]+", text):       # 192.168.1.2, host3:eth0, ZIGI-VM3: whole
        token = token.strip(".:-")
        if re.fullmatch(r"0x[0-9a-f]+|\d+", token):
            numbers.add(str(int(token, 0) if token.startswith("0x") else int(token)))
    return numbers


# -- the checks ---------------------------------------------------------------------------
def diagnosis(ctx) -> Diagnosis:
    return ctx.once("diagnosis", lambda: parse(ctx.file(ANSWER)))


def surveyed(ctx) -> Survey:
    """A fresh lab of this student's, with this student's fault, surveyed (once a run)."""
    def run():
        lab = ctx.lab(topology(ctx.variant))
        fault = prepare(lab, ctx.variant)
        seen = survey(lab, ctx.tmp / "survey")
        if not in_place(lab, fault):          # never grade a learner on a lab that lost it
            raise VpclabError(f"the fault injected on {fault.router} is gone: its router "
                              "reconnected and the mapping service resynchronised it; run "
                              "the check again")
        return seen
    return ctx.once("survey", run)


SURVEYED = ("the check pinged every VM from every other VM of its VPC in a fresh lab with "
            "your fault, capturing every VM and every host's NIC (host:eth0)")


@check("the fault you name is the one in your lab")
def right_fault(ctx) -> None:
    kind = diagnosis(ctx).get("fault")
    seen = surveyed(ctx)
    if not seen.values(kind):
        raise Failed(f"no {kind} in your lab", expected=f"{kind}: {LOOKS_LIKE[kind]}",
                     seen=f"none of that: {SURVEYED}",
                     hint=f"the fault you named would show as above; does your capture show "
                          "that? Look at a ping that fails, at both ends and on the hosts' NICs")


@check("the router you name is the faulty one")
def right_router(ctx) -> None:
    router = diagnosis(ctx).get("router")
    seen = surveyed(ctx)
    if router not in seen.faulty():
        raise Failed(f"{router}'s router does its job", seen=f"{SURVEYED}: nothing that "
                     f"{router}'s router sent or answered was wrong",
                     hint="which VMs' pings fail? The faulty router is the one their packets "
                          "(or their ARP requests) go through first: the host of the VM that "
                          "sends them, as `vpclab mapping list` says")


@check("your evidence is something your lab shows")
def right_evidence(ctx) -> None:
    diag = diagnosis(ctx)
    evidence, kind = diag.get("evidence"), diag.get("fault")
    seen = surveyed(ctx)
    shown = seen.values(kind)
    if not shown:
        raise Failed(f"the evidence cannot hold: no {kind} in your lab",
                     hint="name the fault your lab has first (the first check)")
    named = cited(kind, evidence, seen)
    where = f"{ANSWER} line {diag.line_of['evidence']}"
    if not named:
        raise Failed(f"{where}: the evidence cites no value (it should cite "
                     f"{EVIDENCE[kind]})",
                     expected=f"{EVIDENCE[kind]}, as your capture shows it", seen=evidence,
                     hint=f"{kind} shows as: {LOOKS_LIKE[kind]}. Cite the value itself")
    candidates = _candidates(kind, seen)
    if len(candidates) > 1 and candidates <= named:
        raise Failed(f"{where}: the evidence names every possible value", seen=evidence,
                     hint=f"cite {EVIDENCE[kind]}: the one your capture showed")
    if not named & shown:
        raise Failed(f"{where}: {', '.join(sorted(named))} is not {EVIDENCE[kind]} in your lab",
                     expected=f"{EVIDENCE[kind]}, as your capture shows it",
                     seen=", ".join(sorted(named)),
                     hint=f"{kind} shows as: {LOOKS_LIKE[kind]}. Capture a ping that fails and "
                          "copy the value from what you captured, not from what you expect")


def _candidates(kind: str, seen: Survey) -> set[str]:
    """The values a guess could list without looking (every host's IP, every VM)."""
    if kind == "stale-entry":
        return set(seen.hosts.values())
    if kind == "arp-flood":
        return set(seen.vms)
    return set()


# -- what the learner is told, and the answer (for tests and teachers) --------------------
def briefing(variant: Variant) -> str:
    return (f"one virtual router of lab ex07 is faulty ({variant.describe()}): which fault, "
            f"which router, and your evidence go into diagnosis.txt\n"
            f"faults: {', '.join(FAULTS)} (labs/07-troubleshoot/README.md says what each is)\n"
            "1. which pings fail?    vpclab exec ex07 VM -- ping -c 1 -W 1 IP\n"
            "2. capture one:         vpclab capture ex07 --on VM,VM,host1:eth0,host2:eth0,"
            "host3:eth0 -o cap -- VM ping -c 1 IP\n"
            "3. look and compare:    vpclab mapping list ex07; vpclab stats ex07; "
            "vpclab diagram cap; vpclab compare cap EXPECTED")


def solution(variant: Variant, kind: str | None = None) -> dict[str, str]:
    """The right answer for this student (`kind`: for the fault `prepare(..., kind)` made)."""
    fault = plan(variant, kind)
    topo = topology(variant)
    vms, hosts = topo["vms"], topo["hosts"]
    target = vms[fault.target]
    mine = sorted(vm for vm, body in vms.items() if body["host"] == fault.router)
    asker = next(vm for vm in mine if vms[vm]["vpc"] == target["vpc"])
    if fault.kind == "stale-entry":
        old_ip = hosts[fault.old_host]["underlay_ip"]
        evidence = (f"{asker} pings {fault.target} ({target['ip']}), which `vpclab mapping "
                    f"list` puts on {fault.new_host}; the capture on {fault.router}:eth0 shows "
                    f"Geneve {hosts[fault.router]['underlay_ip']} > {old_ip}: {old_ip} is "
                    f"{fault.old_host}, where {fault.target} was before it moved")
    elif fault.kind == "wrong-vni":
        vni = topo["vpcs"][target["vpc"]]["vni"]
        evidence = (f"{asker}'s ping to {fault.target} leaves {fault.router}:eth0 with vni "
                    f"{fault.wrong_vni} ({fault.wrong_vni:#x}); {target['vpc']}'s VNI is {vni}")
    elif fault.kind == "arp-flood":
        witness = next(vm for vm in mine if vm != asker)
        evidence = (f"{asker}'s ARP request (who-has ... tell {vms[asker]['ip']}) got no reply "
                    f"and reached {witness}, whose capture shows it")
    else:
        evidence = (f"{asker} got 'ARP reply {target['ip']} is-at {fault.wrong_mac}', but "
                    f"{fault.target}'s MAC is {target['mac']}")
    return {ANSWER: f"fault: {fault.kind}\nrouter: {fault.router}\nevidence: {evidence}\n"}
