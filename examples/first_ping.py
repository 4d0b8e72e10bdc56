#!/usr/bin/env python3
"""The seed's first ping: capture it on both VMs, compare with the documented traces, draw it.

    sudo python examples/first_ping.py

The receiving VM (ZIGI-VM2) sees the ICMP request before any ARP: the virtual router on
host1 answered ZIGI-VM1's ARP itself, from the mapping service.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True                                  # as root: no root-owned caches here
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # this checkout's vpclab
from vpclab.running.venv import use_checkout_venv  # noqa: E402

use_checkout_venv()                             # re-runs this script with .venv/bin/python
import vpclab  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    with vpclab.Lab(REPO / "topologies" / "seed.yaml", name="first-ping", mode="on-demand") as lab:
        with lab.capture(["ZIGI-VM1", "ZIGI-VM2", "host1:eth0"], filter="icmp or arp or udp") as cap:
            ping = lab.exec("ZIGI-VM1", "ping", "-c", "1", "10.0.0.185")
    print(ping.stdout.splitlines()[1] if ping.ok else f"ping failed: {ping.stdout}{ping.stderr}")
    print("ZIGI-VM2 saw, in order:")
    for line in cap.lines()["ZIGI-VM2"]:
        print("   ", line.split(" ", 1)[1])
    result = cap.compare(REPO / "traces" / "seed")
    drawn = cap.diagram(cap.dir / "first-ping.svg")
    print(f"captures in {cap.dir}/, sequence diagram {drawn[0]}")
    if result.match:
        print("verdict: MATCH, the seed's order at both VMs (request before ARP at ZIGI-VM2)")
        return 0
    print(result)
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except vpclab.VpclabError as exc:
        sys.exit(f"first_ping: {exc}")
