"""01: predict the first ping, then capture it.

The learner writes what tcpdump will show at ZIGI-VM1 and at ZIGI-VM2 for the first
`ping -c 1` between them; the check brings up the lab (this student's addresses),
captures the real ping at both VMs and compares, packet by packet, explaining the
first wrong line in a VPC's terms.
"""
from __future__ import annotations

from pathlib import Path

from vpclab.classroom import Failed, Variant, check
from vpclab.packets.compare import compare_captures

TITLE = "Predict the first ping between two VMs, then capture it"
WORK_FILES = ["ZIGI-VM1.txt", "ZIGI-VM2.txt"]
VMS = ["ZIGI-VM1", "ZIGI-VM2"]


def topology(variant: Variant) -> dict:
    return variant.seed_lab("ex01")


def solution(variant: Variant) -> dict[str, str]:
    """The right predictions for this student (the teacher's, and the tests')."""
    return {f"{vm}.txt": trace for vm, trace in variant.seed_first_ping().items()}


def first_ping(ctx, mode: str = "on-demand"):
    """The real first ping, captured at both VMs (once per run and mode)."""
    def capture():
        lab = ctx.lab(topology(ctx.variant), key=mode, mode=mode)
        with lab.capture(VMS, ctx.tmp / mode, filter="icmp or arp") as cap:
            lab.exec("ZIGI-VM1", "ping", "-c", "1", lab.address("ZIGI-VM2"))
        return cap
    return ctx.once(f"capture-{mode}", capture)


def prediction(ctx, vm: str) -> Path:
    text = ctx.file(f"{vm}.txt")
    packets = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not packets:
        raise Failed(f"your prediction for {vm} is empty",
                     hint=f"write in {vm}.txt the packets you expect {vm}'s tcpdump to show, one "
                          "per line, in order (the comments in the file show the form)")
    if any("*" in line for line in packets):
        raise Failed(f"your prediction for {vm} uses '*'",
                     hint="a prediction says exactly what arrives: write every address and MAC")
    return ctx.copy(f"{vm}.txt")


def judge(ctx, vm: str, mode: str = "on-demand") -> None:
    expected = prediction(ctx, vm)
    cap = first_ping(ctx, mode)
    point = compare_captures(cap.pcap(vm), expected).points[0]
    if point.matches:
        return
    diff = point.first_difference
    said = point.expected[diff] if diff < len(point.expected) else "(nothing more)"
    seen = point.actual[diff] if diff < len(point.actual) else "(nothing more)"
    raise Failed(f"packet #{diff + 1} at {vm} is not what you predicted",
                 expected=f"{said}   (your prediction)", seen=seen,
                 evidence=point.side_by_side("your prediction", f"{vm}'s capture"),
                 hint=why(vm, said, seen, ctx))


def why(vm: str, said: str, seen: str, ctx) -> str:
    """The likeliest misunderstanding behind a wrong line, in the seed's terms."""
    vms = topology(ctx.variant)["vms"]
    if vm == "ZIGI-VM2" and said.startswith("ARP request") and seen.startswith("ICMP echo request"):
        return ("ZIGI-VM1's ARP request never reached ZIGI-VM2: a VPC has no broadcast. The "
                "virtual router on ZIGI-VM1's host answered it itself, from the mapping service. "
                "So ZIGI-VM2's first packet is the ICMP request; think about what ZIGI-VM2 needs "
                "before it can reply")
    if said.startswith("ICMP echo reply") and seen.startswith("ARP request"):
        return ("Linux does not learn a neighbour from an incoming IP packet: to reply, a VM "
                "must first know the sender's MAC")
    if said.startswith("ARP reply") and seen.startswith("ARP reply"):
        return ("who answers the ARP, and with which MAC? The virtual router answers with the "
                "MAC of the ENI that owns the address (`vpclab mapping list` shows them); here "
                + ", ".join(f"{name} is {vm_['ip']} at {vm_['mac']}" for name, vm_ in vms.items()))
    wrong = [f"{name}'s address is {v['ip']}" for name, v in vms.items()
             if v["ip"] not in said and v["ip"] in seen]
    if wrong:
        return "the addresses are this lab's own (`vpclab lab start 1` printed them): " + "; ".join(wrong)
    return "compare the two columns: which packet must come first, and who sends it?"


@check("ZIGI-VM1 sees what you predicted")
def vm1_as_predicted(ctx) -> None:
    judge(ctx, "ZIGI-VM1")


@check("ZIGI-VM2 sees what you predicted")
def vm2_as_predicted(ctx) -> None:
    judge(ctx, "ZIGI-VM2")


@check("your predictions hold when every mapping is pushed up front (preload)", hidden=True)
def predictions_hold_in_preload(ctx) -> None:
    for vm in VMS:
        judge(ctx, vm, mode="preload")
