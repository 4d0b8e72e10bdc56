"""Soak: a lab under churn for N minutes while stable pairs ping (needs root; not in CI):

    .venv/bin/python bench/bench_soak.py [--minutes 10]

A generated lab (4 hosts, 2 VPCs, 16 VMs: 4 stable pairs and 8 that churn) gets one
change a second through the CLI, in turn a `move`, a `vm add` and a `vm del`, while each
stable pair pings at 10/s (`ping -i 0.1`). Reported: the stable pairs' loss (target 0)
and, each minute, the mapping service's memory (RSS of its recorded PID), the flows on
each virtual router and the size of the lab's state folder (target: flat from minute 1
to the last). Results go to bench/results/soak-DATE.txt and are printed.
"""
from __future__ import annotations

import argparse
import itertools
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import vpclab  # noqa: E402
from tests.integration.labtools import dump_flows  # noqa: E402

VPCLAB = [str(REPO / ".venv" / "bin" / "python"), "-m", "vpclab"]
HOSTS = [f"host{h}" for h in range(1, 5)]
VPCS = {"a": "10.0.0", "b": "10.1.0"}
# stable pairs (source, destination) across hosts, two per VPC
PAIRS = [("sa1", "sa2"), ("sa3", "sa4"), ("sb1", "sb2"), ("sb3", "sb4")]
CHURN = [f"c{v}{i}" for v in VPCS for i in range(1, 5)]


def topology(name: str) -> str:
    """Stable VMs sX (s.a1 on host1, its peer on host2, ...), churning VMs cX spread out."""
    lines = [f"name: {name}", "hosts:"] + [f"  {h}: {{}}" for h in HOSTS]
    lines += ["vpcs:"] + [f"  {v}: {{cidr: {net}.0/24}}" for v, net in VPCS.items()] + ["vms:"]
    for v, net in VPCS.items():
        for i in range(1, 5):
            lines.append(f"  s{v}{i}: {{vpc: {v}, host: {HOSTS[(i - 1) % 4]}, ip: {net}.{10 + i}}}")
            lines.append(f"  c{v}{i}: {{vpc: {v}, host: {HOSTS[i % 4]}, ip: {net}.{20 + i}}}")
    return "\n".join(lines) + "\n"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(VPCLAB + list(args), capture_output=True, text=True, cwd=REPO, timeout=120)


class Churn:
    """One change per call, in turn: move a churning VM, add a VM, delete the oldest added.
    Deliberately through the CLI, as a user types them (`vpclab move`, `vpclab vm add/del`,
    each a process of its own): the soak measures the lab under the changes users make, CLI
    start-up included; the lab itself is driven through vpclab.Lab."""

    def __init__(self, lab: str):
        self.lab = lab
        self.added: list[str] = []
        self.serial = itertools.count(1)
        self.kinds = itertools.cycle(["move", "add", "del"])
        self.done = {"move": 0, "add": 0, "del": 0}
        self.failed: list[str] = []
        self.log: list[tuple[float, float, str]] = []     # (started, ended, command)
        self.rng = random.Random(9)

    def step(self, hosts_of) -> None:
        kind = next(self.kinds)
        if kind == "move":
            vm = self.rng.choice(CHURN)
            host = self.rng.choice([h for h in HOSTS if h != hosts_of(vm)])
            args = ("move", self.lab, vm, host)
        elif kind == "add" or not self.added:
            kind, n = "add", next(self.serial)
            vpc = "ab"[n % 2]
            name = f"n{n}"
            ip = f"{VPCS[vpc]}.{100 + n % 150}"     # 150 addresses in turn; at most a few live
            args = ("vm", "add", self.lab, name, "--vpc", vpc, "--host", self.rng.choice(HOSTS),
                    "--ip", ip)
        else:
            name = self.added[0]
            args = ("vm", "del", self.lab, name)
        started = time.time()
        done = cli(*args)
        self.log.append((started, time.time(), " ".join(args[:1] + args[2:])))
        if done.returncode != 0:
            self.failed.append(f"{' '.join(args)}: exit {done.returncode}: "
                               f"{(done.stderr or done.stdout).strip()[-200:]}")
            return
        self.done[kind] += 1
        if kind == "add":
            self.added.append(name)
        elif kind == "del":
            self.added.pop(0)


def snapshot(lab: vpclab.Lab) -> dict:
    """Service RSS (kB), flows per router, state folder size (bytes): read from the lab's
    own records (its recorded processes, its state folder)."""
    state = lab.state
    service = [p for p in state.processes() if p.role == "mapping-service" and p.is_alive()]
    rss = 0
    if service:
        status = Path(f"/proc/{service[-1].pid}/status").read_text()
        rss = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
    flows = {h: sum(1 for line in dump_flows(lab, h).splitlines() if "cookie=" in line)
             for h in HOSTS}
    files = {str(f.relative_to(state.dir)): f.stat().st_size for f in state.dir.rglob("*")
             if f.is_file() and not f.is_socket()}
    return {"rss_kb": rss, "flows": flows, "state_bytes": sum(files.values()), "files": files}


def growth(first: dict, last: dict, top: int = 5) -> str:
    """The state files that grew most between two snapshots."""
    grew = sorted(((last["files"].get(f, 0) - first["files"].get(f, 0), f) for f in last["files"]),
                  reverse=True)[:top]
    return ", ".join(f"{f} +{g / 1024:.1f} KiB" for g, f in grew if g > 0) or "nothing"


