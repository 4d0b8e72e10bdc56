"""vpclab down LAB|--all: remove labs and everything they created; idempotent."""
from vpclab.errors import EXIT_OK, VpclabError
from vpclab.lab import Lab
from vpclab.running.state import list_labs


def add_parser(verbs):
    p = verbs.add_parser("down", help="stop a lab and remove everything it created",
                         description="Stop LAB and remove its namespaces, processes and state, "
                                     "by the records it kept (also after a crash). Idempotent.")
    p.add_argument("lab", nargs="?", help="lab name (see `vpclab status`)")
    p.add_argument("--all", action="store_true", help="every vpclab lab on this machine")
    return p


def main(args) -> int:
    if args.all == bool(args.lab):
        raise VpclabError("name one lab (`vpclab down seed`) or use --all")
    for name in list_labs() if args.all else [args.lab]:
        removed = Lab.remove(name)
        print(f"lab {name!r} {'removed' if removed else 'was not running (nothing to remove)'}")
    if args.all and not list_labs():
        print("no vpclab labs remain")
    return EXIT_OK
