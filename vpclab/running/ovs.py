"""One Open vSwitch instance per emulated physical host, as PLATFORM.md prescribes.

Each host namespace runs its own ovsdb-server and ovs-vswitchd (userspace
datapath: this kernel has no OVS module) with private run/db/log directories,
so every host has its own virtual router and tunnels cross a real (veth)
underlay instead of short-circuiting inside one datapath.
"""
from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import Callable

from vpclab.running import unixctl
from vpclab.errors import VpclabError
from vpclab.model.plan import (
    CONTROLLER_IP, CONTROLLER_PORT, TUNNEL_PORT, UNDERLAY_MTU, FabricPlan, HostPlan,
)
from vpclab.running.shell import in_netns_of, run

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
TOOLS = "tools"          # a lab's own folder of tools for its hosts, in its state folder
OFCTL_SHIM = """#!/bin/sh
# vpclab: first on PATH on this lab's hosts (vpclab exec, vpclab run, Lab.exec), so a plain
# `ovs-ofctl dump-flows br-int` works there. A virtual router speaks OpenFlow 1.3 only (OVS
# 3.1 cannot even encode its classification flows in 1.0, the tool's default), so say 1.3
# unless the user chose a version; OVS_RUNDIR already points at the host's own OVS.
for arg in "$@"; do
    case "$arg" in
        -O|-O?*|--protocols|--protocols=*) exec {real} "$@" ;;
    esac
done
exec {real} -O OpenFlow13 "$@"
"""


def write_host_tools(state_dir: Path, real: str | None = None) -> Path:
    """The lab's tools folder (root's, in its state folder: nothing a user can edit is ever
    on root's PATH), with an ovs-ofctl that runs the machine's own by its full path."""
    real = real or shutil.which("ovs-ofctl", path=SYSTEM_PATH)
    if real is None:
        raise VpclabError("ovs-ofctl is not installed: run ./setup.sh")
    folder = state_dir / TOOLS
    folder.mkdir(mode=0o755, exist_ok=True)
    shim = folder / "ovs-ofctl"
    shim.write_text(OFCTL_SHIM.format(real=shlex.quote(real)))
    shim.chmod(0o755)
    return folder


def tool_environment(host_dir: Path, tools: Path) -> dict[str, str]:
    """What a command run on a lab host needs for the OVS tools to find that host's own
    Open vSwitch by the names a user knows (`ovs-vsctl show`, `ovs-ofctl dump-flows
    br-int`, `ovs-appctl dpctl/dump-flows`): its run folder, and the lab's tools folder
    (write_host_tools) first on PATH."""
    return {"OVS_RUNDIR": str(host_dir), "PATH": f"{tools}:{SYSTEM_PATH}"}


