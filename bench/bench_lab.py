"""vpclab benchmarks, printed in one run (needs root):

    .venv/bin/python bench/bench_lab.py [--repeat N] [--only PART]

1. seed `up` to ready and `down`;
2. first-ping RTT (cold caches) vs steady RTT, in each mapping mode;
3. bigger labs (bench/bench_scale.py): 256 VMs / 16 hosts / 8 VPCs (--repeat times) and
   1,024 VMs / 32 hosts / 16 VPCs (once): `up` by phase, first ping, `down`, memory;
   the mapping service under load (bench/bench_misses.py, --rounds runs); an on-demand
   first ping's anatomy (bench/first_ping_anatomy.py);
4. a lower bound (not a peer): two namespaces joined by ONE userspace-OVS L2 bridge;
5. the fair peer (issue 14): vpclab's seed, on-demand and preload, beside the lab a teacher
   builds without vpclab (two hosts, each its own userspace OVS as a NORMAL L2 switch,
   joined by a veth, one VM on each; bench/peer.py), alternating, --rounds rounds: first
   ping, ARP answer at the asking VM, steady RTT, iperf3 TCP, as ratios
   (bench/versus_peer.py). A run that includes it writes bench/RESULTS.md, with issue 14's
   table filled from this run's parts (bench/issue_table.py).

--only runs one part: seed (1), first-ping (2), anatomy, scale or misses (3), baseline (4)
or peer (5).
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import vpclab  # noqa: E402
from vpclab.running.state import namespace_id, processes_in  # noqa: E402
from vpclab.running.wait import wait_until  # noqa: E402

from bench_scale import markdown as scale_markdown  # noqa: E402
from issue_table import markdown as table_markdown, misses_row, peer_rows, scale_rows  # noqa: E402
from peer import Daemon  # noqa: E402
from versus_peer import versus_peer, write_results  # noqa: E402

SEED = REPO / "topologies" / "seed.yaml"
PRINTED: list[str] = []     # every figure line this run printed, for bench/RESULTS.md


def say(line: str) -> None:
    print(line, flush=True)
    PRINTED.append(line)


def parse_rtts(out: str) -> list[float]:
    return [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]


def rtts(lab: vpclab.Lab, vm: str, ip: str, count: int, interval: float = 0.05) -> list[float]:
    """Each reply's RTT of `count` pings from a VM (lab.ping says only whether one came back)."""
    return parse_rtts(lab.exec(vm, "ping", "-c", str(count), "-i", str(interval), "-W", "2", ip,
                               timeout=count * interval + 30).stdout)


def timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def seed_up_down(repeat: int) -> None:
    ups, downs = [], []
    for i in range(repeat):
        lab, up = timed(lambda: vpclab.Lab(SEED, name=f"bench-seed{i}").start())
        _, down = timed(lab.down)
        ups.append(up)
        downs.append(down)
    say(f"seed up to ready:  median {statistics.median(ups):.2f} s  (runs: "
          f"{', '.join(f'{u:.2f}' for u in ups)}; target < 3 s)")
    say(f"seed down:         median {statistics.median(downs):.2f} s")


def first_vs_steady(mode: str, repeat: int) -> None:
    firsts, steady = [], []
    for i in range(repeat):
        with vpclab.Lab(SEED, name=f"bench-{mode[:3]}{i}", mode=mode) as lab:
            firsts += rtts(lab, "ZIGI-VM1", "10.0.0.185", 1)
            steady += rtts(lab, "ZIGI-VM1", "10.0.0.185", 30)[5:]
    first, steady_ms = statistics.median(firsts), statistics.median(steady)
    say(f"{mode:<10} first ping {first:.3f} ms (median of {len(firsts)} cold labs), "
          f"steady {steady_ms:.3f} ms (median of {len(steady)}), first/steady {first / steady_ms:.1f}x")


def generated_topology(hosts: int = 8, per_host: int = 8, vpcs: int = 4) -> str:
    lines = ["name: bench-scale", "description: generated for bench", "hosts:"]
    lines += [f"  host{h}: {{}}" for h in range(1, hosts + 1)]
    lines += ["vpcs:"] + [f"  vpc{v}: {{cidr: 10.{v}.0.0/24}}" for v in range(1, vpcs + 1)]
    lines.append("vms:")
    next_ip = {v: 10 for v in range(1, vpcs + 1)}
    for h in range(1, hosts + 1):
        for k in range(per_host):
            v = (h * per_host + k) % vpcs + 1
            lines.append(f"  vm-{h}-{k}: {{vpc: vpc{v}, host: host{h}, ip: 10.{v}.0.{next_ip[v]}}}")
            next_ip[v] += 1
    return "\n".join(lines) + "\n"


