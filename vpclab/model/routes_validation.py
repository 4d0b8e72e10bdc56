"""The checks of a VPC's subnets, route tables and a VM's place in them (issue 13).

A mixin of validation's `_Checker`: it uses the checker's `add`, `warn`, `mapping`,
`network`, `ip_fits`, `suggest` and `kind`, and records issues the same way (a YAML
path, what is wrong, a hint that names the fix). It lives apart so the file format's
older checks stay readable. AWS's rules are the reference: subnets are /16 to /28 inside
their VPC and never overlap; the local route is implicit and cannot be added; a route
more specific than local must cover a whole subnet; a route's target is an ENI of the
same VPC.

`live` (a running lab's inventory after an API change) accepts a route whose target VM
does not exist: deleting an appliance makes its routes blackholes, as in AWS, and
adding a VM of that name back recovers them. A topology file cannot start that way.
"""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any, Callable

from vpclab.model.names import DISPLAY_NAME_RULE, is_display_name
from vpclab.model.topology import LOCAL, Route, Subnet, Vm, Vpc

EXAMPLE = "topologies/vpc-router.yaml"
SUBNET_KEYS = ("cidr", "route_table")
ROUTE_KEYS = ("destination", "target")
SUBNET_PREFIXES = (16, 28)          # what AWS allows a subnet (as a VPC)


