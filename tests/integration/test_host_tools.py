"""Looking inside a lab as a user would: OVS tools on a host by the names a user knows,
each VM with its own hostname and resolver files (the machine's untouched), and the
`vpclab run` CLI with display names and a pingall by VPC."""
import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.integration.labtools import MULTI_VPC, SEED, VPCLAB


MACHINE_FILES = ("/etc/hosts", "/etc/resolv.conf", "/etc/hostname")


def machine_identity() -> dict:
    """The machine's own name, files and mounts (what no lab may change)."""
    mounts = [line.split(" - ")[0].split(" ", 4)[4] for line in
              Path("/proc/self/mountinfo").read_text().splitlines()
              if "/run/netns/" not in line]      # every lab's `ip netns add` mounts one there
    return {"hostname": socket.gethostname(), "mounts": sorted(mounts),
            **{f: Path(f).read_text() for f in MACHINE_FILES if Path(f).exists()}}


@pytest.fixture(scope="module")
def machine():
    return machine_identity()          # read before the module's lab exists


@pytest.fixture(scope="module")
def seed(machine, vpclab_module_lab):
    lab = vpclab_module_lab(SEED)
    assert lab.ping("ZIGI-VM1", "ZIGI-VM2")
    return lab


def on_host(lab, *argv: str) -> str:
    """Through `vpclab exec`, as a user types it."""
    done = subprocess.run([*VPCLAB, "exec", lab.name, "host1", "--", *argv],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_plain_ovs_tools_on_a_host_talk_to_that_host_s_own_switch(seed):
    flows = on_host(seed, "ovs-ofctl", "dump-flows", "br-int")
    assert "table=10" in flows and "arp_tpa=10.0.0.185" in flows     # host1's cached ARP answer
    assert "192.168.100.2" in on_host(seed, "ovs-ofctl", "dump-flows", "br-int", "table=20")
    assert "port 101" in on_host(seed, "ovs-ofctl", "dump-ports", "br-int")
    shown = on_host(seed, "ovs-vsctl", "show")
    # (is_connected is written to the database a few seconds after connecting: not asserted)
    assert "Bridge br-int" in shown and 'Controller "tcp:169.254.255.254:6653"' in shown
    assert "Port vm1" in shown and "Port vm2" not in shown                    # host1's own
    assert "tnl_push" in on_host(seed, "ovs-appctl", "dpctl/dump-flows")
    traced = on_host(seed, "ovs-appctl", "ofproto/trace", "br-int",
                     "in_port=101,arp,dl_src=02:00:5e:ad:58:40,arp_spa=10.0.0.148,"
                     "arp_sha=02:00:5e:ad:58:40,arp_tpa=10.0.0.185,arp_op=1")
    assert "IN_PORT" in traced or "output:101" in traced, traced
    # host2 has its own switch: its flows are not host1's
    host2 = seed.exec("host2", "ovs-ofctl", "dump-flows", "br-int").stdout
    assert "arp_tpa=10.0.0.148" in host2 and "arp_tpa=10.0.0.185" not in host2


def test_the_api_exec_finds_the_host_s_switch_too(seed):
    assert "Bridge br-int" in seed.exec("host2", "ovs-vsctl", "show", check=True).stdout


def test_a_vm_has_its_own_name_and_resolver_and_the_machine_keeps_its_own(seed, machine):
    machine_resolver = Path("/etc/resolv.conf").read_text()
    vm = {cmd: seed.exec("ZIGI-VM1", *cmd.split(), check=True).stdout
          for cmd in ("hostname", "cat /etc/hosts", "cat /etc/resolv.conf")}
    assert vm["hostname"].strip() == "ip-10-0-0-148"
    assert "10.0.0.148\tip-10-0-0-148 ZIGI-VM1" in vm["cat /etc/hosts"]
    assert "nameserver 10.0.0.2" in vm["cat /etc/resolv.conf"]          # the VPC's .2
    assert vm["cat /etc/resolv.conf"] != machine_resolver
    assert seed.exec("ZIGI-VM2", "hostname").stdout.strip() == "ip-10-0-0-185"
    assert seed.exec("host1", "hostname").stdout.strip() == "host1"
    assert "nameserver" not in seed.exec("host1", "cat", "/etc/resolv.conf").stdout
    assert machine_identity() == machine        # name, files and mounts as before the lab


def test_every_node_has_its_own_uts_and_mount_namespace_with_private_mounts(seed):
    own = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in ("uts", "mnt")}
    for name, node in seed.nodes().items():
        for kind in ("uts", "mnt"):
            assert os.readlink(f"/proc/{node['pid']}/ns/{kind}") != own[kind], (name, kind)
        mounts = seed.exec(name, "cat", "/proc/self/mountinfo", check=True).stdout
        assert " shared:" not in mounts, name                 # nothing propagates out
        bound = [line for line in mounts.splitlines() if " /etc/resolv.conf " in line]
        assert bound, name


def test_a_vm_s_popen_sees_its_own_name_too(seed):
    """Processes started the way Mininet's pingall and `py` do (mnexec -a) are in the VM's
    UTS namespace as well: its own hostname."""
    done = subprocess.run(seed.command("ZIGI-VM2", "hostname"), capture_output=True, text=True)
    assert done.stdout.strip() == "ip-10-0-0-185"


def test_the_run_cli_speaks_display_names_and_pings_all_by_vpc(tmp_path):
    topology = tmp_path / "multi.yaml"
    topology.write_text(MULTI_VPC.read_text().replace("name: multi-vpc", "name: t-run-cli", 1))
    assert "name: t-run-cli" in topology.read_text()
    # (no node command here: Mininet's CLI hands a running command the piped input after it)
    done = subprocess.run([*VPCLAB, "run", str(topology)],
                          input='nodes\ndump\nnet\nlinks\npingall\nmapping\nflows "host1\n'
                                'flows host3\n', capture_output=True, text=True, timeout=240,
                          cwd=tmp_path)
    out = done.stdout
    assert done.returncode == 0, done.stderr + out
    assert "hosts: host1 host2 host3" in out and "<VM OTHER-VM2 (ZIGI-VPC2)" in out
    assert " v1 " not in out and "<Host h1" not in out
    assert "*** Results: 14/14 reached inside VPCs (0% dropped)" in out
    assert "30 pairs not expected to reach: none did" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("OTHER-VM1 ")]
    assert rows and rows[0] == ["OTHER-VM1", "-", "ok", "ok"]
    assert "host2: eth0 -- underlay (192.168.100.2); br-int: ZIGI-VM2 (port 102)" in out
    assert "WEB-VM2-eth0 <-> host2-vm8" in out
    assert "ZIGI-VPC3  1003  172.16.0.10" in out                        # mapping
    assert "No closing quotation" in out                                # a typo, not a crash
    assert "host3's virtual router" in out and "WEB-VM1 (ZIGI-VPC3)" in out   # flows host3
