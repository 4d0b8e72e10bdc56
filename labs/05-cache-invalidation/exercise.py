"""05: the learner's invalidation after a move runs in place of the mapping service's own.

The learner's `on_move(move, routers)` (starter/invalidation.py) says, for every VM that
moves, which routers invalidate which entry and where a barrier confirms it (vpclab
ryu_apps/learner_move.py). The lab: four hosts, two VPCs with the same CIDR. ZIGI-VM1 (the
pinger) streams 10 pings a second to ZIGI-VM2 (the mover), so the pinger's router caches
the mover's entry; ZIGI-VM3, on the host the mover goes to, talked to both, so that router
caches the mover too. OTHER-VPC's VMs have the same addresses: OTHER-VM2, the mover's twin,
is cached by the pinger's router (OTHER-VM1 talks to it) and by the bystander's, a fourth
host that never caches the mover (OTHER-VM3 talks to the twin). The checks:

- the stream goes on across the move: at most 2 pings lost (a real capture, in the pinger);
- once the move is reported done, no router still tunnels the mover to its old host (the
  flows of every router, dumped right then: the pinger's and the target's);
- routers that cached the mover keep their other entries (the twin's, each other's VM):
  only the mover's entry is invalidated (their flows, and the service's record);
- routers that never cached the mover got nothing of the learner's (the service's record
  of what it sent each router on the learner's behalf) and their flows are unchanged;
- the move is reported done only once the router that cached the mover confirmed: the
  mover moves back while the pinger's router is stalled (its ovs-vswitchd stopped for a
  second, by the PID the lab recorded): a move reported done before it resumed was never
  confirmed, and a barrier sent before the invalidate confirms nothing of it.

Doing nothing earns nothing: the checks of what is left alone count only once the routers
that cached the mover were told to invalidate it.
"""
from __future__ import annotations

import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from vpclab.classroom import Failed, Variant, check
from vpclab.classroom.variant import random_mac
from vpclab.classroom import learner_events as events_of
from vpclab.classroom import openflow_wire
from vpclab.classroom.learner_events import mark
from vpclab.running.health import newest
from vpclab.router.pipeline import COOKIE_KIND_MASK, COOKIE_MAPPING, mapping_cookie
from vpclab.results import ChangeUnconfirmed

TITLE = "Invalidate exactly the routers that cached a VM that moved, and confirm it"
WORK_FILES = ["invalidation.py"]
LEARNER = "invalidation.py"
FUNCTION = "on_move"
LEARNER_HOOKS = {FUNCTION: LEARNER}            # `vpclab lab start 5` runs it in its lab too

PINGER, MOVER, NEIGHBOUR = "ZIGI-VM1", "ZIGI-VM2", "ZIGI-VM3"
OTHER_VPC = "OTHER-VPC"                        # the same CIDR, the same addresses
TWIN_PINGER, TWIN, BYSTANDER = "OTHER-VM1", "OTHER-VM2", "OTHER-VM3"
MAX_LOST = 2          # pings of the 10/s stream lost across the move, at most
STALL = 1.0           # s the caching router is stopped during the second move
SETTLE = 8.0          # s at most for the learner's calls to end (2 s each, a hang killed 1 s later)
PINGS_AFTER = 10      # answers after the move before the stream stops (or AFTER_WAIT s)
AFTER_WAIT = 3.0


# -- the lab --------------------------------------------------------------------------------
def places(variant: Variant) -> dict[str, str]:
    """Which host is which: the pinger's, the mover's (from and to) and the bystander's."""
    hosts = ["host1", "host2", "host3", "host4"]
    if variant.student is not None:
        variant.rng("places").shuffle(hosts)
    return dict(zip(("pinger", "origin", "target", "bystander"), hosts))


