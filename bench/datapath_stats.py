"""Issue 14, point 4: what the userspace datapaths did during one measurement, read with
OVS's own tools on both hosts of a two-host system (vpclab's seed or the two-switch peer).

`dpif-netdev/pmd-stats-clear` at the start of the window, `dpif-netdev/pmd-stats-show` at its
end: packets received, recirculations (datapath passes per packet: a tunnel's receive side
pops the header and recirculates), megaflow and EMC hits, upcalls (a packet no megaflow
matched: 0 in a steady state means the megaflows stayed installed); and the CPU time both
ovs-vswitchd processes used (/proc/PID/stat), per packet received. A side offers
`appctl(host, *args) -> str` and `vswitchd_pids() -> [pid, pid]`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
COUNTERS = {"packets": "packets received", "recirculations": "packet recirculations",
            "emc": "emc hits", "megaflow": "megaflow hits",
            "upcalls": "miss with success upcall", "failed_upcalls": "miss with failed upcall"}


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def parse_pmd_stats(text: str) -> dict[str, int]:
    """The counters of `dpif-netdev/pmd-stats-show`, summed over its threads."""
    totals = dict.fromkeys(COUNTERS, 0)
    for key, label in COUNTERS.items():
        for value in re.findall(rf"^\s*{re.escape(label)}:\s*(\d+)", text, re.MULTILINE):
            totals[key] += int(value)
    return totals


class DatapathWindow:
    """Counters and CPU of both hosts' datapaths from now until close()."""

    def __init__(self, side):
        self.side = side
        self.pids = side.vswitchd_pids()
        for host in (0, 1):
            side.appctl(host, "dpif-netdev/pmd-stats-clear")
        self.cpu = [cpu_seconds(pid) for pid in self.pids]

    def close(self) -> dict[str, float]:
        cpu = sum(cpu_seconds(pid) - before for pid, before in zip(self.pids, self.cpu))
        totals = dict.fromkeys(COUNTERS, 0)
        for host in (0, 1):
            for key, value in parse_pmd_stats(self.side.appctl(
                    host, "dpif-netdev/pmd-stats-show")).items():
                totals[key] += value
        packets = totals["packets"]
        return {**totals, "cpu_s": cpu,
                "passes": (packets + totals["recirculations"]) / packets if packets else None,
                "cpu_us_per_packet": cpu * 1e6 / packets if packets else None}
