"""vpclab mapping list|show|add|del LAB ...: the mapping service's table, through its API."""
import json

from vpclab import api_client, lifecycle, live
from vpclab.errors import EXIT_CHECK_FAILED, EXIT_OK
from vpclab.report import table


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
    state = lifecycle.running_lab(args.lab)
    if args.action == "list":
        rows = api_client.call(state, "GET", "/mappings")
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            print(table(["VPC", "VNI", "IP", "MAC", "ENI", "ENI KEY", "HOST", "HOST IP"],
                        [[r["vpc"], r["vni"], r["ip"], r["mac"], r["eni"], r["eni_key"], r["host"], r["host_ip"]]
                         for r in rows]))
    elif args.action == "show":
        print(json.dumps(api_client.call(state, "GET", f"/mappings/{args.vpc}/{args.ip}"), indent=1))
    elif args.action == "add":
        return print_change(live.add_vm(state, args.name, args.vpc, args.host, args.ip, args.mac,
                                        args.eni))
    else:
        return print_change(live.delete_vm(state, args.vm))
    return EXIT_OK


def print_change(result: dict) -> int:
    """Show a change and who confirmed it; the exit code: 1 if some router did not."""
    touched = ", ".join(f"{host} (+{r['added']} -{r['deleted']} flows, {r['invalidated']} "
                        f"invalidated)" for host, r in result["routers"].items()) or "none"
    unconfirmed = result.get("unconfirmed") or []
    if unconfirmed:
        print(f"{result['change']}: UNCONFIRMED by {len(unconfirmed)} affected router(s) "
              f"after {result['converged_ms']} ms")
    else:
        print(f"{result['change']}: confirmed by every affected router in {result['converged_ms']} ms")
    print(f"  routers: {touched}")
    why = result.get("unconfirmed_why") or {}
    for host in unconfirmed:
        print(f"  NOT confirmed by {host}: {why.get(host, 'no confirmation')}")
    return EXIT_CHECK_FAILED if unconfirmed else EXIT_OK
