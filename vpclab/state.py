"""A running lab's footprint on the machine, recorded as it is created.

Everything a lab makes is written down the moment it exists: the named
network namespace `vpclab-<lab>`, one state directory under STATE_ROOT, and
every process it starts (with the process's start time, so a recycled PID is
never mistaken for ours). `remove_lab` deletes exactly those, which makes
`down` idempotent and cleans up after a runner killed with SIGKILL. Nothing
here matches processes or interfaces by name.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpclab.events import EventLog
from vpclab.plan import namespace_for

STATE_ROOT = Path(os.environ.get("VPCLAB_STATE_ROOT", "/run/vpclab"))
NAMESPACE_PREFIX = "vpclab-"


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":       # a zombie is as good as gone
        return None
    return int(fields[19])


@dataclass(frozen=True)
class RecordedProcess:
    pid: int
    start: int
    role: str
    node: str = ""

    def is_alive(self) -> bool:
        return process_start_time(self.pid) == self.start


class LabState:
    """The state directory of one lab, named after it."""

    def __init__(self, name: str, root: Path | None = None):
        self.name = name
        self.dir = (root or STATE_ROOT) / name
        self.namespace = namespace_for(name)

    # -- paths ---------------------------------------------------------------
    @property
    def topology_path(self) -> Path:
        return self.dir / "topology.yaml"

    @property
    def events(self) -> EventLog:
        """What the mapping service did (router connected/ready, misses answered)."""
        return EventLog(self.dir / "events.jsonl")

    @property
    def progress(self) -> EventLog:
        """What the runner did (phases with timings, ready, failed)."""
        return EventLog(self.dir / "progress.jsonl")

    def host_dir(self, node: str) -> Path:
        return self.dir / "hosts" / node

    def log(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    def exists(self) -> bool:
        return self.dir.is_dir() or namespace_exists(self.namespace)

    # -- processes -----------------------------------------------------------
    def record_process(self, pid: int, role: str, node: str = "") -> None:
        start = process_start_time(pid)
        if start is None:
            return
        with (self.dir / "processes.jsonl").open("a") as out:
            out.write(json.dumps({"pid": pid, "start": start, "role": role, "node": node}) + "\n")

    def processes(self) -> list[RecordedProcess]:
        try:
            lines = (self.dir / "processes.jsonl").read_text().splitlines()
        except FileNotFoundError:
            return []
        return [RecordedProcess(**json.loads(line)) for line in lines if line.strip()]

    def runner(self) -> RecordedProcess | None:
        return next((p for p in self.processes() if p.role == "runner"), None)

    def is_running(self) -> bool:
        runner = self.runner()
        return runner is not None and runner.is_alive()

    # -- nodes (display name -> namespace holder) ----------------------------
    def write_nodes(self, nodes: dict[str, dict[str, Any]]) -> None:
        tmp = self.dir / "nodes.json.tmp"
        tmp.write_text(json.dumps(nodes, indent=1))
        tmp.replace(self.dir / "nodes.json")

    def nodes(self) -> dict[str, dict[str, Any]]:
        try:
            return json.loads((self.dir / "nodes.json").read_text())
        except FileNotFoundError:
            return {}


def list_labs(root: Path | None = None) -> list[str]:
    """Labs with a state directory or a namespace of ours (a crash may leave either)."""
    root = root or STATE_ROOT
    names = {p.name for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()
    names |= {ns[len(NAMESPACE_PREFIX):] for ns in list_namespaces()
              if ns.startswith(NAMESPACE_PREFIX)}
    return sorted(names)


def list_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def namespace_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


# Mininet node shells are interactive bash, which ignores SIGTERM, and hold nothing
# worth flushing; daemons and tcpdump get SIGTERM so they can tidy up.
STOP_SIGNAL = {"node": signal.SIGKILL}


def stop_processes(processes: list[RecordedProcess], grace: float = 3.0) -> None:
    """Signal what is still ours, then SIGKILL what did not leave in time."""
    alive = [p for p in processes if p.is_alive()]
    for proc in alive:
        _signal(proc.pid, STOP_SIGNAL.get(proc.role, signal.SIGTERM))
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if p.is_alive()]
    for proc in alive:
        _signal(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if p.is_alive()]


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def remove_lab(state: LabState) -> bool:
    """Remove everything recorded for a lab; True if there was anything to remove."""
    found = state.exists()
    processes = state.processes()
    runner = [p for p in processes if p.role == "runner"]
    stop_processes(runner, grace=10.0)      # a live runner tears its own lab down first
    stop_processes([p for p in processes if p.role != "runner"])
    if namespace_exists(state.namespace):
        subprocess.run(["ip", "netns", "delete", state.namespace], capture_output=True)
    shutil.rmtree(state.dir, ignore_errors=True)
    return found
