#!/usr/bin/env python3
"""Move a VM to another host while a ping to it runs, and count what the move cost.

    sudo python examples/migration.py

ZIGI-VM1 (host1) pings ZIGI-VM2 every 0.1 s; ZIGI-VM2 moves from host2 to host1 and
keeps its IP and MAC. The mapping service updates the mapping and invalidates the entry
in exactly the routers that had cached the old location; the next packet asks again.
"""
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True                                  # as root: no root-owned caches here
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # this checkout's vpclab
from vpclab.running.venv import use_checkout_venv  # noqa: E402

use_checkout_venv()                             # re-runs this script with .venv/bin/python
import vpclab  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    with vpclab.Lab(REPO / "topologies" / "seed.yaml", name="migration") as lab:
        with lab.running_ping("ZIGI-VM1", "ZIGI-VM2") as pinger:
            vpclab.wait_until(lambda: pinger.answered_after(0) >= 10, "ten answered pings")
            moved_at = time.time()
            report = lab.move("ZIGI-VM2", "host1")
            vpclab.wait_until(lambda: pinger.answered_after(moved_at) >= 10,
                              "ten pings answered after the move")
        lost = pinger.lost()
        print(f"moved ZIGI-VM2 host2 -> host1: mapping converged in {report.converged_ms} ms, "
              f"interface re-attached in {report.reattached_ms} ms")
        print(f"routers that dropped the old entry: {', '.join(report.invalidated) or 'none'}")
        print(f"pings: {len(pinger.requests)} sent, {len(lost)} lost "
              f"({', '.join(f'seq {seq}' for seq in lost) or 'none'}), "
              f"{pinger.answered_after(moved_at)} answered after the move")
        print(f"ZIGI-VM2 is now on {lab.nodes()['ZIGI-VM2']['host']}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except vpclab.VpclabError as exc:
        sys.exit(f"migration: {exc}")
