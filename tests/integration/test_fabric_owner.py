"""The runner owns the fabric: concurrent changes stay consistent, the Mininet CLI sees live
VMs, a failed re-plug rolls a move back; and a VM looks like an instance from inside (its
own /sys, its own default TTL) without touching the machine's own mounts."""
import os
import re
import subprocess
import uuid

from tests.integration.labtools import MULTI_VPC, REPO, SEED, VPCLAB, dump_flows, host_ovs
from vpclab import Lab
from vpclab.running.state import LabState
from vpclab.running.wait import wait_until


def vpclab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(VPCLAB + list(args), capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


# -- consistency of records, mapping, routers and namespaces --------------------------------
def router_ports(lab, host: str) -> dict[str, int]:
    out = host_ovs(lab, host, ["ovs-vsctl", "-f", "csv", "--no-headings",
                                 "--columns=name,ofport", "list", "Interface"])
    rows = dict(line.split(",") for line in out.split() if line.startswith("vm"))
    return {name: int(port) for name, port in rows.items()}


def vm_links(lab, host: str) -> set[str]:
    out = lab.exec(host, "ip", "-o", "link", "show").stdout
    return {m for m in re.findall(r"^\d+: (vm\d+)@", out, re.M)}


def assert_consistent(lab) -> dict:
    """nodes.json, the mapping service's table, each router's ports and flows, and the
    namespaces all tell the same story; return the VMs."""
    nodes = lab.nodes()
    vms = {n: i for n, i in nodes.items() if i["kind"] == "vm"}
    hosts = [n for n, i in nodes.items() if i["kind"] == "host"]
    assert sorted((m["eni"], m["vpc"], m["ip"], m["host"]) for m in lab.mappings()) == \
        sorted((i["eni"], i["vpc"], i["ip"], i["host"]) for i in vms.values())
    alive = sorted(p.node for p in lab.state.processes() if p.role == "node" and p.is_alive())
    assert alive == sorted(nodes), "a namespace outlived its record, or a record its namespace"
    for name, info in vms.items():
        mine = lab.exec(name, "cat", "/sys/class/net/eth0/address")
        assert mine.stdout.strip() == info["mac"], name
    flows = {h: dump_flows(lab, h) for h in hosts}
    for host in hosts:
        here = {f"vm{i['eni_key']}": 100 + i["eni_key"] for i in vms.values() if i["host"] == host}
        assert router_ports(lab, host) == here, host
        assert vm_links(lab, host) == set(here), host
        for port in (100 + i["eni_key"] for i in vms.values()):
            assert (f"in_port={port}" in flows[host]) == (port in here.values()), (host, port)
    return vms


def test_twenty_concurrent_changes_leave_everything_consistent(vpclab_lab):
    lab = vpclab_lab(MULTI_VPC)
    adds = [("vm", "add", lab.name, f"NEW-{i}", "--vpc", "ZIGI-VPC1", "--host", f"host{i % 3 + 1}",
             "--ip", f"10.0.0.{60 + i}") for i in range(1, 9)]
    moves = [("move", lab.name, vm, host) for vm, host in [
        ("ZIGI-VM2", "host3"), ("ZIGI-VM3", "host2"), ("OTHER-VM1", "host3"),
        ("OTHER-VM2", "host1"), ("WEB-VM1", "host1"), ("WEB-VM2", "host3")]]
    dels = [("vm", "del", lab.name, vm) for vm in
            ("OTHER-VM3", "OTHER-VM2", "WEB-VM2", "ZIGI-VM3", "NEW-7", "NEW-8")]
    commands = adds + moves + dels
    assert len(commands) == 20
    procs = [subprocess.Popen(VPCLAB + list(c), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=REPO) for c in commands]
    done = {c: (p.wait(timeout=600), *p.communicate()) for c, p in zip(commands, procs)}
    for command, (code, out, err) in done.items():
        assert code in (0, 2) and "Traceback" not in err, (command, out, err)
    # the outcome of these depends on the order: a move of a VM being deleted, a delete of a
    # VM being added; every other command must succeed
    uncertain = {("move", lab.name, vm, host) for _, _, vm, host in moves
                 if vm in ("ZIGI-VM3", "OTHER-VM2", "WEB-VM2")} | set(dels[-2:])
    for command, (code, out, err) in done.items():
        if command not in uncertain:
            assert code == 0, (command, out, err)
    vms = assert_consistent(lab)
    gone = {"OTHER-VM3", "OTHER-VM2", "WEB-VM2", "ZIGI-VM3"}
    assert not gone & set(vms)
    for name in ("NEW-7", "NEW-8"):       # exists exactly when its del came first and failed
        assert (name in vms) == (done[("vm", "del", lab.name, name)][0] != 0)
    assert {n: vms[n]["host"] for n in ("ZIGI-VM1", "ZIGI-VM2", "OTHER-VM1", "WEB-VM1")} == \
        {"ZIGI-VM1": "host1", "ZIGI-VM2": "host3", "OTHER-VM1": "host3", "WEB-VM1": "host1"}
    for name, info in vms.items():        # and the lab still works for every VM of ZIGI-VPC1
        if info["vpc"] == "ZIGI-VPC1" and name != "ZIGI-VM1":
            assert lab.ping("ZIGI-VM1", info["ip"]), name


def test_a_failed_replug_rolls_the_move_back(vpclab_lab, monkeypatch):
    monkeypatch.setenv("VPCLAB_FAULT", "replug")        # honoured by the runner only
    lab = vpclab_lab(SEED)
    assert lab.ping("ZIGI-VM1", "10.0.0.185")
    moved = vpclab("move", lab.name, "ZIGI-VM2", "host1")
    assert moved.returncode == 2 and "Traceback" not in moved.stderr
    assert "fault injected" in moved.stderr
    assert "rolled back: ZIGI-VM2 is on host2 again, and so is its mapping" in moved.stderr
    assert lab.mapping("ZIGI-VPC1", "10.0.0.185")["host"] == "host2"
    vms = assert_consistent(lab)
    assert vms["ZIGI-VM2"]["host"] == "host2"
    assert lab.ping("ZIGI-VM1", "10.0.0.185") and lab.ping("ZIGI-VM2", "10.0.0.148")


def test_the_run_cli_sees_a_vm_added_while_it_runs():
    name = f"t{uuid.uuid4().hex[:4]}-runadd"
    state = LabState(name)
    proc = subprocess.Popen(VPCLAB + ["run", str(SEED), "--name", name], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        wait_until(lambda: proc.poll() is not None or
                   any(e["event"] == "ready" for e in state.progress.read()),
                   "the lab of `vpclab run` to be ready", timeout=120)
        Lab.attach(name).add_vm("ZIGI-VM3", vpc="ZIGI-VPC1", host="host1", ip="10.0.0.20")
        out, err = proc.communicate("nodes\nZIGI-VM3 ping -c 1 ZIGI-VM2\n"
                                    "ZIGI-VM3 ip -br addr show eth0\nexit\n", timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        Lab.remove(name)
    shown = out + err                 # Mininet's CLI prints node output on stderr
    listed = [line.split() for line in shown.split("hosts: host1 host2", 1)[1].splitlines()]
    assert ["ZIGI-VM3", "ZIGI-VPC1", "10.0.0.20", "on", "host1"] in listed     # `nodes`
    assert "1 received" in shown and "10.0.0.20/24" in shown
    assert not state.exists()


# -- a VM from inside ----------------------------------------------------------------------------
def machine_view() -> tuple[list[str], list[str]]:
    """The machine's own interfaces in /sys and its mount points (other labs' /run/netns
    entries come and go while tests run in parallel: not ours to compare)."""
    with open("/proc/self/mountinfo") as info:
        mounts = [line.split()[4] for line in info]
    return (sorted(os.listdir("/sys/class/net")),
            sorted(m for m in mounts if not m.startswith("/run/netns")))


def test_a_vm_sees_its_own_sysfs_and_the_machine_keeps_its_own(vpclab_lab, tmp_path):
    before = machine_view()
    lab = vpclab_lab(SEED)
    lab.add_vm("ZIGI-VM3", vpc="ZIGI-VPC1", host="host1", ip="10.0.0.20")
    nodes = lab.nodes()
    for vm in ("ZIGI-VM1", "ZIGI-VM2", "ZIGI-VM3"):
        seen = lab.exec(vm, "sh", "-c", "cat /sys/class/net/eth0/address "
                                        "/sys/class/net/eth0/mtu; ls /sys/class/net")
        assert seen.stdout.split() == [nodes[vm]["mac"], "1500", "eth0", "lo"], vm
    host = lab.exec("host1", "ls", "/sys/class/net").stdout.split()
    assert {"eth0", "mgmt0", "br-int", "vm1", "vm3"} <= set(host)
    assert not set(host) - {"lo", "eth0", "mgmt0", "br-int", "br-phy", "ovs-netdev", "vm1", "vm3"}
    # files written from inside a node land where the caller meant, relative paths too
    with lab.capture(["ZIGI-VM2", "host2"], tmp_path, filter="icmp or arp or udp"):
        ping_ = lab.exec("ZIGI-VM1", "ping", "-c", "1", "10.0.0.185")
    assert ping_.returncode == 0
    assert (tmp_path / "ZIGI-VM2.eth0.pcap").stat().st_size > 24
    assert (tmp_path / "host2.eth0.pcap").stat().st_size > 24
    relative = subprocess.run(VPCLAB + ["exec", lab.name, "host1", "--", "sh", "-c",
                                        "ovs-vsctl --db=unix:$0/db.sock br-exists br-int && "
                                        "touch written-inside", str(lab.state.host_dir("h1"))],
                              cwd=tmp_path, capture_output=True, text=True)
    assert relative.returncode == 0, relative.stderr
    assert (tmp_path / "written-inside").exists()
    assert lab.down()
    assert machine_view() == before


def test_the_seed_vms_answer_with_ttl_255(vpclab_lab):
    lab = vpclab_lab(SEED)
    assert lab.exec("ZIGI-VM2", "sysctl", "-n", "net.ipv4.ip_default_ttl").stdout.strip() == "255"
    there = lab.exec("ZIGI-VM1", "ping", "-c", "1", "-W", "2", "10.0.0.185")
    back = lab.exec("ZIGI-VM2", "ping", "-c", "1", "-W", "2", "10.0.0.148")
    assert "bytes from 10.0.0.185: icmp_seq=1 ttl=255 " in there.stdout
    assert "bytes from 10.0.0.148: icmp_seq=1 ttl=255 " in back.stdout
