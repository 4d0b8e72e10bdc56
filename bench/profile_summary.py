"""Where the mapping service's time went: a py-spy raw profile, summarised.

`py-spy record --gil --nolineno -f raw` writes one line per distinct stack,
"frame;frame;...;leaf COUNT", sampling only the thread that holds the GIL: in
a Python process that is (nearly) its CPU. The summary gives, as shares of
all samples, the inclusive time of the parts a miss goes through (a stack
counts once per part even if the part recurs in it) and the top leaf
functions (self time). Used by bench_misses.py --py-spy; also runnable alone:

    python bench/profile_summary.py PROFILE.txt
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# label -> substrings of a frame ("function (file)") that mark the part
PARTS: dict[str, tuple[str, ...]] = {
    "os-ken receive loop (all below it)": ("_recv_loop (",),
    "  OpenFlow parse (ofproto_parser.msg)": ("msg (os_ken/ofproto/ofproto_parser.py)",),
    "  event dispatch to the app queue": ("send_event_to_observers (",),
    "app event loop (os-ken, all below it)": ("_event_loop (",),
    "  packet_in handler": ("packet_in (ryu_apps/mapping_service.py)",),
    "    parse the frame (miss_from_packet_in)": ("miss_from_packet_in (",),
    "    decide (vpclab.router.pipeline)": ("_decide (",),
    "    encode flow-mods": ("flow_messages (",),
    "    packet-out build+serialize": ("serialized (ryu_apps/ofmsg.py)", "arp_reply_message ("),
    "    outbox.put": ("put (ryu_apps/outbox.py)",),
    "    event log write": ("write (vpclab/router/events.py)",),
    "event log writer thread": ("_drain (vpclab/router/events.py)",),
    "outbox sender threads": ("_run (ryu_apps/outbox.py)",),
    "os-ken send loops": ("_send_loop (",),
    "other": (),
}


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def summarize(path: Path, top: int = 12) -> dict:
    """{"samples": N, "parts": {label: share}, "leaves": [(function, share)]}."""
    stacks = parse(path)
    total = sum(n for _, n in stacks) or 1
    parts: Counter = Counter()
    leaves: Counter = Counter()
    for frames, n in stacks:
        matched = False
        for label, marks in PARTS.items():
            if marks and any(m in f for f in frames for m in marks):
                parts[label] += n
                matched = matched or not label.startswith(" ")
        if not matched:
            parts["other"] += n
        leaves[frames[-1]] += n
    return {"samples": total,
            "parts": {label: parts[label] / total for label in PARTS},
            "leaves": [(f, n / total) for f, n in leaves.most_common(top)]}


def text(summary: dict) -> str:
    lines = [f"samples (GIL held): {summary['samples']}", "", "inclusive share:"]
    lines += [f"  {share * 100:5.1f}%  {label}" for label, share in summary["parts"].items()]
    lines += ["", "top leaf functions (self):"]
    lines += [f"  {share * 100:5.1f}%  {f}" for f, share in summary["leaves"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(text(summarize(Path(sys.argv[1]))))
