"""What one router caches on demand, in recency order, within the lab's bound.

Every entry the service installs on a router on demand counts against
`mapping.max_entries`: a mapping's entry (ARP answer, forwarding, trust as a
source), a remembered unknown address, a receive-check drop, and entries a
resync found and kept. Each is known by its cookie.

"Recently used" is what the service can see: an entry is used when a router
asks for it (a miss) and when its flows' packet counters have grown since the
last look (`refresh`, fed by flow statistics the service polls). The service
never sees single packets, so between two polls ties are broken by install order.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterator


class RouterCache:
    def __init__(self, bound: int):
        self.bound = bound
        self._tables: OrderedDict[int, set[int]] = OrderedDict()   # cookie -> tables, oldest first
        self._packets: dict[int, int] = {}                         # cookie -> packets at last look

    def add(self, cookie: int, tables: set[int]) -> None:
        """An entry installed (or asked for again): it is now the most recent."""
        self._tables[cookie] = self._tables.get(cookie, set()) | set(tables)
        self._tables.move_to_end(cookie)

    def discard(self, cookie: int) -> None:
        """Invalidated or evicted: every flow of the entry is gone."""
        self._tables.pop(cookie, None)
        self._packets.pop(cookie, None)

    def removed(self, cookie: int, table: int) -> bool:
        """The router removed one flow of an entry (expiry); True when none is left."""
        tables = self._tables.get(cookie)
        if tables is None:
            return False
        tables.discard(table)
        if tables:
            return False
        self.discard(cookie)
        return True

    def refresh(self, packets: dict[int, int]) -> None:
        """Flow counters per cookie, as read now: entries that carried packets since the
        last look become the most recent (busiest last)."""
        used = []
        for cookie, count in packets.items():
            if cookie in self._tables and count > self._packets.get(cookie, 0):
                used.append((count - self._packets.get(cookie, 0), cookie))
            if cookie in self._tables:
                self._packets[cookie] = count
        for _, cookie in sorted(used):
            self._tables.move_to_end(cookie)

    def over_bound(self) -> list[int]:
        """Cookies to evict, least recent first, so that the cache fits its bound."""
        evicted = []
        while len(self._tables) > self.bound:
            cookie, _ = self._tables.popitem(last=False)
            self._packets.pop(cookie, None)
            evicted.append(cookie)
        return evicted

    def __len__(self) -> int:
        return len(self._tables)

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._tables))

    def __contains__(self, cookie: int) -> bool:
        return cookie in self._tables
