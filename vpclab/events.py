"""The mapping service's event log: one JSON object per line, with a timestamp.

The runner waits on it (every router "ready"), the CLI shows it, and the
trace tools (later) draw the mapping service's lane from it. A plain
append-only file survives a crash and needs no server.

Bounded: a miss writes a line, so a busy lab would grow the file forever.
Past `max_bytes` the file is rotated once (`events.jsonl` -> `events.1.jsonl`,
replacing the older one), so the log holds between one and two files' worth
of the most recent events, and `read` gives both, oldest first.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Iterator


MAX_BYTES = 4 * 1024 * 1024     # ~20,000 misses per file


class EventLog:
    def __init__(self, path: str | Path, max_bytes: int | None = MAX_BYTES):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()        # one rotation at a time (the service's threads)

    @property
    def older(self) -> Path:
        """Where the previous events go at rotation (events.1.jsonl)."""
        return self.path.with_name(f"{self.path.stem}.1{self.path.suffix}")

    def write(self, event: str, at: float | None = None, **fields: Any) -> None:
        """Append one event; `at` is when it happened, if not now."""
        record = {"t": round(time.time() if at is None else at, 6), "event": event, **fields}
        with self._lock:
            with self.path.open("a") as out:
                out.write(json.dumps(record, default=str) + "\n")
                full = self.max_bytes is not None and out.tell() >= self.max_bytes
            if full:
                self.path.replace(self.older)   # atomic: a reader sees one or the other

    def read(self) -> Iterator[dict[str, Any]]:
        """Every event still kept, oldest first (the rotated file, then the current one)."""
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
