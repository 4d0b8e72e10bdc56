"""vpclab benchmarks, printed in one run (needs root):

    .venv/bin/python bench/bench_lab.py [--repeat N]

1. seed `up` to ready and `down`;
2. first-ping RTT (cold caches) vs steady RTT, in each mapping mode;
3. `up`/`down` of a generated 8 hosts x 8 VMs topology in 4 VPCs;
4. a fair peer measured in the same run: two namespaces joined by one plain
   userspace-OVS L2 bridge (NORMAL), the lab a teacher would otherwise build.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import vpclab  # noqa: E402
from vpclab.wait import wait_until  # noqa: E402

SEED = REPO / "topologies" / "seed.yaml"


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
    print(f"seed up to ready:  median {statistics.median(ups):.2f} s  (runs: "
          f"{', '.join(f'{u:.2f}' for u in ups)}; target < 3 s)")
    print(f"seed down:         median {statistics.median(downs):.2f} s")


def first_vs_steady(mode: str, repeat: int) -> None:
    firsts, steady = [], []
    for i in range(repeat):
        with vpclab.Lab(SEED, name=f"bench-{mode[:3]}{i}", mode=mode) as lab:
            firsts += rtts(lab, "ZIGI-VM1", "10.0.0.185", 1)
            steady += rtts(lab, "ZIGI-VM1", "10.0.0.185", 30)[5:]
    first, steady_ms = statistics.median(firsts), statistics.median(steady)
    print(f"{mode:<10} first ping {first:.3f} ms (median of {len(firsts)} cold labs), "
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


def scale() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.yaml"
        path.write_text(generated_topology())
        phases: list[str] = []
        lab, up = timed(lambda: vpclab.Lab(path).start(
            on_phase=lambda n, s: phases.append(f"{n} {s:.2f}")))
        try:
            a, b = "vm-1-0", "vm-5-0"   # same VPC, different hosts
            ip = str(lab.topology.vms[b].ip)
            assert lab.topology.vms[a].vpc == lab.topology.vms[b].vpc
            first = rtts(lab, a, ip, 1)
        finally:
            _, down = timed(lab.down)
    print(f"8 hosts x 8 VMs, 4 VPCs: up {up:.2f} s ({'; '.join(phases)}), down {down:.2f} s; "
          f"first cross-host ping {first[0] if first else float('nan'):.3f} ms (target up < 15 s)")


def l2_baseline() -> None:
    """Two namespaces and one userspace-OVS bridge, cleaned up by name of what it made."""
    names = ["vpclab-bench-a", "vpclab-bench-b", "vpclab-bench-sw"]
    directory = Path(tempfile.mkdtemp(prefix="vpclab-bench-ovs-"))
    env = {**os.environ, "OVS_RUNDIR": str(directory), "OVS_DBDIR": str(directory),
           "OVS_LOGDIR": str(directory), "OVS_SYSCONFDIR": str(directory)}
    sw = ["ip", "netns", "exec", names[2]]
    db = f"unix:{directory}/db.sock"

    def sh(*argv: str) -> None:
        subprocess.run(argv, check=True, capture_output=True, env=env)
    try:
        for ns in names:
            sh("ip", "netns", "add", ns)
        for ns, side, ip in ((names[0], "pa", "10.9.0.1"), (names[1], "pb", "10.9.0.2")):
            sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", side,
               "netns", names[2])
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", names[2], "link", "set", side, "up")
        sh(*sw, "ovsdb-tool", "create", f"{directory}/conf.db",
           "/usr/share/openvswitch/vswitch.ovsschema")
        sh(*sw, "ovsdb-server", f"{directory}/conf.db", f"--remote=punix:{directory}/db.sock",
           "--pidfile", "--detach", "--log-file")
        sh(*sw, "ovs-vsctl", f"--db={db}", "--no-wait", "init", "--", "add-br", "br0", "--", "set",
           "bridge", "br0", "datapath_type=netdev", "--", "add-port", "br0", "pa", "--",
           "add-port", "br0", "pb")
        sh(*sw, "ovs-vswitchd", db, "--pidfile", "--detach", "--log-file", "--disable-system")
        sh(*sw, "ovs-vsctl", f"--db={db}", "set", "Open_vSwitch", ".", "external_ids:bench=1")
        a = ["ip", "netns", "exec", names[0], "ping", "-i", "0.05", "-W", "2", "10.9.0.2", "-c"]
        first = parse_rtts(subprocess.run(a + ["1"], capture_output=True, text=True).stdout)
        steady = parse_rtts(subprocess.run(a + ["30"], capture_output=True, text=True).stdout)[5:]
        print(f"fair peer (plain userspace-OVS L2 bridge): first {first[0]:.3f} ms, "
              f"steady {statistics.median(steady):.3f} ms")
    finally:
        pids = []
        for daemon in ("ovs-vswitchd", "ovsdb-server"):
            pidfile = directory / f"{daemon}.pid"
            if pidfile.exists():
                pids.append(pidfile.read_text().strip())
                subprocess.run(["kill", pids[-1]], capture_output=True)
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids),
                   "the fair peer's OVS daemons to exit")
        for ns in names:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        subprocess.run(["rm", "-rf", str(directory)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="cold labs per figure (default 3)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench needs root: sudo .venv/bin/python bench/bench_lab.py", file=sys.stderr)
        return 2
    print(f"vpclab bench on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}\n")
    seed_up_down(args.repeat)
    for mode in ("on-demand", "preload"):
        first_vs_steady(mode, args.repeat)
    l2_baseline()
    scale()
    return 0


if __name__ == "__main__":
    sys.exit(main())
