"""A tiny in-memory OpenFlow 1.3 table walker for the pipeline's `Flow` values.

It implements just what the pipeline uses (exact and masked matches, goto,
write_metadata, set/move/output/controller) so unit tests can push a packet
through a router's flows and see its fate, as FAUCET's fakeoftable does.
"""
from __future__ import annotations

from vpclab.pipeline import Flow


def _mac(value: str) -> int:
    return int(value.replace(":", ""), 16)


def _matches(match: dict, packet: dict) -> bool:
    for field, want in match.items():
        have = packet.get(field)
        if have is None:
            return False
        if isinstance(want, tuple):          # (value, mask) on a MAC
            value, mask = map(_mac, want)
            if _mac(have) & mask != value & mask:
                return False
        elif have != want:
            return False
    return True


def walk(flows: list[Flow], packet: dict) -> list[tuple]:
    """Run `packet` from table 0; return what left: ("output", port, pkt) or ("controller", table, pkt)."""
    packet = dict(packet)
    results: list[tuple] = []
    table = 0
    while True:
        hits = [f for f in flows if f.table == table and _matches(f.match, packet)]
        if not hits:
            return results                   # table miss: drop
        flow = max(hits, key=lambda f: f.priority)
        assert [f.priority for f in hits].count(flow.priority) == 1, f"ambiguous: {hits}"
        for action in flow.actions:
            kind = action[0]
            if kind == "set":
                packet[action[1]] = action[2]
            elif kind == "move":
                packet[action[2]] = packet[action[1]]
            elif kind == "output":
                results.append(("output", action[1], dict(packet)))
            elif kind == "controller":
                results.append(("controller", table, dict(packet)))
        if flow.metadata is not None:
            packet["metadata"] = flow.metadata
        if flow.goto is None:
            return results
        table = flow.goto
