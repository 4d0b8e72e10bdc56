"""The receive-side check (AWS's), decided by the mapping service when a packet from the
tunnel misses CHECK (table 25): does its inner source live behind its outer source
host? With the Geneve option, the claimed source is the ENI the option names, and a
packet without the option is dropped.

A verified source gets its whole entry cached (entries.entry_flows: its next packets
pass on the router, by entries.check_flow) and the packet goes straight to its local
port; a failed claim is dropped, remembered briefly below real entries and counted
(COOKIE_CHECK_FAILED). decide_verdict carries out a verdict reached elsewhere (a
learner's check_source, classroom exercise 06) the same way.
"""
from __future__ import annotations

from vpclab.router.mapping import Mapping, MappingTable
from vpclab.router.pipeline.entries import entry_flows
from vpclab.router.pipeline.tables import (
    CHECK, ETH_IP, PRIO_NEGATIVE, SOURCE_ENI_REG, Decision, Flow, LocalPort, Miss, Router, check_failed_cookie,
)
from vpclab.model.topology import NEGATIVE_TTL, ROUTER_MAC


def decide_check(router: Router, miss: Miss, table: MappingTable) -> Decision:
    """Receive-side check: does the inner source live behind the outer source host?
    With the Geneve option, the claimed source is the ENI it names, and the option
    is required: a packet without it is dropped.

    A packet that passes is delivered straight to its local port (a resubmit would
    lose its tunnel metadata); one that fails is dropped, remembered briefly, counted.
    """
    if router.eni_option and miss.source_key is None:
        return Decision([], False, None, "receive check failed: no ENI option in the Geneve header",
                        refused=True)
    source = _source_by_eni(miss, table) if router.eni_option else _source_by_address(miss, table)
    if source is None or source.host_ip != miss.tun_src or source.host == router.host:
        return _check_failed(miss)
    # the whole entry: this router is about to answer the VM's ARP for it and forward its reply
    local = _local_destination(router, miss)
    return Decision(entry_flows(router, source, router.idle_timeout), False, source,
                    "source verified", local.ofport if local else None)


def decide_verdict(router: Router, miss: Miss, table: MappingTable, accepted: bool) -> Decision:
    """A receive check decided elsewhere (a learner's check_source, classroom exercise 06),
    carried out as decide_check would: accepted, the packet goes to its local VM and, if the
    claim is true, the source's entry is cached (its next packets pass on the router);
    refused, it is dropped and the claim remembered briefly."""
    if not accepted:
        return _check_failed(miss)
    source = table.lookup(miss.vni, miss.target)
    true = source is not None and source.host_ip == miss.tun_src and source.host != router.host
    local = _local_destination(router, miss)
    flows = entry_flows(router, source, router.idle_timeout) if true else []
    return Decision(flows, False, source, "source accepted", local.ofport if local else None)


def _source_by_eni(miss: Miss, table: MappingTable) -> Mapping | None:
    """The ENI the option names, if it is in this VPC and (unless an appliance) owns the
    inner source IP."""
    source = table.by_eni_key(miss.source_key)
    if source is None or source.vni != miss.vni or \
            (source.source_dest_check and source.ip != miss.target):
        return None
    return source


def _source_by_address(miss: Miss, table: MappingTable) -> Mapping | None:
    """VXLAN: the ENI that owns the inner source IP, or an appliance by its MAC. What an
    appliance forwarded through the VPC router carries the router's MAC: VXLAN has no
    room for the ENI, so an appliance of the VPC on the outer source host vouches."""
    source = table.lookup(miss.vni, miss.target)
    if source is None or source.host_ip != miss.tun_src:
        if miss.eth_src == ROUTER_MAC:
            return next((m for m in table if m.vni == miss.vni and not m.source_dest_check
                         and m.host_ip == miss.tun_src), source)
        source = table.appliance(miss.vni, miss.eth_src) or source    # a NAT speaking for others
    return source


def _local_destination(router: Router, miss: Miss) -> LocalPort | None:
    if miss.destination_key is not None:
        return next((p for p in router.ports
                     if p.mapping.vni == miss.vni and p.mapping.key == miss.destination_key), None)
    return next((p for p in router.ports if p.mapping.vni == miss.vni and p.mapping.mac == miss.eth_dst
                 and (p.mapping.ip == miss.destination or not p.mapping.source_dest_check)), None)


def _check_failed(miss: Miss) -> Decision:
    """Drop and remember the claim, below real entries: if the claim becomes true (a VM
    moved there), its entry wins at once; a forged ENI key never shadows the real one."""
    cookie = check_failed_cookie(miss.vni, miss.target)
    match = {"metadata": miss.vni, "eth_type": ETH_IP, "ipv4_src": str(miss.target),
             "tun_ipv4_src": str(miss.tun_src)}
    claim = f"{miss.target}"
    if miss.source_key is not None:
        match[SOURCE_ENI_REG] = miss.source_key
        claim += f" as ENI key {miss.source_key}"
    drop = Flow(CHECK, PRIO_NEGATIVE, match, cookie=cookie, hard_timeout=NEGATIVE_TTL)
    return Decision([drop], False, None, f"receive check failed: {claim} does not live behind {miss.tun_src}",
                    refused=True)
