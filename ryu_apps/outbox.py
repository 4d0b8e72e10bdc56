"""One sender per router: messages decided under the service's lock, sent outside it.

os-ken queues at most 16 messages per connection and `Datapath.send` blocks
when that queue is full, which is what a stalled router (a stopped or
overloaded ovs-vswitchd) causes once its TCP window closes. If the service
sent while holding its one lock, that router would stall every other router's
misses. So the service only appends, in order, to the router's outbox (never
blocks), and this thread does the blocking sends. An outbox that grows past
its limit, or a send that os-ken gives up on (its socket timeout: the router
read nothing for 5 s), means the router is not reading at all: the connection
is closed, and the router is re-synchronised when it reconnects.

One write per answer, or fewer: each `put` is joined into one bytes object
(a miss's flow-mods and packet-out), and the sender joins whatever is waiting
when it wakes into one `Datapath.send` (at most WRITE_BYTES), so a busy router
costs one pass through os-ken's send queue and one `sendall` per batch instead
of one per message. The router reads the messages in the order they were put.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Callable

LIMIT = 20000          # messages waiting for one router before it is given up on
WRITE_BYTES = 256 * 1024    # joined into one send at most (a resync's flows come in many)

log = logging.getLogger("vpclab.outbox")


class Outbox:
    def __init__(self, datapath, on_broken: Callable[[], None], limit: int = LIMIT):
        self.datapath = datapath
        self.on_broken = on_broken
        self.limit = limit
        self._queue: deque[tuple[bytes, int]] = deque()     # (joined messages, how many)
        self._waiting = 0          # messages in the queue
        self._ready = threading.Condition()
        self._closed = False
        self._broken = False       # closed because the router reads nothing: disconnect it
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"vpclab-send-{datapath.id}")
        self._thread.start()

    def put(self, messages: list[bytes]) -> None:
        """Queue encoded messages, in order; never blocks. An overflow hands the disconnect
        to the sender thread: the caller may be os-ken's event thread, holding the service's
        lock, and closing a datapath there queues an event for that same thread."""
        with self._ready:
            if self._closed:
                return
            if not messages:
                return
            self._queue.append((b"".join(messages), len(messages)))
            self._waiting += len(messages)
            if self._waiting > self.limit:
                log.warning("router %016x reads nothing: %d messages waiting; disconnecting it",
                            self.datapath.id, self.limit)
                self._closed = self._broken = True
                self._clear()
            self._ready.notify()

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._clear()
            self._ready.notify()

    def __len__(self) -> int:
        """Messages put and not yet handed to the connection."""
        return self._waiting

    def _clear(self) -> None:
        self._queue.clear()
        self._waiting = 0

    def _take(self) -> bytes:
        """What is waiting, in order, joined up to WRITE_BYTES (at least one put's worth)."""
        parts, size = [], 0
        while self._queue and (not parts or size + len(self._queue[0][0]) <= WRITE_BYTES):
            data, count = self._queue.popleft()
            self._waiting -= count
            parts.append(data)
            size += len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                broken = self._broken
                if self._closed:
                    break
                data = self._take()
            if not self.datapath.send(data):     # the connection is going away
                self.close()
                log.warning("router %016x stopped reading; disconnecting it", self.datapath.id)
                self.on_broken()
                return
        if broken:
            self.on_broken()
