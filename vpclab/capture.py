"""tcpdump on lab nodes, started only once it is really listening.

Traffic sent before tcpdump prints "listening on" is simply not captured, so
`start` waits for that line (FAUCET's habit) instead of sleeping. tcpdump
writes a pcap (-U: flushed per packet, so progress is visible); the text
view is rendered from that pcap afterwards with `tcpdump -nn -r` (`-vv` on a
host's underlay NIC, to show the Geneve option), so both
always describe the same packets. Every tcpdump's PID is recorded in the
lab's state: even a crashed CLI leaves nothing running after `vpclab down`.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

from vpclab.errors import VpclabError
from vpclab.names import check_interface_name
from vpclab.shell import in_netns_of
from vpclab.state import LabState


class Capture:
    def __init__(self, state: LabState, node: str, out_dir: Path, iface: str = "eth0",
                 filter_expr: str = ""):
        info = state.nodes().get(node)
        if info is None:
            raise VpclabError(f"lab {state.name!r} has no node {node!r}; "
                              f"nodes: {', '.join(state.nodes())}")
        self.state, self.node, self.iface = state, node, iface
        self.pcap = out_dir / f"{node}.{iface}.pcap"
        self.text = out_dir / f"{node}.{iface}.txt"
        # a host's NIC is the underlay: -vv so the text shows the Geneve option too
        self.render = ["tcpdump", "-nn", *(["-vv"] if info.get("kind") == "host" else []), "-r"]
        # -Z root: Debian's tcpdump drops to user tcpdump before opening the file
        self.argv = in_netns_of(info["pid"], ["tcpdump", "-nn", "-U", "--immediate-mode", "-Z", "root",
                                              "-i", iface,
                                              "-w", str(self.pcap), *filter_expr.split()])
        self.proc: subprocess.Popen | None = None

    @property
    def point(self) -> str:
        return f"{self.node}:{self.iface}"

    def start(self, timeout: float = 10.0) -> "Capture":
        self.pcap.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        self.state.record_process(self.proc.pid, "tcpdump", node=self.node)
        seen = b""
        deadline = time.monotonic() + timeout
        while b"listening on" not in seen:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stderr], [], [], max(left, 0))
            chunk = os.read(self.proc.stderr.fileno(), 4096) if ready else b""
            if not chunk:
                self.stop()
                raise VpclabError(f"tcpdump on {self.point} did not start: "
                                  f"{seen.decode(errors='replace').strip() or 'no output'}")
            seen += chunk
        return self

    def size(self) -> int:
        return self.pcap.stat().st_size if self.pcap.exists() else 0

    def lines(self) -> list[str]:
        return [line for line in self.text.read_text().splitlines() if line.strip()] \
            if self.text.exists() else []

    def stop(self) -> list[str]:
        """Stop tcpdump, render the text view, return its lines."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()
        if self.pcap.exists():
            with self.text.open("w") as out:
                subprocess.run([*self.render, str(self.pcap)], stdout=out,
                               stderr=subprocess.DEVNULL)
        return self.lines()


def settle(captures: list[Capture], quiet: float = 0.3, timeout: float = 5.0) -> None:
    """Wait until no capture has grown for `quiet` seconds (traffic has stopped)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        sizes = [c.size() for c in captures]
        if sizes != last:
            last, since = sizes, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.02)


METADATA_FILES = ["mapping-service.jsonl", "topology.yaml", "capture.json"]


def capture_files(watch: list[str]) -> list[str]:
    """The names of every file capture_during writes for these capture points."""
    names = []
    for spec in watch:
        node, _, iface = spec.partition(":")
        iface = check_interface_name(iface or "eth0", node)
        names += [f"{node}.{iface}.pcap", f"{node}.{iface}.txt"]
    return names + METADATA_FILES


def capture_during(state: LabState, watch: list[str], out_dir: Path, node: str,
                   command: list[str], filter_expr: str = "",
                   ) -> tuple[subprocess.CompletedProcess, dict[str, list[str]]]:
    """Capture on every `NODE[:IFACE]` of `watch` while `command` runs in `node`.

    Writes a pcap and a text file per capture point into `out_dir`, with
    capture.json (what ran where), the lab's topology and the mapping service's
    events of the window. Returns the command's result and the text lines per spec.
    """
    nodes = state.nodes()
    if node not in nodes:
        raise VpclabError(f"lab {state.name!r} has no node {node!r}; nodes: {', '.join(nodes)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    captures: dict[str, Capture] = {}
    started = time.time()
    try:
        for spec in watch:
            name, _, iface = spec.partition(":")
            check_interface_name(iface or "eth0", name)   # it names a file in out_dir
            captures[spec] = Capture(state, name, out_dir, iface or "eth0", filter_expr).start()
        done = subprocess.run(in_netns_of(nodes[node]["pid"], command), capture_output=True,
                              text=True, timeout=120)
        settle(list(captures.values()))
    finally:
        for capture in captures.values():
            capture.stop()
    ended = time.time()
    _write_metadata(state, out_dir, node, command, filter_expr, captures, started, ended, done)
    return done, {spec: capture.lines() for spec, capture in captures.items()}


def _write_metadata(state, out_dir, node, command, filter_expr, captures, started, ended, done):
    events = [e for e in state.events.read() if started <= e["t"] <= ended]
    (out_dir / "mapping-service.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in events))
    shutil.copyfile(state.topology_path, out_dir / "topology.yaml")
    (out_dir / "capture.json").write_text(json.dumps({
        "lab": state.name, "node": node, "command": command, "filter": filter_expr,
        "exit_code": done.returncode, "started": started, "ended": ended,
        "points": [c.point for c in captures.values()],
        "nodes": {name: {k: v for k, v in info.items() if k not in ("pid", "start")}
                  for name, info in state.nodes().items()},
    }, indent=1))


def default_dir(label: str) -> Path:
    """A dated folder under ./captures for this run."""
    return Path("captures") / f"{label}-{time.strftime('%Y%m%d-%H%M%S')}"
