"""Many Mininet nodes at once: the costs of a node paid together, not one node after another.

Mininet makes a node by starting its shell and waiting for the prompt, then configures it
with one round trip to that shell per command, and makes each link with more: at a few
hundred VMs, `up` was almost all waiting on shells one at a time. Here a batch of nodes is
made in four overlapping steps:

1. every node's shell is started (the same command Mininet runs, in its own UTS namespace
   as vpclab.running.identity wants) without waiting for any prompt, each shell's pty with echo off
   from birth (Mininet runs `stty -echo`: a process per node);
2. all prompts are awaited together;
3. the VMs' links: one `ip -batch` per host, run in that host's network namespace, creates
   each veth there with its VM end made directly in the VM's namespace (name, MAC, MTU);
4. each node gets ONE command: its identity (vpclab.running.identity: refused unless its own UTS
   and mount namespaces), its sysctls written through /proc by the shell itself, and its
   interface commands in one `ip -batch` from a here-string; all outputs awaited together.

The nodes are ordinary Mininet nodes of the runner's `net` afterwards: `nameToNode`, the
Mininet CLI, `node.cmd` and the Link/Intf objects (`move_router_end`, `remove_vm`) see what
Mininet's own addHost/addLink would have made. No host's shell is used for a VM's link, so a
VM can be added while the interactive CLI holds the host's shell.
"""
from __future__ import annotations

import os
import pty
import select
import subprocess
import termios
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Callable

from vpclab.errors import VpclabError
from vpclab.running.identity import DONE as IDENTITY_SET, apply_script, not_separate, own_name_node, \
    private_mounts, write_files
from vpclab.running.shell import in_netns_of

SETUP_DONE = "vpclab-setup-done"
PROMPT = chr(127)           # Mininet's prompt and end-of-command sentinel


@dataclass
class NodeJob:
    """One node to make: its Mininet name and class, its identity (hostname and files), and
    its own setup: sysctls (path under /proc/sys -> value), shell words (exports, ethtool)
    and `ip` commands, run in that order once the identity is set."""
    name: str
    base: type                       # mininet.node.Node (a host) or Host (a VM)
    hostname: str
    files: dict[str, str]
    sysctls: dict[str, str] = field(default_factory=dict)
    shell: list[str] = field(default_factory=list)
    ip: list[str] = field(default_factory=list)
    node: object = None              # the Mininet node, once started


@dataclass(frozen=True)
class Veth:
    """A VM's link: `router_end` in the host's namespace, `eth0` (mac, mtu) in the VM's."""
    vm: str                          # the VM's NodeJob name
    host: str                        # its host's node name
    router_end: str
    mac: str
    mtu: int
    up: bool                         # raise the router end now (`up`) or leave it (live add)


@cache
def batched(base: type) -> type:
    """`base` with its own name (vpclab.running.identity) whose shell is started, not awaited."""

    class Batched(own_name_node(base)):
        def startShell(self, mnopts=None):   # noqa: N802 - Mininet's name
            """Mininet's startShell up to, not including, its wait for the prompt: the
            prompt is the first sentinel, so the node is left `waiting` for it."""
            # not mnexec's -c: it closes every descriptor number up to the limit (20,000
            # close calls here, 6 ms a node); Popen's close_fds closes only the open ones
            opts = ("-d" if mnopts is None else mnopts) + ("n" if self.inNamespace else "")
            # PS1 through the environment, not `env PS1=...`: an exec less per node
            cmd = ["mnexec", opts, "bash", "--norc", "--noediting", "-is", "mininet:" + self.name]
            self.master, self.slave = pty.openpty()
            _echo_off(self.slave)
            self._starting_shell = True
            try:
                self.shell = self._popen(cmd, stdin=self.slave, stdout=self.slave,
                                         stderr=self.slave, close_fds=True,
                                         env={**os.environ, "PS1": PROMPT})
            finally:
                self._starting_shell = False
            self.stdin = self.stdout = os.fdopen(self.master, "r")
            self.pid = self.shell.pid
            self.pollOut = select.poll()
            self.pollOut.register(self.stdout)
            self.outToNode[self.stdout.fileno()] = self
            self.inToNode[self.stdin.fileno()] = self
            self.execed, self.lastCmd, self.lastPid, self.readbuf = False, None, None, ""
            self.waiting = True

    Batched.__name__ = f"{base.__name__}WithOwnName"
    return Batched


