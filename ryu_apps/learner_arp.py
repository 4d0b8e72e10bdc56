"""A learner's answer to an ARP miss, in place of the service's own (classroom exercise 02).

The learner writes, Ryu-app style, one function:

    def answer_arp(miss, mappings):
        ...
        return {"send": [{"port": "in_port", "frame": reply_bytes}],
                "cache": [{"router": miss["router"], "vpc": miss["vpc"], "ip": "10.0.0.185"}]}

`miss` is the packet-in: the asking router (its host), the port it came in on, the VPC
of that port (name and VNI) and the frame (bytes: an ARP request). `mappings` is the
mapping service's whole table, every VPC's. The function returns None (say nothing) or
what to send (a port number, "in_port" or "flood", and a frame) and which routers cache
which (VPC, IP) entry. It runs in vpclab.sandbox as an unprivileged user; this module
turns its answer into plain instructions the service carries out, refusing anything
malformed with a message the learner can act on: a port past OpenFlow's last port (or a
bool), a frame of more than MAX_FRAME bytes, more than MAX_ITEMS sends or caches.

Events (the exercise's checks read them): `learner_called` before each call (so a check
knows a call is under way), then `learner_answer` (what was sent and cached) or
`learner_error` (why nothing was), as every learner part does (ryu_apps/learner_part.py).
No exception of the learner's answer escapes.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from ryu_apps import ofmsg
from ryu_apps.learner_part import BadAnswer, LearnerPart, NoAnswer, ipv4, short as _short
from vpclab.router.mapping import MappingTable
from vpclab.router.pipeline import entry_flows

PORTS = ("in_port", "flood")
MAX_PORT = 0xffffff00        # OFPP_MAX: the last real port number
MAX_FRAME = 9216             # bytes: a jumbo frame, the most any port carries
MAX_ITEMS = 16               # sends, and caches, in one answer


@dataclass(frozen=True)
class Send:
    port: int | str          # an OpenFlow port number, "in_port" or "flood"
    frame: bytes


@dataclass(frozen=True)
class Cache:
    router: str              # the host whose router caches the entry
    vpc: str
    ip: IPv4Address


@dataclass(frozen=True)
class Answer:
    sends: tuple[Send, ...] = ()
    caches: tuple[Cache, ...] = ()


def miss_argument(host: str, in_port: int, vpc: str, vni: int, frame: bytes) -> dict:
    return {"router": host, "in_port": in_port, "vpc": vpc, "vni": vni, "frame": frame}


def mappings_argument(table: MappingTable) -> list[dict]:
    return [{"vpc": m.vpc, "vni": m.vni, "ip": str(m.ip), "mac": m.mac, "eni": m.eni,
             "host": m.host} for m in table]


def parse_answer(result: object, hosts: set[str], table: MappingTable) -> Answer:
    """The learner's return value as instructions, or BadAnswer saying what is wrong."""
    if result is None:
        return Answer()
    if not isinstance(result, dict) or set(result) - {"send", "cache"}:
        raise BadAnswer(f"answer_arp must return None or a dict with 'send' and/or 'cache', "
                        f"not {_short(result)}")
    sends = tuple(_send(item) for item in _list(result.get("send"), "send"))
    caches = tuple(_cache(item, hosts, table) for item in _list(result.get("cache"), "cache"))
    return Answer(sends, caches)