def topology(variant: Variant) -> dict:
    """The seed's VPC with a third VM on the target host, and a second VPC with the same
    CIDR whose VMs have the same addresses (OTHER-VM2 is ZIGI-VM2's twin)."""
    seed = variant.seed_lab("ex05")
    where = places(variant)
    (vpc_name, vpc), = seed["vpcs"].items()
    rng = variant.rng("bystander")
    taken = {vm["ip"] for vm in seed["vms"].values()}
    if variant.student is None:
        third, other_vni = "10.0.0.20", vpc["vni"] + 1
        macs = ["02:4f:1c:7a:30:05", "02:4f:1c:7a:31:01", "02:4f:1c:7a:31:02", "02:4f:1c:7a:31:03"]
    else:
        third = next(str(a) for a in rng.sample(list(IPv4Network(vpc["cidr"]).hosts())[3:], 8)
                     if str(a) not in taken)
        macs = [random_mac(rng) for _ in range(4)]
        other_vni = next(v for v in iter(lambda: rng.randrange(100, 16_000_000), None)
                         if v != vpc["vni"])
    vms = {name: {**vm, "host": where["pinger" if name == PINGER else "origin"]}
           for name, vm in seed["vms"].items()}
    vms[NEIGHBOUR] = {"vpc": vpc_name, "host": where["target"], "ip": third, "mac": macs[0]}
    for twin, of, host, mac in ((TWIN_PINGER, PINGER, "pinger", macs[1]),
                                (TWIN, MOVER, "origin", macs[2]),
                                (BYSTANDER, NEIGHBOUR, "bystander", macs[3])):
        vms[twin] = {"vpc": OTHER_VPC, "host": where[host], "ip": vms[of]["ip"], "mac": mac}
    return {**seed, "description": f"a VM moves under a running ping ({variant.describe()})",
            "hosts": {h: {} for h in sorted(where.values())},
            "vpcs": {vpc_name: vpc, OTHER_VPC: {"cidr": vpc["cidr"], "vni": other_vni}},
            "vms": vms}


def briefing(variant: Variant) -> str:
    where = places(variant)
    return (f"{PINGER} ({where['pinger']}) pings {MOVER} ({where['origin']}) 10 times a "
            f"second; the check moves {MOVER} to {where['target']} and back. Before the move, "
            f"{NEIGHBOUR} ({where['target']}) pings {PINGER} and {MOVER}; {OTHER_VPC} has the "
            f"same addresses, and {TWIN_PINGER} ({where['pinger']}) and {BYSTANDER} "
            f"({where['bystander']}) ping {TWIN} ({where['origin']}), {MOVER}'s twin.\n"
            f"Try it: vpclab move ex05 {MOVER} {where['target']}, then see where "
            f"{where['pinger']} tunnels it: vpclab exec ex05 {where['pinger']} -- ovs-ofctl "
            f"-O OpenFlow13 dump-flows br-int table=20")


def lab(ctx):
    ctx.file(LEARNER)                                   # missing: fails, saying so
    return ctx.lab(topology(ctx.variant), key="moves", mode="on-demand",
                   learner={"on_move": ctx.work / LEARNER})


def warm_up(lab) -> None:
    """Who caches what before the move: the pinger's and the target's routers cache the
    mover; the pinger's and the bystander's the mover's twin; the pinger's and the target's
    each other's VM (entries that stay right when the mover moves)."""
    for vm, peer in ((NEIGHBOUR, PINGER), (NEIGHBOUR, MOVER), (TWIN_PINGER, TWIN),
                     (BYSTANDER, TWIN), (PINGER, MOVER)):
        lab.exec(vm, "ping", "-c", "1", "-W", "2", lab.address(peer))


# -- what the learner's code did, from the mapping service's events ------------------------
def settled(lab, start: int, timeout: float = SETTLE) -> list[dict]:
    """The events since `start`, once every call of on_move since then ended."""
    return events_of.settled(lab, start, timeout, FUNCTION)


def learner_events(events: list[dict]) -> list[dict]:
    return [e for e in events if e.get("function") == "on_move"
            and e["event"] in ("learner_answer", "learner_error")]


