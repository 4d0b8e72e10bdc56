"""The mapping service's table: (VPC, IP) -> ENI, MAC and physical host.

This is the seed's "Mapping Service" data: VPC identity (as its VNI), ENI id,
ENI IP, ENI MAC and the underlay IP of the host the ENI lives on. Pure data,
shared by the os-ken app and the tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from vpclab.model.topology import Topology


@dataclass(frozen=True)
class Mapping:
    vpc: str
    vni: int
    eni: str
    ip: IPv4Address
    mac: str
    host: str
    host_ip: IPv4Address
    source_dest_check: bool = True
    key: int = 0    # the ENI's lab-wide tunnel key (OVN's port key): what the Geneve option carries

    def to_json(self) -> dict:
        """As the API and `vpclab mapping` show it."""
        return {"vpc": self.vpc, "vni": self.vni, "ip": str(self.ip), "mac": self.mac, "eni": self.eni,
                "eni_key": self.key, "host": self.host, "host_ip": str(self.host_ip)}


class MappingTable:
    """All mappings of a lab, looked up by (VNI, IP): the VPC decides, not the IP alone."""

    def __init__(self, mappings: list[Mapping]):
        self._by_key = {(m.vni, m.ip): m for m in mappings}
        self._by_eni_key = {m.key: m for m in mappings}

    @classmethod
    def from_topology(cls, topology: Topology, keys: dict[str, int]) -> "MappingTable":
        """`keys`: each VM's ENI key, which the inventory keeps across changes."""
        return cls([Mapping(vm.vpc, topology.vpcs[vm.vpc].vni, vm.eni, vm.ip, vm.mac, vm.host,
                            topology.hosts[vm.host].underlay_ip, vm.source_dest_check, keys[vm.name])
                    for vm in topology.vms.values()])

    def lookup(self, vni: int, ip: IPv4Address) -> Mapping | None:
        return self._by_key.get((vni, ip))

    def appliance(self, vni: int, mac: str) -> Mapping | None:
        """The ENI with this MAC in this VPC, if its source/destination check is off."""
        return next((m for (v, _), m in self._by_key.items()
                     if v == vni and m.mac == mac and not m.source_dest_check), None)

    def by_eni_key(self, key: int) -> Mapping | None:
        """The ENI a Geneve option names."""
        return self._by_eni_key.get(key)

    def in_vpcs(self, vnis: set[int]) -> list[Mapping]:
        return [m for (vni, _), m in self._by_key.items() if vni in vnis]

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self):
        return iter(self._by_key.values())