def _list(value: object, key: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadAnswer(f"{key!r} must be a list, not {_short(value)}")
    if len(value) > MAX_ITEMS:
        raise BadAnswer(f"{key!r} has {len(value)} items: at most {MAX_ITEMS} in one answer")
    return value


def _send(item: object) -> Send:
    if not isinstance(item, dict) or set(item) != {"port", "frame"}:
        raise BadAnswer(f"each 'send' is {{'port': ..., 'frame': bytes}}, not {_short(item)}")
    port, frame = item["port"], item["frame"]
    number = isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= MAX_PORT
    if not (number or isinstance(port, str) and port in PORTS):
        raise BadAnswer(f"a port is a port number (1 to {MAX_PORT:#x}), 'in_port' or 'flood', "
                        f"not {_short(port)}")
    if not isinstance(frame, bytes) or len(frame) < 14:
        raise BadAnswer("a frame is the bytes of an Ethernet frame (e.g. "
                        "packet.Packet().serialize() then bytes(pkt.data))")
    if len(frame) > MAX_FRAME:
        raise BadAnswer(f"a frame of {len(frame)} bytes is longer than any port carries "
                        f"(at most {MAX_FRAME})")
    return Send(port, frame)


def _cache(item: object, hosts: set[str], table: MappingTable) -> Cache:
    if not isinstance(item, dict) or set(item) != {"router", "vpc", "ip"}:
        raise BadAnswer(f"each 'cache' is {{'router': host, 'vpc': name, 'ip': str}}, "
                        f"not {_short(item)}")
    for key in ("router", "vpc", "ip"):
        if not isinstance(item[key], str):
            raise BadAnswer(f"a cache's {key!r} is a string, not {_short(item[key])}")
    if item["router"] not in hosts:
        raise BadAnswer(f"there is no router {item['router']!r}; routers: {', '.join(sorted(hosts))}")
    ip = ipv4(item["ip"])
    if not any(m.vpc == item["vpc"] and m.ip == ip for m in table):
        raise BadAnswer(f"the mapping service has no ({item['vpc']}, {ip}) to cache")
    return Cache(item["router"], item["vpc"], ip)


class LearnerHook(LearnerPart):
    """The learner's answer_arp wired into the mapping service: asked outside the service's
    lock (it may use its whole time limit), then carried out under it. Every failure is
    an event the exercise's checks show the learner (learner_error), never a crash."""

    HOOK = "answer_arp"

    def answer(self, datapath, router, miss, frame: bytes, vpc: str, table: MappingTable) -> None:
        service = self.service
        where = dict(host=router.host, target=str(miss.target))
        hosts = {r.host for r in service.inventory.routers().values()}
        try:
            answer, output = self.ask("answer_arp", (
                miss_argument(router.host, miss.in_port, vpc, miss.vni, frame),
                mappings_argument(table)), lambda result: parse_answer(result, hosts, table), **where)
        except NoAnswer:
            return
        try:
            with service.lock:         # every message made before any is sent
                ports = {"in_port": miss.in_port, "flood": ofmsg.ofp.OFPP_FLOOD}
                sends = [ofmsg.serialized(datapath, ofmsg.packet_to_port(
                    datapath, ports.get(s.port, s.port), s.frame)) for s in answer.sends]
                service.router_counters[datapath.id]["misses"] += 1
                if sends:
                    service.outboxes[datapath.id].put(sends)
                for cache in answer.caches:
                    self._cache(cache)
        except Exception as exc:  # noqa: BLE001 - as above
            self.failed(BadAnswer(f"the mapping service could not carry out your answer: "
                                  f"{type(exc).__name__}: {exc}"), output, **where)
            return
        self.answered("answer_arp", output, **where, sent=[str(s.port) for s in answer.sends],
                      cached=[f"{c.router}:{c.vpc}:{c.ip}" for c in answer.caches])

    def _cache(self, cache: Cache) -> None:
        """Cache one (VPC, IP) entry on the router the learner named (under the lock)."""
        service = self.service
        dpid = next((d for d, r in service.inventory.routers().items() if r.host == cache.router), None)
        datapath = service.datapaths.get(dpid)
        vni = next((v.vni for v in service.inventory.topology.vpcs.values() if v.name == cache.vpc), None)
        mapping = service.inventory.table().lookup(vni, cache.ip) if vni is not None else None
        if datapath is None or mapping is None or dpid not in service.outboxes:
            return
        router = service.inventory.routers()[dpid]
        flows = entry_flows(router, mapping, router.idle_timeout)
        service.outboxes[dpid].put(service.flow_messages(datapath, router, flows,
                                                          service.inventory.table()))
        for cookie in {f.cookie for f in flows}:
            service.cached[dpid].add(cookie, {f.table for f in flows if f.cookie == cookie})
