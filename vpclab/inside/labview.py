"""The names a router's numbers stand for: the lab's inventory as one small value.

A flow says `in_port=101`, `metadata=0x3e9`, `reg1=0x2`, `tun_dst=192.168.100.2`;
a person says ZIGI-VM1, ZIGI-VPC1, ZIGI-VM2's ENI, host2. `LabView` holds what
turns one into the other (every ENI with its VM, VPC, VNI, key, port and host;
every host's underlay IP; the lab's encapsulation and mapping mode), built from
the lab's records (`from_records`) or from plain JSON (`from_json`, what the unit
tests record), so explaining flows and traces needs no lab at all.

It is built from the runner's node records, which it rewrites on every change,
not from the mapping service: a router is most worth looking into when the
service is down.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from vpclab.model.plan import TUNNEL_PORT, VM_PORT_BASE
from vpclab.model.topology import NEGATIVE_TTL
from vpclab.router.vpc_router import table_ids

RESOLVER = ".2"      # what `gateways` says of the VPC's resolver address


@dataclass(frozen=True)
class Eni:
    """One VM's ENI, as a router sees it."""

    vm: str
    vpc: str
    vni: int
    ip: str
    mac: str
    key: int
    host: str
    host_ip: str
    source_dest_check: bool = True
    ttl: int = 64

    @property
    def port(self) -> int:
        """Its router port, on whichever host it lives (the key is the port less the base)."""
        return self.key + VM_PORT_BASE


@dataclass(frozen=True)
class LabView:
    """A lab's names and numbers, seen from one host's router (`host`)."""

    lab: str
    host: str
    encap: str
    mode: str
    enis: tuple[Eni, ...]
    hosts: dict[str, str]              # host name -> underlay IP
    vpcs: dict[str, int]               # VPC name -> VNI
    idle_timeout: int = 300
    miss_rate: int = 100
    negative_ttl: int = NEGATIVE_TTL
    tunnel_port: int = field(default=TUNNEL_PORT)
    route_tables: dict[str, str] = field(default_factory=dict)   # "VNI/id" -> route table name
    gateways: dict[str, str] = field(default_factory=dict)       # "VNI/IP" -> subnet name (its .1)

    # -- lookups ---------------------------------------------------------------------
    @property
    def host_ip(self) -> str:
        return self.hosts.get(self.host, "")

    def at(self, host: str) -> "LabView":
        """The same lab, seen from another host's router."""
        return LabView(**{**self._fields(), "host": host})

    def vpc_of(self, vni: int | None) -> str:
        """`ZIGI-VPC1`, or `vni 4242` for a VNI no VPC has."""
        return next((name for name, v in self.vpcs.items() if v == vni), f"vni {vni}")

    def has_vni(self, vni: int | None) -> bool:
        return vni in self.vpcs.values()

    def host_by_ip(self, ip: str | None) -> str | None:
        return next((name for name, address in self.hosts.items() if address == ip), None)

    def host_label(self, ip: str | None) -> str:
        """`host2 (192.168.100.2)`, or the bare IP if no host of the lab has it."""
        name = self.host_by_ip(ip)
        return f"{name} ({ip})" if name else f"{ip} (no host of this lab)"

    def local_port(self, ofport: int | None) -> Eni | None:
        """The ENI plugged into this router's port `ofport`."""
        return next((e for e in self.enis if e.port == ofport and e.host == self.host), None)

    def by_key(self, key: int | None) -> Eni | None:
        return next((e for e in self.enis if e.key == key), None)

    def by_ip(self, vni: int | None, ip: str | None) -> Eni | None:
        return next((e for e in self.enis if e.vni == vni and e.ip == ip), None)

    def by_mac(self, vni: int | None, mac: str | None) -> Eni | None:
        mac = (mac or "").lower()
        return next((e for e in self.enis if e.vni == vni and e.mac == mac), None)

    def vm(self, name: str) -> Eni | None:
        return next((e for e in self.enis if e.vm == name), None)

    def local(self, vni: int | None = None) -> list[Eni]:
        """This router's ENIs (of one VPC if given)."""
        return [e for e in self.enis if e.host == self.host and (vni is None or e.vni == vni)]

    def route_table(self, vni: int | None, table_id: int | None) -> str:
        return self.route_tables.get(f"{vni}/{table_id}", f"table {table_id}")

    def gateway_of(self, vni: int | None, ip: str | None) -> str | None:
        """The subnet whose .1 `ip` is, in that VPC (None: not a gateway)."""
        return self.gateways.get(f"{vni}/{ip}")

    def with_ip(self, ip: str) -> list[Eni]:
        """Every ENI with this IP, in any VPC (identical addresses are allowed across VPCs)."""
        return [e for e in self.enis if e.ip == ip]

    # -- in and out ------------------------------------------------------------------
    def _fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def to_json(self) -> dict[str, Any]:
        data = self._fields()
        data["enis"] = [asdict(e) for e in self.enis]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "LabView":
        return cls(**{**data, "enis": tuple(Eni(**e) for e in data["enis"])})

    @classmethod
    def from_records(cls, lab: str, host: str, topology, nodes: dict[str, dict[str, Any]]) -> "LabView":
        """From a Topology and the runner's node records (`Lab.nodes()`)."""
        hosts = {name: n["underlay_ip"] for name, n in nodes.items() if n["kind"] == "host"}
        vpcs = {name: vpc.vni for name, vpc in topology.vpcs.items()}
        enis = []
        for name, n in nodes.items():
            if n["kind"] != "vm":
                continue
            declared = topology.vms.get(name)
            enis.append(Eni(vm=name, vpc=n["vpc"], vni=vpcs[n["vpc"]], ip=n["ip"], mac=n["mac"].lower(),
                            key=n["eni_key"], host=n["host"], host_ip=hosts.get(n["host"], ""),
                            source_dest_check=declared.source_dest_check if declared else True,
                            ttl=n.get("ttl", topology.default_ttl)))
        tables, gateways = {}, {}
        for vpc in topology.vpcs.values():
            for name, table_id in table_ids(vpc).items():
                tables[f"{vpc.vni}/{table_id}"] = name or "main"
            for subnet in vpc.subnets.values():
                gateways[f"{vpc.vni}/{subnet.gateway}"] = subnet.name
            if vpc.subnets:
                gateways[f"{vpc.vni}/{vpc.resolver}"] = RESOLVER
        return cls(lab=lab, host=host, encap=topology.encap, mode=topology.mapping_mode,
                   enis=tuple(enis), hosts=hosts, vpcs=vpcs, idle_timeout=topology.idle_timeout,
                   miss_rate=topology.miss_rate, route_tables=tables, gateways=gateways)
