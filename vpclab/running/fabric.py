"""The running lab: Mininet nodes and links, the mapping service, one OVS per host.

This code runs inside the lab's own network namespace (the runner is started
with `ip netns exec vpclab-<lab>`), so the lab's "root" side — the underlay
and management bridges, the mapping service's socket — lives there, and
nothing is ever added to the machine's own namespace. Mininet creates each
veth inside a node and moves its peer by PID, never through PID 1's namespace.
"""
from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable

from vpclab.running import dhcp_client, limits, vm_network
from vpclab.errors import VpclabError
from vpclab.running.ovs import TOOLS, OvsInstance, tool_environment, write_host_tools
from vpclab.model.plan import (
    CONTROLLER_IP, CONTROLLER_PORT, UNDERLAY_MTU, VM_MTU, FabricPlan, HostPlan, VmPlan, eni_key,
)
from vpclab.running.shell import in_netns_of, links_up, run
from vpclab.running.state import LabState, process_start_time, stop_processes
from vpclab.running.health import newest
from vpclab.running import nodes_batch
from vpclab.running.identity import hosts_file, remove_files, resolv_conf, vm_hostname
from vpclab.running.nodes_batch import NodeJob, Veth
from vpclab.running.supervisor import Supervisor
from vpclab.model.topology import MANAGEMENT_CIDR
from vpclab.running.wait import wait_until

REPO = Path(__file__).resolve().parents[2]      # vpclab/running/ -> the checkout
UNDERLAY_BRIDGE_MAC = "0e:ff:00:00:00:01"
MGMT_BRIDGE_MAC = "0e:ff:00:00:00:02"
NO_IPV6_SYSCTLS = {f"net/ipv6/conf/{dev}/disable_ipv6": "1" for dev in ("all", "default", "lo")}
NO_IPV6 = "sysctl -qw " + " ".join(f"{key.replace('/', '.')}={value}"
                                   for key, value in NO_IPV6_SYSCTLS.items())


