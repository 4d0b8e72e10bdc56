"""Issue 14's table, filled by one run of bench_lab.py: each row's figure before the work
(as the issue gave it), this run's, the target and whether it is met.

The parts measure (versus_peer: the peer rows; bench_misses: misses/s; bench_scale: the
bigger labs); this module only words them, so a row reads the same in RESULTS.md and in
the closing note.
"""
from __future__ import annotations

import statistics

BEFORE = {"steady": "1.5-1.6x", "tcp": "0.83x", "od-first": "5.3x", "pre-first": "3.1x (one run 11 ms)",
          "arp": "~1.9 ms on-demand", "misses": "~340-675/s (estimated from handling time)",
          "256": "11.9 s (nodes and links 8.8 s)", "1024": "not tried"}


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _range(values: list, digits: int, unit: str = "") -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    return (f"{statistics.median(values):.{digits}f}{unit} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def _met(value: float | None, ok) -> str:
    return "n/a" if value is None else ("yes" if ok(value) else "no")


def peer_rows(rounds: list[dict]) -> list[tuple[str, str, str, str, str]]:
    ratio = lambda s, k: [r["ratios"][s][k] for r in rounds]     # noqa: E731
    col = lambda s, k: [r[s][k] for r in rounds]                  # noqa: E731
    steady = {m: _median(ratio(m, "steady/peer")) for m in ("on-demand", "preload")}
    tcp = {m: _median(ratio(m, "tcp/peer")) for m in ("on-demand", "preload")}
    od, pre = _median(ratio("on-demand", "first/steady")), _median(ratio("preload", "first/steady"))
    arp_od, arp_pre = _median(col("on-demand", "arp")), _median(col("preload", "arp"))
    both = lambda f, d: " / ".join(f"{m} {_range(ratio(m, f), d, 'x')}"   # noqa: E731
                                   for m in ("on-demand", "preload"))
    return [
        ("steady RTT across hosts / two-switch peer", BEFORE["steady"], both("steady/peer", 2),
         "<= 1.3x", _met(max(steady.values(), default=None), lambda v: v <= 1.3)),
        ("TCP throughput / two-switch peer", BEFORE["tcp"], both("tcp/peer", 2), ">= 0.9x",
         _met(min(tcp.values(), default=None), lambda v: v >= 0.9)),
        ("on-demand first ping / steady RTT", BEFORE["od-first"],
         _range(ratio("on-demand", "first/steady"), 1, "x"), "<= 3x", _met(od, lambda v: v <= 3)),
        ("preload first ping / steady RTT", BEFORE["pre-first"],
         _range(ratio("preload", "first/steady"), 1, "x"), "<= 1.5x", _met(pre, lambda v: v <= 1.5)),
        ("ARP answer at the asking VM (VM-side capture)", BEFORE["arp"],
         f"preload {_range(col('preload', 'arp'), 2, ' ms')} / on-demand "
         f"{_range(col('on-demand', 'arp'), 2, ' ms')}", "<= 0.5 ms preload, <= 1.2 ms on-demand",
         "preload " + _met(arp_pre, lambda v: v <= 0.5) + ", on-demand "
         + _met(arp_od, lambda v: v <= 1.2)),
    ]


def misses_row(runs: list[dict]) -> tuple[str, str, str, str, str]:
    rates = [r["rate"] for r in runs]
    per_miss = [r["service_us_per_miss"] for r in runs if r.get("service_us_per_miss")]
    now = f"{_range(rates, 0, '/s')}, service CPU {_range(per_miss, 0, ' us')} per miss"
    return ("mapping-service misses answered per second, end to end", BEFORE["misses"], now,
            ">= 5,000/s", _met(_median(rates), lambda v: v >= 5000))


def scale_rows(by_size: dict[str, list[dict]]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for label, figure, target, ok in (
            ("256", "256 VMs / 16 hosts / 8 VPCs `up`", "<= 6 s", lambda up, mem: up <= 6),
            ("1024", "1,024 VMs / 32 hosts / 16 VPCs `up` and memory", "<= 30 s, < 4 GB",
             lambda up, mem: up <= 30 and mem < 4 * 2 ** 30)):
        runs = [r for r in by_size.get(label, []) if "error" not in r]
        if not runs:
            failed = by_size.get(label)
            rows.append((figure, BEFORE[label], failed[0]["error"] if failed else "not run",
                         target, "no" if failed else "n/a"))
            continue
        ups = [r["up"] for r in runs]
        nodes = [r["phases"].get("nodes and links") for r in runs]
        pss = max(r["memory"]["total_pss"] for r in runs)
        now = (f"{_range(ups, 2, ' s')} (nodes and links {_range(nodes, 2, ' s')}); lab "
               f"processes {pss / 2 ** 20:,.0f} MiB PSS")
        rows.append((figure, BEFORE[label], now, target,
                     "yes" if ok(statistics.median(ups), pss) else "no"))
    return rows


def markdown(rows: list[tuple[str, str, str, str, str]]) -> str:
    lines = ["| figure | before (issue 14) | this run: median (min-max) | target | met |",
             "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)
