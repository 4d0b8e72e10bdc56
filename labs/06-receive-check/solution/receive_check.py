"""Exercise 06: the receiving router's check of a tunnelled packet's sender (a solution)."""


def check_source(router, arrival, mappings):
    # the VM the packet claims to come from, in the VPC its VNI names (another VPC may use
    # the same address)
    sender = next((m for m in mappings
                   if m["vni"] == arrival["vni"] and m["ip"] == arrival["src_ip"]), None)
    if sender is None:
        return False                        # nobody in this VPC has that address
    # believed only if it came from the host that VM lives on
    return sender["host_ip"] == arrival["outer_src"]
