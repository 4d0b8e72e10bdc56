"""Nodes made in a batch (vpclab.running.nodes_batch) are what the lab relies on: every VM's eth0 is its
ENI (its MAC and address, MTU 1500, no multicast, no IPv6, no transmit checksum offload, so TCP
crosses the userspace tunnel), its router end sits on its host, up; a VM added to the running
lab is made the same way."""
from __future__ import annotations

import sys

import pytest

TOPOLOGY = {
    "name": "t-batch", "description": "two hosts, two VPCs, several VMs per host",
    "hosts": {"host1": {}, "host2": {}},
    "vpcs": {"blue": {"cidr": "10.1.0.0/24"}, "red": {"cidr": "10.2.0.0/24"}},
    "vms": {f"{vpc}{n}": {"vpc": vpc, "host": f"host{1 + n % 2}", "ip": f"10.{i}.0.{10 + n}"}
            for i, vpc in ((1, "blue"), (2, "red")) for n in range(3)},
}
FACTS = ("cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu "
         "/proc/sys/net/ipv6/conf/eth0/disable_ipv6; hostname; ip -o -4 addr show dev eth0; "
         "ip -o link show dev eth0; ip -o link show dev lo; ethtool -k eth0")
ECHO = """
import socket, sys
server = socket.create_server(("0.0.0.0", 7001))
print("listening", flush=True)
conn, _ = server.accept()
data = b""
while len(data) < 200000:
    data += conn.recv(65536)
conn.sendall(data)
"""
SEND = """
import socket, sys
with socket.create_connection((sys.argv[1], 7001), timeout=10) as conn:
    conn.sendall(bytes(range(256)) * 782)
    back = b""
    while len(back) < 200192:
        part = conn.recv(65536)
        if not part:
            break
        back += part
print(len(back), back == bytes(range(256)) * 782)
"""


@pytest.fixture(scope="module")
def lab(vpclab_module_lab):
    return vpclab_module_lab(TOPOLOGY)


def assert_made_as_planned(lab, vm: str) -> None:
    node = lab.nodes()[vm]
    out = lab.exec(vm, "sh", "-c", FACTS, check=True).stdout
    mac, mtu, no_ipv6, hostname = out.splitlines()[:4]
    assert (mac, mtu, no_ipv6) == (node["mac"], "1500", "1")
    assert hostname == "ip-" + node["ip"].replace(".", "-")
    assert f"inet {node['ip']}/24 " in out               # both VPCs are /24s
    eth0 = next(line for line in out.splitlines() if ": eth0@" in line)
    assert "MULTICAST" not in eth0 and "state UP" in eth0
    assert "<LOOPBACK,UP" in out
    assert "tx-checksumming: off" in out
    port = lab.plan.vms[vm].port_name if vm in lab.plan.vms else f"vm{node['eni_key']}"
    host = lab.exec(node["host"], "ip", "-o", "link", "show", "dev", port, check=True).stdout
    assert "mtu 1500" in host and "state UP" in host


def test_every_vm_of_the_batch_is_its_eni(lab):
    for vm in TOPOLOGY["vms"]:
        assert_made_as_planned(lab, vm)


def test_tcp_crosses_hosts_with_real_checksums(lab):
    server = lab.popen("blue0", sys.executable, "-c", ECHO, stdout=-1, text=True)
    try:
        assert server.stdout.readline().strip() == "listening"
        done = lab.exec("blue1", sys.executable, "-c", SEND, "10.1.0.10", timeout=30)
        assert done.stdout.split() == ["200192", "True"], done.stderr
    finally:
        server.kill()
        server.wait()


def test_a_vm_added_live_is_made_the_same_way(lab):
    lab.add_vm("blue9", vpc="blue", host="host2", ip="10.1.0.99")
    try:
        assert_made_as_planned(lab, "blue9")
        assert lab.ping("blue9", "blue0")          # blue0 lives on host1
    finally:
        lab.delete_vm("blue9")
    assert "blue9" not in lab.nodes()
