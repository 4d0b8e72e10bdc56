"""vpclab demo: the seed, end to end.

Brings up topologies/seed.yaml, captures on ZIGI-VM1 and ZIGI-VM2 as the seed
does (`tcpdump -nn -i eth0 icmp or arp`), runs `ping -c 1 10.0.0.185` from
ZIGI-VM1, removes the lab, compares both captures with traces/seed/ (side by
side, with a verdict on the order) and draws the sequence diagram.
"""
import re
import time
from pathlib import Path

from vpclab.packets.capture import default_dir
from vpclab.errors import EXIT_CHECK_FAILED, EXIT_OK
from vpclab.lab import Lab
from vpclab.report import comparison, print_phase
from vpclab.model.topology import MAPPING_MODES

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "topologies" / "seed.yaml"
TRACES = REPO / "traces" / "seed"
WATCH = ["ZIGI-VM1", "ZIGI-VM2"]
PING = ["ping", "-c", "1", "10.0.0.185"]
SEED_TTL = 255           # the seed's ping: "64 bytes from 10.0.0.185: icmp_seq=1 ttl=255"


def add_parser(verbs):
    p = verbs.add_parser("demo", help="the seed end to end: first ping, captures, verdict",
                         description=__doc__)
    p.add_argument("--mode", choices=MAPPING_MODES, help="mapping mode (default: on-demand)")
    p.add_argument("--name", default="seed-demo", help="lab name (default: seed-demo)")
    p.add_argument("-o", "--output", type=Path,
                   help="folder for captures and diagram (default: captures/seed-demo-DATE)")
    return p


def main(args) -> int:
    print(f"vpclab demo: the seed's first ping, {SEED.relative_to(REPO)}\n", flush=True)
    start = time.monotonic()
    with Lab(SEED, name=args.name, mode=args.mode).start(on_phase=print_phase) as lab:
        print(f"lab {lab.name!r} ready in {time.monotonic() - start:.2f} s "
              f"(mapping {lab.topology.mapping_mode})\n", flush=True)
        with lab.capture(WATCH, args.output or default_dir("seed-demo"), "icmp or arp") as cap:
            ping = lab.exec("ZIGI-VM1", *PING)
    print("ZIGI-VM1$ " + " ".join(PING) + "\n" + ping.stdout)
    ttl = re.search(r" ttl=(\d+) ", ping.stdout)
    if ttl:
        same = "as in the seed" if int(ttl.group(1)) == SEED_TTL else f"the seed's was {SEED_TTL}"
        print(f"   ttl={ttl.group(1)}: ZIGI-VM2's default TTL, {same} (a VPC's router does not "
              "decrement it)\n")
    result = cap.compare(TRACES)
    captures = cap.lines()
    for point in result.points:
        vm = point.point.split(":")[0]
        print(f"== {vm}: tcpdump -nn -i eth0 icmp or arp")
        print("\n".join("   " + line for line in captures[vm]) or "   (nothing captured)")
        print(comparison(point, ("seed (documented)", "this lab")) + "\n")
    drawn = cap.diagram()
    print(f"lab {lab.name!r} removed; captures in {cap.dir}/")
    print(f"sequence diagram: {drawn[0]} (mermaid: {drawn[1]})")
    if result.match:
        print("\nverdict: MATCH. Both captures have the seed's order: ZIGI-VM2 saw the ICMP "
              "request before any ARP,\nbecause the virtual router answered ZIGI-VM1's ARP "
              "itself from the mapping service.")
        return EXIT_OK
    print("\nverdict: DIFFERENT from the seed (see the marked lines above)")
    return EXIT_CHECK_FAILED