def sent(events: list[dict]) -> dict[str, list[str]]:
    """What the service sent each router on the learner's behalf, in order."""
    out: dict[str, list[str]] = {}
    for e in learner_events(events):
        for host, messages in (e.get("sent") or {}).items() if e["event"] == "learner_answer" else ():
            out.setdefault(host, []).extend(messages)
    return out


def printed(events: list[dict]) -> str:
    return events_of.printed(events, FUNCTION)


def told(events: list[dict]) -> str:
    """What on_move made the service send, router by router, for the evidence."""
    said = sent(events)
    if not learner_events(events):
        return "on_move was not called (or did not end)"
    lines = [f"  {host}: {', '.join(messages)}" for host, messages in sorted(said.items())]
    return "what on_move made the service send:\n" + ("\n".join(lines) or "  nothing")


def with_code(evidence: str, events: list[dict]) -> str:
    parts = [evidence.rstrip()] if evidence else []
    parts.append(told(events))
    if printed(events):
        parts.append("what on_move printed:\n" + printed(events))
    return "\n\n".join(parts)


def fail(events: list[dict], summary: str, *, evidence: str = "", **said) -> None:
    """Fail: with the learner's traceback if on_move failed, else as said."""
    errors = [e for e in learner_events(events) if e["event"] == "learner_error"]
    if errors:
        message = errors[-1]["message"]
        raise Failed(summary + ": your on_move failed", seen=message.splitlines()[0],
                     evidence=with_code(message + ("\n\n" + evidence if evidence else ""), events),
                     hint="fix what the traceback points at: nothing of a failed answer is "
                          "sent, so the old entry stays")
    raise Failed(summary, evidence=with_code(evidence, events), **said)


# -- the routers' flows -----------------------------------------------------------------------
COUNTERS = re.compile(r"\b(duration|n_packets|n_bytes|idle_age|hard_age)=[^,\s]+,?\s*")
COOKIE = re.compile(r"\bcookie=(0x[0-9a-f]+)")


def flows(lab, host: str) -> list[str]:
    """The router's flows, without counters and ages (what it does, not how much)."""
    directory = lab.state.host_dir(lab.nodes()[host]["node"])
    done = lab.exec(host, "ovs-ofctl", "-O", "OpenFlow13", "dump-flows",
                    f"unix:{directory}/br-int.mgmt", timeout=20)
    return sorted(COUNTERS.sub("", line).strip() for line in done.stdout.splitlines()
                  if "cookie=" in line)


def holders(snapshot: dict[str, list[str]], cookie: str) -> list[str]:
    return sorted(h for h, lines in snapshot.items() if any(cookie in line for line in lines))


def stale(snapshot: dict[str, list[str]], cookie: str, old_ip: str) -> dict[str, list[str]]:
    """Every router's flows of the mover's entry that still name its old host."""
    found = {h: [line for line in lines if cookie in line and re.search(
        rf"(tun_dst|tun_src)={re.escape(old_ip)}\b|{re.escape(old_ip)}->tun_dst", line)]
        for h, lines in snapshot.items()}
    return {h: lines for h, lines in found.items() if lines}


def entries(lines: list[str]) -> dict[int, set[str]]:
    """A router's cached entries (one mapping cookie per VPC and IP) and their flows."""
    out: dict[int, set[str]] = {}
    for line in lines:
        found = COOKIE.search(line)
        if found and int(found[1], 16) & COOKIE_KIND_MASK == COOKIE_MAPPING:
            out.setdefault(int(found[1], 16), set()).add(line)
    return out


def lost(before: list[str], after: list[str], keep_out: int) -> dict[int, list[str]]:
    """The entries (but `keep_out`) a router held before whose flows are not all there after."""
    now = set(after)
    return {cookie: sorted(lines - now) for cookie, lines in entries(before).items()
            if cookie != keep_out and lines - now}


@dataclass(frozen=True)
class Entry:
    vm: str
    vpc: str
    ip: str

    def __str__(self) -> str:
        return f"{self.vm} ({self.vpc} {self.ip})"


