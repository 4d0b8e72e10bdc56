"""02: the learner's ARP responder runs in place of the mapping service's own.

The learner's `answer_arp(miss, mappings)` (starter/arp_responder.py) answers every ARP
miss of the lab's routers, as an unprivileged process. The checks run real pings and
captures: the seed's order at both VMs, silence for an unknown address, the right VPC's
MAC for an address two VPCs share, nothing flooded, the entry cached on the asking
router only.
"""
from __future__ import annotations

from ipaddress import IPv4Network

from vpclab.classroom import Failed, Variant, check
from vpclab.compare import compare_captures
from vpclab.pipeline import mapping_cookie

TITLE = "Write the virtual router's answer to an ARP miss"
WORK_FILES = ["arp_responder.py"]
LEARNER = "arp_responder.py"


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


def lab(ctx, which: str = "seed"):
    made = topology(ctx.variant) if which == "seed" else shared_lab(ctx.variant)
    ctx.file(LEARNER)                                   # missing: fails, saying so
    return ctx.lab(made, key=which, mode="on-demand", learner={"answer_arp": ctx.work / LEARNER})


def learner_trouble(lab) -> str:
    """What the learner's code did wrong, from the mapping service's log ('' if nothing)."""
    errors = [e for e in lab.state.events.read() if e["event"] == "learner_error"]
    return errors[-1]["message"] if errors else ""


def fail_with_code(lab, summary: str, **said) -> None:
    trouble = learner_trouble(lab)
    if trouble:
        raise Failed(summary + ": your answer_arp failed", seen=trouble.splitlines()[0],
                     evidence=trouble, hint="fix what the traceback points at")
    raise Failed(summary, **said)


def seed_ping(ctx):
    def run():
        seed = lab(ctx)
        with seed.capture(["ZIGI-VM1", "ZIGI-VM2"], ctx.tmp / "seed", filter="icmp or arp") as cap:
            done = seed.exec("ZIGI-VM1", "ping", "-c", "1", "-W", "2", seed.address("ZIGI-VM2"))
        return seed, cap, done
    return ctx.once("seed-ping", run)


@check("the first ping has the seed's order at both VMs")
def seed_order(ctx) -> None:
    seed, cap, done = seed_ping(ctx)
    for vm in ("ZIGI-VM1", "ZIGI-VM2"):
        expected = ctx.tmp / f"{vm}.expected.txt"
        expected.write_text(_expected(ctx.variant)[vm])
        point = compare_captures(cap.pcap(vm), expected).points[0]
        if not point.matches:
            hint = ("ZIGI-VM1's ARP request got no reply: does answer_arp return one (see "
                    "TODO 2 and 3)?" if not done.ok else "; ".join(point.explain()))
            fail_with_code(seed, f"{vm} did not see the seed's first ping",
                           evidence=point.side_by_side("the seed's order", f"{vm}'s capture"),
                           hint=hint)


def _expected(variant: Variant) -> dict[str, str]:
    vms = topology(variant)["vms"]
    one, two = vms["ZIGI-VM1"], vms["ZIGI-VM2"]
    return {"ZIGI-VM1": f"ARP request who-has {two['ip']} tell {one['ip']}\n"
                        f"ARP reply {two['ip']} is-at {two['mac']}\n"
                        f"ICMP echo request {one['ip']} > {two['ip']}\n"
                        f"ICMP echo reply {two['ip']} > {one['ip']}\n",
            "ZIGI-VM2": f"ICMP echo request {one['ip']} > {two['ip']}\n"
                        f"ARP request who-has {one['ip']} tell {two['ip']}\n"
                        f"ARP reply {one['ip']} is-at {one['mac']}\n"
                        f"ICMP echo reply {two['ip']} > {one['ip']}\n"}


@check("an address no VM has gets no answer at all")
def unknown_is_silent(ctx) -> None:
    seed = lab(ctx)
    network = IPv4Network(topology(ctx.variant)["vpcs"]["ZIGI-VPC1"]["cidr"])
    taken = {vm["ip"] for vm in topology(ctx.variant)["vms"].values()}
    nobody = next(str(a) for a in reversed(list(network.hosts())) if str(a) not in taken)
    with seed.capture(["ZIGI-VM1"], ctx.tmp / "unknown", filter="arp") as cap:
        seed.exec("ZIGI-VM1", "ping", "-c", "1", "-W", "1", nobody)
    replies = [line for line in cap.lines()["ZIGI-VM1"] if "Reply" in line]
    if learner_trouble(seed):
        fail_with_code(seed, "answer_arp did not run to the end")
    if replies:
        raise Failed(f"ZIGI-VM1 asked for {nobody}, which no VM has, and got an answer",
                     seen=replies[0], hint="an address nobody has must get no answer: return None")


