"""The mapping service's authoritative view: every ENI, where it lives, on which port.

It starts as the lab's topology and changes through the API (add, move,
delete). A change is applied to the topology's YAML form and validated by the
very same checks as a topology file (AWS reserved addresses, one IP per VPC,
unique MACs...), so the API can never accept what a file could not hold.
Router ports are kept per VM, never recomputed: removing one VM must not
renumber the others. After every change the service persists the inventory,
so a restarted service rebuilds exactly the table it had.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from ipaddress import ip_network
from pathlib import Path

from vpclab.router.mapping import MappingTable
from vpclab.router.pipeline import LocalPort, Router
from vpclab.model.plan import VM_PORT_BASE, eni_key, plan_fabric
from vpclab.model.topology import Topology
from vpclab.model.validation import check_topology, topology_to_raw
from vpclab.router.vpc_router import port_route_table, routing

MAX_VM_PORT = 0xFEFF     # the highest port number OVS grants a port (ofport_request)


@dataclass(frozen=True)
class Inventory:
    topology: Topology
    ports: dict[str, int]        # VM name -> its OpenFlow port number on its host's router

    @classmethod
    def from_topology(cls, topology: Topology) -> "Inventory":
        plan = plan_fabric(topology)
        return cls(topology, {name: vm.ofport for name, vm in plan.vms.items()})

    @classmethod
    def load(cls, path: Path, topology: Topology) -> "Inventory":
        """The persisted inventory if there is one, else the topology's."""
        if not path.exists():
            return cls.from_topology(topology)
        saved = json.loads(path.read_text())
        return cls(check_topology(saved["topology"], str(path), live=True), saved["ports"])

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"topology": topology_to_raw(self.topology),
                                   "ports": self.ports}, indent=1))
        tmp.replace(path)

    # -- derived views (computed once per inventory: the mapping service asks on every miss)
    def table(self) -> MappingTable:
        return self._table

    def routers(self) -> dict[int, Router]:
        return self._routers

    @cached_property
    def _table(self) -> MappingTable:
        return MappingTable.from_topology(self.topology, self.eni_keys())

    @cached_property
    def _routers(self) -> dict[int, Router]:
        table = self.table()
        topo = self.topology
        routers = {}
        for host in topo.hosts.values():
            ports = tuple(LocalPort(self.ports[vm.name], table.lookup(topo.vpcs[vm.vpc].vni, vm.ip),
                                    port_route_table(topo, vm))
                          for vm in topo.vms_on(host.name))
            vnis = {p.mapping.vni for p in ports}
            routers[host.index] = Router(host.name, host.index, topo.mapping_mode == "on-demand",
                                         topo.idle_timeout, ports, topo.miss_rate,
                                         eni_option=topo.encap == "geneve",
                                         routing=routing(topo, table, vnis))
        return routers

    def eni_keys(self) -> dict[str, int]:
        return {name: eni_key(port) for name, port in self.ports.items()}

    def port_name(self, vm: str) -> str:
        return f"vm{eni_key(self.ports[vm])}"

    def next_port(self) -> int:
        return max(self.ports.values(), default=VM_PORT_BASE) + 1

    # -- changes (each returns a new, validated inventory) ----------------------------
    def add(self, name: str, fields: dict, port: int | None = None) -> "Inventory":
        raw = topology_to_raw(self.topology)
        if name in raw["vms"]:
            raise InventoryError(f"vms.{name}: a VM named {name} already exists")
        raw["vms"][name] = {k: v for k, v in fields.items() if v is not None}
        port = self.next_port() if port is None else port
        check_vm_port(port, self.ports)
        return Inventory(_check(raw), {**self.ports, name: port})

    def move(self, name: str, host: str) -> "Inventory":
        raw = self._raw_with(name)
        if raw["vms"][name]["host"] == host:
            raise InventoryError(f"vms.{name}.host: {name} is already on {host}")
        raw["vms"][name]["host"] = host
        return Inventory(_check(raw), self.ports)

    def remove(self, name: str) -> "Inventory":
        raw = self._raw_with(name)
        del raw["vms"][name]
        return Inventory(_check(raw), {k: v for k, v in self.ports.items() if k != name})

    def add_route(self, vpc: str, table: str, destination: str, target: str) -> "Inventory":
        """A route added to a table (AWS's create-route). Its target must be a VM of the VPC
        now: a blackhole only arises when a target VM is deleted."""
        raw = topology_to_raw(self.topology)
        routes = _raw_table(raw, vpc, table)
        if _find_route(routes, destination) is not None:
            raise InventoryError(f"{vpc}/{table} already has a route to {destination}; "
                                 "delete it first")
        target_vm = self.topology.vms.get(target)
        if target_vm is None or target_vm.vpc != vpc:
            own = [vm.name for vm in self.topology.vms.values() if vm.vpc == vpc]
            raise InventoryError(f"no VM named {target!r} in VPC {vpc}: a route's target is a "
                                 f"VM of its VPC (its ENI); VMs: {', '.join(own) or 'none'}")
        routes.append({"destination": destination, "target": target})
        return Inventory(_check(raw), self.ports)

    def delete_route(self, vpc: str, table: str, destination: str) -> "Inventory":
        """A route removed from a table (AWS's delete-route); the local route cannot be."""
        raw = topology_to_raw(self.topology)
        routes = _raw_table(raw, vpc, table)
        index = _find_route(routes, destination)
        if index is None:
            have = ", ".join(f"{r['destination']} -> {r['target']}" for r in routes) or "none"
            raise InventoryError(f"{vpc}/{table} has no route to {destination}; its routes: "
                                 f"{have} (the implicit local route cannot be deleted)")
        del routes[index]
        return Inventory(_check(raw), self.ports)

    def find_table(self, name: str) -> tuple[str, str]:
        """(VPC, table) for a route table's name, or for "VPC/TABLE" when two VPCs have a
        table of that name (the command line names a table alone when it can)."""
        tables = [(vpc.name, table) for vpc in self.topology.vpcs.values()
                  for table in vpc.route_tables]
        found = [t for t in tables if name in (t[1], f"{t[0]}/{t[1]}")]
        if len(found) == 1:
            return found[0]
        choices = ", ".join(f"{vpc}/{table}" for vpc, table in (found or tables)) or "none"
        if found:
            raise InventoryError(f"route table {name!r} is in more than one VPC: say which, "
                                 f"one of {choices}")
        raise InventoryError(f"no route table {name!r}; route tables: {choices}")

    def _raw_with(self, name: str) -> dict:
        raw = topology_to_raw(self.topology)
        if name not in raw["vms"]:
            raise InventoryError(f"no VM named {name!r}; VMs: {', '.join(raw['vms']) or 'none'}")
        return raw


