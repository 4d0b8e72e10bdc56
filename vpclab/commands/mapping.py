"""vpclab mapping list|show|add|del|routes|route LAB ...: the mapping service's table and the
VPC route tables, through its API."""
import json

from vpclab.errors import EXIT_CHECK_FAILED, EXIT_OK, VpclabError
from vpclab.lab import Lab
from vpclab.report import table
from vpclab.results import ChangeReport, ChangeUnconfirmed


def add_parser(verbs):
    p = verbs.add_parser("mapping", help="list, show, add or delete mappings of a running lab",
                         description="The mapping service's table: (VPC, IP) -> ENI, MAC, host. "
                                     "`add` and `del` change it through the API (and the fabric: "
                                     "same as `vpclab vm add/del`).")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="every mapping")
    ls.add_argument("lab")
    ls.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="one mapping by VPC and IP")
    show.add_argument("lab")
    show.add_argument("vpc")
    show.add_argument("ip")
    add = sub.add_parser("add", help="add an ENI (creates its VM)")
    add_vm_arguments(add)
    rm = sub.add_parser("del", help="delete the ENI of a VM (removes the VM)")
    rm.add_argument("lab")
    rm.add_argument("vm")
    routes = sub.add_parser("routes", help="every VPC route table's routes: state, subnets, "
                                           "which routers cache them")
    routes.add_argument("lab")
    routes.add_argument("--json", action="store_true")
    route = sub.add_parser("route", help="add or delete a route of a VPC route table",
                           description="`route add LAB TABLE DEST TARGET` sends DEST (a CIDR) to "
                                       "TARGET (a VM of the table's VPC: its ENI); `route del LAB "
                                       "TABLE DEST` removes it. TABLE is a route table's name (or "
                                       "VPC/NAME). Returns once every router that cached that "
                                       "table confirmed.")
    route.add_argument("op", choices=["add", "del"])
    route.add_argument("lab")
    route.add_argument("table")
    route.add_argument("destination", help="a CIDR, e.g. 10.50.1.0/24")
    route.add_argument("target", nargs="?", help="add: the VM the route sends to, e.g. fw")
    return p


def add_vm_arguments(p) -> None:
    p.add_argument("lab")
    p.add_argument("name", help="display name of the new VM, e.g. ZIGI-VM3")
    p.add_argument("--vpc", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--ip", required=True)
    p.add_argument("--mac", help="default: generated")
    p.add_argument("--eni", help="default: generated")
    p.add_argument("--no-source-dest-check", dest="source_dest_check", action="store_false",
                   help="an appliance (NAT, firewall) that may send and receive for others")


def main(args) -> int:
    lab = Lab.attach(args.lab)
    if args.action == "list":
        rows = lab.mappings()
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            print(table(["VPC", "VNI", "IP", "MAC", "ENI", "ENI KEY", "HOST", "HOST IP"],
                        [[r["vpc"], r["vni"], r["ip"], r["mac"], r["eni"], r["eni_key"], r["host"], r["host_ip"]]
                         for r in rows]))
    elif args.action == "show":
        print(json.dumps(lab.mapping(args.vpc, args.ip), indent=1))
    elif args.action == "add":
        return print_change(lambda: lab.add_vm(args.name, vpc=args.vpc, host=args.host,
                                               ip=args.ip, mac=args.mac, eni=args.eni,
                                               source_dest_check=args.source_dest_check))[0]
    elif args.action == "routes":
        rows = lab.routes()
        print(json.dumps(rows, indent=1) if args.json else routes_table(rows))
    elif args.action == "route":
        return change_route(lab, args)
    else:
        return print_change(lambda: lab.delete_vm(args.vm))[0]
    return EXIT_OK


def routes_table(rows: list[dict]) -> str:
    if not rows:
        return "no VPC of this lab has subnets: no VPC router, no route tables"
    return table(["VPC", "TABLE", "SUBNETS", "DESTINATION", "TARGET", "STATE", "CACHED ON"],
                 [[r["vpc"], r["table"], ",".join(r["subnets"]) or "-", r["destination"],
                   r["target"] + (f" ({r['target_ip']})" if r["target_ip"] else ""), r["state"],
                   "preload" if r["cached_on"] is None else ",".join(r["cached_on"]) or "-"]
                  for r in rows])


def change_route(lab: Lab, args) -> int:
    if args.op == "add":
        if not args.target:
            raise VpclabError("say where the route goes: vpclab mapping route add LAB TABLE "
                              "DEST TARGET (a VM of the table's VPC)")
        return print_change(lambda: lab.add_route(args.table, args.destination, args.target))[0]
    if args.target:
        raise VpclabError("route del takes no target: vpclab mapping route del LAB TABLE DEST")
    return print_change(lambda: lab.delete_route(args.table, args.destination))[0]


def print_change(change) -> tuple[int, ChangeReport]:
    """Make a change, show it and who confirmed it; the exit code is 1 if some router did not."""
    try:
        report = change()
    except ChangeUnconfirmed as exc:
        print(exc.report)
        return EXIT_CHECK_FAILED, exc.report
    print(report)
    return EXIT_OK, report
