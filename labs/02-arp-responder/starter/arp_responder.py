"""Exercise 02: the virtual router's answer to an ARP miss. See labs/02-arp-responder/README.md.

A VM asked "who has IP?" and its router had no entry: the router sent the request to the
mapping service, which calls this function. Nothing is broadcast in a VPC.

    miss:     {"router": "host1", "in_port": 5, "vpc": "ZIGI-VPC1", "vni": 1001,
               "frame": b"..."}                      # the ARP request, as bytes
    mappings: [{"vpc": "ZIGI-VPC1", "vni": 1001, "ip": "10.0.0.185", "mac": "02:...",
                "eni": "eni-...", "host": "host2"}, ...]   # every VPC's mappings

Return None to say nothing, or a dict:

    {"send":  [{"port": "in_port" | "flood" | PORT_NUMBER, "frame": bytes}, ...],
     "cache": [{"router": HOST, "vpc": VPC, "ip": IP}, ...]}

"send" puts frames out of the asking router's ports; "cache" installs the (VPC, IP) entry
on the router of HOST, which will then answer that address itself (and forward to it).
"""
from ryu.lib.packet import arp, ether_types, ethernet, packet   # os_ken.lib.packet works too


def answer_arp(miss, mappings):
    request = packet.Packet(miss["frame"]).get_protocol(arp.arp)
    # TODO 1: find, in `mappings`, the VM the request asks about (request.dst_ip is its
    #         address). `mappings` holds every VPC's VMs, and two VPCs may use the same
    #         address: which one does the asker mean?
    # TODO 2: build the ARP reply the owner of that address would send:
    #         reply = packet.Packet(); reply.add_protocol(ethernet.ethernet(...));
    #         reply.add_protocol(arp.arp(opcode=arp.ARP_REPLY, ...)); reply.serialize()
    # TODO 3: send bytes(reply.data) back to the VM that asked, and cache the entry
    return None
