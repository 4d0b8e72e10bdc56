"""vpclab move LAB VM HOST: migrate a running VM to another physical host."""
from vpclab.commands.mapping import print_change
from vpclab.lab import Lab


def add_parser(verbs):
    p = verbs.add_parser("move", help="migrate a running VM to another host",
                         description="The VM keeps its IP and MAC. The mapping service updates "
                                     "the mapping, invalidates exactly the routers that cached the "
                                     "old location (preload routers get the new entry) and waits "
                                     "for their confirmation; then the lab's runner re-attaches "
                                     "the VM's interface to the new host's router (if that fails, "
                                     "the move is rolled back and the command exits 2).",
                         epilog="example: vpclab move seed ZIGI-VM2 host1")
    p.add_argument("lab")
    p.add_argument("vm")
    p.add_argument("host")
    return p


def main(args) -> int:
    lab = Lab.attach(args.lab)
    code, report = print_change(lambda: lab.move(args.vm, args.host))
    print(f"  interface re-attached on {args.host} in {report.reattached_ms} ms")
    return code
