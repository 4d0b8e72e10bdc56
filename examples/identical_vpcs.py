#!/usr/bin/env python3
"""Two VPCs with identical addresses, on the same hosts, proven isolated.

    sudo python examples/identical_vpcs.py

BLUE and RED both use 10.0.0.0/24, and both have a 10.0.0.10 on host1 and a 10.0.0.20
on host2. The mapping service keys every mapping by (VPC, IP), and the tunnel carries
the VPC's id (Geneve VNI), so each ping reaches its own VPC's 10.0.0.20 and nothing of
it reaches the other's. The topology is a dict here: no YAML file needed.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True                                  # as root: no root-owned caches here
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # this checkout's vpclab
from vpclab.running.venv import use_checkout_venv  # noqa: E402

use_checkout_venv()                             # re-runs this script with .venv/bin/python
import vpclab  # noqa: E402

TOPOLOGY = {
    "name": "identical-vpcs",
    "hosts": {"host1": {}, "host2": {}},
    "vpcs": {"BLUE": {"cidr": "10.0.0.0/24", "vni": 101},
             "RED": {"cidr": "10.0.0.0/24", "vni": 102}},
    "vms": {"BLUE-A": {"vpc": "BLUE", "host": "host1", "ip": "10.0.0.10"},
            "BLUE-B": {"vpc": "BLUE", "host": "host2", "ip": "10.0.0.20"},
            "BLUE-C": {"vpc": "BLUE", "host": "host2", "ip": "10.0.0.30"},
            "RED-A": {"vpc": "RED", "host": "host1", "ip": "10.0.0.10"},
            "RED-B": {"vpc": "RED", "host": "host2", "ip": "10.0.0.20"}},
}


def main() -> int:
    isolated = True
    with vpclab.Lab(TOPOLOGY) as lab:
        for source, own, other in (("BLUE-A", "BLUE-B", "RED-B"), ("RED-A", "RED-B", "BLUE-B")):
            with lab.capture([own, other], filter="icmp") as cap:
                reached = lab.ping(source, "10.0.0.20")
            seen = {vm: len(lines) for vm, lines in cap.lines().items()}
            ok = reached and seen[own] == 2 and seen[other] == 0
            isolated &= ok
            print(f"{source} pings 10.0.0.20: {'answered' if reached else 'NO ANSWER'}; ICMP "
                  f"packets seen by {own}: {seen[own]}, by {other}: {seen[other]}"
                  f"{'' if ok else '  <- NOT ISOLATED'}")
        leaked = lab.ping("RED-A", "10.0.0.30")      # exists only in BLUE
        isolated &= not leaked
        print(f"RED-A pings 10.0.0.30 (only BLUE has it): {'ANSWERED: LEAK' if leaked else 'no answer'}")
        macs = {m["vpc"]: m["mac"] for m in lab.mappings() if m["ip"] == "10.0.0.20"}
        print(f"mapping service: (BLUE, 10.0.0.20) -> {macs['BLUE']}, (RED, 10.0.0.20) -> {macs['RED']}")
    print("verdict: " + ("ISOLATED, same addresses, separate VPCs" if isolated else "NOT ISOLATED"))
    return 0 if isolated else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except vpclab.VpclabError as exc:
        sys.exit(f"identical_vpcs: {exc}")
