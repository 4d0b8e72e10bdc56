"""Helpers for tests that run real labs (through vpclab.Lab): flow dumps, snapshots, signals,
and the crashed-router pieces test_router_restart.py and bench/bench_router_restart.py share."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from vpclab import Lab, VpclabError
from vpclab.running.health import newest
from vpclab.packets.pinger import RunningPing
from vpclab.running.state import RecordedProcess
from vpclab.running.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "topologies" / "seed.yaml"
MULTI_VPC = REPO / "topologies" / "multi-vpc.yaml"
VPCLAB = [str(REPO / ".venv" / "bin" / "python"), "-m", "vpclab"]


def host_ovs(lab: Lab, host: str, argv: list[str]) -> str:
    """An OVS tool's output on a host (its own Open vSwitch); a wedged daemon is no hang."""
    try:
        done = lab.exec(host, *argv, timeout=20)
    except VpclabError as exc:
        return f"({exc})\n"
    return done.stdout + done.stderr


def dump_flows(lab: Lab, host: str) -> str:
    directory = lab.state.host_dir(lab.nodes()[host]["node"])
    return host_ovs(lab, host, ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows",
                                f"unix:{directory}/br-int.mgmt"])


# argv: outer source, ICMP id, inner source MAC, inner destination MAC, inner destination IP,
# then the option's source and destination ENI keys (none: no option at all)
INJECT = """
import struct, sys
from scapy.all import Ether, IP, UDP, ICMP, send
from scapy.contrib.geneve import GENEVE, GeneveOptions
outer_src, ident, src_mac, dst_mac, inner_dst = sys.argv[1:6]
keys = [int(k) for k in sys.argv[6:8]]
options = [GeneveOptions(classid=0xffff, type=0x80, data=struct.pack("!II", *keys))] if keys else []
inner = Ether(src=src_mac, dst=dst_mac) / IP(src="10.0.0.148", dst=inner_dst) / ICMP(id=int(ident))
send(IP(src=outer_src, dst="192.168.100.2") / UDP(sport=40000, dport=6081) /
     GENEVE(vni=1001, proto=0x6558, options=options) / inner, verbose=False, count=3)
"""


def inject(lab: Lab, host: str, outer_src: str, ident: int, macs: list[str], inner_dst: str,
           keys: tuple[int, int] | None) -> None:
    done = lab.exec(host, sys.executable, "-c", INJECT, outer_src, str(ident), *macs, inner_dst,
                    *(str(k) for k in keys or ()))
    assert done.ok, done.stderr


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


def signal_recorded(proc: RecordedProcess, sig: int) -> None:
    """The one way tests signal a lab's process: only one the lab recorded, and only while
    its start time still matches the record (a recycled PID is never hit)."""
    try:
        fd = os.pidfd_open(proc.pid)     # pins that process: a PID recycled from now on is not it
    except ProcessLookupError:
        raise AssertionError(f"{proc.role} {proc.pid} of the records is gone") from None
    try:
        assert proc.is_alive(), f"{proc.role} {proc.pid} of the records is gone"
        signal.pidfd_send_signal(fd, sig)
    finally:
        os.close(fd)


# -- a virtual router crashing under running pings (multi-vpc) -------------------------------
SAME_HOST = ("ZIGI-VM1", "ZIGI-VM3")      # both on host1
ACROSS = ("ZIGI-VM1", "ZIGI-VM2")         # host1 -> host2
PING_INTERVAL = 0.05                      # 20 pings a second


def multi_vpc(encap: str = "geneve") -> dict:
    """The multi-vpc topology with its encapsulation set."""
    raw = yaml.safe_load(MULTI_VPC.read_text())
    raw["encap"] = encap
    return raw


def current(lab: Lab, role: str, node: str = "") -> RecordedProcess:
    """The lab's newest record of a daemon (read to find and signal it: the fault under test)."""
    return newest(lab.state.processes())[(role, node)]


def kill(proc: RecordedProcess) -> float:
    """SIGKILL a recorded process; the time.time() of the kill."""
    signal_recorded(proc, signal.SIGKILL)
    return time.time()


def restarted(lab: Lab, old: RecordedProcess) -> RecordedProcess:
    """Wait for the supervisor to record a live successor of `old`."""
    def successor():
        now = current(lab, old.role, old.node)
        return now if now.pid != old.pid and now.is_alive() else None
    return wait_until(successor, f"{old.role} of {old.node} to be restarted", timeout=30)


def resumed(ping: RunningPing, killed_at: float) -> int:
    """Answers to requests sent at least half a second (10 requests) after the kill."""
    return ping.answered_after(killed_at + 10 * PING_INTERVAL)


def outage(ping: RunningPing, killed_at: float) -> tuple[float, int]:
    """Once `resumed`: stop the ping; seconds from the kill to the first answer after the
    lost requests, and how many were lost (0 and 0 if none was: the restart fell between two
    requests). Lost: unanswered, and sent before the first request answered again (sent
    half a second or more after the kill), so no answer of theirs was still on its way. Not
    `ping.lost()`, which leaves out the last REPLY_GRACE seconds before the ping stopped:
    the outage itself when the pings resume within that."""
    ping.stop()
    back = min(sent for seq, sent in ping.requests.items()
               if seq in ping.replies and sent > killed_at + 10 * PING_INTERVAL)
    lost = sorted(seq for seq, sent in ping.requests.items()
                  if sent < back and seq not in ping.replies)
    if not lost:
        return 0.0, 0
    first_back = min(t for seq, t in ping.replies.items() if seq > lost[-1])
    return first_back - killed_at, len(lost)
