"""The mapping service's CPU per miss, without a lab: reproducible where bench_misses is noisy.

    .venv/bin/python bench/handler_bench.py [--misses 2000] [--profile OUT.txt]

The service's state as its __init__ builds it for bench_misses's topology (4 hosts x 96
VMs, on-demand), a stand-in connection per router whose `send` only counts bytes, and
the real Outbox, EventLog (in a temporary directory), FlowEncoder and os-ken message
codec. Each miss is an ARP request for a distinct known target, as the router sends it
(an OpenFlow packet-in: in_port and metadata in the match), parsed by os-ken's
`ofproto_parser.msg` as its receive loop does, then handed to `packet_in`. Reports the
process CPU per miss (parse + handler + sender threads + event log), and with --profile
a cProfile of the parse and handler (top functions by own time).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import struct
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from os_ken.controller import ofp_event  # noqa: E402
from os_ken.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_3_parser  # noqa: E402

from bench.bench_misses import topology  # noqa: E402
from ryu_apps import mapping_service, ofmsg  # noqa: E402
from ryu_apps.mapping_service import MappingService  # noqa: E402
from ryu_apps.outbox import Outbox  # noqa: E402
from vpclab.router.cache import RouterCache  # noqa: E402
from vpclab.router.events import EventLog  # noqa: E402
from vpclab.router.inventory import Inventory  # noqa: E402
from vpclab.router.pipeline import ARP, preload_flows  # noqa: E402
from vpclab.model.validation import load_topology  # noqa: E402


class Datapath:
    """A router's connection as the service uses it; sends are counted, not sent."""
    ofproto, ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser

    def __init__(self, dpid: int):
        self.id, self.xid, self.sent, self.writes = dpid, 0, 0, 0

    def set_xid(self, msg) -> int:
        self.xid += 1
        msg.set_xid(self.xid)
        return self.xid

    def send(self, buf) -> bool:
        self.sent += len(buf)
        self.writes += 1
        return True

    def close(self) -> None:
        pass


def service(tmp: Path) -> MappingService:
    path = tmp / "topology.yaml"
    path.write_text(topology(4, 96))
    svc = MappingService.__new__(MappingService)
    svc.state_dir, svc.inventory = tmp, Inventory.from_topology(load_topology(path))
    svc.event_log, svc.encoder = EventLog(tmp / "events.jsonl"), ofmsg.FlowEncoder()
    svc.lock = threading.RLock()
    svc.datapaths = {dpid: Datapath(dpid) for dpid in svc.inventory.routers()}
    svc.outboxes = {dpid: Outbox(dp, dp.close) for dpid, dp in svc.datapaths.items()}
    svc.cached = defaultdict(lambda: RouterCache(100000))
    svc.counters, svc.router_counters = Counter(), defaultdict(Counter)
    svc.pending, svc.stats_parts = {}, defaultdict(list)
    svc.learner = svc.tunnel = svc.mover = svc.source_check = None
    for dpid, router in svc.inventory.routers().items():     # as router_connected does
        for flow in preload_flows(router, svc.inventory.table(), router.idle_timeout):
            svc.encoder.encode(svc.datapaths[dpid], flow)
    return svc


def arp_request(mac: str, ip: str, target: str) -> bytes:
    me = bytes.fromhex(mac.replace(":", ""))
    return (b"\xff" * 6 + me + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + me
            + bytes(map(int, ip.split("."))) + b"\x00" * 6 + bytes(map(int, target.split("."))))


def packet_in(in_port: int, vni: int, data: bytes, xid: int) -> bytes:
    """An OpenFlow 1.3 packet-in as a router sends it for an ARP miss."""
    match = ofproto_v1_3_parser.OFPMatch(in_port=in_port, metadata=vni)
    buf = bytearray()
    match.serialize(buf, 0)
    body = struct.pack("!IHBBQ", 0xFFFFFFFF, len(data), 1, ARP, 0) + bytes(buf) + b"\x00\x00" + data
    return struct.pack("!BBHI", 4, ofproto_v1_3.OFPT_PACKET_IN, 8 + len(body), xid) + body