def known_entries(variant: Variant) -> dict[int, Entry]:
    """Every VM's entry in the lab, by its mapping cookie."""
    made = topology(variant)
    return {mapping_cookie(made["vpcs"][vm["vpc"]]["vni"], IPv4Address(vm["ip"])):
            Entry(name, vm["vpc"], vm["ip"]) for name, vm in made["vms"].items()}


def mover_value(variant: Variant) -> int:
    return next(c for c, e in known_entries(variant).items() if e.vm == MOVER)


def as_text(cookie: int) -> str:
    """How a cookie reads in a flow dump (the end of it: 'cookie=0x..,')."""
    return f"cookie={cookie:#x},"


def mover_cookie(ctx) -> str:
    return as_text(mover_value(ctx.variant))


# -- the moves ------------------------------------------------------------------------------
@dataclass
class Move:
    """One move of the mover: the lab, the routers' flows before it, the events it caused,
    its report (or the ChangeUnconfirmed it raised) and when it was reported done."""
    lab: object
    before: dict[str, list[str]]
    events: list[dict]
    report: object
    done_at: float
    origin: str
    target: str


@dataclass
class FirstMove(Move):
    """Under a 10/s ping: the flows right after it was reported done, the ping."""
    after: dict[str, list[str]]
    pinger: object
    started: float
    old_ip: str


@dataclass
class StalledMove(Move):
    """Back, while the router that caches the mover was stopped; its OpenFlow connection."""
    stopped: float
    resumed: float
    stalled: str
    wire: list[openflow_wire.Message]


def do_move(lab, host: str):
    """The move, and the time.time() it was reported done; the report, or the
    ChangeUnconfirmed it raised."""
    try:
        report = lab.move(MOVER, host)
    except ChangeUnconfirmed as exc:
        report = exc
    return report, time.time()


def unconfirmed(report) -> str:
    if isinstance(report, ChangeUnconfirmed):
        return "; ".join(f"{h}: {why}" for h, why in report.report.unconfirmed.items())
    return ""


# -- the first move: under a 10/s ping ----------------------------------------------------
def first_move(ctx) -> FirstMove:
    def run():
        moves = lab(ctx)
        where = places(ctx.variant)
        warm_up(moves)
        before = {h: flows(moves, h) for h in moves.hosts}
        start = mark(moves)
        with moves.running_ping(PINGER, MOVER) as pinger:
            deadline = time.monotonic() + 5
            while pinger.answered_after(0) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            started = time.time()
            report, done_at = do_move(moves, where["target"])
            after = {h: flows(moves, h) for h in moves.hosts}       # right after "done"
            deadline = time.monotonic() + AFTER_WAIT
            while pinger.answered_after(done_at) < PINGS_AFTER and time.monotonic() < deadline:
                time.sleep(0.05)
        return FirstMove(lab=moves, before=before, events=settled(moves, start), report=report,
                         done_at=done_at, origin=where["origin"], target=where["target"],
                         after=after, pinger=pinger, started=started,
                         old_ip=moves.address(where["origin"]))
    return ctx.once("first-move", run)


def who_to_tell(move: Move, host: str) -> str:
    """The likely cause of a router left with the mover's old entry."""
    if host == move.target:
        return (f"{host} cached {MOVER} before the move ({NEIGHBOUR} there talked to it) and "
                f"still tunnels it to {move.origin}, although {MOVER} now lives on {host} "
                "itself: which routers did your on_move tell? (TODO 1 and 2)")
    return (f"{host} cached {MOVER} and still tunnels it to {move.origin} after the move: "
            "which routers did your on_move tell? (TODO 1 and 2)")


