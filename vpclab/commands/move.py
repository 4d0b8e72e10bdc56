"""vpclab move LAB VM HOST: migrate a running VM to another physical host."""
from vpclab import lifecycle, live
from vpclab.commands.mapping import print_change


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
    state = lifecycle.running_lab(args.lab)
    result = live.move_vm(state, args.vm, args.host)
    code = print_change(result)
    print(f"  interface re-attached on {args.host} in {result['reattached_ms']} ms")
    return code
