"""A node's identity files and the `vpclab run` CLI's pingall, without a lab."""
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from vpclab.identity import DONE, apply_script, hosts_file, resolv_conf, vm_hostname, vpc_resolver
from vpclab.lab_cli import pairs_by_vpc, vpc_matrix
from vpclab.ovs import HOST_TOOLS, tool_environment


def test_a_vm_is_named_as_ec2_names_it_and_resolves_at_its_vpc_s_dot_2():
    assert vm_hostname(IPv4Address("10.0.0.148")) == "ip-10-0-0-148"
    assert vpc_resolver(IPv4Network("172.31.16.0/20")) == IPv4Address("172.31.16.2")
    hosts = hosts_file("ip-10-0-0-148", IPv4Address("10.0.0.148"), ("ZIGI-VM1",))
    assert "10.0.0.148\tip-10-0-0-148 ZIGI-VM1\n" in hosts and "127.0.0.1\tlocalhost" in hosts
    assert "nameserver 10.0.0.2\n" in resolv_conf(IPv4Address("10.0.0.2"))
    assert "nameserver" not in resolv_conf(None)          # a host: none, never the machine's


def test_the_identity_script_binds_only_after_the_mounts_are_private():
    script = apply_script("ip-10-0-0-148", Path("/run/vpclab/lab/nodes/v1"))
    private = script.index("mount --make-rprivate /")
    assert private < script.index("mount --bind") and script.index("&& hostname") > private
    assert "/run/vpclab/lab/nodes/v1/resolv.conf /etc/resolv.conf" in script
    assert script.rstrip().endswith("2>&1") and f"echo {DONE}" in script
    assert " || mount" in script and "; mount" not in script       # every step chained with &&


def test_ovs_tools_on_a_host_find_its_own_switch_and_speak_openflow_1_3():
    env = tool_environment(Path("/run/vpclab/lab/hosts/h1"))
    assert env["OVS_RUNDIR"] == "/run/vpclab/lab/hosts/h1"
    assert env["PATH"].split(":")[0] == str(HOST_TOOLS)
    shim = (HOST_TOOLS / "ovs-ofctl")
    assert shim.stat().st_mode & 0o111 and "-O OpenFlow13" in shim.read_text()


def test_pingall_pairs_stay_inside_a_vpc_and_try_across_only_where_it_proves_something():
    vms = {"A1": ("A", "10.0.0.1"), "A2": ("A", "10.0.0.2"),
           "B1": ("B", "10.0.0.1"), "B3": ("B", "10.0.0.3")}
    inside, across = pairs_by_vpc(vms)
    assert inside == {"A": [("A1", "A2"), ("A2", "A1")], "B": [("B1", "B3"), ("B3", "B1")]}
    # A1 -> B1 would ping 10.0.0.1 inside A (A1 itself): no leak to learn from
    assert sorted(across) == [("A1", "B3"), ("A2", "B3"), ("B1", "A2"), ("B3", "A2")]


def test_the_pingall_matrix_marks_each_ordered_pair():
    rows = vpc_matrix(["A1", "A2"], lambda a, b: (a, b) == ("A1", "A2"))
    assert rows[1].split() == ["A1", "-", "ok"] and rows[2].split() == ["A2", "LOST", "-"]
