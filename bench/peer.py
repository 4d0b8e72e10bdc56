"""The fair peer of issue 14: the lab a teacher builds without vpclab.

Two "physical hosts", each its own network namespace running its own userspace Open vSwitch
(ovsdb-server + ovs-vswitchd, netdev datapath, private run/db/log dirs under one temporary
directory, as vpclab/running/ovs.py gives its hosts) with one bridge that is a plain L2 learning
switch (no controller, so the NORMAL action); the two hosts joined by one veth with the MTU
of vpclab's underlay; one VM on each, set up as vpclab/running/fabric.py _vm_setup sets up its VMs
(MTU 1500, IPv6 off, multicast off, tx/tso/gso offloads off, the seed's addresses and MACs).
No tunnel, no controller, no mapping service.

Everything is made inside namespaces this bench creates (`ip netns add`, veths created in
one of them with the peer end placed in the other at creation): nothing is added to the
machine's own namespace. Cleanup removes only what this object made: the daemons it started
(recorded PID and start time, stopped while still the same process), the namespaces it added
(by the exact names it added) and its own temporary directory; every step is tried, and what
failed is raised at the end.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from vpclab.model.plan import UNDERLAY_MTU, VM_MTU
from vpclab.running.state import namespace_id, process_start_time, processes_in
from vpclab.running.wait import wait_until

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
NO_IPV6 = ("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
           " net.ipv6.conf.lo.disable_ipv6=1")


class Daemon:
    """An OVS daemon this bench started, in the foreground (no --detach), so the PID recorded
    here is the daemon's own (`ip netns exec` execs it) and stays ours until reaped."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path):
        with log.open("w") as out:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        self.start = process_start_time(self.proc.pid)      # recorded the moment it exists
        self.name, self.log = name, log

    def ours(self) -> bool:
        """Still the very process started (an unreaped child, its start time unchanged)."""
        return (self.proc.poll() is None and self.start is not None
                and process_start_time(self.proc.pid) == self.start)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` s; only while it is still the recorded process."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.ours():
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue
        raise RuntimeError(f"{self.name} (PID {self.proc.pid}) still runs after SIGKILL")


def sh(argv: list[str], env: dict[str, str] | None = None, timeout: float = 60,
       stdin: str | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                          input=stdin)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed (exit {done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()}")
    return done.stdout


class Owned:
    """Namespaces, daemons, processes and one temporary directory this bench made, removed
    by close() (idempotent), newest first."""

    def __init__(self, prefix: str):
        self.tag = secrets.token_hex(3)     # not "vpclab-...": vpclab would take it for a lab's
        self.prefix = f"{prefix}-{self.tag}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"vpclab-bench-{prefix}-"))
        self.namespaces: list[str] = []
        self.daemons: list[Daemon] = []
        self.processes: list[subprocess.Popen] = []
        self.closed = False

    def netns(self, name: str) -> str:
        ns = f"{self.prefix}-{name}"
        sh(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        return ns

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(argv, **kwargs)
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        errors: list[str] = []
        for proc in reversed(self.processes):     # e.g. a tcpdump or iperf3 left by a failure
            try:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        if proc.poll() is None:
                            proc.kill()
                        proc.wait(timeout=5)
            except Exception as exc:  # noqa: BLE001 - every step runs; reported below
                errors.append(f"stopping PID {proc.pid}: {exc}")
        for started in reversed(self.daemons):       # ovs-vswitchd, then ovsdb-server
            try:
                started.stop()
            except Exception as exc:  # noqa: BLE001
                errors.append(f"stopping {started.name}: {exc}")
        for ns in reversed(self.namespaces):
            try:    # what still runs in it is reported, not killed: this run did not record it
                left = processes_in({namespace_id(Path("/run/netns") / ns)} - {None})
                if left:
                    errors.append(f"still running in namespace {ns}: PIDs "
                                  f"{', '.join(str(p.pid) for p in left)}")
                sh(["ip", "netns", "delete", ns])
            except Exception as exc:  # noqa: BLE001
                errors.append(f"deleting namespace {ns}: {exc}")
        try:
            shutil.rmtree(self.dir)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"removing {self.dir}: {exc}")
        if errors:
            raise RuntimeError(f"cleanup of {self.prefix} failed:\n  " + "\n  ".join(errors))


class OvsHost:
    """One peer host: its own ovsdb-server and ovs-vswitchd in its namespace, private dirs."""

    def __init__(self, owned: Owned, ns: str):
        self.owned, self.ns = owned, ns
        self.dir = owned.dir / ns
        self.dir.mkdir()
        self.env = {**os.environ, "OVS_RUNDIR": str(self.dir), "OVS_DBDIR": str(self.dir),
                    "OVS_LOGDIR": str(self.dir), "OVS_SYSCONFDIR": str(self.dir)}
        self.db = f"unix:{self.dir}/db.sock"

    def run(self, *argv: str) -> str:
        return sh(["ip", "netns", "exec", self.ns, *argv], env=self.env)

    def daemon(self, *argv: str, ready: Path) -> None:
        started = Daemon(argv[0], ["ip", "netns", "exec", self.ns, *argv,
                                   f"--log-file={self.dir}/{argv[0]}.log"],
                         self.env, self.dir / f"{argv[0]}.out")
        self.owned.daemons.append(started)
        wait_until(lambda: ready.exists() or not started.ours(), f"{argv[0]} in {self.ns}")
        if not started.ours():
            raise RuntimeError(f"{argv[0]} in {self.ns} exited at start: "
                               f"{started.log.read_text().strip()}")

    def start(self, ports: list[str]) -> None:
        """A netdev bridge br0 with `ports`, no controller: fail_mode standalone, i.e. the
        NORMAL action, a MAC-learning switch. Returns once vswitchd has applied it."""
        self.run("ovsdb-tool", "create", f"{self.dir}/conf.db", SCHEMA)
        self.daemon("ovsdb-server", f"{self.dir}/conf.db", f"--remote=punix:{self.dir}/db.sock",
                    ready=self.dir / "db.sock")
        cmds = ["--", "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev"]
        for port in ports:
            cmds += ["--", "add-port", "br0", port]
        self.run("ovs-vsctl", f"--db={self.db}", "--no-wait", "init", *cmds)
        self.daemon("ovs-vswitchd", self.db, f"--unixctl={self.dir}/ovs-vswitchd.ctl",
                    "--disable-system", ready=self.dir / "ovs-vswitchd.ctl")
        # a waiting transaction returns once ovs-vswitchd has applied the configuration
        self.run("ovs-vsctl", f"--db={self.db}", "--timeout=30", "set", "Open_vSwitch", ".",
                 "external_ids:bench=1")


def carrier(ns: str, dev: str) -> bool:
    out = subprocess.run(["ip", "-n", ns, "-o", "link", "show", dev], capture_output=True,
                         text=True).stdout
    return "LOWER_UP" in out and "state UP" in out


class TwoSwitchPeer:
    """host1 [br0: vm1p, eth0] ==veth (MTU 9000)== host2 [br0: eth0, vm2p]; vm1, vm2 on them.
    Use as a context manager; the VMs' addresses and MACs are the seed's."""

    VMS = (("10.0.0.148", "02:00:5e:ad:58:40"), ("10.0.0.185", "02:93:0e:03:bb:88"))
    PREFIX = 24

    def __init__(self):
        self.owned = Owned("b14peer")
        self.vm_ns: list[str] = []
        self.hosts: list[OvsHost] = []
        self.ips = [ip for ip, _ in self.VMS]

    def __enter__(self) -> "TwoSwitchPeer":
        try:
            self.build()
        except BaseException:
            self.owned.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.owned.close()

    def build(self) -> None:
        o = self.owned
        hosts = [o.netns("h1"), o.netns("h2")]
        self.vm_ns = [o.netns("vm1"), o.netns("vm2")]
        for ns in hosts:
            sh(["ip", "netns", "exec", ns, "sh", "-ec", f"{NO_IPV6}; ip link set lo up"])
        # the "wire" between the two hosts: made in host1, its other end born in host2
        sh(["ip", "-n", hosts[0], "link", "add", "eth0", "mtu", str(UNDERLAY_MTU), "type", "veth",
            "peer", "name", "eth0", "mtu", str(UNDERLAY_MTU), "netns", hosts[1]])
        for i, (ns, host) in enumerate(zip(self.vm_ns, hosts)):
            ip, mac = self.VMS[i]
            port = f"vm{i + 1}p"
            # the VM's NIC, made in the VM's namespace, its router end born in the host's
            sh(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
                "netns", host])
            sh(["ip", "netns", "exec", ns, "sh", "-ec", "; ".join([
                NO_IPV6, "sysctl -qw net.ipv4.ip_default_ttl=255",
                f"ip link set eth0 down address {mac} mtu {VM_MTU} multicast off",
                f"ip addr add {ip}/{self.PREFIX} dev eth0",
                "ethtool -K eth0 tx off tso off gso off >/dev/null 2>&1",
                "ip link set eth0 up", "ip link set lo up"])])
            sh(["ip", "-n", host, "-batch", "-"],
               stdin=f"link set {port} mtu {VM_MTU} up\nlink set eth0 multicast off up\n")
        for i, host in enumerate(hosts):
            self.hosts.append(OvsHost(o, host))
            self.hosts[-1].start([f"vm{i + 1}p", "eth0"])
        for ns, dev in [(hosts[0], "eth0"), (hosts[1], "eth0"), (hosts[0], "vm1p"),
                        (hosts[1], "vm2p"), *((ns, "eth0") for ns in self.vm_ns)]:
            wait_until(lambda: carrier(ns, dev), f"{dev} up in {ns}")

    # -- the interface the measurements use (vm 0 asks, vm 1 answers) ----------------------
    def argv(self, vm: int, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.vm_ns[vm], *cmd]

    def popen(self, vm: int, *cmd: str, **kwargs) -> subprocess.Popen:
        return self.owned.popen(self.argv(vm, *cmd), **kwargs)

    def appctl(self, host: int, *args: str) -> str:
        """`ovs-appctl ARGS` on one peer host's own ovs-vswitchd."""
        ovs = self.hosts[host]
        return ovs.run("ovs-appctl", "-t", f"{ovs.dir}/ovs-vswitchd.ctl", *args)

    def vswitchd_pids(self) -> list[int]:
        return [d.proc.pid for d in self.owned.daemons if d.name == "ovs-vswitchd"]
