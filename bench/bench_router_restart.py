"""A crashed virtual router coming back, measured (needs root; not CI):

    .venv/bin/python bench/bench_router_restart.py [ROUNDS]

For each mapping mode and encapsulation, one multi-vpc lab; ROUNDS times:
SIGKILL host1's ovs-vswitchd while two 20/s pings run from ZIGI-VM1 (to
ZIGI-VM3 on the same host, and to ZIGI-VM2 on host2). Reports, median and
worst: the time from the kill to the restarted daemon recorded and
configured, and to the first answered ping of each pair. Then the same
for ovsdb-server (pings lost, restart time). Kills are spaced by the
supervisor's STABLE time, so each is a first crash, not a crash loop.
"""
from __future__ import annotations

import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import vpclab  # noqa: E402
# the same crash, pings and outage figure as tests/integration/test_router_restart.py
from tests.integration.labtools import (ACROSS, PING_INTERVAL, SAME_HOST, current,  # noqa: E402
                                        kill, multi_vpc, outage, restarted, resumed)
from vpclab.running import supervisor  # noqa: E402
from vpclab.running.wait import wait_until  # noqa: E402


def restart_seconds(lab: vpclab.Lab, role: str, killed_at: float) -> float:
    done = wait_until(lambda: [e for e in lab.state.progress.read()
                               if e["event"] == "process_restarted"
                               and e["role"] == role and e["t"] > killed_at],
                      f"{role} restarted", timeout=30)
    return done[0]["t"] - killed_at


def one_kill(lab: vpclab.Lab, role: str) -> tuple[float, list[tuple[float, int]]]:
    pings = [lab.running_ping(src, dst, interval=PING_INTERVAL) for src, dst in (SAME_HOST, ACROSS)]
    try:
        wait_until(lambda: all(p.answered_after(0) for p in pings), "both pings answered")
        old = current(lab, role, "host1")
        killed_at = kill(old)
        restarted(lab, old)
        for ping in pings:     # answered again: a request sent 0.5 s (10 requests) after the kill
            wait_until(lambda: resumed(ping, killed_at), "pings to resume", timeout=30)
        return restart_seconds(lab, role, killed_at), [outage(p, killed_at) for p in pings]
    finally:
        for ping in pings:
            ping.stop()


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {max(values):.2f}"


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"{rounds} kills each; seconds after SIGKILL, median / worst\n")
    print(f"{'daemon':13} {'mode':10} {'encap':7} {'restarted':>12} {'same host':>12} "
          f"{'across':>12} {'lost (max)':>10}")
    for mode in ("on-demand", "preload"):
        for encap in ("geneve", "vxlan"):
            name = f"b{uuid.uuid4().hex[:4]}-rr"
            with vpclab.Lab(multi_vpc(encap), name=name, mode=mode) as lab:
                for role in ("ovs-vswitchd", "ovsdb-server"):
                    runs = []
                    for _ in range(rounds):
                        runs.append(one_kill(lab, role))
                        # each kill a first crash, not a crash loop (which backs off)
                        time.sleep(supervisor.STABLE + 1)
                    same = [r[1][0][0] for r in runs]
                    across = [r[1][1][0] for r in runs]
                    lost = max(n for r in runs for _, n in r[1])
                    print(f"{role:13} {mode:10} {encap:7} {summary([r[0] for r in runs]):>12} "
                          f"{summary(same):>12} {summary(across):>12} {lost:>10}", flush=True)


if __name__ == "__main__":
    main()
