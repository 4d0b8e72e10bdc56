"""vpclab capture LAB --on NODE[:IFACE],... -- NODE CMD: capture while a command runs."""
from pathlib import Path

from vpclab.packets.capture import default_dir
from vpclab.errors import EXIT_OK, VpclabError
from vpclab.lab import Lab
from vpclab.packets.trace import TIMESTAMP


def add_parser(verbs):
    p = verbs.add_parser(
        "capture", help="tcpdump on nodes while a command runs in one of them",
        usage="vpclab capture LAB --on NODE[:IFACE][,...] [--filter EXPR] [-o DIR] -- NODE CMD...",
        description="Start tcpdump on each capture point (a VM's eth0 by default, or NODE:IFACE, "
                    "e.g. host1:eth0 for a host's underlay NIC), wait until each is listening, "
                    "run CMD inside the node named first in it, wait until traffic settles, and "
                    "write NODE.IFACE.pcap and .txt per point, capture.json, the lab's topology "
                    "and the mapping service's events of the window into DIR.",
        epilog="example: vpclab capture seed --on ZIGI-VM1,ZIGI-VM2,host1:eth0 -- "
               "ZIGI-VM1 ping -c 1 10.0.0.185")
    p.add_argument("lab")
    p.add_argument("--on", required=True, help="capture points: NODE[:IFACE][,NODE[:IFACE]...]")
    p.add_argument("--filter", default="", help="tcpdump filter, e.g. 'icmp or arp' (default: all)")
    p.add_argument("-o", "--output", type=Path, help="folder (default: captures/LAB-DATE)")
    p.set_defaults(command=[])
    return p


def main(args) -> int:
    lab = Lab.attach(args.lab)
    command = args.command
    if len(command) < 2:
        raise VpclabError("say where and what to run: -- NODE CMD, e.g. -- ZIGI-VM1 ping -c 1 10.0.0.185")
    node, command = command[0], command[1:]
    lab.command(node, *command)        # an unknown node is refused before anything is captured
    watch = [spec.strip() for spec in args.on.split(",") if spec.strip()]
    out = args.output or default_dir(args.lab)
    with lab.capture(watch, out, args.filter) as cap:
        done = lab.exec(node, *command, timeout=120)
    captured = cap.lines()
    print(f"{node}$ {' '.join(command)}  (exit {done.returncode})")
    print(done.stdout.rstrip())
    for spec, lines in captured.items():
        packets = sum(1 for line in lines if TIMESTAMP.match(line))   # -vv spans several lines
        print(f"\n== {spec}  ({packets} packets)")
        print("\n".join("   " + line for line in lines) or "   (nothing captured)")
    print(f"\nwritten to {out}/  (compare: vpclab compare {out} EXPECTED; "
          f"draw: vpclab diagram {out})")
    return EXIT_OK
