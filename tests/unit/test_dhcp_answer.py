"""The virtual router's DHCP answers, to client messages shaped as busybox udhcpc and ISC
dhclient send them, parsed back with scapy field by field (both checksums included)."""
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from ryu_apps import dhcp_answer
from ryu_apps.dhcp_answer import Lease
from vpclab.model.topology import ROUTER_MAC

CLIENT = "02:00:0a:32:02:14"
OTHER = "02:00:0a:32:02:15"
CHADDR = bytes.fromhex(CLIENT.replace(":", "")) + b"\x00" * 10
BCAST = "ff:ff:ff:ff:ff:ff"
LEASE = Lease(ip=IPv4Address("10.50.2.20"), network=IPv4Network("10.50.2.0/24"),
              router=IPv4Address("10.50.2.1"), dns=IPv4Address("10.50.0.2"), mtu=1450,
              server_mac=ROUTER_MAC, server_ip=IPv4Address("10.50.2.1"), lease_seconds=3600,
              hostname="app-1", domain="shop.internal")
UDHCPC_PRL = [1, 3, 6, 12, 15, 28, 42]
DHCLIENT_PRL = [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42]
CLIENT_ID = b"\x01" + bytes.fromhex(CLIENT.replace(":", ""))


def client(options, src="0.0.0.0", dst="255.255.255.255", ciaddr="0.0.0.0", mac=CLIENT,
           eth_dst=BCAST, xid=0x5EED1234, flags=0, giaddr="0.0.0.0", op=1, chaddr=CHADDR,
           sport=68, dport=67):
    return bytes(Ether(src=mac, dst=eth_dst) / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) /
                 BOOTP(op=op, xid=xid, flags=flags, ciaddr=ciaddr, giaddr=giaddr, chaddr=chaddr) /
                 DHCP(options=options + ["end"]))


def udhcpc_discover(**kw):
    return client([("message-type", "discover"), ("client_id", CLIENT_ID), ("max_dhcp_size", 576),
                   ("param_req_list", UDHCPC_PRL), ("vendor_class_id", b"udhcp 1.35.0")], **kw)


def udhcpc_select(requested="10.50.2.20", server="10.50.2.1", **kw):
    return client([("message-type", "request"), ("client_id", CLIENT_ID), ("requested_addr", requested),
                   ("server_id", server), ("param_req_list", UDHCPC_PRL)], **kw)


def udhcpc_renew(ciaddr="10.50.2.20"):
    """RENEWING: unicast to the server from the leased address, ciaddr set, no options 50/54."""
    return client([("message-type", "request"), ("client_id", CLIENT_ID), ("param_req_list", UDHCPC_PRL)],
                  src=ciaddr, dst="10.50.2.1", ciaddr=ciaddr, eth_dst=ROUTER_MAC)


def dhclient_discover():
    return client([("message-type", "discover"), ("hostname", b"app-1"),
                   ("param_req_list", DHCLIENT_PRL)], flags=0x8000)


def dhclient_init_reboot(requested="10.50.2.20"):
    """INIT-REBOOT: dhclient asks for its last address, without a server id."""
    return client([("message-type", "request"), ("requested_addr", requested),
                   ("param_req_list", DHCLIENT_PRL)])


def parsed(frame: bytes) -> Ether:
    assert frame is not None
    return Ether(frame)


def options(pkt) -> dict:
    return {o[0]: o[1] for o in pkt[DHCP].options if isinstance(o, tuple)}


def assert_checksums_right(pkt):
    again = pkt.copy()
    del again[IP].chksum, again[UDP].chksum
    rebuilt = Ether(bytes(again))
    assert (pkt[IP].chksum, pkt[UDP].chksum) == (rebuilt[IP].chksum, rebuilt[UDP].chksum)
    assert pkt[UDP].chksum != 0


def assert_framed_from_router(pkt):
    assert (pkt[Ether].src, pkt[Ether].dst) == (ROUTER_MAC, CLIENT)
    assert (pkt[IP].src, pkt[IP].dst, pkt[IP].ttl) == ("10.50.2.1", "255.255.255.255", 64)
    assert (pkt[UDP].sport, pkt[UDP].dport) == (67, 68)
    assert len(pkt[UDP].payload) >= 300
    assert_checksums_right(pkt)


FULL_OPTIONS = {"server_id": "10.50.2.1", "lease_time": 3600, "subnet_mask": "255.255.255.0",
                "router": "10.50.2.1", "name_server": "10.50.0.2", "interface-mtu": 1450,
                "broadcast_address": "10.50.2.255", "hostname": b"app-1", "domain": b"shop.internal"}


@pytest.mark.parametrize("discover", [udhcpc_discover, dhclient_discover])
def test_a_discover_gets_an_offer_of_the_mapping_s_address_with_every_option(discover):
    sent = Ether(discover())
    pkt = parsed(dhcp_answer.reply(bytes(sent), CLIENT, LEASE))
    assert_framed_from_router(pkt)
    bootp = pkt[BOOTP]
    assert (bootp.op, bootp.htype, bootp.hlen, bootp.xid, bootp.flags) == (2, 1, 6, 0x5EED1234, sent[BOOTP].flags)
    assert (bootp.yiaddr, bootp.ciaddr, bootp.siaddr, bootp.giaddr) == ("10.50.2.20", "0.0.0.0", "0.0.0.0", "0.0.0.0")
    assert bootp.chaddr == CHADDR
    assert options(pkt) == {"message-type": 2, **FULL_OPTIONS}
    assert pkt[DHCP].options[0] == ("message-type", 2)
    assert "end" in pkt[DHCP].options


