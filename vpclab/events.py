"""The mapping service's event log: one JSON object per line, with a timestamp.

The runner waits on it (every router "ready"), the CLI shows it, and the
trace tools (later) draw the mapping service's lane from it. A plain
append-only file survives a crash and needs no server.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator


class EventLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def write(self, event: str, at: float | None = None, **fields: Any) -> None:
        """Append one event; `at` is when it happened, if not now."""
        record = {"t": round(time.time() if at is None else at, 6), "event": event, **fields}
        with self.path.open("a") as out:
            out.write(json.dumps(record, default=str) + "\n")

    def read(self) -> Iterator[dict[str, Any]]:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            if line.strip():
                yield json.loads(line)
