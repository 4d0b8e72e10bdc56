"""A learner's invalidation after a move, in place of the service's own (classroom exercise 05).

The learner writes, Ryu-app style, one function (hook "on_move"):

    def on_move(move, routers):
        # `move`: the VM that moved, from which host to which
        # `routers`: every virtual router, with the entries it caches now
        return [{"router": "host1", "message": "invalidate", "vpc": "ZIGI-VPC1",
                 "ip": "10.0.0.185"},
                {"router": "host1", "message": "barrier"}]

The service changes its table, programs the VM's old and new hosts (its own part,
confirmed by its own barriers; a router that holds nothing of the moved entry gets nothing
of the service's), then sends each router the learner's messages in the learner's order:
"invalidate" deletes that (VPC, IP) entry, whichever tables hold it; "barrier" asks the
router to confirm it has done everything sent before. The move is reported done when
every barrier the learner asked for is answered, and not before: without one, the service
cannot know a router has let go of the old entry. A failed call or a malformed answer
sends nothing (the old entries stay, and the move is still made).
"""
from __future__ import annotations

from dataclasses import dataclass

from ryu_apps.learner_part import BadAnswer, LearnerPart, NoAnswer, ipv4, mapping_argument, short
from vpclab.router.mapping import Mapping, MappingTable
from vpclab.router.pipeline import check_failed_cookie, mapping_cookie
from vpclab.router.sync import decode_cookie

MAX_MESSAGES = 64
MESSAGES = ("invalidate", "barrier")


@dataclass(frozen=True)
class Step:
    router: str
    message: str                        # invalidate | barrier
    cookie: int | None = None           # the entry an invalidate deletes
    entry: str = ""                     # "VPC IP", as the events tell it

    def __str__(self) -> str:
        return f"invalidate {self.entry}" if self.message == "invalidate" else "barrier"


def moved_mappings(old: MappingTable, new: MappingTable) -> list[tuple[Mapping, Mapping]]:
    """(before, after) of every ENI whose host changed."""
    moved = []
    for after in new:
        before = old.lookup(after.vni, after.ip)
        if before is not None and before.eni == after.eni and before.host != after.host:
            moved.append((before, after))
    return moved


def moved_drops(moved: list[tuple[Mapping, Mapping]]) -> set[int]:
    """The receive-check drops of the moved entries (what a router may hold of them beside
    the entry itself): the service forgets them only where they are held, so a router
    that never cached a moved entry gets nothing from the service, only what the learner
    sends it."""
    return {check_failed_cookie(after.vni, after.ip) for _, after in moved}


def move_argument(before: Mapping, after: Mapping) -> dict:
    return {**mapping_argument(after), "from_host": before.host,
            "from_host_ip": str(before.host_ip), "to_host": after.host,
            "to_host_ip": str(after.host_ip)}


def routers_argument(cached: dict[str, list[int]], vpc_names: dict[int, str],
                     connected: set[str]) -> dict:
    """Every router (by host) and the (VPC, IP) entries it caches."""
    out = {}
    for host, cookies in cached.items():
        entries = [decode_cookie(c) for c in cookies]
        out[host] = {"connected": host in connected,
                     "cached": [{"vpc": vpc_names.get(vni, str(vni)), "ip": str(ip)}
                                for vni, ip in sorted(e for e in entries if e)]}
    return out


def parse_steps(result: object, hosts: set[str], vnis: dict[str, int]) -> list[Step]:
    """on_move's answer as the steps to carry out, or BadAnswer saying what is wrong."""
    if result is None:
        return []
    if not isinstance(result, list):
        raise BadAnswer(f"on_move returns a list of messages, not {short(result)}")
    if len(result) > MAX_MESSAGES:
        raise BadAnswer(f"on_move returned {len(result)} messages: at most {MAX_MESSAGES}")
    return [_step(item, hosts, vnis) for item in result]


def _step(item: object, hosts: set[str], vnis: dict[str, int]) -> Step:
    if not isinstance(item, dict) or item.get("message") not in MESSAGES:
        raise BadAnswer(f"each message is {{'router': HOST, 'message': 'invalidate', 'vpc': ..., "
                        f"'ip': ...}} or {{'router': HOST, 'message': 'barrier'}}, not {short(item)}")
    for name in ("router", "vpc", "ip"):
        if name in item and not isinstance(item[name], str):
            raise BadAnswer(f"{name!r} is a string, not {short(item[name])}")
    router = item.get("router")
    if router not in hosts:
        raise BadAnswer(f"there is no router {short(router)}; routers: {', '.join(sorted(hosts))}")
    if item["message"] == "barrier":
        if set(item) != {"router", "message"}:
            raise BadAnswer(f"a barrier names its router only, not {short(item)}")
        return Step(router, "barrier")
    if set(item) != {"router", "message", "vpc", "ip"}:
        raise BadAnswer(f"an invalidate names its router, 'vpc' and 'ip', not {short(item)}")
    if item["vpc"] not in vnis:
        raise BadAnswer(f"there is no VPC {short(item['vpc'])}; VPCs: {', '.join(sorted(vnis))}")
    ip = ipv4(item["ip"])
    return Step(router, "invalidate", mapping_cookie(vnis[item["vpc"]], ip), f"{item['vpc']} {ip}")


class LearnerMove(LearnerPart):
    HOOK = "on_move"

    def steps(self, moved: list[tuple[Mapping, Mapping]], cached: dict[str, list[int]],
              connected: set[str]) -> list[Step] | None:
        """The learner's messages for a change that moved ENIs (one call per moved ENI);
        None if it moved none. Called under the service's lock: a move waits for it."""
        if not moved:
            return None
        topology = self.service.inventory.topology
        vnis = {v.name: v.vni for v in topology.vpcs.values()}
        names = {vni: name for name, vni in vnis.items()}
        hosts = set(cached)
        steps: list[Step] = []
        for before, after in moved:
            where = dict(moved=f"{after.vpc} {after.ip}", from_host=before.host,
                         to_host=after.host)
            try:
                mine, output = self.ask("on_move", (move_argument(before, after),
                                                    routers_argument(cached, names, connected)),
                                        lambda r: parse_steps(r, hosts, vnis), **where)
            except NoAnswer:
                continue
            sent: dict[str, list[str]] = {}
            for step in mine:
                sent.setdefault(step.router, []).append(str(step))
            self.answered("on_move", output, **where, sent=sent)
            steps += mine
        return steps
