"""Turn the pipeline's plain `Flow` values into os-ken OpenFlow 1.3 messages.

Builders take the datapath only to reach its parser; they do not send.
"""
from __future__ import annotations

import struct
from collections import OrderedDict

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as ofp_parser

from vpclab.router.pipeline import COOKIE_KIND_MASK, COOKIE_MAPPING, Flow
from vpclab.router.sync import canonical_action


def _action(parser, action: tuple):
    kind = action[0]
    if kind == "output":
        return parser.OFPActionOutput(action[1])
    if kind == "set":
        return parser.OFPActionSetField(**{action[1]: action[2]})
    if kind == "move":      # ("move", src, dst, bits[, src_offset, dst_offset])
        src_ofs, dst_ofs = action[4:6] if len(action) > 4 else (0, 0)
        return parser.NXActionRegMove(src_field=action[1], dst_field=action[2], n_bits=action[3],
                                      src_ofs=src_ofs, dst_ofs=dst_ofs)
    if kind == "controller":
        return parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)
    raise ValueError(f"unknown action {action!r}")


def flow_mod(datapath, flow: Flow):
    parser = datapath.ofproto_parser
    instructions = []
    if flow.meter is not None:
        instructions.append(parser.OFPInstructionMeter(flow.meter))
    if flow.actions:
        instructions.append(parser.OFPInstructionActions(
            ofp.OFPIT_APPLY_ACTIONS, [_action(parser, a) for a in flow.actions]))
    if flow.metadata is not None:
        instructions.append(parser.OFPInstructionWriteMetadata(flow.metadata, 0xFFFFFFFFFFFFFFFF))
    if flow.goto is not None:
        instructions.append(parser.OFPInstructionGotoTable(flow.goto))
    return parser.OFPFlowMod(datapath=datapath, table_id=flow.table, priority=flow.priority,
                             match=parser.OFPMatch(**flow.match), instructions=instructions,
                             cookie=flow.cookie, idle_timeout=flow.idle_timeout,
                             hard_timeout=flow.hard_timeout,
                             # every expiring entry is reported: the cache counts them all
                             flags=ofp.OFPFF_SEND_FLOW_REM if flow.idle_timeout or flow.hard_timeout
                             else 0)


def installed_instructions(instructions) -> frozenset:
    """A router's report of what a flow does, in `vpclab.router.sync.instructions_of`'s form."""
    parts = set()
    for inst in instructions:
        if isinstance(inst, ofp_parser.OFPInstructionMeter):
            parts.add(("meter", inst.meter_id))
        elif isinstance(inst, ofp_parser.OFPInstructionActions) and inst.actions:
            parts.add(("actions", tuple(_installed_action(a) for a in inst.actions)))
        elif isinstance(inst, ofp_parser.OFPInstructionWriteMetadata):
            parts.add(("metadata", inst.metadata))
        elif isinstance(inst, ofp_parser.OFPInstructionGotoTable):
            parts.add(("goto", inst.table_id))
        else:
            parts.add(("unknown", repr(inst)))
    return frozenset(parts)


def _installed_action(action) -> tuple:
    if isinstance(action, ofp_parser.OFPActionOutput):
        return ("output", action.port)
    if isinstance(action, ofp_parser.OFPActionSetField):
        return canonical_action(("set", action.key, action.value))
    if isinstance(action, ofp_parser.NXActionRegMove):
        return ("move", _field(action.src_field), _field(action.dst_field), action.n_bits,
                action.src_ofs, action.dst_ofs)
    return ("unknown", repr(action))


def _field(name: str) -> str:
    """OVS reports a move's OpenFlow 1.0-era fields in their NXM form (NXM_OF_ETH_SRC),
    which os-ken names `eth_src_nxm`: the same field as the `eth_src` we sent."""
    return name.removesuffix("_nxm")


def delete_strict(datapath, table: int, priority: int, match: dict):
    """Delete exactly one flow, by its identity (table, priority, match)."""
    parser = datapath.ofproto_parser
    return parser.OFPFlowMod(datapath=datapath, table_id=table, priority=priority,
                             command=ofp.OFPFC_DELETE_STRICT, out_port=ofp.OFPP_ANY,
                             out_group=ofp.OFPG_ANY, match=parser.OFPMatch(**match))


def delete_cookie(datapath, cookie: int):
    """Delete every flow of one cached mapping, in every table: one message per invalidation."""
    parser = datapath.ofproto_parser
    return parser.OFPFlowMod(datapath=datapath, table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                             cookie=cookie, cookie_mask=0xFFFFFFFFFFFFFFFF, out_port=ofp.OFPP_ANY,
                             out_group=ofp.OFPG_ANY, match=parser.OFPMatch())


