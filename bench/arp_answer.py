"""The first ARP answer at the asking VM (issue 14, point 3, the service's side), needs root:

    .venv/bin/python bench/arp_answer.py [--runs 2] [--targets 40] [--name-prefix ha-arp]

A fresh lab per run: 2 hosts, one asking VM on host1, TARGETS VMs on host2, on-demand
mode. Inside the asking VM a raw socket sends one ARP request per target, one at a
time (20 ms apart), and times each reply at the socket: the first request for a target
is a miss (the mapping service answers), then the same targets again (the router's
cached entry answers). Also checks that each first reply is byte for byte the cached
one. Prints the medians and p90s; takes about 30 s per run.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import vpclab  # noqa: E402

ASKER = r"""
import json, select, socket, struct, sys, time
iface, mac, ip = sys.argv[1], sys.argv[2], sys.argv[3]
targets = sys.argv[4:]
me, mine = bytes.fromhex(mac.replace(":", "")), socket.inet_aton(ip)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((iface, 0x0806))
head = b"\xff" * 6 + me + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + me + mine + b"\x00" * 6

def ask(target):
    want = socket.inet_aton(target)
    t0 = time.perf_counter()
    s.send(head + want)
    while time.perf_counter() - t0 < 2:
        if not select.select([s], [], [], 0.1)[0]:
            continue
        data = s.recv(128)
        if data[12:14] == b"\x08\x06" and data[20:22] == b"\x00\x02" and data[28:32] == want:
            return time.perf_counter() - t0, data.hex()
    return None, None

rounds = {}
for name in ("first", "cached"):
    rounds[name] = []
    for t in targets:
        rounds[name].append(ask(t))
        time.sleep(0.02)
print(json.dumps(rounds))
"""


def topology(targets: int) -> str:
    lines = ["name: ha-arp", "mapping: {mode: on-demand}", "hosts:", "  host1: {}", "  host2: {}",
             "vpcs:", "  vpc1: {cidr: 10.30.0.0/16}", "vms:",
             "  asker: {vpc: vpc1, host: host1, ip: 10.30.1.10}"]
    lines += [f"  t{k}: {{vpc: vpc1, host: host2, ip: 10.30.2.{10 + k}}}" for k in range(targets)]
    return "\n".join(lines) + "\n"


def one_run(name: str, targets: int, settle: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "arp.yaml"
        path.write_text(topology(targets))
        with vpclab.Lab(path, name=name) as lab:
            time.sleep(settle)
            nodes = lab.nodes()
            asker = nodes["asker"]
            ips = [nodes[f"t{k}"]["ip"] for k in range(targets)]
            out = lab.popen("asker", "python3", "-c", ASKER, "eth0", asker["mac"], asker["ip"], *ips,
                            stdout=-1, stderr=-1, text=True).communicate(timeout=120)[0]
    rounds = json.loads(out.strip().splitlines()[-1])
    first, cached = rounds["first"], rounds["cached"]
    return {"first_ms": [t * 1000 for t, _ in first if t is not None],
            "cached_ms": [t * 1000 for t, _ in cached if t is not None],
            "lost": sum(t is None for t, _ in first + cached),
            "same_bytes": sum(a[1] == b[1] and a[1] is not None for a, b in zip(first, cached))}


def p90(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.9)] if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--targets", type=int, default=40)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--name-prefix", default="ha-arp")
    args = parser.parse_args()
    first, cached = [], []
    for i in range(args.runs):
        r = one_run(f"{args.name_prefix}{i}", args.targets, args.settle)
        first += r["first_ms"]
        cached += r["cached_ms"]
        print(f"run {i + 1}: first answer median {statistics.median(r['first_ms']):.3f} ms "
              f"p90 {p90(r['first_ms']):.3f}; cached {statistics.median(r['cached_ms']):.3f} ms; "
              f"lost {r['lost']}; first reply = cached reply for {r['same_bytes']}/{args.targets}",
              flush=True)
    print(f"all: first answer median {statistics.median(first):.3f} ms (p90 {p90(first):.3f}), "
          f"cached {statistics.median(cached):.3f} ms (p90 {p90(cached):.3f}), n={len(first)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
