"""Deadlines of a client's pending sync requests, without a timer per request.

A timer per request costs a handle, a heap push (with Python-level
comparisons) and a cancellation per call. Requests with the same timeout
expire in the order they started, so each distinct timeout keeps a FIFO of
``(deadline, request id)`` and one timer, set for its oldest entry. Entries of
requests already answered leave the FIFO's head as new ones arrive, and the
FIFO is compacted when it outgrows the requests still waiting, so it stays
about as long as the requests in flight.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Collection

__all__ = ["Deadlines"]

_SLACK = 64
"""Dead entries a FIFO may hold beyond twice the live ones before it is compacted."""


class _Lane:
    __slots__ = ("entries", "timer")

    def __init__(self) -> None:
        self.entries: deque[tuple[float, str]] = deque()
        self.timer: asyncio.TimerHandle | None = None


class Deadlines:
    """Calls `expire(key, timeout)` once `timeout` seconds passed since `add`, if `key` is still in `live`.

    `live` is the caller's own container of pending keys (read, never
    changed here): a key that left it is answered and never expires.
    """

    __slots__ = ("_expire", "_lanes", "_live", "_loop")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, live: Collection[str], expire: Callable[[str, float], None]
    ) -> None:
        self._loop = loop
        self._live = live
        self._expire = expire
        self._lanes: dict[float, _Lane] = {}

    def add(self, key: str, timeout: float) -> None:
        """Start the clock of `key`."""
        lane = self._lanes.get(timeout)
        if lane is None:
            lane = self._lanes[timeout] = _Lane()
        entries = lane.entries
        live = self._live
        while entries and entries[0][1] not in live:
            entries.popleft()
        if len(entries) > 2 * len(live) + _SLACK:  # answered out of order: drop the dead ones
            lane.entries = entries = deque(entry for entry in entries if entry[1] in live)
        entries.append((self._loop.time() + timeout, key))
        if lane.timer is None:
            lane.timer = self._loop.call_at(entries[0][0], self._fire, timeout)

    def _fire(self, timeout: float) -> None:
        lane = self._lanes.get(timeout)
        if lane is None:
            return
        lane.timer = None
        entries = lane.entries
        live = self._live
        now = self._loop.time()
        while entries and entries[0][0] <= now:
            _, key = entries.popleft()
            if key in live:
                self._expire(key, timeout)
        while entries and entries[0][1] not in live:
            entries.popleft()
        if entries:
            lane.timer = self._loop.call_at(entries[0][0], self._fire, timeout)
        else:
            del self._lanes[timeout]

    def clear(self) -> None:
        """Forget every deadline (the requests ended some other way)."""
        for lane in self._lanes.values():
            if lane.timer is not None:
                lane.timer.cancel()
        self._lanes.clear()