@check("the pings go on across the move: at most 2 of 10 a second lost")
def pings_go_on(ctx) -> None:
    move = first_move(ctx)
    pinger = move.pinger
    lost_pings = pinger.lost()
    if len(lost_pings) <= MAX_LOST and pinger.answered_after(move.done_at) > 0:
        return
    rows = [f"  icmp_seq={seq} sent {pinger.requests[seq] - move.started:+.2f} s from the "
            f"move's start, never answered" for seq in lost_pings[:12]]
    if len(lost_pings) > 12:
        rows.append(f"  ... and {len(lost_pings) - 12} more")
    evidence = (f"{MOVER} moved {move.origin} -> {move.target}; the move was reported done "
                f"{move.done_at - move.started:+.2f} s from its start\n" + "\n".join(rows))
    pinger_host = places(ctx.variant)["pinger"]
    old = stale(move.after, mover_cookie(ctx), move.old_ip)
    if pinger_host in old:
        hint = (f"{pinger_host} cached {MOVER}'s entry and still tunnels to {move.origin} "
                f"({move.old_ip}), which {MOVER} has left: nothing told {pinger_host} to "
                "forget it (TODO 1 and 2)")
        evidence += (f"\n\n{pinger_host}'s flow right after the move was reported done:\n"
                     f"  {old[pinger_host][0]}")
    else:
        hint = (f"{pinger_host} let go of the old entry, yet pings were lost: what did your "
                f"on_move send {pinger_host}, and was it {MOVER}'s entry? If this passes on a "
                "second try, the machine was busy")
    fail(move.events, f"{len(lost_pings)} of {PINGER}'s pings to {MOVER} were lost across the move",
         expected=f"at most {MAX_LOST} lost (those in flight while the VM's port changes host)",
         seen=f"{len(lost_pings)} lost of {len(pinger.requests)} sent", evidence=evidence, hint=hint)


@check("once the move is reported done, no router still tunnels the VM to its old host")
def no_stale_entry(ctx) -> None:
    move = first_move(ctx)
    if unconfirmed(move.report):
        fail(move.events, "the move was not confirmed", seen=unconfirmed(move.report),
             hint="a barrier to a router that is not connected, or that never answers, "
                  "keeps the move from being confirmed")
    old = stale(move.after, mover_cookie(ctx), move.old_ip)
    if old:
        evidence = "\n".join(f"{h}: {line}" for h, lines in old.items() for line in lines[:3])
        host = next(iter(old))
        fail(move.events, f"{host} still held {MOVER}'s old entry when the move was reported "
                          "done", expected=f"no flow of {MOVER}'s entry naming {move.origin} "
                                           f"({move.old_ip}) on any router",
             seen=f"{sum(len(v) for v in old.values())} such flows on {', '.join(old)}",
             evidence=evidence, hint=who_to_tell(move, host))


@check("routers that cached the VM keep their other entries")
def others_kept(ctx) -> None:
    move = first_move(ctx)
    known, mover = known_entries(ctx.variant), mover_value(ctx.variant)
    cached = holders(move.before, as_text(mover))
    if events_of.trouble(move.events, FUNCTION):
        fail(move.events, "on_move did not answer")
    gone = {h: found for h in cached if (found := lost(move.before[h], move.after[h], mover))}
    mine = f"invalidate {known[mover].vpc} {known[mover].ip}"
    said = sent(move.events)
    extra = {h: [m for m in said.get(h, []) if m.startswith("invalidate") and m != mine]
             for h in cached}
    extra = {h: m for h, m in extra.items() if m}
    if gone or extra:
        summary, said_so = kept_failure(gone, extra, known, mover)
        fail(move.events, summary, **said_so)
    if not any(m == mine for h in cached for m in said.get(h, [])):
        fail(move.events, f"on_move told no router to invalidate {MOVER}'s entry, so keeping "
                          "the others proves nothing",
             hint="this counts once the routers that cached it are told (TODO 1 and 2)")


