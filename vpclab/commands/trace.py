"""vpclab trace LAB VM --to ADDRESS [...]: one packet through a real router, in words."""
import argparse
import json

from vpclab.errors import EXIT_OK, VpclabError
from vpclab.lab import Lab
from vpclab.inside.probe import PROTOCOLS


def add_parser(verbs):
    p = verbs.add_parser("trace", help="a packet through a real virtual router, explained",
                         description="Build the packet VM would send (its own port, MAC and IP "
                                     "unless forged), run it through its host's router with "
                                     "ofproto/trace (nothing is sent) and say each stage and the "
                                     "verdict: delivered, sent through the tunnel, sent to the "
                                     "mapping service (a miss), answered locally, flooded, or dropped "
                                     "and why; a flow vpclab did not install is named as such. The "
                                     "VM's own routes decide first: with no route, or to its own "
                                     "address, it sends nothing. "
                                     "With --from-host, the packet as it arrives from that host's "
                                     "tunnel at the router of ADDRESS's host.",
                         epilog="examples:\n"
                                "  vpclab trace seed ZIGI-VM1 --to 10.0.0.185\n"
                                "  vpclab trace seed ZIGI-VM1 --to 10.0.0.185 --src 10.0.0.99\n"
                                "  vpclab trace seed --from-host host1 --to 10.0.0.185",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lab")
    p.add_argument("vm", nargs="?", help="the VM that sends (with --from-host: the one the "
                                         "packet claims to come from, whose routes pick its next "
                                         "hop; default: that host's VM)")
    p.add_argument("--to", required=True, metavar="ADDRESS", help="an IP, or a VM's name")
    p.add_argument("--proto", default="icmp", help=f"{PROTOCOLS} (default icmp)")
    p.add_argument("--src", metavar="IP", help="forge the source IP")
    p.add_argument("--src-mac", metavar="MAC", help="forge the source MAC")
    p.add_argument("--from-host", metavar="HOST", help="trace on the receiving side: from this "
                                                        "host's tunnel")
    p.add_argument("--raw", action="store_true", help="also print ofproto/trace's own output")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(args) -> int:
    if args.vm is None and args.from_host is None:
        raise VpclabError("say which VM sends (vpclab trace LAB VM --to ADDRESS), or which host's "
                          "tunnel the packet comes from (--from-host HOST)")
    lab = Lab.attach(args.lab)
    result = lab.trace(args.vm, args.to, proto=args.proto, src=args.src, src_mac=args.src_mac,
                       from_host=args.from_host)
    print(json.dumps(result.to_json(), indent=1) if args.json else result.render(raw=args.raw))
    return EXIT_OK