class RoutesChecks:
    """Subnets, route tables, route targets, a VM's subnet and its `dhcp` flag."""

    live: bool
    add: Callable[..., None]
    warn: Callable[[str], None]
    mapping: Callable[..., dict]
    network: Callable[..., IPv4Network | None]
    ip_fits: Callable[..., bool]
    suggest: Callable[..., str]
    kind: Callable[[Any], str]

    def __init__(self) -> None:
        self.route_paths: dict[tuple[str, str, IPv4Network], str] = {}
        self.refused_subnets: set[tuple[str, str]] = set()   # (VPC, subnet) already reported

    # -- a VPC's layout ------------------------------------------------------------
    def vpc_layout(self, vpc: str, body: dict, cidr: IPv4Network | None
                   ) -> tuple[dict[str, Subnet], dict[str, tuple[Route, ...]]]:
        """A VPC's subnets and route tables. Subnets come first (routes are checked against
        them), then each subnet's `route_table` is checked against the tables."""
        path = f"vpcs.{vpc}"
        subnets = self.subnets(body.get("subnets"), path, cidr)
        asked = body.get("subnets")
        refused = {n for n in asked if n not in subnets} if isinstance(asked, dict) else set()
        self.refused_subnets |= {(vpc, name) for name in refused}
        whole = not refused
        tables = self.route_tables(vpc, body.get("route_tables"), path, cidr,
                                   subnets if whole else None)
        if body.get("route_tables") and not body.get("subnets"):
            self.add(f"{path}.route_tables", f"VPC {vpc} has no subnets, so no router to use "
                     "route tables", f"add a `subnets:` section to {path}, or remove route_tables")
        for subnet in subnets.values():
            if subnet.route_table is not None and subnet.route_table not in tables:
                self.add(f"{path}.subnets.{subnet.name}.route_table",
                         f"unknown route table {subnet.route_table!r}",
                         self.suggest(subnet.route_table, list(tables)) +
                         f"; define it under {path}.route_tables, or leave route_table out "
                         "(the main table: local only)")
        return subnets, tables

    # -- subnets ---------------------------------------------------------------------
    def subnets(self, value: Any, path: str, cidr: IPv4Network | None) -> dict[str, Subnet]:
        subnets: dict[str, Subnet] = {}
        for name, body in self.names({} if value is None else value, f"{path}.subnets", "subnet", EXAMPLE).items():
            where = f"{path}.subnets.{name}"
            subnet = self.subnet(name, body, where, cidr)
            if subnet is None:
                continue
            clash = next((s for s in subnets.values() if s.cidr.overlaps(subnet.cidr)), None)
            if clash is not None:
                free = _free_block(cidr, subnet.cidr.prefixlen, subnets.values())
                self.add(f"{where}.cidr", f"{subnet.cidr} overlaps subnet {clash.name} "
                         f"({clash.cidr})", "the subnets of a VPC share no address" +
                         (f": e.g. {free} is free" if free else ""))
                continue
            subnets[name] = subnet
        return subnets

    def subnet(self, name: str, body: Any, path: str, cidr: IPv4Network | None) -> Subnet | None:
        body = self.mapping(body, path, SUBNET_KEYS, empty_ok=False)
        if not body:
            if isinstance(body, dict):
                self.add(path, "is empty", "give it a cidr, e.g. `{cidr: 10.50.1.0/24}`")
            return None
        if "cidr" not in body:
            self.add(f"{path}.cidr", "is missing", "every subnet needs a cidr inside its VPC's")
            return None
        table = body.get("route_table")
        if table is not None and not isinstance(table, str):
            self.add(f"{path}.route_table", f"must be a route table's name, got {self.kind(table)}",
                     "name one of the VPC's route_tables, or leave it out (the main table)")
            return None
        net = self.subnet_cidr(body["cidr"], f"{path}.cidr", cidr)
        return Subnet(name, net, table) if net is not None else None

    def subnet_cidr(self, value: Any, path: str, vpc: IPv4Network | None) -> IPv4Network | None:
        net = self.network(value, path, "10.50.1.0/24")
        if net is None:
            return None
        low, high = SUBNET_PREFIXES
        if not low <= net.prefixlen <= high:
            self.add(path, f"/{net.prefixlen} is outside what a subnet allows",
                     f"AWS subnets are /{low} to /{high}")
            return None
        if vpc is not None and not net.subnet_of(vpc):
            self.add(path, f"{net} is outside the VPC's CIDR {vpc}",
                     f"a subnet is a part of its VPC: pick a block inside {vpc}")
            return None
        return net

    # -- route tables ------------------------------------------------------------------
    def route_tables(self, vpc: str, value: Any, path: str, cidr: IPv4Network | None,
                     subnets: dict[str, Subnet] | None) -> dict[str, tuple[Route, ...]]:
        """`subnets` None: some were refused, so a destination is not held against them
        (one mistake, one error)."""
        return {name: self.route_table(vpc, name, body, f"{path}.route_tables.{name}", cidr,
                                       subnets)
                for name, body in self.names({} if value is None else value, f"{path}.route_tables", "route table",
                                             EXAMPLE).items()}

    def route_table(self, vpc: str, table: str, value: Any, path: str,
                    cidr: IPv4Network | None, subnets: dict[str, Subnet] | None
                    ) -> tuple[Route, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.add(path, f"must be a list of routes, got {self.kind(value)}",
                     "write each route as `- {destination: 10.50.1.0/24, target: fw}`")
            return ()
        routes: dict[IPv4Network, Route] = {}
        for index, entry in enumerate(value):
            where = f"{path}[{index}]"
            route = self.route(entry, where, cidr, subnets)
            if route is None:
                continue
            if route.destination in routes:
                first = self.route_paths[vpc, table, route.destination]
                self.add(f"{where}.destination", f"{route.destination} is already routed by "
                         f"{first}", "one route per destination in a table: remove one of them")
                continue
            routes[route.destination] = route
            self.route_paths[vpc, table, route.destination] = where
        return tuple(routes.values())

    def route(self, entry: Any, path: str, cidr: IPv4Network | None,
              subnets: dict[str, Subnet] | None) -> Route | None:
        body = self.mapping(entry, path, ROUTE_KEYS, empty_ok=False)
        if not body:
            if isinstance(body, dict):
                self.add(path, "is empty", "write it as `{destination: 10.50.1.0/24, target: fw}`")
            return None
        missing = [key for key in ROUTE_KEYS if key not in body]
        for key in missing:
            self.add(f"{path}.{key}", "is missing", "every route has a destination (a CIDR) "
                     "and a target (a VM's name: its ENI)")
        destination = self.destination(body["destination"], f"{path}.destination", cidr, subnets) \
            if "destination" in body else None
        target = self.target(body["target"], f"{path}.target", cidr) if "target" in body else None
        if destination is None or target is None:
            return None
        return Route(destination, target)

    def destination(self, value: Any, path: str, cidr: IPv4Network | None,
                    subnets: dict[str, Subnet] | None) -> IPv4Network | None:
        if isinstance(value, str) and "/" not in value:
            self.add(path, f"{value!r} is not a CIDR", f"a route's destination is a CIDR, "
                     f"e.g. {value}/32 for one address, or a subnet's CIDR")
            return None
        net = self.network(value, path, "10.50.1.0/24")
        if net is None or cidr is None:
            return net
        if net == cidr:
            self.add(path, f"{net} is the VPC's CIDR: the implicit local route has it",
                     "route a subnet's CIDR (more specific than local) or a range outside the VPC")
            return None
        if subnets is not None and net.subnet_of(cidr) and \
                net not in {s.cidr for s in subnets.values()}:
            known = ", ".join(f"{s.name} ({s.cidr})" for s in subnets.values()) or "none defined"
            self.add(path, f"{net} is inside the VPC but is not a subnet's CIDR",
                     f"AWS routes inside the VPC only whole subnets: {known}")
            return None
        return net

    def target(self, value: Any, path: str, cidr: IPv4Network | None) -> str | None:
        if not isinstance(value, str):
            self.add(path, f"must be a VM's name, got {self.kind(value)}",
                     "a route's target is a VM of the VPC (its ENI), e.g. `target: fw`")
            return None
        if value == LOCAL:
            self.add(path, "a route to local cannot be added: the local route is implicit",
                     f"remove this entry: every table already routes the VPC's CIDR ({cidr}) "
                     "to local; target a VM (its ENI) instead")
            return None
        return value

    # -- route targets, once the VMs are known ------------------------------------------
    def route_targets(self, vpcs: dict[str, Vpc], vms: dict[str, Vm], named: set[str]) -> None:
        """Every route's target: a VM of the same VPC. `named`: every VM the file names, so
        a VM refused for its own error is not reported again as missing."""
        for vpc in vpcs.values():
            for table, routes in vpc.route_tables.items():
                for route in routes:
                    path = f"{self.route_paths[vpc.name, table, route.destination]}.target"
                    self.route_target(route.target, path, vpc, vms, named)

    def route_target(self, target: str, path: str, vpc: Vpc, vms: dict[str, Vm],
                     named: set[str]) -> None:
        vm = vms.get(target)
        if vm is None:
            if target not in named and not self.live:
                own = [v.name for v in vms.values() if v.vpc == vpc.name]
                self.add(path, f"no VM named {target!r}", f"a route's target is a VM of "
                         f"{vpc.name} (its ENI): " + self.suggest(target, own))
            return
        if vm.vpc != vpc.name:
            self.add(path, f"{target} is in VPC {vm.vpc}, not {vpc.name}",
                     f"a route's target is an ENI of the same VPC: pick a VM of {vpc.name}")
        elif vm.source_dest_check:
            self.warn(f"{path}: {target} has source_dest_check on: AWS accepts the route, but "
                      f"{target} will drop the traffic not addressed to it; set "
                      f"`source_dest_check: false` on vms.{target}")

    # -- a VM's subnet and DHCP ----------------------------------------------------------
    def vm_place(self, body: dict, path: str, vpc: Vpc, ip: IPv4Address | None
                 ) -> tuple[bool, str | None]:
        """(the VM fits, its subnet). Without `subnet:` in a VPC with subnets, the subnet is
        the one that holds the VM's IP; in a VPC without, the VPC's CIDR is its subnet."""
        if not vpc.routed:
            if "subnet" in body:
                self.add(f"{path}.subnet", f"VPC {vpc.name} has no subnets",
                         f"remove `subnet:`, or add a `subnets:` section to vpcs.{vpc.name}")
                return False, None
            return ip is not None and self.ip_fits(ip, vpc, f"{path}.ip"), None
        subnet = self.named_subnet(body, path, vpc) if "subnet" in body else None
        if ip is None or ("subnet" in body and subnet is None):
            return False, None
        if ip not in vpc.cidr:
            return self.ip_fits(ip, vpc, f"{path}.ip"), None
        subnet = subnet or self.inferred_subnet(ip, path, vpc)
        if subnet is None or not self.in_subnet(ip, path, vpc, subnet):
            return False, None
        return self.ip_fits(ip, vpc, f"{path}.ip", subnet), subnet.name

    def named_subnet(self, body: dict, path: str, vpc: Vpc) -> Subnet | None:
        name = body["subnet"]
        if isinstance(name, str) and (vpc.name, name) in self.refused_subnets:
            return None                    # its own error is reported already
        if not isinstance(name, str) or name not in vpc.subnets:
            self.add(f"{path}.subnet", f"unknown subnet {name!r} in VPC {vpc.name}",
                     self.suggest(str(name), list(vpc.subnets)))
            return None
        return vpc.subnets[name]

    def inferred_subnet(self, ip: IPv4Address, path: str, vpc: Vpc) -> Subnet | None:
        subnet = vpc.subnet_of(ip)
        if subnet is None:
            self.add(f"{path}.ip", f"{ip} is in no subnet of {vpc.name}",
                     f"its subnets: {_listed(vpc)}; pick an address in one, or add a subnet "
                     "that holds it")
        return subnet

    def in_subnet(self, ip: IPv4Address, path: str, vpc: Vpc, subnet: Subnet) -> bool:
        if ip in subnet.cidr:
            return True
        net, holder = subnet.cidr, vpc.subnet_of(ip)
        self.add(f"{path}.ip", f"{ip} is outside subnet {subnet.name} ({net})",
                 f"pick an address in {net[4]}-{net[-2]}" +
                 (f", or set `subnet: {holder.name}`" if holder else ""))
        return False

    def vm_dhcp(self, body: dict, path: str, vpc: Vpc | None) -> bool | None:
        """The VM's `dhcp` flag; None if refused."""
        value = body.get("dhcp", False)
        if not isinstance(value, bool):
            self.add(f"{path}.dhcp", f"{value!r} is not true or false",
                     "true: the VM gets its address from the VPC router's DHCP")
            return None
        if value and vpc is not None and not vpc.routed:
            self.add(f"{path}.dhcp", f"DHCP is answered by the VPC router, and VPC {vpc.name} "
                     "has no subnets (no router)", f"add a `subnets:` section to vpcs.{vpc.name}")
            return None
        return value


def _listed(vpc: Vpc) -> str:
    return ", ".join(f"{s.name} ({s.cidr})" for s in vpc.subnets.values())


def _free_block(vpc: IPv4Network | None, prefix: int, taken) -> IPv4Network | None:
    """The first block of that size in the VPC that no subnet uses: a hint's suggestion."""
    if vpc is None or prefix < vpc.prefixlen:
        return None
    used = [s.cidr for s in taken]
    return next((n for n in vpc.subnets(new_prefix=prefix)
                 if not any(n.overlaps(u) for u in used)), None)
