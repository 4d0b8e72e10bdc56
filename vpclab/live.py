"""Changing a running lab: move a VM to another host, add one, delete one.

The mapping service is told first (it validates, reprograms every affected
router and waits for their barriers); then the fabric follows. A move
re-attaches the VM's interface by moving the router end of its veth into the
new host's namespace and onto that host's br-int with the same port number:
the VM keeps its eth0, IP, MAC and neighbour cache, as a migrated instance
keeps its ENI. Everything created is recorded in the lab's state.
"""
from __future__ import annotations

import os
import subprocess
import time

from vpclab import api_client
from vpclab.errors import VpclabError
from vpclab.ovs import OvsInstance
from vpclab.plan import VM_MTU, eni_key, plan_fabric
from vpclab.shell import in_netns_of, links_up, run
from vpclab.state import LabState, process_start_time, stop_processes
from vpclab.validation import load_topology
from vpclab.wait import wait_until

NO_IPV6 = ("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 "
           "net.ipv6.conf.lo.disable_ipv6=1")


def _node(state: LabState, name: str, kind: str) -> dict:
    """A node of the running lab by display name, of the kind asked for ("host" or "vm")."""
    node = state.nodes().get(name)
    if node is None or node["kind"] != kind:
        known = [n for n, info in state.nodes().items() if info["kind"] == kind]
        label = "host" if kind == "host" else "VM"
        raise VpclabError(f"lab {state.name!r} has no {label} {name!r}; {label}s: {', '.join(known)}")
    return node


def _host(state: LabState, name: str) -> dict:
    return _node(state, name, "host")


def _vm(state: LabState, name: str) -> dict:
    return _node(state, name, "vm")


def _ovs(state: LabState, host: str) -> OvsInstance:
    plan = plan_fabric(load_topology(state.topology_path))
    node = _host(state, host)
    return OvsInstance(plan.hosts[host], node["pid"], state.host_dir(node["node"]))


def _update_node(state: LabState, name: str, **fields) -> None:
    nodes = state.nodes()
    if fields.pop("remove", False):
        nodes.pop(name, None)
    else:
        nodes[name] = {**nodes.get(name, {}), **fields}
    state.write_nodes(nodes)


def move_vm(state: LabState, name: str, host: str) -> dict:
    vm, new = _vm(state, name), _host(state, host)
    old = _host(state, vm["host"])
    result = api_client.call(state, "PUT", f"/vms/{name}", {"host": host})
    port, started = result["port_name"], time.monotonic()
    run(in_netns_of(old["pid"], ["ip", "link", "set", port, "netns", str(new["pid"])]),
        f"{name}: move its interface to {host}")
    run(in_netns_of(new["pid"], ["ip", "link", "set", port, "mtu", str(VM_MTU), "up"]),
        f"{name}: bring its interface up on {host}")
    _ovs(state, host).vsctl("add-port", "br-int", port, "--", "set", "interface", port,
                            f"ofport_request={result['port']}")
    _ovs(state, vm["host"]).vsctl("--if-exists", "del-port", "br-int", port)
    wait_until(lambda: port in links_up(new["pid"]), f"{name}'s link on {host}", timeout=10)
    _update_node(state, name, host=host)
    return {**result, "reattached_ms": round((time.monotonic() - started) * 1000, 1)}


def add_vm(state: LabState, name: str, vpc: str, host: str, ip: str,
           mac: str | None = None, eni: str | None = None) -> dict:
    target = _host(state, host)
    if name in state.nodes():
        raise VpclabError(f"lab {state.name!r} already has a node named {name!r}")
    result = api_client.call(state, "POST", "/vms", {"name": name, "vpc": vpc, "host": host,
                                                      "ip": ip, "mac": mac, "eni": eni})
    try:
        pid = _new_namespace(state, name)
        prefix = load_topology(state.topology_path).vpcs[vpc].cidr.prefixlen
        port = result["port_name"]
        run(in_netns_of(pid, ["sh", "-c", f"{NO_IPV6}; ip link set lo up"]), f"{name}: namespace")
        run(in_netns_of(target["pid"], ["sh", "-ec",
                                        f"ip link add {port} mtu {VM_MTU} type veth peer name eth0 "
                                        f"netns {pid}; ip link set {port} up"]), f"{name}: link")
        run(in_netns_of(pid, ["sh", "-ec", f"ip link set eth0 address {result['mac']} mtu {VM_MTU} "
                                           "multicast off; "
                                           f"ip addr add {ip}/{prefix} dev eth0; "
                                           "ethtool -K eth0 tx off tso off gso off >/dev/null 2>&1 "
                                           "|| true; ip link set eth0 up"]), f"{name}: eth0")
        _ovs(state, host).vsctl("add-port", "br-int", port, "--", "set", "interface", port,
                                f"ofport_request={result['port']}")
        wait_until(lambda: port in links_up(target["pid"]), f"{name}'s link", timeout=10)
    except BaseException:
        api_client.call(state, "DELETE", f"/vms/{name}")
        raise
    _update_node(state, name, kind="vm", node="v" + result["port_name"][2:], pid=pid,
                 start=process_start_time(pid), vpc=vpc, host=host, ip=ip, mac=result["mac"],
                 eni=result["eni"], eni_key=eni_key(result["port"]))
    return result


def _new_namespace(state: LabState, name: str) -> int:
    """A fresh network namespace held by a recorded process (a VM, like Mininet's)."""
    proc = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    state.record_process(proc.pid, "node", node=name)
    ours = _netns_id("self")
    wait_until(lambda: _netns_id(proc.pid) not in (None, ours), f"{name}'s namespace", timeout=5)
    return proc.pid


def _netns_id(pid) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def delete_vm(state: LabState, name: str) -> dict:
    vm = _vm(state, name)
    result = api_client.call(state, "DELETE", f"/vms/{name}")
    stop_processes([p for p in state.processes() if p.role == "node" and p.node == name])
    _ovs(state, vm["host"]).vsctl("--if-exists", "del-port", "br-int", result["port_name"])
    _update_node(state, name, remove=True)
    return result
