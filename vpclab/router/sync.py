"""Bringing virtual routers in line with the inventory, as plain decisions.

Three moments: a change (old inventory -> new), a (re)connection (what the
router holds -> what it should hold), and the on-demand cache (which cached
entries a change makes stale). Each returns `RouterOps`; the os-ken app only
sends them, then a barrier, so a change is reported done when every affected
router has confirmed it (OVN's nb_cfg/hv_cfg idea).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from vpclab.router.mapping import Mapping, MappingTable
from vpclab.router.pipeline import (
    COOKIE_CHECK_FAILED, COOKIE_KIND_MASK, COOKIE_MAPPING, COOKIE_NEGATIVE, COOKIE_ROUTE,
    OFPP_CONTROLLER, Flow, Router, check_failed_cookie, entry_flows, negative_cookie, preload_flows,
    router_flows,
)
from vpclab.router.pipeline.route import table_flows

FlowKey = tuple   # (table, priority, frozenset(match items)): what OpenFlow calls a flow's identity
Instructions = frozenset   # what a flow does: {("meter", id), ("actions", (...)), ("goto", t), ...}


@dataclass(frozen=True)
class InstalledFlow:
    """A flow as a router reports it (flow statistics): its identity, and what it does."""

    table: int
    priority: int
    cookie: int
    match: dict[str, Any]
    instructions: Instructions = frozenset()


def canonical_action(action: tuple) -> tuple:
    """One action in the form both a `Flow` and a router's report reduce to."""
    kind = action[0]
    if kind == "controller":
        return ("output", OFPP_CONTROLLER)
    if kind == "move" and len(action) == 4:
        return (*action, 0, 0)
    if kind == "set":
        value = action[2]
        return ("set", action[1], value.lower() if isinstance(value, str) else value)
    return tuple(action)


def instructions_of(flow: Flow) -> Instructions:
    """What a `Flow` does, comparable with what a router says an installed flow does."""
    parts = set()
    if flow.meter is not None:
        parts.add(("meter", flow.meter))
    if flow.actions:
        parts.add(("actions", tuple(canonical_action(a) for a in flow.actions)))
    if flow.metadata is not None:
        parts.add(("metadata", flow.metadata))
    if flow.goto is not None:
        parts.add(("goto", flow.goto))
    return frozenset(parts)


@dataclass
class RouterOps:
    add: list[Flow] = field(default_factory=list)              # OFPFC_ADD (overwrites in place)
    delete: list[FlowKey] = field(default_factory=list)        # OFPFC_DELETE_STRICT
    invalidate: list[int] = field(default_factory=list)        # OFPFC_DELETE by cookie
    forget: list[int] = field(default_factory=list)            # short-lived drops, by cookie
    meters_add: list[int] = field(default_factory=list)        # before the flows that use them
    meters_delete: list[int] = field(default_factory=list)     # after the flows that used them

    def __bool__(self) -> bool:
        return bool(self.add or self.delete or self.invalidate or self.forget or self.meters_add
                    or self.meters_delete)


def key(table: int, priority: int, match: dict) -> FlowKey:
    return (table, priority, frozenset(match.items()))


def flow_key(flow: Flow) -> FlowKey:
    return key(flow.table, flow.priority, flow.match)


def decode_cookie(cookie: int, kind: int = COOKIE_MAPPING) -> tuple[int, IPv4Address] | None:
    if cookie & COOKIE_KIND_MASK != kind:
        return None
    return (cookie >> 32) & 0xFFFFFF, IPv4Address(cookie & 0xFFFFFFFF)


def static_flows(router: Router, table: MappingTable) -> list[Flow]:
    """What a router always holds: its own flows, plus every entry in preload mode."""
    return router_flows(router) + ([] if router.on_demand else preload_flows(router, table))


def change_ops(old: Router, new: Router, old_table: MappingTable, new_table: MappingTable,
               cached: set[int]) -> RouterOps:
    """Operations for one router when the inventory changes.

    New or changed flows are added first (an ADD replaces a flow in place, so
    there is no gap); flows that no longer exist are deleted; cached entries
    whose mapping changed are invalidated (the next packet asks again).
    """
    before = static_flows(old, old_table)
    after = static_flows(new, new_table)
    seen = {repr(f) for f in before}
    keep = {flow_key(f) for f in after}
    ops = RouterOps(add=[f for f in after if repr(f) not in seen],
                    delete=list(dict.fromkeys(flow_key(f) for f in before if flow_key(f) not in keep)))
    ops.invalidate = sorted(c for c in cached if _entry_changed(c, old, new, old_table, new_table))
    # an address that now exists must not stay remembered as unknown
    ops.invalidate += [negative_cookie(m.vni, m.ip) for m in new_table
                       if old_table.lookup(m.vni, m.ip) is None and m.vni in new.vnis]
    # ...nor one remembered as unrouted, when its VPC's routes change
    rerouted = {v.vni for v in new.routing if v != old.routed(v.vni)}
    ops.invalidate += [c for c in sorted(cached) if c & COOKIE_KIND_MASK == COOKIE_NEGATIVE
                       and (c >> 32) & 0xFFFFFF in rerouted and c not in ops.invalidate]
    old_ports, new_ports = {p.ofport for p in old.ports}, {p.ofport for p in new.ports}
    if new.on_demand:
        ops.forget = check_failed_invalidations(new, old_table, new_table)
    if new.metered:             # a port's meter before the flows that name it
        ops.meters_add = sorted(new_ports - old_ports)
    if old.metered:
        ops.meters_delete = sorted(old_ports - new_ports)
    return ops