def shared_ping(ctx):
    def run():
        shared = lab(ctx, "shared")
        watch = ["OTHER-VM1", "ZIGI-VM3", "OTHER-VM3", "ZIGI-VM2", "OTHER-VM2"]
        with shared.capture(watch, ctx.tmp / "shared", filter="arp or icmp") as cap:
            done = shared.exec("OTHER-VM1", "ping", "-c", "1", "-W", "2", shared.address("OTHER-VM2"))
        return shared, cap, done
    return ctx.once("shared-ping", run)


@check("an address two VPCs share is answered with the asking VPC's MAC")
def right_vpc(ctx) -> None:
    shared, cap, done = shared_ping(ctx)
    nodes = shared.nodes()
    mine, theirs = nodes["OTHER-VM2"]["mac"], nodes["ZIGI-VM2"]["mac"]
    replies = [line for line in cap.lines()["OTHER-VM1"] if "Reply" in line]
    if not replies:
        fail_with_code(shared, "OTHER-VM1's ARP got no reply", hint="is the address looked up "
                       "in the asking VM's own VPC?")
    if theirs in replies[0] or mine not in replies[0]:
        raise Failed("OTHER-VM1 was given the wrong MAC", expected=f"is-at {mine} (OTHER-VM2, "
                     "its own VPC)", seen=replies[0],
                     hint=f"{theirs} is ZIGI-VM2's, in another VPC with the same address: the "
                          "VPC decides, not the address alone")


@check("nothing is flooded: VMs beside the asker see no ARP request")
def not_flooded(ctx) -> None:
    shared, cap, _ = shared_ping(ctx)
    lines = cap.lines()
    seen = {vm: [l for l in lines[vm] if "Request" in l and "tell" in l
                 and shared.address("OTHER-VM1") in l.split("tell")[1]]
            for vm in ("ZIGI-VM3", "OTHER-VM3", "ZIGI-VM2", "OTHER-VM2")}
    flooded = {vm: found for vm, found in seen.items() if found}
    if learner_trouble(shared):
        fail_with_code(shared, "answer_arp did not run to the end")
    if flooded:
        vm, found = next(iter(flooded.items()))
        raise Failed(f"OTHER-VM1's ARP request reached {', '.join(flooded)}", seen=found[0],
                     hint="a VPC never floods: the router answers the ARP itself, to the port "
                          "it came from")


@check("the entry is cached on the asking router only")
def cached_where_asked(ctx) -> None:
    shared, _, done = shared_ping(ctx)
    vni = shared_lab(ctx.variant)["vpcs"]["OTHER-VPC"]["vni"]
    from ipaddress import IPv4Address
    cookie = f"cookie={mapping_cookie(vni, IPv4Address(shared.address('OTHER-VM2'))):#x},"
    holders = [host for host in shared.hosts if cookie in _flows(shared, host)]
    if holders != ["host1"]:
        fail_with_code(shared, f"OTHER-VM2's entry is cached on {', '.join(holders) or 'no router'}",
                       expected="host1 only: the router whose VM asked",
                       seen=", ".join(holders) or "nowhere",
                       hint="cache on miss['router'] alone: the mapping service caches an "
                            "entry where it is used, nowhere else")


@check("a second ARP for the address is answered by the router itself", hidden=True)
def router_answers_next_time(ctx) -> None:
    seed, _, _ = seed_ping(ctx)
    asked = lambda: sum(e["event"] == "learner_answer" for e in seed.state.events.read())  # noqa: E731
    before = asked()
    seed.exec("ZIGI-VM1", "ip", "neigh", "flush", "all")
    if not seed.ping("ZIGI-VM1", "ZIGI-VM2"):
        fail_with_code(seed, "the second ping failed")
    if asked() != before:
        raise Failed("the second ARP went to the mapping service again",
                     hint="cache the entry on the asking router: it then answers by itself")


def _flows(lab, host: str) -> str:
    directory = lab.state.host_dir(lab.nodes()[host]["node"])
    return lab.exec(host, "ovs-ofctl", "-O", "OpenFlow13", "dump-flows",
                    f"unix:{directory}/br-int.mgmt").stdout