def _echo_off(tty: int) -> None:
    """No echo on the shell's terminal, so its output is only what commands print."""
    attrs = termios.tcgetattr(tty)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(tty, termios.TCSANOW, attrs)


class Steps:
    """How long each step of a build took: `up`'s largest phase, broken down."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()

    def done(self, step: str) -> None:
        now = time.monotonic()
        self.seconds[step] = round(now - self._last, 3)
        self._last = now


def build(jobs: list[NodeJob], links: list[Veth], hosts: dict[str, object],
          node_dir: Callable[[str], Path], record: Callable[[object], None],
          hosts_made: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Make every node of `jobs` and every link of `links` (their VMs among `jobs`, their
    hosts in `hosts` by node name, already made, or among `jobs`). `record(node)` is called
    the moment a node's shell exists, so a failure later leaves nothing unrecorded;
    `hosts_made()` once the hosts of `jobs` are set up, before the VMs' links.
    Returns how long each step took, in seconds."""
    timeout = 60.0 + 0.1 * len(jobs)     # generous: a slow machine is not a broken lab
    steps = Steps()
    for job in jobs:
        job.node = batched(job.base)(job.name, inNamespace=True)
        record(job.node)
    steps.done("shells started")
    _await([job.node for job in jobs], "start its shell", timeout)
    for job in jobs:
        _refuse_shared(job.node)
    steps.done("prompts")
    vms = {link.vm for link in links}
    # hosts first, awaited: a VM's router end is born in a host whose IPv6 is off already
    _configure([job for job in jobs if job.name not in vms], node_dir, timeout)
    hosts_made()
    steps.done("hosts set up")
    make_links(links, {**hosts, **{job.name: job.node for job in jobs}}, timeout)
    steps.done("links")
    _configure([job for job in jobs if job.name in vms], node_dir, timeout)
    steps.done("VMs set up")
    return steps.seconds


def _configure(jobs: list[NodeJob], node_dir: Callable[[str], Path], timeout: float) -> None:
    """Each node's files, then its one command, sent to all before any is awaited: the
    runner writes the next node's files while the shells already sent run theirs."""
    # every mount table read before any command is sent: reading one waits on the mounts
    # the nodes already sent theirs are making (one lock for all mount namespaces)
    private = [private_mounts(job.node.pid) for job in jobs]
    for job, private_ in zip(jobs, private):
        write_files(node_dir(job.name), job.files)
        job.node.sendCmd(script(job, node_dir(job.name), private_))
    said = _await([job.node for job in jobs], "set its identity and interfaces", timeout)
    for job in jobs:
        check(job.name, said[job.node])


def _refuse_shared(node) -> None:
    shared = not_separate(node.pid)
    if shared:      # never: the shell runs under unshare --uts, in mnexec's mount namespace
        raise VpclabError(f"{node.name}: its shell shares this runner's {shared} namespace; "
                          "refusing to set a hostname or bind files there (they would be "
                          "the machine's)")


def script(job: NodeJob, directory: Path, private: bool) -> str:
    """The node's one command line (see the module's doc), for its shell; `private`: its
    mount table showed no shared mount (vpclab.running.identity.private_mounts)."""
    parts = ["unset HISTFILE; set +m",      # what Mininet's startShell runs, less stty
             apply_script(job.hostname, directory, private)]
    if job.sysctls:
        writes = "; ".join(f"echo {value} > /proc/sys/{path}" for path, value in job.sysctls.items())
        parts.append(f"{{ {writes}; }} 2>/dev/null")
    steps = [*job.shell] + ([f"ip -batch - <<< {ansi_c(chr(10).join(job.ip))}"] if job.ip else [])
    parts.append("{ " + " && ".join([*steps, f"echo {SETUP_DONE}"]) + "; } 2>&1")
    return "; ".join(parts)


