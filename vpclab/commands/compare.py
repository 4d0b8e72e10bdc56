"""vpclab compare CAPTURE EXPECTED: does a capture show the documented trace?"""
from pathlib import Path

from vpclab.packets.compare import compare_captures
from vpclab.errors import EXIT_CHECK_FAILED, EXIT_OK
from vpclab.model.validation import load_topology

NEEDS_ROOT = False


def add_parser(verbs):
    p = verbs.add_parser(
        "compare", help="compare captures with expected traces (no lab needed)",
        description="Compare CAPTURE with EXPECTED: each a pcap, a tcpdump -nn text file, or a "
                    "folder of them named NODE[.IFACE].pcap/.txt. Packets are compared in order "
                    "per capture point; the order across points is free. Timestamps, ids and "
                    "lengths are ignored; IPv6/LLDP noise is dropped. Expected lines may use '*' "
                    "and VM names (ZIGI-VM1, ZIGI-VM1.mac) for addresses. "
                    "Exit 0 match, 1 differ, 2 unreadable input.",
        epilog="example: vpclab compare captures/seed-demo-20261126-120000 traces/seed")
    p.add_argument("capture", type=Path)
    p.add_argument("expected", type=Path)
    p.add_argument("--topology", type=Path,
                   help="topology for VM-name aliases (default: CAPTURE/topology.yaml if present)")
    p.add_argument("--keep-noise", action="store_true", help="keep IPv6 ND/MLD, LLDP packets")
    return p


def main(args) -> int:
    topology = load_topology(args.topology) if args.topology else None
    result = compare_captures(args.capture, args.expected, topology, args.keep_noise)
    print(result)
    return EXIT_OK if result.match else EXIT_CHECK_FAILED
