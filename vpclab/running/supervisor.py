"""The runner's supervisor: what dies is restarted, what cannot be is reported.

It watches the current process of each supervised part (the mapping service,
each host's ovsdb-server and ovs-vswitchd; see vpclab/running/health.py). The OVS
daemons run with --detach, so they are not the runner's children and cannot
be waited for: a pidfd (Linux 5.3+) wakes the supervisor the moment one ends,
and a cheap /proc check every POLL seconds covers what a pidfd cannot.

A restart that fails is retried with backoff and reported (progress.jsonl,
health.json) while the rest of the lab keeps running: one part failing to
come back never takes the lab down. A part that dies again soon after a
restart is also restarted with backoff, so a crash loop cannot spin.
"""
from __future__ import annotations

import os
import select
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable

from vpclab.running import health
from vpclab.running.health import Part
from vpclab.running.state import LabState, RecordedProcess

POLL = 0.2                      # seconds between /proc checks
# seconds before retry n (the last one repeats): two at once, then slower and slower
BACKOFF = (0, 0, 1, 2, 5, 10, 30)
STABLE = 10.0                   # alive this long after a restart: the next death is a new story
# ovsdb-server before ovs-vswitchd: a vswitchd started without its database waits on it
ORDER = {"ovsdb-server": 0, "ovs-vswitchd": 1, "mapping-service": 2}


@dataclass
class Attempts:
    """Restarts of one part in a row: a failure, or a death soon after the last start."""
    streak: int = 0
    retry_at: float | None = None     # None: restarted and running
    last_start: float = 0.0


class Supervisor:
    def __init__(self, state: LabState, restart: Callable[[str, str], None],
                 lock: threading.Lock, stopping: Callable[[], bool]):
        """restart(role, node) starts the part again and records its new process, or
        raises; it runs under `lock`, which teardown takes too, and only while not
        stopping: a process started during teardown would be left behind."""
        self.state = state
        self.restart = restart
        self.lock = lock
        self.stopping = stopping
        self.attempts: dict[Part, Attempts] = {}
        self.notes: dict[str, dict] = {}
        self.pidfds: dict[RecordedProcess, int] = {}

    def run(self) -> None:
        last_error = ""
        while not self.stopping():
            try:
                self.check(self.current())
            except Exception as exc:   # a bug here must not end supervision
                error = f"{type(exc).__name__}: {exc}"
                if error != last_error:        # once per distinct error: progress is never rotated
                    traceback.print_exc()
                    self.state.progress.write("supervisor_error", error=error)
                last_error = error
            self.wait(POLL)

    def current(self) -> dict[Part, RecordedProcess]:
        return {part: proc for part, proc in health.newest(self.state.processes()).items()
                if part[0] in health.SUPERVISED}

    def check(self, current: dict[Part, RecordedProcess]) -> None:
        """Restart every dead part that is due, in dependency order."""
        dead = [(part, proc) for part, proc in current.items() if not proc.is_alive()]
        for part, proc in sorted(dead, key=lambda item: ORDER.get(item[0][0], 9)):
            if self.stopping():
                return
            if self._due(part, proc):
                self._restart(part)
        self._forget_stable(current)

    def _due(self, part: Part, proc: RecordedProcess) -> bool:
        now = time.monotonic()
        tries = self.attempts.get(part)
        if tries is None or tries.retry_at is None:          # a death not seen before
            self.state.progress.write("process_died", role=part[0], node=part[1], pid=proc.pid)
            if tries is None:
                tries = self.attempts[part] = Attempts(retry_at=now)
            else:                        # died again soon after a restart: back off
                tries.streak += 1
                tries.retry_at = now + _backoff(tries.streak)
                self._note(part, "restarting", error="it died again soon after a restart; "
                                                     f"next try in {_backoff(tries.streak)} s")
        return now >= tries.retry_at

    def _restart(self, part: Part) -> None:
        role, node = part
        tries = self.attempts[part]
        last = self.notes.get(health.part_name(*part), {}).get("error")
        self._note(part, "restarting", error=last and f"last try: {last.split('; retrying')[0]}")
        started = time.monotonic()
        try:
            with self.lock:
                if self.stopping():
                    return
                self.restart(role, node)
        except Exception as exc:
            tries.streak += 1
            delay = _backoff(tries.streak)
            tries.retry_at = time.monotonic() + delay
            error = _summary(exc)
            self.state.progress.write("restart_failed", role=role, node=node, attempt=tries.streak,
                                      error=str(exc), retry_in=delay)
            self._note(part, "restart failed", error=f"{error}; retrying in {delay} s")
            return
        tries.retry_at, tries.last_start = None, time.monotonic()
        new = self.current().get(part)
        self.state.progress.write("process_restarted", role=role, node=node,
                                  pid=new.pid if new else None,
                                  seconds=round(time.monotonic() - started, 3))
        self._note(part, None)

    def _forget_stable(self, current: dict[Part, RecordedProcess]) -> None:
        now = time.monotonic()
        for part in [p for p, t in self.attempts.items()
                     if t.retry_at is None and now - t.last_start > STABLE
                     and p in current and current[p].is_alive()]:
            del self.attempts[part]

    def _note(self, part: Part, status: str | None, error: str | None = None) -> None:
        name = health.part_name(*part)
        note = {"status": status, "error": error} if status else None
        if self.notes.get(name) == note:
            return
        if note:
            self.notes[name] = note
        else:
            self.notes.pop(name, None)
        health.write_notes(self.state, self.notes)

    # -- waiting -----------------------------------------------------------------
    def wait(self, timeout: float) -> None:
        """Sleep up to `timeout`, waking as soon as a watched process ends."""
        alive = [p for p in self.current().values() if p.is_alive()]
        fds = [fd for fd in map(self._pidfd, alive) if fd is not None]
        if fds:
            select.select(fds, [], [], timeout)
        else:
            time.sleep(timeout)

    def _pidfd(self, proc: RecordedProcess) -> int | None:
        if proc not in self.pidfds:
            try:
                fd = os.pidfd_open(proc.pid)
            except (OSError, AttributeError):   # gone already, or no pidfds here
                return None
            if not proc.is_alive():             # the PID was recycled: not ours
                os.close(fd)
                return None
            for old in [p for p in self.pidfds if (p.role, p.node) == (proc.role, proc.node)]:
                os.close(self.pidfds.pop(old))
            self.pidfds[proc] = fd
        return self.pidfds[proc]


def _summary(exc: Exception) -> str:
    """One line for status: the error's first line, and its last (a log's final words)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"


def _backoff(streak: int) -> int:
    return BACKOFF[min(max(streak, 1), len(BACKOFF)) - 1]