def ansi_c(text: str) -> str:
    """`text` as one bash $'...' word: several lines of input on one command line."""
    return "$'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def check(name: str, said: str) -> None:
    """Both markers on lines of their own (an echoed command line would not be one)."""
    lines = {line.strip() for line in said.splitlines()}
    if IDENTITY_SET not in lines:
        raise VpclabError(f"{name}: could not give the node its own hostname and "
                          f"resolver files: {said.strip() or 'no output'}")
    if SETUP_DONE not in lines:
        raise VpclabError(f"{name}: could not set up its interfaces: "
                          f"{said.replace(IDENTITY_SET, '').strip() or 'no output'}")


def make_links(links: list[Veth], nodes: dict[str, object], timeout: float) -> None:
    """Every VM link of the batch, one `ip -batch` per host, all hosts at once: each veth
    made in the host's namespace, its VM end made directly in the VM's (`netns PID`)."""
    by_host: dict[str, list[str]] = {}
    for link in links:
        lines = by_host.setdefault(link.host, [])
        lines.append(f"link add {link.router_end} mtu {link.mtu} type veth peer name eth0 "
                     f"address {link.mac} mtu {link.mtu} multicast off netns {nodes[link.vm].pid}")
        if link.up:
            lines.append(f"link set {link.router_end} up")
    running = [(host, subprocess.Popen(in_netns_of(nodes[host].pid, ["ip", "-batch", "-"]),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True))
               for host in by_host]
    errors = []
    for host, proc in running:
        try:
            out, _ = proc.communicate("\n".join(by_host[host]) + "\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if proc.returncode != 0:
            errors.append(f"{host}: {out.strip() or f'exit {proc.returncode}'}")
    if errors:
        raise VpclabError("could not make the VMs' links: " + "; ".join(errors))


def _await(nodes: list, what: str, timeout: float) -> dict[object, str]:
    """Read every node's shell until its sentinel (Mininet's `waitOutput`, for all nodes at
    once); the output of each. A shell that exits, or is silent past `timeout`, is an error."""
    said = {node: "" for node in nodes}
    pending = {node.stdout.fileno(): node for node in nodes if node.waiting}
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            names = sorted(node.name for node in pending.values())
            raise VpclabError(f"{len(names)} nodes ({', '.join(names[:5])}...) did not {what} "
                              f"in {timeout:.0f} s")
        events = poller.poll(min(left, 0.5) * 1000)
        for fd, _ in events:
            node = pending[fd]
            said[node] += node.monitor(timeoutms=0)
            if not node.waiting:
                poller.unregister(fd)
                del pending[fd]
        if not events:
            dead = next((node for node in pending.values() if node.shell.poll() is not None), None)
            if dead is not None:
                raise VpclabError(f"{dead.name}: its shell exited (code {dead.shell.returncode}) "
                                  f"before it could {what}: {said[dead].strip()}")
    return said


@cache
def _prebuilt_link() -> type:
    from mininet.link import Link

    class PrebuiltLink(Link):
        """Mininet's Link and its two Intf objects for a veth make_links made already."""
        @staticmethod
        def makeIntfPair(*args, **kwargs):   # noqa: N802 - Mininet's name
            pass

    return PrebuiltLink


def mininet_link(net, vm, host, link: Veth) -> None:
    """Record `link` in `net` as Mininet's addLink would (vm's eth0 first, its router end on
    `host`), running nothing: `up=None` and no MAC keep Intf from configuring either end."""
    made = _prebuilt_link()(vm, host, intfName1="eth0", intfName2=link.router_end,
                            addr1=None, addr2=None, params1={"up": None}, params2={"up": None})
    made.intf1.mac = link.mac
    net.links.append(made)
