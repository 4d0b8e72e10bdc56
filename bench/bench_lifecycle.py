"""Mapping lifecycle benchmarks, printed in one run (needs root):

    .venv/bin/python bench/bench_lifecycle.py

1. convergence time of one change whose entry is cached on 8 routers;
2. packets lost by a 10/s ping across a migration (several moves);
3. ARP answers per second the mapping service sustains in on-demand mode
   (a burst of requests for 200 known, uncached addresses);
4. the first-ping RTT of innocent VMs while a neighbour on the same router
   ARP-scans its whole /16 VPC, against the same figure when quiet (each a
   median over fresh pairs, so every ping pays both mapping-service lookups).
"""
from __future__ import annotations

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
from vpclab.running import api_client  # noqa: E402
from vpclab.running.wait import wait_until  # noqa: E402

HOSTS = 10
PAIRS = 5


def topology() -> str:
    """VPC a: one pinger on each of host1..8, the target on host9, host10 spare.
    VPC b (a /16): a scanner on host1, innocent VMs beside it on host1 (PAIRS before the
    scan, PAIRS during it), each with its own fresh target on another host."""
    lines = ["name: bench-life", "hosts:"] + [f"  host{h}: {{}}" for h in range(1, HOSTS + 1)]
    lines += ["vpcs:", "  a: {cidr: 10.0.0.0/22}", "  b: {cidr: 10.9.0.0/16}", "vms:"]
    lines += [f"  p{h}: {{vpc: a, host: host{h}, ip: 10.0.0.{10 + h}}}" for h in range(1, 9)]
    lines += ["  target: {vpc: a, host: host9, ip: 10.0.0.100}",
              "  scanner: {vpc: b, host: host1, ip: 10.9.0.10}",
              "  warm1: {vpc: b, host: host6, ip: 10.9.0.15}",
              "  warm2: {vpc: b, host: host7, ip: 10.9.0.16}"]
    for i in range(3 * PAIRS):        # quiet, then during the scan beside it, then on host10
        host = "host10" if i >= 2 * PAIRS else "host1"
        lines += [f"  innocent{i}: {{vpc: b, host: {host}, ip: 10.9.1.{10 + i}}}",
                  f"  peer{i}: {{vpc: b, host: host{2 + i % 8}, ip: 10.9.2.{10 + i}}}"]
    return "\n".join(lines) + "\n"


def first_rtt(lab: vpclab.Lab, vm: str, ip: str) -> float:
    out = lab.exec(vm, "ping", "-c", "1", "-W", "2", ip).stdout
    found = re.search(r"time=([\d.]+) ms", out)
    return float(found.group(1)) if found else float("nan")


def convergence(lab: vpclab.Lab) -> None:
    figures = []
    for host in ("host10", "host9", "host10"):
        for h in range(1, 9):                      # every pinger's router caches the target
            lab.exec(f"p{h}", "ping", "-c", "1", "-W", "1", "10.0.0.100")
        try:
            report, late = lab.move("target", host), ""
        except vpclab.ChangeUnconfirmed as exc:    # a figure still, said as what it is
            report, late = exc.report, f", UNCONFIRMED by {', '.join(exc.report.unconfirmed)}"
        invalidated = sum(r["invalidated"] for r in report.routers.values())
        figures.append((report.converged_ms, invalidated, late))
    print("1. one change cached on 8 routers: converged (all barriers back) in "
          + ", ".join(f"{ms:.1f} ms ({n} routers invalidated{late})" for ms, n, late in figures))


def migration_loss(lab: vpclab.Lab) -> None:
    lost = []
    for host in ("host9", "host10", "host9", "host10", "host9"):
        pinger = lab.popen("p1", "ping", "-i", "0.1", "-c", "30", "-W", "1", "10.0.0.100",
                           stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)    # let the ping run before the move (this is the experiment's timing)
        lab.move("target", host)
        out = pinger.communicate()[0]
        lost.append(30 - int(re.search(r"(\d+) received", out).group(1)))
    print(f"2. 10/s ping across a migration: lost {lost} packets in {len(lost)} moves "
          f"(max {max(lost)}; target <= 2)")