def scale(repeat: int) -> dict[str, list[dict]]:
    """Issue 14, point 5 (bench/bench_scale.py): 256 VMs `repeat` times, 1,024 VMs once."""
    from bench_scale import SIZES, run_scale, summary
    by_size: dict[str, list[dict]] = {}
    for label, times in (("256", repeat), ("1024", 1)):
        hosts, per_host, vpcs = SIZES[label]
        by_size[label] = [run_scale(hosts, per_host, vpcs, name=f"b14-s{label}-{i}")
                          for i in range(times)]
        say(summary(label, by_size[label]))
    return by_size


def misses(runs: int) -> list[dict]:
    """Issue 14, point 2 (bench/bench_misses.py, with its defaults): its own RESULTS.md
    section is written here, and its figures go in the issue's table."""
    import bench_misses
    args = argparse.Namespace(runs=runs, hosts=4, vms=96, askers=16, timeout=10.0, settle=10.0)
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    done = [bench_misses.one_run(i, args.hosts, args.vms, args.askers, args.timeout, args.settle,
                                 f"b14-m{i}") for i in range(runs)]
    bench_misses.write_section(bench_misses.section(done, args, when))
    say("mapping service under load: " + bench_misses.fmt_range([r["rate"] for r in done])
        + " answered misses/s (its section of RESULTS.md)")
    return done


def anatomy(repeat: int) -> None:
    """Issue 14, point 3: where an on-demand first ping's time goes (first_ping_anatomy)."""
    from first_ping_anatomy import anatomy as measure, lines
    for line in lines(measure(repeat, say=lambda _: None)):
        say(line)


