"""Ethernet/IPv4/UDP framing for the answers the mapping service sends itself (DHCP, DNS).

The service answers these in its packet-in hot path, so this is `struct` on bytes, not
a packet library: parse what a VM sent (untagged Ethernet, IPv4 without fragments,
UDP), and wrap an answer's payload in the three headers with both checksums right (a
client's kernel drops a UDP datagram whose checksum is wrong, silently).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

ETH_IPV4 = 0x0800
IPPROTO_UDP = 17
ETH_HEADER = 14
UDP_HEADER = 8
TTL = 64


@dataclass(frozen=True)
class Datagram:
    """One UDP datagram as a VM sent it, with the addresses an answer goes back to."""

    eth_src: bytes
    eth_dst: bytes
    ip_src: IPv4Address
    ip_dst: IPv4Address
    sport: int
    dport: int
    payload: bytes


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def parse_udp(frame: bytes) -> Datagram | None:
    """The UDP datagram of an untagged Ethernet IPv4 frame, or None (a tagged frame, a
    fragment, another protocol, or any length that does not add up)."""
    if len(frame) < ETH_HEADER + 20 or struct.unpack_from("!H", frame, 12)[0] != ETH_IPV4:
        return None
    version_ihl, total, frag, proto = frame[14], *struct.unpack_from("!H2xH", frame, 16), frame[23]
    ihl = (version_ihl & 0x0F) * 4
    if version_ihl >> 4 != 4 or ihl < 20 or proto != IPPROTO_UDP or frag & 0x3FFF:
        return None           # not IPv4, or a fragment (MF set or an offset)
    end = ETH_HEADER + total
    start = ETH_HEADER + ihl
    if total < ihl + UDP_HEADER or len(frame) < end:
        return None
    sport, dport, length = struct.unpack_from("!HHH", frame, start)
    if length < UDP_HEADER or start + length > end:
        return None
    return Datagram(frame[6:12], frame[0:6], IPv4Address(frame[26:30]), IPv4Address(frame[30:34]),
                    sport, dport, frame[start + UDP_HEADER:start + length])


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): ones' complement of the ones' complement sum."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(eth_src: bytes, eth_dst: bytes, ip_src: IPv4Address, ip_dst: IPv4Address,
              sport: int, dport: int, payload: bytes) -> bytes:
    """A whole Ethernet frame carrying `payload` over UDP, TTL 64, both checksums set."""
    length = UDP_HEADER + len(payload)
    pseudo = ip_src.packed + ip_dst.packed + struct.pack("!BBH", 0, IPPROTO_UDP, length)
    udp = struct.pack("!HHHH", sport, dport, length, 0) + payload
    udp_sum = checksum(pseudo + udp) or 0xFFFF         # 0 means "no checksum" in UDP
    udp = udp[:6] + struct.pack("!H", udp_sum) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0, 0, TTL, IPPROTO_UDP, 0,
                     ip_src.packed, ip_dst.packed)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return eth_dst + eth_src + struct.pack("!H", ETH_IPV4) + ip + udp