def test_the_broadcast_flag_and_a_relay_s_giaddr_are_echoed():
    pkt = parsed(dhcp_answer.reply(udhcpc_discover(flags=0x8000, giaddr="10.50.2.254"), CLIENT, LEASE))
    assert (pkt[BOOTP].flags, pkt[BOOTP].giaddr) == (0x8000, "10.50.2.254")


def test_without_hostname_and_domain_those_options_are_left_out():
    lease = replace(LEASE, hostname=None, domain=None)
    got = options(parsed(dhcp_answer.reply(udhcpc_discover(), CLIENT, lease)))
    assert "hostname" not in got and "domain" not in got
    assert got["name_server"] == "10.50.0.2"


@pytest.mark.parametrize("request_frame", [udhcpc_select(), dhclient_init_reboot(), udhcpc_renew()],
                         ids=["selecting", "init-reboot", "renewing"])
def test_a_request_for_the_lease_s_address_is_acked(request_frame):
    pkt = parsed(dhcp_answer.reply(request_frame, CLIENT, LEASE))
    assert_framed_from_router(pkt)
    assert options(pkt) == {"message-type": 5, **FULL_OPTIONS}
    assert (pkt[BOOTP].yiaddr, pkt[BOOTP].xid, pkt[BOOTP].chaddr) == ("10.50.2.20", 0x5EED1234, CHADDR)
    assert pkt[BOOTP].ciaddr == Ether(request_frame)[BOOTP].ciaddr     # echoed when renewing


@pytest.mark.parametrize("request_frame", [udhcpc_select(requested="10.50.2.99"),
                                           dhclient_init_reboot("10.50.7.7"), udhcpc_renew("10.50.2.21")],
                         ids=["selecting", "init-reboot", "renewing"])
def test_a_request_for_another_address_is_naked(request_frame):
    pkt = parsed(dhcp_answer.reply(request_frame, CLIENT, LEASE))
    assert_framed_from_router(pkt)
    assert options(pkt) == {"message-type": 6, "server_id": "10.50.2.1"}
    assert (pkt[BOOTP].yiaddr, pkt[BOOTP].ciaddr) == ("0.0.0.0", "0.0.0.0")


def test_a_request_to_another_server_or_for_nothing_gets_no_answer():
    assert dhcp_answer.reply(udhcpc_select(server="10.50.2.5"), CLIENT, LEASE) is None
    assert dhcp_answer.reply(client([("message-type", "request")]), CLIENT, LEASE) is None


@pytest.mark.parametrize("kind", ["release", "decline", "inform", "offer", "ack"])
def test_other_client_messages_get_no_answer(kind):
    assert dhcp_answer.reply(client([("message-type", kind), ("server_id", "10.50.2.1")]), CLIENT, LEASE) is None


def test_what_is_not_this_client_s_dhcp_gets_no_answer():
    frames = {
        "another MAC": udhcpc_discover(mac=OTHER),
        "another chaddr": udhcpc_discover(chaddr=bytes.fromhex(OTHER.replace(":", "")) + b"\x00" * 10),
        "a BOOTREPLY": udhcpc_discover(op=2),
        "wrong ports": udhcpc_discover(sport=67, dport=68),
        "no message type": client([("param_req_list", UDHCPC_PRL)]),
        "cut short": udhcpc_discover()[:-60],
        "tagged": bytes(Ether(src=CLIENT, dst=BCAST) / Dot1Q(vlan=5) / Ether(udhcpc_discover())[IP]),
        "a fragment": bytes(Ether(src=CLIENT, dst=BCAST) / IP(bytes(Ether(udhcpc_discover())[IP]), flags=1)),
        "an option past the end": bytes(Ether(src=CLIENT, dst=BCAST) / IP(src="0.0.0.0", dst="255.255.255.255") /
                                         UDP(sport=68, dport=67) / BOOTP(chaddr=CHADDR) /
                                         Raw(b"\x63\x82\x53\x63\x35\x01\x01\x0c\x09ab")),
        "not IPv4": bytes(Ether(src=CLIENT, dst=BCAST, type=0x86DD) / (b"\x00" * 300)),
    }
    answers = {why: dhcp_answer.reply(frame, CLIENT, LEASE) for why, frame in frames.items()}
    assert answers == {why: None for why in frames}


def test_a_frame_padded_on_the_wire_is_read_by_its_ip_length():
    pkt = parsed(dhcp_answer.reply(udhcpc_discover() + b"\x00" * 20, CLIENT, LEASE))
    assert options(pkt)["message-type"] == 2


def test_an_option_longer_than_255_bytes_is_refused():
    with pytest.raises(ValueError):
        dhcp_answer.reply(udhcpc_discover(), CLIENT, replace(LEASE, domain="x" * 256))
