"""The OpenFlow messages of a captured control connection (one router and its mapping
service, tcp port 6653), for a check's evidence: each direction's TCP stream put back
together (segments out of order, retransmitted or splitting a message), cut into
messages, the two directions merged by the time each message was sent.

Only OpenFlow 1.3 (version 4) is read; a stream that does not start at a message
boundary (the capture began mid-message) yields nothing for that direction.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

OPENFLOW_PORT = 6653
VERSION = 4                                    # OpenFlow 1.3
ECHO_REQUEST, ECHO_REPLY, PACKET_IN, FLOW_REMOVED = 2, 3, 10, 11
PACKET_OUT, FLOW_MOD, BARRIER_REQUEST, BARRIER_REPLY = 13, 14, 20, 21
NAMES = {ECHO_REQUEST: "ECHO_REQUEST", ECHO_REPLY: "ECHO_REPLY", PACKET_IN: "PACKET_IN",
         FLOW_REMOVED: "FLOW_REMOVED", PACKET_OUT: "PACKET_OUT", FLOW_MOD: "FLOW_MOD",
         BARRIER_REQUEST: "BARRIER_REQUEST", BARRIER_REPLY: "BARRIER_REPLY"}
OFPFC_DELETE = 3


@dataclass(frozen=True)
class Segment:
    """One TCP segment's payload: when it was seen, which way, its sequence number."""
    at: float
    to_router: bool
    seq: int
    data: bytes


@dataclass(frozen=True)
class Message:
    """One OpenFlow message on the wire between the service and a router."""
    at: float
    to_router: bool
    kind: int
    xid: int
    deletes: int | None = None        # a FLOW_MOD delete: the cookie it deletes by

    @classmethod
    def parse(cls, at: float, to_router: bool, raw: bytes) -> Message:
        kind, xid = raw[1], int.from_bytes(raw[4:8], "big")
        deletes = (int.from_bytes(raw[8:16], "big")
                   if kind == FLOW_MOD and len(raw) >= 26 and raw[25] == OFPFC_DELETE else None)
        return cls(at, to_router, kind, xid, deletes)

    @property
    def name(self) -> str:
        return NAMES.get(self.kind, f"type {self.kind}")

    def describe(self, origin: float, router: str, cookies: dict[int, str]) -> str:
        """'+0.012 s  service -> host1: FLOW_MOD delete cookie=0x... (what it names)'."""
        arrow = f"service -> {router}" if self.to_router else f"{router} -> service"
        what = self.name
        if self.deletes is not None:
            what += f" delete cookie={self.deletes:#x}"
            what += f" ({cookies[self.deletes]})" if self.deletes in cookies else ""
        elif self.kind in (BARRIER_REQUEST, BARRIER_REPLY):
            what += f" xid={self.xid:#x}"
        return f"{self.at - origin:+.3f} s  {arrow}: {what}"


def stream(segments: list[Segment]) -> tuple[bytes, list[tuple[int, float]]]:
    """One direction's bytes in order, from its first sequence number seen, and when
    each part of it was first seen: (stream offset, time) per segment kept."""
    if not segments:
        return b"", []
    first = segments[0].seq
    pieces: dict[int, Segment] = {}
    for segment in segments:
        pieces.setdefault((segment.seq - first) % 2**32, segment)
    data, times, end = b"", [], 0
    for offset in sorted(pieces):
        chunk = pieces[offset].data
        if offset + len(chunk) <= end:
            continue                                   # a retransmission
        if offset > end:
            break                                      # a gap: what follows cannot be read
        times.append((len(data), pieces[offset].at))
        data += chunk[end - offset:]
        end = offset + len(chunk)
    return data, times


def cut(data: bytes, times: list[tuple[int, float]], to_router: bool) -> list[Message]:
    """The messages of one direction's stream, each at the time its first byte was seen."""
    messages, pos = [], 0
    while pos + 8 <= len(data):
        version, length = data[pos], int.from_bytes(data[pos + 2:pos + 4], "big")
        if version != VERSION or length < 8 or pos + length > len(data):
            break                                      # not at a boundary, or cut short
        at = max(when for start, when in times if start <= pos)
        messages.append(Message.parse(at, to_router, data[pos:pos + length]))
        pos += length
    return messages


def messages(segments: list[Segment]) -> list[Message]:
    """Both directions' messages, merged by time (each direction keeps its own order)."""
    out = []
    for to_router in (True, False):
        data, times = stream([s for s in segments if s.to_router == to_router])
        out += cut(data, times, to_router)
    return sorted(out, key=lambda m: m.at)


def segments(pcap: Path | str, port: int = OPENFLOW_PORT) -> list[Segment]:
    """The TCP payloads of a capture (its padding cut off), in capture order; a capture
    cut short is read as far as it goes."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import PcapReader
    out = []
    try:
        for frame in PcapReader(str(pcap)):
            if TCP not in frame or not bytes(frame[TCP].payload):
                continue
            data = bytes(frame[TCP].payload)
            if IP in frame:
                data = data[:max(0, frame[IP].len - frame[IP].ihl * 4 - frame[TCP].dataofs * 4)]
            out.append(Segment(float(frame.time), frame[TCP].sport == port, frame[TCP].seq, data))
    except (EOFError, OSError, ValueError):
        pass
    return out


def read(pcap: Path | str, port: int = OPENFLOW_PORT) -> list[Message]:
    """The OpenFlow messages of a capture of one router's control connection."""
    return messages(segments(pcap, port))
