"""06: the receiving router's check that a tunnelled packet comes from where its sender lives.

The learner's `check_source(router, arrival, mappings)` (starter/receive_check.py) runs,
unprivileged, in place of the mapping service's own receive check (vpclab ryu_apps/
learner_check.py): the receiving router asks it about every tunnelled packet whose source
it has not verified yet; True delivers the packet (and, if the claim is true, the router
caches the verified source), False drops it, counts it and remembers the claim briefly.

The lab (VXLAN, on demand): the sender host holds ZIGI-VM1 and ZIGI-VM4, the receiver
ZIGI-VM2, the rogue host ZIGI-VM3 (a VM of the same VPC: the rogue is a real host of the
VPC) and OTHER-VM1 (another VPC). Probes, in this order, in one lab:

  1. forged: the rogue sends VXLAN packets claiming ZIGI-VM1's address to ZIGI-VM2;
  2. honest: ZIGI-VM1 pings ZIGI-VM2; the sender host sends the very packet of 1 (its own
     outer source); ZIGI-VM3 and ZIGI-VM4 ping ZIGI-VM2;
  3. forged after verified: the rogue claims ZIGI-VM4, whose own packets were just accepted;
  4. the rogue claims OTHER-VM1's address (which lives on the rogue, but in
     another VPC) in ZIGI-VPC1's VNI.

Each forged claim is new to the receiving router (a refused claim is remembered, and then
dropped by the router without asking, for NEGATIVE_TTL s), so every probe asks the
learner's code. Graded on the capture at the receiving VM, the router's counter
(stats: receive_check_failed) and the learner's answers (events learner_called,
learner_answer with `accepted`, learner_error, each with what the code printed). A ping
counts as delivered when its request is captured at ZIGI-VM2 and the reply at its sender
(ping waits REPLY_WAIT s: a slow but correct check may take 2 s per call, twice). Drops
count only once honest packets were delivered in the same run: dropping everything
earns nothing. The forged packets are built and sent by vpclab.classroom.forge.
"""
from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from vpclab.classroom import Failed, Variant, check, forge, learner_events
from vpclab.classroom.learner_events import mark as mark_events, since
from vpclab.classroom.variant import random_mac

TITLE = "Write the receiving router's check that a tunnelled packet comes from its sender's host"
WORK_FILES = ["receive_check.py"]
LEARNER = "receive_check.py"
FUNCTION = "check_source"
LEARNER_HOOKS = {FUNCTION: LEARNER}       # `vpclab lab start 6` runs it in its lab too

VPC, OTHER_VPC = "ZIGI-VPC1", "OTHER-VPC"
SETTLE = 8.0          # s at most for the learner's calls of one probe to end (2 s each, a hang
                      # killed 1 s later, a fresh process loaded for the next)
ASKED_WAIT = 3.0      # s at most for an injected packet to reach the learner's code
FORGED_COUNT = 2      # packets per injection (the second: the router's own verdict, or asked again)
VXLAN_PORT = forge.VXLAN_PORT
REPLY_WAIT = 8        # ping -W: its request and its reply may each wait for a call (2 s, +1 s
                      # before a hang is killed); pings are judged on the captures
# each injection's ICMP echo id and seq (ping's own have length 64, these length 8)
MARK = {"forged": (0x1111, 1), "honest": (0x2222, 2), "after": (0x3333, 3), "other": (0x4444, 4)}

# the seed's ZIGI-VM1 and ZIGI-VM2; the rest is this exercise's
SEED_VMS = {"ZIGI-VM1": ("10.0.0.148", "02:00:5e:ad:58:40"),
            "ZIGI-VM2": ("10.0.0.185", "02:93:0e:03:bb:88"),
            "ZIGI-VM3": ("10.0.0.20", "02:00:5e:ad:58:43"),
            "ZIGI-VM4": ("10.0.0.30", "02:00:5e:ad:58:44"),
            "OTHER-VM1": ("10.0.0.77", "02:00:5e:ad:58:77")}
