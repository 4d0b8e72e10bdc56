"""05: the learner's invalidation after a move runs in place of the mapping service's own.

The learner's `on_move(move, routers)` (starter/invalidation.py) says, for every VM that
moves, which routers invalidate which entry and where a barrier confirms it (vpclab
ryu_apps/learner_move.py). The lab: four hosts, one VPC; ZIGI-VM1 (the pinger) streams
10 pings a second to ZIGI-VM2 (the mover), so the pinger's router caches the mover's
entry; ZIGI-VM3, on a fourth host, talks to the pinger only, so its router caches
something, but never the mover. The checks:

- the stream goes on across the move: at most 2 pings lost (a real capture, in the pinger);
- once the move is reported done, no router still tunnels the mover to its old host (the
  flows of every router, dumped right then);
- routers that never cached the mover got nothing of the learner's (the service's record
  of what it sent each router on the learner's behalf) and their flows are unchanged;
- the move is reported done only once the router that cached the mover confirmed: the
  mover moves back while the pinger's router is stalled (its ovs-vswitchd stopped for a
  second, by the PID the lab recorded): a move reported done before it resumed was never
  confirmed, and a barrier sent before the invalidate confirms nothing of it.

Doing nothing earns nothing: "routers left alone" counts only once the router that
cached the mover was told to invalidate it.
"""
from __future__ import annotations

import os
import re
import signal
import threading
import time
from ipaddress import IPv4Address, IPv4Network

from vpclab.classroom import Failed, Variant, check
from vpclab.classroom import learner_events as events_of
from vpclab.classroom.learner_events import mark
from vpclab.health import newest
from vpclab.pipeline import mapping_cookie
from vpclab.results import ChangeUnconfirmed

TITLE = "Invalidate exactly the routers that cached a VM that moved, and confirm it"
WORK_FILES = ["invalidation.py"]
LEARNER = "invalidation.py"
FUNCTION = "on_move"
LEARNER_HOOKS = {FUNCTION: LEARNER}            # `vpclab lab start 5` runs it in its lab too

PINGER, MOVER, BYSTANDER = "ZIGI-VM1", "ZIGI-VM2", "ZIGI-VM3"
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
    seed = variant.seed_lab("ex05")
    where = places(variant)
    (vpc_name, vpc), = seed["vpcs"].items()
    rng = variant.rng("bystander")
    taken = {vm["ip"] for vm in seed["vms"].values()}
    if variant.student is None:
        third, mac = "10.0.0.20", "02:4f:1c:7a:30:05"
    else:
        third = next(str(a) for a in rng.sample(list(IPv4Network(vpc["cidr"]).hosts())[3:], 8)
                     if str(a) not in taken)
        mac = "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5))
    vms = {name: {**vm, "host": where["pinger" if name == PINGER else "origin"]}
           for name, vm in seed["vms"].items()}
    vms[BYSTANDER] = {"vpc": vpc_name, "host": where["bystander"], "ip": third, "mac": mac}
    return {**seed, "description": f"a VM moves under a running ping ({variant.describe()})",
            "hosts": {h: {} for h in sorted(where.values())}, "vms": vms}


def briefing(variant: Variant) -> str:
    where = places(variant)
    return (f"{PINGER} ({where['pinger']}) pings {MOVER} ({where['origin']}) 10 times a "
            f"second; the check moves {MOVER} to {where['target']} and back. {BYSTANDER} "
            f"({where['bystander']}) never talks to {MOVER}.\n"
            f"Try it: vpclab move ex05 {MOVER} {where['target']}, then see where "
            f"{where['pinger']} tunnels it: vpclab exec ex05 {where['pinger']} -- ovs-ofctl "
            f"-O OpenFlow13 dump-flows br-int table=20")


def lab(ctx):
    ctx.file(LEARNER)                                   # missing: fails, saying so
    return ctx.lab(topology(ctx.variant), key="moves", mode="on-demand",
                   learner={"on_move": ctx.work / LEARNER})


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


