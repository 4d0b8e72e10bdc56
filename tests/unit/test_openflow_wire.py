"""Exercise 05's evidence of a router's control connection: OpenFlow 1.3 messages read
back from TCP segments (out of order, retransmitted, a message split over segments or
two in one, a gap), both directions merged by time, and from a real pcap file."""
from ipaddress import IPv4Address

from vpclab.classroom.openflow_wire import (
    BARRIER_REPLY, BARRIER_REQUEST, ECHO_REQUEST, FLOW_MOD, Message, Segment, messages, read,
)
from vpclab.router.pipeline import mapping_cookie

COOKIE = mapping_cookie(1001, IPv4Address("10.0.0.185"))


def header(kind: int, length: int, xid: int) -> bytes:
    return bytes([4, kind]) + length.to_bytes(2, "big") + xid.to_bytes(4, "big")


def flow_mod(xid: int, cookie: int, command: int) -> bytes:
    """An OFPT_FLOW_MOD (56 bytes with no match fields and instructions to speak of)."""
    body = cookie.to_bytes(8, "big") + (0xFFFFFFFFFFFFFFFF).to_bytes(8, "big") \
        + bytes([0xFF, command]) + bytes(30)
    return header(FLOW_MOD, 8 + len(body), xid) + body


def barrier(kind: int, xid: int) -> bytes:
    return header(kind, 8, xid)


def test_a_delete_and_a_barrier_are_read_with_the_cookie_and_the_xid():
    to_router = flow_mod(7, COOKIE, 3) + barrier(BARRIER_REQUEST, 8)
    got = messages([Segment(1.0, True, 1000, to_router), Segment(1.5, False, 50, barrier(BARRIER_REPLY, 8))])
    assert [(m.name, m.to_router, m.xid, m.deletes, m.at) for m in got] == [
        ("FLOW_MOD", True, 7, COOKIE, 1.0), ("BARRIER_REQUEST", True, 8, None, 1.0),
        ("BARRIER_REPLY", False, 8, None, 1.5)]
    assert got[0].describe(0.5, "host1", {COOKIE: "ZIGI-VM2's entry"}) == \
        f"+0.500 s  service -> host1: FLOW_MOD delete cookie={COOKIE:#x} (ZIGI-VM2's entry)"
    assert got[2].describe(0.5, "host1", {}) == "+1.000 s  host1 -> service: BARRIER_REPLY xid=0x8"


def test_a_flow_mod_that_adds_deletes_nothing():
    add, = messages([Segment(0.0, True, 1, flow_mod(1, COOKIE, 0))])
    assert add.kind == FLOW_MOD and add.deletes is None


def test_segments_out_of_order_retransmitted_and_split_are_put_back_in_stream_order():
    data = barrier(BARRIER_REQUEST, 1) + flow_mod(2, COOKIE, 3) + barrier(BARRIER_REQUEST, 3)
    first, second, third = data[:8], data[8:30], data[30:]
    seq = 2**32 - 10                                   # the sequence numbers wrap around
    got = messages([Segment(1.0, True, seq, first),
                    Segment(3.0, True, (seq + 30) % 2**32, third),     # seen before the 2nd
                    Segment(2.0, True, (seq + 8) % 2**32, second),
                    Segment(4.0, True, (seq + 8) % 2**32, second)])    # retransmitted
    assert [(m.kind, m.xid, m.at) for m in got] == [
        (BARRIER_REQUEST, 1, 1.0), (FLOW_MOD, 2, 2.0), (BARRIER_REQUEST, 3, 3.0)]


def test_the_two_directions_keep_their_own_order_and_merge_by_time():
    got = messages([Segment(2.0, False, 5, barrier(BARRIER_REPLY, 9)),
                    Segment(1.0, True, 100, barrier(BARRIER_REQUEST, 9)),
                    Segment(3.0, True, 108, header(ECHO_REQUEST, 8, 10))])
    assert [m.name for m in got] == ["BARRIER_REQUEST", "BARRIER_REPLY", "ECHO_REQUEST"]


def test_a_stream_caught_mid_message_or_after_a_gap_is_read_only_as_far_as_it_is_whole():
    data = flow_mod(2, COOKIE, 3)
    assert messages([Segment(1.0, True, 1, data[10:])]) == []          # no boundary
    assert messages([Segment(1.0, True, 1, data[:20])]) == []          # cut short
    whole = barrier(BARRIER_REQUEST, 1)
    got = messages([Segment(1.0, True, 1, whole), Segment(2.0, True, 1 + 8 + 4, data[4:])])
    assert [m.xid for m in got] == [1]                                 # 4 bytes never seen
    assert messages([Segment(1.0, True, 1, bytes([1, 0, 0, 8, 0, 0, 0, 1]))]) == []   # OF 1.0


def test_a_pcap_of_a_control_connection_is_read_with_its_ethernet_padding_cut(tmp_path):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap
    service, router = "192.168.200.254", "192.168.200.1"
    frames = [Ether() / IP(src=service, dst=router) / TCP(sport=6653, dport=40000, seq=10)
              / Raw(flow_mod(5, COOKIE, 3)),
              Ether() / IP(src=router, dst=service) / TCP(sport=40000, dport=6653, seq=99)
              / Raw(barrier(BARRIER_REPLY, 6)) / Raw(bytes(20)),      # padding past IP's length
              Ether() / IP(src=service, dst=router) / TCP(sport=6653, dport=40000, seq=66)
              / Raw(barrier(BARRIER_REQUEST, 6))]
    frames[1][IP].len = 20 + 20 + 8
    for at, frame in zip((1.0, 1.2, 1.1), frames):
        frame.time = at
    wrpcap(str(tmp_path / "of.pcap"), frames)
    got = read(tmp_path / "of.pcap")
    assert [(m.name, m.to_router, m.xid) for m in got] == [
        ("FLOW_MOD", True, 5), ("BARRIER_REQUEST", True, 6), ("BARRIER_REPLY", False, 6)]
    assert got[0].deletes == COOKIE and isinstance(got[0], Message)
    assert read(tmp_path / "missing.pcap") == []


def test_a_packed_packet_out_is_what_os_ken_serializes():
    """ofmsg.packet_out (struct) gives the bytes of os-ken's builders, xid included."""
    from types import SimpleNamespace

    from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

    from ryu_apps import ofmsg

    dp = SimpleNamespace(ofproto=ofproto_v1_3, ofproto_parser=ofproto_v1_3_parser, xid=41)
    dp.set_xid = lambda msg: (setattr(dp, "xid", dp.xid + 1), msg.set_xid(dp.xid))
    frame = bytes(range(60))
    for build, args in [(ofmsg.packet_to_port, (7, frame)), (ofmsg.resubmit_packet, (3, frame))]:
        dp.xid = 41
        expected = ofmsg.serialized(dp, build(dp, *args))
        dp.xid = 41
        in_port, port = ((ofproto_v1_3.OFPP_CONTROLLER, 7) if build is ofmsg.packet_to_port
                         else (3, ofproto_v1_3.OFPP_TABLE))
        assert ofmsg.packet_out(dp, in_port, port, frame) == expected and dp.xid == 42