def start_pings(lab: vpclab.Lab, seconds: int) -> dict[str, subprocess.Popen]:
    """A count, not a deadline (-w): at a deadline the last request, still in flight, counts
    as lost. Output goes to a file, not a pipe: nobody reads a pipe during the soak, and a full
    one (64 KiB, a few minutes of ping) would stall the very pings being measured."""
    pings = {}
    for src, dst in PAIRS:
        out = tempfile.TemporaryFile(mode="w+")
        proc = lab.popen(src, "ping", "-D", "-O", "-i", "0.1", "-c", str(seconds * 10), "-W", "2",
                         lab.address(dst), stdout=out, stderr=subprocess.STDOUT, text=True)
        proc.output = out            # type: ignore[attr-defined]
        pings[f"{src}>{dst}"] = proc
    return pings


def loss(proc: subprocess.Popen, timeout: float) -> tuple[int, int, dict[int, float]]:
    """(sent, received, {lost seq: when ping gave up waiting}) from ping -D -O's output."""
    proc.wait(timeout=timeout)
    proc.output.seek(0)
    out = proc.output.read()
    found = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    replied = {int(n) for n in re.findall(r"bytes from .*icmp_seq=(\d+)", out)}
    waited = {int(n): float(t) for t, n in re.findall(r"\[([\d.]+)\] no answer yet for icmp_seq=(\d+)", out)}
    lost = {seq: t for seq, t in waited.items() if seq not in replied}
    return (int(found.group(1)), int(found.group(2)), lost) if found else (0, 0, lost)


def nearest_change(moment: float, log: list[tuple[float, float, str]]) -> str:
    """The CLI change running at (or closest to) a moment, to read a loss against."""
    if not log:
        return "no change"
    start, end, what = min(log, key=lambda e: 0 if e[0] <= moment <= e[1] else
                           min(abs(moment - e[0]), abs(moment - e[1])))
    where = "during" if start <= moment <= end else f"{min(abs(moment - start), abs(moment - end)):.1f} s from"
    return f"{where} `{what}`"


def soak(minutes: float) -> list[str]:
    name = f"soak-{uuid.uuid4().hex[:4]}"
    path = Path(tempfile.mkdtemp()) / "soak.yaml"
    path.write_text(topology(name))
    lab = vpclab.Lab(path).start()
    report = [f"soak: {minutes:g} min, lab {name}: 4 hosts, 2 VPCs, 16 VMs; one change a second "
              "(move, vm add, vm del in turn) through the CLI; 4 stable pairs ping at 10/s"]
    try:
        for src, dst in PAIRS:       # warm: the first ping of a pair asks the mapping service
            lab.ping(src, dst)
        seconds = int(minutes * 60)
        pings = start_pings(lab, seconds)
        churn = Churn(name)
        start, marks = time.monotonic(), {}
        for tick in itertools.count():
            now = time.monotonic() - start
            if now >= seconds:
                break
            minute = int(now // 60)
            if minute >= 1 and minute not in marks:
                marks[minute] = snapshot(lab)
            churn.step(lambda vm: lab.nodes()[vm]["host"])
            time.sleep(max(0.0, start + tick + 1 - time.monotonic()))
        marks[round((time.monotonic() - start) / 60, 1)] = snapshot(lab)
        results = {pair: loss(proc, timeout=seconds + 60) for pair, proc in pings.items()}
        changes = sum(churn.done.values())
        report.append(f"changes made: {changes} in {seconds} s ({churn.done['move']} moves, "
                      f"{churn.done['add']} adds, {churn.done['del']} deletes); "
                      f"{len(churn.failed)} refused or failed")
        report += [f"  failed: {f}" for f in churn.failed[:10]]
        total_sent = sum(s for s, _, _ in results.values())
        total_lost = sum(s - r for s, r, _ in results.values())
        report.append(f"stable pairs: {total_lost} of {total_sent} pings lost (target 0): " + ", ".join(
            f"{pair} {s - r}/{s}" for pair, (s, r, _) in results.items()))
        for pair, (_, _, lost) in results.items():
            report += [f"  {pair} seq {seq} unanswered ({time.strftime('%H:%M:%S', time.localtime(t))}), "
                       f"{nearest_change(t - 0.1, churn.log)}" for seq, t in sorted(lost.items())][:10]
        report.append("minute  service RSS  flows per router (host1..4)  state folder")
        for minute, m in marks.items():
            report.append(f"{minute:>6}  {m['rss_kb'] / 1024:8.1f} MiB  "
                          f"{' '.join(f'{n:5d}' for n in m['flows'].values()):>27}  "
                          f"{m['state_bytes'] / 1024:9.1f} KiB")
        first, last = list(marks.values())[0], list(marks.values())[-1]
        report.append(f"state files that grew most after minute 1: {growth(first, last)}")
    finally:
        for proc in locals().get("pings", {}).values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        lab.down()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="how long to churn (default 10)")
    args = parser.parse_args()
    report = soak(args.minutes)
    out = REPO / "bench" / "results" / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(report) + "\n")
    print("\n".join(report))
    print(f"written to {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
