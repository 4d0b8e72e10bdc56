"""A running lab's footprint on the machine, recorded as it is created.

Everything a lab makes is written down the moment it exists: the named
network namespace `vpclab-<lab>`, one state directory under STATE_ROOT, and
every process it starts (with the process's start time, so a recycled PID is
never mistaken for ours). `remove_lab` deletes exactly those, which makes
`down` idempotent and cleans up after a runner killed with SIGKILL. Nothing
here matches processes or interfaces by name.

vpclab runs as root, so removal is guarded twice: a lab name must pass the
lab-name rule before it becomes a path, and `remove_state_dir` (the one
function that deletes a lab's files) proves, after resolving the path, that
it is a direct child of the state root carrying the marker vpclab wrote when
it created it. Processes are signalled only by recorded PID and start time,
or because they live in one of the lab's own network namespaces.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Container, Iterator

from vpclab.errors import VpclabError
from vpclab.running import limits
from vpclab.router.events import EventLog
from vpclab.model.names import check_lab_name, is_lab_name
from vpclab.model.plan import namespace_for

STATE_ROOT = Path(os.environ.get("VPCLAB_STATE_ROOT", "/run/vpclab"))
NAMESPACE_PREFIX = "vpclab-"
MARKER = ".vpclab-lab"     # written into every state directory vpclab creates


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
        self.name = check_lab_name(name)
        self.root = root or STATE_ROOT
        self.dir = self.root / name
        self.namespace = namespace_for(name)

    def create(self) -> None:
        """Make the state directory, marked as vpclab's; FileExistsError if it exists."""
        self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.dir.mkdir(mode=0o755)
        (self.dir / MARKER).write_text(self.name + "\n")

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
        return EventLog(self.dir / "progress.jsonl", max_bytes=None)   # never rotated: "ready" must stay

    def host_dir(self, node: str) -> Path:
        return self.dir / "hosts" / node

    def node_dir(self, node: str) -> Path:
        """A node's own files (its hosts and resolv.conf, bound inside it: vpclab.running.identity)."""
        return self.dir / "nodes" / node

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
    """Labs with a state directory or a namespace of ours (a crash may leave either).
    Anything whose name a lab could not have is not ours and is left alone."""
    root = root or STATE_ROOT
    names = {p.name for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()
    names |= {ns[len(NAMESPACE_PREFIX):] for ns in list_namespaces()
              if ns.startswith(NAMESPACE_PREFIX)}
    return sorted(name for name in names if is_lab_name(name))


@contextlib.contextmanager
def root_lock(root: Path | None = None) -> Iterator[None]:
    """Serialise the short moments when labs are created or removed (two `up`s of one
    lab, or an `up` racing a `down`): an flock on the state root, released on exit,
    even by a crash."""
    root = root or STATE_ROOT
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


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


def refuse_if_not_ours(state: LabState) -> None:
    """Nothing is killed or deleted for a name alone: a state directory is ours only with
    the marker vpclab wrote into it (its process records are only then ours to follow),
    and a namespace called vpclab-NAME only with NAME's marked state directory beside it."""
    marked = (state.dir / MARKER).is_file() and not state.dir.is_symlink()
    if marked:
        return
    if os.path.lexists(state.dir) and (state.dir.is_symlink() or any(state.dir.iterdir())):
        raise VpclabError(f"refusing to touch {state.dir}: it has no {MARKER} marker, so vpclab "
                          "did not create it; remove it yourself if it is debris")
    if namespace_exists(state.namespace):
        raise VpclabError(f"namespace {state.namespace} has no lab records in {state.dir}, so "
                          "vpclab will not touch it (it did not make it, or its records are "
                          f"gone); if it is debris: ip netns delete {state.namespace}")


def remove_state_dir(state: LabState) -> None:
    """The one way vpclab deletes a lab's files. Refuses anything it cannot prove is a
    state directory it created: a direct child of the state root, not a symlink, named
    after the lab, holding the marker (or empty: a crash between mkdir and marker)."""
    path = state.dir
    if not os.path.lexists(path):
        return
    root = state.root.resolve()
    resolved = path.resolve()
    if path.is_symlink() or resolved.parent != root or resolved.name != state.name \
            or not resolved.is_dir():
        raise VpclabError(f"refusing to remove {path}: it is not a lab state directory under {root}")
    marker = resolved / MARKER
    if marker.is_file() and not marker.is_symlink():
        shutil.rmtree(resolved)    # fd-based on Linux: it never follows a symlink inside
    elif not any(resolved.iterdir()):
        resolved.rmdir()
    else:
        raise VpclabError(f"refusing to remove {resolved}: it has no {MARKER} marker, so vpclab "
                          "did not create it; remove it yourself if it is debris")


def remove_stale_socket(path: str | Path) -> None:
    """Unlink a unix socket a dead process of this lab left; refuse anything else there."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise VpclabError(f"refusing to remove {path}: it is not a socket a lab left")
    os.unlink(path)


def namespace_id(path: str | Path) -> int | None:
    """The inode that identifies a network namespace (a /proc/PID/ns/net or /run/netns file)."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


class HeldNamespaces:
    """A lab's network namespaces, by inode number, each held open while in the set.

    The kernel gives a freed namespace's inode number to the next namespace created: a
    set of bare numbers taken before a runner tears its nodes down would, by the time it
    is used, name namespaces another lab has just made, and that lab's processes would be
    killed. An open file on a namespace keeps it, and so its number, alive."""

    def __init__(self) -> None:
        self._held: dict[int, int] = {}        # inode -> open fd
        self._never = {namespace_id("/proc/self/ns/net"),   # never the caller's own
                       namespace_id("/proc/1/ns/net")}      # never the machine's

    def hold(self, path: str | Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return                              # gone already: nothing runs in it
        inode = os.fstat(fd).st_ino
        if inode in self._held or inode in self._never:
            os.close(fd)
        else:
            self._held[inode] = fd

    def hold_lab(self, state: LabState) -> "HeldNamespaces":
        """The lab's namespace and every live recorded node's: whatever runs in them is the lab's."""
        self.hold(Path("/run/netns") / state.namespace)
        for proc in state.processes():
            if proc.role in ("runner", "node") and proc.is_alive():
                self.hold(f"/proc/{proc.pid}/ns/net")
        return self

    def __contains__(self, inode: object) -> bool:
        return inode in self._held

    def close(self) -> None:
        for fd in self._held.values():
            os.close(fd)
        self._held.clear()

    def __enter__(self) -> "HeldNamespaces":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def processes_in(namespaces: Container[int]) -> list[RecordedProcess]:
    """Live processes whose network namespace is one of `namespaces` (never this one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        if namespace_id(entry / "ns" / "net") in namespaces:
            start = process_start_time(int(entry.name))
            if start is not None:
                found.append(RecordedProcess(int(entry.name), start, "in-lab-namespace"))
    return found


def remove_lab(state: LabState) -> bool:
    """Remove everything recorded for a lab; True if there was anything to remove.
    Returns only once every process of the lab and its namespace are gone."""
    with root_lock(state.root):
        return _remove_lab(state)


def _remove_lab(state: LabState) -> bool:
    found = state.exists()
    refuse_if_not_ours(state)
    limits.enough_descriptors(len(state.processes()))     # one held namespace per node
    with HeldNamespaces() as namespaces:
        namespaces.hold_lab(state)
        runner = [p for p in state.processes() if p.role == "runner"]
        stop_processes(runner, grace=10.0)      # a live runner tears its own lab down first
        # read again: the runner may have recorded more before it stopped (a restart, a VM)
        processes = state.processes()
        namespaces.hold_lab(state)
        stop_processes([p for p in processes if p.role != "runner"])
        # what ran inside the lab (a `vpclab exec` left running, a node's children) goes too
        stop_processes(processes_in(namespaces), grace=1.0)
    if namespace_exists(state.namespace):
        subprocess.run(["ip", "netns", "delete", state.namespace], capture_output=True)
    remove_state_dir(state)
    return found