def arp_rate(lab: vpclab.Lab) -> None:
    """200 known, uncached targets asked at once by 8 VMs (25 each: within each port's
    meter burst, so the meters do not hide the service's own speed)."""
    count = 200
    for i in range(count):   # mappings only (no VM behind them): enough for the ARP answer.
        # lab.add_vm would also build and plug in a VM (200 of them); the Lab API has no
        # "mapping only", so this asks the mapping service's own HTTP API directly.
        api_client.call(lab.state, "POST", "/vms", {"name": f"ghost{i}", "vpc": "a",
                                                    "host": "host9", "ip": f"10.0.1.{i + 10}"})
    script = ("import sys\nfrom scapy.all import ARP, Ether, sendp, get_if_hwaddr\n"
              "me, ip, first = get_if_hwaddr('eth0'), sys.argv[1], int(sys.argv[2])\n"
              "sendp([Ether(src=me, dst='ff:ff:ff:ff:ff:ff') / ARP(op=1, hwsrc=me, psrc=ip, "
              "pdst=f'10.0.1.{first + i}') for i in range(25)], iface='eth0', verbose=False)\n")
    senders = [lab.popen(f"p{h}", sys.executable, "-c", script, f"10.0.0.{10 + h}",
                         str(10 + 25 * (h - 1)))
               for h in range(1, 9)]
    for sender in senders:
        sender.wait()

    def answered():
        return [e for e in lab.state.events.read() if e["event"] == "miss"
                and e["target"].startswith("10.0.1.") and e["answer"]]
    try:
        wait_until(lambda: len(answered()) >= count, f"{count} ARP answers")
    except vpclab.VpclabError:
        pass                 # fewer answered in 10 s: the figure says how many
    events = answered()
    elapsed = max(e["t"] + e["handled_us"] / 1e6 for e in events) - min(e["t"] for e in events)
    handled = statistics.mean(e["handled_us"] for e in events)
    print(f"3. on-demand ARP answers: {len(events)} of {count} answered in {elapsed * 1000:.0f} ms "
          f"({len(events) / elapsed:.0f}/s observed, 8 senders starting unevenly); the service spends "
          f"{handled:.0f} us per answer (a lookup, three flows, a packet-out): at most "
          f"{1e6 / handled:.0f} answers/s on one core")


def scan(lab: vpclab.Lab) -> None:
    first_rtt(lab, "warm1", "10.9.0.16")            # the service's very first miss is cold
    quiet = [first_rtt(lab, f"innocent{i}", f"10.9.2.{10 + i}") for i in range(PAIRS)]
    before = lab.stats()
    script = ("from scapy.all import ARP, Ether, sendp, get_if_hwaddr\n"
              "me = get_if_hwaddr('eth0')\n"
              "sendp(Ether(src=me, dst='ff:ff:ff:ff:ff:ff') / ARP(op=1, hwsrc=me, psrc='10.9.0.10', "
              "pdst='10.9.0.0/16'), iface='eth0', verbose=False)\n")
    scanner = lab.popen("scanner", sys.executable, "-c", script,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: _unknown(lab) > before["service"]["unknown"] + 50, "the scan to reach the service",
               timeout=30)                          # under way: its misses reach the service
    under = [first_rtt(lab, f"innocent{i}", f"10.9.2.{10 + i}") for i in range(PAIRS, 2 * PAIRS)]
    elsewhere = [first_rtt(lab, f"innocent{i}", f"10.9.2.{10 + i}") for i in range(2 * PAIRS, 3 * PAIRS)]
    still_scanning = scanner.poll() is None
    scanner.kill()
    scanner.wait()
    after = lab.stats()
    limited = after["routers"]["host1"]["misses_limited"] - before["routers"]["host1"]["misses_limited"]
    q, u, e = statistics.median(quiet), statistics.median(under), statistics.median(elsewhere)
    print(f"4. first ping of an innocent VM while a VM ARP-scans its /16: quiet {q:.2f} ms {_runs(quiet)}; "
          f"during the scan, beside the scanner (same router) {u:.2f} ms {_runs(under)}: {u / q:.1f}x, "
          f"on another router {e:.2f} ms {_runs(elsewhere)}: {e / q:.1f}x (target <= 2x)"
          f"{'' if still_scanning else ' [the scan ended before the pings]'}; "
          f"the service answered {after['service']['unknown'] - before['service']['unknown']} unknown "
          f"lookups, host1's meters dropped {limited} misses")


def _unknown(lab: vpclab.Lab) -> int:
    return lab.stats()["service"]["unknown"]


def _runs(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"


def main() -> int:
    if os.geteuid() != 0:
        print("bench needs root: sudo .venv/bin/python bench/bench_lifecycle.py", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "life.yaml"
        path.write_text(topology())
        lab = vpclab.Lab(path)
    with lab:
        print(f"vpclab lifecycle bench, {HOSTS} hosts, {time.strftime('%Y-%m-%d %H:%M')}\n")
        scan(lab)
        convergence(lab)
        migration_loss(lab)
        arp_rate(lab)
    return 0


if __name__ == "__main__":
    sys.exit(main())
