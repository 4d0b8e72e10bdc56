"""Helpers for tests that run real labs (through vpclab.Lab): flow dumps, snapshots, signals."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vpclab import Lab, VpclabError
from vpclab.state import RecordedProcess

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
    assert proc.is_alive(), f"{proc.role} {proc.pid} of the records is gone"
    os.kill(proc.pid, sig)