def kept_failure(gone: dict[str, dict[int, list[str]]], extra: dict[str, list[str]],
                 known: dict[int, Entry], mover: int) -> tuple[str, dict]:
    """The summary, and Failed's other words, for caching routers that lost entries other
    than the mover's (`gone`: their flows) or were told to invalidate them (`extra`)."""
    mover_ip = known[mover].ip
    name = {c: str(known.get(c, f"the entry of cookie {c:#x}")) for h in gone for c in gone[h]}
    dropped = {h: [name[c] for c in found] for h, found in gone.items()}
    for h, messages in extra.items():                  # told, yet its flows did not show it
        dropped.setdefault(h, [m[len("invalidate "):] for m in messages])
    host = sorted(dropped)[0]
    evidence = [f"{h} lost {name[c]}:\n" + "\n".join(f"  {line}" for line in lines[:3])
                for h, found in sorted(gone.items()) for c, lines in found.items()]
    addresses = {c: known[c].ip for found in gone.values() for c in found if c in known}
    only_twins = all(addresses.get(c) == mover_ip for found in gone.values() for c in found) \
        and all(m.endswith(f" {mover_ip}") for ms in extra.values() for m in ms)
    if only_twins:
        hint = (f"{host} also cached {OTHER_VPC}'s {mover_ip} ({TWIN}, another VM with "
                f"{MOVER}'s address, in another VPC), which did not move: an address names a "
                "VM only within its VPC")
    else:
        hint = (f"a router that cached other VMs keeps what is still true: only {MOVER} "
                f"moved, and {host}'s entry for {dropped[host][0]} was still right (each entry "
                "thrown away costs a mapping-service lookup at its next packet)")
    verb = "lost" if host in gone else "was told to forget"
    return (f"{host} {verb} {', '.join(dropped[host])} although only {MOVER} moved",
            dict(expected=f"the routers that cached {MOVER} forget its entry, and only that",
                 seen="; ".join(f"{h}: {', '.join(d)}" for h, d in sorted(dropped.items())),
                 evidence="\n".join(evidence), hint=hint))


@check("routers that never cached the VM are left alone")
def others_untouched(ctx) -> None:
    move = first_move(ctx)
    known, mover = known_entries(ctx.variant), mover_value(ctx.variant)
    cached = holders(move.before, as_text(mover))
    said = sent(move.events)
    if events_of.trouble(move.events, FUNCTION):
        fail(move.events, "on_move did not answer")
    bothered = {h: m for h, m in said.items() if h not in cached and m}
    if bothered:
        host, messages = sorted(bothered.items())[0]
        fail(move.events, f"{', '.join(sorted(bothered))} never cached {MOVER}, and "
                          f"{'was' if len(bothered) == 1 else 'were'} sent messages all the same",
             expected=f"messages to {', '.join(cached) or 'no router'} only (the routers whose "
                      f"'cached' held {MOVER}'s entry)",
             seen=f"{host}: {', '.join(messages)}", hint=bother_hint(move, bothered, known, mover))
    changed = {h: (sorted(set(move.before[h]) - set(move.after[h])),
                   sorted(set(move.after[h]) - set(move.before[h])))
               for h in move.lab.hosts
               if h not in cached and h not in (move.origin, move.target)
               and move.before[h] != move.after[h]}
    if changed:
        host, (gone, new) = sorted(changed.items())[0]
        fail(move.events, f"{host}'s flows changed although it never cached {MOVER}",
             expected=f"{host}'s flows as before the move",
             seen=f"{len(gone)} flows gone, {len(new)} new",
             evidence="gone:\n" + "\n".join(f"  {line}" for line in gone[:6])
                      + ("\nnew:\n" + "\n".join(f"  {line}" for line in new[:6]) if new else ""),
             hint=f"{host} had nothing of {MOVER}'s: what else a router caches is still right, "
                  "and deleting it costs a mapping-service lookup at its next packet")
    mine = f"invalidate {known[mover].vpc} {known[mover].ip}"
    if not any(m == mine for h in cached for m in said.get(h, [])):
        fail(move.events, f"on_move told no router to invalidate {MOVER}'s entry, so leaving "
                          "the others alone proves nothing",
             hint="this counts once the routers that cached it are told (TODO 1 and 2)")


