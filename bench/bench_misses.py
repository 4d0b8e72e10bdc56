"""Issue 14, point 2: the mapping service under load, measured end to end (needs root):

    .venv/bin/python bench/bench_misses.py [--runs 3] [--hosts 4] [--vms 96] [--askers 16]
        [--name-prefix bm] [--py-spy /tmp/pyspy-venv/bin/py-spy] [--no-write]

A generated topology (HOSTS hosts x VMS VMs, one VPC, on-demand mode, `mapping.miss_rate`
raised to 100000/s per VM port so the routers' per-port meters do not cap the load, and
`mapping.max_entries` to 100000 so no router evicts). On each host ASKERS VMs run a load
generator: one process per VM (python3, a raw AF_PACKET socket, no scapy) that builds its ARP
requests beforehand, waits for a common start time, sends them all back to back, and reads
the replies for its targets until every one came or a timeout. Targets are the VMs on the
other hosts (real mappings), split among a router's askers so each (router, target) pair is
asked exactly once: every request is a real miss of that router (nothing cached yet: each
run is a fresh lab). Answered misses/s = replies that reached the VMs / wall time from the
first request sent (any VM) to the last reply received (any VM). Also: loss (requests with
no reply), the service's and each ovs-vswitchd's CPU over that window (/proc/PID/stat), the
service's own handling time (events.jsonl `handled_us`), and the routers' counters (`vpclab
stats`: misses, misses_limited). Updates only its own section of bench/RESULTS.md (between
marker comments); bench_lab.py keeps that section when it rewrites the file.

Where the time went: the service's CPU per answered miss (its utime+stime over the window /
answered), and with --py-spy a sampled profile of the service during the load (only samples
holding the GIL, i.e. its Python CPU), summarised by bench/profile_summary.py into
--profile-dir (default: a new folder of the run's own) and into the section. Labs are named
NAME_PREFIX + run number (default bm0, bm1, ...), so several people can run it at once.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import vpclab  # noqa: E402
from bench import profile_summary  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"
BEGIN, END = "<!-- bench_misses: begin -->", "<!-- bench_misses: end -->"
TICK = os.sysconf("SC_CLK_TCK")

# Runs inside a VM: python3 -c GENERATOR IFACE MY_MAC MY_IP TIMEOUT TARGET...; says "ready",
# then reads the common start time (time.time()) from stdin
GENERATOR = r"""
import json, select, socket, struct, sys, time
iface, mac, ip, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
targets = sys.argv[5:]
me = bytes.fromhex(mac.replace(":", ""))
mine = socket.inet_aton(ip)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((iface, 0x0806))
head = b"\xff" * 6 + me + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + me + mine + b"\x00" * 6
frames = [head + socket.inet_aton(t) for t in targets]
wanted = {socket.inet_aton(t): t for t in targets}
print("ready", flush=True)
start_at = float(sys.stdin.readline())
while time.time() < start_at:
    time.sleep(min(0.001, max(start_at - time.time(), 0)))
first = time.time()
for f in frames:
    while True:
        try:
            s.send(f)
            break
        except OSError:
            time.sleep(0.0001)
sent = time.time()
got = {}
deadline = first + timeout
while len(got) < len(wanted):
    left = deadline - time.time()
    if left <= 0 or not select.select([s], [], [], left)[0]:
        break
    data = s.recv(128)
    now = time.time()
    if len(data) >= 42 and data[12:14] == b"\x08\x06" and data[20:22] == b"\x00\x02" \
            and data[38:42] == mine and data[28:32] in wanted and data[28:32] not in got:
        got[data[28:32]] = now
print(json.dumps({"first": first, "sent": sent, "asked": len(targets),
                  "replies": sorted(got.values())}), flush=True)
