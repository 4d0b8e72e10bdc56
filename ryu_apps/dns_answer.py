"""The VPC's `.2` resolver, answered by the host's virtual router from the topology.

A VPC resolves its own names and nothing else (an AWS VPC's resolver forwards the rest;
a lab has nowhere to forward to), so every answer is immediate and authoritative:

    NAME.VPC.internal, ip-A-B-C-D.internal  A      -> the VM's address (TTL 60)
    D.C.B.A.in-addr.arpa                    PTR    -> NAME.VPC.internal
    a known name, another type (AAAA, MX..)        -> NOERROR, no answer (NODATA)
    a name above a known one (VPC.internal)        -> NODATA too (RFC 8020: NXDOMAIN
                                                      would deny the names below it)
    anything else, another VPC's names included    -> NXDOMAIN
    a response, a malformed query, not QUERY       -> None (no answer at all)

Names are per VPC: `names_for` builds one VPC's `Names`, and the service answers a VM's
query from its own VPC's. Built with `struct`: this runs in the packet-in path.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from ryu_apps.udp_frame import mac_bytes, parse_udp, udp_frame
from vpclab.model.topology import Topology

DNS_PORT = 53
TTL = 60
TYPE_A, TYPE_PTR, TYPE_ANY = 1, 12, 255
CLASS_IN = 1
NOERROR, NXDOMAIN = 0, 3
QR, AA, RD = 0x8000, 0x0400, 0x0100
OPCODE_MASK = 0x7800
HEADER = 12
MAX_NAME = 255                  # octets on the wire, RFC 1035 2.3.4
MAX_POINTERS = 16               # more compression jumps than any honest query needs
LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class Names:
    """One VPC's names: `forward` lower-case name -> address, `reverse` in-addr.arpa
    name -> the name its PTR gives; `above` the names above those (`shop.internal`,
    `internal`, `in-addr.arpa`..., computed once here, not per query); `skipped` the VM
    names that are no DNS label."""

    forward: dict[str, IPv4Address] = field(default_factory=dict)
    reverse: dict[str, str] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    above: frozenset[str] = frozenset()

    def exists(self, name: str) -> bool:
        """A name with records, or one above such a name (an empty non-terminal)."""
        return name in self.forward or name in self.reverse or name in self.above


def _parents(name: str) -> list[str]:
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels))]


def is_label(name: str) -> bool:
    """A host name label (RFC 1123, lower-cased): vpclab names also allow '_' and a
    trailing '-', which no DNS host name may carry."""
    return LABEL.fullmatch(name) is not None


def names_for(topology: Topology, vpc_name: str) -> Names:
    """The names `.2` of `vpc_name` answers. Every VM gets `ip-A-B-C-D.internal`; a VM
    gets `NAME.VPC.internal` only if its name and its VPC's, lower-cased, are DNS labels
    and no other VM of the VPC has the same name but for case. A skipped VM is listed in
    `skipped`, and its PTR gives its ip- name instead."""
    vms = [vm for vm in topology.vms.values() if vm.vpc == vpc_name]
    lower = [vm.name.lower() for vm in vms]
    zone_ok = is_label(vpc_name.lower())
    forward: dict[str, IPv4Address] = {}
    reverse: dict[str, str] = {}
    skipped = []
    for vm, name in zip(vms, lower):
        ip_name = "ip-" + str(vm.ip).replace(".", "-") + ".internal"
        forward[ip_name] = vm.ip
        if zone_ok and is_label(name) and lower.count(name) == 1:
            own = f"{name}.{vpc_name.lower()}.internal"
            forward[own] = vm.ip
        else:
            own = ip_name
            skipped.append(vm.name)
        reverse[vm.ip.reverse_pointer] = own
    above = frozenset(parent for name in (*forward, *reverse) for parent in _parents(name))
    return Names(forward, reverse, tuple(skipped), above)


@dataclass(frozen=True)
class Query:
    id: int
    flags: int
    labels: tuple[bytes, ...]       # as asked (its case echoed: DNS 0x20 resolvers check it)
    qtype: int
    qclass: int

    @property
    def name(self) -> str | None:
        """Lower-cased, dotted; None if a label holds a dot (it would read as two)."""
        if any(b"." in label for label in self.labels):
            return None
        return b".".join(self.labels).lower().decode("ascii", "replace")


def reply(frame: bytes, names: Names, server_mac: str, server_ip: IPv4Address) -> bytes | None:
    """The whole Ethernet frame answering a DNS query `frame` (UDP to port 53), or None."""
    datagram = parse_udp(frame)
    if datagram is None or datagram.dport != DNS_PORT:
        return None
    query = parse_query(datagram.payload)
    if query is None:
        return None
    payload = answer(query, names)
    return udp_frame(mac_bytes(server_mac), datagram.eth_src, server_ip, datagram.ip_src,
                     DNS_PORT, datagram.sport, payload)


def parse_query(data: bytes) -> Query | None:
    """A standard query with one question, or None (a response, another opcode, more or
    fewer questions, a name that loops, runs past the end or is too long)."""
    if len(data) < HEADER:
        return None
    ident, flags, qdcount = struct.unpack_from("!HHH", data)
    if flags & QR or flags & OPCODE_MASK or qdcount != 1:
        return None
    parsed = read_name(data, HEADER)
    if parsed is None:
        return None
    labels, end = parsed
    if end + 4 > len(data):
        return None
    qtype, qclass = struct.unpack_from("!HH", data, end)
    return Query(ident, flags, labels, qtype, qclass)


def read_name(data: bytes, offset: int) -> tuple[tuple[bytes, ...], int] | None:
    """(labels, the offset after the name where it started), following compression
    pointers; None on a loop, a reserved label type, or a name over 255 octets."""
    labels: list[bytes] = []
    end = None
    size, jumps = 1, 0
    while True:
        if offset >= len(data):
            return None
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data) or jumps == MAX_POINTERS:
                return None
            end = offset + 2 if end is None else end
            target = ((length & 0x3F) << 8) | data[offset + 1]
            if target >= offset:                 # only backwards: no loop can form
                return None
            offset, jumps = target, jumps + 1
            continue
        if length & 0xC0:
            return None                          # 0x40, 0x80: reserved label types
        if length == 0:
            return tuple(labels), (offset + 1 if end is None else end)
        size += length + 1
        if size > MAX_NAME or offset + 1 + length > len(data):
            return None
        labels.append(data[offset + 1:offset + 1 + length])
        offset += 1 + length


def answer(query: Query, names: Names) -> bytes:
    """The DNS message answering `query`: its id and question echoed, authoritative,
    RD copied, RA clear; one record, or none (NODATA, NXDOMAIN)."""
    rcode, record = _lookup(query, names)
    flags = QR | AA | (query.flags & RD) | rcode
    question = encode_name(query.labels) + struct.pack("!HH", query.qtype, query.qclass)
    head = struct.pack("!HHHHHH", query.id, flags, 1, 1 if record else 0, 0, 0)
    return head + question + record


def _lookup(query: Query, names: Names) -> tuple[int, bytes]:
    """(rcode, the answer record or b'')."""
    name = query.name
    if name is None or query.qclass not in (CLASS_IN, TYPE_ANY) or not names.exists(name):
        return NXDOMAIN, b""
    if name in names.forward and query.qtype in (TYPE_A, TYPE_ANY):
        return NOERROR, _record(TYPE_A, names.forward[name].packed)
    if name in names.reverse and query.qtype in (TYPE_PTR, TYPE_ANY):
        return NOERROR, _record(TYPE_PTR, encode_name(tuple(names.reverse[name].encode().split(b"."))))
    return NOERROR, b""


def _record(rtype: int, rdata: bytes) -> bytes:
    """A record owned by the question's name (a pointer to it: offset 12)."""
    return struct.pack("!HHHIH", 0xC00C, rtype, CLASS_IN, TTL, len(rdata)) + rdata


def encode_name(labels: tuple[bytes, ...]) -> bytes:
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"
