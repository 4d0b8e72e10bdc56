"""tcpdump on a lab node, started only once it is really listening.

Traffic sent before tcpdump prints "listening on" is simply not captured, so
`start` waits for that line (FAUCET's habit) instead of sleeping. Each
tcpdump's PID is recorded in the lab's state, so even a crashed CLI leaves
nothing running after `vpclab down`.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

from vpclab.errors import VpclabError
from vpclab.shell import in_netns_of
from vpclab.state import LabState


class Capture:
    def __init__(self, state: LabState, node: str, out: Path, iface: str = "eth0",
                 filter_expr: str = "icmp or arp"):
        info = state.nodes().get(node)
        if info is None:
            raise VpclabError(f"lab {state.name!r} has no node {node!r}; "
                              f"nodes: {', '.join(state.nodes())}")
        self.state, self.node, self.out, self.iface = state, node, out, iface
        self.argv = in_netns_of(info["pid"], ["tcpdump", "-nn", "-l", "-i", iface,
                                              *filter_expr.split()])
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> "Capture":
        self.out.parent.mkdir(parents=True, exist_ok=True)
        with self.out.open("w") as text:
            self.proc = subprocess.Popen(self.argv, stdout=text, stderr=subprocess.PIPE,
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
                raise VpclabError(f"tcpdump on {self.node}:{self.iface} did not start: "
                                  f"{seen.decode(errors='replace').strip() or 'no output'}")
            seen += chunk
        return self

    def lines(self) -> list[str]:
        return [line for line in self.out.read_text().splitlines() if line.strip()]

    def stop(self) -> list[str]:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()
        return self.lines()


def settle(captures: list[Capture], quiet: float = 0.3, timeout: float = 5.0) -> None:
    """Wait until no capture has grown for `quiet` seconds (traffic has stopped)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        sizes = [c.out.stat().st_size for c in captures]
        if sizes != last:
            last, since = sizes, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.02)


def capture_during(state: LabState, watch: list[str], out_dir: Path, node: str,
                   command: list[str], filter_expr: str = "icmp or arp",
                   ) -> tuple[subprocess.CompletedProcess, dict[str, list[str]]]:
    """Capture on every `NODE[:IFACE]` of `watch` while `command` runs in `node`.

    Returns the command's result and the captured lines keyed by the watch spec."""
    info = state.nodes()[node]
    captures: dict[str, Capture] = {}
    try:
        for spec in watch:
            name, _, iface = spec.partition(":")
            iface = iface or "eth0"
            captures[spec] = Capture(state, name, out_dir / f"{name}.{iface}.txt", iface,
                                     filter_expr).start()
        done = subprocess.run(in_netns_of(info["pid"], command), capture_output=True, text=True,
                              timeout=60)
        settle(list(captures.values()))
    finally:
        for capture in captures.values():
            capture.stop()
    return done, {spec: capture.lines() for spec, capture in captures.items()}
