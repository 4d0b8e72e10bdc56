"""The service answers an ARP miss for a known target itself, with the reply the router's
ARP entry gives (its own actions applied to the request), sent before the entry's
flow-mods; anything it cannot reproduce is resubmitted through the router's tables."""
import struct
from ipaddress import IPv4Address
from types import SimpleNamespace

from os_ken.ofproto import ofproto_v1_3
from scapy.layers.l2 import ARP, Dot1Q, Ether

from ryu_apps import arp_reply
from tests.unit.test_service_changes import service
from vpclab.router.mapping import Mapping
from vpclab.router.pipeline import ARP as ARP_TABLE
from vpclab.router.pipeline.arp import arp_responder_actions
from vpclab.router.pipeline.tables import OFPP_IN_PORT

ASKER_MAC, ASKER_IP = "02:00:0a:00:00:05", "10.0.0.5"
TARGET = Mapping("vpc1", 100, "eni-7", IPv4Address("10.0.0.7"), "02:00:0a:00:00:07", "host2",
                 IPv4Address("192.168.0.2"))


def request(target: str = "10.0.0.7", tag: bool = False, mac: str = ASKER_MAC,
            ip: str = ASKER_IP) -> bytes:
    eth = Ether(dst="ff:ff:ff:ff:ff:ff", src=mac)
    return bytes((eth / Dot1Q(vlan=5) if tag else eth) / ARP(op=1, hwsrc=mac, psrc=ip, pdst=target))


def expected_reply(mapping: Mapping, mac: str = ASKER_MAC, ip: str = ASKER_IP) -> bytes:
    return bytes(Ether(dst=mac, src=mapping.mac) /
                 ARP(op=2, hwsrc=mapping.mac, psrc=str(mapping.ip), hwdst=mac, pdst=ip))


def test_the_entry_s_actions_make_the_reply():
    assert arp_reply.reply(request(), 3, arp_responder_actions(TARGET)) == (3, expected_reply(TARGET))


def test_the_padding_a_router_would_keep_is_kept():
    padded = request() + b"\x00" * 18              # a 60-byte frame off the wire
    port, frame = arp_reply.reply(padded, 3, arp_responder_actions(TARGET))
    assert frame == expected_reply(TARGET) + b"\x00" * 18


def test_what_it_cannot_reproduce_is_none():
    actions = arp_responder_actions(TARGET)
    assert arp_reply.reply(request(tag=True), 3, actions) is None            # a tagged frame
    assert arp_reply.reply(request()[:41], 3, actions) is None               # cut short
    assert arp_reply.reply(request(), 3, (("set", "tunnel_id", 5),) + actions) is None
    assert arp_reply.reply(request(), 3, (("move", "arp_sha", "arp_tha", 24),) + actions) is None
    assert arp_reply.reply(request(), 3, actions[:-1]) is None                # no output
    assert arp_reply.reply(request(), 3, (("output", 9),)) == (9, request())
    assert actions[-1] == ("output", OFPP_IN_PORT)


def sent_by_service(svc, port, target: IPv4Address) -> list[bytes]:
    """An ARP miss for `target` from the VM on `port`: the messages its router gets."""
    dpid = next(d for d, r in svc.inventory.routers().items() if port in r.ports)
    data = request(str(target), mac=port.mapping.mac, ip=str(port.mapping.ip))
    msg = SimpleNamespace(datapath=svc.datapaths[dpid], table_id=ARP_TABLE, data=data,
                          match={"in_port": port.ofport, "metadata": port.mapping.vni})
    svc.packet_in(SimpleNamespace(msg=msg))
    return svc.outboxes[dpid].sent


def parsed(raw: bytes) -> SimpleNamespace:
    """A packet-out with output actions (os-ken parses none): its ports and its frame."""
    in_port, actions_len = struct.unpack_from("!IH", raw, 12)
    actions = raw[24:24 + actions_len]
    ports = [struct.unpack_from("!HHI", actions, i)[2] for i in range(0, actions_len, 16)]
    return SimpleNamespace(in_port=in_port, ports=ports, data=raw[24 + actions_len:])


def test_the_service_sends_the_reply_first_then_the_entry(seed, tmp_path):
    svc = service(seed, tmp_path)
    table = svc.inventory.table()
    router = next(r for r in svc.inventory.routers().values() if r.host == "host1")
    target = next(m for m in table.in_vpcs(router.vnis)
                  if m.vni == router.ports[0].mapping.vni and m.host != "host1")
    port = router.ports[0]
    sent = sent_by_service(svc, port, target.ip)
    kinds = [m[1] for m in sent]
    assert kinds[0] == ofproto_v1_3.OFPT_PACKET_OUT and kinds.count(ofproto_v1_3.OFPT_PACKET_OUT) == 1
    assert set(kinds[1:]) == {ofproto_v1_3.OFPT_FLOW_MOD}
    out = parsed(sent[0])
    assert bytes(out.data) == expected_reply(target, port.mapping.mac, str(port.mapping.ip))
    assert out.ports == [port.ofport] and out.in_port == ofproto_v1_3.OFPP_CONTROLLER


def test_an_unknown_target_still_gets_no_answer(seed, tmp_path):
    svc = service(seed, tmp_path)
    router = next(r for r in svc.inventory.routers().values() if r.host == "host1")
    sent = sent_by_service(svc, router.ports[0], IPv4Address("10.99.0.1"))
    assert [m[1] for m in sent] == [ofproto_v1_3.OFPT_FLOW_MOD]       # the negative entry only
