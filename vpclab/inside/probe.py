"""The packet a trace sends through a router: what a VM (or a host's tunnel) would send.

ofproto/trace takes a packet as a flow description; this module writes it the way
the sender really would: a VM's packet enters at its own router port, from its own
MAC and IP (unless forged with `src`/`src_mac`), to the MAC the VPC gives the
destination (the router answers ARP with the ENI's MAC). A VM that has no MAC for
the address (none in its VPC has it) cannot send an IP packet at all: it ARPs
first, so that ARP request is what gets traced, and the probe says so.

What the VM's own routes say comes first (`ip route get`, read by `parse_route`):
no route, or an address of its own, and the VM sends nothing at all (`unsent`);
a next hop (an appliance such as a NAT VM) gets the packet's MAC.

A packet from the tunnel carries what the sending router's forwarding entry
writes (vpclab/router/pipeline/): the VPC's VNI, the sending host as outer source,
and with Geneve the ENI option (source key in the high 32 bits, destination key
in the low 32), as `tun_metadata0`. Pure: names from a LabView, text out.
"""
from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from typing import Any

from vpclab.errors import VpclabError
from vpclab.inside.labview import Eni, LabView

PROTOCOLS = "icmp, arp, tcp:PORT or udp:PORT"
BROADCAST = "ff:ff:ff:ff:ff:ff"
SOURCE_PORT = 40000          # the ephemeral port a TCP/UDP probe leaves from


@dataclass(frozen=True)
class Probe:
    """One packet to trace, on one router, described for OVS and for people."""

    router: str                  # the host whose br-int runs it
    flow: str                    # ofproto/trace's flow text
    description: str             # "ZIGI-VM1's ICMP echo request to 10.0.0.185"
    proto: str                   # what is traced: icmp, arp, tcp:80, udp:53
    vni: int
    to: str
    src: str
    src_mac: str
    dst_mac: str
    in_port: int
    sender: str = ""             # the VM that sends (or is claimed to)
    from_host: str | None = None
    tun_src: str | None = None
    eni_option: tuple[int, int] | None = None
    notes: tuple[str, ...] = ()
    to_vm: str = ""              # the VM named as the destination (--to VM-NAME), if one was

    @property
    def from_tunnel(self) -> bool:
        return self.from_host is not None

    @property
    def is_arp(self) -> bool:
        return self.proto == "arp"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["eni_option"] = list(self.eni_option) if self.eni_option else None
        data["notes"] = list(self.notes)
        return data


def parse_proto(text: str) -> tuple[str, int | None]:
    """`icmp`, `arp`, `tcp:80`, `udp:53` -> (protocol, port)."""
    if not isinstance(text, str):
        raise VpclabError(f"{text!r} is not a protocol to trace: give {PROTOCOLS} (e.g. --proto tcp:22)")
    name, _, port = text.lower().partition(":")
    if name in ("icmp", "arp") and not port:
        return name, None
    if name in ("tcp", "udp") and port.isascii() and port.isdigit() and 1 <= int(port) <= 65535:
        return name, int(port)
    raise VpclabError(f"{text!r} is not a protocol to trace: give {PROTOCOLS} (e.g. --proto tcp:22)")


