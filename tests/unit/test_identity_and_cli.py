"""A node's identity files and the `vpclab run` CLI's pingall, without a lab."""
import os
import subprocess
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from vpclab.model.topology import Vpc
from vpclab.running.identity import DONE, apply_script, hosts_file, not_separate, private_mounts, \
    remove_files, resolv_conf, vm_hostname, write_files
from vpclab.lab_cli import pairs_by_vpc, vpc_matrix
from vpclab.running.ovs import tool_environment, write_host_tools

REPO = Path(__file__).resolve().parents[2]


def test_a_vm_is_named_as_ec2_names_it_and_resolves_at_its_vpc_s_dot_2():
    assert vm_hostname(IPv4Address("10.0.0.148")) == "ip-10-0-0-148"
    assert Vpc("v", IPv4Network("172.31.16.0/20"), 1001).resolver == IPv4Address("172.31.16.2")
    hosts = hosts_file("ip-10-0-0-148", IPv4Address("10.0.0.148"), ("ZIGI-VM1",))
    assert "10.0.0.148\tip-10-0-0-148 ZIGI-VM1\n" in hosts and "127.0.0.1\tlocalhost" in hosts
    assert "nameserver 10.0.0.2\n" in resolv_conf(IPv4Address("10.0.0.2"))
    assert "nameserver" not in resolv_conf(None)          # a host: none, never the machine's


def test_the_identity_script_binds_only_after_the_mounts_are_private(tmp_path):
    write_files(tmp_path, {"hosts": "h", "resolv.conf": "r"})
    fstab = (tmp_path / "fstab").read_text()
    for name in ("hosts", "resolv.conf"):                 # each bound over the machine's own
        assert f"{tmp_path / name} /etc/{name} none bind 0 0" in fstab
    unchecked = apply_script("ip-10-0-0-148", tmp_path, private=False)
    made_private = unchecked.index("mount --make-rprivate /")
    assert made_private < unchecked.index("mount --all --fstab") < unchecked.index(
        "> /proc/sys/kernel/hostname")
    checked = apply_script("ip-10-0-0-148", tmp_path, private=True)
    assert "--make-rprivate" not in checked and f"mount --all --fstab {tmp_path}/fstab" in checked
    for script in (checked, unchecked):
        assert script.rstrip().endswith("2>&1") and f"echo {DONE}" in script
        assert ";" not in script.split("{ ", 1)[1].rsplit(";", 1)[0]    # every step chained with &&


def test_a_mount_table_with_a_shared_mount_is_not_private(tmp_path, monkeypatch):
    import builtins
    tables = {"shared": "36 35 98:0 / / rw shared:1 - ext4 /dev/root rw\n",
              "private": "36 35 98:0 / / rw - ext4 /dev/root rw\n"}
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: real_open(tmp_path / "t", *a, **k)
                        if str(path).startswith("/proc/") else real_open(path, *a, **k))
    for kind, table in tables.items():
        (tmp_path / "t").write_text(table)
        assert private_mounts(1) is (kind == "private")


def test_ovs_tools_on_a_host_find_its_own_switch_and_speak_openflow_1_3(tmp_path):
    fake = tmp_path / "real-ovs-ofctl"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    tools = write_host_tools(tmp_path, real=str(fake))
    env = tool_environment(Path("/run/vpclab/lab/hosts/h1"), tools)
    assert env["OVS_RUNDIR"] == "/run/vpclab/lab/hosts/h1"
    assert env["PATH"].split(":")[0] == str(tools) and str(REPO) not in env["PATH"]
    shim = tools / "ovs-ofctl"
    assert shim.stat().st_mode & 0o777 == 0o755

    def run(*argv):
        return subprocess.run([str(shim), *argv], capture_output=True, text=True).stdout.strip()
    assert run("dump-flows", "br-int") == "-O OpenFlow13 dump-flows br-int"
    assert run("-O", "OpenFlow15", "dump-flows", "br-int") == "-O OpenFlow15 dump-flows br-int"
    assert run("--protocols=OpenFlow10", "show", "br-int") == "--protocols=OpenFlow10 show br-int"


def test_a_removed_vm_s_files_go_and_nothing_outside_its_folder_is_touched(tmp_path):
    nodes = tmp_path / "nodes"
    write_files(nodes / "v1", {"hosts": "x", "resolv.conf": "y"})
    (nodes / "v1" / "keep").write_text("not ours to remove")
    remove_files(nodes / "v1", nodes)                # a file we did not write: the folder stays
    assert not (nodes / "v1" / "hosts").exists() and (nodes / "v1" / "keep").exists()
    write_files(tmp_path / "elsewhere", {"hosts": "x"})
    (nodes / "v2").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="refusing"):
        remove_files(nodes / "v2", nodes)
    with pytest.raises(ValueError, match="refusing"):
        remove_files(tmp_path / "elsewhere", nodes)
    assert (tmp_path / "elsewhere" / "hosts").exists()
    write_files(nodes / "v3", {"hosts": "x", "resolv.conf": "y"})
    remove_files(nodes / "v3", nodes)
    assert not (nodes / "v3").exists()


def test_a_process_sharing_our_namespaces_is_never_given_a_name():
    assert not_separate(os.getpid()) == "uts and mnt"


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