def bother_hint(move: Move, bothered: dict[str, list[str]], known: dict[int, Entry],
                mover: int) -> str:
    """Why routers that never cached the mover were sent messages, most likely."""
    twin = next(c for c, e in known.items() if e.vm == TWIN)
    if all(as_text(twin) in " ".join(move.before[h]) for h in bothered):
        host = sorted(bothered)[0]
        return (f"{host} cached {OTHER_VPC}'s {known[twin].ip} ({TWIN}), not {MOVER}: the same "
                f"address in another VPC is another VM, so {host} has nothing of {MOVER}'s to "
                "forget")
    return ("a router that never cached it has nothing to forget, and every message to a "
            "router that does not need it is work for a router that may serve thousands of "
            "VMs: what in `routers` tells you which ones cached it?")


# -- the second move: the caching router stalled ------------------------------------------
def signal_recorded(proc, sig: int) -> None:
    """Signal one of the lab's recorded processes, only while its start time still matches
    the record (a recycled PID is never hit)."""
    fd = os.pidfd_open(proc.pid)
    try:
        if not proc.is_alive():
            raise RuntimeError(f"{proc.role} {proc.pid} of the lab's records is gone")
        signal.pidfd_send_signal(fd, sig)
    finally:
        os.close(fd)


def stalled_move(ctx) -> StalledMove:
    """The mover goes back to its first host while the router that caches it (the
    pinger's) has its ovs-vswitchd stopped for STALL s."""
    def run():
        first = first_move(ctx)
        moves, where = first.lab, places(ctx.variant)
        moves.exec(PINGER, "ping", "-c", "1", "-W", "2", moves.address(MOVER))
        before = {h: flows(moves, h) for h in moves.hosts}
        vswitchd = newest(moves.state.processes())[("ovs-vswitchd", where["pinger"])]
        start = mark(moves)
        times: dict[str, float] = {}

        def resume() -> None:
            if "resumed" not in times:
                signal_recorded(vswitchd, signal.SIGCONT)
                times["resumed"] = time.time()

        timer = threading.Timer(STALL, resume)
        point = f"{where['pinger']}:mgmt0"          # the router's OpenFlow connection
        with moves.capture([point], ctx.tmp / "stall",
                           filter=f"tcp port {openflow_wire.OPENFLOW_PORT}") as cap:
            times["stopped"] = time.time()
            signal_recorded(vswitchd, signal.SIGSTOP)
            try:
                timer.start()
                report, done_at = do_move(moves, where["origin"])
                timer.join()                      # the whole stall, however early it returned
            finally:
                timer.cancel()
                resume()                          # never left stopped, whatever happened
        return StalledMove(lab=moves, before=before, events=settled(moves, start),
                           report=report, done_at=done_at, origin=where["target"],
                           target=where["origin"], stopped=times["stopped"],
                           resumed=times["resumed"], stalled=where["pinger"],
                           wire=openflow_wire.read(cap.pcap(point)))
    return ctx.once("stalled-move", run)


@dataclass(frozen=True)
class Confirmation:
    """What the stalled router was sent for the move, around its last invalidate of the
    mover's entry: read from its OpenFlow connection, or (when the capture could not be
    read) from the service's record of the learner's messages."""
    invalidated: bool
    barriers_before: int = 0            # barriers sent before that invalidate
    barriers_after: int = 0             # ... and after it
    in_time: bool = False               # one sent after it was answered by the time "done"


def from_wire(wire: list[openflow_wire.Message], cookie: int, done_at: float) -> Confirmation | None:
    requests = [m for m in wire if m.to_router]
    if not requests:
        return None                                    # nothing captured: read the record
    deletes = [i for i, m in enumerate(requests) if m.deletes == cookie]
    if not deletes:
        return Confirmation(False)
    barriers = [(i, m.xid) for i, m in enumerate(requests) if m.kind == openflow_wire.BARRIER_REQUEST]
    replies = {m.xid: m.at for m in wire if not m.to_router and m.kind == openflow_wire.BARRIER_REPLY}
    answered = [replies[xid] for i, xid in barriers if i > deletes[-1] and xid in replies]
    return Confirmation(True, sum(i < deletes[-1] for i, _ in barriers),
                        sum(i > deletes[-1] for i, _ in barriers),
                        bool(answered) and min(answered) <= done_at)


