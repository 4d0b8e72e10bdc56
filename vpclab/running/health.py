"""A running lab's health: which of its parts are down, and why.

The runner's supervisor restarts what dies (vpclab/running/supervisor.py); `vpclab
status` must say so while a part is down. The truth is the process table: a
part (a role on a node, e.g. ovs-vswitchd of host2) is down when the newest
process recorded for it is gone; older records are the processes it replaced.
The supervisor adds the why in health.json (restarting, or a restart that
failed and its error), replaced atomically so a reader never sees half of it;
a part with a note is down until the supervisor clears it, because a process
being restarted exists before it serves.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from vpclab.running.state import LabState, RecordedProcess

# What the runner keeps running; a dead node shell (a VM or host namespace) is
# reported but not restarted: its namespace, and everything in it, went with it.
SUPERVISED = ("mapping-service", "ovsdb-server", "ovs-vswitchd")
HEALTH_FILE = "health.json"

Part = tuple[str, str]          # (role, node)


def part_name(role: str, node: str) -> str:
    return f"{role} of {node}" if node else role


def newest(processes: Iterable[RecordedProcess]) -> dict[Part, RecordedProcess]:
    """The current process of each part: records are appended, so the last one wins."""
    current: dict[Part, RecordedProcess] = {}
    for proc in processes:
        current[(proc.role, proc.node)] = proc
    return current


def write_notes(state: LabState, notes: dict[str, dict[str, Any]]) -> None:
    """The supervisor's word on each part it is working on, keyed by part_name()."""
    tmp = state.dir / f"{HEALTH_FILE}.tmp"
    tmp.write_text(json.dumps(notes, indent=1))
    tmp.replace(state.dir / HEALTH_FILE)


def read_notes(state: LabState) -> dict[str, dict[str, Any]]:
    try:
        return json.loads((state.dir / HEALTH_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def down_parts(state: LabState) -> list[dict[str, Any]]:
    """Every part of the lab whose current process is gone, with the supervisor's note."""
    nodes = state.nodes()
    notes = read_notes(state)
    down = []
    for (role, node), proc in newest(state.processes()).items():
        watched = role in SUPERVISED or (role == "node" and node in nodes)
        name = part_name(role, node)
        note = notes.get(name, {})
        # a process being restarted may be alive before it serves: the note says
        if not watched or (proc.is_alive() and not note):
            continue
        status = note.get("status") or ("not restarted yet" if role in SUPERVISED
                                        else "not restarted: a node is not supervised")
        down.append({"part": name, "role": role, "node": node, "pid": proc.pid,
                     "status": status, "error": note.get("error")})
    return down


def describe(part: dict[str, Any]) -> str:
    """One line for a down part: "ovs-vswitchd of host2 is down (restarting)"."""
    why = part["status"] + (f": {part['error']}" if part.get("error") else "")
    return f"{part['part']} is down ({why})"


def lab_status(state: LabState) -> dict:
    """What `vpclab status LAB --json` prints: the lab's state (ready, degraded and why,
    starting, stale), its nodes and processes."""
    ready = any(e["event"] == "ready" for e in state.progress.read())
    running = state.is_running()
    processes = state.processes()
    down = down_parts(state) if running else []
    if not running:
        summary = "stale (run `vpclab down %s`)" % state.name
    elif not ready:
        summary = "starting"
    else:
        summary = "degraded" if down else "ready"
    return {
        "name": state.name,
        "state": summary,
        "down": down,       # each with part, role, node, pid, status and error
        "namespace": state.namespace,
        "state_dir": str(state.dir),
        "nodes": state.nodes(),
        "processes": [{"pid": p.pid, "role": p.role, "node": p.node, "alive": p.is_alive()}
                      for p in processes],
    }


def running_count(state: LabState, nodes: dict) -> tuple[int, int]:
    """Running and total of the lab's current processes: the newest of each part, not the
    dead ones a restart replaced, nor the node of a deleted VM."""
    current = [p for (role, node), p in newest(state.processes()).items()
               if role != "node" or node in nodes]
    return sum(p.is_alive() for p in current), len(current)
