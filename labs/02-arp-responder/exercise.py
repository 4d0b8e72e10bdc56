"""02: the learner's ARP responder runs in place of the mapping service's own.

The learner's `answer_arp(miss, mappings)` (starter/arp_responder.py) answers every ARP
miss of the lab's routers, as an unprivileged process. The checks run real pings, ARP-only
probes (arping: no IP packet, so the service's own IP path never caches anything the
learner did not) and captures: the seed's order at both VMs; in a lab of two VPCs with
the same addresses, each asker gets its own VPC's MAC, the entry is cached on the asking
router only, an unknown address gets no answer and no ARP request reaches the VMs beside
the askers. Silence and "nothing flooded" count only when the same run's known address
was answered by the learner's code: doing nothing earns nothing.

What the learner's code did is read from the mapping service's events (vpclab ryu_apps/
learner_arp.py: learner_called, then learner_answer or learner_error, each with what it
printed), counted from before each probe: one probe's crash is never blamed on another.
"""
from __future__ import annotations

import re
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from vpclab.classroom import Failed, Variant, check, learner_events
from vpclab.classroom.learner_events import mark, printed, since, trouble as learner_trouble
from vpclab.packets.compare import compare_captures
from vpclab.router.pipeline import mapping_cookie

TITLE = "Write the virtual router's answer to an ARP miss"
WORK_FILES = ["arp_responder.py"]
LEARNER = "arp_responder.py"
LEARNER_HOOKS = {"answer_arp": LEARNER}         # `vpclab lab start 2` runs it in its lab too

SETTLE = 8.0          # s at most for the learner's calls of one probe to end (2 s each, a hang
                      # killed 1 s later, a fresh process loaded for the next)
CACHED_WAIT = 2.0     # s at most for the routers to show the entries the learner cached
TWINS = (("ZIGI-VM1", "ZIGI-VM2"), ("OTHER-VM1", "OTHER-VM2"))   # (asker, the VM it asks for)
BESIDE = ("ZIGI-VM3", "OTHER-VM3", "ZIGI-VM2", "OTHER-VM2")      # VMs no request is meant for


def topology(variant: Variant) -> dict:
    return variant.seed_lab("ex02")


def shared_lab(variant: Variant) -> dict:
    """Three hosts, two VPCs with the same CIDR: ZIGI-VM1 and OTHER-VM1 share an address,
    so do ZIGI-VM2 and OTHER-VM2; ZIGI-VM3 and OTHER-VM3 stand beside the askers."""
    seed = variant.seed_lab("ex02-shared")
    vpc = seed["vpcs"]["ZIGI-VPC1"]
    network = IPv4Network(vpc["cidr"])
    one, two = (seed["vms"][v]["ip"] for v in ("ZIGI-VM1", "ZIGI-VM2"))
    spare = next(str(a) for a in list(network.hosts())[3:] if str(a) not in (one, two))
    vms = {"ZIGI-VM1": ("ZIGI-VPC1", "host1", one), "ZIGI-VM2": ("ZIGI-VPC1", "host2", two),
           "ZIGI-VM3": ("ZIGI-VPC1", "host1", spare),
           "OTHER-VM1": ("OTHER-VPC", "host1", one), "OTHER-VM2": ("OTHER-VPC", "host3", two),
           "OTHER-VM3": ("OTHER-VPC", "host1", spare)}
    return {"name": "ex02-shared", "hosts": {"host1": {}, "host2": {}, "host3": {}},
            "vpcs": {"ZIGI-VPC1": vpc, "OTHER-VPC": {"cidr": vpc["cidr"], "vni": vpc["vni"] + 1}},
            "vms": {n: {"vpc": v, "host": h, "ip": ip} for n, (v, h, ip) in vms.items()}}


def unknown_address(made: dict) -> str:
    """An address of the lab's CIDR that no VM has (the highest one)."""
    network = IPv4Network(next(iter(made["vpcs"].values()))["cidr"])
    taken = {vm["ip"] for vm in made["vms"].values()}
    return next(str(a) for a in reversed(list(network.hosts())) if str(a) not in taken)


def lab(ctx, which: str = "seed"):
    made = topology(ctx.variant) if which == "seed" else shared_lab(ctx.variant)
    ctx.file(LEARNER)                                   # missing: fails, saying so
    return ctx.lab(made, key=which, mode="on-demand", learner={"answer_arp": ctx.work / LEARNER})


# -- what the learner's code did, from the mapping service's events -------------------------
def settled(lab, start: int, timeout: float = SETTLE) -> list[dict]:
    return learner_events.settled(lab, start, timeout)


