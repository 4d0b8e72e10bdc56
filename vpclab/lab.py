"""vpclab's Python API: a lab, driven from a script, a test or the CLI.

    import vpclab

    with vpclab.Lab("topologies/seed.yaml") as lab:
        assert lab.ping("ZIGI-VM1", "ZIGI-VM2")

This is the one way a lab is driven: the CLI verbs, `vpclab demo`, the benches and
the tests all go through `Lab`. A lab runs in its own runner process (see
vpclab/running/runner.py), so a `Lab` is a handle: it starts the runner and waits until
the lab is ready, asks it for changes, runs commands in its nodes, and removes
everything the lab made when the `with` block ends, however it ends
(vpclab/running/cleanup.py). Every failure is a `VpclabError` whose text is what the CLI
prints for the same mistake.
"""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from vpclab.running import api_client, cleanup, health, lifecycle, live
from vpclab.packets.capture import LabCapture, default_dir
from vpclab.errors import VpclabError
from vpclab.learner import learner_record
from vpclab.running.ovs import TOOLS, tool_environment
from vpclab.running.ownership import sudo_owner
from vpclab.model.names import check_display_name, check_lab_name
from vpclab.model.plan import FabricPlan, plan_fabric
from vpclab.results import ChangeReport, ChangeUnconfirmed, ExecResult
from vpclab.running.shell import in_netns_of
from vpclab.running.state import LabState, process_start_time
from vpclab.model.topology import Topology
from vpclab.model.validation import load_topology

if TYPE_CHECKING:
    from vpclab.packets.pinger import RunningPing

TopologySource = str | Path | Mapping[str, Any]
OnPhase = Callable[[str, float], None]


def require_root(what: str = "vpclab.Lab") -> None:
    if os.geteuid() != 0:
        script = sys.argv[0] if sys.argv and sys.argv[0] else "SCRIPT"
        raise VpclabError(f"{what} needs root (network namespaces, Open vSwitch): run it as "
                          f"root, e.g. `sudo python {script}`")


def _table(name: str) -> str:
    """A route table's name, or VPC/NAME, each part checked like any name."""
    parts = name.split("/") if isinstance(name, str) else [name]
    if len(parts) > 2:
        raise VpclabError(f"route table {name!r}: a name, or VPC/NAME")
    return "/".join(check_display_name(part, "route table name") for part in parts)


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except (ValueError, TypeError):
        raise VpclabError(f"route destination {value!r} is not an IPv4 CIDR in network form, "
                          "e.g. 10.50.1.0/24") from None


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise VpclabError(f"{value!r} is not an IP address") from None


