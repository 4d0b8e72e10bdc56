"""Exercise 03: the tunnel between virtual routers (a solution). See README.md."""


def encapsulate(router, destination):
    """A VM on `router` sends to `destination`, a VM on another host: the VXLAN header."""
    # the packet travels in the destination's VPC (a VM only reaches its own VPC), and the
    # outer destination is the host the mapping places that VM on
    return {"vni": destination["vni"], "remote_ip": destination["host_ip"]}


def deliver(router, arrival):
    """A packet came out of the tunnel on `router`: the port of the VM it is for, or None."""
    for vm in router["ports"]:
        # the VNI says which VPC; within it, the address (and MAC) say which VM
        if (vm["vni"] == arrival["vni"] and vm["ip"] == arrival["dst_ip"]
                and vm["mac"] == arrival["dst_mac"]):
            return vm["port"]
    return None                     # no VM of that VPC here: drop it
