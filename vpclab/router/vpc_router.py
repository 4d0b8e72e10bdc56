"""A VPC's router as every virtual router applies it: the topology's subnets and route
tables resolved against the mapping table (pure data, for `vpclab.router.pipeline.route`).

A route table gets a small number a router can match in a register (the main table,
which holds only the implicit local route, is 1; the named tables follow in name order),
and each route's target is resolved to that VM's mapping. A target VM that no longer
exists (deleted live) leaves its route in place as a blackhole, as in AWS, until a VM
of that name is back.
"""
from __future__ import annotations

from vpclab.router.mapping import MappingTable
from vpclab.router.pipeline.tables import RoutedVpc, RouteEntry, RouteTable
from vpclab.model.topology import LOCAL, Topology, Vm, Vpc

MAIN_TABLE = 1


def table_ids(vpc: Vpc) -> dict[str | None, int]:
    """Route table name -> the id its subnets' VMs carry (None: the main table)."""
    return {None: MAIN_TABLE, **{name: MAIN_TABLE + 1 + i
                                 for i, name in enumerate(sorted(vpc.route_tables))}}


def routed_vpc(topology: Topology, vpc: Vpc, table: MappingTable) -> RoutedVpc:
    ids = table_ids(vpc)
    tables = tuple(RouteTable(ids[name], name or "main", tuple(
        _entry(topology, vpc, route.destination, route.target, table)
        for route in vpc.routes(name))) for name in ids)
    gateways = tuple(s.gateway for s in sorted(vpc.subnets.values(), key=lambda s: s.cidr))
    return RoutedVpc(vpc.vni, gateways, tables, resolver=vpc.resolver)


def _entry(topology: Topology, vpc: Vpc, destination, target: str,
           table: MappingTable) -> RouteEntry:
    if target == LOCAL:
        return RouteEntry(destination, target, local=True)
    vm = topology.vms.get(target)
    mapping = table.lookup(vpc.vni, vm.ip) if vm is not None and vm.vpc == vpc.name else None
    return RouteEntry(destination, target, mapping)


def routing(topology: Topology, table: MappingTable, vnis: set[int]) -> tuple[RoutedVpc, ...]:
    """The routed VPCs among `vnis` (a router's), in VNI order."""
    return tuple(routed_vpc(topology, vpc, table)
                 for vpc in sorted(topology.vpcs.values(), key=lambda v: v.vni)
                 if vpc.routed and vpc.vni in vnis)


def port_route_table(topology: Topology, vm: Vm) -> int:
    """The route table id of a VM's subnet; 0 when its VPC has no subnets."""
    vpc = topology.vpcs[vm.vpc]
    if not vpc.routed or vm.subnet is None:
        return 0
    return table_ids(vpc)[vpc.subnets[vm.subnet].route_table]


def route_rows(topology: Topology, cached: dict[str, set[int]] | None) -> list[dict]:
    """Every route of every table, as `vpclab mapping routes` and GET /routes show it: its
    state (local, active, blackhole), the subnets that use its table and, on-demand, the
    routers that cache that table's answers now (`cached`: host -> cookies; None: preload)."""
    from vpclab.router.pipeline.tables import route_cookie     # the cookie layout lives there
    rows = []
    for vpc in topology.vpcs.values():
        if not vpc.routed:
            continue
        for name, table_id in table_ids(vpc).items():
            subnets = sorted(s.name for s in vpc.subnets.values() if s.route_table == name)
            cookie = route_cookie(vpc.vni, table_id)
            holders = None if cached is None else sorted(h for h, c in cached.items() if cookie in c)
            for route in vpc.routes(name):
                state = "local" if route.target == LOCAL else \
                    "blackhole" if topology.blackhole(vpc.name, route) else "active"
                target = topology.vms.get(route.target)
                rows.append({"vpc": vpc.name, "table": name or "main", "subnets": subnets,
                             "destination": str(route.destination), "target": route.target,
                             "target_ip": str(target.ip) if target and state == "active" else None,
                             "state": state, "cached_on": holders})
    return rows
