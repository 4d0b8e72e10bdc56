"""Issue 14, point 1: vpclab (seed topology, on-demand and preload) beside the two-switch
peer (bench/peer.py), alternating in one run, several rounds; writes bench/RESULTS.md.

Each round builds every system afresh (cold caches, cold ARP) in a rotating order and, on
each, from the first VM to the second: starts tcpdump on the asking VM's eth0, sends one
ping (the first ping's RTT), reads the first ARP request and its reply from the pcap (the
ARP answer as the asking VM sees it), then 200 pings at 10 ms (their median: steady RTT),
then iperf3 TCP for 4 s (the receiver's rate). Ratios are taken within a round (vpclab over
the peer measured seconds apart), then their median and range over the rounds.
"""
from __future__ import annotations

import json
import os
import platform
import re
import secrets
import select
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

import vpclab
from vpclab.running.health import newest
from vpclab.running.wait import wait_until
from datapath_stats import DatapathWindow
from peer import TwoSwitchPeer

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "topologies" / "seed.yaml"
RESULTS = REPO / "bench" / "RESULTS.md"
STEADY_COUNT, STEADY_INTERVAL, IPERF_SECONDS = 200, 0.01, 4
SYSTEMS = ("peer", "on-demand", "preload")


def parse_rtts(out: str) -> list[float]:
    return [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]


class LabSide:
    """A running vpclab lab seen through the measurements' interface (vm 0 asks, vm 1
    answers); processes go through lab.popen, so the lab's down() stops any left."""

    def __init__(self, lab: vpclab.Lab):
        self.lab = lab
        self.vms = ["ZIGI-VM1", "ZIGI-VM2"]
        self.ips = [str(lab.topology.vms[vm].ip) for vm in self.vms]

    def argv(self, vm: int, *cmd: str) -> list[str]:
        return self.lab.command(self.vms[vm], *cmd)

    def popen(self, vm: int, *cmd: str, **kwargs) -> subprocess.Popen:
        return self.lab.popen(self.vms[vm], *cmd, **kwargs)

    def appctl(self, host: int, *args: str) -> str:
        """`ovs-appctl ARGS` on the host's own Open vSwitch."""
        return self.lab.exec(f"host{host + 1}", "ovs-appctl", *args, check=True).stdout

    def vswitchd_pids(self) -> list[int]:
        current = newest(self.lab.state.processes())
        return [current[("ovs-vswitchd", f"host{i + 1}")].pid for i in range(2)]


def run(argv: list[str], timeout: float) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL).stdout


def wait_for_line(proc: subprocess.Popen, stream, text: bytes, what: str,
                  timeout: float = 10.0) -> None:
    seen, deadline = b"", time.monotonic() + timeout
    while text not in seen:
        ready, _, _ = select.select([stream], [], [], max(deadline - time.monotonic(), 0))
        chunk = os.read(stream.fileno(), 4096) if ready else b""
        if not chunk:
            raise RuntimeError(f"{what} did not start: {seen.decode(errors='replace').strip()}")
        seen += chunk


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def arp_answer_ms(pcap: Path, target: str) -> float | None:
    """Request-to-reply time of the first ARP for `target` in a pcap (its own timestamps)."""
    out = run(["tcpdump", "-nn", "-tt", "-r", str(pcap)], 30)
    request = reply = None
    for line in out.splitlines():
        stamp, _, rest = line.partition(" ")
        if request is None and f"Request who-has {target} " in rest:
            request = float(stamp)
        elif request is not None and f"Reply {target} is-at" in rest:
            reply = float(stamp)
            break
    return (reply - request) * 1000 if request is not None and reply is not None else None