def misses(svc: MappingService, count: int) -> list[tuple[Datapath, bytes]]:
    """ARP packet-ins, each for a distinct (router, target) pair, routers interleaved."""
    routers = svc.inventory.routers()
    table = list(svc.inventory.table().in_vpcs({v for r in routers.values() for v in r.vnis}))
    per_router = []
    for dpid, router in sorted(routers.items()):
        items = []
        remote = [m for m in table if m.host != router.host]
        for i, target in enumerate(remote):
            port = router.ports[i % len(router.ports)]
            m = port.mapping
            items.append((svc.datapaths[dpid], packet_in(port.ofport, m.vni, arp_request(
                m.mac, str(m.ip), str(target.ip)), i + 1)))
        per_router.append(items)
    mixed = [x for group in zip(*per_router) for x in group]
    return mixed[:count]


def handle(dp: Datapath, raw: bytes) -> None:
    """What os-ken's receive loop and event loop do with one packet-in."""
    version, msg_type, msg_len, xid = ofproto_parser.header(raw)
    msg = ofproto_parser.msg(dp, version, msg_type, msg_len, xid, bytearray(raw))
    SERVICE.packet_in(ofp_event.ofp_msg_to_ev(msg))


def drained(svc: MappingService) -> None:
    while any(len(box) for box in svc.outboxes.values()):
        time.sleep(0.001)
    flush = getattr(svc.event_log, "flush", None)
    if flush:
        flush()


def main() -> int:
    global SERVICE
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--misses", type=int, default=1000)
    parser.add_argument("--profile", type=Path, help="write cProfile's top functions here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        SERVICE = svc = service(Path(tmp))
        work = misses(svc, args.misses)
        profiler = cProfile.Profile() if args.profile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for dp, raw in work:
            handle(dp, raw)
        if profiler:
            profiler.disable()
        drained(svc)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        writes = sum(dp.writes for dp in svc.datapaths.values())
        lines = sum(1 for _ in open(Path(tmp) / "events.jsonl"))
        print(f"{len(work)} misses: CPU {cpu / len(work) * 1e6:.0f} us per miss, wall "
              f"{wall / len(work) * 1e6:.0f} us per miss ({len(work) / wall:.0f}/s); "
              f"{writes} socket writes; {lines} event lines")
        if profiler:
            args.profile.parent.mkdir(parents=True, exist_ok=True)
            with args.profile.open("w") as out:
                stats = pstats.Stats(profiler, stream=out)
                summary = parts(stats, len(work))
                out.write(f"per miss, cumulative, under cProfile:\n{summary}\n\n")
                print(summary)
                stats.sort_stats("tottime").print_stats(25)
                stats.sort_stats("cumulative").print_stats(40)
            print(f"profile: {args.profile}")
    return 0


SERVICE: MappingService | None = None

# a miss's parts: (file name, function) whose cumulative time cProfile reports
PARTS = {
    "os-ken packet-in parse (ofproto_parser.msg)": [("ofproto_parser.py", "msg")],
    "frame parse (miss_from_packet_in)": [("mapping_service.py", "miss_from_packet_in")],
    "decide (vpclab.router.pipeline, under the lock)": [("mapping_service.py", "_decide")],
    "encode flow-mods (FlowEncoder)": [("mapping_service.py", "flow_messages")],
    "ARP answer built (arp_reply + packet-out)": [("mapping_service.py", "_arp_answer")],
    "packet-out via os-ken (serialized)": [("ofmsg.py", "serialized")],
    "outbox.put": [("outbox.py", "put")],
    "event log, in the handler": [("events.py", "write"), ("events.py", "write_soon")],
    "whole handler (packet_in)": [("mapping_service.py", "packet_in")],
}


def parts(stats: pstats.Stats, misses: int) -> str:
    """Each part's cumulative time per miss (under cProfile: inflated, compare ratios)."""
    lines = []
    for label, marks in PARTS.items():
        total = sum(v[3] for (path, _, func), v in stats.stats.items()
                    if any(path.endswith(f) and func == fn for f, fn in marks))
        lines.append(f"{total / misses * 1e6:8.1f} us  {label}")
    return "\n".join(lines)

if __name__ == "__main__":
    sys.exit(main())
