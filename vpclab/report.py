"""Text the CLI prints: tables and lab summaries."""
from __future__ import annotations

import sys

from vpclab.model.plan import FabricPlan
from vpclab.model.topology import Topology


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    lines = ["  ".join(f"{h:<{w}}" for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(f"{str(c):<{w}}" for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def summary(topology: Topology) -> str:
    def n(count: int, word: str) -> str:
        return f"{count} {word}{'s' if count != 1 else ''}"
    return (f"{n(len(topology.hosts), 'host')}, {n(len(topology.vpcs), 'VPC')}, "
            f"{n(len(topology.vms), 'VM')}; {topology.encap}, mapping {topology.mapping_mode}")


def print_warnings(topology: Topology) -> None:
    """What the topology's checks accepted but a student should know (a route to an
    appliance that will drop its traffic...), on stderr so stdout stays the result."""
    for warning in topology.warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)


def vm_table(plan: FabricPlan) -> str:
    topo = plan.topology
    rows = [[vm.name, vm.vpc, vm.host, str(vm.ip), vm.mac, vm.eni,
             f"{topo.vpcs[vm.vpc].vni}"] for vm in topo.vms.values()]
    return table(["VM", "VPC", "HOST", "IP", "MAC", "ENI", "VNI"], rows)


def host_table(plan: FabricPlan) -> str:
    rows = [[h.name, str(h.host.underlay_ip), f"{h.dpid:016x}",
             str(len(plan.vms_on(h.name)))] for h in plan.hosts.values()]
    return table(["HOST", "UNDERLAY IP", "ROUTER DPID", "VMS"], rows)


def print_phase(name: str, seconds: float) -> None:
    print(f"  {name:<22} {seconds:6.2f} s", flush=True)


def comparison(result, labels: tuple[str, str] = ("expected", "captured")) -> str:
    """One capture point's verdict, side by side, with what a difference means."""
    if result.matches:
        head = f"{result.point}: match ({len(result.actual)} packets, same order)"
        return head + "\n" + result.side_by_side(*labels)
    head = f"{result.point}: DIFFERENT at #{result.first_difference + 1}"
    why = "\n".join(f"  why: {reason}" for reason in result.explain())
    return f"{head}\n{result.side_by_side(*labels)}\n{why}"
