from ipaddress import IPv4Address

from vpclab.router.inventory import Inventory
from vpclab.model.plan import IFNAME_MAX, TUNNEL_PORT, plan_fabric


def test_internal_names_fit_the_kernel_and_numbers_are_unique(multi_vpc):
    plan = plan_fabric(multi_vpc)
    names = [vm.port_name for vm in plan.vms.values()] + [vm.node for vm in plan.vms.values()]
    assert all(len(n) <= IFNAME_MAX for n in names) and len(set(names)) == len(names)
    for host in plan.hosts.values():
        ports = [vm.ofport for vm in plan.vms_on(host.name)]
        assert len(set(ports)) == len(ports) and TUNNEL_PORT not in ports
    assert sorted(h.dpid for h in plan.hosts.values()) == [1, 2, 3]
    assert len({h.underlay_mac for h in plan.hosts.values()}) == 3


def test_mapping_is_keyed_by_vpc_and_ip(multi_vpc):
    table = Inventory.from_topology(multi_vpc).table()
    ip = IPv4Address("10.0.0.148")
    one, two = table.lookup(1001, ip), table.lookup(1002, ip)
    assert (one.vpc, one.host, str(one.host_ip)) == ("ZIGI-VPC1", "host1", "192.168.100.1")
    assert two.vpc == "ZIGI-VPC2" and one.mac != two.mac and one.eni != two.eni
    assert table.lookup(1003, ip) is None
    assert len(table) == len(multi_vpc.vms)
    assert {m.vpc for m in table.in_vpcs({1003})} == {"ZIGI-VPC3"}