def from_record(said: list[str], entry: str, move: StalledMove) -> Confirmation:
    deletes = [i for i, m in enumerate(said) if m == f"invalidate {entry}"]
    if not deletes:
        return Confirmation(False)
    after = sum(m == "barrier" for m in said[deletes[-1] + 1:])
    return Confirmation(True, sum(m == "barrier" for m in said[:deletes[-1]]), after,
                        bool(after) and move.done_at >= move.resumed)


def timeline(move: StalledMove, cookie: int) -> str:
    """The stall, the move's report and the router's flow-mods and barriers, in time."""
    wire = [m for m in move.wire if m.kind in (openflow_wire.FLOW_MOD, openflow_wire.BARRIER_REQUEST,
                                               openflow_wire.BARRIER_REPLY)]
    host = move.stalled
    return (f"{host}'s ovs-vswitchd stopped at +0.000 s, resumed at "
            f"{move.resumed - move.stopped:+.3f} s\nthe move {MOVER} {move.origin} -> "
            f"{move.target} was reported done at {move.done_at - move.stopped:+.3f} s\n"
            f"{host}'s OpenFlow connection meanwhile (flow-mods and barriers):\n" +
            ("\n".join("  " + m.describe(move.stopped, host, {cookie: f"{MOVER}'s entry"})
                       for m in wire) or "  none"))


@check("the move is reported done only once the router that cached the VM confirmed")
def confirmed_before_done(ctx) -> None:
    move = stalled_move(ctx)
    host, cookie = move.stalled, mover_value(ctx.variant)
    entry = known_entries(ctx.variant)[cookie]
    said = sent(move.events).get(host, [])
    evidence = timeline(move, cookie)
    if unconfirmed(move.report):
        fail(move.events, "the move was not confirmed", seen=unconfirmed(move.report),
             evidence=evidence, hint="a barrier to a router that is not connected, or that "
                                     "never answers, keeps the move from being confirmed")
    if host not in holders(move.before, as_text(cookie)):
        raise Failed(f"{host} did not cache {MOVER} before the move: the check could not "
                     "stall the router that matters", evidence=evidence, hint="tell your teacher")
    seen = (from_wire(move.wire, cookie, move.done_at)
            or from_record(said, f"{entry.vpc} {entry.ip}", move))
    if not seen.invalidated:
        fail(move.events, f"{host}, which cached {MOVER}, was never told to invalidate it",
             evidence=evidence, hint=f"{host} cached {MOVER} and got no invalidate of it from "
                                     "your on_move (TODO 1 to 3)")
    if move.done_at < move.resumed:
        fail(move.events, f"the move was reported done while {host} was stopped: it could not "
                          "have let go of the old entry",
             expected=f"done once {host} resumed and answered a barrier sent after the delete",
             seen=f"done {move.resumed - move.done_at:.2f} s before {host} resumed",
             evidence=evidence,
             hint="the service reports the move done once every barrier your on_move asked "
                  f"for is answered: with none to wait for, nobody knows whether {host} has "
                  "let go of the old entry (TODO 3)")
    if not seen.in_time and seen.barriers_before and not seen.barriers_after:
        fail(move.events, f"{host}'s only barrier came before its invalidate: the move was "
                          "reported done on a confirmation of nothing",
             expected=f"{host}'s barrier to confirm its invalidate",
             seen=f"{host}: {', '.join(said)}", evidence=evidence,
             hint="a router answers a barrier once it has done everything sent before it, "
                  f"and says nothing of what comes after it: what did {host}'s barrier confirm?")
    if not seen.in_time:
        fail(move.events, f"no barrier after {host}'s invalidate was answered before the move "
                          "was reported done", seen=f"{host}: {', '.join(said)}",
             evidence=evidence, hint=f"a barrier confirms only what was sent before it to the "
                                     f"same router: which one confirms {host}'s invalidate? "
                                     "(TODO 3)")