class Fabric:
    def __init__(self, plan: FabricPlan, state: LabState):
        self.plan = plan
        self.state = state
        self.net = None
        self.service: subprocess.Popen | None = None
        self.stopping = False
        self.host_nodes: dict[str, object] = {}
        self.vm_nodes: dict[str, object] = {}
        self.vm_plans: dict[str, VmPlan] = {}     # every VM now in the lab, live adds included
        self.routers: dict[str, OvsInstance] = {}
        self.lock = threading.Lock()      # restarts vs teardown

    def phases(self):
        """The build steps in order, named for the progress report."""
        return [("nodes and links", self.build_nodes),
                ("mapping service", self.await_mapping_service),   # launched by build_nodes
                ("links up", self.wait_links_up),
                ("virtual routers", self.start_routers),
                ("routers programmed", self.wait_routers_ready),
                *([("DHCP leases", self.lease_dhcp)] if self._dhcp_vms() else [])]

    # -- nodes -----------------------------------------------------------------
    def build_nodes(self) -> None:
        from mininet.net import Mininet

        # Mininet.init() would run fixLimits(), which raises machine-wide sysctls
        # (fs.file-max, kernel.pty.max, net.core.*): not ours to change on a shared machine.
        Mininet.inited = True
        self.net = Mininet(topo=None, build=False, controller=None, switch=None,
                           autoSetMacs=False, inNamespace=False)
        run(["sh", "-ec", f"{NO_IPV6}; ip link set lo up"], "lab namespace")
        write_host_tools(self.state.dir)
        limits.enough_descriptors(len(self.plan.hosts) + len(self.plan.vms))
        self._make(list(self.plan.hosts.values()), list(self.plan.vms.values()), up=True,
                   hosts_made=self._hosts_made)
        self.write_nodes()

    def _hosts_made(self) -> None:
        """What needs the hosts but not their VMs, begun before the VMs are made."""
        self._lab_bridges()
        self.launch_mapping_service()       # it listens on the management bridge

    def _lab_bridges(self) -> None:
        """The underlay and management bridges with every host's end, as soon as the hosts
        exist: a bridge's carrier reaches its operstate through the kernel's linkwatch up
        to a second later (wait_links_up), and the VMs' links and setup fill that second."""
        # mcast_snooping 0: a snooping bridge joins 224.0.0.106 and sends IGMP reports
        # through every port, into every host's eth0 and mgmt0 (no IGMP in a VPC lab)
        lab_links = [f"link add underlay address {UNDERLAY_BRIDGE_MAC} mtu {UNDERLAY_MTU} "
                     "type bridge mcast_snooping 0",
                     f"link add mgmt address {MGMT_BRIDGE_MAC} type bridge mcast_snooping 0",
                     f"addr add {CONTROLLER_IP}/{MANAGEMENT_CIDR.prefixlen} dev mgmt"]
        for host in self.plan.hosts.values():
            lab_links += [f"link set ul-{host.node} master underlay mtu {UNDERLAY_MTU} up",
                          f"link set mg-{host.node} master mgmt up"]
        lab_links += ["link set underlay multicast off up", "link set mgmt multicast off up"]
        run(["ip", "-force", "-batch", "-"], "lab bridges", stdin="\n".join(lab_links))

    def _make(self, hosts: list[HostPlan], vms: list[VmPlan], up: bool,
              hosts_made: Callable[[], None] = lambda: None) -> None:
        """Hosts and VMs as Mininet nodes of this runner's net, all at once
        (vpclab.running.nodes_batch), each with its identity; `up`: raise the VMs' router ends."""
        from mininet.node import Host, Node

        shown = {h.node: h.name for h in hosts} | {vm.node: vm.name for vm in vms}
        jobs = [self._host_job(h, Node) for h in hosts] + [self._vm_job(vm, Host) for vm in vms]
        links = {vm.name: Veth(vm.node, self.plan.hosts[vm.vm.host].node, vm.port_name,
                               vm.vm.mac, VM_MTU, up) for vm in vms}
        known = {self.plan.hosts[h].node: node for h, node in self.host_nodes.items()}
        steps = nodes_batch.build(jobs, list(links.values()), known, self.state.node_dir,
                                  lambda node: self._record(node, shown[node.name]),
                                  hosts_made)
        if up:      # where `up`'s largest phase goes (bench/bench_scale.py reads it)
            self.state.progress.write("steps", phase="nodes and links", seconds=steps)
        made = {job.name: job.node for job in jobs}
        for host in hosts:
            self.host_nodes[host.name] = self.net.nameToNode[host.name] = made[host.node]
        for plan in vms:
            node = made[plan.node]
            self.vm_nodes[plan.name], self.vm_plans[plan.name] = node, plan
            self.net.hosts.append(node)
            self.net.nameToNode[plan.node] = self.net.nameToNode[plan.name] = node
            nodes_batch.mininet_link(self.net, node, self.host_nodes[plan.vm.host],
                                     links[plan.name])

    def _host_job(self, host: HostPlan, base: type) -> NodeJob:
        pid = os.getpid()  # the runner's namespace is the lab namespace
        return NodeJob(
            host.node, base, host.name,
            {"hosts": hosts_file(host.name), "resolv.conf": resolv_conf(None)},
            sysctls={**NO_IPV6_SYSCTLS, "net/ipv4/conf/all/arp_ignore": "1"},
            # the host's own Open vSwitch for OVS tools typed in its shell (`vpclab run`)
            shell=[f"export {name}={shlex.quote(value)}" for name, value in
                   tool_environment(self.state.host_dir(host.node),
                                    self.state.dir / TOOLS).items()],
            ip=[f"link add eth0 mtu {UNDERLAY_MTU} type veth peer name ul-{host.node} netns {pid}",
                f"link add mgmt0 type veth peer name mg-{host.node} netns {pid}",
                f"addr add {host.mgmt_ip}/{MANAGEMENT_CIDR.prefixlen} dev mgmt0",
                # known up front: the controller connection must not wait on ARP
                f"neigh replace {CONTROLLER_IP} lladdr {MGMT_BRIDGE_MAC} dev mgmt0 nud permanent",
                # no multicast anywhere in a VPC lab: no IGMP reports in anyone's capture
                "link set lo up", "link set eth0 multicast off up",
                "link set mgmt0 multicast off up"])

    # -- VMs: the one plumbing path, for `up` and for live changes -----------------------
    def plug_vm(self, plan: VmPlan):
        """A VM as a Mininet host of this runner's own net (so `vpclab run`'s CLI knows it,
        by display name too), linked to its host; its router end is left down and unplugged.
        Mininet's `mnexec -n` gives it a private mount namespace with its own sysfs."""
        self._make([], [plan], up=False)
        return self.vm_nodes[plan.name]

    def _vm_job(self, plan: VmPlan, base: type) -> NodeJob:
        """The VM's identity and eth0 (made with its MAC and MTU by the host's link batch)."""
        vm, name = plan.vm, vm_hostname(plan.vm.ip)
        topology = self.plan.topology
        return NodeJob(
            plan.node, base, name,
            {"hosts": hosts_file(name, vm.ip, (vm.name,)),
             "resolv.conf": resolv_conf(topology.vpcs[vm.vpc].resolver)},
            sysctls={**NO_IPV6_SYSCTLS, "net/ipv6/conf/eth0/disable_ipv6": "1",
                     "net/ipv4/ip_default_ttl": str(vm.ttl),
                     **vm_network.forwarding_sysctls(topology, vm)},
            # TCP across the userspace tunnel needs real checksums (PLATFORM.md)
            shell=["{ ethtool -K eth0 tx off tso off gso off >/dev/null 2>&1 || :; }"],
            ip=[*vm_network.address_commands(topology, vm), "link set eth0 up", "link set lo up",
                *vm_network.route_commands(topology, vm)])

    def _router_ends_up(self, host: str, ports: list[str]) -> None:
        if ports:
            script = "".join(f"link set {port} mtu {VM_MTU} up\n" for port in ports)
            run(in_netns_of(self.host_nodes[host].pid, ["ip", "-batch", "-"]),
                f"{host}: VM ports up", stdin=script)

    def plug_port(self, name: str, host: str, again: bool = False) -> None:
        """Put a VM's router end (already in `host`'s namespace) up and on that host's br-int,
        with the VM's own port number; return once the kernel says the link is up.
        `again`: the router may still hold the port from before (a rolled-back move)."""
        plan = self.vm_plans[name]
        self._router_ends_up(host, [plan.port_name])
        ovs = self.ovs(host)
        if again:   # its own transaction: in one with the add, OVS would see no change and
            # keep the stale netdev of a veth end that left the namespace and came back
            ovs.vsctl("--if-exists", "del-port", "br-int", plan.port_name)
        ovs.vsctl("add-port", "br-int", plan.port_name, "--", "set", "interface", plan.port_name,
                  f"ofport_request={plan.ofport}")
        pid = self.host_nodes[host].pid
        wait_until(lambda: plan.port_name in links_up(pid), f"{name}'s link on {host}", timeout=10)

    def unplug_port(self, name: str, host: str) -> None:
        self.ovs(host).vsctl("--if-exists", "del-port", "br-int", self.vm_plans[name].port_name)

    def move_router_end(self, name: str, to_host: str) -> None:
        """Move the router end of a VM's veth into another host's namespace (the VM keeps
        its eth0, addresses and neighbours) and tell Mininet where it now is."""
        plan = self.vm_plans[name]
        intf = self.vm_nodes[name].intf("eth0").link.intf2
        old, new = intf.node, self.host_nodes[to_host]
        if old is new:
            return
        run(in_netns_of(old.pid, ["ip", "link", "set", plan.port_name, "netns", str(new.pid)]),
            f"{name}: move its interface to {to_host}")
        old.delIntf(intf)
        intf.node = new
        new.addIntf(intf, moveIntfFn=lambda *a: None)
        self.vm_plans[name] = replace(plan, vm=replace(plan.vm, host=to_host))

    def router_end_host(self, name: str) -> str:
        """The host whose namespace holds the VM's router end (Mininet's view, kept true)."""
        node = self.vm_nodes[name].intf("eth0").link.intf2.node
        return next(h for h, n in self.host_nodes.items() if n is node)

    def remove_vm(self, name: str) -> None:
        """Stop the VM's shell (its namespace, eth0 and router end go with it) and forget it."""
        node, plan = self.vm_nodes.pop(name), self.vm_plans.pop(name)
        stop_processes([p for p in self.state.processes() if p.role == "node" and p.node == name
                        and p.pid == node.pid])
        node.shell.wait()       # our child: reap it
        link = node.intf("eth0").link if "eth0" in node.nameToIntf else None
        if link is not None:
            link.intf2.node.delIntf(link.intf2)
            self.net.links.remove(link)
        self.net.hosts.remove(node)
        for key in (plan.node, name):
            self.net.nameToNode.pop(key, None)
        fd = node.stdout.fileno()          # Mininet's pty to the shell, and its indexes
        node.outToNode.pop(fd, None)
        node.inToNode.pop(fd, None)
        node.stdout.close()
        os.close(node.slave)
        remove_files(self.state.node_dir(plan.node), self.state.node_dir(plan.node).parent)

    def ovs(self, host: str) -> OvsInstance:
        """The host's OVS, as start_routers made it (one instance per host)."""
        return self.routers[host]

    def _record(self, node, name: str) -> None:
        self.state.record_process(node.pid, "node", node=name)

    def write_nodes(self) -> None:
        """nodes.json: display name -> node, written by this runner only (it owns the fabric)."""
        nodes = {}
        for name, node in self.host_nodes.items():
            nodes[name] = {"kind": "host", "node": node.name, "pid": node.pid,
                           "underlay_ip": str(self.plan.hosts[name].host.underlay_ip)}
        for name, node in self.vm_nodes.items():
            plan = self.vm_plans[name]
            vm = plan.vm
            nodes[name] = {"kind": "vm", "node": node.name, "pid": node.pid, "vpc": vm.vpc,
                           "host": vm.host, "ip": str(vm.ip), "mac": vm.mac, "eni": vm.eni,
                           "eni_key": eni_key(plan.ofport), "ttl": vm.ttl}
        for info in nodes.values():
            info["start"] = process_start_time(info["pid"])
        self.state.write_nodes(nodes)

    # -- mapping service ---------------------------------------------------------
    def start_mapping_service(self) -> None:
        """Start the mapping service and wait until it listens (how a dead one restarts)."""
        self.launch_mapping_service()
        self.await_mapping_service()

    def launch_mapping_service(self) -> None:
        """Start the mapping service, recorded at once; `up` does it as soon as its address
        exists (_hosts_made), so it starts while the VMs are made."""
        env = {**os.environ, "VPCLAB_STATE_DIR": str(self.state.dir), "PYTHONPATH": str(REPO)}
        with self.state.log("mapping-service").open("a") as log:
            proc = subprocess.Popen([sys.executable, "-m", "ryu_apps.launcher", str(CONTROLLER_IP),
                                     str(CONTROLLER_PORT)], env=env, cwd=REPO, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.service = proc
        self.state.record_process(proc.pid, "mapping-service")

    def await_mapping_service(self) -> None:
        """Return once the service launched last listens (OpenFlow and its API); raise if it
        exited instead."""
        proc, api = self.service, self.state.dir / "mapping.sock"
        wait_until(lambda: proc.poll() is not None or
                   (api.exists() and _listening(CONTROLLER_IP, CONTROLLER_PORT)),
                   "the mapping service to listen", timeout=20, on_failure=self._service_log)
        if proc.poll() is not None:
            raise VpclabError(f"the mapping service exited (code {proc.returncode})\n"
                              + self._service_log())

    def supervise(self) -> None:
        """Keep the mapping service and every host's OVS running until teardown.

        While the service is away the routers forward on what they hold (secure fail
        mode) and a new one resynchronises them as they reconnect; a restarted
        ovs-vswitchd reconnects clean and is programmed afresh. See vpclab/running/supervisor.py."""
        Supervisor(self.state, self.restart, self.lock, lambda: self.stopping).run()

    def restart(self, role: str, node: str) -> None:
        """Start one dead part again and record its new process (the supervisor's hook)."""
        if role == "mapping-service":
            self._restart_service()
            return
        ovs = self.routers[node]
        if role == "ovsdb-server":
            self.state.record_process(ovs.start_ovsdb(), role, node=node)
            return
        self.state.record_process(ovs.start_vswitchd(), role, node=node)
        try:
            ovs.await_configured(self.plan)
        except Exception:   # half configured: stop it (by its record), the supervisor retries
            stop_processes([newest(self.state.processes())[(role, node)]], grace=0)
            raise

    def _restart_service(self) -> None:
        self.service.poll()                 # reap the dead one
        try:
            self.start_mapping_service()
        except Exception:
            if self.service.poll() is None:  # started but never listened: not a service
                self.service.kill()
                self.service.wait()
            raise

    def _service_log(self) -> str:
        path = self.state.log("mapping-service")
        lines = path.read_text().splitlines()[-15:] if path.exists() else []
        return f"last lines of {path}:\n" + "\n".join("  " + line for line in lines)

    # -- virtual routers -----------------------------------------------------------
    def wait_links_up(self) -> None:
        """A veth's carrier comes up through the kernel's linkwatch, up to a second
        after `ip link set up`; until then what is sent on it is dropped (a lost
        controller SYN costs OVS a 1 s backoff). Runs while the service starts."""
        wait_until(self._lab_ports_up, "the lab's underlay and management ports to come up",
                   timeout=10)
        for host in self.plan.hosts.values():
            wait_until(lambda: self._host_ports_up(host), f"the links of {host.name} to come up",
                       timeout=10)

    def _host_ports_up(self, host: HostPlan) -> bool:
        wanted = {"eth0", "mgmt0"} | {vm.port_name for vm in self.plan.vms_on(host.name)}
        return wanted <= links_up(self.host_nodes[host.name].pid)

    def start_routers(self) -> None:
        def start(host: HostPlan) -> None:
            ovs = OvsInstance(host, self.host_nodes[host.name].pid, self.state.host_dir(host.node))
            self.routers[host.name] = ovs
            ovs.start(self.plan, lambda pid, role: self.state.record_process(pid, role,
                                                                             node=host.name))

        with ThreadPoolExecutor(max_workers=8) as pool:
            for future in [pool.submit(start, h) for h in self.plan.hosts.values()]:
                future.result()

    def _lab_ports_up(self) -> bool:
        names = ["underlay", "mgmt"] + [f"{p}-{h.node}" for h in self.plan.hosts.values()
                                        for p in ("ul", "mg")]
        return all(Path(f"/sys/class/net/{n}/operstate").read_text().strip() == "up"
                   for n in names)

    def wait_routers_ready(self) -> None:
        want = {h.dpid for h in self.plan.hosts.values()}

        def ready() -> bool:
            return want <= {e["dpid"] for e in self.state.events.read() if e["event"] == "router_ready"}
        wait_until(ready, "every virtual router to connect to the mapping service", timeout=30,
                   on_failure=self._service_log)

    def _dhcp_vms(self) -> list[str]:
        return [name for name, vm in self.plan.topology.vms.items() if vm.dhcp]

    def lease_dhcp(self) -> None:
        """Every `dhcp: true` VM asks its router for its address (vpclab/running/dhcp_client.py),
        once the routers are programmed: the DHCP exchange is answered on its host."""
        script = dhcp_client.write_script(self.state.dir / TOOLS)
        dhcp_client.lease_all(script, {name: self.vm_nodes[name].pid for name in self._dhcp_vms()})

    # -- interactive ---------------------------------------------------------------
    def cli(self) -> None:
        from vpclab.lab_cli import make_cli

        names = ", ".join(self.vm_nodes)
        host = next(iter(self.host_nodes), "HOST")
        print(f"VMs: {names}\nHosts: {', '.join(self.host_nodes)}\n"
              f"Try: {next(iter(self.vm_nodes), 'VM')} ping -c 1 <ip>   ·   pingall   ·   "
              f"flows {host}   ·   {host} ovs-vsctl show   ·   help   (exit or Ctrl-D to end)")
        make_cli(self)(self.net)

    # -- teardown --------------------------------------------------------------------
    def teardown(self) -> None:
        """Stop what this runner started (by recorded PID); the namespaces go with them."""
        with self.lock:     # a restart in progress finishes (and is recorded) first
            self.stopping = True
        mine = [p for p in self.state.processes() if p.role != "runner"]
        stop_processes(mine)


def _listening(host, port: int) -> bool:
    try:
        with socket.create_connection((str(host), port), timeout=0.2):
            return True
    except OSError:
        return False
