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

from vpclab.packets.compare import Comparison, compare_captures
from vpclab.packets.diagram import draw_for_user
from vpclab.errors import VpclabError
from vpclab.model.names import check_interface_name
from vpclab.running.ownership import OutputDir
from vpclab.running.shell import in_netns_of
from vpclab.running.state import LabState


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


def parse_point(spec: str) -> tuple[str, str]:
    """`NODE[:IFACE]` as (node, iface), eth0 by default; the iface names a file, so it is checked."""
    node, _, iface = spec.partition(":")
    return node, check_interface_name(iface or "eth0", node)


def capture_files(watch: list[str]) -> list[str]:
    """The names of every file a capture on these points writes."""
    names = []
    for spec in watch:
        node, iface = parse_point(spec)
        names += [f"{node}.{iface}.pcap", f"{node}.{iface}.txt"]
    return names + METADATA_FILES


class LabCapture:
    """tcpdump on several capture points of a lab, from `start()` (every point listening)
    to `stop()` (traffic settled, pcaps rendered, metadata written); a `with` block does both.

    The folder then holds NODE.IFACE.pcap and .txt per point, capture.json (the points,
    the commands that ran in the window, the lab's nodes), the lab's topology.yaml and
    mapping-service.jsonl (what the mapping service did in the window): everything
    `compare` and `diagram` read, so a capture folder can be judged without the lab.
    Under sudo, the files this capture made belong to the user behind sudo.
    """

    def __init__(self, state: LabState, watch: list[str], out_dir: str | Path,
                 filter_expr: str = "", for_user: bool = True, quiet: float = 0.3):
        if not watch:
            raise VpclabError("say where to capture: at least one NODE or NODE:IFACE")
        nodes = state.nodes()
        for spec in watch:
            node, _ = parse_point(spec)
            if node not in nodes:
                raise VpclabError(f"lab {state.name!r} has no node {node!r} (capture point "
                                  f"{spec!r}); nodes: {', '.join(nodes)}")
        self.state, self.watch, self.dir, self.filter = state, list(watch), Path(out_dir), filter_expr
        # under sudo, a capture for the user is theirs; one inside the lab's state is not
        self.output = OutputDir(self.dir) if for_user else None
        if self.output:
            self.output.expect(capture_files(self.watch))      # before anything is written
        self.quiet = quiet
        self.commands: list[dict] = []
        self.captures: dict[str, Capture] = {}
        self.stopped = False
        self.started = self.ended = 0.0

    def start(self) -> "LabCapture":
        """Return once every tcpdump prints "listening on" (traffic before that is lost).
        A capture is started once; if a point fails, the others stop and what was written
        is handed back like a finished capture's."""
        if self.started:
            raise VpclabError(f"the capture into {self.dir} was already started; make a new one")
        self.started = time.time()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VpclabError(f"cannot write captures into {self.dir}: {exc.strerror}") from None
        try:
            for spec in self.watch:
                node, iface = parse_point(spec)
                self.captures[spec] = Capture(self.state, node, self.dir, iface, self.filter).start()
        except BaseException:
            self.stopped = True
            try:
                self._stop_all()
            finally:
                if self.output:
                    self.output.give_back()
            raise
        return self

    def ran(self, node: str, command: list[str], exit_code: int) -> None:
        """Note a command that ran during the capture (capture.json lists them)."""
        self.commands.append({"node": node, "command": command, "exit_code": exit_code})

    def stop(self) -> dict[str, list[str]]:
        """Wait until traffic settles, stop every tcpdump, write the metadata; return the
        text lines per capture point. A second call only returns them."""
        if self.stopped:
            return self.lines()
        self.stopped = True
        try:
            settle(list(self.captures.values()), quiet=self.quiet)
        finally:
            self._stop_all()
            self.ended = time.time()
            self._write_metadata()
            if self.output:
                self.output.give_back()
        return self.lines()

    def __enter__(self) -> "LabCapture":
        return self.start() if not self.started else self

    def __exit__(self, *exc) -> None:
        self.stop()

    def compare(self, expected: str | Path, keep_noise: bool = False) -> Comparison:
        """Compare this capture with an expected trace (a folder like traces/seed, or one
        file); VM names in the expected lines mean this lab's VMs."""
        return compare_captures(self.dir, expected, keep_noise=keep_noise)

    def diagram(self, output: str | Path | None = None) -> list[Path]:
        """Draw the sequence diagram (.svg, .png or .md; default diagram.svg and diagram.md
        in the capture folder); return the files written."""
        return draw_for_user(self.dir, Path(output) if output else None)

    def pcap(self, point: str) -> Path:
        """The pcap file of a capture point ("ZIGI-VM2", "host1:eth0")."""
        node, iface = parse_point(point)
        return self.dir / f"{node}.{iface}.pcap"

    def lines(self) -> dict[str, list[str]]:
        """The text of each capture point (tcpdump -nn), keyed as the points were given."""
        return {spec: capture.lines() for spec, capture in self.captures.items()}

    def _stop_all(self) -> None:
        for capture in self.captures.values():
            capture.stop()

    def _write_metadata(self) -> None:
        state = self.state
        if not self.dir.is_dir():
            return
        events = [e for e in state.events.read() if self.started <= e["t"] <= self.ended]
        (self.dir / "mapping-service.jsonl").write_text(
            "".join(json.dumps(e) + "\n" for e in events))
        shutil.copyfile(state.topology_path, self.dir / "topology.yaml")
        (self.dir / "capture.json").write_text(json.dumps({
            "lab": state.name, "filter": self.filter, "commands": self.commands,
            "started": self.started, "ended": self.ended,
            "points": [c.point for c in self.captures.values()],
            "nodes": {name: {k: v for k, v in info.items() if k not in ("pid", "start")}
                      for name, info in state.nodes().items()},
        }, indent=1))


def default_dir(label: str) -> Path:
    """A new dated folder under ./captures for this run (-2, -3... if that second's is taken)."""
    base = Path("captures") / f"{label}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while os.path.lexists(path):
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path
