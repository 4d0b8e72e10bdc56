"""A VM's DHCP client message turned into the virtual router's answer (RFC 2131).

In a VPC nothing is broadcast: a VM's DISCOVER never reaches another VM, and the
"DHCP server" is the host's virtual router answering from the mapping service. The
address it hands out is the VM's mapping (so a moved VM keeps it), so there is no pool
and no state: every answer is a function of the client's message and its `Lease`.

    DISCOVER                                          -> OFFER
    REQUEST for lease.ip (requested-ip, or ciaddr
            when renewing), server id ours or absent  -> ACK
    REQUEST for another address                       -> NAK
    REQUEST naming another server                     -> None (the client chose it)
    RELEASE, DECLINE, INFORM, a reply, not DHCP,
    another MAC (Ethernet source or chaddr)           -> None

The answer goes to the client's MAC (unicast Ethernet) and to IPv4 255.255.255.255: a
client in INIT state has no address yet, and both busybox udhcpc and ISC dhclient take
a broadcast answer in every state (even when renewing, where RFC 2131 would unicast to
ciaddr). Built with `struct`: this runs in the mapping service's packet-in path.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from ryu_apps.udp_frame import mac_bytes, parse_udp, udp_frame

SERVER_PORT, CLIENT_PORT = 67, 68
BOOTREQUEST, BOOTREPLY = 1, 2
MAGIC = b"\x63\x82\x53\x63"
FIXED = 236                     # op .. file: the BOOTP header before the magic cookie
MIN_BOOTP = 300                 # RFC 1542: relays and old clients expect at least this
BROADCAST = IPv4Address("255.255.255.255")
ZERO = IPv4Address("0.0.0.0")

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
OPT_PAD, OPT_END = 0, 255
OPT_MASK, OPT_ROUTER, OPT_DNS, OPT_HOSTNAME, OPT_DOMAIN = 1, 3, 6, 12, 15
OPT_MTU, OPT_BROADCAST, OPT_REQUESTED, OPT_LEASE, OPT_TYPE, OPT_SERVER = 26, 28, 50, 51, 53, 54


@dataclass(frozen=True)
class Lease:
    """What the router hands one VM: its mapping's address and its subnet's settings."""

    ip: IPv4Address
    network: IPv4Network          # the VM's subnet
    router: IPv4Address           # the subnet's .1
    dns: IPv4Address              # the VPC's .2 (VPC CIDR base + 2)
    mtu: int
    server_mac: str               # ROUTER_MAC
    server_ip: IPv4Address        # the subnet's .1: the server id the client echoes
    lease_seconds: int = 3600
    hostname: str | None = None
    domain: str | None = None


@dataclass(frozen=True)
class Message:
    """The fields of a client's message an answer depends on."""

    kind: int
    xid: bytes
    flags: bytes
    ciaddr: IPv4Address
    giaddr: bytes
    chaddr: bytes                 # all 16 bytes, echoed as sent
    requested: IPv4Address | None
    server: IPv4Address | None


def reply(frame: bytes, client_mac: str, lease: Lease) -> bytes | None:
    """The whole Ethernet frame answering `frame` (a DHCP client message from
    `client_mac`), or None when the router stays silent."""
    message = _client_message(frame, mac_bytes(client_mac))
    if message is None:
        return None
    kind = _answer_kind(message, lease)
    if kind is None:
        return None
    payload = _bootreply(message, kind, lease)
    return udp_frame(mac_bytes(lease.server_mac), mac_bytes(client_mac), lease.server_ip,
                     BROADCAST, SERVER_PORT, CLIENT_PORT, payload)


def _answer_kind(message: Message, lease: Lease) -> int | None:
    if message.kind == DISCOVER:
        return OFFER
    if message.kind != REQUEST:
        return None
    if message.server is not None and message.server != lease.server_ip:
        return None                   # it accepted another server's offer
    wanted = message.requested or (message.ciaddr if message.ciaddr != ZERO else None)
    if wanted is None:
        return None                   # asks for nothing we can judge
    return ACK if wanted == lease.ip else NAK