def answered(events: list[dict]) -> bool:
    """Did the learner's code answer an ARP (return something to send) among `events`?"""
    return any(e["event"] == "learner_answer" and e.get("sent") for e in events)


def with_prints(evidence: str, events: list[dict]) -> str:
    said = printed(events)
    if not said:
        return evidence
    return (evidence.rstrip() + "\n\n" if evidence else "") + "what answer_arp printed:\n" + said


def fail_with_code(events: list[dict], summary: str, *, evidence: str = "", **said) -> None:
    """Fail: with the learner's traceback if its code failed during these events, else as
    said; what it printed is in the evidence either way."""
    trouble = learner_trouble(events)
    if trouble:
        raise Failed(summary + ": your answer_arp failed", seen=trouble["message"].splitlines()[0],
                     evidence=with_prints(trouble["message"], events),
                     hint="fix what the traceback points at")
    raise Failed(summary, evidence=with_prints(evidence, events), **said)


def arping(lab, vm: str, address: str):
    """One ARP request from `vm` for `address` and nothing else (no IP packet), waiting up
    to 2 s for the reply."""
    return lab.exec(vm, "arping", "-c", "1", "-w", "2", "-I", "eth0", address)


# -- the seed lab: the first ping ---------------------------------------------------------
def seed_ping(ctx):
    def run():
        seed = lab(ctx)
        start = mark(seed)
        with seed.capture(["ZIGI-VM1", "ZIGI-VM2"], ctx.tmp / "seed", filter="icmp or arp") as cap:
            done = seed.exec("ZIGI-VM1", "ping", "-c", "1", "-W", "2", seed.address("ZIGI-VM2"))
            events = settled(seed, start)
        return seed, cap, done, events
    return ctx.once("seed-ping", run)


@check("the first ping has the seed's order at both VMs")
def seed_order(ctx) -> None:
    seed, cap, done, events = seed_ping(ctx)
    nodes = seed.nodes()
    for vm in ("ZIGI-VM1", "ZIGI-VM2"):
        expected = ctx.tmp / f"{vm}.expected.txt"
        expected.write_text(ctx.variant.seed_first_ping()[vm])
        point = compare_captures(cap.pcap(vm), expected).points[0]
        if not point.matches:
            hint = (reply_problem(cap.pcap("ZIGI-VM1"), nodes, "ZIGI-VM1", "ZIGI-VM2")
                    or reply_problem(cap.pcap("ZIGI-VM2"), nodes, "ZIGI-VM2", "ZIGI-VM1")
                    or "; ".join(point.explain()))
            fail_with_code(events, f"{vm} did not see the seed's first ping",
                           evidence=point.side_by_side("the seed's order", f"{vm}'s capture"),
                           hint=hint)


def reply_problem(pcap: Path, nodes: dict, asker: str, owner: str) -> str:
    """What is wrong with the ARP reply `asker` got for `owner`'s address, from its
    capture ('' if it asked nothing, or the reply is right)."""
    from scapy.layers.l2 import ARP, Ether
    from scapy.utils import rdpcap
    me, them = nodes[asker], nodes[owner]
    try:
        packets = [p for p in rdpcap(str(pcap)) if ARP in p]
    except Exception:  # noqa: BLE001 - a damaged capture: no hint from it
        return ""
    asked = [p for p in packets if p[ARP].op == 1 and p[ARP].psrc == me["ip"]
             and p[ARP].pdst == them["ip"]]
    replies = [p for p in packets if p[ARP].op == 2]
    if not asked:
        return ""
    if not replies:
        return (f"{asker}'s ARP request (who has {them['ip']}?) got no reply: does answer_arp "
                "return one (see TODO 2 and 3)?")
    reply, eth = replies[0][ARP], replies[0][Ether]
    said = f"the ARP reply {asker} got says {reply.psrc} is-at {reply.hwsrc}"
    if reply.psrc != them["ip"]:
        return (f"{said}, but {asker} asked who has {them['ip']}: a reply's sender address "
                "(src_ip) is the address asked about")
    if reply.hwsrc.lower() != them["mac"].lower():
        return (f"{said}, but {owner}'s MAC is {them['mac']}: a reply's sender MAC (src_mac) "
                "is the owner's")
    if (reply.pdst != me["ip"] or reply.hwdst.lower() != me["mac"].lower()
            or eth.dst.lower() != me["mac"].lower()):
        return (f"{said} (right), but it is addressed to {reply.pdst} {reply.hwdst} "
                f"(Ethernet to {eth.dst}), not to {asker} ({me['ip']} {me['mac']}): a reply "
                "goes back to who asked (dst_ip, dst_mac and the Ethernet destination)")
    if len(replies) > 1:
        return f"{asker} got {len(replies)} ARP replies: one is enough"
    return ""