PLACE = {"ZIGI-VM1": "sender", "ZIGI-VM4": "sender", "ZIGI-VM2": "receiver",
         "ZIGI-VM3": "rogue", "OTHER-VM1": "rogue"}


@dataclass(frozen=True)
class Roles:
    """Which physical host plays which part in this student's lab."""
    sender: str       # holds ZIGI-VM1 and ZIGI-VM4
    receiver: str     # holds ZIGI-VM2: its router runs the check
    rogue: str        # holds ZIGI-VM3 and OTHER-VM1, and forges


def roles(variant: Variant) -> Roles:
    hosts = ["host1", "host2", "host3"]
    if variant.student is not None:
        variant.rng("placement").shuffle(hosts)
    return Roles(*hosts)


def topology(variant: Variant) -> dict:
    """Three hosts, VXLAN, on demand: ZIGI-VPC1 with ZIGI-VM1 and ZIGI-VM4 on the sender
    host, ZIGI-VM2 on the receiver, ZIGI-VM3 on the rogue; OTHER-VPC (the same CIDR) with
    OTHER-VM1 on the rogue."""
    cidr, vni, vms = "10.0.0.0/24", 1001, dict(SEED_VMS)
    if variant.student is not None:
        rng = variant.rng("ex06-lab")
        network = IPv4Network(f"10.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.0/24")
        cidr, vni = str(network), rng.randrange(100, 16_000_000)
        picks = rng.sample(range(4, 255), len(vms))                # .0-.3 are AWS's
        vms = {vm: (str(network[n]), random_mac(rng)) for vm, n in zip(vms, picks)}
    where = roles(variant)
    return {"name": "ex06", "description": f"a rogue host ({variant.describe()})",
            "encap": "vxlan", "mapping": {"mode": "on-demand"},
            "hosts": {"host1": {}, "host2": {}, "host3": {}},
            "vpcs": {VPC: {"cidr": cidr, "vni": vni}, OTHER_VPC: {"cidr": cidr, "vni": vni + 1}},
            "vms": {vm: {"vpc": OTHER_VPC if vm.startswith("OTHER") else VPC,
                         "host": getattr(where, PLACE[vm]), "ip": ip, "mac": mac}
                    for vm, (ip, mac) in vms.items()}}


def briefing(variant: Variant) -> str:
    where = roles(variant)
    return (f"{where.sender} holds ZIGI-VM1 and ZIGI-VM4, {where.receiver} ZIGI-VM2, and "
            f"{where.rogue} (the rogue the checks use) ZIGI-VM3 and OTHER-VM1 (another VPC).\n"
            "Who lives where, with each host's underlay IP: vpclab mapping list ex06")


def lab(ctx):
    ctx.file(LEARNER)                                   # missing: fails, saying so
    return ctx.lab(topology(ctx.variant), mode="on-demand",
                   learner={"check_source": ctx.work / LEARNER})


# -- the packets the rogue (and, honestly, the sender host) puts on the underlay -------------
def vxlan_payload(vni: int, source: dict, destination: dict, address: str, mark: str) -> bytes:
    """A VXLAN header and the inner frame: an ICMP echo request `source` -> `destination`,
    from `address` (the claimed sender: source's own, or another's)."""
    ident, seq = MARK[mark]
    return forge.vxlan_frame(vni, src_mac=source["mac"], dst_mac=destination["mac"],
                             src_ip=address, dst_ip=destination["ip"], ident=ident, seq=seq)


def inject(lab, host: str, payload: bytes, to_host: str) -> None:
    """Send the VXLAN payload FORGED_COUNT times from `host`'s namespace, from its own
    underlay address (the outer source a router sees), to `to_host`'s VXLAN port."""
    forge.send(lab, host, payload, to_host, FORGED_COUNT)