def route_table_flows(router: Router, cookie: int) -> list[Flow] | None:
    """Every route of the route table a route cookie names, as this router applies it
    (None: no such table on this router)."""
    vni, table_id = (cookie >> 32) & 0xFFFFFF, cookie & 0xFFFFFFFF
    vpc = router.routed(vni)
    table = vpc.table(table_id) if vpc is not None else None
    return table_flows(vni, table) if table is not None else None


def _entry_changed(cookie: int, old: Router, new: Router, old_table: MappingTable,
                   new_table: MappingTable) -> bool:
    if cookie & COOKIE_KIND_MASK == COOKIE_ROUTE:     # a cached route table's answers
        return repr(route_table_flows(old, cookie)) != repr(route_table_flows(new, cookie))
    decoded = decode_cookie(cookie)
    if decoded is None:
        return False
    before, after = old_table.lookup(*decoded), new_table.lookup(*decoded)
    if before is None or after is None:
        return True
    return repr(entry_flows(old, before)) != repr(entry_flows(new, after))


def check_failed_invalidations(router: Router, old_table: MappingTable,
                               new_table: MappingTable) -> list[int]:
    """Receive-check drops (10 s) concern one (VPC, IP): when that mapping changes, the
    drop goes with it, or a VM that moves back to where a drop names it stays dropped."""
    changed = {(m.vni, m.ip) for m in old_table if new_table.lookup(m.vni, m.ip) != m}
    changed |= {(m.vni, m.ip) for m in new_table if old_table.lookup(m.vni, m.ip) != m}
    return sorted(check_failed_cookie(vni, ip) for vni, ip in changed if vni in router.vnis)


def reconcile(router: Router, table: MappingTable,
              installed: list[InstalledFlow]) -> tuple[list[FlowKey], set[int]]:
    """At (re)connection, after the router's static flows were (re)sent: what it holds
    that is stale (to delete) and which cached entries it keeps (their cookies: valid
    mapping entries, and short-lived drops that still hold; all count against the bound).

    A cached entry is judged by what it does as well as by what it matches: after a
    move the forwarding entry keeps its match and changes its tunnel destination. An
    entry with any stale flow is stale as a whole (asked again on its next packet)."""
    desired_keys = {flow_key(f) for f in static_flows(router, table)}
    stale: list[FlowKey] = []
    kept: set[int] = set()
    cached: dict[int, list[InstalledFlow]] = {}
    for flow in installed:
        flow_id = key(flow.table, flow.priority, flow.match)
        if flow_id in desired_keys:
            continue
        if flow.cookie & COOKIE_KIND_MASK in (COOKIE_MAPPING, COOKIE_ROUTE) and router.on_demand:
            cached.setdefault(flow.cookie, []).append(flow)
            continue
        if flow.cookie & COOKIE_KIND_MASK == COOKIE_NEGATIVE and router.on_demand and \
                table.lookup(*decode_cookie(flow.cookie, COOKIE_NEGATIVE)) is None:
            kept.add(flow.cookie)    # still unknown: let it expire on its own
            continue
        if flow.cookie & COOKIE_KIND_MASK == COOKIE_CHECK_FAILED and router.on_demand and \
                not _claim_now_true(table, flow):
            kept.add(flow.cookie)    # a rogue source, remembered briefly: let it expire
            continue
        stale.append(flow_id)
    for cookie, flows in cached.items():
        if all(_still_valid(router, table, f) for f in flows):
            kept.add(cookie)
        else:
            stale += [key(f.table, f.priority, f.match) for f in flows]
    return stale, kept


def _still_valid(router: Router, table: MappingTable, flow: InstalledFlow) -> bool:
    """The flow is one the entry's mapping (or route table) would install today, doing
    the same."""
    if flow.cookie & COOKIE_KIND_MASK == COOKIE_ROUTE:
        routes = route_table_flows(router, flow.cookie) or []
        wanted = {flow_key(f): instructions_of(f) for f in routes}
        return wanted.get(key(flow.table, flow.priority, flow.match)) == flow.instructions
    decoded = decode_cookie(flow.cookie)
    mapping: Mapping | None = table.lookup(*decoded) if decoded else None
    if mapping is None:
        return False
    wanted = {flow_key(f): instructions_of(f) for f in entry_flows(router, mapping)}
    return wanted.get(key(flow.table, flow.priority, flow.match)) == flow.instructions


def _claim_now_true(table: MappingTable, flow: InstalledFlow) -> bool:
    """A receive-check drop whose claimed source now does live behind that host."""
    decoded = decode_cookie(flow.cookie, COOKIE_CHECK_FAILED)
    mapping = table.lookup(*decoded) if decoded else None
    return mapping is not None and str(mapping.host_ip) == flow.match.get("tun_ipv4_src")
