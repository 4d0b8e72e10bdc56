"""Exercise 05: what the mapping service tells the routers when a VM moves.
See labs/05-cache-invalidation/README.md.

A VM moved to another host (it keeps its IP and MAC). Routers that cached its entry
still tunnel its packets to the host it left, where nobody answers any more. The mapping
service calls this function once per moved VM, after changing its own table and before
reporting the move done.

    move:    {"vpc": "ZIGI-VPC1", "vni": 1001, "ip": "10.0.0.185", "mac": "02:...",
              "eni": "eni-...", "host": "host3", "host_ip": "192.168.100.3",   # after
              "from_host": "host2", "from_host_ip": "192.168.100.2",
              "to_host": "host3", "to_host_ip": "192.168.100.3"}
    routers: {"host1": {"connected": True,
                        "cached": [{"vpc": "ZIGI-VPC1", "ip": "10.0.0.185"}, ...]},
              "host2": {...}, ...}                # every router, and what it caches now

Return the messages to send, in the order they are to be sent:

    [{"router": HOST, "message": "invalidate", "vpc": VPC, "ip": IP},   # forget that entry
     {"router": HOST, "message": "barrier"}, ...]                        # confirm all before

"invalidate" deletes the (VPC, IP) entry from that router (its next packet asks the
mapping service again, and gets the new host). "barrier" asks that router to answer once
it has carried out everything sent to it before: the move is reported done when every
barrier is answered.
"""


def on_move(move, routers):
    # TODO 1: which routers cache the moved VM's entry (its VPC and IP)? `routers` says
    #         what each one caches now.
    # TODO 2: tell each of them, and only them, to invalidate that entry.
    # TODO 3: the move is done when those routers have let go of the old entry: how
    #         does the service learn that from each of them?
    return []