# -- the shared lab: ARP only, known then unknown addresses -------------------------------
class Probe:
    """One ARP-only probe of the shared lab: its capture, its events, the cached flows."""

    def __init__(self, lab, capture, events: list[dict], holders: dict | None = None):
        self.lab, self.capture, self.events, self.holders = lab, capture, events, holders or {}

    def lines(self, vm: str) -> list[str]:
        return self.capture.lines()[vm]


def shared_probes(ctx) -> tuple[Probe, Probe]:
    """Both askers (ZIGI-VM1, OTHER-VM1: one address) ask for the address their VPCs share
    (ZIGI-VM2's and OTHER-VM2's), the routers' flows are read at once (no IP packet sent
    yet: only the learner's "cache" can have put the entry there); then ZIGI-VM1 asks for
    an address nobody has. Every VM is captured in both."""
    def run():
        shared = lab(ctx, "shared")
        points = ["ZIGI-VM1", "OTHER-VM1", *BESIDE]
        two = shared.address("ZIGI-VM2")
        start = mark(shared)
        with shared.capture(points, ctx.tmp / "known", filter="arp") as cap:
            for asker, _ in TWINS:
                arping(shared, asker, two)
            events = settled(shared, start)
            holders = cached_holders(ctx, shared, events)
        known = Probe(shared, cap, events, holders)
        start = mark(shared)
        with shared.capture(points, ctx.tmp / "unknown", filter="arp") as cap:
            arping(shared, "ZIGI-VM1", unknown_address(shared_lab(ctx.variant)))
            events = settled(shared, start)
        return known, Probe(shared, cap, events)
    return ctx.once("shared-probes", run)


def cookies(ctx, shared) -> dict[str, str]:
    """The flow cookie of each owner's entry (its VPC, its address), as dump-flows prints it."""
    made = shared_lab(ctx.variant)
    vni = {owner: made["vpcs"][made["vms"][owner]["vpc"]]["vni"] for _, owner in TWINS}
    return {owner: f"cookie={mapping_cookie(vni[owner], IPv4Address(shared.address(owner))):#x},"
            for _, owner in TWINS}


def cached_holders(ctx, shared, events: list[dict]) -> dict[str, list[str]]:
    """Which routers hold each owner's entry, once those the learner's answers named show it
    (at most CACHED_WAIT s: the flows are sent after the reply)."""
    made = shared_lab(ctx.variant)
    wanted = cookies(ctx, shared)
    named = {}                                      # owner -> routers the learner cached it on
    for e in events:
        for item in e.get("cached", []) if e["event"] == "learner_answer" else []:
            router, vpc, ip = item.split(":")
            for _, owner in TWINS:
                if made["vms"][owner]["vpc"] == vpc and shared.address(owner) == ip:
                    named.setdefault(owner, set()).add(router)
    deadline = time.monotonic() + CACHED_WAIT
    while True:
        flows = {host: _flows(shared, host) for host in shared.hosts}
        holders = {owner: [h for h in shared.hosts if cookie in flows[h]]
                   for owner, cookie in wanted.items()}
        if all(set(routers) <= set(holders[owner]) for owner, routers in named.items()) \
                or time.monotonic() >= deadline:
            return holders
        time.sleep(0.05)


def asked_by(line: str, address: str) -> bool:
    """Is this tcpdump line an ARP request that `address` sent ('... tell ADDRESS, ...')?
    The whole address: 10.0.0.14 is not 10.0.0.146."""
    match = re.search(r"\bRequest who-has \S+(?: \([0-9a-fA-F:]+\))? tell ([0-9.]+)\b", line)
    return bool(match) and match.group(1) == address


@check("an address no VM has gets no answer at all")
def unknown_is_silent(ctx) -> None:
    known, unknown = shared_probes(ctx)
    nobody = unknown_address(shared_lab(ctx.variant))
    if learner_trouble(unknown.events):
        fail_with_code(unknown.events, f"for ZIGI-VM1's ARP request for {nobody}, which no "
                                       "VM has, answer_arp did not run to the end")
    replies = [line for line in unknown.lines("ZIGI-VM1") if "Reply" in line]
    if replies:
        raise Failed(f"ZIGI-VM1 asked for {nobody}, which no VM has, and got an answer",
                     seen=replies[0], evidence=with_prints("", unknown.events),
                     hint="an address nobody has must get no answer: return None")
    if not answered(known.events):
        fail_with_code(known.events, "answer_arp answered no ARP at all, so its silence proves "
                                     "nothing", hint="silence counts once the addresses VMs "
                                                     "have are answered (TODO 1 to 3)")


