"""vpclab validate FILE: check a topology file; no root needed."""
from vpclab.errors import EXIT_OK
from vpclab.report import print_warnings, summary
from vpclab.model.validation import load_topology

NEEDS_ROOT = False


def add_parser(verbs):
    p = verbs.add_parser("validate", help="check a topology file and list every error",
                         description="Check a topology YAML file. Lists every error with its "
                                     "YAML path and a hint. Exit 0 if valid, 2 if not.")
    p.add_argument("file", help="topology YAML, e.g. topologies/seed.yaml")
    return p


def main(args) -> int:
    topology = load_topology(args.file)
    print_warnings(topology)
    print(f"{args.file}: ok: lab {topology.name!r}, {summary(topology)}")
    return EXIT_OK