def measure(side, scratch: Path) -> dict[str, float | None]:
    """One system's figures, as the module docstring says; the asking VM is vm 0."""
    target = side.ips[1]
    pcap = scratch / f"arp-{secrets.token_hex(3)}.pcap"
    dump = side.popen(0, "tcpdump", "-nn", "-U", "--immediate-mode", "-Z", "root", "-i", "eth0",
                      "-w", str(pcap), "arp", "or", "icmp",
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_line(dump, dump.stderr, b"listening on", "tcpdump on the asking VM")
        first = parse_rtts(run(side.argv(0, "ping", "-n", "-c", "1", "-W", "2", target), 30))
        time.sleep(0.3)     # the reply is already in; let tcpdump write it
    finally:
        stop(dump)
        dump.stderr.close()
    arp = arp_answer_ms(pcap, target)
    window = DatapathWindow(side)
    steady = parse_rtts(run(side.argv(0, "ping", "-n", "-c",
                                      str(STEADY_COUNT), "-i", str(STEADY_INTERVAL), "-W", "2",
                                      target), STEADY_COUNT * STEADY_INTERVAL + 60))
    steady_dp = window.close()
    server = side.popen(1, "iperf3", "-s", "-1", "-B", target, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
    try:    # its "Server listening" is block-buffered into a pipe: ask the kernel instead
        wait_until(lambda: server.poll() is not None or "5201" in run(
            side.argv(1, "ss", "-Hltn", "sport", "=", ":5201"), 10), "iperf3 server")
        window = DatapathWindow(side)
        out = run(side.argv(0, "iperf3", "-c", target, "-t", str(IPERF_SECONDS), "-J"),
                  IPERF_SECONDS + 60)
        tcp_dp = window.close()
        server.wait(timeout=15)
    finally:
        stop(server, signal.SIGTERM)
    try:
        end = json.loads(out)["end"]
        mbps, retr = end["sum_received"]["bits_per_second"] / 1e6, end["sum_sent"]["retransmits"]
    except (ValueError, KeyError):
        mbps = retr = None
    return {"first": first[0] if first else None, "arp": arp,
            "steady": statistics.median(steady) if steady else None, "steady_n": len(steady),
            "mbps": mbps, "retr": retr, "steady_dp": steady_dp, "tcp_dp": tcp_dp}


def seed_dict() -> dict:
    return yaml.safe_load(SEED.read_text())


def measure_system(system: str, label: str, scratch: Path) -> dict:
    if system == "peer":
        with TwoSwitchPeer() as peer:
            return measure(peer, scratch)
    with vpclab.Lab(seed_dict(), name=f"b14-{system[:3]}{label}", mode=system) as lab:
        return measure(LabSide(lab), scratch)


def round_ratios(r: dict) -> dict:
    peer = r["peer"]
    ratios = {}
    for mode in SYSTEMS[1:]:
        m = r[mode]
        ratios[mode] = {
            "steady/peer": _div(m["steady"], peer["steady"]),
            "tcp/peer": _div(m["mbps"], peer["mbps"]),
            "first/steady": _div(m["first"], m["steady"]),
        }
    ratios["peer"] = {"first/steady": _div(peer["first"], peer["steady"])}
    return ratios


def _div(a, b):
    return a / b if a is not None and b else None


def disturbed(rounds: list[dict]) -> list[int]:
    """Rounds whose peer steady RTT or peer throughput is more than 30% off the run's median
    for it: the peer does not change between rounds, so such a round saw other load."""
    flagged = []
    for key in ("steady", "mbps"):
        values = [r["peer"][key] for r in rounds if r["peer"][key] is not None]
        if len(values) < 3:
            continue
        mid = statistics.median(values)
        flagged += [i for i, r in enumerate(rounds)
                    if r["peer"][key] is not None and abs(r["peer"][key] - mid) > 0.3 * mid]
    return sorted(set(flagged))


def run_rounds(rounds: int, say) -> tuple[list[dict], list[str]]:
    results: list[dict] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vpclab-bench-b14-") as tmp:
        scratch = Path(tmp)
        os.chmod(scratch, 0o755)

        def one(label: str, index: int) -> dict:
            order = SYSTEMS[index % 3:] + SYSTEMS[:index % 3]
            r = {"label": label, "order": order, "load": os.getloadavg()[0]}
            for system in order:
                r[system] = measure_system(system, label, scratch)
            r["ratios"] = round_ratios(r)
            say(f"  round {label} ({' -> '.join(order)}, load {r['load']:.2f}): " + "; ".join(
                f"{s} first {fmt(r[s]['first'])} arp {fmt(r[s]['arp'])} steady "
                f"{fmt(r[s]['steady'])} ms tcp {fmt(r[s]['mbps'], 0)} Mbit/s "
                f"({fmt(r[s]['retr'], 0)} retr)" for s in SYSTEMS))
            return r

        for i in range(rounds):
            results.append(one(str(i + 1), i))
        for i in disturbed(results):
            old = results[i]
            again = one(f"{old['label']}b", i)
            notes.append(f"round {old['label']} looked disturbed (peer steady "
                         f"{fmt(old['peer']['steady'])} ms, {fmt(old['peer']['mbps'], 0)} Mbit/s "
                         f"against the other rounds), rerun as round {again['label']}")
            results[i] = again
    return results, notes


def fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def spread(values: list, digits: int = 2, unit: str = "") -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    return (f"{statistics.median(values):.{digits}f}{unit} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def summary(results: list[dict]) -> dict[str, str]:
    col = lambda system, key: [r[system][key] for r in results]   # noqa: E731
    rat = lambda system, key: [r["ratios"][system][key] for r in results]   # noqa: E731
    return {
        "steady": " / ".join(f"{m} {spread(rat(m, 'steady/peer'), unit='x')}"
                             for m in SYSTEMS[1:]),
        "tcp": " / ".join(f"{m} {spread(rat(m, 'tcp/peer'), unit='x')}" for m in SYSTEMS[1:]),
        "od-first": spread(rat("on-demand", "first/steady"), 1, "x"),
        "pre-first": spread(rat("preload", "first/steady"), 1, "x"),
        "arp": " / ".join(f"{m} {spread(col(m, 'arp'), 2, ' ms')}" for m in SYSTEMS),
        "abs": "; ".join(
            f"{s}: steady {spread(col(s, 'steady'), 3, ' ms')}, first "
            f"{spread(col(s, 'first'), 3, ' ms')}, TCP {spread(col(s, 'mbps'), 0, ' Mbit/s')}"
            for s in SYSTEMS),
        "peer-first": spread(rat("peer", "first/steady"), 1, "x"),
        "dp-steady": "; ".join(
            f"{s}: {spread(dp(results, s, 'steady_dp', 'passes'), 2)} passes/packet, "
            f"{spread(dp(results, s, 'steady_dp', 'upcalls'), 0)} upcalls"
            for s in SYSTEMS),
        "dp-tcp": "; ".join(
            f"{s}: {spread(dp(results, s, 'tcp_dp', 'cpu_us_per_packet'), 1, ' us')} CPU/packet, "
            f"{spread(dp(results, s, 'tcp_dp', 'passes'), 2)} passes/packet, "
            f"{spread(dp(results, s, 'tcp_dp', 'packets'), 0)} packets"
            for s in SYSTEMS),
    }


def dp(results: list[dict], system: str, window: str, key: str) -> list:
    """One datapath figure (datapath_stats.DatapathWindow) of one system, over the rounds."""
    return [(r[system].get(window) or {}).get(key) for r in results]


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor() or "?")
    ovs = run(["ovs-vswitchd", "--version"], 10).splitlines()[0]
    iperf = run(["iperf3", "--version"], 10).splitlines()[0]
    commit = run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"], 10).strip()
    dirty = [line for line in run(["git", "-C", str(REPO), "status", "--porcelain",
                                   "--untracked-files=no"], 10).splitlines()
             if not line.endswith("bench/RESULTS.md")]     # this run's own output
    return {"cpu": f"{cpu}, {os.cpu_count()} cores", "kernel": platform.release(), "ovs": ovs,
            "iperf": iperf, "commit": commit,
            "tree": ("clean" if not dirty else
                     f"{len(dirty)} tracked files modified, uncommitted: "
                     + ", ".join(line[3:] for line in dirty[:12])
                     + (" ..." if len(dirty) > 12 else ""))}


def write_results(results: list[dict], notes: list[str], other: list[str], started: str,
                  table: str = "", extra: str = "") -> None:
    """RESULTS.md: `table` (issue 14's, from this run's parts) first, this module's section,
    `extra` (other parts' sections of this run), then the sections other benches keep."""
    s, m = summary(results), machine()
    n = len(results)
    per_round = "\n".join(
        f"| {r['label']} | {' -> '.join(r['order'])} | {r['load']:.2f} | "
        + " | ".join(f"{fmt(r[x]['first'])} / {fmt(r[x]['arp'])} / {fmt(r[x]['steady'])} / "
                     f"{fmt(r[x]['mbps'], 0)} ({fmt(r[x]['retr'], 0)})" for x in SYSTEMS) + " |"
        for r in results)
    text = f"""# Bench results

Written by `.venv/bin/python bench/bench_lab.py` (do not edit by hand; rerun the bench).

- date: {started}
- commit: {m['commit']} (working tree: {m['tree']})
- machine: {m['cpu']}; kernel {m['kernel']}; {m['ovs']}; {m['iperf']}

{"## Issue 14's table, this run" + chr(10) + chr(10) + table + chr(10) + chr(10) if table else ""}## vpclab beside the two-switch peer (issue 14, point 1)

The peer is the lab a teacher builds without vpclab: two hosts, each its own namespace with
its own userspace Open vSwitch (netdev datapath, private run dirs) as a plain L2 learning
switch (no controller: NORMAL), joined by one veth of MTU 9000 (vpclab's underlay MTU), one
VM on each (MTU 1500, IPv6 off, tx/tso/gso offloads off, the seed's addresses and MACs, as
vpclab's VMs). No tunnel, no controller. vpclab runs the seed topology (Geneve, two hosts,
ZIGI-VM1 -> ZIGI-VM2) in on-demand and in preload mode. {n} rounds; each round builds all
three afresh, in a rotating order, and measures each from the first VM to the second:
first ping (cold caches and ARP), the first ARP's request-to-reply time in a tcpdump on the
asking VM's eth0 (pcap timestamps), steady RTT (median of {STEADY_COUNT} pings at
{STEADY_INTERVAL * 1000:.0f} ms intervals, sent after the first), TCP throughput (iperf3,
{IPERF_SECONDS} s, receiver's rate). Ratios are taken within a round, then the median and
the range (min-max) over the rounds.

| figure | measured: median (min-max), {n} rounds | before (issue 14) | target |
|---|---|---|---|
| steady RTT across hosts / two-switch peer | {s['steady']} | 1.5-1.6x | <= 1.3x |
| TCP throughput / two-switch peer | {s['tcp']} | 0.83x | >= 0.9x |
| on-demand first ping / steady RTT | {s['od-first']} | 5.3x | <= 3x |
| preload first ping / steady RTT | {s['pre-first']} | 3.1x | <= 1.5x |
| ARP answer at the asking VM, request to reply (VM-side capture) | {s['arp']} | ~1.9 ms on-demand | <= 0.5 ms preload, <= 1.2 ms on-demand |

Absolute figures (median (min-max)): {s['abs']}. The peer's own first ping / steady:
{s['peer-first']}.

Inside the datapaths (issue 14, point 4; `ovs-appctl dpif-netdev/pmd-stats-show` on both
hosts, cleared at the start of each window, and both ovs-vswitchd's CPU time per packet they
received, median (min-max) over the rounds):

- during the {STEADY_COUNT} steady pings: {s['dp-steady']}
- during the {IPERF_SECONDS} s of TCP: {s['dp-tcp']}

Per round, each system's first ping ms / ARP answer ms / steady RTT ms / TCP Mbit/s
(TCP retransmits in the 4 s):

| round | order | load (1 min) | peer | on-demand | preload |
|---|---|---|---|---|---|
{per_round}

{chr(10).join(f"- {note}" for note in notes) or "- no round looked disturbed (peer steady RTT and throughput within 30% of the run's median)."}

## The rest of this run

{chr(10).join(f"    {line}" for line in other) or "    (not run)"}
"""
    RESULTS.write_text(text + (chr(10) + extra if extra else "") + kept_sections())


def kept_sections() -> str:
    """Sections other benches own in RESULTS.md (between their marker comments), kept as they
    are when this run rewrites the file: bench/bench_misses.py's (issue 14, point 2)."""
    try:
        old = RESULTS.read_text()
    except FileNotFoundError:
        return ""
    begin, end = "<!-- bench_misses: begin -->", "<!-- bench_misses: end -->"
    if begin not in old or end not in old:
        return ""
    return "\n" + begin + old.split(begin, 1)[1].split(end, 1)[0] + end + "\n"


def versus_peer(rounds: int, say) -> list[dict]:
    say(f"vpclab beside the two-switch peer (issue 14), {rounds} rounds, alternating:")
    results, notes = run_rounds(rounds, say)
    s = summary(results)
    for note in notes:
        say(f"  {note}")
    say(f"  steady RTT / peer: {s['steady']}")
    say(f"  TCP / peer:        {s['tcp']}")
    say(f"  first / steady:    on-demand {s['od-first']}, preload {s['pre-first']}, "
        f"peer {s['peer-first']}")
    say(f"  ARP answer:        {s['arp']}")
    say(f"  datapath, steady:  {s['dp-steady']}")
    say(f"  datapath, TCP:     {s['dp-tcp']}")
    return [results, notes]
