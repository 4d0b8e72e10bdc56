"""vpclab mapping list|show|add|del LAB ...: the mapping service's table, through its API."""
import json

from vpclab.errors import EXIT_CHECK_FAILED, EXIT_OK
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
    return p


def add_vm_arguments(p) -> None:
    p.add_argument("lab")
    p.add_argument("name", help="display name of the new VM, e.g. ZIGI-VM3")
    p.add_argument("--vpc", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--ip", required=True)
    p.add_argument("--mac", help="default: generated")
    p.add_argument("--eni", help="default: generated")


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
                                               ip=args.ip, mac=args.mac, eni=args.eni))[0]
    else:
        return print_change(lambda: lab.delete_vm(args.vm))[0]
    return EXIT_OK


def print_change(change) -> tuple[int, ChangeReport]:
    """Make a change, show it and who confirmed it; the exit code is 1 if some router did not."""
    try:
        report = change()
    except ChangeUnconfirmed as exc:
        print(exc.report)
        return EXIT_CHECK_FAILED, exc.report
    print(report)
    return EXIT_OK, report
