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
malformed with a message the learner can act on.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from ryu_apps import ofmsg
from vpclab.learner import read_learner
from vpclab.mapping import MappingTable
from vpclab.pipeline import entry_flows
from vpclab.sandbox import LearnerCode, LearnerError, LearnerTimeout

PORTS = ("in_port", "flood")


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


class BadAnswer(ValueError):
    """The learner's function returned something the service cannot carry out."""


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
    return value


def _send(item: object) -> Send:
    if not isinstance(item, dict) or set(item) != {"port", "frame"}:
        raise BadAnswer(f"each 'send' is {{'port': ..., 'frame': bytes}}, not {_short(item)}")
    port, frame = item["port"], item["frame"]
    if not (isinstance(port, int) and port > 0 or port in PORTS):
        raise BadAnswer(f"a port is a port number, 'in_port' or 'flood', not {port!r}")
    if not isinstance(frame, bytes) or len(frame) < 14:
        raise BadAnswer("a frame is the bytes of an Ethernet frame (e.g. "
                        "packet.Packet().serialize() then bytes(pkt.data))")
    return Send(port, frame)


def _cache(item: object, hosts: set[str], table: MappingTable) -> Cache:
    if not isinstance(item, dict) or set(item) != {"router", "vpc", "ip"}:
        raise BadAnswer(f"each 'cache' is {{'router': host, 'vpc': name, 'ip': str}}, "
                        f"not {_short(item)}")
    if item["router"] not in hosts:
        raise BadAnswer(f"there is no router {item['router']!r}; routers: {', '.join(sorted(hosts))}")
    try:
        ip = IPv4Address(item["ip"])
    except ValueError:
        raise BadAnswer(f"{item['ip']!r} is not an IPv4 address") from None
    if not any(m.vpc == item["vpc"] and m.ip == ip for m in table):
        raise BadAnswer(f"the mapping service has no ({item['vpc']}, {ip}) to cache")
    return Cache(item["router"], item["vpc"], ip)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


class LearnerHook:
    """The learner's answer_arp wired into the mapping service: asked outside the service's
    lock (it may use its whole time limit), then carried out under it. Every failure is
    an event the exercise's checks show the learner (learner_error), never a crash."""

    def __init__(self, service, code: LearnerCode):
        self.service, self.code = service, code

    @classmethod
    def for_lab(cls, service) -> "LearnerHook | None":
        record = read_learner(service.state_dir)
        if not record or "answer_arp" not in record["hooks"]:
            return None
        hook = record["hooks"]["answer_arp"]
        code = LearnerCode(hook["source"], hook["filename"],
                           user=tuple(record["user"]) if record["user"] else None)
        self = cls(service, code)
        try:
            code.start()            # here, in the thread that lives as long as the service
        except LearnerError as exc:
            self.failed(exc)        # said now; every ARP miss will say it again
        return self

    def failed(self, exc: Exception) -> None:
        self.service.event_log.write(
            "learner_error", kind=getattr(exc, "kind", type(exc).__name__),
            timeout=isinstance(exc, LearnerTimeout), message=str(exc),
            traceback=getattr(exc, "traceback", ""))

    def answer(self, datapath, router, miss, frame: bytes, vpc: str, table: MappingTable) -> None:
        service = self.service
        hosts = {r.host for r in service.inventory.routers().values()}
        try:
            result = self.code.call("answer_arp", miss_argument(router.host, miss.in_port, vpc,
                                                                miss.vni, frame),
                                    mappings_argument(table))
            answer = parse_answer(result, hosts, table)
        except (LearnerError, BadAnswer) as exc:
            self.failed(exc)
            return
        with service.lock:
            service.router_counters[datapath.id]["misses"] += 1
            for send in answer.sends:
                port = {"in_port": miss.in_port, "flood": ofmsg.ofp.OFPP_FLOOD}.get(send.port, send.port)
                service.outboxes[datapath.id].put([ofmsg.serialized(
                    datapath, ofmsg.packet_to_port(datapath, port, send.frame))])
            for cache in answer.caches:
                self._cache(cache)
        service.event_log.write("learner_answer", host=router.host, target=str(miss.target),
                                sent=[str(s.port) for s in answer.sends],
                                cached=[f"{c.router}:{c.vpc}:{c.ip}" for c in answer.caches])

    def _cache(self, cache: Cache) -> None:
        """Cache one (VPC, IP) entry on the router the learner named (under the lock)."""
        service = self.service
        dpid = next((d for d, r in service.inventory.routers().items() if r.host == cache.router), None)
        datapath = service.datapaths.get(dpid)
        vni = next(v.vni for v in service.inventory.topology.vpcs.values() if v.name == cache.vpc)
        mapping = service.inventory.table().lookup(vni, cache.ip)
        if datapath is None or mapping is None or dpid not in service.outboxes:
            return
        router = service.inventory.routers()[dpid]
        flows = entry_flows(router, mapping, router.idle_timeout)
        service.outboxes[dpid].put([service.encoder.message(datapath, flow) for flow in flows])
        for cookie in {f.cookie for f in flows}:
            service.cached[dpid].add(cookie, {f.table for f in flows if f.cookie == cookie})
