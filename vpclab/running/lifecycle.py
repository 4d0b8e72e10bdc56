"""Bringing a lab up and down from the CLI process (which is not the runner).

`up` creates the lab's namespace and state directory, starts the runner
inside that namespace, and follows its progress until it is ready or failed.
`down` asks a live runner to tear down, then removes whatever is recorded.
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from vpclab.running.cleanup import uninterrupted
from vpclab.errors import VpclabError
from vpclab.learner import write_learner
from vpclab.model.names import check_lab_name
from vpclab.running.shell import run
from vpclab.running.state import LabState, _remove_lab, remove_lab, root_lock
from vpclab.model.topology import Topology
from vpclab.model.validation import check_topology, load_topology, parse_topology

REPO = Path(__file__).resolve().parents[2]      # vpclab/running/ -> the checkout
CALLER_CWD = "VPCLAB_CALLER_CWD"   # where `vpclab run` was typed (its CLI's files go there)


def prepare(source: str | Path | Mapping[str, Any], name: str | None = None,
            mode: str | None = None) -> tuple[Topology, str]:
    """Validate a topology file (or a dict in the file's form), apply --name/--mode, and
    return the topology and the text the lab will run from (its own copy, so runner and
    mapping service agree). Errors name the user's own file and YAML paths."""
    if isinstance(source, Mapping):
        raw = copy.deepcopy(dict(source))
        check_topology(raw, "<topology dict>")
    elif isinstance(source, (str, Path)):
        load_topology(source)
        raw = yaml.safe_load(Path(source).read_text())
    else:
        raise VpclabError(f"a topology is a YAML file's path or a dict, not {type(source).__name__}")
    if name is not None:
        raw["name"] = check_lab_name(name, "lab name")
    if mode is not None:
        raw["mapping"] = {**(raw.get("mapping") or {}), "mode": mode}
    text = yaml.safe_dump(raw, sort_keys=False)
    return parse_topology(text, str(source) if not isinstance(source, Mapping) else
                          "<topology dict>"), text


def start_runner(topology: Topology, text: str, interactive: bool = False,
                 learner: dict | None = None) -> tuple[LabState, subprocess.Popen]:
    """Create the lab's records and namespace and start its runner, all under the state
    root's lock: of two `up`s of one lab, the second finds the first's runner and stops."""
    state = LabState(topology.name)
    with root_lock(state.root):
        refuse_if_running(state)
        if state.exists():
            _remove_lab(state)  # left over from a crash: ours by record, safe to remove
        state.create()
        try:
            if learner:
                write_learner(state.dir, learner)      # before the mapping service starts
            return state, _launch(state, text, interactive)
        except BaseException:
            _remove_lab(state)
            raise


def _launch(state: LabState, text: str, interactive: bool) -> subprocess.Popen:
    state.topology_path.write_text(text)
    run(["ip", "netns", "add", state.namespace], f"lab {state.name!r}: its namespace")
    argv = ["ip", "netns", "exec", state.namespace, sys.executable, "-m", "vpclab.running.runner",
            str(state.dir)] + (["--interactive"] if interactive else [])
    if interactive:     # the CLI's `capture` writes where the user ran `vpclab run`
        proc = subprocess.Popen(argv, cwd=REPO, env={**os.environ, CALLER_CWD: os.getcwd()})
    else:
        with state.log("runner").open("w") as log:
            proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
    state.record_process(proc.pid, "runner")
    return proc


def refuse_if_running(state: LabState) -> None:
    if not state.is_running():
        return
    if any(e["event"] == "ready" for e in state.progress.read()):
        raise VpclabError(f"lab {state.name!r} is already running; stop it with "
                          f"`vpclab down {state.name}` or pick another --name")
    raise VpclabError(f"lab {state.name!r} is being brought up by another command; wait for "
                      f"it (`vpclab status {state.name}`), or stop it with `vpclab down {state.name}`")


def follow(state: LabState, proc: subprocess.Popen, on_phase: Callable[[str, float], None],
           timeout: float = 120.0) -> None:
    """Report each phase as the runner finishes it; return at ready, raise on failure."""
    seen = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = list(state.progress.read())
        for event in events[seen:]:
            if event["event"] == "phase":
                on_phase(event["name"], event["seconds"])
            elif event["event"] == "ready":
                return
            elif event["event"] == "failed":
                raise VpclabError(f"lab {state.name!r} failed to start: {event['error']}"
                                  + _log_hint(state))
        seen = len(events)
        if proc.poll() is not None:
            raise VpclabError(f"the lab runner exited (code {proc.returncode}) before the lab was "
                              f"ready" + _log_hint(state))
        time.sleep(0.02)
    raise VpclabError(f"lab {state.name!r} was not ready after {timeout:.0f} s" + _log_hint(state))


def _log_hint(state: LabState) -> str:
    tail = []
    for name in ("runner", "mapping-service"):
        path = state.log(name)
        if path.exists() and path.read_text().strip():
            tail.append(f"--- {path} (last lines)\n" + "\n".join(path.read_text().splitlines()[-12:]))
    return ("\n" + "\n".join(tail)) if tail else ""


def up(topology: Topology, text: str, on_phase: Callable[[str, float], None] = lambda n, s: None,
       timeout: float = 120.0,
       on_started: Callable[[LabState], None] = lambda state: None,
       learner: dict | None = None) -> LabState:
    """Bring a prepared lab up in the background, return when it is ready. `on_started` is
    called as soon as the lab's records exist (so a caller can own it from then on). On
    failure or an interrupt, everything it made is removed before the error goes on."""
    state, proc = start_runner(topology, text, learner=learner)
    try:
        on_started(state)
        follow(state, proc, on_phase, timeout)
    except BaseException:
        with uninterrupted():
            remove_lab(state)
        raise
    return state


def interact(topology: Topology, text: str) -> int:
    """Bring a prepared lab up in the foreground with the Mininet CLI; remove it when the
    CLI exits. The runner's exit code, or a VpclabError if it failed to start."""
    state, proc = start_runner(topology, text, interactive=True)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        code = proc.wait()
    finally:
        down(state.name)
    failed = [e for e in state.progress.read() if e["event"] == "failed"]
    if failed:
        raise VpclabError(failed[-1]["error"])
    return code


def down(name: str) -> bool:
    """Remove a lab; True if anything of it existed. Idempotent."""
    return remove_lab(LabState(name))


def running_lab(name: str) -> LabState:
    state = LabState(name)
    if not state.is_running():
        hint = "it left debris: `vpclab down %s` removes it" % name if state.exists() else \
            "`vpclab status` lists running labs"
        raise VpclabError(f"lab {name!r} is not running; {hint}")
    return state