def l2_baseline(count: int = 30) -> None:
    """Two namespaces and one userspace-OVS bridge. Cleanup removes only what this run made:
    the daemons it started (recorded PID and start time), the namespaces it added (by the
    exact names it added) and its own temporary directory; every step is tried, and what
    failed is reported at the end."""
    tag = secrets.token_hex(3)        # not "vpclab-...": vpclab would take it for a lab's
    names = [f"l2peer-{tag}-a", f"l2peer-{tag}-b", f"l2peer-{tag}-sw"]
    directory = Path(tempfile.mkdtemp(prefix="vpclab-bench-ovs-"))
    env = {**os.environ, "OVS_RUNDIR": str(directory), "OVS_DBDIR": str(directory),
           "OVS_LOGDIR": str(directory), "OVS_SYSCONFDIR": str(directory)}
    sw = ["ip", "netns", "exec", names[2]]
    db = f"unix:{directory}/db.sock"
    created: list[str] = []           # namespaces this run added, in order
    daemons: list[Daemon] = []        # daemons this run started, in order

    def sh(*argv: str, timeout: float = 60) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(argv)}` failed (exit {done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()}")

    def daemon(*argv: str, ready: Path) -> None:
        """Start an OVS daemon in the switch's namespace; return once `ready` exists."""
        started = Daemon(argv[0], [*sw, *argv, f"--log-file={directory}/{argv[0]}.log"], env,
                         directory / f"{argv[0]}.out")
        daemons.append(started)
        wait_until(lambda: ready.exists() or not started.ours(), f"{argv[0]} of the fair peer")
        if not started.ours():
            raise RuntimeError(f"{argv[0]} exited at start: {started.log.read_text().strip()}")
    try:
        for ns in names:
            sh("ip", "netns", "add", ns)
            created.append(ns)
        for ns, side, ip in ((names[0], "pa", "10.9.0.1"), (names[1], "pb", "10.9.0.2")):
            sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", side,
               "netns", names[2])
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", names[2], "link", "set", side, "up")
        sh(*sw, "ovsdb-tool", "create", f"{directory}/conf.db",
           "/usr/share/openvswitch/vswitch.ovsschema")
        daemon("ovsdb-server", f"{directory}/conf.db", f"--remote=punix:{directory}/db.sock",
               ready=directory / "db.sock")
        sh(*sw, "ovs-vsctl", f"--db={db}", "--no-wait", "init", "--", "add-br", "br0", "--", "set",
           "bridge", "br0", "datapath_type=netdev", "--", "add-port", "br0", "pa", "--",
           "add-port", "br0", "pb")
        daemon("ovs-vswitchd", db, f"--unixctl={directory}/ovs-vswitchd.ctl", "--disable-system",
               ready=directory / "ovs-vswitchd.ctl")
        # returns once ovs-vswitchd has applied the configuration (the bridge and its ports)
        sh(*sw, "ovs-vsctl", f"--db={db}", "--timeout=30", "set", "Open_vSwitch", ".",
           "external_ids:bench=1")
        a = ["ip", "netns", "exec", names[0], "ping", "-i", "0.05", "-W", "2", "10.9.0.2", "-c"]
        first = parse_rtts(subprocess.run(a + ["1"], capture_output=True, text=True,
                                           timeout=30).stdout)
        steady = parse_rtts(subprocess.run(a + [str(count)], capture_output=True, text=True,
                                           timeout=count * 2 + 30).stdout)[5:]
        if not first or not steady:
            raise RuntimeError(f"the fair peer did not answer: first {first}, steady {steady}")
        say(f"lower bound (ONE userspace-OVS L2 bridge, not a peer): first {first[0]:.3f} ms, "
              f"steady {statistics.median(steady):.3f} ms (median of {len(steady)})")
    finally:
        errors: list[str] = []
        for started in reversed(daemons):       # ovs-vswitchd, then ovsdb-server
            try:
                started.stop()
            except Exception as exc:  # noqa: BLE001 - every step runs; reported below
                errors.append(f"stopping {started.name}: {exc}")
        for ns in reversed(created):
            try:    # what still runs in it is reported, not killed: this run did not record it
                left = processes_in({namespace_id(Path("/run/netns") / ns)} - {None})
                if left:
                    errors.append(f"still running in namespace {ns}: PIDs "
                                  f"{', '.join(str(p.pid) for p in left)}")
                sh("ip", "netns", "delete", ns)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"deleting namespace {ns}: {exc}")
        try:
            shutil.rmtree(directory)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"removing {directory}: {exc}")
        if errors:
            raise RuntimeError("the fair peer's cleanup failed:\n  " + "\n  ".join(errors))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="cold labs per figure (default 3)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of vpclab beside the two-switch peer, and load runs of the "
                             "mapping service (default 3)")
    parser.add_argument("--only", choices=PARTS, help="run only this part (default: all)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench needs root: sudo .venv/bin/python bench/bench_lab.py", file=sys.stderr)
        return 2
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    print(f"vpclab bench on {os.cpu_count()} cores, {started}\n")
    peer, load, sizes = None, None, {}
    for part in [args.only] if args.only else PARTS:
        if part == "peer":
            before = len(PRINTED)
            peer = versus_peer(args.rounds, say)
            del PRINTED[before:]        # RESULTS.md has them in its own section
        elif part == "misses":
            load = misses(args.rounds)
        elif part == "scale":
            sizes = scale(args.repeat)
        else:
            PARTS[part](args.repeat)
    if peer is not None:
        rows = peer_rows(peer[0]) + ([misses_row(load)] if load else []) + scale_rows(sizes)
        extra = ("## Bigger labs (issue 14, point 5)\n\nbench/bench_scale.py's labs in this run "
                 "(256 VMs " + str(args.repeat) + " times, 1,024 once):\n\n"
                 + scale_markdown([r for runs in sizes.values() for r in runs]) + "\n"
                 if sizes else "")
        write_results(*peer, PRINTED, started, table=table_markdown(rows), extra=extra)
        print(f"\nwritten: {Path(__file__).with_name('RESULTS.md')}")
    return 0


PARTS = {   # in the order a full run makes them: the latency figures first, on a machine
    "seed": seed_up_down,                       # not yet warmed by the big labs' load
    "first-ping": lambda repeat: [first_vs_steady(mode, repeat)
                                  for mode in ("on-demand", "preload")],
    "anatomy": anatomy,
    "baseline": lambda repeat: l2_baseline(),
    "peer": None,       # main() runs these three: their figures go in the issue's table,
    "scale": None,      # and the peer's run writes bench/RESULTS.md at the end
    "misses": None,
}


if __name__ == "__main__":
    sys.exit(main())