def marked(lines: list[str], mark: str) -> list[str]:
    """The capture lines of one injection (its ICMP id and seq; echo replies too)."""
    ident, seq = MARK[mark]
    return [line for line in lines if f"id {ident}, seq {seq}, length 8" in line]


# -- what the learner's code did, from the mapping service's events -------------------------
def calls(events: list[dict]) -> list[dict]:
    return learner_events.calls(events, FUNCTION)


def settled(lab, start: int, timeout: float = SETTLE) -> list[dict]:
    """The events since `start`, once every call of the learner's code since then ended."""
    return learner_events.settled(lab, start, timeout, FUNCTION)


def asked(lab, start: int, claim: "Claim", timeout: float = ASKED_WAIT) -> None:
    """Wait until the receiving router asked the learner's code about `claim` (at most
    `timeout` s: an injected packet is on its way when the sender's exec returns)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(claim.about(e) for e in calls(since(lab, start))):
            return
        time.sleep(0.02)


@dataclass(frozen=True)
class Claim:
    """A tunnelled packet's claim: the router that checks it, the inner source address it
    claims, and the outer source (the host) it really came from."""
    router: str
    address: str
    outer: str

    def about(self, event: dict) -> bool:
        return (event.get("host") == self.router and event.get("claimed_source") == self.address
                and event.get("outer_source") == self.outer)


def verdicts(events: list[dict], claim: Claim) -> list[bool | None]:
    """The learner's answers about `claim`: True, False, or None for a failed call."""
    return [e.get("accepted") if e["event"] == "learner_answer" else None
            for e in calls(events) if claim.about(e)
            and e["event"] in ("learner_answer", "learner_error")]


def trouble(events: list[dict]) -> dict | None:
    return learner_events.trouble(events, FUNCTION)


def printed(events: list[dict]) -> str:
    return learner_events.printed(events, FUNCTION)


def answers_text(events: list[dict], hosts: dict[str, str]) -> str:
    """What check_source answered, one line per call, naming the outer source's host."""
    rows = []
    for e in calls(events):
        if e["event"] not in ("learner_answer", "learner_error"):
            continue
        said = ("True (deliver)" if e.get("accepted") else "False (drop)") \
            if e["event"] == "learner_answer" else f"failed: {e['message'].splitlines()[0]}"
        outer = e.get("outer_source", "")
        rows.append(f"check_source on {e.get('host')}: src_ip {e.get('claimed_source')}, "
                    f"outer_src {outer} ({hosts.get(outer, '?')}) -> {said}")
    return "\n".join(rows[:12] + ([f"... {len(rows) - 12} more"] if len(rows) > 12 else []))


@dataclass
class Probe:
    """One probe: the receiving VMs' capture lines, the events, the receiver's counter."""
    lines: dict[str, list[str]]
    events: list[dict]
    counted: tuple[int, int] | None = None     # receive_check_failed before, after
    pings: dict[str, bool] = field(default_factory=dict)


@dataclass
class Run:
    lab: object
    roles: Roles
    nodes: dict
    hosts: dict[str, str]                      # underlay IP -> host name
    forged: Probe
    honest: Probe
    after: Probe

    def evidence(self, probe: Probe, vm: str = "ZIGI-VM2", lines: list[str] | None = None,
                 claims: list[Claim] | None = None) -> str:
        """The capture at `vm`, the receiver's counter, check_source's answers and prints."""
        events = probe.events if claims is None else \
            [e for e in probe.events if any(c.about(e) for c in claims)]
        shown = probe.lines.get(vm, []) if lines is None else lines
        parts = [f"capture at {vm} (icmp):\n" + ("\n".join(shown[:8]) or "(nothing)")]
        if probe.counted is not None:
            before, after = probe.counted
            parts.append(f"{self.roles.receiver}'s receive_check_failed (vpclab stats): "
                         f"{before} before, {after} after")
        answered = answers_text(events, self.hosts)
        parts.append("check_source's answers:\n" + (answered or "(check_source was not asked)"))
        said = printed(events)
        if said:
            parts.append("what check_source printed:\n" + said)
        return "\n\n".join(parts)

    def where(self, vm: str) -> str:
        node = self.nodes[vm]
        host = node["host"]
        return f"{host} (underlay {self.lab.address(host)})"


