"""vpclab vm add|del LAB NAME: add or remove a VM (and its ENI mapping) on a running lab."""
from vpclab.commands.mapping import add_vm_arguments, print_change
from vpclab.lab import Lab


def add_parser(verbs):
    p = verbs.add_parser("vm", help="add or delete a VM on a running lab",
                         description="The lab's runner makes the change (one at a time): `add` "
                                     "registers the ENI with the mapping service (validated like "
                                     "a topology file) and plugs a new VM into its host's router; "
                                     "`del` removes both. Every affected router confirms.",
                         epilog="example: vpclab vm add seed ZIGI-VM3 --vpc ZIGI-VPC1 --host host1 "
                                "--ip 10.0.0.20")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_vm_arguments(sub.add_parser("add", help="add a VM"))
    rm = sub.add_parser("del", help="delete a VM")
    rm.add_argument("lab")
    rm.add_argument("name")
    return p


def main(args) -> int:
    lab = Lab.attach(args.lab)
    if args.action == "add":
        code, report = print_change(lambda: lab.add_vm(args.name, vpc=args.vpc, host=args.host,
                                                       ip=args.ip, mac=args.mac, eni=args.eni,
                                                       source_dest_check=args.source_dest_check))
        added = report.details
        print(f"  {args.name}: {args.ip} {added['mac']} {added['eni']} on {args.host}, "
              f"port {added['port_name']}")
        return code
    return print_change(lambda: lab.delete_vm(args.name))[0]