"""


def topology(hosts: int, vms: int) -> str:
    lines = ["name: b142-misses", "description: generated for bench_misses (issue 14, point 2)",
             "mapping: {mode: on-demand, miss_rate: 100000, max_entries: 100000}", "hosts:"]
    lines += [f"  host{h}: {{}}" for h in range(1, hosts + 1)]
    lines += ["vpcs:", "  vpc1: {cidr: 10.20.0.0/16}", "vms:"]
    for h in range(1, hosts + 1):
        for k in range(vms):
            lines.append(f"  v{h}-{k}: {{vpc: vpc1, host: host{h}, ip: 10.20.{h}.{10 + k}}}")
    return "\n".join(lines) + "\n"


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])        # utime + stime


def machine_busy_ticks() -> int:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]) - fields[3] - fields[4]      # all but idle and iowait


def service_events(lab: vpclab.Lab, since: float, until: float) -> list[dict]:
    found = []
    for name in ("events.1.jsonl", "events.jsonl"):
        path = lab.state.dir / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event", event.get("kind")) == "miss" and \
                    since - 1 <= float(event.get("at", event.get("t", 0))) <= until + 1:
                found.append(event)
    return found


def _own_folder() -> Path:
    """A folder this run made itself (mkdtemp: new, root's, 0700): profiles go there."""
    return Path(tempfile.mkdtemp(prefix="vpclab-bench-profile-"))


def start_profiler(py_spy: str | None, pid: int | None, out: Path | None) -> subprocess.Popen | None:
    """py-spy sampling the service (GIL holders only: its Python CPU) until stopped."""
    if not py_spy or pid is None or out is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([py_spy, "record", "-p", str(pid), "--nonblocking", "--gil",
                             "--nolineno", "-r", "500", "-f", "raw", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(proc: subprocess.Popen | None, out: Path) -> dict | None:
    if proc is None:
        return None
    proc.send_signal(2)     # SIGINT: py-spy writes its file and exits
    proc.wait(timeout=30)
    return profile_summary.summarize(out) if out.exists() else None


def one_run(index: int, hosts: int, vms: int, askers: int, timeout: float, settle: float,
            name: str = "bm0", py_spy: str | None = None, profile_out: Path | None = None) -> dict:
    if py_spy and profile_out is None:
        profile_out = _own_folder() / "profile.txt"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "misses.yaml"
        path.write_text(topology(hosts, vms))
        started = time.monotonic()
        with vpclab.Lab(path, name=name) as lab:
            up = time.monotonic() - started
            time.sleep(settle)      # let the new lab's start-up work end
            nodes = lab.nodes()
            by_host: dict[str, list[str]] = {}
            for name, node in nodes.items():
                if node["kind"] == "vm":
                    by_host.setdefault(node["host"], []).append(name)
            procs = [p for p in lab.state.processes() if p.is_alive()]
            service = [p for p in procs if "mapping" in p.role]
            switches = {p.node: p for p in procs if "vswitchd" in p.role}
            plans = []        # (vm, host, targets)
            for host, names in sorted(by_host.items()):
                names.sort(key=lambda n: int(n.rsplit("-", 1)[1]))
                remote = [nodes[n]["ip"] for h, ns in sorted(by_host.items()) if h != host
                          for n in ns]
                mine = names[:askers]
                for i, vm in enumerate(mine):
                    plans.append((vm, host, remote[i::len(mine)]))
            gens = []
            for vm, host, targets in plans:
                node = nodes[vm]
                gens.append(lab.popen(vm, "python3", "-c", GENERATOR, "eth0", node["mac"],
                                      node["ip"], str(timeout), *targets,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            for gen in gens:     # each says "ready" once its socket is open
                line = gen.stdout.readline()
                if line.strip() != "ready":
                    raise RuntimeError(f"generator did not start: {line} {gen.stderr.read()}")
            idle0, t_idle = machine_busy_ticks(), time.time()
            time.sleep(1.0)     # how busy the machine is with the lab alone, before the load
            idle_busy = (machine_busy_ticks() - idle0) / TICK / (time.time() - t_idle)
            stats_before = lab.stats()
            profiler = start_profiler(py_spy, service[0].pid if service else None,
                                      profile_out)
            start_at = time.time() + 0.5
            for gen in gens:
                gen.stdin.write(f"{start_at:.6f}\n")
                gen.stdin.flush()
            while time.time() < start_at - 0.05:
                time.sleep(0.01)
            watched = {**{"service": p.pid for p in service[:1]},
                       **{h: p.pid for h, p in switches.items()}}
            samples: list[tuple[float, dict]] = []
            done = threading.Event()

            def sample() -> None:      # every process's CPU ticks every 20 ms
                while not done.is_set():
                    samples.append((time.time(), {"machine": machine_busy_ticks(),
                                                  **{k: cpu_ticks(pid) for k, pid in watched.items()}}))
                    time.sleep(0.02)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            outs = [json.loads(gen.communicate(timeout=timeout + 30)[0].strip().splitlines()[-1])
                    for gen in gens]
            first = min(o["first"] for o in outs)
            replies = [t for o in outs for t in o["replies"]]
            last = max(replies) if replies else first
            done.set()
            sampler.join()
            profile = stop_profiler(profiler, profile_out)
            # CPU over the samples that bracket [first request, last reply]
            before = [s for s in samples if s[0] <= first] or samples[:1]
            after = [s for s in samples if s[0] >= last] or samples[-1:]
            (t0, cpu0), (t1, cpu1) = before[-1], after[0]
            cpu_window = t1 - t0
            stats_after = lab.stats()
            events = service_events(lab, first, last)
    per_router = {}
    for (vm, host, targets), out in zip(plans, outs):
        r = per_router.setdefault(host, {"asked": 0, "answered": 0, "last": first})
        r["asked"] += out["asked"]
        r["answered"] += len(out["replies"])
        r["last"] = max([r["last"], *out["replies"]])
    wall = last - first
    counters = {h: {k: (stats_after["routers"][h].get(k) or 0) - (stats_before["routers"][h].get(k) or 0)
                    for k in ("misses", "misses_limited", "unknown")}
                for h in stats_after["routers"]}
    handled = [e["handled_us"] for e in events if "handled_us" in e]
    return {
        "up": up, "asked": sum(o["asked"] for o in outs), "answered": len(replies),
        "wall": wall, "rate": len(replies) / wall if wall > 0 else 0.0,
        "send_spread": max(o["sent"] for o in outs) - first,
        "per_router": {h: {**r, "rate": r["answered"] / (r["last"] - first) if r["last"] > first else 0}
                       for h, r in per_router.items()},
        "cpu": {k: (cpu1[k] - cpu0[k]) / TICK / cpu_window for k in cpu0},
        "cpu_window": cpu_window,
        "counters": counters,
        "handled_us": handled,
        "load": os.getloadavg()[0],
        "idle_busy": idle_busy,
        "service_us_per_miss": (cpu1.get("service", 0) - cpu0.get("service", 0)) / TICK * 1e6
        / len(replies) if replies and "service" in cpu0 else None,
        "profile": profile,
    }


def fmt_range(values: list[float], digits: int = 0, unit: str = "") -> str:
    return (f"{statistics.median(values):.{digits}f}{unit} ({min(values):.{digits}f}-"
            f"{max(values):.{digits}f})")


def write_section(text: str) -> None:
    body = RESULTS.read_text() if RESULTS.exists() else "# Bench results\n"
    block = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    if BEGIN in body and END in body:
        head, rest = body.split(BEGIN, 1)
        body = head + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        body = body.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--vms", type=int, default=96, help="VMs per host (default 96)")
    parser.add_argument("--askers", type=int, default=16, help="generator VMs per host (default 16)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a generator waits")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after up (default 10)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--name-prefix", default="bm",
                        help="labs are named PREFIX0, PREFIX1, ... (default bm)")
    parser.add_argument("--py-spy", metavar="PATH",
                        help="py-spy to profile the service during each load (not in the venv)")
    parser.add_argument("--profile-dir", type=Path,
                        help="where --py-spy writes (default: a new folder of this run's own)")
    parser.add_argument("--label", default="run", help="profile files' name prefix")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench needs root", file=sys.stderr)
        return 2
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    if args.profile_dir is None and args.py_spy:    # never a fixed /tmp path written as root
        args.profile_dir = _own_folder()
    runs = []
    for i in range(args.runs):
        out = args.profile_dir / f"{args.label}-{i + 1}.raw.txt" if args.py_spy else None
        r = one_run(i, args.hosts, args.vms, args.askers, args.timeout, args.settle,
                    f"{args.name_prefix}{i}", args.py_spy, out)
        runs.append(r)
        if r["profile"]:
            summary = profile_summary.text(r["profile"])
            out.with_name(f"{args.label}-{i + 1}.summary.txt").write_text(summary)
            print(summary)
        h = r["handled_us"]
        print(f"run {i + 1}: up {r['up']:.1f} s; asked {r['asked']}, answered {r['answered']} in "
              f"{r['wall'] * 1000:.0f} ms = {r['rate']:.0f}/s (sending took "
              f"{r['send_spread'] * 1000:.0f} ms); per router "
              + ", ".join(f"{k} {v['answered']}/{v['asked']} {v['rate']:.0f}/s"
                          for k, v in sorted(r["per_router"].items()))
              + f"; CPU over {r['cpu_window']:.2f} s: "
              + ", ".join(f"{k} {v * 100:.0f}%" for k, v in sorted(r["cpu"].items()))
              + f"; service CPU per answered miss {r['service_us_per_miss'] or 0:.0f} us"
              + f"; counters {r['counters']}; handled_us n={len(h)} median "
              f"{statistics.median(h) if h else float('nan'):.0f} p90 "
              f"{sorted(h)[int(len(h) * 0.9)] if h else float('nan')}; load {r['load']:.2f}; "
              f"machine busy the second before {100 * r['idle_busy']:.0f}%",
              flush=True)
    if not args.no_write:
        write_section(section(runs, args, when))
        print(f"written: {RESULTS} (its own section)")
    return 0


def limits(busy: list[float], svc: list[float], ovs: list[float], own: list[float],
           before: list[float]) -> str:
    """What the figures say limits the rate (from this run's medians)."""
    b, v, o = statistics.median(busy), statistics.median(svc), statistics.median(ovs)
    text = (f"During the load the machine was {b:.0f}% busy of 200%: "
            + ("both cores saturated, so the rate is what this 2-core machine does with the "
               "service, the routers and the generators sharing it, not the service alone. "
               if b >= 190 else "not saturated. ")
            + f"The service took {v:.0f}% of a core (one Python process: with the GIL, "
            f"about one core at most), the routers' ovs-vswitchd {o:.0f}% together. ")
    if own:
        text += (f"The service's own handling (`handled_us`, wall time inside its handler, so "
                 f"on a saturated machine it includes waiting for a core) sums to "
                 f"{statistics.median(own):.0f}% of the wall time; the rest of its CPU is "
                 "os-ken's receive, parsing and dispatch, the sends and the event log's writes. ")
    if statistics.median(before) > 50:
        return text + (f"The machine was already {statistics.median(before):.0f}% busy the second "
                       "before the load: other work was running, so the rate says little; the "
                       "service's CPU per answered miss still does.")
    return text + ("The 1-min load average is high from the lab's own start (its VMs and "
                   "routers brought up seconds before), not from other work.")


# Issue 14 point 2, measured alternately on the same (busy, shared) machine, before (commit
# e4bad3c) and after the service's fast path; bench/handler_bench.py for the reproducible part.
BEFORE_AFTER = """### Where the service's time went, before and after the fast path

Before: commit e4bad3c; after: the commits that follow it (frame parsed with struct, one
write per answer, miss events queued for a writer thread, packet-outs packed with struct,
ARP misses answered directly). Measured alternately on a machine other labs were loading,
so read the ratios. `bench/handler_bench.py` (no lab: the real codec, Outbox, EventLog, a
connection that only counts bytes; 1152 ARP misses) gives the CPU per miss of the whole
process; with --profile, each part's time under cProfile (inflated about 2.5x; compare the
columns, not the units).

| | before | after |
|---|---|---|
| handler_bench: process CPU per miss, 3 alternating runs | 430 / 313 / 273 us | 188 / 129 / 158 us |
| handler_bench: socket writes for 1152 misses | 4608 | 66-255 |
| bench_misses: service CPU per answered miss (1 run each, machine saturated by others) | 512 / 582 us | 182 us |
| bench_misses: handled_us median | 188-199 us | 91 us |
| first ARP answer at the asking VM (bench/arp_answer.py, 4 alternating runs x 40 misses, median) | 2.67 / 2.55 / 2.29 / 2.35 ms | 2.12 / 2.14 / 1.66 / 2.11 ms |
| first ARP reply = the cached entry's reply, byte for byte | - | 40/40 |

| part of a miss (cProfile, cumulative per miss) | before | after |
|---|---|---|
| os-ken's packet-in parse (ofproto_parser.msg: header and match) | 89 us | 85 us |
| the frame (os-ken's packet.Packet, then packet_in.parse) | 154 us | 28 us |
| decide (vpclab.router.pipeline; Router.port_of compares whole Mappings with each of 96 ports) | 163 us | 168 us |
| encode the entry's 3 flow-mods (FlowEncoder, pre-encoded at connect) | 46 us | 50 us |
| the packet-out (os-ken's builder; then struct, with the ARP reply built) | 19 us | 41 us |
| outbox.put | 27 us | 16 us |
| the event log, in the handler (open/append/close; then a queue) | 126 us | 16 us |
| the whole handler | 584 us | 354 us |
"""


def profile_table(runs: list[dict]) -> str:
    """With --py-spy: the service's sampled time by part, median share over the runs."""
    found = [r["profile"] for r in runs if r.get("profile")]
    if not found:
        return ""
    rows = "\n".join(f"| {label.strip()} | {statistics.median(p['parts'][label] for p in found) * 100:.0f}% |"
                     for label in found[0]["parts"])
    samples = ", ".join(str(p["samples"]) for p in found)
    return (f"\nWhere the service's time went during the load (py-spy, samples holding the GIL: "
            f"{samples} per run; few samples on a saturated machine, so coarse):\n\n"
            f"| part (inclusive) | share |\n|---|---|\n{rows}\n")


def section(runs: list[dict], args, when: str) -> str:
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    rates = [r["rate"] for r in runs]
    loss = [100 * (r["asked"] - r["answered"]) / r["asked"] for r in runs]
    svc = [100 * r["cpu"]["service"] for r in runs if "service" in r["cpu"]]
    ovs = [100 * sum(v for k, v in r["cpu"].items() if k not in ("service", "machine")) for r in runs]
    busy = [100 * r["cpu"]["machine"] for r in runs]
    before = [100 * r["idle_busy"] for r in runs]
    walls = [r["wall"] * 1000 for r in runs]
    handled = [statistics.median(r["handled_us"]) for r in runs if r["handled_us"]]
    per_miss = [r["service_us_per_miss"] for r in runs if r["service_us_per_miss"]] or [0.0]
    svc_time = [sum(r["handled_us"]) / 1e6 / r["wall"] * 100 for r in runs if r["handled_us"]]
    hosts = sorted(runs[0]["per_router"])
    per_router = "; ".join(f"{h} {fmt_range([r['per_router'][h]['rate'] for r in runs])}/s"
                           for h in hosts)
    limited = sum(c["misses_limited"] for r in runs for c in r["counters"].values())
    rows = "\n".join(
        f"| {i + 1} | {r['asked']} | {r['answered']} | {r['wall'] * 1000:.0f} | {r['rate']:.0f} | "
        + " / ".join(str(r["counters"][h]["misses"]) for h in hosts) + " | "
        + f"{100 * r['cpu'].get('service', 0):.0f}% | "
        + " / ".join(f"{100 * r['cpu'][h]:.0f}%" for h in hosts) + " | "
        + (f"{statistics.median(r['handled_us']):.0f}" if r["handled_us"] else "-")
        + f" | {r['load']:.2f} |" for i, r in enumerate(runs))
    n = len(runs)
    return f"""## Mapping service under load (issue 14, point 2)

Written by `.venv/bin/python bench/bench_misses.py` ({when}, commit {commit}; same machine).
{args.hosts} hosts x {args.vms} VMs in one VPC, on-demand mode, with `mapping: {{miss_rate:
100000, max_entries: 100000}}` (the default per-port meter, 100 misses/s per VM port, would
cap the load; the default 1024 cached entries per router is not reached here, but raised
anyway). On each host {args.askers} VMs run a load generator (one python3 process per VM, a
raw AF_PACKET socket): it sends all its ARP requests back to back at a common start time and
counts the replies for its targets. Targets are the VMs on the other hosts (real mappings),
split among a router's askers so each router is asked each target once: every request is a
miss of its router. Each run is a fresh lab. Answered misses/s = replies that reached the VMs /
wall time from the first request sent to the last reply received. Each lab is left {args.settle:g} s
after `up` before the load starts. CPU is each process's
utime+stime (/proc/PID/stat sampled every 20 ms) over the samples bracketing that
window (100% = one core of 2). The service's own
handling time is the sum of events.jsonl `handled_us` over the window.

| figure | median (min-max), {n} runs |
|---|---|
| answered misses/s, end to end, all routers | {fmt_range(rates)} |
| answered misses/s per router | {per_router} |
| wall time, first request to last reply | {fmt_range(walls)} ms |
| loss (requests without a reply) | {fmt_range(loss, 1, '%')} |
| whole machine busy (both cores; 200% = saturated) | {fmt_range(busy)}% (the second before the load: {fmt_range(before)}%) |
| the rest: generators' {args.hosts * args.askers} processes, kernel (veth, softirq), lab daemons | {fmt_range([b - v - o for b, v, o in zip(busy, svc, ovs)])}% |
| mapping service CPU | {fmt_range(svc)}% of one core |
| all ovs-vswitchd together, CPU | {fmt_range(ovs)}% of one core |
| service's CPU per answered miss (utime+stime / answered) | {fmt_range(per_miss)} us |
| service's own handling per miss (`handled_us`, median) | {fmt_range(handled)} us |
| service's own handling, summed / wall time | {fmt_range(svc_time)}% |
| misses_limited (router meters), all runs | {limited} |

{limits(busy, svc, ovs, svc_time, before)}
{profile_table(runs)}

| run | asked | answered | wall ms | answered/s | misses at the service, per router | service CPU | ovs-vswitchd CPU per router | handled_us median | load (1 min) |
|---|---|---|---|---|---|---|---|---|---|
{rows}

{BEFORE_AFTER}"""


if __name__ == "__main__":
    sys.exit(main())
