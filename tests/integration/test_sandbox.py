"""A learner's ARP answer, run the way the mapping service will run it: from a root process
inside a lab's network namespace, with the lab's own mappings, through vpclab.sandbox; the
learner's process is not in that namespace (it cannot reach the lab's OpenFlow listener)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from os_ken.lib.packet import arp, ethernet, packet
from tests.integration.labtools import REPO, SEED
from vpclab.model.plan import CONTROLLER_IP, CONTROLLER_PORT

ANSWER_ARP = textwrap.dedent('''\
    from ryu.lib.packet import packet, ethernet, arp
    from ryu.ofproto import ether

    def answer_arp(miss, mappings):
        mac = {m["ip"]: m["mac"] for m in mappings if m["vpc"] == miss["vpc"]}[miss["target_ip"]]
        reply = packet.Packet()
        reply.add_protocol(ethernet.ethernet(dst=miss["src_mac"], src=mac,
                                             ethertype=ether.ETH_TYPE_ARP))
        reply.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=mac, src_ip=miss["target_ip"],
                                   dst_mac=miss["src_mac"], dst_ip=miss["src_ip"]))
        reply.serialize()
        return reply.data
''')

# what a hostile file would try: the lab's interfaces, the lab's OpenFlow listener
PROBES = textwrap.dedent('''\

    def interfaces():
        import socket
        return sorted(name for _, name in socket.if_nameindex())

    def reach(host, port):
        import socket
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError as exc:
            return type(exc).__name__ + ": " + str(exc)
        return "connected"
''')

# runs as root inside the lab's namespace, as the mapping service does
DRIVER = textwrap.dedent('''\
    import json, os, socket, sys
    from vpclab.sandbox import LearnerCode
    miss, mappings, source, listener = json.loads(sys.stdin.read())
    socket.create_connection(tuple(listener), timeout=5).close()   # the lab's: reachable here
    with LearnerCode(source, "answer_arp.py") as code:
        pid = code.pid
        status = open(f"/proc/{pid}/status").read()
        uid = int(next(l for l in status.splitlines() if l.startswith("Uid:")).split()[1])
        same_netns = os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")
        frame = code.call("answer_arp", miss, mappings)
        interfaces, reach = code.call("interfaces"), code.call("reach", *listener)
    print(json.dumps({"frame": frame.hex(), "uid": uid, "same_netns": same_netns,
                      "interfaces": interfaces, "reach": reach,
                      "lab_interfaces": len(socket.if_nameindex()),
                      "left": os.path.exists(f"/proc/{pid}")}))
''')


def test_a_learners_arp_answer_runs_unprivileged_from_the_labs_namespace(vpclab_lab):
    lab = vpclab_lab(SEED)
    vm1, vm2 = lab.mapping("ZIGI-VPC1", "10.0.0.148"), lab.mapping("ZIGI-VPC1", "10.0.0.185")
    miss = {"vpc": "ZIGI-VPC1", "src_mac": vm1["mac"], "src_ip": "10.0.0.148",
            "target_ip": "10.0.0.185"}
    in_lab = ["ip", "netns", "exec", lab.state.namespace, sys.executable, "-c", DRIVER]
    listener = [str(CONTROLLER_IP), CONTROLLER_PORT]        # os-ken's OpenFlow listener
    done = subprocess.run(in_lab,
                          input=json.dumps([miss, lab.mappings(), ANSWER_ARP + PROBES, listener]),
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["uid"] != 0 and not result["left"]
    # its own network namespace: a loopback (down) and nothing of the lab's
    assert not result["same_netns"] and result["interfaces"] == ["lo"]
    assert result["lab_interfaces"] > 1
    assert result["reach"].startswith("OSError: [Errno 101] Network is unreachable")
    reply = packet.Packet(bytes.fromhex(result["frame"]))
    assert reply.get_protocol(ethernet.ethernet).dst == vm1["mac"]
    answer = reply.get_protocol(arp.arp)
    assert (answer.opcode, answer.src_mac, answer.src_ip, answer.dst_ip) == (
        arp.ARP_REPLY, vm2["mac"], "10.0.0.185", "10.0.0.148")
