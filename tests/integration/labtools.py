"""Helpers for tests that run real labs: commands in VMs, flow dumps, snapshots."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from vpclab.shell import in_netns_of
from vpclab.state import LabState, RecordedProcess

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "topologies" / "seed.yaml"
MULTI_VPC = REPO / "topologies" / "multi-vpc.yaml"
VPCLAB = [str(REPO / ".venv" / "bin" / "python"), "-m", "vpclab"]


def in_node(state: LabState, node: str, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    pid = state.nodes()[node]["pid"]
    return subprocess.run(in_netns_of(pid, argv), capture_output=True, text=True, timeout=timeout)


def ping(state: LabState, node: str, ip: str, *extra: str) -> bool:
    return in_node(state, node, ["ping", "-c", "1", "-W", "2", *extra, ip]).returncode == 0


def host_ovs(state: LabState, host: str, argv: list[str]) -> str:
    node = state.nodes()[host]
    directory = state.host_dir(node["node"])
    env = {**os.environ, "OVS_RUNDIR": str(directory)}
    try:   # a diagnostic must not hang the run when a daemon is dead or wedged
        done = subprocess.run(in_netns_of(node["pid"], argv), capture_output=True, text=True,
                              env=env, timeout=20)
    except subprocess.TimeoutExpired:
        return f"(no answer in 20 s from {' '.join(argv)})\n"
    return done.stdout + done.stderr


def dump_flows(state: LabState, host: str) -> str:
    directory = state.host_dir(state.nodes()[host]["node"])
    return host_ovs(state, host, ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows",
                                  f"unix:{directory}/br-int.mgmt"])


def root_namespace_snapshot() -> dict[str, str]:
    """What a lab must never change: the machine's own links, addresses, routes, rules."""
    def show(*argv: str) -> str:
        return subprocess.run(["ip", *argv], capture_output=True, text=True).stdout
    return {"links": show("-o", "link", "show"), "addresses": show("-o", "addr", "show"),
            "routes": show("route", "show", "table", "all"), "rules": show("rule", "show")}


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and str(os.getpid()) != proc.name:
            found.append(f"{proc.name}: {cmdline}")
    return found


class RunningPing:
    """`ping -i 0.1` from a VM, with every request's and reply's time read from a capture
    in that VM: a test can then say which requests went unanswered and when they were
    sent, instead of counting replies and hoping the event fell inside the pings."""

    def __init__(self, state: LabState, vm: str, ip: str, out_dir: Path):
        from vpclab.capture import Capture
        self.capture = Capture(state, vm, out_dir, filter_expr=f"icmp and host {ip}").start()
        self.proc = subprocess.Popen(in_netns_of(state.nodes()[vm]["pid"], ["ping", "-i", "0.1", ip]),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.requests: dict[int, float] = {}
        self.replies: dict[int, float] = {}

    def read(self) -> "RunningPing":
        """Requests and replies captured so far (the capture is flushed per packet)."""
        from scapy.layers.inet import ICMP
        from scapy.utils import PcapReader
        requests, replies = {}, {}
        try:
            for frame in PcapReader(str(self.capture.pcap)):
                if ICMP in frame and frame[ICMP].type in (0, 8):
                    table = requests if frame[ICMP].type == 8 else replies
                    table.setdefault(frame[ICMP].seq, float(frame.time))
        except (EOFError, OSError, ValueError):    # a record still being written
            pass
        self.requests, self.replies = requests, replies
        return self

    def answered_after(self, moment: float) -> int:
        """Replies to requests sent after `moment` (a time.time() value)."""
        self.read()
        return sum(1 for seq, sent in self.requests.items() if sent > moment and seq in self.replies)

    def stop(self) -> "RunningPing":
        from vpclab.capture import settle
        self.proc.terminate()
        self.proc.wait()
        settle([self.capture], quiet=0.5)
        self.capture.stop()
        return self.read()

    def lost(self, sent_after: float = 0.0, sent_before: float = float("inf")) -> list[int]:
        """Requests sent in the window and never answered, leaving out the last ones, whose
        replies were still on their way when the ping was stopped."""
        last = max(self.replies, default=-1)
        return sorted(seq for seq, sent in self.requests.items()
                      if sent_after < sent < sent_before and seq < last and seq not in self.replies)

    def __enter__(self) -> "RunningPing":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.stop()


def signal_recorded(proc: RecordedProcess, sig: int) -> None:
    """The one way tests signal a lab's process: only one the lab recorded, and only while
    its start time still matches the record (a recycled PID is never hit)."""
    assert proc.is_alive(), f"{proc.role} {proc.pid} of the records is gone"
    os.kill(proc.pid, sig)
