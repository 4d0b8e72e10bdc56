"""A tiny in-memory OpenFlow 1.3 table walker for the pipeline's `Flow` values.

It implements just what the pipeline uses (exact and masked matches, goto,
write_metadata, set/move (whole fields or bit ranges)/output/controller) so unit
tests can push a packet through a router's flows and see its fate, as FAUCET's
fakeoftable does. `tunnel` carries a packet from one router to the next.
"""
from __future__ import annotations

from ipaddress import IPv4Address

from vpclab.router.pipeline import Flow
from vpclab.model.plan import TUNNEL_PORT


def _mac(value: str) -> int:
    return int(value.replace(":", ""), 16)


def _matches(match: dict, packet: dict) -> bool:
    for field, want in match.items():
        have = packet.get(field)
        if have is None:
            return False
        if isinstance(want, tuple):          # (value, mask) on a MAC, an IPv4 address or an integer
            value, mask = want
            if isinstance(value, str) and "." in value:
                have, value, mask = (int(IPv4Address(v)) for v in (have, value, mask))
            elif isinstance(value, str):
                have, value, mask = _mac(have), _mac(value), _mac(mask)
            if have & mask != value & mask:
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
                packet[action[2]] = _move(packet, *action[1:])
            elif kind == "output":
                results.append(("output", action[1], dict(packet)))
            elif kind == "controller":
                results.append(("controller", table, dict(packet)))
        if flow.metadata is not None:
            packet["metadata"] = flow.metadata
        if flow.goto is None:
            return results
        table = flow.goto


def _move(packet: dict, src: str, dst: str, bits: int, src_ofs: int = 0, dst_ofs: int | None = None):
    if dst_ofs is None:                      # a whole field (MAC, IP); a register holds a number
        value = packet[src]
        return int(IPv4Address(value)) if dst.startswith("reg") and isinstance(value, str) else value
    value = (packet.get(src, 0) >> src_ofs) & ((1 << bits) - 1)     # absent reads as 0, as in OVS
    keep = packet.get(dst, 0) & ~(((1 << bits) - 1) << dst_ofs)
    return keep | (value << dst_ofs)


TUNNEL_FIELDS = ("tunnel_id", "tun_metadata0")


def tunnel(sent: dict, outer_src: str) -> dict:
    """What the receiving router sees of a packet its peer output to the tunnel: the inner
    frame, the VNI, the Geneve option if any, and the outer source; never registers."""
    inner = {k: v for k, v in sent.items()
             if not k.startswith(("reg", "tun_", "metadata")) and k != "tunnel_id"}
    carried = {k: sent[k] for k in TUNNEL_FIELDS if k in sent}
    return {**inner, **carried, "in_port": TUNNEL_PORT, "tun_ipv4_src": outer_src}