def check_vm_port(port, used: dict[str, int]) -> None:
    """A VM's router port: above the tunnel port and the reserved numbers (its ENI key,
    the port less VM_PORT_BASE, must be at least 1: 0 reads as "no ENI option"), one OVS
    can grant, and not another VM's."""
    if isinstance(port, bool) or not isinstance(port, int):
        raise InventoryError(f"port {port!r} is not a number")
    if not VM_PORT_BASE < port <= MAX_VM_PORT:
        raise InventoryError(f"port {port} cannot be a VM's: VM ports are {VM_PORT_BASE + 1} to "
                             f"{MAX_VM_PORT} (the ENI key is the port less {VM_PORT_BASE}); "
                             "leave `port` out to get the next free one")
    owner = next((vm for vm, p in used.items() if p == port), None)
    if owner is not None:
        raise InventoryError(f"port {port} is already used by {owner}")


class InventoryError(ValueError):
    """A change the inventory refuses; the message says why."""


def _raw_table(raw: dict, vpc: str, table: str) -> list[dict]:
    """A route table's entries in the raw form, to edit in place."""
    if vpc not in raw["vpcs"]:
        raise InventoryError(f"no VPC named {vpc!r}; VPCs: {', '.join(raw['vpcs']) or 'none'}")
    tables = raw["vpcs"][vpc].get("route_tables", {})
    if table not in tables:
        raise InventoryError(f"VPC {vpc} has no route table {table!r}; its tables: "
                             f"{', '.join(tables) or 'none'}")
    return tables[table]


def _find_route(routes: list[dict], destination: str) -> int | None:
    """The index of the route to `destination` (compared as networks: 10.50.1.0/24 is
    10.50.1.0/255.255.255.0); None if none, or if it is no CIDR (validation then says so)."""
    try:
        wanted = ip_network(destination)
    except ValueError:
        return None
    return next((i for i, r in enumerate(routes) if ip_network(r["destination"]) == wanted), None)


def _check(raw: dict) -> Topology:
    from vpclab.model.validation import TopologyError
    try:
        return check_topology(raw, "change", live=True)
    except TopologyError as exc:
        raise InventoryError("; ".join(str(i).replace("\n    hint:", " (hint:") +
                                       (")" if i.hint else "") for i in exc.issues)) from None
