"""The mapping service's event log: one JSON object per line, with a timestamp.

The runner waits on it (every router "ready"), the CLI shows it, and the
diagrams (vpclab/packets/diagram.py) draw the mapping service's lane from it. A plain
append-only file survives a crash and needs no server.

Bounded: a miss writes a line, so a busy lab would grow the file forever.
Past `max_bytes` the file is rotated once (`events.jsonl` -> `events.1.jsonl`,
replacing the older one), so the log holds between one and two files' worth
of the most recent events, and `read` gives both, oldest first.

Off the hot path: `write_soon` (the service's misses) only queues the event; a
writer thread writes what is queued in one append and flushes, so lines appear
within milliseconds and a miss pays no open/write/close. Order is kept: `write`
(every other event: "router_ready", "change", ... that tools wait on) and `read`
first write what is queued, under the same lock as the writer, so an event
written after a miss is never before it in the file.
"""
from __future__ import annotations

import atexit
import json
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterator


MAX_BYTES = 4 * 1024 * 1024     # ~20,000 misses per file

log = logging.getLogger("vpclab.router.events")


class EventLog:
    def __init__(self, path: str | Path, max_bytes: int | None = MAX_BYTES):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()        # the file: one batch (and rotation) at a time
        self._queued: deque[dict[str, Any]] = deque()    # write_soon's, not yet written
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None
        self._start = threading.Lock()

    @property
    def older(self) -> Path:
        """Where the previous events go at rotation (events.1.jsonl)."""
        return self.path.with_name(f"{self.path.stem}.1{self.path.suffix}")

    def write(self, event: str, at: float | None = None, **fields: Any) -> None:
        """Append one event now (after any queued ones); `at` is when it happened, if not now."""
        record = _record(event, at, fields)
        with self._lock:
            self._append(self._take() + [record])

    def write_soon(self, event: str, at: float | None = None, **fields: Any) -> None:
        """Queue one event for the writer thread: in the file within milliseconds."""
        self._queued.append(_record(event, at, fields))
        if self._writer is None:
            self._start_writer()
        self._wake.set()

    def flush(self) -> None:
        """Write what is queued now (the writer thread would, a moment later)."""
        with self._lock:
            self._append(self._take())

    def _take(self) -> list[dict[str, Any]]:
        """The queued events, oldest first (called under the lock: one taker at a time)."""
        taken = []
        while self._queued:
            taken.append(self._queued.popleft())
        return taken

    def _append(self, records: list[dict[str, Any]]) -> None:
        """One open and write per batch; past max_bytes the file rotates mid-batch, so a
        file never holds more than one event past its bound, as with single writes."""
        text = [json.dumps(r, default=str) + "\n" for r in records]
        while text:
            with self.path.open("a") as out:
                start = out.tell()
                room = len(text) if self.max_bytes is None else _fitting(text, self.max_bytes - start)
                out.write("".join(text[:room]))
                full = self.max_bytes is not None and out.tell() >= self.max_bytes
            text = text[room:]
            if full:
                self.path.replace(self.older)   # atomic: a reader sees one or the other

    def _start_writer(self) -> None:
        with self._start:
            if self._writer is None:
                self._writer = threading.Thread(target=self._drain, daemon=True,
                                                name=f"vpclab-events-{self.path.name}")
                self._writer.start()
                atexit.register(self.flush)

    def _drain(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self.flush()
            except OSError as exc:          # e.g. the lab's directory removed under us
                log.warning("events not written to %s: %s", self.path, exc)

    def read(self) -> Iterator[dict[str, Any]]:
        """Every event still kept, oldest first (the rotated file, then the current one)."""
        if self._queued:
            self.flush()
        for path in (self.older, self.path):
            try:
                lines = path.read_text().splitlines()
            except FileNotFoundError:
                continue
            for line in lines:
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError:      # a line being written as we read
                        continue


def _record(event: str, at: float | None, fields: dict[str, Any]) -> dict[str, Any]:
    return {"t": round(time.time() if at is None else at, 6), "event": event, **fields}


def _fitting(lines: list[str], room: int) -> int:
    """How many lines to write before the file reaches its bound (at least one)."""
    size = 0
    for count, line in enumerate(lines, 1):
        size += len(line)
        if size >= room:
            return count
    return len(lines)
