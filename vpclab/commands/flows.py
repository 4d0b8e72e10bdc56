"""vpclab flows LAB HOST [--json] [--raw]: a router's flow table in the words of the VPC."""
import json

from vpclab.errors import EXIT_OK
from vpclab.inside.explain_flows import render
from vpclab.lab import Lab
from vpclab.model.names import check_display_name
from vpclab.inside.router_view import flows


def add_parser(verbs):
    p = verbs.add_parser("flows", help="a virtual router's flows, explained",
                         description="HOST's virtual router (br-int) by pipeline stage: CLASSIFY, "
                                     "ARP, FORWARD, CHECK, DELIVER; each flow in one line of words "
                                     "beside its packet count. A flow vpclab never installs is shown "
                                     "raw, marked unexplained.")
    p.add_argument("lab")
    p.add_argument("host", help="a host's name, e.g. host1")
    p.add_argument("--raw", action="store_true", help="the OpenFlow text under each line")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(args) -> int:
    check_display_name(args.host, "host name")
    lab = Lab.attach(args.lab)
    view, lines = flows(lab, args.host)          # what lab.flows returns, with the names it used
    if args.json:
        print(json.dumps({"lab": lab.name, "host": args.host, "host_ip": view.host_ip,
                          "encap": view.encap, "mode": view.mode,
                          "flows": [line.to_json() for line in lines]}, indent=1))
    else:
        print(render(lines, view, raw=args.raw))
    return EXIT_OK
