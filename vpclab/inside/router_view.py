"""Lab.flows and Lab.trace on a running lab: read a router, run a packet through it.

The explaining is pure (vpclab/inside/explain_flows.py, probe.py, trace_verdict.py); this
module fetches what it needs from the lab, once: the lab's names (one LabView, built
from the runner's records), a router's flows and meters (ovs-ofctl against the host's
own Open vSwitch), the sending VM's own routing decision (`ip route get`, inside the
VM) and OVS's ofproto/trace.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from vpclab.errors import VpclabError
from vpclab.inside.explain_flows import FlowLine, explain_all
from vpclab.inside.flowtext import FlowEntry, Meter, parse_flows, parse_meters
from vpclab.inside.labview import LabView
from vpclab.model.names import check_display_name
from vpclab.inside.probe import (
    Route, check_ip, check_mac, parse_proto, parse_route, tunnel_probe, unsent, unsent_probe, vm_probe,
)
from vpclab.inside.router_trace import parse_trace
from vpclab.inside.trace_result import RouterTrace
from vpclab.inside.trace_verdict import explain_trace, not_sent

if TYPE_CHECKING:
    from vpclab.lab import Lab


def lab_view(lab: "Lab", host: str = "") -> LabView:
    """The lab's names and numbers now, seen from `host`'s router."""
    return LabView.from_records(lab.name, host, lab.topology, lab.nodes())


def router_table(lab: "Lab", host: str) -> tuple[list[FlowEntry], dict[int, Meter]]:
    """`host`'s router as it is now: its flows and its meters."""
    socket = f"unix:{lab._host_dir(host)}/br-int.mgmt"

    def ofctl(*argv: str) -> str:
        done = lab.exec(host, "ovs-ofctl", "-O", "OpenFlow13", *argv, socket, timeout=20)
        if not done.ok:
            raise VpclabError(f"could not read {host}'s router ({argv[0]}): {done.stderr.strip()} "
                              f"(`vpclab status {lab.name}` says whether its ovs-vswitchd runs)")
        return done.stdout
    return parse_flows(ofctl("dump-flows")), parse_meters(ofctl("dump-meters"), ofctl("meter-stats"))


def flows(lab: "Lab", host: str) -> tuple[LabView, list[FlowLine]]:
    """`host`'s router explained flow by flow, with the LabView that named it."""
    check_display_name(host, "host name")
    entries, meters = router_table(lab, host)        # checks that host is a host
    view = lab_view(lab, host)
    return view, explain_all(entries, view, meters)


def _optional_text(value, what: str) -> None:
    if value is not None and not isinstance(value, str):
        raise VpclabError(f"{what} must be a string or None, not {type(value).__name__} ({value!r})")


def route(lab: "Lab", vm: str, to: str) -> Route:
    """What `vm`'s own routes do with `to` (ip route get, inside the VM)."""
    done = lab.exec(vm, "ip", "-o", "-4", "route", "get", to, timeout=10)
    return parse_route(done.ok, done.stdout, done.stderr)


def trace(lab: "Lab", vm: str | None, to: str, *, proto: str = "icmp", src: str | None = None,
          src_mac: str | None = None, from_host: str | None = None) -> RouterTrace:
    """Lab.trace: see its docstring."""
    for value, what in ((vm, "vm"), (src, "src"), (src_mac, "src_mac"), (from_host, "from_host")):
        _optional_text(value, what)
    if not isinstance(to, str) or not to:
        raise VpclabError("say where the packet goes: to=an IP or a VM name, e.g. to='10.0.0.185'")
    if not isinstance(proto, str):
        raise VpclabError(f"proto must be a string such as 'icmp' or 'tcp:22', not {proto!r}")
    for name, what in ((vm, "VM name"), (from_host, "host name")):
        if name is not None:
            check_display_name(name, what)
    parse_proto(proto)
    src = check_ip(src, "--src") if src else None
    src_mac = check_mac(src_mac) if src_mac else None
    view = lab_view(lab)
    to_vm = to if view.vm(to) else None
    to = view.vm(to).ip if to_vm else check_ip(to, "--to")
    if vm is not None and view.vm(vm) is None:
        raise VpclabError(f"lab {lab.name!r} has no VM {vm!r}; VMs: {', '.join(e.vm for e in view.enis)}")
    if from_host is not None:
        lab._host(from_host)
        via = route(lab, vm, to).via if vm and not to_vm else None    # the sender's next hop
        probe = tunnel_probe(view, from_host, to, vm, proto, src, src_mac, to_vm, via)
    elif vm is None:
        raise VpclabError("say which VM sends: lab.trace('ZIGI-VM1', to=...), or from_host=...")
    else:
        decided = route(lab, vm, to)
        stop = unsent(view, vm, to, decided)
        if stop:
            return not_sent(lab.name, unsent_probe(view, vm, to, proto, src, src_mac, to_vm), *stop)
        probe = vm_probe(view, vm, to, proto, src, src_mac, decided.via, to_vm,
                         decided.kind in ("broadcast", "multicast"))
    entries, meters = router_table(lab, probe.router)
    done = lab.exec(probe.router, "ovs-appctl", "ofproto/trace", "br-int", probe.flow,
                    timeout=20)                  # exec on a host: OVS_RUNDIR finds its daemon
    if not done.ok:
        raise VpclabError(f"ofproto/trace on {probe.router} failed: {done.stderr.strip() or done.stdout.strip()} "
                          f"(`vpclab status {lab.name}` says whether its ovs-vswitchd runs)")
    return explain_trace(lab.name, probe, parse_trace(done.stdout), view.at(probe.router), entries, meters)