def check_ip(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise VpclabError(f"{what} {value!r} is not an IPv4 address (e.g. 10.0.0.185)")
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise VpclabError(f"{what} {value!r} is not an IPv4 address (e.g. 10.0.0.185)") from None


def check_mac(value: str) -> str:
    if not isinstance(value, str):
        raise VpclabError(f"{value!r} is not a MAC address (e.g. 02:00:5e:ad:58:40)")
    parts = value.lower().split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise VpclabError(f"{value!r} is not a MAC address (e.g. 02:00:5e:ad:58:40)")
    return value.lower()


@dataclass(frozen=True)
class Route:
    """What `ip -o -4 route get ADDRESS` said inside the sending VM: `kind` is unicast,
    local (one of its own addresses), broadcast, multicast or none (no route: the error)."""

    kind: str
    via: str | None = None
    error: str = ""


def parse_route(ok: bool, stdout: str, stderr: str = "") -> Route:
    """`ip -o -4 route get` output (or its failure) -> a Route."""
    if not ok:
        return Route("none", error=(stderr or stdout).strip().removeprefix("RTNETLINK answers: "))
    words = stdout.split()
    kind = words[0] if words and words[0] in ("local", "broadcast", "multicast") else "unicast"
    via = words[words.index("via") + 1] if "via" in words[:-1] else None
    return Route(kind, via)


def unsent(view: LabView, vm: str, to: str, route: Route) -> tuple[str, str] | None:
    """(reason, words) when the VM's routes mean it sends nothing to `to` at all."""
    if route.kind == "none":
        why = f" (ip route get: {route.error})" if route.error else ""
        return "no route", f"{vm} has no route to {to}{why}"
    if route.kind == "local":
        own = view.vm(vm)
        whose = "the VM's own address" if own is None or own.ip == to else f"an address of {vm}'s own"
        return "own address", f"{to} is {whose}: {vm}'s kernel answers it itself, nothing leaves {vm}"
    return None


def _inner(proto: str, port: int | None, src_mac: str, dst_mac: str, src: str, to: str, ttl: int) -> str:
    if proto == "arp":
        return (f"arp,dl_src={src_mac},dl_dst={BROADCAST},arp_op=1,arp_spa={src},arp_tpa={to},"
                f"arp_sha={src_mac},arp_tha=00:00:00:00:00:00")
    ip = f"dl_src={src_mac},dl_dst={dst_mac},nw_src={src},nw_dst={to},nw_ttl={ttl}"
    if proto == "icmp":
        return f"icmp,{ip},icmp_type=8,icmp_code=0"
    return f"{proto},{ip},tp_src={SOURCE_PORT},tp_dst={port}"


def _label(proto: str, port: int | None) -> str:
    return {"icmp": "ICMP echo request", "arp": "ARP request"}.get(proto, f"{proto.upper()} packet")


def _to(proto: str, to: str, port: int | None) -> str:
    return f"{to} port {port}" if port else to


def vm_probe(view: LabView, vm: str, to: str, proto: str = "icmp", src: str | None = None,
             src_mac: str | None = None, via: str | None = None, to_vm: str | None = None,
             broadcast: bool = False) -> Probe:
    """What `vm` would send to `to`, on its own host's router; `via`: the next hop the VM's
    own routes give for `to` (e.g. a NAT VM), whose MAC the packet is sent to; `to_vm`: the
    VM named as the destination (its VPC may not be the sender's); `broadcast`: the VM's
    routes call `to` a broadcast address (sent to ff:ff:ff:ff:ff:ff)."""
    sender = _vm(view, vm)
    name, port = parse_proto(proto)
    to = check_ip(to, "--to")
    src = check_ip(src, "--src") if src else sender.ip
    src_mac = check_mac(src_mac) if src_mac else sender.mac
    notes = []
    if src != sender.ip or src_mac != sender.mac:
        notes.append(f"forged: {vm}'s own are {sender.mac} / {sender.ip}")
    if to_vm:
        notes += _other_vpc(view, sender, _vm(view, to_vm), to)
    hop = check_ip(via, "next hop") if via and name != "arp" else to
    target = view.by_ip(sender.vni, hop)
    if hop != to:
        notes.append(f"{vm} routes {to} via {hop}" + (f" ({target.vm})" if target else ""))
    dst_mac = BROADCAST if name == "arp" else _group_mac(to) if broadcast else (target.mac if target else "")
    if broadcast and name != "arp":
        notes.append(f"{to} is a broadcast or multicast address for {vm}: sent to {dst_mac}")
    elif name != "arp" and target is None:
        notes.append(f"no ENI has {hop} in {sender.vpc}: {vm} has no MAC for it, so it would ARP "
                     "for it first (this traces that ARP request)")
        name, port, dst_mac, to = "arp", None, BROADCAST, hop
    flow = f"in_port={sender.port}," + _inner(name, port, src_mac, dst_mac, src, to, sender.ttl)
    return Probe(sender.host, flow,
                 f"{vm}'s {_label(name, port)} to {_to(name, to, port)}", name if port is None else f"{name}:{port}",
                 sender.vni, to, src, src_mac, dst_mac, sender.port, sender=vm, notes=tuple(notes),
                 to_vm=to_vm or "")


def _group_mac(ip: str) -> str:
    """The MAC a broadcast (ff:ff:ff:ff:ff:ff) or multicast (01:00:5e + 23 bits) IP is sent to."""
    address = ipaddress.IPv4Address(ip)
    if not address.is_multicast:
        return BROADCAST
    low = int(address) & 0x7FFFFF
    return "01:00:5e:" + ":".join(f"{(low >> shift) & 0xFF:02x}" for shift in (16, 8, 0))


def unsent_probe(view: LabView, vm: str, to: str, proto: str = "icmp", src: str | None = None,
                 src_mac: str | None = None, to_vm: str | None = None) -> Probe:
    """The packet `vm` would mean to send, when its routes say it sends nothing (`unsent`):
    described, never traced (its flow text is empty)."""
    sender = _vm(view, vm)
    name, port = parse_proto(proto)
    to = check_ip(to, "--to")
    src = check_ip(src, "--src") if src else sender.ip
    src_mac = check_mac(src_mac) if src_mac else sender.mac
    return Probe(sender.host, "", f"{vm}'s {_label(name, port)} to {_to(name, to, port)}",
                 name if port is None else f"{name}:{port}", sender.vni, to, src, src_mac, "",
                 sender.port, sender=vm, to_vm=to_vm or "")


def _other_vpc(view: LabView, sender: Eni, named: Eni, to: str) -> list[str]:
    """A VM named as the destination in another VPC than the sender's: where the packet goes."""
    if named.vni == sender.vni:
        return []
    own = view.by_ip(sender.vni, to)
    where = f"{to} in {sender.vpc} ({own.vm})" if own else f"{to} in {sender.vpc}, which no ENI has: nowhere"
    return [f"{named.vm} is in {named.vpc}, not {sender.vm}'s {sender.vpc}: a VM reaches only its own "
            f"VPC, so the packet goes to {where}"]


def tunnel_probe(view: LabView, from_host: str, to: str, vm: str | None = None, proto: str = "icmp",
                 src: str | None = None, src_mac: str | None = None, to_vm: str | None = None,
                 via: str | None = None) -> Probe:
    """What `from_host`'s router would put in the tunnel for `vm` (default: its VM of the
    destination's VPC) to `to`, as the router of `to`'s host receives it. `to_vm`: the VM
    named as the destination (it decides the VPC); `via`: the next hop the sender's routes
    give for `to` (an appliance such as a NAT VM): the packet goes to its host and MAC."""
    name, port = parse_proto(proto)
    if name == "arp":
        raise VpclabError("ARP never crosses the tunnel (each router answers it locally): "
                          "trace an IP protocol with --from-host (icmp, tcp:PORT, udp:PORT)")
    to = check_ip(to, "--to")
    if from_host not in view.hosts:
        raise VpclabError(f"lab {view.lab!r} has no host {from_host!r}; hosts: {', '.join(view.hosts)}")
    claimed = _vm(view, vm) if vm else None
    hop = check_ip(via, "next hop") if via else None
    if to_vm:
        target = _vm(view, to_vm)
        if claimed and claimed.vni != target.vni:
            raise VpclabError(f"{claimed.vm} is in {claimed.vpc} and {target.vm} in {target.vpc}: no router "
                              f"tunnels a packet from one VPC to another (trace {claimed.vm} --to "
                              f"{target.vm} without --from-host: its packet goes to {to} in {claimed.vpc})")
    elif hop and claimed and view.by_ip(claimed.vni, hop):
        target = view.by_ip(claimed.vni, hop)
    else:
        target = _destination(view, to, claimed)
    routed = target.ip != to
    if target.host == from_host:
        raise VpclabError(f"{target.vm} ({to}) lives on {from_host} itself: its packets never come "
                          f"from {from_host}'s tunnel; trace from another host's")
    sender = claimed or _sender_on(view, from_host, target)
    src = check_ip(src, "--src") if src else sender.ip
    src_mac = check_mac(src_mac) if src_mac else sender.mac
    notes = []
    if routed:
        notes.append(f"{sender.vm} routes {to} via {target.ip} ({target.vm})")
    if sender.host != from_host:
        notes.append(f"{from_host} does not hold {sender.vm} (it lives on {sender.host}): a forged claim")
    if src != sender.ip or src_mac != sender.mac:
        notes.append(f"forged: {sender.vm}'s own are {sender.mac} / {sender.ip}")
    geneve = view.encap == "geneve"
    option = (sender.key, target.key) if geneve else None
    tunnel = (f"in_port={view.tunnel_port},tun_id={target.vni:#x},tun_src={view.hosts[from_host]},"
              f"tun_dst={target.host_ip}" + (f",tun_metadata0={(option[0] << 32) | option[1]:#x}" if option else ""))
    flow = tunnel + "," + _inner(name, port, src_mac, target.mac, src, to, sender.ttl)
    return Probe(target.host, flow, f"{sender.vm}'s {_label(name, port)} to {_to(name, to, port)}, from {from_host}'s tunnel",
                 name if port is None else f"{name}:{port}", target.vni, to, src, src_mac, target.mac,
                 view.tunnel_port, sender=sender.vm, from_host=from_host, tun_src=view.hosts[from_host],
                 eni_option=option, notes=tuple(notes), to_vm=to_vm or "")


def _vm(view: LabView, name: str) -> Eni:
    eni = view.vm(name)
    if eni is None:
        raise VpclabError(f"lab {view.lab!r} has no VM {name!r}; VMs: "
                          f"{', '.join(e.vm for e in view.enis)}")
    return eni


def _destination(view: LabView, to: str, claimed: Eni | None) -> Eni:
    """The ENI a tunnelled packet to `to` is for: in the claimed sender's VPC, or the one VPC
    that has the address."""
    candidates = [e for e in view.with_ip(to) if claimed is None or e.vni == claimed.vni]
    if not candidates:
        where = f" in {claimed.vpc}" if claimed else ""
        raise VpclabError(f"no ENI has {to}{where}: no router would tunnel a packet to it, unless "
                          f"the sender routes it through an appliance: name that sender (vpclab trace "
                          f"{view.lab} VM --from-host HOST --to {to}), or trace from a VM (vpclab "
                          f"trace {view.lab} VM --to {to})")
    if len(candidates) > 1:
        raise VpclabError(f"{to} is in {' and '.join(e.vpc for e in candidates)}: name the VM whose "
                          f"packet it is (vpclab trace {view.lab} VM --from-host HOST --to {to})")
    return candidates[0]


def _sender_on(view: LabView, host: str, target: Eni) -> Eni:
    senders = sorted((e for e in view.enis if e.host == host and e.vni == target.vni), key=lambda e: e.vm)
    if not senders:
        raise VpclabError(f"{host} holds no VM of {target.vpc}: name the VM whose packet it carries "
                          f"(vpclab trace {view.lab} VM --from-host {host} --to {target.ip})")
    return senders[0]