@check("an address two VPCs share is answered with the asking VPC's MAC")
def right_vpc(ctx) -> None:
    known, _ = shared_probes(ctx)
    nodes = known.lab.nodes()
    for asker, owner in TWINS:
        twin = next(o for _, o in TWINS if o != owner)
        mine, theirs, address = nodes[owner]["mac"], nodes[twin]["mac"], nodes[owner]["ip"]
        replies = [line for line in known.lines(asker) if "Reply" in line]
        if not replies:
            fail_with_code(known.events, f"{asker}'s ARP for {address} got no reply",
                           hint=f"{owner}, in {asker}'s own VPC, has {address}: does "
                                "answer_arp find it there and answer (TODO 1 to 3)?")
        if theirs in replies[0] or mine not in replies[0]:
            raise Failed(f"{asker} was given the wrong MAC",
                         expected=f"is-at {mine} ({owner}, in its own VPC)", seen=replies[0],
                         evidence=with_prints("", known.events),
                         hint=f"{theirs} is {twin}'s, in another VPC with the same address "
                              f"{address}: the VPC decides, not the address alone")


@check("nothing is flooded: VMs beside the asker see no ARP request")
def not_flooded(ctx) -> None:
    known, unknown = shared_probes(ctx)
    asker = known.lab.address("ZIGI-VM1")            # OTHER-VM1's too
    nobody = unknown_address(shared_lab(ctx.variant))
    for probe, beside, what in (
            (known, BESIDE, f"ZIGI-VM1's and OTHER-VM1's ARP requests for "
                            f"{known.lab.address('ZIGI-VM2')}"),
            (unknown, BESIDE + ("OTHER-VM1",), f"ZIGI-VM1's ARP request for {nobody}, which "
                                               "no VM has,")):
        if learner_trouble(probe.events):
            fail_with_code(probe.events, f"for {what} answer_arp did not run to the end")
        flooded = {vm: found for vm in beside
                   if (found := [line for line in probe.lines(vm) if asked_by(line, asker)])}
        if flooded:
            vm, found = next(iter(flooded.items()))
            raise Failed(f"{what} reached {', '.join(flooded)}", seen=found[0],
                         evidence=with_prints("", probe.events),
                         hint="a VPC never floods, not even for an address nobody has: the "
                              "router answers the ARP itself, to the port it came from, or "
                              "says nothing")
    if not answered(known.events):
        fail_with_code(known.events, "answer_arp answered no ARP at all, so nothing flooded "
                                     "proves nothing",
                       hint="this counts once the addresses VMs have are answered (TODO 1 to 3)")


@check("the entry is cached on the asking router only")
def cached_where_asked(ctx) -> None:
    known, _ = shared_probes(ctx)
    for asker, owner in TWINS:
        holders = known.holders[owner]
        if holders != ["host1"]:
            fail_with_code(known.events,
                           f"{owner}'s entry is cached on {', '.join(holders) or 'no router'}",
                           expected=f"host1 only: the router whose VM ({asker}) asked",
                           seen=", ".join(holders) or "nowhere",
                           hint="cache on miss['router'] alone: the mapping service caches an "
                                "entry where it is used, nowhere else; without it, the router "
                                "asks again at every ARP")


@check("a second ARP for the address is answered by the router itself", hidden=True)
def router_answers_next_time(ctx) -> None:
    known, _ = shared_probes(ctx)
    shared = known.lab
    start = mark(shared)
    for asker, owner in TWINS:
        done = arping(shared, asker, shared.address(owner))
        events = since(shared, start)                 # learner_called is logged before it runs
        if any(e["event"] == "learner_called" for e in events):
            raise Failed(f"{asker}'s second ARP went to the mapping service again",
                         hint="cache the entry on the asking router: it then answers by itself")
        if not done.ok:
            fail_with_code(events, f"{asker}'s second ARP got no reply")


def _flows(lab, host: str) -> str:
    directory = lab.state.host_dir(lab.nodes()[host]["node"])
    return lab.exec(host, "ovs-ofctl", "-O", "OpenFlow13", "dump-flows",
                    f"unix:{directory}/br-int.mgmt").stdout
