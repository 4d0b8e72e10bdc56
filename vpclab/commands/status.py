"""vpclab status [LAB] [--json]: what labs run, and what is in one."""
import json

from vpclab.running import health
from vpclab.errors import EXIT_OK, VpclabError
from vpclab.report import table
from vpclab.running.state import LabState, list_labs

NEEDS_ROOT = False


def add_parser(verbs):
    p = verbs.add_parser("status", help="list labs, or show one lab's nodes",
                         description="Without LAB: one line per lab. With LAB: its nodes and "
                                     "processes.")
    p.add_argument("lab", nargs="?")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _state_line(info: dict) -> str:
    """"degraded: ovs-vswitchd of host2 is down (restarting)", or the plain state."""
    if not info["down"]:
        return info["state"]
    return f"{info['state']}: " + "; ".join(health.describe(part) for part in info["down"])


def main(args) -> int:
    if args.lab:
        state = LabState(args.lab)
        if not state.exists():
            raise VpclabError(f"no lab named {args.lab!r}; running labs: "
                              f"{', '.join(list_labs()) or 'none'}")
        info = health.lab_status(state)
        if args.json:
            print(json.dumps(info, indent=1))
            return EXIT_OK
        print(f"lab {info['name']}: {_state_line(info)} (namespace {info['namespace']})\n")
        rows = [[name, n["kind"], n.get("vpc", ""), n.get("host", ""),
                 n.get("ip") or n.get("underlay_ip", ""), n.get("mac", "")]
                for name, n in info["nodes"].items()]
        print(table(["NODE", "KIND", "VPC", "HOST", "IP", "MAC"], rows))
        alive, total = health.running_count(state, info["nodes"])
        print(f"\n{alive} of {total} lab processes running; logs in {info['state_dir']}")
        return EXIT_OK
    labs = [health.lab_status(LabState(name)) for name in list_labs()]
    if args.json:
        print(json.dumps([{k: v for k, v in lab.items() if k != "processes"} for lab in labs],
                         indent=1))
        return EXIT_OK
    if not labs:
        print("no labs (start one: vpclab up topologies/seed.yaml)")
        return EXIT_OK
    print(table(["LAB", "STATE", "VMS", "HOSTS"],
                [[lab["name"], _state_line(lab),
                  str(sum(n["kind"] == "vm" for n in lab["nodes"].values())),
                  str(sum(n["kind"] == "host" for n in lab["nodes"].values()))] for lab in labs]))
    return EXIT_OK
