from __future__ import annotations

import asyncio

from goomerang_runtime._deadlines import Deadlines

from .helpers import WAIT


class Expiries:
    """What a Deadlines expired, when, and a way to wait for a key."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.live: dict[str, float] = {}
        self.expired: list[tuple[str, float, float]] = []
        """(key, its deadline: loop time it started + its timeout, loop time it expired)."""
        self._waiters: dict[str, asyncio.Future[None]] = {}

    def start(self, deadlines: Deadlines, key: str, timeout: float) -> None:
        self.live[key] = self.loop.time()
        deadlines.add(key, timeout)

    def expire(self, key: str, timeout: float) -> None:
        started = self.live.pop(key)
        # The deadline as Deadlines computes it, not `now - started`: with uvloop's millisecond clock
        # `started + timeout == now` is common, and then `now - started` may come out a hair below `timeout`.
        self.expired.append((key, started + timeout, self.loop.time()))
        waiter = self._waiters.get(key)
        if waiter is not None:
            waiter.set_result(None)

    async def wait(self, key: str) -> None:
        waiter = self._waiters[key] = self.loop.create_future()
        if key not in self.live:
            return
        await asyncio.wait_for(waiter, WAIT)


async def test_each_key_expires_after_its_timeout_in_order() -> None:
    seen = Expiries()
    deadlines = Deadlines(seen.loop, seen.live, seen.expire)
    for key in ("a", "b", "c"):
        seen.start(deadlines, key, 0.05)
    seen.start(deadlines, "slow", 0.1)
    seen.start(deadlines, "fast", 0.01)
    await seen.wait("slow")
    assert [key for key, _, _ in seen.expired] == ["fast", "a", "b", "c", "slow"]
    for _, deadline, expired_at in seen.expired:
        assert expired_at >= deadline
    assert deadlines._lanes == {}  # nothing left behind


async def test_answered_keys_never_expire() -> None:
    seen = Expiries()
    deadlines = Deadlines(seen.loop, seen.live, seen.expire)
    seen.start(deadlines, "answered", 0.02)
    seen.start(deadlines, "late", 0.02)
    del seen.live["answered"]
    await seen.wait("late")
    assert [key for key, _, _ in seen.expired] == ["late"]


async def test_a_stuck_head_does_not_let_answered_entries_pile_up() -> None:
    seen = Expiries()
    deadlines = Deadlines(seen.loop, seen.live, seen.expire)
    seen.start(deadlines, "stuck", WAIT)
    for n in range(5000):
        seen.start(deadlines, f"k{n}", WAIT)
        del seen.live[f"k{n}"]  # answered at once, behind the stuck one
        # At most 2 keys are live during add: 2 * 2 + 64 dead ones kept, plus the new one.
        assert len(deadlines._lanes[WAIT].entries) <= 2 * 2 + 64 + 1
    deadlines.clear()
    assert seen.expired == []


async def test_clear_cancels_every_deadline() -> None:
    seen = Expiries()
    deadlines = Deadlines(seen.loop, seen.live, seen.expire)
    seen.start(deadlines, "forgotten", 0.01)
    deadlines.clear()
    seen.start(deadlines, "kept", 0.03)
    await seen.wait("kept")
    assert [key for key, _, _ in seen.expired] == ["kept"]
