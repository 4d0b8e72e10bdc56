"""A router's flows in the words of the VPC it implements.

Raw OpenFlow hides the design behind numbers: `cookie=0x10003e90a0000b9`,
`reg1=0x2`, `metadata=0x3e9`, `meter:101`. Each flow the pipeline installs has
one shape (vpclab/router/pipeline/ says which); this module recognises the shape and
says what it means with the lab's names:

    ARP      10.0.0.185 in ZIGI-VPC1 is-at 02:93:0e:03:bb:88 (ZIGI-VM2, cached ...)
    FORWARD  to ZIGI-VM2: Geneve vni 1001 eni 1>2 to host2 (192.168.100.2)

A flow of no known shape (added by hand, left by an older program) is shown
as OVS printed it, marked unexplained: never hidden, never guessed at. An
entry that no longer agrees with the lab's records (a VM that moved) says so.
Pure: flows in (vpclab/inside/flowtext.py), a LabView for the names, lines out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vpclab.inside import explain_routes
from vpclab.inside.flowtext import FlowEntry, Meter
from vpclab.inside.labview import Eni, LabView
from vpclab.router.pipeline import (
    ARP, CHECK, CLASSIFY, COOKIE_CHECK_FAILED, COOKIE_MAPPING, COOKIE_NEGATIVE, DELIVER, FORWARD,
    NEXTHOP, PRIO_APPLIANCE, PRIO_DEFAULT, PRIO_DROP_MCAST, PRIO_MISS, ROUTE,
)

STAGES = {CLASSIFY: "CLASSIFY", ARP: "ARP", ROUTE: "ROUTE", NEXTHOP: "NEXTHOP", FORWARD: "FORWARD",
          CHECK: "CHECK", DELIVER: "DELIVER"}
TEXT_WIDTH = 120     # counts line up beside texts up to this long


def stage_name(table: int) -> str:
    return STAGES.get(table, f"TABLE {table}")


@dataclass(frozen=True)
class FlowLine:
    """One flow, explained: `.stage` (CLASSIFY, ARP, FORWARD, CHECK, DELIVER), `.text` (a
    sentence in the lab's names), `.known` (False: a shape vpclab never installs, shown raw),
    `.flow` (the entry as dump-flows reported it) and `.packets` (its packet count)."""

    stage: str
    text: str
    known: bool
    flow: FlowEntry

    @property
    def packets(self) -> int:
        return self.flow.n_packets

    def to_json(self) -> dict[str, Any]:
        f = self.flow
        return {"stage": self.stage, "table": f.table, "priority": f.priority, "cookie": hex(f.cookie),
                "text": self.text, "explained": self.known, "n_packets": f.n_packets,
                "n_bytes": f.n_bytes, "duration": f.duration, "idle_timeout": f.idle_timeout,
                "hard_timeout": f.hard_timeout, "idle_age": f.idle_age, "match": f.match,
                "actions": list(f.actions), "raw": f.raw}

    def __str__(self) -> str:
        return f"{self.stage:<9}{self.text}   {packets(self.packets)}"


def packets(count: int) -> str:
    return f"{count} pkt" if count == 1 else f"{count} pkts"


def seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


# -- the pieces every explanation shares ----------------------------------------------
def _metadata_vni(flow: FlowEntry) -> int | None:
    value = flow.field("metadata") or flow.action_value("write_metadata")
    return int(value.split("/")[0], 0) if value else None


def _vm(eni: Eni | None, fallback: str) -> str:
    return eni.vm if eni else fallback


def _origin(flow: FlowEntry, view: LabView) -> str:
    """Where a mapping entry came from and how long it stays."""
    if flow.idle_timeout:
        idle = (f"idle {flow.idle_age} s of {flow.idle_timeout}" if flow.idle_age is not None
                else f"idle timeout {flow.idle_timeout} s")
        return f"cached {seconds(flow.duration)} ago, {idle}"
    if view.mode == "preload":
        return "preloaded by the mapping service"
    return "from the mapping service, no timeout"


def _remembered(flow: FlowEntry) -> str:
    if flow.hard_timeout:
        left = max(0.0, flow.hard_timeout - flow.duration)
        return f"remembered {flow.hard_timeout} s, {seconds(left)} left"
    return "remembered until removed"


def _meter(flow: FlowEntry, meters: dict[int, Meter]) -> str:
    value = flow.action_value("meter")
    if value is None:
        return ""
    meter = meters.get(int(value))
    if meter is None or meter.rate is None:
        return f", meter {value}"
    dropped = f", {meter.dropped} dropped so far" if meter.dropped else ""
    return f", meter {value}: at most {meter.rate}/s{dropped}"


def _stale(eni: Eni | None, what: str, host_ip: str | None, view: LabView) -> str:
    """'' if the entry agrees with the lab's records; else what changed."""
    if eni is None:
        return f"; STALE: no ENI has {what} now"
    if host_ip is not None and host_ip != eni.host_ip:
        return f"; STALE: {eni.vm} lives on {view.host_label(eni.host_ip)} now"
    return ""


def _is_tunnel_port(flow: FlowEntry, view: LabView) -> bool:
    return flow.number("in_port") == view.tunnel_port


def _asks(flow: FlowEntry) -> bool:
    return "CONTROLLER" in flow.outputs()


# -- one function per stage -----------------------------------------------------------
def _classify(flow: FlowEntry, view: LabView, meters: dict[int, Meter]) -> str | None:
    if flow.priority == PRIO_DEFAULT and not flow.match and flow.is_drop:
        return "anything else: dropped (anti-spoofing, or no VPC here for its VNI)"
    dhcp = explain_routes.service(flow, view, meters, SHARED)
    if dhcp is not None:
        return dhcp
    vni = _metadata_vni(flow)
    if _is_tunnel_port(flow, view) and flow.has("tun_id"):
        tunnel_vni = flow.number("tun_id")
        option = ("; ENI option -> reg0 (source), reg1 (destination)"
                  if any("TUN_METADATA0" in a for a in flow.actions) else "")
        return (f"tunnel vni {tunnel_vni} = {view.vpc_of(tunnel_vni)}"
                f"{option} -> {stage_name(int(flow.action_value('goto_table') or -1))}")
    port = flow.number("in_port")
    if port is None or flow.action_value("goto_table") is None:
        return None
    eni = view.local_port(port)
    who = f"{eni.vm} ({eni.vpc})" if eni else f"no VM of {view.host} (vni {vni})"
    mac = flow.field("dl_src")
    goto = stage_name(int(flow.action_value("goto_table")))
    if flow.has("arp"):
        ip = flow.field("arp_spa")
        return f"port {port} = {who}, anti-spoofing: only {mac} / {ip}; ARP, sender too -> {goto}"
    if flow.has("ip"):
        ip = flow.field("nw_src") or "any source IP (source/destination check off)"
        key = flow.set_fields().get("reg0")
        as_eni = f" as eni {int(key, 0)}" if key else ""
        return f"port {port} = {who}, anti-spoofing: only {mac} / {ip}; IP{as_eni} -> {goto}"
    return None


def _arp(flow: FlowEntry, view: LabView, meters: dict[int, Meter]) -> str | None:
    vni = _metadata_vni(flow)
    gateway = explain_routes.gateway_arp(flow, view, vni)
    if gateway is not None:
        return gateway
    if flow.cookie_kind == COOKIE_MAPPING and "IN_PORT" in flow.outputs():
        ip, mac = flow.field("arp_tpa"), flow.set_fields().get("eth_src")
        eni = view.by_ip(vni, ip)
        stale = _stale(eni, f"{ip} in {view.vpc_of(vni)}", None, view)
        if eni and eni.mac != mac:
            stale = f"; STALE: {eni.vm}'s MAC is {eni.mac} now"
        return f"{ip} in {view.vpc_of(vni)} is-at {mac} ({_vm(eni, '?')}, {_origin(flow, view)}){stale}"
    return _unknown_miss_default(flow, view, meters, f"who-has {flow.field('arp_tpa')}", "ARP request",
                                 "unanswered: nothing floods")


def _forward(flow: FlowEntry, view: LabView, meters: dict[int, Meter]) -> str | None:
    vni = _metadata_vni(flow)
    if flow.priority == PRIO_DROP_MCAST and flow.is_drop and flow.has("dl_dst"):
        return "broadcast and multicast: dropped (nothing floods)"
    if flow.cookie_kind == COOKIE_MAPPING and flow.outputs():
        by_mac = flow.priority == PRIO_APPLIANCE and not flow.has("nw_dst")
        ip = flow.field("nw_dst") or flow.cookie_ip
        eni = view.by_mac(vni, flow.field("dl_dst")) if by_mac else view.by_ip(vni, ip)
        target = (f"appliance {_vm(eni, '?')} by its MAC {flow.field('dl_dst')}, any destination IP"
                  if by_mac else f"{_vm(eni, ip)}")
        return f"to {target}: {_path(flow, view, vni, eni)}; {_origin(flow, view)}"
    return _unknown_miss_default(flow, view, meters, f"to {flow.field('nw_dst')}", "IP",
                                 "no entry: an unknown destination")


def _unknown_miss_default(flow: FlowEntry, view: LabView, meters: dict[int, Meter], unknown: str,
                          what: str, otherwise: str) -> str | None:
    """The three flows ARP and FORWARD share: a remembered unknown, the miss, the default drop."""
    if flow.cookie_kind == COOKIE_NEGATIVE and flow.is_drop:
        return (f"{unknown} in {view.vpc_of(_metadata_vni(flow))}: unknown to the mapping service, "
                f"dropped ({_remembered(flow)})")
    if flow.priority == PRIO_MISS and _asks(flow) and flow.has("in_port"):
        eni = view.local_port(flow.number("in_port"))
        return (f"any other {what} from {_vm(eni, 'port')} (port {flow.field('in_port')}): "
                f"ask the mapping service (a miss{_meter(flow, meters)})")
    if flow.priority == PRIO_DEFAULT and not flow.match and flow.is_drop:
        return f"anything else: dropped ({otherwise})"
    return None


def _path(flow: FlowEntry, view: LabView, vni: int | None, eni: Eni | None) -> str:
    """Where a forwarding entry sends: a local port, or the tunnel with its header."""
    out = flow.outputs()
    written = flow.set_fields()
    if str(view.tunnel_port) in out:
        tun_dst = written.get("tun_dst")
        encap = "Geneve" if "tun_metadata0" in written or view.encap == "geneve" else "VXLAN"
        option = ""
        if "tun_metadata0" in written:
            senders = view.local(vni)
            source = str(senders[0].key) if len(senders) == 1 else "sender"
            option = f" eni {source}>{int(written['tun_metadata0'], 0) & 0xFFFFFFFF}"
        stale = _stale(eni, f"{flow.cookie_ip} in {view.vpc_of(vni)}", tun_dst, view)
        return f"{encap} vni {int(written.get('tun_id', '0'), 0)}{option} to {view.host_label(tun_dst)}{stale}"
    ports = ", ".join(out)
    local = view.local_port(int(out[0])) if out and out[0].isdigit() else None
    stale = "" if local and eni and local.vm == eni.vm else "; STALE: that port is not its own now"
    return f"local port {ports}{stale}"


def _check(flow: FlowEntry, view: LabView, meters: dict[int, Meter]) -> str | None:
    vni = _metadata_vni(flow)
    tun_src = flow.field("tun_src")
    if flow.cookie_kind == COOKIE_MAPPING and flow.action_value("goto_table"):
        key = flow.number("reg0")
        if key is not None:
            eni = view.by_key(key)
            as_ip = f" as {flow.field('nw_src')}" if flow.has("nw_src") else \
                " with any source IP (source/destination check off)"
            who = f"{_vm(eni, '?')} (eni {key}){as_ip}"
        elif flow.has("dl_src") and not flow.has("nw_src"):
            eni = view.by_mac(vni, flow.field("dl_src"))
            who = f"appliance {_vm(eni, '?')} by its MAC {flow.field('dl_src')}, any source IP,"
        else:
            eni = view.by_ip(vni, flow.field("nw_src"))
            who = f"{flow.field('nw_src')} ({_vm(eni, '?')})"
        stale = _stale(eni, f"{flow.cookie_ip} in {view.vpc_of(vni)}", tun_src, view)
        return (f"from {view.host_by_ip(tun_src) or tun_src}: {who} trusted -> DELIVER; "
                f"{_origin(flow, view)}{stale}")
    if flow.cookie_kind == COOKIE_CHECK_FAILED and flow.is_drop and flow.match:
        key = flow.number("reg0")
        claim = f"{flow.field('nw_src')}" + (f" as eni {key}" if key is not None else "")
        return (f"from {view.host_label(tun_src)}: {claim} in {view.vpc_of(vni)} refused by the "
                f"receive check, dropped and counted ({_remembered(flow)})")
    if flow.cookie_kind == COOKIE_CHECK_FAILED and flow.is_drop:
        return "anything else: dropped, counted as a receive-check failure"
    if flow.priority == PRIO_MISS and _asks(flow):
        return ("any other IP from the tunnel: ask the mapping service to verify its source "
                f"(a miss{_meter(flow, meters)})")
    return None


def _deliver(flow: FlowEntry, view: LabView, meters: dict[int, Meter]) -> str | None:
    vni = _metadata_vni(flow)
    if flow.priority == PRIO_DEFAULT and not flow.match and flow.is_drop:
        return "anything else: dropped (no local ENI of that VPC is its destination)"
    out = flow.outputs()
    if len(out) != 1 or not out[0].isdigit():
        return None
    port = int(out[0])
    local = view.local_port(port)
    if flow.has("reg1"):
        key = flow.number("reg1")
        eni = view.by_key(key)
        mismatch = "" if eni and local and eni.vm == local.vm else "; STALE: that port is not its own now"
        return f"eni {key} = {_vm(eni, '?')} ({view.vpc_of(vni)}): to port {port}{mismatch}"
    if flow.has("nw_dst", "dl_dst"):
        eni = view.by_ip(vni, flow.field("nw_dst"))
        return (f"{flow.field('nw_dst')} / {flow.field('dl_dst')} in {view.vpc_of(vni)} = "
                f"{_vm(eni, '?')}: to port {port}")
    if flow.has("dl_dst"):
        eni = view.by_mac(vni, flow.field("dl_dst"))
        return (f"anything for {flow.field('dl_dst')} in {view.vpc_of(vni)} = appliance "
                f"{_vm(eni, '?')}: to port {port}")
    return None


SHARED = {"origin": _origin, "remembered": _remembered, "meter": _meter, "vm": _vm}


def _route(flow: FlowEntry, view: LabView, meters: dict[int, Meter]) -> str | None:
    return explain_routes.route(flow, view, _metadata_vni(flow), meters, SHARED)


def _nexthop(flow: FlowEntry, view: LabView, meters: dict[int, Meter]) -> str | None:
    return explain_routes.nexthop(flow, view, _metadata_vni(flow), meters, SHARED)


EXPLAINERS = {CLASSIFY: _classify, ARP: _arp, ROUTE: _route, NEXTHOP: _nexthop, FORWARD: _forward,
              CHECK: _check, DELIVER: _deliver}


def explain(flow: FlowEntry, view: LabView, meters: dict[int, Meter] | None = None) -> FlowLine:
    """One flow in words; a shape the pipeline never makes is shown raw, marked unexplained."""
    explainer = EXPLAINERS.get(flow.table)
    try:
        text = explainer(flow, view, meters or {}) if explainer else None
    except (ValueError, TypeError, AttributeError):     # a known table, an odd flow: show it raw
        text = None
    if text is None:
        match = ",".join(k if v == "" else f"{k}={v}" for k, v in flow.match.items())
        return FlowLine(stage_name(flow.table), f"(unexplained) priority={flow.priority}"
                        f"{',' + match if match else ''} cookie={flow.cookie:#x} "
                        f"actions={','.join(flow.actions)}", False, flow)
    return FlowLine(stage_name(flow.table), text, True, flow)


def explain_all(flows: list[FlowEntry], view: LabView,
                meters: dict[int, Meter] | None = None) -> list[FlowLine]:
    """Every flow, in pipeline order (table, then priority, highest first)."""
    ordered = sorted(flows, key=lambda f: (f.table, -f.priority))
    return [explain(flow, view, meters) for flow in ordered]


def render(lines: list[FlowLine], view: LabView, raw: bool = False) -> str:
    """The table `vpclab flows` prints: a stage, a sentence and a packet count a line."""
    unexplained = sum(not line.known for line in lines)
    head = (f"{view.host}'s virtual router ({view.host_ip}; {view.encap}, mapping {view.mode}): "
            f"{len(lines)} flows" + (f", {unexplained} unexplained" if unexplained else ""))
    width = min(TEXT_WIDTH, max((len(line.text) for line in lines), default=0))
    out, stage = [head], None
    for line in lines:
        if line.stage != stage:
            out.append("")
            stage = line.stage
        out.append(f"{line.stage:<9}{line.text:<{width}}   {packets(line.packets):>8}".rstrip())
        if raw:
            out.append(f"{'':9}  {line.flow.raw}")
    return "\n".join(out)
