"""Draw correct-run.svg, the README's sequence diagram: the solution in the seed's variant.

    sudo .venv/bin/python labs/05-cache-invalidation/make_diagram.py

The check's warm-up (host1 and host3 cache ZIGI-VM2; host1 and host4 its twin OTHER-VM2),
ZIGI-VM2 moves to host3 (the solution's on_move invalidates ZIGI-VM2's entry on host1 and
host3, each followed by a barrier), then the captured ping: ZIGI-VM1
still knows ZIGI-VM2's MAC, so no ARP; host1's router misses on the ICMP request, asks
the mapping service and tunnels it to host3.
"""
import tempfile
from pathlib import Path

from vpclab import Lab
from vpclab.classroom.exercises import exercise

HERE = Path(__file__).resolve().parent
ex05 = exercise(5).module
variant = exercise(5).variant(None)
where = ex05.places(variant)
topology = {**ex05.topology(variant), "name": "ex05-diagram"}
with Lab(topology, mode="on-demand", learner={"on_move": HERE / "solution" / ex05.LEARNER}) as lab, \
        tempfile.TemporaryDirectory() as tmp:
    ex05.warm_up(lab)
    print(lab.move(ex05.MOVER, where["target"]))
    with lab.capture([ex05.PINGER, ex05.MOVER], Path(tmp) / "run", filter="icmp or arp") as cap:
        lab.exec(ex05.PINGER, "ping", "-c", "1", "-W", "2", lab.address(ex05.MOVER), check=True)
    print(cap.diagram(HERE / "correct-run.svg"))
