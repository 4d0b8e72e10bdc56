"""Exercise 03: the tunnel between virtual routers. See labs/03-encapsulation/README.md.

A VM sends to a VM on another host: its router puts the packet in a VXLAN tunnel, and the
router at the other end takes it out and hands it to one of its VMs. You write both ends.
The mapping service asks each question once and installs your answer as the routers'
flows (a None, an error or an answer it cannot use: that flow drops).

    router:      {"host": "host1", "underlay_ip": "192.168.100.1",
                  "ports": [{"port": 1, "vpc": "ZIGI-VPC1", "vni": 1001, "ip": "10.0.0.148",
                             "mac": "02:...", "eni": "eni-...", "host": "host1",
                             "host_ip": "192.168.100.1"}, ...]}       # the router's own VMs
    destination: {"vpc": "ZIGI-VPC1", "vni": 1001, "ip": "10.0.0.185", "mac": "02:...",
                  "eni": "eni-...", "host": "host2", "host_ip": "192.168.100.2"}
                                                   # the mapping of the VM the packet is for
    arrival:     {"vni": 1001, "dst_ip": "10.0.0.185", "dst_mac": "02:..."}
                                                   # all a VXLAN receiver reads from a packet
"""


def encapsulate(router, destination):
    """A VM on `router` sends to `destination`, a VM on another host: the VXLAN header.
    Return {"vni": NUMBER, "remote_ip": "A.B.C.D"}."""
    # TODO 1: the VNI: which VPC is the packet travelling in?
    # TODO 2: remote_ip, the outer destination: which host must the packet reach?
    return None


def deliver(router, arrival):
    """A packet came out of the tunnel on `router`: the port of the VM it is for, or None
    (drop it)."""
    # TODO 3: find, among router["ports"], the VM this packet is for. Two VPCs may use the
    #         same addresses, even on the same host: what tells them apart here?
    return None
