"""Exercise 02: the virtual router's answer to an ARP miss (a solution)."""
from ryu.lib.packet import arp, ether_types, ethernet, packet


def answer_arp(miss, mappings):
    request = packet.Packet(miss["frame"]).get_protocol(arp.arp)
    # the VPC decides, not the address alone: another VPC may have the same one
    found = next((m for m in mappings
                  if m["vpc"] == miss["vpc"] and m["ip"] == request.dst_ip), None)
    if found is None:
        return None                         # nobody has it in this VPC: say nothing
    reply = packet.Packet()
    reply.add_protocol(ethernet.ethernet(dst=request.src_mac, src=found["mac"],
                                         ethertype=ether_types.ETH_TYPE_ARP))
    reply.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=found["mac"], src_ip=found["ip"],
                               dst_mac=request.src_mac, dst_ip=request.src_ip))
    reply.serialize()
    return {"send": [{"port": "in_port", "frame": bytes(reply.data)}],
            "cache": [{"router": miss["router"], "vpc": miss["vpc"], "ip": found["ip"]}]}
