"""vpclab demo: the seed, end to end.

Brings up topologies/seed.yaml, captures on ZIGI-VM1 and ZIGI-VM2 as the seed
does (`tcpdump -nn -i eth0 icmp or arp`), runs `ping -c 1 10.0.0.185` from
ZIGI-VM1, prints both captures beside the seed's, gives a verdict on the
order, and removes the lab.
"""
import tempfile
import time
from pathlib import Path

from vpclab import lifecycle
from vpclab.capture import capture_during
from vpclab.report import print_phase
from vpclab.errors import EXIT_CHECK_FAILED, EXIT_OK
from vpclab.topology import MAPPING_MODES
from vpclab.trace import compare

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "topologies" / "seed.yaml"
TRACES = REPO / "traces" / "seed"
WATCH = ["ZIGI-VM1", "ZIGI-VM2"]
PING = ["ping", "-c", "1", "10.0.0.185"]


def add_parser(verbs):
    p = verbs.add_parser("demo", help="the seed end to end: first ping, captures, verdict",
                         description=__doc__)
    p.add_argument("--mode", choices=MAPPING_MODES, help="mapping mode (default: on-demand)")
    p.add_argument("--name", default="seed-demo", help="lab name (default: seed-demo)")
    p.add_argument("-o", "--output", type=Path,
                   help="keep the captures in this folder (default: a temporary one)")
    return p


def main(args) -> int:
    print(f"vpclab demo: the seed's first ping, {SEED.relative_to(REPO)}\n", flush=True)
    start = time.monotonic()
    state, plan = lifecycle.up(SEED, args.name, args.mode, on_phase=print_phase)
    print(f"lab {state.name!r} ready in {time.monotonic() - start:.2f} s "
          f"(mapping {plan.topology.mapping_mode})\n", flush=True)
    try:
        out = args.output or Path(tempfile.mkdtemp(prefix="vpclab-demo-"))
        ping, captures = capture_during(state, WATCH, out, "ZIGI-VM1", PING)
    finally:
        lifecycle.down(state.name)
    print("ZIGI-VM1$ " + " ".join(PING) + "\n" + ping.stdout)
    verdicts = [show(vm, captures[vm]) for vm in WATCH]
    if args.output:
        print(f"captures kept in {out}/")
    print(f"lab {state.name!r} removed")
    if all(verdicts):
        print("\nverdict: MATCH. Both captures have the seed's order: ZIGI-VM2 saw the ICMP "
              "request before any ARP,\nbecause the virtual router answered ZIGI-VM1's ARP "
              "itself from the mapping service.")
        return EXIT_OK
    print("\nverdict: DIFFERENT from the seed (see the marked lines above)")
    return EXIT_CHECK_FAILED


def show(vm: str, lines: list[str]) -> bool:
    documented = (TRACES / f"{vm}.txt").read_text().splitlines()
    print(f"== {vm}: tcpdump -nn -i eth0 icmp or arp")
    print("\n".join("   " + line for line in lines) or "   (nothing captured)")
    result = compare(documented, lines)
    print(result.side_by_side("seed (documented)", "this lab"))
    print(f"   {'same packets, same order' if result.matches else 'differs'}\n")
    return result.matches