class Move:
    """One move of the mover: flows before and right after it was reported done, its events."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def mover_cookie(ctx) -> str:
    made = topology(ctx.variant)
    vni = next(iter(made["vpcs"].values()))["vni"]
    return f"cookie={mapping_cookie(vni, IPv4Address(made['vms'][MOVER]['ip'])):#x},"


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
def first_move(ctx) -> Move:
    def run():
        moves = lab(ctx)
        where = places(ctx.variant)
        # the bystander's router caches the pinger (never the mover); the pinger's the mover
        moves.exec(BYSTANDER, "ping", "-c", "1", "-W", "2", moves.address(PINGER))
        moves.exec(PINGER, "ping", "-c", "1", "-W", "2", moves.address(MOVER))
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
        events = settled(moves, start)
        return Move(lab=moves, before=before, after=after, events=events, pinger=pinger,
                    started=started, done_at=done_at, report=report,
                    old_ip=moves.address(where["origin"]), origin=where["origin"],
                    target=where["target"])
    return ctx.once("first-move", run)


@check("the pings go on across the move: at most 2 of 10 a second lost")
def pings_go_on(ctx) -> None:
    move = first_move(ctx)
    pinger, cookie = move.pinger, mover_cookie(ctx)
    lost = pinger.lost()
    if len(lost) <= MAX_LOST and pinger.answered_after(move.done_at) > 0:
        return
    where = places(ctx.variant)
    rows = [f"  icmp_seq={seq} sent {pinger.requests[seq] - move.started:+.2f} s from the "
            f"move's start, never answered" for seq in lost[:12]]
    if len(lost) > 12:
        rows.append(f"  ... and {len(lost) - 12} more")
    evidence = (f"{MOVER} moved {move.origin} -> {move.target}; the move was reported done "
                f"{move.done_at - move.started:+.2f} s from its start\n" + "\n".join(rows))
    old = stale(move.after, cookie, move.old_ip)
    if old:
        host, lines = next(iter(old.items()))
        hint = (f"{host} cached {MOVER}'s entry and still tunnels to {move.origin} "
                f"({move.old_ip}), which {MOVER} has left: nothing told {host} to forget it "
                "(TODO 1 and 2)")
        evidence += f"\n\n{host}'s flow right after the move was reported done:\n  {lines[0]}"
    else:
        hint = ("no router kept the old entry, yet pings were lost: is the right entry "
                f"invalidated (the moved VM's VPC and IP) on {where['pinger']}? If this "
                "passes on a second try, the machine was busy")
    fail(move.events, f"{len(lost)} of {PINGER}'s pings to {MOVER} were lost across the move",
         expected=f"at most {MAX_LOST} lost (those in flight while the VM's port changes host)",
         seen=f"{len(lost)} lost of {len(pinger.requests)} sent", evidence=evidence, hint=hint)


@check("once the move is reported done, no router still tunnels the VM to its old host")
def no_stale_entry(ctx) -> None:
    move = first_move(ctx)
    cookie = mover_cookie(ctx)
    if unconfirmed(move.report):
        fail(move.events, "the move was not confirmed", seen=unconfirmed(move.report),
             hint="a barrier to a router that is not connected, or that never answers, "
                  "keeps the move from being confirmed")
    old = stale(move.after, cookie, move.old_ip)
    if old:
        evidence = "\n".join(f"{h}: {line}" for h, lines in old.items() for line in lines[:3])
        host = next(iter(old))
        fail(move.events, f"{host} still held {MOVER}'s old entry when the move was reported "
                          "done", expected=f"no flow of {MOVER}'s entry naming {move.origin} "
                                           f"({move.old_ip}) on any router",
             seen=f"{sum(len(v) for v in old.values())} such flows on {', '.join(old)}",
             evidence=evidence,
             hint=f"{host} cached {MOVER} before the move ('cached' in routers[{host!r}]): "
                  "invalidate that entry (its VPC and IP) on every router that caches it "
                  "(TODO 1 and 2)")


@check("routers that never cached the VM are left alone")
def others_untouched(ctx) -> None:
    move = first_move(ctx)
    cookie = mover_cookie(ctx)
    cached = holders(move.before, cookie)
    said = sent(move.events)
    if learner_events(move.events) and any(e["event"] == "learner_error"
                                           for e in learner_events(move.events)):
        fail(move.events, "on_move did not answer")
    bothered = {h: m for h, m in said.items() if h not in cached and m}
    if bothered:
        host, messages = sorted(bothered.items())[0]
        fail(move.events, f"{', '.join(sorted(bothered))} never cached {MOVER}, and were sent "
                          "messages all the same",
             expected=f"messages to {', '.join(cached) or 'no router'} only (the routers whose "
                      f"'cached' held {MOVER}'s entry)",
             seen=f"{host}: {', '.join(messages)}",
             hint="a router that never cached it has nothing to forget: look in "
                  "routers[HOST]['cached'] for the moved VM's VPC and IP, and leave the "
                  "others alone (every message to a router that does not need it is work "
                  "for a router that may serve thousands of VMs)")
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
             hint="invalidate the moved VM's entry only: what else a router caches is still "
                  "right, and deleting it costs a mapping-service lookup at its next packet")
    if not any("invalidate" in m for h in cached for m in said.get(h, [])):
        fail(move.events, f"on_move told no router to invalidate {MOVER}'s entry, so leaving "
                          "the others alone proves nothing",
             hint="this counts once the routers that cached it are told (TODO 1 and 2)")


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


OPENFLOW_PORT = 6653
OF_TYPES = {2: "ECHO_REQUEST", 3: "ECHO_REPLY", 10: "PACKET_IN", 11: "FLOW_REMOVED",
            13: "PACKET_OUT", 14: "FLOW_MOD", 20: "BARRIER_REQUEST", 21: "BARRIER_REPLY"}
OFPFC_DELETE = 3


class Message:
    """One OpenFlow message on the wire between the service and a router."""

    def __init__(self, at: float, to_router: bool, kind: int, xid: int, body: bytes):
        self.at, self.to_router, self.kind, self.xid = at, to_router, kind, xid
        self.deletes = (int.from_bytes(body[8:16], "big")
                        if kind == 14 and len(body) >= 26 and body[25] == OFPFC_DELETE else None)

    @property
    def name(self) -> str:
        return OF_TYPES.get(self.kind, f"type {self.kind}")

    def describe(self, origin: float, router: str, cookies: dict[int, str]) -> str:
        arrow = f"service -> {router}" if self.to_router else f"{router} -> service"
        what = self.name
        if self.deletes is not None:
            what += f" delete cookie={self.deletes:#x}"
            what += f" ({cookies[self.deletes]})" if self.deletes in cookies else ""
        elif self.kind in (20, 21):
            what += f" xid={self.xid:#x}"
        return f"{self.at - origin:+.3f} s  {arrow}: {what}"


def openflow(pcap) -> list[Message]:
    """The OpenFlow messages of a capture of one router's control connection (tcp port
    6653), each direction's stream put back together, in the order each side sent them
    (a direction's messages in stream order; the two directions merged by time)."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import PcapReader
    streams: dict[bool, dict[int, tuple[float, bytes]]] = {True: {}, False: {}}
    first: dict[bool, int] = {}
    try:
        for frame in PcapReader(str(pcap)):
            if TCP not in frame or not bytes(frame[TCP].payload):
                continue
            to_router = frame[TCP].sport == OPENFLOW_PORT
            data = bytes(frame[TCP].payload)
            if IP in frame:
                data = data[:max(0, frame[IP].len - frame[IP].ihl * 4 - frame[TCP].dataofs * 4)]
            first.setdefault(to_router, frame[TCP].seq)
            offset = (frame[TCP].seq - first[to_router]) % 2**32
            streams[to_router].setdefault(offset, (float(frame.time), data))
    except (EOFError, OSError, ValueError):
        pass
    messages = []
    for to_router, segments in streams.items():
        data, times, end = b"", [], 0                  # times: (stream offset, when) per segment
        for offset in sorted(segments):
            at, chunk = segments[offset]
            if offset + len(chunk) <= end:
                continue                               # a retransmission
            chunk = chunk[max(0, end - offset):]
            times.append((len(data), at))
            data, end = data + chunk, max(end, offset + len(chunk))
        pos = 0
        while pos + 8 <= len(data):
            version, kind, length = data[pos], data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
            if version != 4 or length < 8:
                break                                  # not at a message boundary: stop here
            at = max(when for start, when in times if start <= pos)
            messages.append(Message(at, to_router, kind, int.from_bytes(data[pos + 4:pos + 8], "big"),
                                    data[pos:pos + length]))
            pos += length
    return sorted(messages, key=lambda m: m.at)


def stalled_move(ctx) -> Move:
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
        with moves.capture([point], ctx.tmp / "stall", filter=f"tcp port {OPENFLOW_PORT}") as cap:
            times["stopped"] = time.time()
            signal_recorded(vswitchd, signal.SIGSTOP)
            try:
                timer.start()
                report, done_at = do_move(moves, where["origin"])
                timer.join()                      # the whole stall, however early it returned
            finally:
                timer.cancel()
                resume()                          # never left stopped, whatever happened
        events = settled(moves, start)
        return Move(lab=moves, before=before, events=events, report=report, done_at=done_at,
                    stopped=times["stopped"], resumed=times["resumed"], stalled=where["pinger"],
                    origin=where["target"], target=where["origin"],
                    wire=openflow(cap.pcap(point)))
    return ctx.once("stalled-move", run)


@check("the move is reported done only once the router that cached the VM confirmed")
def confirmed_before_done(ctx) -> None:
    move = stalled_move(ctx)
    cookie, host = mover_cookie(ctx), move.stalled
    value = int(cookie[len("cookie="):-1], 16)
    cached = holders(move.before, cookie)
    said = sent(move.events).get(host, [])
    wire = [m for m in move.wire if m.kind in (14, 20, 21)]
    timeline = (f"{host}'s ovs-vswitchd stopped at +0.000 s, resumed at "
                f"{move.resumed - move.stopped:+.3f} s\nthe move {MOVER} {move.origin} -> "
                f"{move.target} was reported done at {move.done_at - move.stopped:+.3f} s\n"
                f"{host}'s OpenFlow connection meanwhile (flow-mods and barriers):\n" +
                ("\n".join("  " + m.describe(move.stopped, host, {value: f"{MOVER}'s entry"})
                           for m in wire) or "  none"))
    if unconfirmed(move.report):
        fail(move.events, "the move was not confirmed", seen=unconfirmed(move.report),
             evidence=timeline, hint="a barrier to a router that is not connected, or that "
                                     "never answers, keeps the move from being confirmed")
    if host not in cached:
        raise Failed(f"{host} did not cache {MOVER} before the move: the check could not "
                     "stall the router that matters", evidence=timeline, hint="tell your teacher")
    requests = [m for m in move.wire if m.to_router]
    if not requests and said:                      # the capture could not be read: the record
        requests = None
    deletes = ([i for i, m in enumerate(requests) if m.deletes == value] if requests is not None
               else [i for i, m in enumerate(said) if m.startswith("invalidate")])
    if not deletes:
        fail(move.events, f"{host}, which cached {MOVER}, was never told to invalidate it",
             evidence=timeline, hint="invalidate the moved VM's entry on every router that "
                                     "caches it, then confirm (TODO 1 to 3)")
    if requests is not None:
        replies = {m.xid: m.at for m in move.wire if not m.to_router and m.kind == 21}
        after = [m for m in requests[deletes[-1] + 1:] if m.kind == 20]
        before = [m for m in requests[:deletes[-1]] if m.kind == 20]
        confirmed = [replies[m.xid] for m in after if m.xid in replies]
        confirmed_in_time = bool(confirmed) and min(confirmed) <= move.done_at
    else:
        after = [m for m in said[deletes[-1] + 1:] if m == "barrier"]
        before = [m for m in said[:deletes[-1]] if m == "barrier"]
        confirmed_in_time = bool(after) and move.done_at >= move.resumed
    if move.done_at < move.resumed:
        fail(move.events, f"the move was reported done while {host} was stopped: it could not "
                          "have let go of the old entry",
             expected=f"done once {host} resumed and answered a barrier sent after the delete",
             seen=f"done {move.resumed - move.done_at:.2f} s before {host} resumed",
             evidence=timeline,
             hint="without a barrier nobody knows the router has let go of the old entry: "
                  "ask each router you invalidate for a barrier after the invalidate (TODO 3); "
                  "the service reports the move done when every barrier is answered")
    if not confirmed_in_time and before and not after:
        fail(move.events, f"{host}'s only barrier came before its invalidate: the move was "
                          "reported done on a confirmation of nothing",
             expected=f"{host}: invalidate, then barrier",
             seen=f"{host}: {', '.join(said)}", evidence=timeline,
             hint="a router answers a barrier once it has done everything sent before it, "
                  "and says nothing of what comes after: the barrier goes after the invalidate")
    if not confirmed_in_time:
        fail(move.events, f"no barrier after {host}'s invalidate was answered before the move "
                          "was reported done", seen=f"{host}: {', '.join(said)}",
             evidence=timeline, hint="confirm each invalidate with a barrier to the same "
                                     "router, after it (TODO 3)")