def _client_message(frame: bytes, client: bytes) -> Message | None:
    """A BOOTREQUEST from `client` to port 67 with a DHCP message type, else None."""
    datagram = parse_udp(frame)
    if datagram is None or (datagram.sport, datagram.dport) != (CLIENT_PORT, SERVER_PORT):
        return None
    data = datagram.payload
    if datagram.eth_src != client or len(data) < FIXED + 4 or data[FIXED:FIXED + 4] != MAGIC:
        return None
    op, htype, hlen = data[0], data[1], data[2]
    if op != BOOTREQUEST or htype != 1 or hlen != 6 or data[28:34] != client:
        return None
    options = parse_options(data[FIXED + 4:])
    if options is None or len(options.get(OPT_TYPE, b"")) != 1:
        return None
    return Message(options[OPT_TYPE][0], data[4:8], data[10:12], IPv4Address(data[12:16]), data[24:28],
                   data[28:44], _address(options.get(OPT_REQUESTED)), _address(options.get(OPT_SERVER)))


def parse_options(data: bytes) -> dict[int, bytes] | None:
    """Options by code (a repeated code's parts joined, RFC 3396); None if one runs past
    the end. Stops at END; PAD is skipped."""
    options: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        code = data[i]
        if code == OPT_END:
            break
        if code == OPT_PAD:
            i += 1
            continue
        if i + 1 >= len(data) or i + 2 + data[i + 1] > len(data):
            return None
        options[code] = options.get(code, b"") + data[i + 2:i + 2 + data[i + 1]]
        i += 2 + data[i + 1]
    return options


def _address(value: bytes | None) -> IPv4Address | None:
    return IPv4Address(value) if value is not None and len(value) == 4 else None


def _bootreply(message: Message, kind: int, lease: Lease) -> bytes:
    """The BOOTREPLY: xid, flags, giaddr and chaddr echoed; yiaddr the lease (not in a NAK);
    ciaddr echoed in an ACK to a renewing client (RFC 2131, table 3)."""
    yiaddr = lease.ip if kind != NAK else ZERO
    ciaddr = message.ciaddr if kind == ACK else ZERO
    head = struct.pack("!BBBB4sH2s4s4s4s4s16s64s128s", BOOTREPLY, 1, 6, 0, message.xid, 0,
                       message.flags, ciaddr.packed, yiaddr.packed, ZERO.packed, message.giaddr,
                       message.chaddr, b"", b"")
    body = head + MAGIC + _options(kind, lease)
    return body + b"\x00" * max(0, MIN_BOOTP - len(body))


def _options(kind: int, lease: Lease) -> bytes:
    out = _option(OPT_TYPE, bytes([kind])) + _option(OPT_SERVER, lease.server_ip.packed)
    if kind == NAK:
        return out + bytes([OPT_END])
    out += _option(OPT_LEASE, struct.pack("!I", lease.lease_seconds))
    out += _option(OPT_MASK, lease.network.netmask.packed)
    out += _option(OPT_ROUTER, lease.router.packed)
    out += _option(OPT_DNS, lease.dns.packed)
    out += _option(OPT_MTU, struct.pack("!H", lease.mtu))
    out += _option(OPT_BROADCAST, lease.network.broadcast_address.packed)
    if lease.hostname:
        out += _option(OPT_HOSTNAME, lease.hostname.encode("ascii"))
    if lease.domain:
        out += _option(OPT_DOMAIN, lease.domain.encode("ascii"))
    return out + bytes([OPT_END])


def _option(code: int, value: bytes) -> bytes:
    if len(value) > 255:
        raise ValueError(f"DHCP option {code}: {len(value)} bytes, at most 255")
    return bytes([code, len(value)]) + value
