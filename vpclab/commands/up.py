"""vpclab up FILE: start a lab in the background and return when it is ready."""
import time

from vpclab.errors import EXIT_OK
from vpclab.lab import Lab
from vpclab.report import host_table, print_phase, print_warnings, summary, vm_table
from vpclab.model.topology import MAPPING_MODES


def add_parser(verbs):
    p = verbs.add_parser("up", help="start a lab in the background",
                         description="Build the lab described by FILE and return once every "
                                     "virtual router is connected and programmed. The lab runs "
                                     "until `vpclab down LAB`.")
    add_lab_options(p)
    return p


def add_lab_options(p) -> None:
    p.add_argument("file", help="topology YAML, e.g. topologies/seed.yaml")
    p.add_argument("--name", help="lab name (default: the file's `name`); lets one file run twice")
    p.add_argument("--mode", choices=MAPPING_MODES, help="override mapping.mode")


def main(args) -> int:
    start = time.monotonic()
    print(f"bringing up {args.file}", flush=True)
    lab = Lab(args.file, name=args.name, mode=args.mode)
    print_warnings(lab.topology)             # before the build: it takes a while
    lab.start(on_phase=print_phase).detach()
    plan = lab.plan
    print(f"lab {lab.name!r} ready in {time.monotonic() - start:.2f} s "
          f"({summary(plan.topology)})\n")
    print(host_table(plan) + "\n")
    print(vm_table(plan) + "\n")
    pair = next(((a, b) for a in plan.topology.vms.values() for b in plan.topology.vms.values()
                 if a.vpc == b.vpc and a.name != b.name), None)
    if pair:
        print(f"next: vpclab exec {lab.name} {pair[0].name} -- ping -c 1 {pair[1].ip}")
    print(f"      vpclab status {lab.name}\n      vpclab down {lab.name}")
    return EXIT_OK
