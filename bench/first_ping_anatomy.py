"""Issue 14, point 3: where an on-demand first ping's time goes (needs root):

    .venv/bin/python bench/first_ping_anatomy.py [--labs 3] [--mode on-demand]

The seed lab, fresh each time (cold caches and ARP). tcpdump runs on both VMs' eth0 and on
both hosts' mgmt0 (the OpenFlow connection to the mapping service, which tcpdump decodes),
all with the kernel's timestamps of one clock. One ping from ZIGI-VM1 to ZIGI-VM2, then each
mapping-service round trip of it is cut into three parts:

  router:   the packet the VM sent (its eth0) -> the router's PACKET_IN on the wire;
  service:  that PACKET_IN -> the service's last answer message (FLOW_MOD / PACKET_OUT) on
            the wire (os-ken's receive and parse, the decision, the encode, the send);
  apply:    that last answer -> the packet the router then delivers at a VM's eth0
            (the flow-mods applied, the packet-out run through the tables).

Round trip 1 is ZIGI-VM1's ARP for ZIGI-VM2 (host1's router asks: answered at ZIGI-VM1);
round trip 2 is the receive-side check of the ICMP request (host2's router asks: delivered at
ZIGI-VM2). `other` is the rest of the ping: the tunnel, the receiving VM's ARP and the reply,
which the mapping service is not asked about. Prints the median of each part over the labs;
`anatomy()` returns them for bench_lab.py.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import vpclab  # noqa: E402
from versus_peer import parse_rtts, seed_dict, stop, wait_for_line  # noqa: E402

POINTS = [("ZIGI-VM1", "eth0"), ("ZIGI-VM2", "eth0"), ("host1", "mgmt0"), ("host2", "mgmt0")]
STAMP = re.compile(r"^(\d+\.\d+) ")
OPENFLOW = re.compile(r"type (PACKET_IN|PACKET_OUT|FLOW_MOD|BARRIER_REQUEST|METER_MOD)")
PARTS = ("router", "service", "apply")


def capture(lab: vpclab.Lab, scratch: Path) -> tuple[list, dict[tuple[str, str], Path]]:
    """Start tcpdump at every point; return (processes, pcaps) once each is listening."""
    running, pcaps = [], {}
    for node, iface in POINTS:
        pcap = scratch / f"{node}-{iface}.pcap"
        proc = lab.popen(node, "tcpdump", "-nn", "-U", "--immediate-mode", "-Z", "root",
                         "-i", iface, "-w", str(pcap), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
        running.append(proc)
        wait_for_line(proc, proc.stderr, b"listening on", f"tcpdump on {node} {iface}")
        pcaps[(node, iface)] = pcap
    return running, pcaps


def read(pcap: Path) -> list[tuple[float, str]]:
    """(timestamp, text) per packet, tcpdump's decoded continuation lines joined on."""
    out = subprocess.run(["tcpdump", "-nn", "-tt", "-v", "-r", str(pcap)], capture_output=True,
                         text=True, timeout=30).stdout
    packets: list[tuple[float, str]] = []
    for line in out.splitlines():
        stamp = STAMP.match(line)
        if stamp:
            packets.append((float(stamp.group(1)), line))
        elif packets:
            packets[-1] = (packets[-1][0], packets[-1][1] + " " + line.strip())
    return packets


def round_trip(asked: float, openflow: list[tuple[float, str]],
               delivered: float) -> dict[str, float] | None:
    """The three parts of one round trip: the first PACKET_IN after `asked`, the last answer
    segment before `delivered`."""
    packet_in = next((t for t, text in openflow if t >= asked and "PACKET_IN" in text), None)
    answers = [t for t, text in openflow if packet_in is not None and packet_in <= t <= delivered
               and re.search(r"type (FLOW_MOD|PACKET_OUT)", text)]
    if packet_in is None or not answers:
        return None
    return {"router": (packet_in - asked) * 1000, "service": (answers[-1] - packet_in) * 1000,
            "apply": (delivered - answers[-1]) * 1000}


def first(packets: list[tuple[float, str]], text: str, after: float = 0.0) -> float | None:
    return next((t for t, line in packets if t >= after and text in line), None)


