"""Forged tunnelled packets for classroom checks: what anyone on the underlay can send.

`vxlan_frame` builds, with scapy, the UDP payload of a VXLAN packet (the VXLAN header with
its VNI, then the inner Ethernet frame: an ICMP echo request marked by its id and seq, with
no data, so a capture tells it from ping's by `length 8`). `send` puts it on the underlay
from a lab host's namespace, with an ordinary UDP socket: the outer source is that host's
own underlay address (the one thing a sender cannot choose), the outer destination another
host of the lab, its VXLAN port. Nothing is sent anywhere but to a lab host's underlay
address.
"""
from __future__ import annotations

import sys

VXLAN_PORT = 4789

# run inside the sending host's namespace: the frame (hex), the destination, how many times
SEND = """
import socket, sys
frame, destination, count = bytes.fromhex(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
    for _ in range(count):
        out.sendto(frame, (destination, %d))
""" % VXLAN_PORT


def vxlan_frame(vni: int, *, src_mac: str, dst_mac: str, src_ip: str, dst_ip: str,
                ident: int, seq: int) -> bytes:
    """The VXLAN header (flags: VNI valid) and the inner frame src -> dst: an ICMP echo
    request with `ident` and `seq` and no data (the UDP payload of a VXLAN packet)."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether
    from scapy.layers.vxlan import VXLAN
    return bytes(VXLAN(vni=vni, flags=0x08) / Ether(src=src_mac, dst=dst_mac)
                 / IP(src=src_ip, dst=dst_ip) / ICMP(type=8, id=ident, seq=seq))


def underlay_address(lab, host: str) -> str:
    """A lab host's underlay address; anything else (a VM, an outside address) is refused."""
    node = lab.nodes().get(host)
    if node is None or node.get("kind") != "host":
        raise ValueError(f"{host} is not a host of lab {lab.name}: forged packets go only to "
                         "a lab host's underlay address")
    return node["underlay_ip"]


def send_command(lab, host: str, frame: bytes, to_host: str, count: int = 1) -> list[str]:
    """The argv that sends `frame` `count` times from `host`'s namespace to `to_host`'s
    VXLAN port (for subprocess: a capture's record of commands does not list it)."""
    underlay_address(lab, host)
    return lab.command(host, sys.executable, "-c", SEND, frame.hex(),
                       underlay_address(lab, to_host), str(count))


def send(lab, host: str, frame: bytes, to_host: str, count: int = 1) -> None:
    """Send `frame` `count` times from `host`'s own underlay address to `to_host`'s VXLAN
    port; returns once it was sent (the packets are on their way)."""
    underlay_address(lab, host)
    done = lab.exec(host, sys.executable, "-c", SEND, frame.hex(),
                    underlay_address(lab, to_host), str(count), timeout=20)
    if not done.ok:
        raise RuntimeError(f"sending a forged VXLAN packet from {host} failed: "
                           f"{done.stderr.strip()}")
