"""Draw correct-run.svg, the README's sequence diagram: the solution in the seed's variant.

    sudo .venv/bin/python labs/06-receive-check/make_diagram.py

The rogue (host3) sends a VXLAN packet claiming ZIGI-VM1's address to ZIGI-VM2 (refused:
no packet reaches ZIGI-VM2), then ZIGI-VM1 pings ZIGI-VM2 (accepted: the echo request's
packet-in at host2's router is the solution's check_source). The injection runs outside
lab.exec, so the diagram's title names only the ping.
"""
import subprocess
import tempfile
from pathlib import Path

from vpclab import Lab
from vpclab.classroom import forge
from vpclab.classroom.exercises import exercise

HERE = Path(__file__).resolve().parent
ex06 = exercise(6).module
variant = exercise(6).variant(None)
topology = {**ex06.topology(variant), "name": "ex06-diagram"}
with Lab(topology, learner={"check_source": HERE / "solution" / ex06.LEARNER}) as lab, \
        tempfile.TemporaryDirectory() as tmp:
    nodes = lab.nodes()
    vni = topology["vpcs"][ex06.VPC]["vni"]
    one, two = nodes["ZIGI-VM1"], nodes["ZIGI-VM2"]
    payload = ex06.vxlan_payload(vni, one, two, one["ip"], "forged")
    with lab.capture(["ZIGI-VM1", "ZIGI-VM2"], Path(tmp) / "run", filter="icmp or arp") as cap:
        subprocess.run(forge.send_command(lab, "host3", payload, "host2"), check=True)
        lab.exec("ZIGI-VM1", "ping", "-c", "1", "-W", "2", two["ip"], check=True)
    print(cap.diagram(HERE / "correct-run.svg"))