def counter(lab, host: str) -> int:
    return lab.stats()["routers"][host].get("receive_check_failed") or 0


def forged_probe(lab, where: Roles, nodes: dict, claimed: str, mark: str, target: str,
                 points: list[str], tmp) -> Probe:
    """The rogue sends packets claiming `claimed`'s address (in ZIGI-VPC1's VNI) to `target`."""
    vni = nodes["ZIGI-VM2"]["vni"]
    source = dict(nodes[claimed])
    payload = vxlan_payload(vni, source, nodes[target], source["ip"], mark)
    claim = Claim(nodes[target]["host"], source["ip"], lab.address(where.rogue))
    before = counter(lab, where.receiver)
    start = mark_events(lab)
    with lab.capture(points, tmp / mark, filter="icmp") as cap:
        inject(lab, where.rogue, payload, nodes[target]["host"])
        asked(lab, start, claim)
        events = settled(lab, start)
    return Probe(cap.lines(), events, (before, counter(lab, where.receiver)))


def run(ctx) -> Run:
    """Every probe of the visible checks, in their order, in one lab (see the docstring)."""
    def go():
        made = lab(ctx)
        where = roles(ctx.variant)
        nodes = made.nodes()
        vni = topology(ctx.variant)["vpcs"][VPC]["vni"]
        for vm in nodes.values():
            vm["vni"] = vni if vm.get("vpc") == VPC else vni + 1
        hosts = {made.address(h): h for h in made.hosts}
        # 1. forged, before anything: the rogue claims ZIGI-VM1
        forged = forged_probe(made, where, nodes, "ZIGI-VM1", "forged", "ZIGI-VM2", ["ZIGI-VM2"],
                              ctx.tmp)
        # 2. honest: ZIGI-VM1's ping, the same packet as 1 from the sender host, then the
        #    rogue's own VM's and ZIGI-VM4's pings (together)
        start = mark_events(made)
        senders = ("ZIGI-VM1", "ZIGI-VM3", "ZIGI-VM4")
        with made.capture([*senders, "ZIGI-VM2"], ctx.tmp / "honest", filter="icmp") as cap:
            ping(made, ["ZIGI-VM1"], "ZIGI-VM2")
            one = nodes["ZIGI-VM1"]
            inject(made, where.sender, vxlan_payload(vni, one, nodes["ZIGI-VM2"], one["ip"],
                                                     "honest"), where.receiver)
            ping(made, ["ZIGI-VM3", "ZIGI-VM4"], "ZIGI-VM2")
            events = settled(made, start)
        lines = cap.lines()
        honest = Probe(lines, events, pings={
            vm: went_through(lines, vm, "ZIGI-VM2", nodes[vm]["ip"], nodes["ZIGI-VM2"]["ip"])
            for vm in senders})
        # 3. forged after verified: the rogue claims ZIGI-VM4, just accepted
        after = forged_probe(made, where, nodes, "ZIGI-VM4", "after", "ZIGI-VM2", ["ZIGI-VM2"],
                             ctx.tmp)
        return Run(made, where, nodes, hosts, forged, honest, after)
    return ctx.once("run", go)