class OvsInstance:
    """The OVS daemons of one physical host, run inside that host's namespace."""

    def __init__(self, host: HostPlan, ns_pid: int, directory: Path):
        self.host = host
        self.ns_pid = ns_pid
        self.dir = directory
        self.env = {**os.environ, "OVS_RUNDIR": str(directory), "OVS_DBDIR": str(directory),
                    "OVS_LOGDIR": str(directory), "OVS_SYSCONFDIR": str(directory)}
        self.db = f"unix:{directory}/db.sock"

    def _run(self, argv: list[str], what: str, here: bool = False) -> str:
        """Run an OVS tool in the host's namespaces, or `here` (the lab's) for one that only
        speaks to a daemon's unix socket or writes a file: no nsenter to start (at 32 hosts,
        a few hundred processes fewer in `up`)."""
        return run(argv if here else in_netns_of(self.ns_pid, argv), f"{self.host.name}: {what}",
                   env=self.env)

    def vsctl(self, *args: str, wait: bool = True) -> str:
        base = ["ovs-vsctl", f"--db={self.db}", "--timeout=20"] + ([] if wait else ["--no-wait"])
        return self._run(base + list(args), "ovs-vsctl", here=True)

    def appctl(self, *args: str) -> str:
        return self._run(["ovs-appctl", *args], "ovs-appctl")    # OVS_RUNDIR finds the daemon

    def pidfile(self, daemon: str) -> int:
        return int((self.dir / f"{daemon}.pid").read_text())

    def start(self, plan: FabricPlan, record: Callable[[int, str], None]) -> None:
        """Start both daemons and configure both bridges; record(pid, role) each daemon
        the moment it exists, so a failure later on leaves nothing unrecorded."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._run(["ovsdb-tool", "create", f"{self.dir}/conf.db", SCHEMA], "ovsdb-tool", here=True)
        record(self.start_ovsdb(), "ovsdb-server")
        # The whole configuration in one transaction, before vswitchd exists: br-int is
        # born with its controller and secure fail mode, so no flow is ever wiped.
        self.vsctl("init", *self.bridge_commands(plan), wait=False)
        record(self.start_vswitchd(), "ovs-vswitchd")
        self.await_configured(plan)

    def start_ovsdb(self) -> int:
        """Start ovsdb-server on this host's conf.db; also how a dead one is restarted:
        the database file holds everything, and a running vswitchd reconnects by itself."""
        self._run(["ovsdb-server", f"{self.dir}/conf.db", f"--remote=punix:{self.dir}/db.sock",
                   f"--pidfile={self.dir}/ovsdb-server.pid", "--detach",
                   f"--log-file={self.dir}/ovsdb-server.log"], "ovsdb-server")
        return self.pidfile("ovsdb-server")

    def start_vswitchd(self) -> int:
        """Start ovs-vswitchd; also how a dead one is restarted: the database still holds
        the bridges, the ports (with their OpenFlow port numbers) and the controller, so
        br-int comes back as it was and reconnects to the mapping service, which
        programs it afresh. Then await_configured()."""
        # its control socket keeps OVS's default name (OVS_RUNDIR/ovs-vswitchd.PID.ctl), so a
        # plain `ovs-appctl ...` on the host finds it, as on any OVS machine
        self._run(["ovs-vswitchd", self.db, f"--pidfile={self.dir}/ovs-vswitchd.pid", "--detach",
                   f"--log-file={self.dir}/ovs-vswitchd.log", "--disable-system"], "ovs-vswitchd")
        return self.pidfile("ovs-vswitchd")

    def await_configured(self, plan: FabricPlan) -> None:
        """Wait until vswitchd has applied the database, then set what lives only in its
        memory and in the kernel (the tunnel neighbours, br-phy's address)."""
        # A waiting transaction returns once vswitchd has applied the configuration.
        self.vsctl("set", "Open_vSwitch", ".", f"external_ids:vpclab-lab={plan.topology.name}")
        self.configure_underlay(plan)

    def bridge_commands(self, plan: FabricPlan) -> list[str]:
        h = self.host
        cmds = ["--", "add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev",
                f"other_config:hwaddr={h.underlay_mac}",
                "--", "set", "interface", "br-phy", f"mtu_request={UNDERLAY_MTU}",
                "--", "add-port", "br-phy", "eth0",
                "--", "add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev",
                "fail_mode=secure", "protocols=OpenFlow13",
                f"other_config:datapath-id={h.dpid:016x}", "other_config:disable-in-band=true",
                "--", "set-controller", "br-int", f"tcp:{CONTROLLER_IP}:{CONTROLLER_PORT}",
                "--", "set", "controller", "br-int", "max_backoff=1000",
                "--", "add-port", "br-int", "tun0", "--", "set", "interface", "tun0",
                f"type={plan.topology.encap}", "options:remote_ip=flow", "options:key=flow",
                f"ofport_request={TUNNEL_PORT}"]
        for vm in plan.vms_on(h.name):
            cmds += ["--", "add-port", "br-int", vm.port_name,
                     "--", "set", "interface", vm.port_name, f"ofport_request={vm.ofport}"]
        return cmds

    def configure_underlay(self, plan: FabricPlan) -> None:
        """Host IP on br-phy, and every peer's MAC pre-loaded: OVS drops the packet
        that triggers its own ARP for a tunnel peer, so the first ping would be lost.
        Idempotent (`replace`): a restarted vswitchd gets the same again. The neighbours
        go on one connection to vswitchd's control socket (vpclab.running.unixctl): a process
        per peer would cost every host a process per other host."""
        ip = f"{self.host.host.underlay_ip}/{plan.topology.underlay.prefixlen}"
        run(in_netns_of(self.ns_pid, ["ip", "-batch", "-"]), f"{self.host.name}: underlay address",
            stdin=f"addr replace {ip} dev br-phy\nlink set br-phy multicast off up\n")
        neighbours = [("tnl/neigh/set", ["br-phy", str(peer.host.underlay_ip), peer.underlay_mac])
                      for peer in plan.hosts.values() if peer.name != self.host.name]
        if neighbours:
            control = self.dir / f"ovs-vswitchd.{self.pidfile('ovs-vswitchd')}.ctl"
            unixctl.call_all(control, neighbours)