class Lab:
    """One lab: build it with `with Lab(...)` (or `start()`), remove it on leaving the block
    (or with `down()`). A topology mistake raises at once, before anything is built."""

    def __init__(self, topology: TopologySource, *, name: str | None = None,
                 mode: str | None = None, learner: Mapping[str, str | Path] | None = None,
                 learner_user: tuple[int, int] | None = None):
        """`topology`: a YAML file's path or a dict in the same form. `name` overrides the
        file's (one file can then run twice); `mode` overrides mapping.mode ("on-demand"
        or "preload"). Raises TopologyError (a VpclabError) with every error and its YAML
        path, as `vpclab validate` prints them. `learner` (classroom exercises) maps a part
        of the mapping service (vpclab.learner.HOOKS, e.g. "answer_arp") to a learner's
        Python file that runs in its place, as an unprivileged user, never as root:
        `learner_user` (uid, gid), by default the user behind sudo, else `nobody`."""
        self.topology, self._text = lifecycle.prepare(topology, name, mode)
        self._learner = learner_record(learner, learner_user or sudo_owner()) if learner else None
        self.name = self.topology.name
        self._state: LabState | None = None
        self._runner: tuple[int, int | None] | None = None    # whose lab this handle drives
        self._owned = True
        self._captures: list[LabCapture] = []
        self._processes: list[subprocess.Popen] = []
        self._pings: list[RunningPing] = []

    @classmethod
    def attach(cls, name: str) -> "Lab":
        """A handle to a lab already running (started by `vpclab up` or another script).
        Leaving a `with` block stops the captures made through it but does not remove the
        lab; `down()` still does, if you ask."""
        check_lab_name(name)
        require_root("attaching to a lab")
        state = lifecycle.running_lab(name)
        lab = cls.__new__(cls)
        lab.topology, lab._text = load_topology(state.topology_path), state.topology_path.read_text()
        lab.name, lab._owned, lab._captures, lab._processes, lab._pings = name, False, [], [], []
        lab._bind(state)
        return lab

    # -- life ------------------------------------------------------------------------------
    def start(self, on_phase: OnPhase | None = None, timeout: float = 120.0) -> "Lab":
        """Build the lab and return once it is ready: every virtual router connected to the
        mapping service and programmed, every VM plugged in. `on_phase(name, seconds)` is
        called as each build phase ends. On failure, Ctrl-C, SIGTERM or SIGHUP, everything
        built so far is removed first; a failure's VpclabError carries the end of the
        runner's log."""
        if self._state is not None:
            raise VpclabError(f"lab {self.name!r} is already started")
        require_root()
        with cleanup.starting():
            try:
                lifecycle.up(self.topology, self._text, on_phase or (lambda n, s: None), timeout,
                             on_started=self._bind, learner=self._learner)
            except BaseException:
                self._unbind()          # lifecycle.up removed what it made
                raise
        return self

    def _bind(self, state: LabState) -> None:
        """From here on this handle drives `state`'s lab, the one whose runner is recorded now."""
        runner = state.runner()
        self._state, self._runner = state, (runner.pid, runner.start) if runner else None
        if self._owned:
            cleanup.own(id(self), self.down)

    def _unbind(self) -> None:
        self._state = self._runner = None
        cleanup.release(id(self))

    def detach(self) -> "Lab":
        """Leave the lab running after this handle: neither the end of a `with` block nor the
        script's exit removes it (what `vpclab up` does). `Lab.attach(name)` finds it again,
        `vpclab down NAME` removes it."""
        self._owned = False
        cleanup.release(id(self))
        return self

    @staticmethod
    def remove(name: str) -> bool:
        """Remove the lab called `name`, running or left over from a crash, by its records;
        True if anything of it existed. Idempotent (what `vpclab down NAME` does)."""
        check_lab_name(name)
        require_root("removing a lab")
        with cleanup.uninterrupted():
            return lifecycle.down(name)

    def interact(self) -> int:
        """Build the lab in this terminal with the Mininet CLI; remove it when the CLI exits.
        Returns the runner's exit code."""
        require_root()
        return lifecycle.interact(self.topology, self._text)

    def down(self) -> bool:
        """Stop this handle's captures and running pings, then remove the lab: its namespaces,
        every process in them (also ones started with `popen`, which are reaped) and its
        state; returns once all are gone. True if there was anything to remove. Ctrl-C,
        SIGTERM and SIGHUP wait until it is done. A handle removes only its own lab: one
        never started, or whose lab was already replaced by another of the same name,
        removes nothing."""
        if self._state is None:
            return False
        with cleanup.uninterrupted():
            try:
                self._stop_captures()
            finally:
                ours = self._is_current()
                self._unbind()
                removed = lifecycle.down(self.name) if ours else False
                for process in self._processes:
                    process.wait()              # killed with the lab's namespaces: reap it
                self._processes.clear()
        return removed

    def _stop_captures(self) -> None:
        """Stop every capture of this handle (each on its own: one that fails does not keep
        the others, or the lab, running); raise the first failure afterwards."""
        errors = []
        for part in [*self._pings, *self._captures]:     # pings first: their traffic stops
            try:
                part.stop()
            except Exception as exc:  # noqa: BLE001 - reported once all are stopped
                errors.append(exc)
        if errors:
            raise errors[0]

    def _is_current(self) -> bool:
        """Is the lab of this name still the one this handle started or attached to?"""
        if self._state is None:
            return False
        runner = self._state.runner()
        return self._runner is None or runner is None or (runner.pid, runner.start) == self._runner

    def __enter__(self) -> "Lab":
        return self if self._state is not None else self.start()

    def __exit__(self, *exc) -> None:
        if self._owned:
            self.down()
        else:
            self._stop_captures()     # an attached lab stays; what this handle started does not

    def __repr__(self) -> str:
        return f"<vpclab.Lab {self.name!r} {'running' if self._state else 'not running here'}>"

    @property
    def state(self) -> LabState:
        """The lab's records (internal: processes, logs, events); raises if this handle has no
        running lab (never started, removed, or replaced by another lab of the same name)."""
        if self._state is None:
            raise VpclabError(f"lab {self.name!r} is not running from this handle: start it "
                              "(`with Lab(...) as lab`, lab.start()) or attach to it "
                              "(Lab.attach(name))")
        if not self._is_current():
            raise VpclabError(f"lab {self.name!r} that this handle drove is gone: another lab of "
                              f"that name runs now; Lab.attach({self.name!r}) drives that one")
        return self._state

    # -- what is in it -----------------------------------------------------------------------
    @property
    def captures(self) -> list[LabCapture]:
        """Every capture made through this handle, in order (their folders stay)."""
        return list(self._captures)

    @property
    def plan(self) -> FabricPlan:
        """Every host's and VM's names, addresses, ports and namespaces, as built."""
        return plan_fabric(self.topology)

    def nodes(self) -> dict[str, dict[str, Any]]:
        """Every node now (VMs added since start included): kind, vpc, host, ip, mac..."""
        return self.state.nodes()

    @property
    def vms(self) -> list[str]:
        """The names of the lab's VMs now."""
        return [name for name, node in self.nodes().items() if node["kind"] == "vm"]

    @property
    def hosts(self) -> list[str]:
        """The names of the lab's physical hosts."""
        return [name for name, node in self.nodes().items() if node["kind"] == "host"]

    def address(self, target: str) -> str:
        """An IP as given, or the IP of a VM (its ENI's) or of a host (its underlay NIC's)."""
        try:
            return str(ipaddress.ip_address(target))
        except ValueError:
            node = self._node(target)
            return node.get("ip") or node["underlay_ip"]

    def log(self, name: str = "runner") -> Path:
        """A log of the lab: "runner", "mapping-service", or a host's daemon."""
        return self.state.log(name)

    def status(self) -> dict[str, Any]:
        """What `vpclab status LAB --json` prints: ready or degraded (and why), nodes, processes."""
        return health.lab_status(self.state)

    def stats(self) -> dict[str, Any]:
        """What `vpclab stats LAB --json` prints: the mapping service's and each router's counters."""
        return api_client.call(self.state, "GET", "/stats")

    def mappings(self) -> list[dict[str, Any]]:
        """What `vpclab mapping list LAB --json` prints: every (VPC, IP) -> ENI, MAC, host."""
        return api_client.call(self.state, "GET", "/mappings")

    def mapping(self, vpc: str, ip: str) -> dict[str, Any]:
        """One mapping, as `vpclab mapping show LAB VPC IP` prints it."""
        path = f"/mappings/{check_display_name(vpc, 'VPC name')}/{_ip(ip)}"
        return api_client.call(self.state, "GET", path)

    # -- running things in nodes -------------------------------------------------------------
    def command(self, node: str, *argv: str) -> list[str]:
        """The argv that runs `argv` inside `node` (its network and mount namespaces), for
        subprocess or os.exec. On a host, OVS tools find that host's own Open vSwitch."""
        if not argv or not all(isinstance(arg, str) for arg in argv):
            raise VpclabError(f"say what to run in {node}: strings, e.g. lab.exec({node!r}, "
                              "'ip', 'addr')")
        info = self._node(node)
        if info["kind"] == "host":
            tools = tool_environment(self.state.host_dir(info["node"]), self.state.dir / TOOLS)
            argv = ("env", *(f"{name}={value}" for name, value in tools.items()), *argv)
        return in_netns_of(info["pid"], list(argv))

    def exec(self, node: str, *argv: str, timeout: float = 60.0, input: str | None = None,
             check: bool = False) -> ExecResult:
        """Run `argv` inside a VM or host (by name) and wait until it exits, at most `timeout`
        seconds. `check=True` raises a VpclabError if it exits non-zero."""
        try:   # no stdin unless given: a command that reads it must not wait on the terminal
            done = subprocess.run(self.command(node, *argv), capture_output=True, text=True,
                                  errors="replace", timeout=timeout, input=input,
                                  stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise VpclabError(f"{node}$ {' '.join(argv)} did not finish in {timeout:g} s")
        for capture in self._captures:
            if not capture.stopped:
                capture.ran(node, list(argv), done.returncode)
        result = ExecResult(node, list(argv), done.returncode, done.stdout, done.stderr)
        return result.check() if check else result

    def popen(self, node: str, *argv: str, **kwargs: Any) -> subprocess.Popen:
        """Start `argv` inside a node and return at once (e.g. a long ping). `down()` stops
        it if you do not."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        process = subprocess.Popen(self.command(node, *argv), **kwargs)
        self._processes.append(process)
        return process

    def ping(self, source: str, target: str, count: int = 1, wait: float = 2.0) -> bool:
        """Ping `target` (a VM or host name, or an IP) from `source`; True if a reply came back.
        Waits up to `wait` seconds for each reply."""
        extra = ["-i", "0.2"] if count > 1 else []
        return self.exec(source, "ping", "-n", "-q", "-c", str(count), "-W", f"{wait:g}", *extra,
                         self.address(target)).ok

    def running_ping(self, vm: str, target: str, interval: float = 0.1) -> "RunningPing":
        """Ping `target` every `interval` seconds from `vm` until the `with` block ends (or
        `down()`), with each request's and reply's time captured: `.lost()` lists the
        unanswered requests. Returns once the capture listens and the ping has started."""
        from vpclab.packets.pinger import RunningPing
        pinger = RunningPing(self, vm, target, interval)
        self._pings.append(pinger)
        return pinger

    def capture(self, points: list[str], output: str | Path | None = None,
                filter: str = "", quiet: float = 0.3) -> LabCapture:
        """tcpdump on each point (a node's eth0, or NODE:IFACE such as "host1:eth0"), in a
        `with` block: entering returns once every tcpdump is listening, leaving waits until
        the traffic settles (no capture grew for `quiet` seconds) and writes the folder
        (default captures/LAB-DATE). Commands run with `exec` meanwhile are noted in its
        capture.json. `filter` is a tcpdump expression, e.g. "icmp or arp"."""
        if isinstance(points, str):
            points = [points]
        capture = LabCapture(self.state, points, output or default_dir(self.name), filter,
                             quiet=quiet)
        self._captures.append(capture)
        return capture

    # -- live changes ------------------------------------------------------------------------
    def move(self, vm: str, host: str) -> ChangeReport:
        """Migrate a running VM to another host (it keeps its IP and MAC). Returns once the
        mapping service has the new location, every router that cached the old one has
        confirmed its invalidation, and the VM's interface is on the new host's router.
        Raises ChangeUnconfirmed (a CheckFailed) if a router did not confirm in time."""
        check_display_name(vm, "VM name")
        check_display_name(host, "host name")
        return self._confirmed(live.move_vm(self.state, vm, host))

    def add_vm(self, name: str, *, vpc: str, host: str, ip: str, mac: str | None = None,
               eni: str | None = None, source_dest_check: bool = True) -> ChangeReport:
        """Add a VM and its ENI mapping (validated like a topology file's; in a VPC with
        subnets, its subnet is the one its address is in); returns once it is plugged in and
        every affected router confirmed. report.details has its mac, eni, port, subnet.
        `source_dest_check=False`: an appliance (a NAT, a firewall) that forwards for others."""
        for value, what in ((name, "VM name"), (vpc, "VPC name"), (host, "host name")):
            check_display_name(value, what)
        if not isinstance(source_dest_check, bool):
            raise VpclabError(f"source_dest_check must be True or False, not {source_dest_check!r}")
        return self._confirmed(live.add_vm(self.state, name, vpc, host, ip, mac, eni,
                                           None if source_dest_check else False))

    def delete_vm(self, name: str) -> ChangeReport:
        """Remove a VM and its mapping; returns once every router that cached it confirmed."""
        check_display_name(name, "VM name")
        return self._confirmed(live.delete_vm(self.state, name))

    def routes(self) -> list[dict[str, Any]]:
        """What `vpclab mapping routes LAB --json` prints: every route of every VPC route table,
        its state (local, active, blackhole), the subnets using it, the routers caching it."""
        return api_client.call(self.state, "GET", "/routes")

    def add_route(self, table: str, destination: str, target: str) -> ChangeReport:
        """Add a route (AWS's create-route): `destination` (a CIDR) to `target` (a VM of the
        table's VPC, its ENI). Returns once every router that cached that table confirmed its
        invalidation (preload: has the new route)."""
        body = {"table": _table(table), "destination": _cidr(destination),
                "target": check_display_name(target, "route target (a VM name)")}
        return self._confirmed(api_client.call(self.state, "POST", "/routes", body))

    def delete_route(self, table: str, destination: str) -> ChangeReport:
        """Delete a route (the implicit local route cannot be); confirmed as add_route is."""
        body = {"table": _table(table), "destination": _cidr(destination)}
        return self._confirmed(api_client.call(self.state, "DELETE", "/routes", body))

    @staticmethod
    def _confirmed(result: dict[str, Any]) -> ChangeReport:
        report = ChangeReport.from_result(result)
        if not report.confirmed:
            raise ChangeUnconfirmed(report)
        return report

    def _node(self, name: str) -> dict[str, Any]:
        check_display_name(name, "node name")
        nodes = self.nodes()
        info = nodes.get(name)
        if info is None:
            raise VpclabError(f"lab {self.name!r} has no node {name!r}; nodes: {', '.join(nodes)}")
        if process_start_time(info["pid"]) != info["start"]:
            raise VpclabError(f"node {name!r} of lab {self.name!r} is gone; "
                              f"`vpclab down {self.name}` then `vpclab up` again")
        return info

    # -- look inside the router --------------------------------------------------------------
    def flows(self, host: str) -> list[FlowLine]:
        """`host`'s virtual router, flow by flow, in the words of the VPC (what `vpclab flows
        LAB HOST` prints): one FlowLine per flow in pipeline order, with `.stage` (CLASSIFY,
        ARP, FORWARD, CHECK, DELIVER), `.text`, `.packets`, `.flow` (the OpenFlow entry as
        dump-flows reports it) and `.known` (False: a flow vpclab never makes, shown raw)."""
        from vpclab.inside import router_view
        return router_view.flows(self, host)[1]

    def trace(self, vm: str | None, to: str, *, proto: str = "icmp", src: str | None = None,
              src_mac: str | None = None, from_host: str | None = None) -> RouterTrace:
        """The packet `vm` would send to `to` (an IP or a VM name), run through its host's real
        router with ofproto/trace (nothing is sent): each stage's flow in words and the verdict
        (`.verdict.kind`: delivered, tunnel, answered, flooded, miss, dropped or not sent, with
        `.reason`). The VM's own routes decide first: no route, or its own address, and it
        sends nothing (not sent); a next hop such as a NAT VM gets the packet's MAC. A VM named
        in another VPC than the sender's is reached at that address in the sender's VPC.
        `proto`: "icmp", "arp", "tcp:PORT" or "udp:PORT"; `src`/`src_mac` forge the source.
        With `from_host`, the packet as it arrives from that host's tunnel at the router of
        `to`'s host (`vm`: the sender it carries, whose routes pick an appliance next hop;
        None: from_host's VM of that VPC)."""
        from vpclab.inside import router_view
        return router_view.trace(self, vm, to, proto=proto, src=src, src_mac=src_mac,
                                 from_host=from_host)

    def _host(self, host: str) -> dict[str, Any]:
        info = self._node(host)
        if info["kind"] != "host":
            raise VpclabError(f"{host!r} is a VM, not a host; hosts: {', '.join(self.hosts)}")
        return info

    def _host_dir(self, host: str) -> Path:
        return self.state.host_dir(self._host(host)["node"])