def ping(lab, vms: list[str], target: str) -> None:
    """One ping from each of `vms` to `target`, together; returns when every one has its
    reply or gave up (REPLY_WAIT s). Whether it went through is read from the captures."""
    pings = [lab.popen(vm, "ping", "-n", "-c", "1", "-W", str(REPLY_WAIT), lab.address(target),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for vm in vms]
    for process in pings:
        try:
            process.wait(timeout=REPLY_WAIT + 5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def went_through(lines: dict[str, list[str]], vm: str, target: str, src: str, dst: str) -> bool:
    """Did `vm`'s ping reach `target` (its echo request captured there) and its reply come
    back (the reply with the same id captured at `vm`)? ping's own have length 64."""
    def ids(at: str, kind: str, a: str, b: str) -> set[str]:
        pattern = re.compile(rf"IP {re.escape(a)} > {re.escape(b)}: ICMP echo {kind}, "
                             r"id (\d+), seq \d+, length 64")
        return {m.group(1) for line in lines.get(at, []) if (m := pattern.search(line))}
    return bool(ids(target, "request", src, dst) & ids(vm, "reply", dst, src))


# -- the checks ---------------------------------------------------------------------------
def fail_on_trouble(r: Run, probe: Probe, summary: str, claims: list[Claim] | None = None,
                    note: str = "") -> None:
    """Fail with the learner's traceback if its code failed during this probe."""
    events = probe.events if claims is None else \
        [e for e in probe.events if any(c.about(e) for c in claims)]
    failed = trouble(events)
    if failed:
        raise Failed(summary + ": your check_source failed" + note,
                     seen=failed["message"].splitlines()[0],
                     evidence=failed["message"] + "\n\n" + r.evidence(probe, claims=claims),
                     hint=trouble_hint(failed))


def trouble_hint(failed: dict) -> str:
    closed = " (a receive check that fails drops the packet: it fails closed)"
    if failed.get("kind") in ("BadAnswer", "BadResult"):
        return "check_source returns a bool: True (deliver) or False (drop), nothing else"
    if failed.get("timeout"):
        return "each call has 2 s: look for a loop that never ends" + closed
    return "fix what the traceback points at" + closed


def honest_claims(r: Run) -> dict[str, Claim]:
    """Each honest sender's claim at the receiving router."""
    return {vm: Claim(r.roles.receiver, r.nodes[vm]["ip"],
                      r.lab.address(r.nodes[vm]["host"]))
            for vm in ("ZIGI-VM1", "ZIGI-VM3", "ZIGI-VM4")}


def accepted_honest(r: Run) -> bool:
    """Did check_source deliver an honest packet in this run (ZIGI-VM1's)?"""
    return r.honest.pings.get("ZIGI-VM1", False) and \
        True in verdicts(r.honest.events, honest_claims(r)["ZIGI-VM1"])


def refused_forged(r: Run) -> bool:
    """Did check_source drop a forged packet in this run?"""
    rogue = r.lab.address(r.roles.rogue)
    return any(False in verdicts(probe.events, Claim(r.roles.receiver, r.nodes[vm]["ip"], rogue))
               for probe, vm in ((r.forged, "ZIGI-VM1"), (r.after, "ZIGI-VM4")))


@check("honest packets are delivered: a VM's ping, and the same packet from its own host")
def honest_delivered(ctx) -> None:
    r = run(ctx)
    claims = honest_claims(r)
    receiver = r.roles.receiver
    for vm, why in (("ZIGI-VM1", ""),
                    ("ZIGI-VM3", f" {r.roles.rogue} forges other VMs' packets, but ZIGI-VM3 is "
                                 f"its own: judge each packet's claim, not the host alone."),
                    ("ZIGI-VM4", "")):
        if r.honest.pings[vm]:
            continue
        claim = claims[vm]
        fail_on_trouble(r, r.honest, f"{vm}'s ping to ZIGI-VM2 got no reply", [claim])
        said = verdicts(r.honest.events, claim)
        if False in said:
            raise Failed(
                f"{vm}'s ping to ZIGI-VM2 got no reply: check_source dropped its request",
                expected=f"True: {vm} lives on {r.where(vm)}, and its packet came from "
                         f"{claim.outer}: a true claim",
                seen=f"check_source on {receiver} returned False for src_ip {claim.address}, "
                     f"outer_src {claim.outer}",
                evidence=r.evidence(r.honest, claims=[claim]),
                hint=f"the packet's outer source was {claim.outer} "
                     f"({r.hosts.get(claim.outer, '?')}), and the mapping places {vm} on "
                     f"{r.where(vm)}: a true claim, refused. What did your check hold that "
                     f"address against? (`router` is the receiving router: its underlay_ip is "
                     f"{receiver}'s own.)" + why)
        raise Failed(f"{vm}'s ping to ZIGI-VM2 got no reply", evidence=r.evidence(
            r.honest, claims=[claim]), hint="check_source was not asked about it, or accepted it "
                                            "and the reply was lost: run the check again")
    if not refused_forged(r):
        raise Failed("check_source delivered these, but it accepted every packet, even "
                     f"{r.roles.rogue}'s forged ones, so this proves nothing",
                     evidence=r.evidence(r.forged),
                     hint="a router without a check accepts everything: check_source must "
                          "also drop what does not come from its sender's host (the TODOs)")
    ident_lines = marked(r.honest.lines["ZIGI-VM2"], "honest")
    if not ident_lines:
        raise Failed(f"the packet ZIGI-VM1's own host ({r.roles.sender}) sent for ZIGI-VM1 did "
                     "not reach ZIGI-VM2", expected=f"ICMP echo request, id {MARK['honest'][0]}",
                     evidence=r.evidence(r.honest),
                     hint="the same packet as ZIGI-VM1's ping, from the same host: a true "
                          "claim must be delivered")


@check("the rogue host's packets claiming ZIGI-VM1 are dropped and counted")
def forged_dropped(ctx) -> None:
    r = run(ctx)
    one = r.nodes["ZIGI-VM1"]
    claim = Claim(r.roles.receiver, one["ip"], r.lab.address(r.roles.rogue))
    summary = (f"{r.roles.rogue} sent packets claiming ZIGI-VM1's address {one['ip']} to "
               "ZIGI-VM2")
    fail_on_trouble(r, r.forged, summary, [claim],
                    " (they were dropped only because a failing check fails closed)")
    seen = marked(r.forged.lines["ZIGI-VM2"], "forged")
    if seen:
        raise Failed(summary + ", and ZIGI-VM2 received them", seen=seen[0],
                     expected=f"nothing at ZIGI-VM2: ZIGI-VM1 lives on {r.where('ZIGI-VM1')}, "
                              f"these came from {r.roles.rogue} ({claim.outer})",
                     evidence=r.evidence(r.forged, lines=seen, claims=[claim]),
                     hint=forged_hint(r, "ZIGI-VM1"))
    if not verdicts(r.forged.events, claim):
        raise RuntimeError(f"the forged packets never reached check_source on {claim.router}")
    before, after = r.forged.counted
    if after <= before:
        raise Failed(summary + ", and they were not counted",
                     expected=f"{r.roles.receiver}'s receive_check_failed to grow",
                     seen=f"{before} before, {after} after", evidence=r.evidence(r.forged),
                     hint="the router counts the packets check_source drops (False)")
    if not accepted_honest(r):
        raise Failed(summary + " and they were dropped, but so was ZIGI-VM1's own ping, so "
                     "this proves nothing", evidence=r.evidence(r.honest),
                     hint="a receive check drops forged packets and delivers true ones: see "
                          "the honest check")


def forged_hint(r: Run, claimed: str) -> str:
    rogue = r.roles.rogue
    own = "ZIGI-VM3"
    return (f"check_source returned True for them. The packets' outer source was {rogue} "
            f"({r.lab.address(rogue)}); where does the mapping say {claimed} lives? A router "
            f"without a check accepts everything (the TODOs). {rogue} does hold a VM of "
            f"ZIGI-VPC1 ({own}), just not {claimed}.")


@check("a forged claim is still dropped after the real VM's packets were accepted")
def still_dropped_after(ctx) -> None:
    r = run(ctx)
    four = r.nodes["ZIGI-VM4"]
    claim = Claim(r.roles.receiver, four["ip"], r.lab.address(r.roles.rogue))
    summary = (f"after ZIGI-VM4's own ping was delivered, {r.roles.rogue} sent packets "
               f"claiming ZIGI-VM4's address {four['ip']} to ZIGI-VM2")
    if not r.honest.pings["ZIGI-VM4"]:
        raise Failed(f"ZIGI-VM4's own ping to ZIGI-VM2 got no reply, so this proves nothing",
                     evidence=r.evidence(r.honest),
                     hint="a receive check delivers true claims: see the honest check")
    fail_on_trouble(r, r.after, summary, [claim],
                    " (they were dropped only because a failing check fails closed)")
    seen = marked(r.after.lines["ZIGI-VM2"], "after")
    if seen:
        one = r.nodes["ZIGI-VM1"]
        fresh_refused = False in verdicts(
            r.forged.events, Claim(r.roles.receiver, one["ip"], r.lab.address(r.roles.rogue)))
        hint = forged_hint(r, "ZIGI-VM4")
        if fresh_refused:
            hint = (f"check_source dropped {r.roles.rogue}'s claim of ZIGI-VM1, yet accepted "
                    "its claim of ZIGI-VM4 once ZIGI-VM4's own packets had passed: a source is "
                    "verified with the host its packets came from, every time. The router "
                    f"already remembers what it verified (ZIGI-VM4 from {r.roles.sender}); what "
                    "reaches check_source is a claim it has not verified yet.")
        raise Failed(summary + ", and ZIGI-VM2 received them", seen=seen[0],
                     expected=f"nothing at ZIGI-VM2: ZIGI-VM4 lives on {r.where('ZIGI-VM4')}",
                     evidence=r.evidence(r.after, lines=seen, claims=[claim]), hint=hint)
    if not verdicts(r.after.events, claim):
        raise RuntimeError(f"the forged packets never reached check_source on {claim.router}")


@check("a claim of another VPC's VM, in this VPC's VNI, is dropped")
def other_vpc_dropped(ctx) -> None:
    r = run(ctx)
    other = r.nodes["OTHER-VM1"]

    def go():
        return forged_probe(r.lab, r.roles, r.nodes, "OTHER-VM1", "other", "ZIGI-VM2",
                            ["ZIGI-VM2"], ctx.tmp)
    probe = ctx.once("other-vpc", go)
    probe.counted = None     # the service counts an accepted claim nobody has as failed: not shown
    claim = Claim(r.roles.receiver, other["ip"], r.lab.address(r.roles.rogue))
    vni = r.nodes["ZIGI-VM2"]["vni"]
    summary = (f"{r.roles.rogue} sent packets in ZIGI-VPC1's VNI {vni} claiming "
               f"{other['ip']}, OTHER-VM1's address in OTHER-VPC")
    fail_on_trouble(r, probe, summary, [claim],
                    " (they were dropped only because a failing check fails closed)")
    seen = marked(probe.lines["ZIGI-VM2"], "other")
    if seen:
        raise Failed(summary + ", and ZIGI-VM2 received them", seen=seen[0],
                     expected=f"nothing: no VM of ZIGI-VPC1 has {other['ip']}",
                     evidence=r.evidence(probe, lines=seen, claims=[claim]),
                     hint=("check_source accepts every packet so far (the TODOs). "
                           if not refused_forged(r) else "")
                          + f"OTHER-VM1 does live on {r.roles.rogue}, but in OTHER-VPC: which "
                            "VPC does the packet's VNI name, and whose mapping counts then?")
    if not verdicts(probe.events, claim):
        raise RuntimeError(f"the forged packets never reached check_source on {claim.router}")
    if not accepted_honest(r):
        raise Failed(summary + " and they were dropped, but so was ZIGI-VM1's own ping, so "
                     "this proves nothing", evidence=r.evidence(r.honest),
                     hint="a receive check drops forged packets and delivers true ones")
