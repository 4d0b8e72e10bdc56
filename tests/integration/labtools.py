"""Helpers for tests that run real labs: commands in VMs, flow dumps, snapshots."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from vpclab.shell import in_netns_of
from vpclab.state import LabState

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