def one_lab(index: int, mode: str, scratch: Path) -> dict:
    with vpclab.Lab(seed_dict(), name=f"b14-fpa{index}", mode=mode) as lab:
        sender, receiver = (str(lab.topology.vms[vm].ip) for vm in ("ZIGI-VM1", "ZIGI-VM2"))
        running, pcaps = capture(lab, scratch)
        try:
            out = lab.exec("ZIGI-VM1", "ping", "-n", "-c", "1", "-W", "2", receiver).stdout
            time.sleep(0.3)         # the reply is in; let every tcpdump write its last packet
        finally:
            for proc in running:
                stop(proc)
                proc.stderr.close()
        vm1, vm2 = read(pcaps[("ZIGI-VM1", "eth0")]), read(pcaps[("ZIGI-VM2", "eth0")])
        of1, of2 = read(pcaps[("host1", "mgmt0")]), read(pcaps[("host2", "mgmt0")])
    rtt = parse_rtts(out)
    arp_asked = first(vm1, f"who-has {receiver} tell {sender}")
    arp_answered = first(vm1, f"Reply {receiver} is-at", arp_asked or 0)
    icmp_sent = first(vm1, "ICMP echo request", arp_answered or 0)
    icmp_delivered = first(vm2, "ICMP echo request")
    result = {"first": rtt[0] if rtt else None, "misses": None, "arp": None, "check": None}
    if None in (arp_asked, arp_answered, icmp_sent, icmp_delivered):
        return result
    result["arp"] = round_trip(arp_asked, of1, arp_answered)
    result["check"] = round_trip(icmp_sent, of2, icmp_delivered)
    result["misses"] = sum(1 for _, text in of1 + of2 if "PACKET_IN" in text)
    return result


def anatomy(labs: int = 3, mode: str = "on-demand", say=print) -> dict:
    """Run `labs` fresh seed labs; the median of each part of each round trip (ms)."""
    with tempfile.TemporaryDirectory(prefix="vpclab-bench-fpa-") as tmp:
        scratch = Path(tmp)
        scratch.chmod(0o755)
        runs = []
        for i in range(labs):
            run_dir = scratch / str(i)
            run_dir.mkdir(mode=0o755)
            runs.append(one_lab(i, mode, run_dir))
            say(f"  lab {i + 1}: " + describe(runs[-1]))
    return summarise(runs)


def describe(run: dict) -> str:
    parts = [f"first ping {run['first']} ms, {run['misses']} packet-ins"]
    for trip in ("arp", "check"):
        if run[trip]:
            parts.append(f"{trip}: " + ", ".join(f"{p} {run[trip][p]:.2f}" for p in PARTS))
    return "; ".join(parts)


def summarise(runs: list[dict]) -> dict:
    med = lambda values: statistics.median(values) if values else None   # noqa: E731
    out = {"labs": len(runs), "first": med([r["first"] for r in runs if r["first"]])}
    for trip in ("arp", "check"):
        out[trip] = {p: med([r[trip][p] for r in runs if r[trip]]) for p in PARTS}
    trips = [sum(r[t][p] for t in ("arp", "check") for p in PARTS) for r in runs
             if r["arp"] and r["check"] and r["first"]]
    out["round_trips"] = med(trips)
    out["other"] = med([r["first"] - t for r, t in zip(
        [r for r in runs if r["arp"] and r["check"] and r["first"]], trips)])
    return out


def lines(summary: dict) -> list[str]:
    """The summary as printable lines (bench_lab.py puts them in RESULTS.md)."""
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"   # noqa: E731
    out = [f"on-demand first ping, anatomy (median of {summary['labs']} fresh seed labs): "
           f"first ping {fmt(summary['first'])} ms = two mapping-service round trips "
           f"{fmt(summary['round_trips'])} ms + the rest {fmt(summary['other'])} ms"]
    for trip, what in (("arp", "ZIGI-VM1's ARP (host1 asks)"),
                       ("check", "receive check of the ICMP request (host2 asks)")):
        out.append(f"  {what}: " + ", ".join(
            f"{p} {fmt(summary[trip][p])} ms" for p in PARTS))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labs", type=int, default=3, help="fresh seed labs (default 3)")
    parser.add_argument("--mode", default="on-demand", choices=["on-demand"],
                        help="mapping mode (only on-demand asks the service)")
    args = parser.parse_args()
    for line in lines(anatomy(args.labs, args.mode)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
