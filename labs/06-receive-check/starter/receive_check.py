"""Exercise 06: the receiving router's check of a tunnelled packet's sender. See
labs/06-receive-check/README.md.

A tunnelled packet reached a virtual router (VXLAN: a VNI, then the inner Ethernet frame)
and the router has not verified its sender yet, so it asks this function. Anyone on the
underlay can send such a packet and write any inner source into it; only the outer source,
the underlay address of the host that sent it, is the network's to say.

    router:   {"host": "host2", "underlay_ip": "192.168.100.2",   # the RECEIVING router
               "ports": [{"port": 1, "vpc": ..., "ip": ..., ...}, ...]}   # its VMs
    arrival:  {"vni": 1001,                       # the VXLAN header's VNI: which VPC
               "outer_src": "192.168.100.3",      # the underlay IP the packet came from
               "src_ip": "10.0.0.148", "src_mac": "02:...",   # the inner source it claims
               "dst_ip": "10.0.0.185", "dst_mac": "02:..."}   # the inner destination
    mappings: [{"vpc": "ZIGI-VPC1", "vni": 1001, "ip": "10.0.0.148", "mac": "02:...",
                "eni": "eni-...", "host": "host1", "host_ip": "192.168.100.1"}, ...]
                                                  # every VPC's VMs, and where each lives

Return True to deliver the packet (the router then remembers a true sender and passes its
next packets itself), or False to drop it (the router counts it: receive_check_failed).
"""


def check_source(router, arrival, mappings):
    # TODO 1: find, in `mappings`, the VM the packet claims to come from. Two VPCs may use
    #         the same addresses: which VPC is this packet in?
    # TODO 2: where does that VM live, and where did this packet come from?
    # TODO 3: decide. A router without a check accepts everything, forged packets too:
    return True
