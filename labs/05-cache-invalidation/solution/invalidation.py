"""Exercise 05: what the mapping service tells the routers when a VM moves (a solution)."""


def on_move(move, routers):
    entry = {"vpc": move["vpc"], "ip": move["ip"]}
    messages = []
    for host, router in sorted(routers.items()):
        if entry not in router["cached"]:
            continue                    # a router that never cached it has nothing to forget
        messages.append({"router": host, "message": "invalidate", **entry})
        messages.append({"router": host, "message": "barrier"})     # after the invalidate
    return messages