def flow_stats(datapath, mappings_only: bool = False, cookie_kind: int | None = None):
    """All flows of the router, or only those of one cookie kind (e.g. mapping entries)."""
    parser = datapath.ofproto_parser
    kind = COOKIE_MAPPING if mappings_only else cookie_kind
    cookie, mask = (kind, COOKIE_KIND_MASK) if kind is not None else (0, 0)
    return parser.OFPFlowStatsRequest(datapath, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                      cookie, mask, parser.OFPMatch())


def resubmit_packet(datapath, in_port: int, data: bytes):
    """Send a packet back through the router's tables as if it just arrived."""
    parser = datapath.ofproto_parser
    return parser.OFPPacketOut(datapath=datapath, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
                               actions=[parser.OFPActionOutput(ofp.OFPP_TABLE)], data=data)


def meter_add(datapath, meter_id: int, rate: int):
    """A packets-per-second drop band: what a VM port may send to the mapping service."""
    parser = datapath.ofproto_parser
    band = parser.OFPMeterBandDrop(rate=rate, burst_size=max(10, rate // 4))
    return parser.OFPMeterMod(datapath, command=ofp.OFPMC_ADD,
                              flags=ofp.OFPMF_PKTPS | ofp.OFPMF_BURST | ofp.OFPMF_STATS,
                              meter_id=meter_id, bands=[band])


def meter_delete(datapath, meter_id: int):
    parser = datapath.ofproto_parser
    return parser.OFPMeterMod(datapath, command=ofp.OFPMC_DELETE, meter_id=meter_id)


def meter_stats(datapath):
    parser = datapath.ofproto_parser
    return parser.OFPMeterStatsRequest(datapath, 0, ofp.OFPM_ALL)


def packet_to_port(datapath, port: int, data: bytes):
    """Deliver a packet straight out of one port (what the router's own flow would do)."""
    parser = datapath.ofproto_parser
    return parser.OFPPacketOut(datapath=datapath, buffer_id=ofp.OFP_NO_BUFFER,
                               in_port=ofp.OFPP_CONTROLLER,
                               actions=[parser.OFPActionOutput(port)], data=data)


PACKET_OUT = struct.Struct("!BBHIIIH6x")      # header, buffer_id, in_port, actions_len, pad
OUTPUT = struct.Struct("!HHIH6x")               # OFPAT_OUTPUT: type, len, port, max_len, pad


def packet_out(datapath, in_port: int, port: int, data: bytes) -> bytes:
    """A packet-out with one output action, ready to send (the datapath's next xid):
    what `serialized(packet_to_port(...))` or `serialized(resubmit_packet(...))` gives,
    packed directly (os-ken's builder costs a miss ~5 us)."""
    datapath.xid = (datapath.xid + 1) & datapath.ofproto.MAX_XID
    head = PACKET_OUT.pack(ofp.OFP_VERSION, ofp.OFPT_PACKET_OUT, PACKET_OUT.size + OUTPUT.size + len(data),
                           datapath.xid, ofp.OFP_NO_BUFFER, in_port, OUTPUT.size)
    return head + OUTPUT.pack(ofp.OFPAT_OUTPUT, OUTPUT.size, port, ofp.OFPCML_MAX) + data


def barrier(datapath):
    return datapath.ofproto_parser.OFPBarrierRequest(datapath)


class FlowEncoder:
    """Flow-mods serialized once per distinct `Flow`, sent with a fresh xid each time.

    Building and serializing a flow-mod costs os-ken ~200 us, most of a miss's
    handling time; the same decision recurs for every router that caches the
    same entry. The key is the flow's full content, so a changed mapping simply
    makes a new key: nothing to invalidate. Bounded (LRU).
    """

    def __init__(self, limit: int = 8192):
        self.limit = limit
        self._bytes: OrderedDict[str, bytes] = OrderedDict()

    def encode(self, datapath, flow: Flow) -> bytes:
        key = repr(flow)
        buf = self._bytes.get(key)
        if buf is None:
            msg = flow_mod(datapath, flow)
            msg.xid = 0
            msg.serialize()
            buf = self._bytes[key] = bytes(msg.buf)
            if len(self._bytes) > self.limit:
                self._bytes.popitem(last=False)
        else:
            self._bytes.move_to_end(key)
        return buf

    def message(self, datapath, flow: Flow) -> bytes:
        """The flow-mod, ready to send, with the datapath's next xid."""
        datapath.xid = (datapath.xid + 1) & datapath.ofproto.MAX_XID
        buf = bytearray(self.encode(datapath, flow))
        struct.pack_into("!I", buf, 4, datapath.xid)
        return bytes(buf)


def serialized(datapath, msg) -> bytes:
    """Any os-ken message, ready to send (with the datapath's next xid)."""
    return encoded(datapath, msg)[1]


def encoded(datapath, msg) -> tuple[int, bytes]:
    """Any os-ken message, serialized with the datapath's next xid: (xid, bytes)."""
    datapath.set_xid(msg)
    msg.serialize()
    return msg.xid, bytes(msg.buf)
