"""The lab runner: the one process that owns a running lab.

Started by `vpclab up` (detached) or `vpclab run` (in the foreground with the
Mininet CLI) as `ip netns exec vpclab-<lab> python -m vpclab.running.runner STATE_DIR`.
It builds the fabric, reports each phase with its duration in progress.jsonl,
opens its control socket (the only way a running lab's fabric is changed: see
vpclab/running/control.py), says "ready", then waits for SIGTERM (from `vpclab down`)
and tears down what it started. If it is killed outright, `vpclab down`/`up`
clean up from the records it left.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from vpclab.running import control
from vpclab.errors import VpclabError
from vpclab.running.fabric import Fabric
from vpclab.running.live import LiveChanges
from vpclab.model.plan import plan_fabric
from vpclab.report import print_phase
from vpclab.running.state import LabState
from vpclab.model.validation import load_topology


def _stop(signum, frame):
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vpclab.running.runner")
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--interactive", action="store_true")
    args = parser.parse_args(argv)
    state = LabState(args.state_dir.name, args.state_dir.parent)
    topology = load_topology(state.topology_path)
    fabric = Fabric(plan_fabric(topology), state)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    if not args.interactive:
        signal.signal(signal.SIGINT, _stop)
    server = None
    try:
        for name, step in fabric.phases():
            start = time.monotonic()
            step()
            seconds = round(time.monotonic() - start, 3)
            state.progress.write("phase", name=name, seconds=seconds)
            if args.interactive:
                print_phase(name, seconds)
        server = control.serve(state, LiveChanges(fabric))
        state.progress.write("ready")
        # Supervision runs beside the main thread, so SIGTERM (raised here as SystemExit)
        # never interrupts a restart half done; teardown waits for one in progress.
        threading.Thread(target=fabric.supervise, daemon=True).start()
        if args.interactive:
            fabric.cli()
        else:
            while True:
                signal.pause()
    except VpclabError as exc:
        state.progress.write("failed", error=str(exc))
        return 2
    except Exception as exc:  # a bug: keep the traceback in runner.log
        traceback.print_exc()
        state.progress.write("failed", error=f"{type(exc).__name__}: {exc}")
        return 1
    finally:
        if server is not None:
            server.close()          # no change may start while the lab is taken down
        fabric.teardown()
        state.progress.write("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
