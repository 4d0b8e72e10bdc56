"""An ARP request turned into its reply by the very actions of the router's ARP entry.

The service answers an ARP miss for a known target by installing the entry's flows;
the asking VM used to get its reply only after the router had installed them and
re-run the request through its tables. Instead the service applies the entry's ARP
flow actions (vpclab.router.pipeline.arp: moves and sets on the Ethernet and ARP fields,
then output to the port it came in) to the request itself, OpenFlow's way: in
order, each action seeing the frame as the previous ones left it. So the reply is
byte for byte the one the cached flow gives to the next request, and it is sent
before the flow-mods. Anything this does not know (a tagged frame, another action,
a partial move) is None: the service then resubmits the request as before.
"""
from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Address

from vpclab.router.pipeline.tables import OFPP_IN_PORT, Action

# an untagged frame's fields: (offset, length in bytes)
FIELDS = {"eth_dst": (0, 6), "eth_src": (6, 6), "arp_op": (20, 2), "arp_sha": (22, 6),
          "arp_spa": (28, 4), "arp_tha": (32, 6), "arp_tpa": (38, 4)}
ARP_FRAME = 42          # Ethernet + ARP for IPv4 over Ethernet, untagged


def reply(request: bytes, in_port: int, actions: tuple[Action, ...]) -> tuple[int, bytes] | None:
    """(the port it goes out of, the frame) as the router's actions would send it, or None."""
    if len(request) < ARP_FRAME or request[12:14] != b"\x08\x06":
        return None
    frame = bytearray(request)
    for action in actions[:-1]:
        if not _apply(frame, action):
            return None
    last = actions[-1] if actions else ()
    if last[:1] != ("output",):
        return None
    return (in_port if last[1] == OFPP_IN_PORT else last[1]), bytes(frame)


def _apply(frame: bytearray, action: Action) -> bool:
    kind = action[0]
    if kind == "move" and len(action) in (4, 6) and action[1] in FIELDS and action[2] in FIELDS:
        (src, n), (dst, m) = FIELDS[action[1]], FIELDS[action[2]]
        if n != m or action[3] != 8 * n or any(action[4:6]):
            return False            # a part of a field: not in an ARP responder
        frame[dst:dst + n] = frame[src:src + n]
        return True
    if kind == "set" and len(action) == 3 and action[1] in FIELDS:
        offset, n = FIELDS[action[1]]
        value = _value(action[2], n)
        if value is None:
            return False
        frame[offset:offset + n] = value
        return True
    return False


@lru_cache(maxsize=4096)      # a mapping's MAC and IP recur: parse each once
def _value(value: object, size: int) -> bytes | None:
    """A set-field's value in its wire form: a MAC, an IPv4 address or a number."""
    if isinstance(value, int):
        return value.to_bytes(size, "big")
    if isinstance(value, str) and size == 6 and value.count(":") == 5:
        return bytes.fromhex(value.replace(":", ""))
    if isinstance(value, str) and size == 4:
        return IPv4Address(value).packed
    return None
